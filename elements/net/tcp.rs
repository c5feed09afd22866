//! TCP: `tcpserversrc` and `tcpclientsrc` read one connection; `tcpclientsink` writes one;
//! `tcpserversink` serves every client that connects, each through its own bounded queue.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};

use super::{
    basesink_props, basesrc_props, blocksize, closed_early, net_error, port, read_stream, resolve,
    write_stream, Stamper, BLOCKSIZE, FORMATS,
};
use crate::element::prelude::*;

/// Listens on the first address `host` resolves to (only that one: never a wildcard the user
/// did not ask for).
pub(super) async fn listen(
    host: &str,
    port: u16,
) -> Result<(TcpListener, SocketAddr), ElementError> {
    let mut last = None;
    for addr in resolve(host, port).await? {
        match TcpListener::bind(addr).await {
            Ok(l) => {
                let local = l
                    .local_addr()
                    .map_err(|e| net_error(format!("listening on {addr}"), e))?;
                return Ok((l, local));
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("resolve returns at least one address");
    Err(net_error(
        format!("cannot listen on host {host} port {port}"),
        e,
    ))
}

/// Connects to the first address of `host` that accepts, each attempt bounded by `timeout`.
async fn connect(
    host: &str,
    port: u16,
    timeout: Option<Duration>,
) -> Result<(TcpStream, SocketAddr), ElementError> {
    let mut last = None;
    for addr in resolve(host, port).await? {
        let attempt = TcpStream::connect(addr);
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, attempt).await.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {}s (timeout)", t.as_secs()),
                ))
            }),
            None => attempt.await,
        };
        match result {
            Ok(s) => return Ok((s, addr)),
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("resolve returns at least one address");
    Err(net_error(
        format!("cannot connect to host {host} port {port}"),
        e,
    ))
}

/// Reads the connection of a TCP source; shared by the server and the client.
struct TcpReader {
    blocksize: usize,
    close_is_error: bool,
    /// gst's `timeout` in seconds (tcpclientsrc): no data for this long is an error.
    timeout: Option<Duration>,
    stamper: Stamper,
    stream: Option<(TcpStream, String)>,
}

impl TcpReader {
    fn new(p: &Props, timeout: Option<Duration>) -> Result<TcpReader, ElementError> {
        Ok(TcpReader {
            blocksize: blocksize(p)?,
            close_is_error: p.bool("close-is-error")?,
            timeout,
            stamper: Stamper::new(p)?,
            stream: None,
        })
    }

    fn pool_request(&self) -> PoolRequest {
        PoolRequest {
            slot_size: self.blocksize,
            slots: 0,
        }
    }

    async fn read(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        if self.stamper.done() {
            return Ok(None);
        }
        let Some((stream, peer)) = self.stream.as_mut() else {
            return Ok(None);
        };
        let read = read_stream(stream, cx, self.blocksize, peer);
        let got = match self.timeout {
            Some(t) => tokio::time::timeout(t, read).await.map_err(|_| {
                ElementError::Failed(format!(
                    "no data from {peer} for {}s (timeout)",
                    t.as_secs()
                ))
            })??,
            None => read.await?,
        };
        match got {
            Some(mut buf) => {
                self.stamper.stamp(&mut buf, || cx.running_time_ns());
                Ok(Some(buf))
            }
            None if self.close_is_error => Err(closed_early(peer, self.stamper.offset)),
            None => {
                cx.message(format_args!("{peer} closed the connection: end of stream"));
                Ok(None)
            }
        }
    }
}

/// The stream sources' `close-is-error`: a peer that closes ends the stream quietly unless set.
const CLOSE_IS_ERROR: PropSpec = PropSpec::bool(
    "close-is-error",
    false,
    "Fail when the peer closes the connection, instead of ending the stream (for streams that must not end)",
);

/// A server's `port`: 0 picks a free one.
const LISTEN_PORT: PropSpec = PropSpec::int(
    "port",
    4953,
    0,
    65535,
    "The port to listen on (0 = pick a free port and report it as current-port)",
);

