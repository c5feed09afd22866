//! HTTP/1.1: `httpsrc` (also `souphttpsrc`) downloads a URL, resuming with `Range` after a
//! dropped connection; `httpsink` uploads the stream, as one chunked request or one request
//! per buffer. Both run on the pipeline's tokio runtime with hyper's client.
//!
//! `https://` runs over rustls (see [`super::tls`]); redirects may cross between http and
//! https either way, and a TLS connection that drops mid-body (without close_notify) is
//! resumed like a plain one.
//!
//! Errors name the URL and what went wrong: the status line of a non-2xx answer, a refused
//! connection, a certificate that does not verify, a server that cannot resume.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpStream;

use super::tls::{ClientUrl, TlsClient, SSL_CA_FILE, SSL_STRICT};
use super::{basesink_props, basesrc_props, Stamper};
use crate::element::prelude::*;

/// Redirects followed at most, as a browser would.
const MAX_REDIRECTS: usize = 10;

/// A parsed `http://` or `https://` URL.
#[derive(Clone)]
struct Target {
    url: String,
    /// `https://`: the connection runs TLS.
    tls: bool,
    host: String,
    port: u16,
    /// `host[:port]` for the Host header.
    authority: String,
    /// Path and query.
    path: String,
}

impl Target {
    fn parse(url: &str, element: &str) -> Result<Target, ElementError> {
        let ClientUrl {
            uri,
            tls,
            host,
            port,
        } = ClientUrl::parse(
            url,
            element,
            ["http", "https"],
            "an http:// or https:// URL",
        )?;
        Ok(Target {
            url: url.to_owned(),
            tls,
            host,
            port,
            authority: uri.authority().map_or("", |a| a.as_str()).to_owned(),
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned()),
        })
    }

    /// Where a redirect's `Location` points, relative to this URL.
    fn join(&self, location: &str, element: &str) -> Result<Target, ElementError> {
        if location.contains("://") {
            return Target::parse(location, element);
        }
        let scheme = if self.tls { "https" } else { "http" };
        let url = if location.starts_with('/') {
            format!("{scheme}://{}{location}", self.authority)
        } else {
            let dir = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
            format!("{scheme}://{}{dir}{location}", self.authority)
        };
        Target::parse(&url, element)
    }

    /// Opens a connection, with TLS for `https://`; `timeout` bounds the connect and the TLS
    /// handshake.
    async fn connect<B>(
        &self,
        timeout: Duration,
        tls: &TlsClient,
    ) -> Result<SendRequest<B>, Failure>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let broken = |e: String| {
            Failure::transient(ElementError::Failed(format!(
                "cannot connect to {}: {e}",
                self.url
            )))
        };
        let late = || broken(format!("no answer within {}s (timeout)", timeout.as_secs()));
        let stream =
            tokio::time::timeout(timeout, TcpStream::connect((self.host.as_str(), self.port)))
                .await
                .map_err(|_| late())?
                .map_err(|e| broken(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        if !self.tls {
            return handshake(stream).await.map_err(broken);
        }
        let stream = tokio::time::timeout(timeout, tls.connect(stream, &self.host, &self.url))
            .await
            .map_err(|_| late())?
            .map_err(|e| Failure {
                error: ElementError::Failed(e.message),
                transient: e.transient,
            })?;
        handshake(stream).await.map_err(broken)
    }
}

/// Starts HTTP/1.1 over a connected stream; the connection runs as its own task.
async fn handshake<S, B>(stream: S) -> Result<SendRequest<B>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Request headers common to both elements.
#[derive(Clone, Default)]
struct Headers {
    user_agent: String,
    extra: Vec<(String, String)>,
    /// `Authorization: Basic ...`, from user-id and user-pw.
    auth: Option<String>,
}

