//! Unix domain sockets: `unixsrc` and `unixsink`, stream or datagram (the seed's UnixSrc /
//! UnixSink and their async variants, folded into one element per job).
//!
//! Stream: one side listens (creates the socket file), the other connects; by default the
//! source listens and the sink connects, `listen=` turns either around. Closing the stream is
//! end of stream. Datagram: the source binds the path, the sink sends each buffer as one
//! datagram to it; a full receiver holds the sender back (Unix datagrams are never dropped), and
//! like UDP there is no end of stream, so `num-buffers` or Ctrl-C ends the source.
//!
//! A socket file this element created is removed when it ends. A socket file left behind by a
//! process that died is replaced; one that a live process serves is an error.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncWriteExt as _, Interest};
use tokio::net::{UnixDatagram, UnixListener, UnixStream};

use super::super::{claim, BoundPath};
use super::{
    basesink_props, basesrc_props, blocksize, closed_early, net_error, read_stream, write_stream,
    Stamper, DEFAULT_BLOCKSIZE,
};
use crate::element::prelude::*;

const SOCKET_TYPES: &[EnumValue] = &[
    EnumValue {
        nick: "stream",
        value: 0,
        doc: "A byte stream (SOCK_STREAM): one listens, one connects; closing it ends the stream",
    },
    EnumValue {
        nick: "datagram",
        value: 1,
        doc: "One buffer per datagram (SOCK_DGRAM): the source binds, the sink sends",
    },
];

/// Both elements' `socket-path`.
const SOCKET_PATH: PropSpec =
    PropSpec::string("socket-path", None, "The path of the socket").required();

/// Both elements' `socket-type`.
const SOCKET_TYPE: PropSpec = PropSpec::enumeration(
    "socket-type",
    "stream",
    SOCKET_TYPES,
    "Byte stream or datagrams",
);

/// Claims `path` (see [`claim`]) and binds a socket there with `bind`; the returned guard
/// removes the file when the element ends. `what` says what failed ("bind", "listen on").
fn bind_claimed<T>(
    path: &Path,
    shown: &str,
    what: &str,
    bind: impl FnOnce(&Path) -> std::io::Result<T>,
) -> Result<(T, BoundPath), ElementError> {
    claim(path)?;
    let bound = bind(path).map_err(|e| net_error(format!("cannot {what} socket {shown}"), e))?;
    Ok((bound, BoundPath(path.to_path_buf())))
}

/// Connects a stream to the socket at `path` and says so under `-m`.
async fn connect_to(path: &Path, shown: &str, cx: &AsyncCtx) -> Result<UnixStream, ElementError> {
    let s = UnixStream::connect(path)
        .await
        .map_err(|e| net_error(format!("cannot connect to socket {shown}"), e))?;
    cx.message(format_args!("connected to {shown}"));
    Ok(s)
}

/// Receives one datagram into a slot of `cap` bytes; longer ones are cut and counted.
async fn recv_datagram(
    socket: &UnixDatagram,
    cx: &mut AsyncCtx,
    cap: usize,
    path: &Path,
) -> Result<Buffer, ElementError> {
    let mut slot = cx.loan().await?;
    let cap = slot.capacity().min(cap);
    let data = &mut slot.as_mut_slice()[..cap];
    let (n, real) = socket
        .async_io(Interest::READABLE, || {
            super::recv_datagram_into(socket.as_fd(), &mut *data)
        })
        .await
        .map_err(|e| net_error(format!("receiving on {}", path.display()), e))?;
    super::note_truncation(cx, n, real, format_args!("blocksize {cap}"));
    let mut buf = slot.freeze(n);
    buf.meta.flags = BufferFlags::MARKER;
    Ok(buf)
}

fn socket_path(p: &Props) -> Result<PathBuf, ElementError> {
    Ok(PathBuf::from(p.string("socket-path")?.unwrap_or_default()))
}

fn datagram(p: &Props) -> Result<bool, ElementError> {
    Ok(p.nick("socket-type")? == "datagram")
}

// --- unixsrc -----------------------------------------------------------------------------------

