//! websocketsrc and websocketsink, against each other and against a plain tungstenite peer,
//! over ws:// and over wss:// (with a certificate made at test time).

use std::net::TcpStream;

use tungstenite::Message;

use super::pki::Pki;
use super::*;

/// A blocking WebSocket client of the test's own, connected to `port`.
fn client(port: u16) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/t"), stream).unwrap();
    ws
}

#[test]
fn websocketsink_into_websocketsrc_is_byte_identical_a_message_per_buffer() {
    let dir = tmp();
    let data = random_bytes(2_000_003, 81);
    let input = file(dir.path(), "in.bin", &data);
    let mut server = Proc::spawn(
        &["-q", "--stats=json", "websocketsrc port=0 ! fdsink"],
        None,
    );
    let port = server.port();
    send_file(
        &input,
        &format!("blocksize=65521 ! websocketsink location=ws://127.0.0.1:{port}/in"),
    );
    let server = server.finish().ok();
    server.assert_stdout(&data);
    let stats = server.stats();
    assert_eq!(
        element(&stats, "websocketsrc0")["buffers"],
        data.len().div_ceil(65521) as u64
    );
}

#[test]
fn websocketsrc_reads_a_listening_websocketsink() {
    let dir = tmp();
    let data = random_bytes(500_009, 82);
    let input = file(dir.path(), "in.bin", &data);
    let mut server = Proc::spawn(
        &[&format!(
            "filesrc {} ! websocketsink port=0",
            prop("location", &input)
        )],
        None,
    );
    let port = server.port();
    let out = run_args(&[
        "-q",
        &format!("websocketsrc location=ws://127.0.0.1:{port}/ ! fdsink"),
    ])
    .ok();
    out.assert_stdout(&data);
    server.finish().ok();
}

#[test]
fn pings_are_answered_text_is_kept_and_a_close_frame_ends_the_stream() {
    let mut server = Proc::spawn(&["-q", "websocketsrc port=0 ! fdsink"], None);
    let mut ws = client(server.port());
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match ws.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("{other:?}"),
    }
    ws.send(Message::text("héllo ")).unwrap();
    ws.send(Message::binary(b"world".to_vec())).unwrap();
    ws.close(None).unwrap();
    // Read until the server's answer to the close frame.
    while ws.read().is_ok() {}
    let done = server.finish().ok();
    done.assert_stdout("héllo world".as_bytes());
}

#[test]
fn a_peer_that_vanishes_without_a_close_frame_is_an_error() {
    let mut server = Proc::spawn(&["-q", "websocketsrc port=0 ! fakesink"], None);
    let mut ws = client(server.port());
    ws.send(Message::binary(b"one".to_vec())).unwrap();
    ws.flush().unwrap();
    drop(ws);
    server
        .finish()
        .fails_with(1, "went away without a close frame after 1 messages");
}

#[test]
fn websocket_configuration_errors_name_the_problem() {
    run_args(&[
        "-q",
        "fakesrc num-buffers=1 ! websocketsink location=ws://127.0.0.1:1/ port=9",
    ])
    .fails_with(
        2,
        "give location= (to connect) or port= (to listen), not both",
    );
    run_args(&[
        "-q",
        "websocketsrc location=http://example.invalid/ ! fakesink",
    ])
    .fails_with(2, "is not a ws:// or wss:// URL");
    run_args(&[
        "-q",
        "websocketsrc port=0 tls-cert-file=/nonexistent.pem ! fakesink",
    ])
    .fails_with(2, "give both tls-cert-file and tls-key-file");
    run_args(&[
        "-q",
        "websocketsrc location=wss://127.0.0.1:1/ tls-cert-file=c.pem tls-key-file=k.pem ! fakesink",
    ])
    .fails_with(2, "tls-cert-file and tls-key-file serve wss:// when listening (port=)");
    run_args(&["-q", "websocketsrc port=0 ssl-strict=false ! fakesink"]).fails_with(
        2,
        "ssl-ca-file and ssl-strict choose the servers a client (location=)",
    );
    run_args(&[
        "-q",
        "fakesrc num-buffers=1 ! websocketsink location=ws://127.0.0.1:1/ ssl-ca-file=/nonexistent/ca.pem",
    ])
    .fails_with(2, "ssl-ca-file `/nonexistent/ca.pem`");
    let port = closed_port();
    run_args(&[
        "-q",
        &format!("websocketsrc location=ws://127.0.0.1:{port}/ ! fakesink"),
    ])
    .fails_with(1, &format!("cannot connect to ws://127.0.0.1:{port}/"));
    // Text messages must be text: the buffer that is not fails the sink, and the reader sees
    // its peer vanish.
    let dir = tmp();
    let bad = file(dir.path(), "bad.bin", &[b'o', b'k', 0xff, 0xfe]);
    let mut server = Proc::spawn(&["-q", "websocketsrc port=0 ! fakesink"], None);
    let port = server.port();
    run_args(&[
        "-q",
        &format!(
            "filesrc {} ! websocketsink location=ws://127.0.0.1:{port}/ message-type=text",
            prop("location", &bad)
        ),
    ])
    .fails_with(1, "buffer 0 is not UTF-8 text");
    server
        .finish()
        .fails_with(1, "went away without a close frame");
}