impl Headers {
    fn from_props(p: &Props, element: &str) -> Result<Headers, ElementError> {
        let extra = match p.string("extra-headers")? {
            None | Some("") => Vec::new(),
            Some(text) => {
                // gst's form: a structure whose fields are the headers.
                let caps = Caps::parse(text).map_err(|e| {
                    ElementError::Config(format!(
                        "{element}: extra-headers `{text}` is not a structure such as \
                         `headers, X-Name=(string)value`: {e}"
                    ))
                })?;
                let s = caps.first().ok_or_else(|| {
                    ElementError::Config(format!("{element}: extra-headers `{text}` is empty"))
                })?;
                s.fields
                    .iter()
                    .map(|(k, v)| {
                        let text = match v {
                            CapsValue::Str(t) => t.clone(),
                            other => {
                                let t = other.to_string();
                                t.split_once(')')
                                    .map_or(t.clone(), |(_, bare)| bare.to_owned())
                            }
                        };
                        (k.clone(), text)
                    })
                    .collect()
            }
        };
        let auth = match (p.string("user-id")?, p.string("user-pw")?) {
            (Some(id), pw) => {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{id}:{}", pw.unwrap_or("")));
                Some(format!("Basic {token}"))
            }
            _ => None,
        };
        Ok(Headers {
            user_agent: p.string("user-agent")?.unwrap_or("parallax").to_owned(),
            extra,
            auth,
        })
    }

    fn apply(
        &self,
        mut req: hyper::http::request::Builder,
        target: &Target,
    ) -> hyper::http::request::Builder {
        req = req
            .header("Host", &target.authority)
            .header("User-Agent", &self.user_agent);
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth);
        }
        for (k, v) in &self.extra {
            req = req.header(k.as_str(), v.as_str());
        }
        req
    }
}