/// The port a server is bound to, once it is (read-only).
const CURRENT_PORT: PropSpec = PropSpec::int(
    "current-port",
    0,
    0,
    65535,
    "The port the socket is bound to",
)
.read_only();

/// A server's listener on `host`:`port`, saying which port it got when asked for any (0) and,
/// under `-m`, that it listens.
async fn open_listener(
    host: &str,
    port: u16,
    cx: &AsyncCtx,
) -> Result<(TcpListener, SocketAddr), ElementError> {
    let (listener, local) = listen(host, port).await?;
    if port == 0 {
        cx.report_chosen("current-port", local.port());
    }
    cx.message(format_args!("listening on {local}"));
    Ok((listener, local))
}

// --- tcpserversrc ------------------------------------------------------------------------------

pub(crate) static TCPSERVERSRC: Factory = Factory {
    name: "tcpserversrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Accepts one TCP connection and reads it",
    doc: "Listens on `host`:`port` (the first address `host` resolves to, nothing wider), accepts \
          one client and reads what it sends; the client closing the connection is end of \
          stream. `port=0` picks a free port and prints `NAME: current-port = N` on stderr (even \
          with -q). Runs in the async domain: a Ctrl-C ends a wait in accept or read at once. \
          Reads up to 128 KiB per buffer (gst: 4 KiB).",
    pads: Pads::SOURCE,
    props: basesrc_props![
        PropSpec::string(
            "host",
            Some("localhost"),
            "The hostname or address to listen on"
        ),
        LISTEN_PORT,
        CURRENT_PORT,
        BLOCKSIZE,
        CLOSE_IS_ERROR,
        PropSpec::string("stats", None, "Statistics (parallax: see --stats)").read_only(),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        Ok(ElementImpl::AsyncSource(Box::new(TcpServerSrc {
            host: p.string("host")?.unwrap_or("localhost").to_owned(),
            port: port(p, "port")?,
            listener: None,
            reader: TcpReader::new(p, None)?,
        })))
    },
};

/// A listener until the client arrives, then its connection.
struct TcpServerSrc {
    host: String,
    port: u16,
    listener: Option<(TcpListener, SocketAddr)>,
    reader: TcpReader,
}

impl AsyncSource for TcpServerSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(self.reader.pool_request())
    }

    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        self.listener = Some(open_listener(&self.host, self.port, cx).await?);
        Ok(())
    }

    async fn produce(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        if self.reader.stream.is_none() {
            let (listener, local) = self.listener.as_ref().expect("start ran");
            let (stream, peer) = listener
                .accept()
                .await
                .map_err(|e| net_error(format!("accepting a connection on {local}"), e))?;
            cx.message(format_args!("{peer} connected"));
            // One client, as gst: the port is free again for whoever needs it.
            self.listener = None;
            self.reader.stream = Some((stream, peer.to_string()));
        }
        self.reader.read(cx).await
    }
}

// --- tcpclientsrc ------------------------------------------------------------------------------

pub(crate) static TCPCLIENTSRC: Factory = Factory {
    name: "tcpclientsrc",
    aliases: &["tcpsrc", "asynctcpsrc"],
    klass: Klass::Source,
    summary: "Connects to a TCP server and reads what it sends",
    doc: "Connects to `host`:`port` (trying each address the name resolves to) and reads until \
          the server closes the connection, which is end of stream. A refused connection or an \
          unknown host is an error that names both. `timeout` bounds the connect and every wait \
          for data. Reads up to 128 KiB per buffer (gst: 4 KiB).",
    pads: Pads::SOURCE,
    props: basesrc_props![
        PropSpec::string("host", Some("localhost"), "The host to connect to"),
        PropSpec::int("port", 4953, 0, 65535, "The port to connect to"),
        PropSpec::uint(
            "timeout",
            0,
            0,
            u32::MAX as u64,
            "Seconds to wait for the connection or for data before failing (0 = no timeout)"
        ),
        BLOCKSIZE,
        CLOSE_IS_ERROR,
        PropSpec::string("stats", None, "Statistics (parallax: see --stats)").read_only(),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        let timeout = match p.uint("timeout")? {
            0 => None,
            s => Some(Duration::from_secs(s)),
        };
        Ok(ElementImpl::AsyncSource(Box::new(TcpClientSrc {
            host: p.string("host")?.unwrap_or("localhost").to_owned(),
            port: port(p, "port")?,
            reader: TcpReader::new(p, timeout)?,
        })))
    },
};

