//! Talking to other processes: file descriptors we inherited (fdsrc/fdsink), and later unix
//! sockets, SCM_RIGHTS and rkyv frames.
//!
//! Threat model: an inherited fd number comes from the command line; it is checked to be open
//! before it is used, and never closed by us.

mod fd;

pub use fd::{inherited, FdKind};
