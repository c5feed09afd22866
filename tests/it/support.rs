//! Running the binaries with a watchdog, temp files, and reading `--stats=json`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The watchdog: no test run may take longer (a hang fails the test instead of CI).
pub const WATCHDOG: Duration = Duration::from_secs(60);

pub fn launch_bin() -> &'static str {
    env!("CARGO_BIN_EXE_parallax-launch")
}

pub fn inspect_bin() -> &'static str {
    env!("CARGO_BIN_EXE_parallax-inspect")
}

/// `parallax-launch ARGS...`
pub fn launch(args: &[&str]) -> Command {
    let mut c = Command::new(launch_bin());
    c.args(args);
    c
}

/// Starts `parallax-launch ARGS...` with stdin, stdout and stderr on pipes the test holds.
pub fn spawn_piped(args: &[&str]) -> Child {
    launch(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Runs to completion under the watchdog, with stdin inherited unless set.
pub fn run(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    wait(child)
}

/// Runs `cmd` under the watchdog and asserts it exits `want`, showing the command and its
/// stderr otherwise.
#[track_caller]
pub fn run_expecting(cmd: Command, want: i32) -> Output {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert_eq!(code(&out), want, "{shown}: {}", stderr(&out));
    out
}

/// Waits for `child` under the watchdog, collecting its output.
pub fn wait(mut child: Child) -> Output {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = stdout.as_mut() {
            s.read_to_end(&mut v).unwrap();
        }
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = stderr.as_mut() {
            s.read_to_end(&mut v).unwrap();
        }
        v
    });
    let deadline = Instant::now() + WATCHDOG;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("watchdog: the command ran for more than {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// Exit code, or a panic naming the signal.
pub fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}\nstderr: {}", o.status, stderr(o)))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `--stats=json` object printed on stderr.
pub fn stats(o: &Output) -> serde_json::Value {
    let text = stderr(o);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON stats in stderr: {text}"));
    serde_json::from_str(line).unwrap()
}

/// The stats entry of element `name`.
pub fn element<'a>(stats: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    stats["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no element {name} in {stats}"))
}

/// A temp dir that lives for the test.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Writes `data` to `dir/name` and returns the path.
pub fn file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `key=value` with a path.
pub fn prop(key: &str, path: &Path) -> String {
    format!("{key}={}", path.display())
}

/// Whether a tool a test compares against runs (`tool --version`). `.ci/run` installs every
/// such tool and sets `CI`, so there a missing one fails the test; elsewhere the test says it
/// is skipped.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found || skipped(tool)
}

/// Whether gst-launch-1.0 has every element in `elements`; as with [`have_tool`], CI must.
pub fn gst_has(elements: &[&str]) -> bool {
    let found = elements.iter().all(|e| {
        Command::new("gst-inspect-1.0")
            .args(["--exists", e])
            .status()
            .is_ok_and(|s| s.success())
    });
    found || skipped(&format!("gst-launch-1.0 with {elements:?}"))
}

/// A test goes without `what`: it says so and is skipped (false), or fails under CI, which
/// installs it.
fn skipped(what: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI installs {what} (.ci/run)"
    );
    eprintln!("skipped: no {what}");
    false
}
