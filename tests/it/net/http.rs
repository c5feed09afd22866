//! httpsrc and httpsink against a small HTTP/1.1 server of the test's own, plain or over TLS
//! (rustls, with a certificate made at test time), whose paths each behave in one way: serve,
//! drop halfway, ignore Range, redirect, refuse, take uploads.

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::pki::Pki;
use super::*;

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Server {
    port: u16,
    scheme: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// An http:// server of `body` (see `serve` for what each path does).
    pub fn start(body: Vec<u8>) -> Server {
        Server::start_with(body, None)
    }

    /// An https:// server presenting `tls`'s certificate.
    fn start_tls(body: Vec<u8>, tls: Arc<rustls::ServerConfig>) -> Server {
        Server::start_with(body, Some(tls))
    }

    fn start_with(body: Vec<u8>, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let body = Arc::new(body);
        let scheme = if tls.is_some() { "https" } else { "http" };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, body, tls) = (Arc::clone(&log), Arc::clone(&body), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, &body, &log),
                    // The handshake runs at the first read; dropping the stream closes the
                    // connection without close_notify, as a server that dies does.
                    Some(tls) => {
                        let conn = rustls::ServerConnection::new(tls).unwrap();
                        serve(rustls::StreamOwned::new(conn, stream), &body, &log)
                    }
                });
            }
        });
        Server { port, scheme, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request<S: Read>(reader: &mut BufReader<S>) -> Option<Seen> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let mut seen = Seen {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if let Some(n) = seen.header("content-length") {
        let mut body = vec![0; n.parse().ok()?];
        reader.read_exact(&mut body).ok()?;
        seen.body = body;
    } else if seen.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            seen.body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(seen)
}

fn serve<S: Read + Write>(stream: S, body: &[u8], log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream);
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let tries = {
        let mut log = log.lock().unwrap();
        log.push(req.clone());
        log.iter().filter(|s| s.path == req.path).count()
    };
    let out = reader.get_mut();
    let range_start = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let whole = |out: &mut S, cut: Option<usize>| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        out.write_all(head.as_bytes()).unwrap();
        let _ = out.write_all(&body[..cut.unwrap_or(body.len())]);
    };
    let ranged = |out: &mut S, from: usize| {
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - from,
            body.len() - 1,
            body.len()
        );
        out.write_all(head.as_bytes()).unwrap();
        let _ = out.write_all(&body[from..]);
    };
    let status = |out: &mut S, line: &str, extra: &str| {
        let head =
            format!("HTTP/1.1 {line}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
        out.write_all(head.as_bytes()).unwrap();
    };
    if let Some(to) = req.path.strip_prefix("/goto?") {
        status(out, "302 Found", &format!("Location: {to}\r\n"));
        let _ = out.flush();
        return;
    }
    match (req.path.as_str(), range_start) {
        ("/file", None) => whole(out, None),
        ("/file" | "/drop", Some(from)) => ranged(out, from),
        ("/drop" | "/norange", None) if tries == 1 => whole(out, Some(body.len() / 2)),
        ("/norange", _) => whole(out, None),
        ("/redirect", _) => status(out, "302 Found", "Location: /file\r\n"),
        ("/upload", _) => status(out, "201 Created", ""),
        ("/fail", _) => status(out, "500 Internal Server Error", ""),
        _ => status(out, "404 Not Found", ""),
    }
    let _ = out.flush();
}

fn get(url: &str, extra: &str) -> Done {
    run_args(&["-q", &format!("httpsrc location={url} {extra} ! fdsink")])
}

#[test]
fn httpsrc_downloads_follows_redirects_and_sends_the_headers_asked() {
    let data = random_bytes(3_000_017, 91);
    let server = Server::start(data.clone());
    get(&server.url("/file"), "").ok().assert_stdout(&data);
    get(
        &server.url("/redirect"),
        "user-agent=tester/1 user-id=ann user-pw=secret extra-headers=\"headers, X-Trace=(string)abc\"",
    )
    .ok()
    .assert_stdout(&data);
    let seen = server.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.path, "/file", "the redirect was followed");
    assert_eq!(last.header("user-agent"), Some("tester/1"));
    assert_eq!(last.header("x-trace"), Some("abc"));
    // "ann:secret" in base64.
    assert_eq!(last.header("authorization"), Some("Basic YW5uOnNlY3JldA=="));
}

