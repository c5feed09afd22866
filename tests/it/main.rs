//! Integration tests: they run the real `parallax-launch` and `parallax-inspect` binaries on real
//! files, pipes, FIFOs and signals.

mod arena;
mod conformance;
mod copies;
mod dot;
mod errors;
mod filters;
mod flow;
mod generated;
mod inspect;
mod isolated;
mod issue20;
mod issue21;
mod media;
mod metadata;
mod net;
mod parser_fuzz;
mod planner;
mod random_pipelines;
mod readme;
mod records;
mod routing;
mod session;
mod shell;
mod shm;
mod signals;
mod support;
mod timing;
mod video_codecs;
