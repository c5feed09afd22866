//! httpsrc and httpsink against a small HTTP/1.1 server of the test's own, whose paths each
//! behave in one way: serve, drop halfway, ignore Range, redirect, refuse, take uploads.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::*;

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
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

struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(body: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let body = Arc::new(body);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (log, body) = (Arc::clone(&log), Arc::clone(&body));
                std::thread::spawn(move || serve(stream, &body, &log));
            }
        });
        Server { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
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

fn serve(stream: TcpStream, body: &[u8], log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let tries = {
        let mut log = log.lock().unwrap();
        log.push(req.clone());
        log.iter().filter(|s| s.path == req.path).count()
    };
    let mut out = stream;
    let range_start = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let whole = |out: &mut TcpStream, cut: Option<usize>| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        out.write_all(head.as_bytes()).unwrap();
        let _ = out.write_all(&body[..cut.unwrap_or(body.len())]);
    };
    let ranged = |out: &mut TcpStream, from: usize| {
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - from,
            body.len() - 1,
            body.len()
        );
        out.write_all(head.as_bytes()).unwrap();
        let _ = out.write_all(&body[from..]);
    };
    let status = |out: &mut TcpStream, line: &str, extra: &str| {
        let head =
            format!("HTTP/1.1 {line}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
        out.write_all(head.as_bytes()).unwrap();
    };
    match (req.path.as_str(), range_start) {
        ("/file", None) => whole(&mut out, None),
        ("/file" | "/drop", Some(from)) => ranged(&mut out, from),
        ("/drop" | "/norange", None) if tries == 1 => whole(&mut out, Some(body.len() / 2)),
        ("/norange", _) => whole(&mut out, None),
        ("/redirect", _) => status(&mut out, "302 Found", "Location: /file\r\n"),
        ("/upload", _) => status(&mut out, "201 Created", ""),
        ("/fail", _) => status(&mut out, "500 Internal Server Error", ""),
        _ => status(&mut out, "404 Not Found", ""),
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

#[test]
fn a_dropped_connection_is_resumed_with_range_or_reread_without_it() {
    let data = random_bytes(2_000_003, 92);
    let server = Server::start(data.clone());
    get(&server.url("/drop"), "").ok().assert_stdout(&data);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let half = data.len() / 2;
    assert_eq!(
        seen[1].header("range"),
        Some(format!("bytes={half}-").as_str())
    );
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
    get("https://example.invalid/x", "").fails_with(2, "needs TLS");
    run_args(&["-q", "fakesrc num-buffers=1 ! httpsink"]).fails_with(2, "location");
}

#[test]
fn httpsink_uploads_the_stream_chunked_or_a_request_per_buffer() {
    let dir = tmp();
    let data = random_bytes(1_000_003, 93);
    let input = file(dir.path(), "in.bin", &data);
    let server = Server::start(Vec::new());
    send_file(
        &input,
        &format!(
            "blocksize=65536 ! httpsink location={}",
            server.url("/upload")
        ),
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].header("transfer-encoding"), Some("chunked"));
    assert!(seen[0].body == data, "the body is the stream");

    let server = Server::start(Vec::new());
    send_file(
        &input,
        &format!(
            "blocksize=300000 ! httpsink method=put per-buffer=true location={}",
            server.url("/upload")
        ),
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.method == "PUT"));
    let joined: Vec<u8> = seen.iter().flat_map(|s| s.body.clone()).collect();
    assert!(joined == data);

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
