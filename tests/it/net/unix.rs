//! unixsrc and unixsink, stream and datagram.

use rustix::process::Signal;

use super::*;

#[test]
fn unixsink_into_listening_unixsrc_is_byte_identical() {
    let dir = tmp();
    let data = random_bytes(4_000_037, 81);
    let input = file(dir.path(), "in.bin", &data);
    let sock = dir.path().join("s.sock");
    let path = prop("socket-path", &sock);
    let mut rx = Proc::spawn(&["-m", &format!("unixsrc {path} ! fdsink")], None);
    rx.wait_for("listening on");
    run_args(&[
        "-q",
        &format!("filesrc {} ! unixsink {path}", prop("location", &input)),
    ])
    .ok();
    let done = rx.finish().ok();
    done.assert_stdout(&data);
    assert!(!sock.exists(), "the socket file is removed at the end");
}

#[test]
fn listening_unixsink_into_connecting_unixsrc_is_byte_identical() {
    let dir = tmp();
    let data = random_bytes(3_000_011, 82);
    let input = file(dir.path(), "in.bin", &data);
    let sock = dir.path().join("s.sock");
    let path = prop("socket-path", &sock);
    let mut tx = Proc::spawn(
        &[
            "-m",
            &format!(
                "filesrc {} ! unixsink {path} listen=true",
                prop("location", &input)
            ),
        ],
        None,
    );
    tx.wait_for("waiting for a reader on");
    let done = run_args(&["-q", &format!("unixsrc {path} listen=false ! fdsink")]).ok();
    tx.finish().ok();
    done.assert_stdout(&data);
}

#[test]
fn unix_datagrams_arrive_whole_and_counted() {
    const COUNT: usize = 500;
    let dir = tmp();
    let data = random_bytes(COUNT * 4096, 83);
    let input = file(dir.path(), "in.bin", &data);
    let sock = dir.path().join("d.sock");
    let path = prop("socket-path", &sock);
    let mut rx = Proc::spawn(
        &[
            "-m",
            "--stats=json",
            &format!("unixsrc {path} socket-type=datagram num-buffers={COUNT} ! fdsink"),
        ],
        None,
    );
    rx.wait_for("receiving datagrams on");
    // More than a socket queue holds: a full receiver holds the sender back, nothing is lost.
    send_file(
        &input,
        &format!("blocksize=4096 ! unixsink {path} socket-type=datagram"),
    );
    let done = rx.finish().ok();
    done.assert_stdout(&data);
    assert_eq!(element(&done.stats(), "unixsrc0")["buffers"], COUNT as u64);
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_regular_file_is_not() {
    let dir = tmp();
    let sock = dir.path().join("stale.sock");
    // A socket whose process is gone: bound, then dropped without unlinking.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let mut rx = Proc::spawn(
        &[
            "-m",
            "-e",
            &format!("unixsrc {} ! fakesink", prop("socket-path", &sock)),
        ],
        None,
    );
    rx.wait_for("listening on");
    rx.signal(Signal::INT);
    assert_eq!(rx.finish().code, 0);

    let plain = file(dir.path(), "plain", b"keep me");
    let done = run_args(&[&format!(
        "unixsrc {} ! fakesink",
        prop("socket-path", &plain)
    )]);
    done.fails_with(1, "exists and is not a socket");
    assert_eq!(std::fs::read(&plain).unwrap(), b"keep me");
}

#[test]
fn a_live_socket_is_not_taken_over() {
    let dir = tmp();
    let sock = dir.path().join("live.sock");
    let _live = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let done = run_args(&[&format!(
        "unixsrc {} ! fakesink",
        prop("socket-path", &sock)
    )]);
    done.fails_with(1, "is in use by another process");
}

#[test]
fn connecting_to_a_missing_socket_names_it() {
    let dir = tmp();
    let sock = dir.path().join("nobody.sock");
    let done = run_args(&[&format!(
        "fakesrc num-buffers=1 ! unixsink {}",
        prop("socket-path", &sock)
    )]);
    done.fails_with(
        1,
        &format!("unixsink0: cannot connect to socket {}", sock.display()),
    );
}

#[test]
fn a_unix_peer_closing_mid_stream_is_eos_for_the_source() {
    use std::io::Write as _;
    let dir = tmp();
    let sock = dir.path().join("s.sock");
    let mut rx = Proc::spawn(
        &[
            "-m",
            &format!("unixsrc {} ! fdsink", prop("socket-path", &sock)),
        ],
        None,
    );
    rx.wait_for("listening on");
    let mut peer = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    peer.write_all(b"unix bytes").unwrap();
    drop(peer);
    let done = rx.finish().ok();
    assert_eq!(done.stdout, b"unix bytes");
}

#[test]
fn sigint_wakes_a_listening_unixsink_that_waits_for_its_reader() {
    let dir = tmp();
    let sock = dir.path().join("w.sock");
    let mut tx = Proc::spawn(
        &[
            "-m",
            "-e",
            &format!(
                "fakesrc sizetype=fixed sizemax=4096 ! unixsink {} listen=true",
                prop("socket-path", &sock)
            ),
        ],
        None,
    );
    tx.wait_for("waiting for a reader on");
    tx.signal(Signal::INT);
    let done = tx.finish();
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(!sock.exists(), "the socket file is removed at the end");
}
