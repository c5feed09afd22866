//! shmsink → shmsrc between separate parallax-launch processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, Stdio};

use super::support::*;

/// Starts a consumer with `-m` and waits until it is connected (its source's "started").
fn consumer(sock: &str, tail: &[&str]) -> (Child, BufReader<ChildStderr>) {
    consumer_with(&[sock], tail)
}

/// As [`consumer`], with more properties for the shmsrc (`props`, the socket-path first).
fn consumer_with(props: &[&str], tail: &[&str]) -> (Child, BufReader<ChildStderr>) {
    let mut args = vec!["-m", "shmsrc"];
    args.extend_from_slice(props);
    args.push("!");
    args.extend_from_slice(tail);
    let mut child = launch(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "consumer ended early"
        );
        if line.contains(": started") {
            break;
        }
    }
    (child, err)
}

fn finish(mut child: Child, mut err: BufReader<ChildStderr>) -> (i32, String) {
    let mut text = String::new();
    err.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), text)
}

#[test]
fn two_consumers_each_get_every_byte() {
    let dir = tmp();
    let sock = prop("socket-path", &dir.path().join("s"));
    let data = random_bytes(3 << 20, 21);
    let mut producer = launch(&["-q", "fdsrc", "fd=0", "!", "shmsink", &sock])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The socket exists once the producer is built.
    while !dir.path().join("s").exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let outs: Vec<_> = (0..2).map(|i| dir.path().join(format!("out{i}"))).collect();
    let consumers: Vec<_> = outs
        .iter()
        .map(|o| consumer(&sock, &["filesink", &prop("location", o)]))
        .collect();
    let mut stdin = producer.stdin.take().unwrap();
    stdin.write_all(&data).unwrap();
    drop(stdin);
    for (c, err) in consumers {
        let (code, text) = finish(c, err);
        assert_eq!(code, 0, "{text}");
    }
    let out = wait(producer);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for o in &outs {
        assert_eq!(std::fs::read(o).unwrap(), data);
    }
    assert!(
        !dir.path().join("s").exists(),
        "the socket is removed at the end"
    );
}

#[test]
fn a_killed_consumer_gives_its_buffers_back_and_the_producer_finishes() {
    let dir = tmp();
    let sock = prop("socket-path", &dir.path().join("s"));
    // 64 KiB buffers from a 16-slot pool: a consumer that holds 16 would stall the producer.
    let producer = launch(&[
        "--stats=json",
        "fakesrc",
        "num-buffers=500",
        "sizetype=fixed",
        "sizemax=65536",
        "filltype=pattern",
        "!",
        "shmsink",
        &sock,
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    while !dir.path().join("s").exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // This consumer writes into a pipe nobody reads: it soon blocks, holding buffers.
    let (mut stuck, stuck_err) = consumer(&sock, &["fdsink", "fd=1"]);
    let mut first = [0u8; 65536];
    stuck.stdout.take().unwrap().read_exact(&mut first).unwrap();
    stuck.kill().unwrap();
    let (_, _) = finish(stuck, stuck_err);
    let out = wait(producer);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stats(&out)["sink_buffers"], 500);
}

#[test]
fn a_producer_that_goes_away_is_an_error_for_the_consumer() {
    let dir = tmp();
    let sock = prop("socket-path", &dir.path().join("s"));
    let mut producer = launch(&["-q", "fdsrc", "fd=0", "!", "shmsink", &sock])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    while !dir.path().join("s").exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (c, err) = consumer(&sock, &["fakesink"]);
    // Its input stays open until it is killed: a closed stdin would be a clean end of stream
    // that could win the race against the kill.
    let mut input = producer.stdin.take().unwrap();
    input.write_all(b"some bytes").unwrap();
    producer.kill().unwrap();
    producer.wait().unwrap();
    drop(input);
    let (code, text) = finish(c, err);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("went away before end of stream"), "{text}");
}