/// The error for a non-2xx answer.
fn status_error(status: StatusCode, url: &str) -> ElementError {
    ElementError::Failed(format!(
        "HTTP {} {} from {url}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ))
}

const USER_AGENT: PropSpec = PropSpec::string(
    "user-agent",
    Some("parallax"),
    "Value of the User-Agent HTTP request header field",
);
const EXTRA_HEADERS: PropSpec = PropSpec::string(
    "extra-headers",
    None,
    "Extra headers to append to the HTTP request, as a structure: \
     `headers, X-Name=(string)value`",
);
const USER_ID: PropSpec = PropSpec::string(
    "user-id",
    None,
    "HTTP location URI user id for authentication",
);
const USER_PW: PropSpec = PropSpec::string(
    "user-pw",
    None,
    "HTTP location URI user password for authentication",
);
const TIMEOUT: PropSpec = PropSpec::uint(
    "timeout",
    15,
    0,
    3600,
    "Value in seconds to timeout a blocking I/O (0 = No timeout)",
);

// --- httpsrc -----------------------------------------------------------------------------------

pub(crate) static HTTPSRC: Factory = Factory {
    name: "httpsrc",
    aliases: &["souphttpsrc"],
    klass: Klass::Source,
    summary: "Downloads a URL over HTTP/1.1, with TLS for https://",
    doc: "GETs `location` and passes on the body as it arrives, following up to 10 redirects \
          (automatic-redirect). A connection that drops mid-body is resumed from the byte \
          reached with a `Range` request, up to `retries` times; a server that answers it \
          with the whole body again has the bytes already passed skipped, so the output is the \
          same. A non-2xx answer is an error naming the status and the URL (`HTTP 404 Not \
          Found from http://...`). `extra-headers` takes gst's structure form, `user-id` and \
          `user-pw` give basic authentication. `https://` runs TLS (rustls), trusting the \
          system's CA certificates, or only those of `ssl-ca-file`; `ssl-strict=false` accepts \
          any certificate. A certificate that does not verify is an error naming the URL and \
          the reason (unknown issuer, name mismatch, expired).",
    pads: Pads::SOURCE,
    props: basesrc_props![
        PropSpec::string("location", None, "Location to read from").required(),
        USER_AGENT,
        EXTRA_HEADERS,
        USER_ID,
        USER_PW,
        TIMEOUT,
        PropSpec::int(
            "retries",
            3,
            -1,
            i32::MAX as i64,
            "Maximum number of retries until giving up (-1=infinite)"
        ),
        PropSpec::bool(
            "automatic-redirect",
            true,
            "Automatically follow HTTP redirects (HTTP Status Code 3xx)"
        ),
        SSL_CA_FILE,
        SSL_STRICT,
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        let target = Target::parse(p.string("location")?.unwrap_or(""), "httpsrc")?;
        Ok(ElementImpl::AsyncSource(Box::new(HttpSrc {
            target,
            headers: Headers::from_props(p, "httpsrc")?,
            tls: TlsClient::from_props(p, "httpsrc")?,
            timeout: match p.uint("timeout")? {
                0 => Duration::from_secs(24 * 3600),
                s => Duration::from_secs(s),
            },
            retries: p.int("retries")?,
            redirect: p.bool("automatic-redirect")?,
            stamper: Stamper::new(p)?,
            body: None,
            received: 0,
            skip: 0,
            length: None,
            tries: 0,
        })))
    },
};

/// httpsrc's state.
struct HttpSrc {
    target: Target,
    headers: Headers,
    tls: TlsClient,
    timeout: Duration,
    retries: i64,
    redirect: bool,
    stamper: Stamper,
    body: Option<Incoming>,
    /// Body bytes passed on so far.
    received: u64,
    /// Bytes of a restarted whole body still to skip (a server that ignored Range).
    skip: u64,
    /// The whole body's length, when the server said.
    length: Option<u64>,
    /// Connection attempts that failed in a row.
    tries: i64,
}

/// Why a request got no usable answer, and whether asking again may help: no connection, no
/// answer in time or a broken exchange may pass; a status or a bad redirect will not.
struct Failure {
    error: ElementError,
    transient: bool,
}

impl Failure {
    fn transient(error: ElementError) -> Failure {
        Failure {
            error,
            transient: true,
        }
    }
}

impl From<ElementError> for Failure {
    fn from(error: ElementError) -> Failure {
        Failure {
            error,
            transient: false,
        }
    }
}

impl HttpSrc {
    /// Sends the GET (from `received` on, when resuming), following redirects.
    async fn request(&mut self, cx: &AsyncCtx) -> Result<Response<Incoming>, Failure> {
        let mut target = self.target.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut sender = target
                .connect::<http_body_util::Empty<Bytes>>(self.timeout, &self.tls)
                .await?;
            let mut req = self.headers.apply(Request::get(&target.path), &target);
            if self.received > 0 {
                req = req.header("Range", format!("bytes={}-", self.received));
            }
            let req = req
                .body(http_body_util::Empty::new())
                .map_err(|e| ElementError::Failed(format!("{}: {e}", target.url)))?;
            let resp = tokio::time::timeout(self.timeout, sender.send_request(req))
                .await
                .map_err(|_| {
                    Failure::transient(ElementError::Failed(format!(
                        "no answer from {} within {}s (timeout)",
                        target.url,
                        self.timeout.as_secs()
                    )))
                })?
                .map_err(|e| {
                    Failure::transient(ElementError::Failed(format!(
                        "requesting {}: {e}",
                        target.url
                    )))
                })?;
            let status = resp.status();
            if status.is_redirection() && self.redirect {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| status_error(status, &target.url))?;
                let next = target.join(location, "httpsrc")?;
                cx.message(format_args!("{} redirects to {}", target.url, next.url));
                target = next;
                continue;
            }
            if !status.is_success() {
                return Err(status_error(status, &target.url).into());
            }
            return Ok(resp);
        }
        Err(ElementError::Failed(format!(
            "{}: more than {MAX_REDIRECTS} redirects",
            self.target.url
        ))
        .into())
    }

    /// (Re)starts the body: a fresh GET, or a ranged one after a drop.
    async fn open(&mut self, cx: &AsyncCtx) -> Result<(), Failure> {
        let resp = self.request(cx).await?;
        let length = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if self.received > 0 {
            if resp.status() == StatusCode::PARTIAL_CONTENT {
                let start = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(self.received) {
                    return Err(ElementError::Failed(format!(
                        "{}: asked to resume at byte {}, the server answered a range from {}",
                        self.target.url,
                        self.received,
                        start.map_or("nowhere".to_owned(), |s| s.to_string())
                    ))
                    .into());
                }
                cx.message(format_args!(
                    "resumed {} at byte {}",
                    self.target.url, self.received
                ));
            } else {
                // The whole body again: skip what was passed on already.
                self.skip = self.received;
                cx.message(format_args!(
                    "{} cannot resume (no Range support): reading it again from the start",
                    self.target.url
                ));
            }
        } else {
            self.length = length;
        }
        self.body = Some(resp.into_body());
        Ok(())
    }

    fn may_retry(&self) -> bool {
        self.retries < 0 || self.tries < self.retries
    }
}