/// One outgoing connection.
struct TcpClientSrc {
    host: String,
    port: u16,
    reader: TcpReader,
}

impl AsyncSource for TcpClientSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(self.reader.pool_request())
    }

    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let (stream, peer) = connect(&self.host, self.port, self.reader.timeout).await?;
        cx.message(format_args!("connected to {peer}"));
        self.reader.stream = Some((stream, peer.to_string()));
        Ok(())
    }

    async fn produce(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        self.reader.read(cx).await
    }
}

// --- tcpclientsink -----------------------------------------------------------------------------

pub(crate) static TCPCLIENTSINK: Factory = Factory {
    name: "tcpclientsink",
    aliases: &["tcpsink", "asynctcpsink"],
    klass: Klass::Sink,
    summary: "Connects to a TCP server and sends it every buffer",
    doc: "Connects to `host`:`port` before the first buffer (a refused connection or an unknown \
          host is an error that names both) and writes every buffer in order; at end of stream \
          it closes its side, so the server sees end of stream. A server that stops reading \
          holds the pipeline back (memory stays bounded); one that closes the connection early \
          is an error that says how many bytes were sent.",
    pads: Pads::SINK,
    props: basesink_props![
        PropSpec::string("host", Some("localhost"), "The host to connect to"),
        PropSpec::int("port", 4953, 0, 65535, "The port to connect to"),
        PropSpec::bool("sync", true, "Sync on the clock").ignored(super::NO_CLOCK),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        Ok(ElementImpl::AsyncSink(Box::new(TcpClientSink {
            host: p.string("host")?.unwrap_or("localhost").to_owned(),
            port: port(p, "port")?,
            stream: None,
            written: 0,
        })))
    },
};

/// One outgoing connection.
struct TcpClientSink {
    host: String,
    port: u16,
    stream: Option<(TcpStream, String)>,
    written: u64,
}

impl AsyncSink for TcpClientSink {
    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let (stream, peer) = connect(&self.host, self.port, None).await?;
        cx.message(format_args!("connected to {peer}"));
        self.stream = Some((stream, peer.to_string()));
        Ok(())
    }

    async fn render(&mut self, buf: Buffer, _cx: &mut AsyncCtx) -> Result<SinkFlow, ElementError> {
        let (stream, peer) = self.stream.as_mut().expect("start ran");
        write_stream(stream, buf.data(), peer, &mut self.written).await?;
        Ok(SinkFlow::Continue)
    }

    async fn finish(&mut self, _cx: &mut AsyncCtx) -> Result<(), ElementError> {
        if let Some((stream, peer)) = self.stream.as_mut() {
            stream
                .shutdown()
                .await
                .map_err(|e| net_error(format!("closing the connection to {peer}"), e))?;
        }
        Ok(())
    }
}

// --- tcpserversink -----------------------------------------------------------------------------

const RECOVER_POLICIES: &[EnumValue] = &[
    EnumValue {
        nick: "none",
        value: 0,
        doc: "Do not try to recover",
    },
    EnumValue {
        nick: "latest",
        value: 1,
        doc: "Resync client to latest buffer",
    },
    EnumValue {
        nick: "soft-limit",
        value: 2,
        doc: "Resync client to soft limit",
    },
    EnumValue {
        nick: "keyframe",
        value: 3,
        doc: "Resync client to most recent keyframe",
    },
];

const SYNC_METHODS: &[EnumValue] = &[
    EnumValue {
        nick: "latest",
        value: 0,
        doc: "Serve starting from the latest buffer",
    },
    EnumValue {
        nick: "next-keyframe",
        value: 1,
        doc: "Serve starting from the next keyframe",
    },
    EnumValue {
        nick: "latest-keyframe",
        value: 2,
        doc: "Serve everything since the latest keyframe (burst)",
    },
    EnumValue {
        nick: "burst",
        value: 3,
        doc: "Serve burst-value data to client",
    },
    EnumValue {
        nick: "burst-keyframe",
        value: 4,
        doc: "Serve burst-value data starting on a keyframe",
    },
    EnumValue {
        nick: "burst-with-keyframe",
        value: 5,
        doc: "Serve burst-value data preferably starting on a keyframe",
    },
];

