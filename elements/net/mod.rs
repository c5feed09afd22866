//! Network elements: TCP (`tcpserversrc`, `tcpclientsrc`, `tcpserversink`, `tcpclientsink`),
//! UDP (`udpsrc`, `udpsink`, `multiudpsink`, `udpmulticastsrc`, `udpmulticastsink`) and Unix
//! domain sockets (`unixsrc`, `unixsink`, stream and datagram); HTTP (`httpsrc`, `httpsink`),
//! WebSocket (`websocketsrc`, `websocketsink`) and Zenoh, each behind its feature, with TLS for
//! `https://` and `wss://` in `tls`.
//!
//! They are the async domain's elements: they implement [`AsyncSource`] / [`AsyncSink`], so the
//! planner runs them as tasks on the pipeline's tokio runtime and no socket wait ever blocks a
//! thread that fused elements run on. Sockets are opened in `start` (never in `build`, so that
//! building with defaults touches no port) and bound to exactly the address asked for.
//!
//! Errors name what failed and where (`cannot connect to host 127.0.0.1 port 9: Connection
//! refused`); the executor prefixes the element's name. A peer that closes a stream mid-way is
//! end of stream for a source (an error with `close-is-error=true`) and an error for a sink.

#[cfg(feature = "http")]
mod http;
mod tcp;
#[cfg(any(feature = "http", feature = "websocket"))]
mod tls;
mod udp;
mod unix;
#[cfg(feature = "websocket")]
mod ws;
#[cfg(feature = "zenoh")]
mod zenoh;
#[cfg(feature = "zenoh")]
mod zenoh_shm;

use std::net::SocketAddr;

use crate::element::prelude::*;

use super::{blocksize, Stamper, BLOCKSIZE, DEFAULT_BLOCKSIZE};

pub(super) use super::{basesink_props, basesrc_props};
// The base-class property macros name these relative to the module that expands them.
pub(super) use super::{FORMATS, NO_CLOCK, NO_SIGNALS};

/// Received bytes fewer than this are copied out of the library's receive buffer; more are
/// kept in it (hyper's, Zenoh's) without a copy. A small piece held downstream (in a queue)
/// would keep the whole receive buffer it lies in alive, up to 64 KiB for a few bytes; a copy
/// of a few bytes costs less than that.
#[cfg(any(feature = "http", feature = "zenoh"))]
const KEEP_IN_PLACE: usize = 4096;

/// Received bytes as a buffer: `owner` itself, read in place, unless it is smaller than
/// [`KEEP_IN_PLACE`].
#[cfg(any(feature = "http", feature = "zenoh"))]
fn received<T: AsRef<[u8]> + Send + Sync + 'static>(owner: T) -> Buffer {
    let bytes = owner.as_ref();
    if bytes.len() < KEEP_IN_PLACE {
        Buffer::from_vec(bytes.to_vec())
    } else {
        Buffer::from_owner(owner)
    }
}

/// Resolves `host` for `port`; the error names both.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ElementError> {
    let found = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ElementError::Failed(format!("cannot resolve host `{host}`: {e}")))?;
    let addrs: Vec<SocketAddr> = found.collect();
    if addrs.is_empty() {
        return Err(ElementError::Failed(format!(
            "cannot resolve host `{host}`: no address found"
        )));
    }
    Ok(addrs)
}

/// An I/O error that is always an error: unlike [`ElementError::io`], a broken pipe is not a
/// quiet end here (a network sink's peer going away loses data).
fn net_error(what: impl Into<String>, source: std::io::Error) -> ElementError {
    ElementError::Io {
        what: what.into(),
        source,
    }
}

/// Reads one datagram into `data` with MSG_TRUNC: the bytes kept and the datagram's real
/// length (longer than `data` when it was cut). For a readiness callback (`async_io`).
fn recv_datagram_into(
    fd: std::os::fd::BorrowedFd<'_>,
    data: &mut [u8],
) -> std::io::Result<(usize, usize)> {
    rustix::net::recv(fd, data, rustix::net::RecvFlags::TRUNC).map_err(std::io::Error::from)
}