#[test]
fn downloaded_bytes_kept_in_hyper_s_buffers_cross_into_a_worker_process() {
    // httpsrc's buffers are hyper's own bytes; a worker gets them copied into shared memory.
    let data = random_bytes(1_500_007, 93);
    let server = Server::start(data.clone());
    get(&server.url("/file"), "! identity exec=isolated")
        .ok()
        .assert_stdout(&data);
}

/// `server`'s `/drop` (serving `data`) cuts the body halfway once: httpsrc (with `props`) asks
/// for the rest with Range, and its output is the whole body.
fn resumes_with_range(server: &Server, data: &[u8], props: &str) {
    get(&server.url("/drop"), props).ok().assert_stdout(data);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let half = data.len() / 2;
    assert_eq!(
        seen[1].header("range"),
        Some(format!("bytes={half}-").as_str())
    );
}

#[test]
fn a_dropped_connection_is_resumed_with_range_or_reread_without_it() {
    let data = random_bytes(2_000_003, 92);
    let server = Server::start(data.clone());
    resumes_with_range(&server, &data, "");
    let half = data.len() / 2;
    // A server without Range support sends everything again: the output is the same.
    get(&server.url("/norange"), "").ok().assert_stdout(&data);
    // With retries=0 a drop is an error that says how far it got.
    let server = Server::start(data.clone());
    get(&server.url("/drop"), "retries=0").fails_with(1, &format!("after {half} of"));
}

#[test]
fn http_errors_name_the_status_and_the_url() {
    let server = Server::start(Vec::new());
    get(&server.url("/nothing"), "").fails_with(
        1,
        &format!("HTTP 404 Not Found from {}", server.url("/nothing")),
    );
    let port = closed_port();
    get(&format!("http://127.0.0.1:{port}/x"), "retries=1")
        .fails_with(1, &format!("cannot connect to http://127.0.0.1:{port}/x"));
    get("ftp://example.invalid/x", "").fails_with(2, "is not an http:// or https:// URL");
    run_args(&["-q", "fakesrc num-buffers=1 ! httpsink"]).fails_with(2, "location");
}

/// httpsink (with `props`) uploads `input`, which holds `data`, to a fresh server from `start`
/// twice: the whole stream as one chunked POST, then a PUT per buffer.
fn uploads(input: &std::path::Path, data: &[u8], start: impl Fn() -> Server, props: &str) {
    let server = start();
    send_file(
        input,
        &format!(
            "blocksize=65536 ! httpsink {props} location={}",
            server.url("/upload")
        ),
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].header("transfer-encoding"), Some("chunked"));
    assert!(seen[0].body == data, "the body is the stream");

    let server = start();
    send_file(
        input,
        &format!(
            "blocksize=300000 ! httpsink method=put per-buffer=true {props} location={}",
            server.url("/upload")
        ),
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.method == "PUT"));
    let joined: Vec<u8> = seen.iter().flat_map(|s| s.body.clone()).collect();
    assert!(joined == data);
}

#[test]
fn httpsink_uploads_the_stream_chunked_or_a_request_per_buffer() {
    let dir = tmp();
    let data = random_bytes(1_000_003, 93);
    let input = file(dir.path(), "in.bin", &data);
    uploads(&input, &data, || Server::start(Vec::new()), "");

    let server = Server::start(Vec::new());
    run_args(&[
        "-q",
        &format!(
            "filesrc {} ! httpsink location={}",
            prop("location", &input),
            server.url("/fail")
        ),
    ])
    .fails_with(
        1,
        &format!(
            "HTTP 500 Internal Server Error from {}",
            server.url("/fail")
        ),
    );
}

// --- https:// ----------------------------------------------------------------------------------