impl AsyncSource for HttpSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    async fn produce(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        loop {
            if self.stamper.done() {
                return Ok(None);
            }
            if self.body.is_none() {
                if let Err(Failure {
                    error: e,
                    transient,
                }) = self.open(cx).await
                {
                    // Only failures to get an answer are retried, not a refusal in words.
                    if transient && self.may_retry() {
                        self.tries += 1;
                        cx.message(format_args!("{e}; retrying ({})", self.tries));
                        tokio::time::sleep(Duration::from_millis(100 * self.tries.min(10) as u64))
                            .await;
                        continue;
                    }
                    return Err(e);
                }
            }
            let body = self.body.as_mut().expect("opened");
            let frame = tokio::time::timeout(self.timeout, body.frame())
                .await
                .map_err(|_| {
                    ElementError::Failed(format!(
                        "no data from {} for {}s (timeout)",
                        self.target.url,
                        self.timeout.as_secs()
                    ))
                })?;
            match frame {
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue; // trailers
                    };
                    self.tries = 0;
                    if self.skip > 0 {
                        let n = (self.skip as usize).min(data.len());
                        self.skip -= n as u64;
                        let _ = data.split_to(n);
                    }
                    if data.is_empty() {
                        continue;
                    }
                    self.received += data.len() as u64;
                    let mut buf = super::received(data);
                    self.stamper.stamp(&mut buf, || cx.running_time_ns());
                    return Ok(Some(buf));
                }
                None if self.length.is_none_or(|l| self.received >= l) => return Ok(None),
                None | Some(Err(_)) if self.may_retry() => {
                    self.tries += 1;
                    cx.message(format_args!(
                        "{}: the connection dropped after {} bytes; resuming ({})",
                        self.target.url, self.received, self.tries
                    ));
                    self.body = None;
                }
                None => {
                    return Err(ElementError::Failed(format!(
                        "{}: the body ended after {} of {} bytes",
                        self.target.url,
                        self.received,
                        self.length.unwrap_or(0)
                    )))
                }
                Some(Err(e)) => {
                    let of = self.length.map(|l| format!(" of {l}")).unwrap_or_default();
                    return Err(ElementError::Failed(format!(
                        "{}: the connection dropped after {}{of} bytes, retries used up ({e})",
                        self.target.url, self.received
                    )));
                }
            }
        }
    }
}

// --- httpsink ----------------------------------------------------------------------------------

const METHODS: &[EnumValue] = &[
    EnumValue {
        nick: "post",
        value: 0,
        doc: "POST",
    },
    EnumValue {
        nick: "put",
        value: 1,
        doc: "PUT",
    },
];

pub(crate) static HTTPSINK: Factory = Factory {
    name: "httpsink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Uploads the stream over HTTP/1.1 (TLS for https://): one chunked request, or one \
              per buffer",
    doc: "Sends the stream to `location` with `method` (POST or PUT): by default as one request \
          whose chunked body is the whole stream, sent as it comes; with `per-buffer=true` as \
          one request per buffer (with its Content-Length). A non-2xx answer is an error that \
          names the status and the URL; a server that stops reading holds the pipeline back. \
          `https://` runs TLS as httpsrc does, with the same `ssl-ca-file` and `ssl-strict`.",
    pads: Pads::SINK,
    props: basesink_props![
        PropSpec::string("location", None, "The URL to send to").required(),
        PropSpec::enumeration("method", "post", METHODS, "The request method"),
        PropSpec::bool(
            "per-buffer",
            false,
            "One request per buffer instead of one chunked request for the stream"
        ),
        PropSpec::string(
            "content-type",
            Some("application/octet-stream"),
            "Value of the Content-Type header"
        ),
        USER_AGENT,
        EXTRA_HEADERS,
        USER_ID,
        USER_PW,
        TIMEOUT,
        SSL_CA_FILE,
        SSL_STRICT,
        PropSpec::bool("sync", false, "Sync on the clock").ignored(super::NO_CLOCK),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        Ok(ElementImpl::AsyncSink(Box::new(HttpSink {
            target: Target::parse(p.string("location")?.unwrap_or(""), "httpsink")?,
            put: p.nick("method")? == "put",
            per_buffer: p.bool("per-buffer")?,
            content_type: p.string("content-type")?.unwrap_or("").to_owned(),
            headers: Headers::from_props(p, "httpsink")?,
            tls: TlsClient::from_props(p, "httpsink")?,
            timeout: match p.uint("timeout")? {
                0 => Duration::from_secs(24 * 3600),
                s => Duration::from_secs(s),
            },
            chunks: None,
            answer: None,
            sent: 0,
        })))
    },
};