/// Buffers queued per client when no limit says to drop slow clients: a full queue then holds
/// the pipeline back until the slowest client catches up.
const CLIENT_QUEUE: usize = 16;
/// Why the burst and keyframe machinery of gst's multihandlesink does nothing here.
const NO_BURST: &str = "parallax buffers carry no keyframe flags: a client gets every buffer \
                        rendered after it connected (gst's sync-method=latest)";

pub(crate) static TCPSERVERSINK: Factory = Factory {
    name: "tcpserversink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Serves every buffer to every connected TCP client",
    doc: "Listens on `host`:`port` and sends each buffer to every client connected at that moment, \
          each through its own queue (the buffer is shared, never copied). A slow client: with \
          `buffers-max` (or `units-max`) set, a client that falls that far behind is dropped; \
          with no limit (the default) nobody is dropped and the slowest client holds the \
          pipeline back, so memory stays bounded (gst would queue without limit). \
          `wait-for-connection=true` holds the stream until a client is connected. At end of \
          stream every client gets what is queued for it, then the connection closes. \
          `port=0` picks a free port and prints `NAME: current-port = N` on stderr.",
    pads: Pads::SINK,
    props: basesink_props![
        PropSpec::string("host", Some("localhost"), "The host/IP to listen on"),
        LISTEN_PORT,
        CURRENT_PORT,
        PropSpec::bool(
            "wait-for-connection",
            false,
            "Hold the stream while no client is connected, instead of sending to nobody"
        ),
        PropSpec::int(
            "buffers-max",
            -1,
            -1,
            i32::MAX as i64,
            "Drop a client with this many buffers waiting for it (-1 = drop nobody: the slowest client holds the pipeline back)"
        ),
        PropSpec::int(
            "units-max",
            -1,
            -1,
            i64::MAX,
            "Drop a client with this many units (unit-format) waiting for it (-1 = no limit)"
        ),
        PropSpec::enumeration(
            "unit-format",
            "buffers",
            FORMATS,
            "The unit of units-max: buffers or bytes"
        ),
        PropSpec::time(
            "timeout",
            0,
            0,
            i64::MAX,
            "Drop a client whose connection takes no data for this long (0 = no limit)"
        ),
        PropSpec::int(
            "qos-dscp",
            -1,
            -1,
            63,
            "Quality of Service, differentiated services code point (-1 default)"
        ),
        PropSpec::int(
            "buffers-min",
            -1,
            -1,
            i32::MAX as i64,
            "min number of buffers to queue (-1 = as few as possible)"
        )
        .ignored(NO_BURST),
        PropSpec::uint(
            "buffers-queued",
            0,
            0,
            u32::MAX as u64,
            "Number of buffers currently queued"
        )
        .read_only(),
        PropSpec::int(
            "buffers-soft-max",
            -1,
            -1,
            i32::MAX as i64,
            "Recover client when going over this limit (-1 = no limit)"
        )
        .ignored("no recovery: a client is served in full or dropped (buffers-max)"),
        PropSpec::enumeration(
            "burst-format",
            "undefined",
            FORMATS,
            "The format of the burst units"
        )
        .ignored(NO_BURST),
        PropSpec::uint(
            "burst-value",
            0,
            0,
            u64::MAX,
            "The amount of burst expressed in burst-format"
        )
        .ignored(NO_BURST),
        PropSpec::int(
            "bytes-min",
            -1,
            -1,
            i32::MAX as i64,
            "min number of bytes to queue (-1 = as little as possible)"
        )
        .ignored(NO_BURST),
        PropSpec::uint(
            "bytes-served",
            0,
            0,
            u64::MAX,
            "Total number of bytes sent to all clients"
        )
        .read_only(),
        PropSpec::uint(
            "bytes-to-serve",
            0,
            0,
            u64::MAX,
            "Number of bytes received to serve to clients"
        )
        .read_only(),
        PropSpec::uint(
            "num-handles",
            0,
            0,
            u32::MAX as u64,
            "The current number of client handles"
        )
        .read_only(),
        PropSpec::enumeration(
            "recover-policy",
            "none",
            RECOVER_POLICIES,
            "How to recover when client reaches the soft max"
        )
        .ignored("no recovery: a client is served in full or dropped (buffers-max)"),
        PropSpec::bool(
            "resend-streamheader",
            true,
            "Resend the streamheader if it changes in the caps"
        )
        .ignored("parallax caps carry no stream headers"),
        PropSpec::bool(
            "send-dispatched",
            false,
            "If GstNetworkMessageDispatched events should be pushed"
        )
        .ignored(super::NO_SIGNALS),
        PropSpec::bool(
            "send-messages",
            false,
            "If GstNetworkMessage events should be pushed"
        )
        .ignored(super::NO_SIGNALS),
        PropSpec::enumeration(
            "sync-method",
            "latest",
            SYNC_METHODS,
            "How to sync new clients to the stream"
        )
        .ignored(NO_BURST),
        PropSpec::time(
            "time-min",
            -1,
            -1,
            i64::MAX,
            "min amount of time to queue (-1 = as little as possible)"
        )
        .ignored(NO_BURST),
        PropSpec::int(
            "units-soft-max",
            -1,
            -1,
            i64::MAX,
            "Recover client when going over this limit (-1 = no limit)"
        )
        .ignored("no recovery: a client is served in full or dropped (units-max)"),
        PropSpec::bool("sync", true, "Sync on the clock").ignored(super::NO_CLOCK),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        let mut max_buffers = usize::try_from(p.int("buffers-max")?).ok();
        let mut max_bytes = None;
        if let Ok(units) = u64::try_from(p.int("units-max")?) {
            match p.nick("unit-format")? {
                "buffers" => {
                    let units = usize::try_from(units).unwrap_or(usize::MAX);
                    max_buffers = Some(max_buffers.map_or(units, |b| b.min(units)));
                }
                "bytes" => max_bytes = Some(units),
                other => {
                    return Err(ElementError::Config(format!(
                        "unit-format={other} is not supported here: use buffers or bytes"
                    )))
                }
            }
        }
        if max_buffers == Some(0) {
            return Err(ElementError::Config(
                "buffers-max=0 would drop every client at its first buffer".into(),
            ));
        }
        let timeout = match p.time("timeout")? {
            0 => None,
            ns => Some(Duration::from_nanos(ns as u64)),
        };
        let dscp = u8::try_from(p.int("qos-dscp")?).ok();
        Ok(ElementImpl::AsyncSink(Box::new(TcpServerSink {
            host: p.string("host")?.unwrap_or("localhost").to_owned(),
            port: port(p, "port")?,
            wait: p.bool("wait-for-connection")?,
            max_buffers,
            max_bytes,
            timeout,
            dscp,
            listener: None,
            clients: Vec::new(),
            had_client: false,
        })))
    },
};

