//! Ctrl-C and SIGTERM: the first drains (EOS at the sources, everything read is written), the
//! second exits at once; exit 0 with -e, 130 without.

use std::io::{Read as _, Write as _};
use std::os::fd::AsFd;
use std::process::Child;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use super::support::*;

fn signal(child: &Child, sig: Signal) {
    let pid = Pid::from_child(child);
    kill_process(pid, sig).unwrap();
}

/// Polls `ready` until it holds, under the watchdog.
fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !ready() {
        assert!(Instant::now() < deadline, "watchdog: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn fifo_case(eos_flag: bool, sig: Signal, middle: &[&str]) -> (i32, Vec<u8>, Vec<u8>) {
    let dir = tmp();
    let fifo = dir.path().join("in.fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let output = dir.path().join("out.bin");
    let mut args = vec!["-q"];
    if eos_flag {
        args.push("-e");
    }
    let (i, o) = (prop("location", &fifo), prop("location", &output));
    args.extend(["filesrc", &i, "!"]);
    for m in middle {
        args.extend([*m, "!"]);
    }
    args.extend(["filesink", &o]);
    let child = spawn_piped(&args);
    // Opening blocks until parallax opens its end.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    // More than a pipe holds, in odd sizes, so reads straddle writes.
    let data = random_bytes(300_001, 77);
    for chunk in data.chunks(7919) {
        writer.write_all(chunk).unwrap();
    }
    // Everything written has been read by parallax once the FIFO is empty.
    until("parallax reads the FIFO", || {
        rustix::io::ioctl_fionread(writer.as_fd()).unwrap() == 0
    });
    signal(&child, sig);
    let out = wait(child);
    drop(writer); // the writer stayed open the whole time
    (code(&out), std::fs::read(&output).unwrap(), data)
}

#[test]
fn sigint_with_e_drains_a_fifo_that_stays_open_and_exits_0() {
    let (code, written, data) = fifo_case(true, Signal::INT, &[]);
    assert_eq!(code, 0);
    assert!(
        written == data,
        "{} of {} bytes written",
        written.len(),
        data.len()
    );
}

#[test]
fn sigint_drains_through_elements_run_apart() {
    // Their output halves relay the stream: they end with upstream's end of stream, not at
    // the drain, so nothing already read is dropped on the way.
    for middle in [
        "identity exec=rt",
        "identity exec=async",
        "identity exec=isolated",
    ] {
        let (code, written, data) = fifo_case(true, Signal::INT, &[middle]);
        assert_eq!(code, 0, "{middle}");
        assert!(
            written == data,
            "{middle}: {} of {} bytes written",
            written.len(),
            data.len()
        );
    }
}

#[test]
fn sigint_without_e_drains_too_but_exits_130() {
    let (code, written, data) = fifo_case(false, Signal::INT, &[]);
    assert_eq!(code, 130);
    assert!(
        written == data,
        "{} of {} bytes written",
        written.len(),
        data.len()
    );
}

#[test]
fn sigterm_drains_like_sigint() {
    let (code, written, data) = fifo_case(true, Signal::TERM, &[]);
    assert_eq!(code, 0);
    assert!(written == data);
}

#[test]
fn a_stdin_pipe_that_stays_open_drains_to_stdout() {
    let mut child = spawn_piped(&["-q", "-e", "fdsrc", "!", "fdsink"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello through a pipe").unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = [0u8; 20];
    stdout.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello through a pipe");
    signal(&child, Signal::INT);
    let out = wait(child);
    drop(stdin);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn sigint_ends_an_isolated_source_that_waits_for_input() {
    let mut child = spawn_piped(&["-q", "-e", "fdsrc", "exec=isolated", "!", "fdsink"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"read by a worker").unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = [0u8; 16];
    stdout.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"read by a worker");
    // The worker now waits on the open pipe; Ctrl-C ends the stream anyway.
    signal(&child, Signal::INT);
    let out = wait(child);
    drop(stdin);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_second_sigint_exits_at_once() {
    // 1 MiB buffers into a stdout nobody reads: the sink blocks, so the drain cannot finish.
    let child = spawn_piped(&["-q", "fakesrc sizetype=fixed sizemax=1048576 ! fdsink"]);
    let stdout = child.stdout.as_ref().unwrap();
    until("the pipeline writes", || {
        rustix::io::ioctl_fionread(stdout.as_fd()).unwrap() > 0
    });
    signal(&child, Signal::INT);
    signal(&child, Signal::INT);
    let out = wait(child);
    assert_eq!(code(&out), 130, "{}", stderr(&out));
}
