//! Network elements (issue 6), end to end with the real binary on 127.0.0.1 only: byte-identical
//! TCP and Unix streams in both directions, exact datagram counts for UDP and multicast, peer
//! close, refused connections, unknown hosts, slow readers with bounded memory, Ctrl-C while
//! blocked in accept or recv.
//!
//! No test depends on timing: servers are started with `port=0` and the port is read from the
//! line they print; clients are known to be connected from their `-m` messages; datagram counts
//! stay below what a receive buffer holds even if the receiver never ran meanwhile.

mod framing;
#[cfg(feature = "http")]
pub mod http;
#[cfg(any(feature = "http", feature = "websocket"))]
mod pki;
mod tcp;
mod udp;
mod unix;
#[cfg(feature = "websocket")]
mod ws;
#[cfg(feature = "zenoh")]
mod zenoh;

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use super::support::*;

/// A running `parallax-launch` whose stderr is read line by line as it comes, and whose
/// stdout is collected in the background (so a full pipe never stalls it).
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<()>>,
}

/// What a finished [`Proc`] left.
pub struct Done {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Done {
    /// The `--stats=json` object, when the run printed one.
    pub fn stats(&self) -> serde_json::Value {
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON stats in stderr:\n{}", self.stderr));
        serde_json::from_str(line).unwrap()
    }

    /// Asserts exit `code` and a stderr containing `fragment`, showing stderr otherwise.
    #[track_caller]
    pub fn fails_with(&self, code: i32, fragment: &str) {
        assert_eq!(self.code, code, "{}", self.stderr);
        assert!(self.stderr.contains(fragment), "{}", self.stderr);
    }

    /// Asserts stdout is exactly `want` (the message gives lengths, not megabytes of bytes).
    #[track_caller]
    pub fn assert_stdout(&self, want: &[u8]) {
        assert!(
            self.stdout == want,
            "{} of {} bytes",
            self.stdout.len(),
            want.len()
        );
    }

    /// Asserts exit 0, showing stderr otherwise.
    pub fn ok(self) -> Done {
        assert_eq!(self.code, 0, "stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }
}

impl Proc {
    /// Starts `parallax-launch ARGS...` with stdin from `stdin` (a file) or a pipe.
    pub fn spawn(args: &[&str], stdin: Option<std::fs::File>) -> Proc {
        Proc::spawn_command(launch(args), stdin)
    }

    /// Starts `program ARGS...` (a wrapper around parallax-launch, such as `ip netns exec`),
    /// stdin a pipe.
    pub fn spawn_program(program: &str, args: &[&str]) -> Proc {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args);
        Proc::spawn_command(cmd, None)
    }

    fn spawn_command(mut cmd: std::process::Command, stdin: Option<std::fs::File>) -> Proc {
        cmd.stdin(match stdin {
            Some(f) => Stdio::from(f),
            None => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn parallax-launch");
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut v = Vec::new();
            out.read_to_end(&mut v).unwrap();
            v
        });
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The write end of its stdin (once).
    pub fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin is a pipe")
    }

    /// Waits for a stderr line containing `fragment`, under the watchdog.
    pub fn wait_for(&mut self, fragment: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(fragment)) {
            return l.clone();
        }
        let deadline = Instant::now() + WATCHDOG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(fragment) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no stderr line with {fragment:?} ({e:?}); seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The next stderr line not seen yet, under the watchdog.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(WATCHDOG) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(e) => panic!("no more stderr ({e:?}); seen:\n{}", self.seen.join("\n")),
        }
    }

    /// The port a `port=0` element reported (`NAME: current-port = N` or `NAME: port = N`).
    pub fn port(&mut self) -> u16 {
        let line = self.wait_for("port = ");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: Signal) {
        kill_process(Pid::from_child(&self.child), sig).unwrap();
    }

    /// Waits for the exit under the watchdog and collects everything.
    pub fn finish(mut self) -> Done {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + WATCHDOG;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "watchdog: still running after {WATCHDOG:?}; stderr so far:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.stderr.take().unwrap().join().unwrap();
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.lines.try_iter());
        Done {
            code: status
                .code()
                .unwrap_or_else(|| panic!("killed: {status:?}\n{}", lines.join("\n"))),
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: lines.join("\n"),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failed assertion must not leave a server running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TCP port nothing listens on: bound by the kernel's choice, then closed again.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs `args` to completion (stdin closed), under the watchdog.
pub fn run_args(args: &[&str]) -> Done {
    let devnull = std::fs::File::open("/dev/null").unwrap();
    Proc::spawn(args, Some(devnull)).finish()
}

/// `parallax-launch -q "filesrc location=INPUT REST"` to completion; asserts exit 0.
pub fn send_file(input: &std::path::Path, rest: &str) -> Done {
    run_args(&["-q", &format!("filesrc {} {rest}", prop("location", input))]).ok()
}

/// Polls `ready` until it holds, under the watchdog.
pub fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !ready() {
        assert!(Instant::now() < deadline, "watchdog: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The peak RSS of a `--stats=json` run, in KiB.
pub fn peak_rss_kib(stats: &serde_json::Value) -> u64 {
    stats["peak_rss_kib"].as_u64().expect("peak_rss_kib")
}

#[test]
fn plan_inspect_and_dot_show_the_async_domain() {
    let out = run(launch(&[
        "-v",
        "--validate",
        "fdsrc ! tcpclientsink port=1 tcpserversrc port=0 ! fdsink fd=2",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "plan: async domain (tokio runtime on px-async): tcpclientsink0, tcpserversrc0"
        ) || err.contains(
            "plan: async domain (tokio runtime on px-async): tcpserversrc0, tcpclientsink0"
        ),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l
            .starts_with("plan: fdsrc0.src -> tcpclientsink0.sink crosses thread ")
            && l.ends_with("-> async through a bounded channel of 16 buffers")),
        "{err}"
    );
    assert!(err.contains("output of tcpserversrc0"), "{err}");

    let mut c = std::process::Command::new(inspect_bin());
    c.arg("udpsrc");
    let out = run(c);
    let card = String::from_utf8(out.stdout).unwrap();
    assert!(
        card.contains("planner: async: a task on the pipeline's tokio runtime"),
        "{card}"
    );
    let mut c = std::process::Command::new(inspect_bin());
    c.args(["--json", "tcpserversink"]);
    let v: serde_json::Value = serde_json::from_slice(&run(c).stdout).unwrap();
    assert_eq!(v["hints"]["async_io"], true);
    assert!(v["placement"].as_str().unwrap().starts_with("async:"));

    let out = run(launch(&[
        "--validate",
        "--dot",
        "tcpclientsrc port=1 ! identity ! udpsink port=1",
    ]));
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.contains("async domain (tokio runtime"), "{dot}");
}

#[test]
fn pipelines_without_network_elements_start_no_runtime() {
    // -m lists every thread that starts: no px-async without an async element.
    let out = run(launch(&["-m", "fakesrc num-buffers=3 ! fakesink"]));
    assert_eq!(code(&out), 0);
    assert!(!stderr(&out).contains("px-async"), "{}", stderr(&out));
    let out = run(launch(&[
        "-m",
        &format!(
            "fakesrc num-buffers=1 ! tcpclientsink host=127.0.0.1 port={}",
            closed_port()
        ),
    ]));
    assert!(stderr(&out).contains("(px-async)"), "{}", stderr(&out));
}