/// A listener and the clients it accepted.
struct TcpServerSink {
    host: String,
    port: u16,
    wait: bool,
    /// Drop a client with this many buffers queued.
    max_buffers: Option<usize>,
    /// Drop a client with this many bytes queued.
    max_bytes: Option<u64>,
    /// Drop a client whose socket takes nothing for this long.
    timeout: Option<Duration>,
    dscp: Option<u8>,
    listener: Option<(TcpListener, SocketAddr)>,
    clients: Vec<Client>,
    /// Whether any client ever connected.
    had_client: bool,
}

/// One connected client: its queue and the task that writes it out.
struct Client {
    peer: SocketAddr,
    /// The connection, as a second handle: a client dropped by a limit gets a reset through
    /// it, not the clean close that would pass for the end of the stream.
    socket: Option<std::os::fd::OwnedFd>,
    tx: tokio::sync::mpsc::Sender<Buffer>,
    queued_bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Result<u64, ElementError>>,
}

impl TcpServerSink {
    /// Takes in a client: a queue and a writer task of its own.
    fn add_client(&mut self, stream: TcpStream, peer: SocketAddr, cx: &AsyncCtx) {
        if let Some(dscp) = self.dscp {
            if let Err(e) = rustix::net::sockopt::set_ip_tos(&stream, dscp << 2) {
                cx.message(format_args!("{peer}: cannot set qos-dscp: {e}"));
            }
        }
        let socket = std::os::fd::AsFd::as_fd(&stream).try_clone_to_owned().ok();
        let capacity = self.max_buffers.unwrap_or(CLIENT_QUEUE);
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        let queued_bytes = Arc::new(AtomicU64::new(0));
        // The writer runs on the same runtime; the sink keeps its handle and aborts it when
        // the client is dropped.
        let task = tokio::spawn(serve_client(
            stream,
            peer,
            rx,
            Arc::clone(&queued_bytes),
            self.timeout,
        ));
        cx.message(format_args!("client {peer} connected"));
        self.had_client = true;
        self.clients.push(Client {
            peer,
            socket,
            tx,
            queued_bytes,
            task,
        });
    }