/// A datagram of `real` bytes was kept as `kept`: counts it as truncated and says why, naming
/// the limit (`mtu 1492`, `blocksize 4096`).
fn note_truncation(cx: &mut AsyncCtx, kept: usize, real: usize, limit: std::fmt::Arguments<'_>) {
    if real > kept {
        cx.count_truncated();
        cx.message(format_args!(
            "a datagram of {real} bytes was cut to {limit}"
        ));
    }
}

/// The `port` property as a port number (the registry checked the range).
fn port(p: &Props, name: &str) -> Result<u16, ElementError> {
    u16::try_from(p.int(name)?)
        .map_err(|_| ElementError::Config(format!("property `{name}` is not a port number")))
}

/// Reads a byte stream (TCP or Unix) into pool slots, `blocksize` bytes at most per buffer;
/// `None` when the peer closed its end. Cancel-safe: a read that is dropped consumed nothing,
/// and its slot goes back to the pool.
async fn read_stream<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut AsyncCtx,
    blocksize: usize,
    peer: &str,
) -> Result<Option<Buffer>, ElementError> {
    use tokio::io::AsyncReadExt as _;
    let mut slot = cx.loan().await?;
    let cap = slot.capacity().min(blocksize);
    let n = stream
        .read(&mut slot.as_mut_slice()[..cap])
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionReset => {
                ElementError::Failed(format!("connection reset by {peer}"))
            }
            _ => net_error(format!("reading from {peer}"), e),
        })?;
    Ok((n > 0).then(|| slot.freeze(n)))
}

/// Writes all of `data` to a stream sink's peer; a peer that went away is a clear error that
/// says how much it got.
async fn write_stream<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    data: &[u8],
    peer: &str,
    written: &mut u64,
) -> Result<(), ElementError> {
    use tokio::io::AsyncWriteExt as _;
    stream.write_all(data).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
            ElementError::Failed(format!(
                "{peer} closed the connection after {written} bytes were sent"
            ))
        }
        _ => net_error(format!("writing to {peer}"), e),
    })?;
    *written += data.len() as u64;
    Ok(())
}

/// The message for a peer that closed a stream this source was told must not end.
fn closed_early(peer: &str, bytes: u64) -> ElementError {
    ElementError::Failed(format!(
        "{peer} closed the connection after {bytes} bytes (close-is-error=true)"
    ))
}

pub(crate) const FACTORIES: &[&Factory] = &[
    &tcp::TCPSERVERSRC,
    &tcp::TCPCLIENTSRC,
    &tcp::TCPSERVERSINK,
    &tcp::TCPCLIENTSINK,
    &udp::UDPSRC,
    &udp::UDPSINK,
    &udp::MULTIUDPSINK,
    &udp::UDPMULTICASTSRC,
    &udp::UDPMULTICASTSINK,
    &unix::UNIXSRC,
    &unix::UNIXSINK,
    #[cfg(feature = "http")]
    &http::HTTPSRC,
    #[cfg(feature = "http")]
    &http::HTTPSINK,
    #[cfg(feature = "websocket")]
    &ws::WEBSOCKETSRC,
    #[cfg(feature = "websocket")]
    &ws::WEBSOCKETSINK,
    #[cfg(feature = "zenoh")]
    &zenoh::ZENOHSRC,
    #[cfg(feature = "zenoh")]
    &zenoh::ZENOHSINK,
    #[cfg(feature = "zenoh")]
    &zenoh::ZENOHQUERYABLE,
    #[cfg(feature = "zenoh")]
    &zenoh::ZENOHQUERIER,
];

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    #[test]
    fn received_bytes_are_kept_in_place_unless_small() {
        let big = bytes::Bytes::from(vec![5u8; KEEP_IN_PLACE]);
        let buf = received(big.clone());
        assert_eq!(buf.data().as_ptr(), big.as_ptr(), "no copy");
        assert_eq!(buf.data(), &big[..]);
        let small = bytes::Bytes::from(vec![6u8; KEEP_IN_PLACE - 1]);
        let buf = received(small.clone());
        assert_ne!(buf.data().as_ptr(), small.as_ptr(), "a copy");
        assert_eq!(buf.data(), &small[..]);
    }
}
