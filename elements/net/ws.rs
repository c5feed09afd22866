//! WebSocket: `websocketsrc` makes a buffer of every message it receives, `websocketsink` sends
//! every buffer as one message. Either end is a client (`location=ws://host:port/path`) or a
//! server (`port=`, accepting one client, as tcpserversrc does).
//!
//! A close frame is end of stream: the sink sends one at end of stream and waits (a few
//! seconds at most) for the peer's answer; the source answers one and ends. A peer whose
//! connection drops without a close frame is an error, since messages may have been lost.
//! Pings are answered by the protocol layer as they arrive.
//!
//! `wss://` runs over rustls (see [`super::tls`]): a client trusts what httpsrc trusts
//! (`ssl-ca-file`, `ssl-strict`), a server serves `tls-cert-file` with `tls-key-file`. A TLS
//! peer that vanishes without close_notify is the same error as a plain one.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::tcp::listen;
use super::tls::{
    server_config, ClientUrl, Io, TlsClient, SSL_CA_FILE, SSL_STRICT, TLS_CERT_FILE, TLS_KEY_FILE,
};
use super::{basesink_props, basesrc_props, net_error, port, Stamper};
use crate::element::prelude::*;

type Ws = WebSocketStream<Box<dyn Io>>;

/// How long a sink waits for the peer's answer to its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Where a WebSocket element connects or listens.
enum Endpoint {
    Client {
        url: String,
        host: String,
        port: u16,
        /// For `wss://`.
        tls: Option<TlsClient>,
    },
    Server {
        host: String,
        port: u16,
        /// For serving `wss://`.
        tls: Option<Arc<rustls::ServerConfig>>,
    },
}

impl Endpoint {
    fn from_props(p: &Props, element: &'static str) -> Result<Endpoint, ElementError> {
        match (p.string("location")?, p.is_set("port")) {
            (Some(_), true) => Err(ElementError::Config(format!(
                "{element}: give location= (to connect) or port= (to listen), not both"
            ))),
            (Some(url), false) => {
                if p.is_set("tls-cert-file") || p.is_set("tls-key-file") {
                    return Err(ElementError::Config(format!(
                        "{element}: tls-cert-file and tls-key-file serve wss:// when listening \
                         (port=); a client (location=) trusts a server with ssl-ca-file"
                    )));
                }
                let ClientUrl {
                    tls, host, port, ..
                } = ClientUrl::parse(url, element, ["ws", "wss"], "a ws:// or wss:// URL")?;
                // Read whatever the scheme, as httpsrc does: a CA file that cannot be read is
                // an error before the run, not only once the URL says wss://.
                let client = TlsClient::from_props(p, element)?;
                Ok(Endpoint::Client {
                    url: url.to_owned(),
                    host,
                    port,
                    tls: tls.then_some(client),
                })
            }
            (None, _) => {
                if p.is_set("ssl-ca-file") || p.is_set("ssl-strict") {
                    return Err(ElementError::Config(format!(
                        "{element}: ssl-ca-file and ssl-strict choose the servers a client \
                         (location=) trusts; listening (port=), tls-cert-file and tls-key-file \
                         serve wss://"
                    )));
                }
                Ok(Endpoint::Server {
                    host: p.string("host")?.unwrap_or("localhost").to_owned(),
                    port: port(p, "port")?,
                    tls: server_config(p, element)?,
                })
            }
        }
    }

    /// Connects, or listens and accepts one client; the stream and the peer's name.
    async fn open(&self, cx: &AsyncCtx) -> Result<(Ws, String), ElementError> {
        match self {
            Endpoint::Client {
                url,
                host,
                port,
                tls,
            } => {
                let refused = |e: &dyn std::fmt::Display| {
                    ElementError::Failed(format!("cannot connect to {url}: {e}"))
                };
                let tcp = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| refused(&e))?;
                let _ = tcp.set_nodelay(true);
                let stream: Box<dyn Io> = match tls {
                    None => Box::new(tcp),
                    Some(tls) => Box::new(
                        tls.connect(tcp, host, url)
                            .await
                            .map_err(|e| ElementError::Failed(e.message))?,
                    ),
                };
                let (ws, _) = tokio_tungstenite::client_async(url.as_str(), stream)
                    .await
                    .map_err(|e| refused(&e))?;
                cx.message(format_args!("connected to {url}"));
                Ok((ws, url.clone()))
            }
            Endpoint::Server { host, port, tls } => {
                let (listener, local) = listen(host, *port).await?;
                if *port == 0 {
                    cx.report_chosen("current-port", local.port());
                }
                let scheme = if tls.is_some() { "wss" } else { "ws" };
                cx.message(format_args!("listening on {scheme}://{local}"));
                let (stream, peer) = listener
                    .accept()
                    .await
                    .map_err(|e| net_error(format!("accepting a connection on {local}"), e))?;
                let _ = stream.set_nodelay(true);
                let stream: Box<dyn Io> = match tls {
                    None => Box::new(stream),
                    Some(config) => Box::new(
                        tokio_rustls::TlsAcceptor::from(config.clone())
                            .accept(stream)
                            .await
                            .map_err(|e| {
                                ElementError::Failed(format!("TLS handshake with {peer}: {e}"))
                            })?,
                    ),
                };
                let ws = tokio_tungstenite::accept_async(stream).await.map_err(|e| {
                    ElementError::Failed(format!("WebSocket handshake with {peer}: {e}"))
                })?;
                cx.message(format_args!("{peer} connected"));
                Ok((ws, peer.to_string()))
            }
        }
    }
}