#[test]
fn garbage_from_the_socket_is_an_error_not_a_crash() {
    let dir = tmp();
    let path = dir.path().join("s");
    let listener = parallax::ipc::listen(&path, 0o600).unwrap();
    let sock = prop("socket-path", &path);
    let child = launch(&["shmsrc", &sock, "!", "fakesink"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Twice: validation asks for the caps (and, given garbage, takes the stream as bytes),
    // then the built shmsrc connects for the stream.
    let mut held = Vec::new();
    for _ in 0..2 {
        let conn = parallax::ipc::accept(&listener).unwrap();
        let hello = parallax::ipc::Frame::Hello {
            version: parallax::ipc::PROTOCOL,
        };
        parallax::ipc::send_frame(&conn, &hello, &[]).unwrap();
        parallax::ipc::send_with_fds(&conn, &[0xab; 40], &[]).unwrap();
        held.push(conn);
    }
    let out = wait(child);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("malformed frame"), "{}", stderr(&out));
}

#[test]
fn an_existing_socket_path_is_refused_before_running() {
    let dir = tmp();
    let f = file(dir.path(), "taken", b"x");
    let out = run(launch(&[
        "fakesrc",
        "!",
        "shmsink",
        &prop("socket-path", &f),
    ]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

#[test]
fn a_socket_left_by_a_producer_that_died_is_taken_over() {
    let dir = tmp();
    let path = dir.path().join("stale");
    // A socket file nobody listens on any more, as a killed producer leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let out = run(launch(&[
        "-q",
        "fakesrc",
        "num-buffers=3",
        "!",
        "shmsink",
        "wait-for-connection=false",
        &prop("socket-path", &path),
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!path.exists(), "the socket is removed at the end");
}

#[test]
fn a_socket_that_never_greets_is_an_error_not_a_hang() {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
    let dir = tmp();
    let path = dir.path().join("mute");
    // A seqpacket listener that accepts (the kernel does) but never says hello.
    let mute = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).unwrap();
    rustix::net::bind(&mute, &SocketAddrUnix::new(&path).unwrap()).unwrap();
    rustix::net::listen(&mute, 4).unwrap();
    let out = run(launch(&[
        "shmsrc",
        &prop("socket-path", &path),
        "!",
        "fakesink",
    ]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("within 5 s: is it a shmsink's socket?"),
        "{}",
        stderr(&out)
    );
    drop(mute);
}

#[test]
fn issue21_shmsrc_runs_isolated_and_untrusted() {
    // In a worker, shmsrc's buffers live in the producer's arena, which the parent never
    // mapped: handing them back as references failed with "unknown arena". They are copied
    // into the worker's own arena instead.
    for domain in ["exec=isolated", "trust=untrusted"] {
        let dir = tmp();
        let path = dir.path().join("s");
        let sock = prop("socket-path", &path);
        let data = random_bytes(2 << 20, 210);
        let mut producer = launch(&["-q", "fdsrc", "fd=0", "!", "shmsink", &sock])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while !path.exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let out = dir.path().join("out");
        let (c, err) = consumer_with(&[&sock, domain], &["filesink", &prop("location", &out)]);
        let mut stdin = producer.stdin.take().unwrap();
        stdin.write_all(&data).unwrap();
        drop(stdin);
        let (code_c, text) = finish(c, err);
        assert_eq!(code_c, 0, "{domain}: {text}");
        let p = wait(producer);
        assert_eq!(code(&p), 0, "{}", stderr(&p));
        assert!(
            std::fs::read(&out).unwrap() == data,
            "{domain}: bytes differ"
        );
    }
}

/// Waits until `path` exists, or fails if `child` ended first.
fn wait_for_path(path: &std::path::Path, child: &mut std::process::Child) {
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ended before {} appeared: {status:?}", path.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn issue21_an_isolated_shmsink_waiting_for_its_first_consumer_ends_at_the_first_signal() {
    for sig in [rustix::process::Signal::INT, rustix::process::Signal::TERM] {
        let dir = tmp();
        let path = dir.path().join("s");
        let sock = prop("socket-path", &path);
        let mut producer = launch(&[
            "-q",
            "fakesrc",
            "num-buffers=100",
            "!",
            "shmsink",
            &sock,
            "exec=isolated",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        wait_for_path(&path, &mut producer);
        rustix::process::kill_process(rustix::process::Pid::from_child(&producer), sig).unwrap();
        // The worker waited for a consumer and never heard of the drain: the first signal
        // did nothing, and the socket file stayed behind.
        let out = wait(producer);
        assert_eq!(code(&out), 130, "{sig:?}: {}", stderr(&out));
        assert!(!path.exists(), "{sig:?}: the socket file was left behind");
    }
}

#[test]
fn issue21_a_consumer_that_stops_reading_does_not_hold_a_drain_for_ever() {
    let dir = tmp();
    let path = dir.path().join("s");
    let sock = prop("socket-path", &path);
    // A file-backed source: its buffers are copied into the sink's own arena, whose slots
    // the stuck consumer holds; the drain waited for them for ever.
    let input = file(dir.path(), "in.bin", &random_bytes(8 << 20, 213));
    let mut producer = launch(&[
        "-q",
        "filesrc",
        &prop("location", &input),
        "!",
        "shmsink",
        &sock,
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_path(&path, &mut producer);
    // This consumer writes into a pipe nobody reads: it soon blocks, holding buffers.
    let (mut stuck, stuck_err) = consumer(&sock, &["fdsink", "fd=1"]);
    let mut first = [0u8; 4096];
    stuck
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&producer),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let out = wait(producer);
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    stuck.kill().unwrap();
    let _ = finish(stuck, stuck_err);
}

#[test]
fn issue21_an_empty_stream_still_waits_for_its_first_consumer() {
    let dir = tmp();
    let path = dir.path().join("s");
    let sock = prop("socket-path", &path);
    let empty = file(dir.path(), "empty", b"");
    let mut producer = launch(&[
        "-q",
        "filesrc",
        &prop("location", &empty),
        "!",
        "shmsink",
        &sock,
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_path(&path, &mut producer);
    // Connected after the producer's stream already ended: end of stream, not a refusal.
    let c = run(launch(&["-q", "shmsrc", &sock, "!", "fakesink"]));
    assert_eq!(code(&c), 0, "{}", stderr(&c));
    let p = wait(producer);
    assert_eq!(code(&p), 0, "{}", stderr(&p));
}

/// A producer of 5 GRAY8 frames on `sock`, waiting for its first consumer.
fn video_producer(dir: &std::path::Path) -> (Child, String) {
    let sock = prop("socket-path", &dir.join("v"));
    let mut producer = launch(&[
        "-q",
        "videotestsrc",
        "num-buffers=5",
        "!",
        "video/x-raw,format=GRAY8,width=16,height=8,framerate=30/1",
        "!",
        "shmsink",
        &sock,
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_path(&dir.join("v"), &mut producer);
    (producer, sock)
}

const GRAY8: &str = "video/x-raw, format=(string)GRAY8, width=(int)16, height=(int)8, \
                     framerate=(fraction)30/1";

#[test]
fn the_caps_travel_with_the_stream_and_shmsrc_negotiates_from_them() {
    let dir = tmp();
    let (producer, sock) = video_producer(dir.path());
    // Validating asks the producer for its caps without subscribing: the producer still waits.
    let out = run_expecting(
        launch(&["--validate", "-v", "shmsrc", &sock, "!", "fakesink"]),
        0,
    );
    assert!(
        stderr(&out).contains(&format!("/pipeline0/shmsrc0.src: caps = {GRAY8}"))
            || String::from_utf8_lossy(&out.stdout)
                .contains(&format!("/pipeline0/shmsrc0.src: caps = {GRAY8}")),
        "{}",
        stderr(&out)
    );
    // Downstream negotiates from the writer's caps: a filter that disagrees is refused before
    // anything runs, naming them.
    let out = run_expecting(
        launch(&["shmsrc", &sock, "!", "audio/x-raw", "!", "fakesink"]),
        2,
    );
    let text = stderr(&out);
    assert!(
        text.contains("cannot agree on caps") && text.contains(GRAY8),
        "{text}"
    );
    // Caps said by hand that disagree with the writer's are an error naming both.
    let out = run(launch(&[
        "shmsrc",
        &sock,
        "caps=video/x-raw,format=RGB",
        "!",
        "fakesink",
    ]));
    assert_ne!(code(&out), 0);
    let text = stderr(&out);
    assert!(
        text.contains("caps=video/x-raw, format=(string)RGB disagree with the shmsink at")
            && text.contains(&format!("which sends {GRAY8}")),
        "{text}"
    );
    // None of those connections was a consumer: the real one gets every frame.
    let out = run_expecting(
        launch(&[
            "-q",
            "--stats=json",
            "shmsrc",
            &sock,
            "!",
            "video/x-raw,format=GRAY8",
            "!",
            "fakesink",
            "name=out",
        ]),
        0,
    );
    let st = stats(&out);
    assert_eq!(element(&st, "out")["buffers"], 5);
    assert_eq!(element(&st, "out")["bytes"], 5 * 16 * 8);
    let out = wait(producer);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn caps_given_by_hand_that_match_the_writer_are_taken() {
    let dir = tmp();
    let (producer, sock) = video_producer(dir.path());
    let out = run_expecting(
        launch(&[
            "-q",
            "--stats=json",
            "shmsrc",
            &sock,
            "caps=video/x-raw,format=GRAY8,width=16,height=8,framerate=30/1",
            "!",
            "fakesink",
            "name=out",
        ]),
        0,
    );
    assert_eq!(element(&stats(&out), "out")["buffers"], 5);
    assert_eq!(code(&wait(producer)), 0);
    // Without a producer, caps given by hand still let the description validate.
    run_expecting(
        launch(&[
            "--validate",
            "shmsrc",
            "socket-path=/nonexistent/socket",
            "caps=audio/x-raw,rate=8000",
            "!",
            "audio/x-raw",
            "!",
            "fakesink",
        ]),
        0,
    );
}
