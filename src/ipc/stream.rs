//! A stream of buffers from one process to others over a unix socket, for elements that connect
//! separate pipelines (shmsink, shmsrc). The producer's [`StreamListener`] admits consumers as
//! [`StreamSender`]s, each of which lends buffers without copying them (the arena's memfd goes
//! once, then each buffer is a frame naming its slot); a consumer's [`StreamReceiver`] maps what
//! is announced and turns each frame back into a buffer, checking everything it is sent.
//!
//! The frames, their protocol version and the arena bookkeeping stay in this module: elements
//! see a listener, a sender and a receiver.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use super::frame::{
    accept, connect, listen, map_announced_arena, recv_frame, send_buffer, send_frame, Frame,
    FrameError, PROTOCOL,
};
use crate::memory::{Buffer, Exporter, IpcRef, Metadata, SharedArenaCache};

/// Where consumers connect: a listening SOCK_SEQPACKET unix socket.
#[derive(Debug)]
pub struct StreamListener {
    sock: OwnedFd,
}

impl StreamListener {
    /// Listens at `path` with permissions `perms`; never replaces what is already there
    /// (`AlreadyExists`).
    pub fn bind(path: &Path, perms: u32) -> std::io::Result<StreamListener> {
        Ok(StreamListener {
            sock: listen(path, perms)?,
        })
    }

    /// Accepts a waiting consumer, greets it and tells it the stream's `caps`. It may be sent
    /// buffers once it subscribed ([`StreamSender::read_subscribe`]).
    pub fn accept(&self, caps: &str) -> std::io::Result<StreamSender> {
        let sock = accept(&self.sock)?;
        send_frame(&sock, &Frame::Hello { version: PROTOCOL }, &[])?;
        send_frame(
            &sock,
            &Frame::Caps {
                caps: caps.to_owned(),
            },
            &[],
        )?;
        Ok(StreamSender {
            sock,
            exporter: Exporter::new(),
        })
    }
}

impl AsFd for StreamListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The producer's end of one consumer. Dropping it gives back every buffer the consumer held.
#[derive(Debug)]
pub struct StreamSender {
    sock: OwnedFd,
    exporter: Exporter,
}

impl StreamSender {
    /// Lends `buf` (which must live in a shareable arena) to the consumer.
    pub fn send(&mut self, buf: &Buffer) -> std::io::Result<()> {
        send_buffer(&self.sock, &mut self.exporter, buf)
    }

    /// Reads what a consumer that was just accepted sent (its socket is readable): true when it
    /// subscribed, false when it went away or sent anything else (a consumer that only asked
    /// for the caps, or not a consumer at all).
    pub fn read_subscribe(&self) -> bool {
        matches!(recv_frame(&self.sock), Ok(Some((Frame::Subscribe, _))))
    }

    /// Tells the consumer the stream's caps change to `caps` from the next buffer on.
    pub fn send_caps(&self, caps: &str) -> std::io::Result<()> {
        send_frame(
            &self.sock,
            &Frame::Caps {
                caps: caps.to_owned(),
            },
            &[],
        )
    }

    /// Tells the consumer why it is cut off (it reads this as the producer's error).
    pub fn cut_off(&self, message: String) {
        let _ = send_frame(&self.sock, &Frame::Error { message }, &[]);
    }

    /// End of stream for this consumer.
    pub fn end(&self) {
        let _ = send_frame(&self.sock, &Frame::Eos, &[]);
    }
}