    /// Accepts every client waiting in the listen backlog, without waiting for more.
    async fn accept_waiting(&mut self, cx: &AsyncCtx) {
        loop {
            let Some((listener, _)) = self.listener.as_ref() else {
                return;
            };
            let polled = std::future::poll_fn(|c| Poll::Ready(listener.poll_accept(c))).await;
            match polled {
                Poll::Ready(Ok((stream, peer))) => self.add_client(stream, peer, cx),
                Poll::Ready(Err(e)) => {
                    cx.message(format_args!("accepting a client failed: {e}"));
                    return;
                }
                Poll::Pending => return,
            }
        }
    }

    /// Removes client `i`, saying why.
    async fn remove(&mut self, i: usize, why: Option<String>, cx: &AsyncCtx) {
        let client = self.clients.swap_remove(i);
        let peer = client.peer;
        match why {
            Some(why) => {
                // A reset (linger 0 at the last close), so the client sees an error, not an
                // end of stream after a part of it (issue 21).
                if let Some(socket) = &client.socket {
                    let _ = rustix::net::sockopt::set_socket_linger(socket, Some(Duration::ZERO));
                }
                client.task.abort();
                cx.warn(format_args!("client {peer} dropped: {why}"));
            }
            None => match client.task.await {
                Ok(Ok(sent)) => cx.message(format_args!("client {peer} left after {sent} bytes")),
                Ok(Err(e)) => cx.message(format_args!("client {peer} left: {e}")),
                Err(e) => cx.message(format_args!("client {peer} left: {e}")),
            },
        }
    }
}

impl TcpServerSink {
    /// Waits for a client (`wait-for-connection`): `false` when the run ends meanwhile.
    async fn wait_for_client(&mut self, cx: &AsyncCtx) -> Result<bool, ElementError> {
        let (listener, local) = self.listener.as_ref().expect("start ran");
        cx.message(format_args!("waiting for a client on {local}"));
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = accepted
                    .map_err(|e| net_error(format!("accepting a client on {local}"), e))?;
                self.add_client(stream, peer, cx);
                Ok(true)
            }
            () = cx.drain_or_stop() => Ok(false),
        }
    }
}

/// A client's queue is full: lets the writers run (this runtime has one thread, and the sink
/// takes buffers from its input without waiting, so a writer may not have had a turn since
/// the queue filled; it then writes until its socket takes no more) and tries again. Only a
/// client whose queue is still full after its writer had that turn has fallen behind:
/// `Err(true)`. A fast reader with buffers-max below the pool's size was dropped at once
/// before (issue 21). `Err(false)`: the client is gone.
async fn give_way(tx: &tokio::sync::mpsc::Sender<Buffer>, buf: Buffer) -> Result<(), bool> {
    tokio::task::yield_now().await;
    match tx.try_send(buf) {
        Ok(()) => Ok(()),
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Err(false),
        Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => Err(true),
    }
}