const LOCATION: PropSpec = PropSpec::string(
    "location",
    None,
    "The ws:// or wss://host:port/path URL to connect to (unset: listen on host:port)",
);
const HOST: PropSpec = PropSpec::string(
    "host",
    Some("localhost"),
    "The address to listen on, when listening (port=)",
);
const PORT: PropSpec = PropSpec::int(
    "port",
    0,
    0,
    65535,
    "The port to listen on when location is unset, accepting one client (0 = pick a free port and report it as current-port)",
);
const CURRENT_PORT: PropSpec = PropSpec::int(
    "current-port",
    0,
    0,
    65535,
    "The port the server is bound to",
)
.read_only();

// --- websocketsrc ------------------------------------------------------------------------------

pub(crate) static WEBSOCKETSRC: Factory = Factory {
    name: "websocketsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Receives WebSocket messages, one buffer per message",
    doc:
        "Connects to `location` (ws:// or wss://host:port/path) or, without it, listens on \
          `host`:`port` and accepts one client (wss:// with `tls-cert-file` and `tls-key-file`). Every binary or text message becomes one buffer (text as its \
          UTF-8 bytes; `message-types` keeps only one kind). The peer's close frame is end of \
          stream; a connection that drops without one is an error naming how many messages \
          came. Pings are answered. `port=0` picks a free port and prints `NAME: current-port \
          = N` on stderr.",
    pads: Pads::SOURCE,
    props: basesrc_props![
        LOCATION,
        HOST,
        PORT,
        CURRENT_PORT,
        SSL_CA_FILE,
        SSL_STRICT,
        TLS_CERT_FILE,
        TLS_KEY_FILE,
        PropSpec::enumeration(
            "message-types",
            "any",
            MESSAGE_TYPES,
            "Which messages become buffers (the others are counted as dropped)"
        ),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        Ok(ElementImpl::AsyncSource(Box::new(WebSocketSrc {
            endpoint: Endpoint::from_props(p, "websocketsrc")?,
            keep: p.nick("message-types")?,
            stamper: Stamper::new(p)?,
            ws: None,
            messages: 0,
        })))
    },
};

const MESSAGE_TYPES: &[EnumValue] = &[
    EnumValue {
        nick: "any",
        value: 0,
        doc: "Binary and text messages",
    },
    EnumValue {
        nick: "binary",
        value: 1,
        doc: "Binary messages only",
    },
    EnumValue {
        nick: "text",
        value: 2,
        doc: "Text messages only",
    },
];

const SEND_TYPES: &[EnumValue] = &[
    EnumValue {
        nick: "binary",
        value: 1,
        doc: "Binary messages",
    },
    EnumValue {
        nick: "text",
        value: 2,
        doc: "Text messages (each buffer must be UTF-8)",
    },
];

/// websocketsrc's state.
struct WebSocketSrc {
    endpoint: Endpoint,
    keep: &'static str,
    stamper: Stamper,
    ws: Option<(Ws, String)>,
    messages: u64,
}