pub(crate) static UNIXSRC: Factory = Factory {
    name: "unixsrc",
    aliases: &["asyncunixsrc"],
    klass: Klass::Source,
    summary: "Reads a Unix domain socket, stream or datagram",
    doc: "Stream (default): creates the socket at `socket-path`, accepts one peer and reads it \
          until it closes, which is end of stream (`listen=false` connects to a socket the peer \
          created instead). Datagram: binds `socket-path` and makes each datagram a buffer; \
          datagrams longer than `blocksize` are cut and counted as truncated. The socket file \
          is removed at the end; a stale one left by a dead process is replaced.",
    pads: Pads::SOURCE,
    props: basesrc_props![
        SOCKET_PATH,
        SOCKET_TYPE,
        PropSpec::bool(
            "listen",
            true,
            "Create the socket and wait for the peer (stream: false connects to the peer's socket)"
        ),
        PropSpec::uint(
            "blocksize",
            DEFAULT_BLOCKSIZE,
            0,
            u32::MAX as u64,
            "Bytes to read per buffer (0 = default); with datagrams, the longest datagram kept whole"
        ),
        PropSpec::bool(
            "close-is-error",
            false,
            "Fail when the peer closes the stream, instead of ending it"
        ),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        let datagram = datagram(p)?;
        let listen = p.bool("listen")?;
        if datagram && !listen {
            return Err(ElementError::Config(
                "a datagram unixsrc binds its socket: listen=false is for streams".into(),
            ));
        }
        let path = socket_path(p)?;
        Ok(ElementImpl::AsyncSource(Box::new(UnixSrc {
            shown: path.display().to_string(),
            path,
            datagram,
            listen,
            blocksize: blocksize(p)?,
            close_is_error: p.bool("close-is-error")?,
            stamper: Stamper::new(p)?,
            conn: SrcConn::Idle,
            _bound: None,
        })))
    },
};

/// What the source reads from, as it progresses.
enum SrcConn {
    Idle,
    Listening(UnixListener),
    Stream(UnixStream),
    Datagram(UnixDatagram),
    Ended,
}

struct UnixSrc {
    path: PathBuf,
    /// The path as errors and messages show it, made once.
    shown: String,
    datagram: bool,
    listen: bool,
    blocksize: usize,
    close_is_error: bool,
    stamper: Stamper,
    conn: SrcConn,
    _bound: Option<BoundPath>,
}

impl AsyncSource for UnixSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(PoolRequest {
            slot_size: self.blocksize,
            slots: 0,
        })
    }

    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let shown = &self.shown;
        self.conn = if self.datagram {
            let (s, bound) = bind_claimed(&self.path, shown, "bind", |p| UnixDatagram::bind(p))?;
            self._bound = Some(bound);
            cx.message(format_args!("receiving datagrams on {shown}"));
            SrcConn::Datagram(s)
        } else if self.listen {
            let (l, bound) =
                bind_claimed(&self.path, shown, "listen on", |p| UnixListener::bind(p))?;
            self._bound = Some(bound);
            cx.message(format_args!("listening on {shown}"));
            SrcConn::Listening(l)
        } else {
            SrcConn::Stream(connect_to(&self.path, shown, cx).await?)
        };
        Ok(())
    }

    async fn produce(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        if self.stamper.done() {
            return Ok(None);
        }
        let shown = &self.shown;
        if let SrcConn::Listening(l) = &self.conn {
            let (s, _) = l
                .accept()
                .await
                .map_err(|e| net_error(format!("accepting on {shown}"), e))?;
            cx.message(format_args!("a peer connected to {shown}"));
            self.conn = SrcConn::Stream(s);
        }
        let got = match &mut self.conn {
            SrcConn::Stream(s) => read_stream(s, cx, self.blocksize, shown).await?,
            SrcConn::Datagram(s) => Some(recv_datagram(s, cx, self.blocksize, &self.path).await?),
            SrcConn::Ended => return Ok(None),
            SrcConn::Idle | SrcConn::Listening(_) => unreachable!("start ran, accept done"),
        };
        match got {
            Some(mut buf) => {
                self.stamper.stamp(&mut buf, || cx.running_time_ns());
                Ok(Some(buf))
            }
            None if self.close_is_error => Err(closed_early(
                &format!("the peer on {shown}"),
                self.stamper.offset,
            )),
            None => {
                cx.message(format_args!("the peer on {shown} closed: end of stream"));
                self.conn = SrcConn::Ended;
                Ok(None)
            }
        }
    }
}