#[test]
fn https_downloads_byte_identical_trusting_ssl_ca_file_and_redirects_cross_schemes() {
    let pki = Pki::new();
    let ca = prop("ssl-ca-file", &pki.ca);
    let data = random_bytes(3_000_017, 94);
    let tls = Server::start_tls(data.clone(), pki.server());
    let plain = Server::start(data.clone());
    get(&tls.url("/file"), &ca).ok().assert_stdout(&data);
    // The certificate names localhost too.
    let by_name = format!("https://localhost:{}/file", tls.port);
    get(&by_name, &ca).ok().assert_stdout(&data);
    // http -> https -> http, with basic authentication on every hop.
    let chain = plain.url(&format!(
        "/goto?{}",
        tls.url(&format!("/goto?{}", plain.url("/file")))
    ));
    get(&chain, &format!("{ca} user-id=ann user-pw=secret"))
        .ok()
        .assert_stdout(&data);
    let over_tls = tls.seen();
    let last = over_tls.last().unwrap();
    assert!(last.path.starts_with("/goto?http://"), "{last:?}");
    assert_eq!(last.header("authorization"), Some("Basic YW5uOnNlY3JldA=="));
    assert_eq!(plain.seen().last().unwrap().path, "/file");
}

#[test]
fn an_untrusted_certificate_is_a_clear_error_unless_ssl_strict_is_false() {
    let pki = Pki::new();
    let data = random_bytes(200_003, 95);
    let tls = Server::start_tls(data.clone(), pki.server());
    let url = tls.url("/file");
    // The system's CAs do not include the test's own.
    let failed = get(&url, "");
    failed.fails_with(
        1,
        &format!("httpsrc0: {url}: the server's certificate does not verify (unknown issuer"),
    );
    assert!(
        failed.stderr.contains("ssl-ca-file=") && failed.stderr.contains("ssl-strict=false"),
        "{}",
        failed.stderr
    );
    assert!(
        !failed.stderr.contains("retrying"),
        "a verdict is not retried: {}",
        failed.stderr
    );
    assert!(tls.seen().is_empty(), "no request went out");
    get(&url, "ssl-strict=false").ok().assert_stdout(&data);

    // A certificate for another name fails even with its CA trusted.
    let other = Server::start_tls(data.clone(), pki.mismatched());
    get(&other.url("/file"), &prop("ssl-ca-file", &pki.ca)).fails_with(
        1,
        "(name mismatch: certificate not valid for name \"127.0.0.1\"",
    );
    get(&other.url("/file"), "ssl-strict=false")
        .ok()
        .assert_stdout(&data);

    // A CA file that is not there, or holds no certificate, stops the pipeline before it runs.
    get(&url, "ssl-ca-file=/nonexistent/ca.pem").fails_with(2, "ssl-ca-file `/nonexistent/ca.pem`");
    get(&url, &prop("ssl-ca-file", &pki.key)).fails_with(2, "holds no PEM certificate");
    // A plain server behind an https:// URL: the handshake fails, and says so.
    let plain = Server::start(data);
    get(
        &format!("https://127.0.0.1:{}/file", plain.port),
        "retries=0",
    )
    .fails_with(1, "TLS handshake with");
}

#[test]
fn an_https_body_cut_without_close_notify_is_resumed_with_range() {
    let pki = Pki::new();
    let data = random_bytes(2_000_003, 96);
    let tls = Server::start_tls(data.clone(), pki.server());
    resumes_with_range(&tls, &data, &prop("ssl-ca-file", &pki.ca));
}

#[test]
fn httpsink_uploads_over_https() {
    let pki = Pki::new();
    let ca = prop("ssl-ca-file", &pki.ca);
    let dir = tmp();
    let data = random_bytes(1_000_003, 97);
    let input = file(dir.path(), "in.bin", &data);
    uploads(
        &input,
        &data,
        || Server::start_tls(Vec::new(), pki.server()),
        &ca,
    );

    // Without the CA nothing is sent, and the error says why.
    let tls = Server::start_tls(Vec::new(), pki.server());
    run_args(&[
        "-q",
        &format!(
            "filesrc {} ! httpsink location={}",
            prop("location", &input),
            tls.url("/upload")
        ),
    ])
    .fails_with(
        1,
        &format!(
            "httpsink0: {}: the server's certificate does not verify (unknown issuer",
            tls.url("/upload")
        ),
    );
    assert!(tls.seen().is_empty());
}
