//! Integration tests: they run the real `parallax-launch` and `parallax-inspect` binaries on real
//! files, pipes, FIFOs and signals.

mod arena;
mod copies;
mod dot;
mod errors;
mod filters;
mod flow;
mod generated;
mod inspect;
mod isolated;
mod net;
mod parser_fuzz;
mod planner;
mod session;
mod shell;
mod shm;
mod signals;
mod support;