// --- unixsink ----------------------------------------------------------------------------------

pub(crate) static UNIXSINK: Factory = Factory {
    name: "unixsink",
    aliases: &["asyncunixsink"],
    klass: Klass::Sink,
    summary: "Writes to a Unix domain socket, stream or datagram",
    doc: "Stream (default): connects to the socket at `socket-path` and writes every buffer; at \
          end of stream it closes its side, which the reader sees as end of stream \
          (`listen=true` creates the socket and waits for one reader instead). Datagram: sends \
          each buffer as one datagram to `socket-path`; a reader that falls behind holds the \
          pipeline back, nothing is dropped. A peer that goes away mid-stream is an error.",
    pads: Pads::SINK,
    props: basesink_props![
        SOCKET_PATH,
        SOCKET_TYPE,
        PropSpec::bool(
            "listen",
            false,
            "Create the socket and wait for one reader, instead of connecting (stream only)"
        ),
        PropSpec::bool("sync", false, "Sync on the clock").ignored(super::NO_CLOCK),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        let datagram = datagram(p)?;
        let listen = p.bool("listen")?;
        if datagram && listen {
            return Err(ElementError::Config(
                "a datagram unixsink sends to the reader's socket: listen=true is for streams"
                    .into(),
            ));
        }
        let path = socket_path(p)?;
        Ok(ElementImpl::AsyncSink(Box::new(UnixSink {
            peer: format!("the peer on {}", path.display()),
            shown: path.display().to_string(),
            path,
            datagram,
            listen,
            conn: SinkConn::Idle,
            written: 0,
            _bound: None,
        })))
    },
};

enum SinkConn {
    Idle,
    Stream(UnixStream),
    Datagram(UnixDatagram),
}

struct UnixSink {
    path: PathBuf,
    /// The path as errors and messages show it, and the peer as write errors name it: made
    /// once, not per buffer.
    shown: String,
    peer: String,
    datagram: bool,
    listen: bool,
    conn: SinkConn,
    written: u64,
    _bound: Option<BoundPath>,
}

impl AsyncSink for UnixSink {
    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let shown = &self.shown;
        self.conn = if self.datagram {
            let s =
                UnixDatagram::unbound().map_err(|e| net_error("creating a datagram socket", e))?;
            s.connect(&self.path)
                .map_err(|e| net_error(format!("cannot connect to socket {shown}"), e))?;
            cx.message(format_args!("sending datagrams to {shown}"));
            SinkConn::Datagram(s)
        } else if self.listen {
            let (l, bound) =
                bind_claimed(&self.path, shown, "listen on", |p| UnixListener::bind(p))?;
            self._bound = Some(bound);
            cx.message(format_args!("waiting for a reader on {shown}"));
            let (s, _) = l
                .accept()
                .await
                .map_err(|e| net_error(format!("accepting on {shown}"), e))?;
            cx.message(format_args!("a reader connected to {shown}"));
            SinkConn::Stream(s)
        } else {
            SinkConn::Stream(connect_to(&self.path, shown, cx).await?)
        };
        Ok(())
    }

    async fn render(&mut self, buf: Buffer, _cx: &mut AsyncCtx) -> Result<SinkFlow, ElementError> {
        let shown = &self.shown;
        match &mut self.conn {
            SinkConn::Stream(s) => {
                write_stream(s, buf.data(), &self.peer, &mut self.written).await?
            }
            SinkConn::Datagram(s) => {
                s.send(buf.data()).await.map_err(|e| {
                    if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) {
                        ElementError::Failed(format!(
                            "a buffer of {} bytes is too large for one datagram to {shown}",
                            buf.len()
                        ))
                    } else {
                        net_error(format!("sending to {shown}"), e)
                    }
                })?;
                self.written += buf.len() as u64;
            }
            SinkConn::Idle => unreachable!("start ran"),
        }
        Ok(SinkFlow::Continue)
    }

    async fn finish(&mut self, _cx: &mut AsyncCtx) -> Result<(), ElementError> {
        if let SinkConn::Stream(s) = &mut self.conn {
            s.shutdown().await.map_err(|e| {
                net_error(format!("closing the stream to {}", self.path.display()), e)
            })?;
        }
        Ok(())
    }
}