impl AsyncSource for WebSocketSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        if let Endpoint::Client { .. } = self.endpoint {
            self.ws = Some(self.endpoint.open(cx).await?);
        }
        Ok(())
    }

    async fn produce(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        if self.stamper.done() {
            return Ok(None);
        }
        if self.ws.is_none() {
            self.ws = Some(self.endpoint.open(cx).await?);
        }
        let (ws, peer) = self.ws.as_mut().expect("opened");
        loop {
            let bytes: Vec<u8> = match ws.next().await {
                Some(Ok(Message::Binary(b))) if self.keep != "text" => b.into(),
                Some(Ok(Message::Text(t))) if self.keep != "binary" => t.as_bytes().to_vec(),
                Some(Ok(Message::Binary(_) | Message::Text(_))) => {
                    cx.count_dropped();
                    continue;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    let why = frame
                        .map(|f| format!(" ({} {})", u16::from(f.code), f.reason))
                        .unwrap_or_default();
                    cx.message(format_args!(
                        "{peer} closed the connection{why}: end of stream"
                    ));
                    // Sends the answer to the close frame.
                    let _ = ws.close(None).await;
                    return Ok(None);
                }
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => return Ok(None),
                Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)))
                | None => return Err(vanished(peer, self.messages)),
                // Over TLS a socket that just closes is an unexpected end (no close_notify).
                Some(Err(WsError::Io(e)))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Err(vanished(peer, self.messages))
                }
                Some(Err(e)) => {
                    return Err(ElementError::Failed(format!(
                        "{peer}: {e} (after {} messages)",
                        self.messages
                    )))
                }
            };
            self.messages += 1;
            let mut buf = Buffer::from_vec(bytes);
            self.stamper.stamp(&mut buf, || cx.running_time_ns());
            return Ok(Some(buf));
        }
    }
}

/// The error for a peer whose connection ended without a close frame.
fn vanished(peer: &str, messages: u64) -> ElementError {
    ElementError::Failed(format!(
        "{peer} went away without a close frame after {messages} messages"
    ))
}

// --- websocketsink -----------------------------------------------------------------------------

pub(crate) static WEBSOCKETSINK: Factory = Factory {
    name: "websocketsink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Sends every buffer as one WebSocket message",
    doc: "Connects to `location` (ws:// or wss://host:port/path) or, without it, listens on \
          `host`:`port` and waits for one client before the first buffer (wss:// with \
          `tls-cert-file` and `tls-key-file`). Each buffer is one message, binary by \
          default (`message-type=text` sends text, and a buffer that is not UTF-8 is an error \
          naming it). At end of stream it sends a close frame and waits up to 5 s for the \
          answer. A peer that goes away mid-stream is an error that says how many messages were \
          sent; one that stops reading holds the pipeline back (memory stays bounded).",
    pads: Pads::SINK,
    props: basesink_props![
        LOCATION,
        HOST,
        PORT,
        CURRENT_PORT,
        SSL_CA_FILE,
        SSL_STRICT,
        TLS_CERT_FILE,
        TLS_KEY_FILE,
        PropSpec::enumeration(
            "message-type",
            "binary",
            SEND_TYPES,
            "The kind of message each buffer is sent as"
        ),
        PropSpec::bool("sync", false, "Sync on the clock").ignored(super::NO_CLOCK),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        Ok(ElementImpl::AsyncSink(Box::new(WebSocketSink {
            endpoint: Endpoint::from_props(p, "websocketsink")?,
            text: p.nick("message-type")? == "text",
            ws: None,
            sent: 0,
        })))
    },
};

/// websocketsink's state.
struct WebSocketSink {
    endpoint: Endpoint,
    text: bool,
    ws: Option<(Ws, String)>,
    sent: u64,
}

/// A buffer's bytes as a message payload, without a copy: the message holds the buffer.
struct Payload(Buffer);

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self.0.data()
    }
}

impl AsyncSink for WebSocketSink {
    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        self.ws = Some(self.endpoint.open(cx).await?);
        Ok(())
    }

    async fn render(&mut self, buf: Buffer, _cx: &mut AsyncCtx) -> Result<SinkFlow, ElementError> {
        let (ws, peer) = self.ws.as_mut().expect("start ran");
        let message = if self.text {
            let text = std::str::from_utf8(buf.data()).map_err(|e| {
                ElementError::Failed(format!(
                    "buffer {} is not UTF-8 text ({e}); message-type=text sends text only",
                    buf.meta.sequence
                ))
            })?;
            Message::text(text)
        } else {
            Message::Binary(tokio_tungstenite::tungstenite::Bytes::from_owner(Payload(
                buf,
            )))
        };
        ws.send(message).await.map_err(|e| {
            ElementError::Failed(format!(
                "sending to {peer}: {e} (after {} messages)",
                self.sent
            ))
        })?;
        self.sent += 1;
        Ok(SinkFlow::Continue)
    }

    async fn finish(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let Some((ws, peer)) = self.ws.as_mut() else {
            return Ok(());
        };
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "end of stream".into(),
        };
        ws.close(Some(close))
            .await
            .map_err(|e| ElementError::Failed(format!("closing the connection to {peer}: {e}")))?;
        // The peer's answer completes the close; what else it sends now is not read.
        let answered = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
        if answered.is_err() {
            cx.warn(format_args!(
                "{peer} did not answer the close frame within {}s",
                CLOSE_WAIT.as_secs()
            ));
        }
        Ok(())
    }
}