// --- wss:// ------------------------------------------------------------------------------------

/// `websocketsrc`/`websocketsink` properties that serve wss:// with the test's certificate.
fn serving(pki: &Pki) -> String {
    format!(
        "{} {}",
        prop("tls-cert-file", &pki.cert),
        prop("tls-key-file", &pki.key)
    )
}

#[test]
fn wss_carries_binary_and_text_byte_identical_in_both_directions() {
    let pki = Pki::new();
    let ca = prop("ssl-ca-file", &pki.ca);
    let dir = tmp();
    // Binary, a listening websocketsrc and a connecting websocketsink.
    let data = random_bytes(2_000_003, 83);
    let input = file(dir.path(), "in.bin", &data);
    let mut server = Proc::spawn(
        &[
            "-q",
            &format!("websocketsrc port=0 {} ! fdsink", serving(&pki)),
        ],
        None,
    );
    let port = server.port();
    send_file(
        &input,
        &format!("blocksize=65521 ! websocketsink {ca} location=wss://127.0.0.1:{port}/in"),
    );
    server.finish().ok().assert_stdout(&data);

    // Text, a listening websocketsink and a connecting websocketsrc, by name.
    // ASCII, so that no character is cut between two buffers (each must be UTF-8 alone).
    let text = "hello world\n".repeat(40_000);
    let input = file(dir.path(), "in.txt", text.as_bytes());
    let mut server = Proc::spawn(
        &[&format!(
            "filesrc {} blocksize=4096 ! websocketsink port=0 message-type=text {}",
            prop("location", &input),
            serving(&pki)
        )],
        None,
    );
    let port = server.port();
    run_args(&[
        "-q",
        &format!("websocketsrc {ca} message-types=text location=wss://localhost:{port}/ ! fdsink"),
    ])
    .ok()
    .assert_stdout(text.as_bytes());
    server.finish().ok();
}

#[test]
fn a_wss_peer_that_vanishes_without_close_notify_is_an_error() {
    let pki = Pki::new();
    let mut server = Proc::spawn(
        &[
            "-q",
            &format!("websocketsrc port=0 {} ! fakesink", serving(&pki)),
        ],
        None,
    );
    let port = server.port();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(pki.client(), name).unwrap();
    let tls = rustls::StreamOwned::new(conn, tcp);
    let (mut ws, _) = tungstenite::client(format!("wss://127.0.0.1:{port}/t"), tls).unwrap();
    ws.send(Message::binary(b"one".to_vec())).unwrap();
    ws.flush().unwrap();
    // Neither a close frame nor TLS's close_notify: the socket just closes.
    drop(ws);
    server
        .finish()
        .fails_with(1, "went away without a close frame after 1 messages");
}

#[test]
fn a_wss_server_whose_certificate_does_not_verify_is_refused() {
    let pki = Pki::new();
    let mut server = Proc::spawn(
        &[
            "-q",
            &format!(
                "fakesrc num-buffers=1 ! websocketsink port=0 {}",
                serving(&pki)
            ),
        ],
        None,
    );
    let port = server.port();
    let url = format!("wss://127.0.0.1:{port}/");
    run_args(&["-q", &format!("websocketsrc location={url} ! fakesink")]).fails_with(
        1,
        &format!("websocketsrc0: {url}: the server's certificate does not verify (unknown issuer"),
    );
    // The server sees its client give up during the handshake.
    server
        .finish()
        .fails_with(1, "TLS handshake with 127.0.0.1:");
}