/// Writes a client's queue to its socket until the queue closes (end of stream), then closes
/// the connection. Returns the bytes sent.
async fn serve_client(
    mut stream: TcpStream,
    peer: SocketAddr,
    mut rx: tokio::sync::mpsc::Receiver<Buffer>,
    queued_bytes: Arc<AtomicU64>,
    timeout: Option<Duration>,
) -> Result<u64, ElementError> {
    let peer = peer.to_string();
    let mut sent = 0;
    while let Some(buf) = rx.recv().await {
        let write = write_stream(&mut stream, buf.data(), &peer, &mut sent);
        match timeout {
            Some(t) => tokio::time::timeout(t, write).await.map_err(|_| {
                ElementError::Failed(format!("took no data for {}ms (timeout)", t.as_millis()))
            })??,
            None => write.await?,
        }
        queued_bytes.fetch_sub(buf.len() as u64, Ordering::Relaxed);
    }
    stream
        .shutdown()
        .await
        .map_err(|e| net_error(format!("closing the connection to {peer}"), e))?;
    Ok(sent)
}

impl AsyncSink for TcpServerSink {
    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        self.listener = Some(open_listener(&self.host, self.port, cx).await?);
        Ok(())
    }

    async fn render(&mut self, buf: Buffer, cx: &mut AsyncCtx) -> Result<SinkFlow, ElementError> {
        self.accept_waiting(cx).await;
        if self.wait && self.clients.is_empty() && !self.wait_for_client(cx).await? {
            return Ok(SinkFlow::Done);
        }
        let len = buf.len() as u64;
        let mut i = 0;
        while i < self.clients.len() {
            let client = &self.clients[i];
            // A client with nothing queued always takes the next buffer, however large.
            let over = |queued: u64| {
                self.max_bytes
                    .is_some_and(|max| queued > 0 && queued + len > max)
            };
            let mut queued = client.queued_bytes.load(Ordering::Relaxed);
            if over(queued) {
                // Its writer may just not have had a turn yet (see `give_way`).
                tokio::task::yield_now().await;
                queued = client.queued_bytes.load(Ordering::Relaxed);
            }
            if over(queued) {
                let why = format!("{queued} bytes waiting for it (units-max)");
                self.remove(i, Some(why), cx).await;
                continue;
            }
            client.queued_bytes.fetch_add(len, Ordering::Relaxed);
            let sent = match client.tx.try_send(buf.clone()) {
                Ok(()) => Ok(()),
                Err(tokio::sync::mpsc::error::TrySendError::Full(b)) => match self.max_buffers {
                    Some(max) => give_way(&client.tx, b).await.map_err(|full| {
                        full.then(|| format!("{max} buffers waiting for it (buffers-max)"))
                    }),
                    // No limit: the slowest client sets the pace.
                    None => client.tx.send(b).await.map_err(|_| None),
                },
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Err(None),
            };
            match sent {
                Ok(()) => i += 1,
                Err(why) => self.remove(i, why, cx).await,
            }
        }
        Ok(SinkFlow::Continue)
    }

    async fn finish(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        // An empty stream still waits for its first client, which then gets the end of stream
        // rather than a refused connection (issue 21); Ctrl-C ends the wait.
        if self.wait && !self.had_client && self.listener.is_some() {
            self.accept_waiting(cx).await;
            if self.clients.is_empty() {
                self.wait_for_client(cx).await?;
            }
        }
        self.listener = None;
        for client in std::mem::take(&mut self.clients) {
            // Closing the queue lets the writer send what is left, then close.
            drop(client.tx);
            match client.task.await {
                Ok(Ok(sent)) => cx.message(format_args!(
                    "client {} served {sent} bytes, closed",
                    client.peer
                )),
                Ok(Err(e)) => cx.message(format_args!("client {} left: {e}", client.peer)),
                Err(e) => cx.message(format_args!("client {} left: {e}", client.peer)),
            }
        }
        Ok(())
    }
}

impl Drop for TcpServerSink {
    fn drop(&mut self) {
        for c in &self.clients {
            c.task.abort();
        }
    }
}