impl AsFd for StreamSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Why a consumer could not connect or receive.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The socket said nothing within the wait.
    #[error("no greeting within {} s", .0.as_secs())]
    NoGreeting(Duration),
    /// The producer speaks another protocol version.
    #[error("the producer speaks protocol {theirs}, this consumer {ours}")]
    Protocol {
        /// The producer's version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
    /// The first frame was not a greeting.
    #[error("it did not greet like a producer")]
    NotAProducer,
    /// The producer went away before end of stream.
    #[error("the producer went away before end of stream")]
    Gone,
    /// The producer reported an error.
    #[error("{0}")]
    Producer(String),
    /// Something the producer sent does not hold up.
    #[error("{0}")]
    Invalid(String),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a consumer receives.
#[derive(Debug)]
pub enum Received {
    /// The next buffer.
    Buffer(Buffer),
    /// The stream's caps change (gst's text form) from the next buffer on.
    Caps(String),
}

/// A consumer's end: buffers in the producer's memory, mapped read as they are announced.
#[derive(Debug)]
pub struct StreamReceiver {
    sock: OwnedFd,
    cache: SharedArenaCache,
    /// The caps the producer announced when it greeted.
    caps: String,
}

impl StreamReceiver {
    /// Connects to the producer at `path` and waits at most `patience` for its greeting (a
    /// socket that is not a producer's may never speak) and its caps. Nothing is sent until
    /// [`StreamReceiver::subscribe`]: a connection that only asks for the caps drops it.
    pub fn connect(path: &Path, patience: Duration) -> Result<StreamReceiver, StreamError> {
        let sock = connect(path)?;
        let mut greeting = [rustix::event::PollFd::new(
            &sock,
            rustix::event::PollFlags::IN,
        )];
        let wait = rustix::time::Timespec {
            tv_sec: patience.as_secs() as i64,
            tv_nsec: i64::from(patience.subsec_nanos()),
        };
        if rustix::event::poll(&mut greeting, Some(&wait)).is_ok_and(|n| n == 0) {
            return Err(StreamError::NoGreeting(patience));
        }
        match recv_frame(&sock) {
            Ok(Some((Frame::Hello { version }, _))) if version == PROTOCOL => {}
            Ok(Some((Frame::Hello { version }, _))) => {
                return Err(StreamError::Protocol {
                    theirs: version,
                    ours: PROTOCOL,
                })
            }
            Ok(_) => return Err(StreamError::NotAProducer),
            Err(e) => return Err(StreamError::Invalid(e.to_string())),
        }
        // The caps follow the greeting at once (the producer sends both as it accepts).
        let mut follows = [rustix::event::PollFd::new(
            &sock,
            rustix::event::PollFlags::IN,
        )];
        if rustix::event::poll(&mut follows, Some(&wait)).is_ok_and(|n| n == 0) {
            return Err(StreamError::Invalid("no caps after the greeting".into()));
        }
        let caps = match recv_frame(&sock) {
            Ok(Some((Frame::Caps { caps }, _))) => caps,
            Ok(Some((other, _))) => {
                return Err(StreamError::Invalid(format!(
                    "expected the stream's caps after the greeting, got {other:?}"
                )))
            }
            Ok(None) => return Err(StreamError::Gone),
            Err(e) => return Err(StreamError::Invalid(e.to_string())),
        };
        Ok(StreamReceiver {
            sock,
            cache: SharedArenaCache::new(),
            caps,
        })
    }

    /// The caps the producer announced when it greeted (gst's text form).
    pub fn caps(&self) -> &str {
        &self.caps
    }

    /// Asks the producer for the stream: buffers follow.
    pub fn subscribe(&self) -> Result<(), StreamError> {
        send_frame(&self.sock, &Frame::Subscribe, &[])?;
        Ok(())
    }

    /// The next buffer or caps change, `None` at end of stream. Blocks; wait for [`AsFd`]
    /// readability first to stay interruptible.
    pub fn recv(&mut self) -> Result<Option<Received>, StreamError> {
        loop {
            let frame = match recv_frame(&self.sock) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Err(StreamError::Gone),
                Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Err(StreamError::Gone)
                }
                Err(e) => return Err(StreamError::Invalid(e.to_string())),
            };
            match frame {
                (
                    Frame::Arena {
                        peer, read_only, ..
                    },
                    fds,
                ) => map_announced_arena(&mut self.cache, peer, read_only, fds)
                    .map_err(StreamError::Invalid)?,
                (Frame::Buffer { at, meta }, _) => {
                    let mut buf = self
                        .cache
                        .get_slot(IpcRef::from(at))
                        .map_err(|e| StreamError::Invalid(e.to_string()))?;
                    buf.meta = Metadata::try_from(meta)
                        .map_err(|e| StreamError::Invalid(e.to_string()))?;
                    return Ok(Some(Received::Buffer(buf)));
                }
                (Frame::Caps { caps }, _) => return Ok(Some(Received::Caps(caps))),
                (Frame::Eos, _) => return Ok(None),
                (Frame::Error { message }, _) => return Err(StreamError::Producer(message)),
                (other, _) => {
                    return Err(StreamError::Invalid(format!("unexpected frame {other:?}")))
                }
            }
        }
    }
}

impl AsFd for StreamReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