/// A request body fed buffer by buffer from the sink.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// A buffer's bytes as a body chunk, without a copy.
struct Chunk(Buffer);

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        self.0.data()
    }
}

type Answer = tokio::task::JoinHandle<Result<StatusCode, String>>;

/// httpsink's state.
struct HttpSink {
    target: Target,
    put: bool,
    per_buffer: bool,
    content_type: String,
    headers: Headers,
    tls: TlsClient,
    timeout: Duration,
    /// The streaming request's body, while it is open.
    chunks: Option<tokio::sync::mpsc::Sender<Bytes>>,
    /// The streaming request's answer, once it comes.
    answer: Option<Answer>,
    sent: u64,
}

impl HttpSink {
    fn request<B>(&self, body: B, length: Option<usize>) -> Result<Request<B>, ElementError> {
        let method = if self.put { "PUT" } else { "POST" };
        let mut req = self
            .headers
            .apply(
                Request::builder().method(method).uri(&self.target.path),
                &self.target,
            )
            .header("Content-Type", &self.content_type);
        if let Some(n) = length {
            req = req.header("Content-Length", n);
        }
        req.body(body)
            .map_err(|e| ElementError::Failed(format!("{}: {e}", self.target.url)))
    }

    async fn connect<B>(&self) -> Result<SendRequest<B>, ElementError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.target
            .connect(self.timeout, &self.tls)
            .await
            .map_err(|f| f.error)
    }

    /// The streaming request's answer, as an error unless 2xx.
    async fn settle(&mut self) -> Result<(), ElementError> {
        let Some(answer) = self.answer.take() else {
            return Ok(());
        };
        let status = answer
            .await
            .map_err(|e| ElementError::Failed(format!("{}: {e}", self.target.url)))?
            .map_err(|e| {
                ElementError::Failed(format!(
                    "sending to {}: {e} (after {} bytes)",
                    self.target.url, self.sent
                ))
            })?;
        if !status.is_success() {
            return Err(status_error(status, &self.target.url));
        }
        Ok(())
    }
}

impl AsyncSink for HttpSink {
    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        if self.per_buffer {
            return Ok(());
        }
        let mut sender = self.connect::<ChannelBody>().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let req = self.request(ChannelBody(rx), None)?;
        self.answer = Some(tokio::spawn(async move {
            sender
                .send_request(req)
                .await
                .map(|r| r.status())
                .map_err(|e| e.to_string())
        }));
        self.chunks = Some(tx);
        cx.message(format_args!("sending to {}", self.target.url));
        Ok(())
    }

    async fn render(&mut self, buf: Buffer, _cx: &mut AsyncCtx) -> Result<SinkFlow, ElementError> {
        let len = buf.len();
        let bytes = Bytes::from_owner(Chunk(buf));
        if self.per_buffer {
            let mut sender = self.connect::<http_body_util::Full<Bytes>>().await?;
            let req = self.request(http_body_util::Full::new(bytes), Some(len))?;
            let resp = tokio::time::timeout(self.timeout, sender.send_request(req))
                .await
                .map_err(|_| {
                    ElementError::Failed(format!(
                        "no answer from {} within {}s (timeout)",
                        self.target.url,
                        self.timeout.as_secs()
                    ))
                })?
                .map_err(|e| {
                    ElementError::Failed(format!("sending to {}: {e}", self.target.url))
                })?;
            if !resp.status().is_success() {
                return Err(status_error(resp.status(), &self.target.url));
            }
            self.sent += len as u64;
            return Ok(SinkFlow::Continue);
        }
        let tx = self.chunks.as_ref().expect("start ran");
        if tx.send(bytes).await.is_err() {
            // The request ended early: its answer says why.
            self.chunks = None;
            self.settle().await?;
            return Err(ElementError::Failed(format!(
                "{} answered before the stream ended (after {} bytes)",
                self.target.url, self.sent
            )));
        }
        self.sent += len as u64;
        Ok(SinkFlow::Continue)
    }

    async fn finish(&mut self, _cx: &mut AsyncCtx) -> Result<(), ElementError> {
        // Closing the body ends the chunked request; then its answer counts.
        self.chunks = None;
        self.settle().await
    }
}
