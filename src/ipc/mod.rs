//! Talking to other processes: file descriptors we inherited (fdsrc/fdsink), unix-socket
//! messages that carry descriptors (SCM_RIGHTS), and the rkyv-framed protocol between parallax
//! processes (worker processes, shmsink/shmsrc).
//!
//! Threat model: an inherited fd number comes from the command line; it is checked to be open
//! before it is used, and never closed by us. Bytes and descriptors received from a peer are
//! handed to the caller to validate (see `memory::SharedArenaCache`).

mod fd;
mod frame;
mod hangup;
mod spawn;
mod stream;
mod unix;
pub mod wire;

pub use fd::{inherited, FdKind};
pub use frame::{
    accept, connect, listen, map_announced_arena, recv_frame, send_buffer, send_frame,
    seqpacket_pair, spin_until_readable, Frame, FrameError, MetaError, WireField, WireMeta,
    WireRef, WireValue, MAX_FRAME, PROTOCOL, SPIN_BEFORE_BLOCKING,
};
pub use hangup::{ignore_hangup, on_hangup};
pub use spawn::{
    enter_sandbox, open_via_x32, release_socket, set_realtime, spawn_worker, worker_socket,
    RELEASE_FD, WORKER_FD,
};
pub use stream::{Received, StreamError, StreamListener, StreamReceiver, StreamSender};
pub use unix::{recv_with_fds, send_with_fds, MAX_FDS};
