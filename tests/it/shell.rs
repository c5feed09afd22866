//! The shell around the engine, on the real binary: the progress line (through a
//! pseudo-terminal, and its absence on a pipe), `-v`, `--tap`, logs, and element names in the
//! generated bash completion.

use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

// --- a pseudo-terminal for stderr ------------------------------------------------------------

/// A pty whose slave end becomes a child's stderr; everything the child writes there is
/// collected from the master end by a thread until the child (the last holder) closes it.
struct Pty {
    slave: Option<OwnedFd>,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    fn new() -> Pty {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(
            name.as_c_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .expect("open the pty slave");
        // A known width, so that the line is laid out as on a real terminal.
        rustix::termios::tcsetwinsize(
            &master,
            rustix::termios::Winsize {
                ws_row: 40,
                ws_col: 160,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            let mut master = std::fs::File::from(master);
            let mut buf = [0u8; 4096];
            // Ends with EIO once no process holds the slave open any more.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            slave: Some(slave),
            output,
            reader: Some(reader),
        }
    }

    /// The slave end, for the child's stderr. Call once; the test keeps no copy.
    fn stderr(&mut self) -> Stdio {
        Stdio::from(self.slave.take().expect("one child per pty"))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits (under the watchdog) until the terminal shows `what`.
    fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + WATCHDOG;
        while !self.text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "watchdog: the terminal never showed {what:?}; it shows:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the child wrote, once it has closed the terminal.
    fn finish(mut self) -> String {
        drop(self.slave.take());
        self.reader.take().unwrap().join().unwrap();
        self.text()
    }
}

/// `parallax-launch ARGS` with stderr on a fresh pty, stdout on a pipe.
fn launch_on_terminal(args: &[&str], pty: &mut Pty) -> Command {
    let mut cmd = launch(args);
    cmd.env_remove("PARALLAX_LOG")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stderr(pty.stderr());
    cmd
}

/// Runs `cmd` to completion under the watchdog; returns (exit code, stdout).
fn run_to_end(mut cmd: Command) -> (i32, Vec<u8>) {
    cmd.stdout(Stdio::piped());
    let out = wait(cmd.spawn().expect("spawn"));
    (code(&out), out.stdout)
}

// --- progress ----------------------------------------------------------------------------------

#[test]
fn progress_bar_on_a_terminal_ends_at_the_file_size_and_never_touches_stdout() {
    let dir = tmp();
    let data = random_bytes(100_000, 3);
    let input = file(dir.path(), "in.bin", &data);
    let mut pty = Pty::new();
    let cmd = launch_on_terminal(
        &[
            "filesrc",
            &prop("location", &input),
            "blocksize=4096",
            "!",
            "fdsink",
        ],
        &mut pty,
    );
    let (status, stdout) = run_to_end(cmd);
    let screen = pty.finish();
    assert_eq!(status, 0, "{screen}");
    assert_eq!(stdout, data, "the progress line must never reach stdout");
    // The final state: the whole file read, every buffer into the sink, then the stats.
    assert!(screen.contains("97.66 KiB/97.66 KiB 100%"), "{screen}");
    assert!(screen.contains("ETA"), "{screen}");
    assert!(screen.contains("25 buffers"), "{screen}");
    let last_bar = screen.rfind("100%").unwrap();
    let table = screen
        .find("end of stream: 25 buffers")
        .expect("the stats table follows");
    assert!(last_bar < table, "{screen}");
    // The table starts on a line of its own, not after the bar.
    assert!(screen.contains("\r\nelement "), "{screen}");
}

#[test]
fn progress_line_counts_while_the_pipeline_runs() {
    // fdsrc has no size: a spinner with bytes and buffers into the sinks. The test feeds stdin
    // itself, so the pipeline is mid-stream for as long as the test wants.
    let mut pty = Pty::new();
    let mut cmd = launch_on_terminal(&["fdsrc", "!", "fdsink"], &mut pty);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    // The command holds a copy of the terminal's slave end: only the child may keep it open.
    drop(cmd);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello").unwrap();
    pty.wait_for("5 B into sinks, 1 buffer,");
    stdin.write_all(b" world").unwrap();
    pty.wait_for("11 B into sinks, 2 buffers,");
    drop(stdin);
    let out = wait(child);
    let screen = pty.finish();
    assert_eq!(code(&out), 0, "{screen}");
    assert_eq!(out.stdout, b"hello world");
    assert!(screen.contains("B/s"), "a rate: {screen}");
    assert!(screen.contains("00:00:"), "elapsed time: {screen}");
}

#[test]
fn no_progress_line_with_quiet_or_no_position_on_a_terminal() {
    let mut pty = Pty::new();
    let (status, _) = run_to_end(launch_on_terminal(
        &["-q", "fakesrc", "num-buffers=100", "!", "fakesink"],
        &mut pty,
    ));
    assert_eq!(status, 0);
    assert_eq!(pty.finish(), "", "-q prints nothing at all");

    let mut pty = Pty::new();
    let (status, _) = run_to_end(launch_on_terminal(
        &[
            "--no-position",
            "fakesrc",
            "num-buffers=100",
            "!",
            "fakesink",
        ],
        &mut pty,
    ));
    assert_eq!(status, 0);
    let screen = pty.finish();
    assert!(screen.starts_with("element "), "only the stats: {screen}");
    assert!(!screen.contains("into sinks,"), "{screen}");
}

#[test]
fn no_progress_line_when_stderr_is_a_pipe() {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &random_bytes(50_000, 4));
    let out = run(launch(&[
        "filesrc",
        &prop("location", &input),
        "blocksize=1000",
        "!",
        "fakesink",
    ]));
    assert_eq!(code(&out), 0);
    let err = stderr(&out);
    assert!(err.starts_with("element "), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
    assert!(
        !err.contains("ETA") && !err.contains("into sinks,"),
        "{err}"
    );
}

// --- -v ------------------------------------------------------------------------------------------

#[test]
fn verbose_prints_every_set_property_in_gst_form() {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", b"abc");
    let out = run(launch(&[
        "-v",
        "-q",
        "filesrc",
        &prop("location", &input),
        "blocksize=1KiB",
        "!",
        "queue",
        "max-size-buffers=5",
        "!",
        "fakesink",
        "sync=true",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    for line in [
        format!("/pipeline0/filesrc0: location = \"{}\"", input.display()),
        "/pipeline0/filesrc0: blocksize = 1024".to_owned(),
        "/pipeline0/queue0: max-size-buffers = 5".to_owned(),
        "/pipeline0/filesrc0.src -> /pipeline0/queue0.sink".to_owned(),
        "/pipeline0/queue0.src -> /pipeline0/fakesink0.sink".to_owned(),
        "plan: thread 0 (main thread, from filesrc0): filesrc0".to_owned(),
        "plan: thread 1 (px-queue0, from queue0): queue0, fakesink0".to_owned(),
    ] {
        assert!(
            err.lines().any(|l| l == line),
            "no line {line:?} in:\n{err}"
        );
    }
    // sync=true is applied now: the sink renders at running time (issue 13).
    assert!(
        err.lines()
            .any(|l| l == "/pipeline0/fakesink0: sync = true"),
        "{err}"
    );
    // Defaults that were not set are not printed.
    assert!(!err.contains("num-buffers"), "{err}");
}

// --- --tap ---------------------------------------------------------------------------------------

fn hex_row(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn tap_shows_every_buffer_and_leaves_the_output_byte_identical() {
    let dir = tmp();
    let data = random_bytes(10_000, 5);
    let input = file(dir.path(), "in.bin", &data);
    let with = dir.path().join("with.bin");
    let without = dir.path().join("without.bin");
    let pipeline = |out: &std::path::Path| {
        vec![
            "filesrc".to_owned(),
            prop("location", &input),
            "blocksize=4096".to_owned(),
            "!".to_owned(),
            "identity".to_owned(),
            "!".to_owned(),
            "filesink".to_owned(),
            prop("location", out),
        ]
    };
    let mut args = vec!["-q", "--tap", "identity0", "--tap", "filesink0.sink"];
    let tapped = pipeline(&with);
    args.extend(tapped.iter().map(String::as_str));
    let out = run(launch(&args));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plain = pipeline(&without);
    let mut args = vec!["-q"];
    args.extend(plain.iter().map(String::as_str));
    assert_eq!(code(&run(launch(&args))), 0);
    assert_eq!(std::fs::read(&with).unwrap(), data);
    assert_eq!(
        std::fs::read(&with).unwrap(),
        std::fs::read(&without).unwrap()
    );

    let err = stderr(&out);
    for point in ["identity0.src", "filesink0.sink"] {
        for (n, (size, offset)) in [(4096, 0), (4096, 4096), (1808, 8192)].iter().enumerate() {
            let head = format!("tap {point}: #{n} {size} bytes, seq {n}, offset {offset}, ");
            assert!(err.contains(&head), "no {head:?} in:\n{err}");
        }
        assert!(
            err.contains(&format!("tap {point}: end of stream after 3 buffers")),
            "{err}"
        );
    }
    // The first bytes of each buffer, as a hex dump.
    assert!(
        err.contains(&format!("  00000000: {} ", hex_row(&data[..16]))),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "  00000010: {} ",
            hex_row(&data[4096 + 16..4096 + 32])
        )),
        "{err}"
    );
    assert!(err.contains("  ... 4064 more bytes"), "{err}");
}

#[test]
fn tap_json_is_one_object_per_buffer_on_stderr() {
    let dir = tmp();
    let data = random_bytes(5000, 6);
    let input = file(dir.path(), "in.bin", &data);
    let out = run(launch(&[
        "-q",
        "--tap=filesrc0",
        "--tap-format=json",
        "filesrc",
        &prop("location", &input),
        "blocksize=2000",
        "!",
        "fdsink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, data, "taps write to stderr only");
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 4, "three buffers and the end: {lines:?}");
    for (n, (size, offset)) in [(2000usize, 0usize), (2000, 2000), (1000, 4000)]
        .into_iter()
        .enumerate()
    {
        let l = &lines[n];
        assert_eq!(l["tap"], "filesrc0.src");
        assert_eq!(l["index"], n);
        assert_eq!(l["size"], size);
        assert_eq!(l["offset"], offset);
        assert_eq!(l["sequence"], n);
        let head: String = data[offset..offset + 32]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(l["head"], head);
    }
    assert_eq!(lines[3]["eos"], true);
    assert_eq!(lines[3]["buffers"], 3);
}

#[test]
fn tap_on_one_tee_branch_sees_only_that_branch() {
    let out = run(launch(&[
        "-q",
        "--tap",
        "t.src_1",
        "--tap-format",
        "json",
        "fakesrc num-buffers=7 sizetype=fixed sizemax=10 ! tee name=t ! queue ! fakesink t. ! queue ! fakesink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let buffers = err.lines().filter(|l| l.contains("\"index\"")).count();
    assert_eq!(buffers, 7, "{err}");
    assert!(
        err.lines().all(|l| l.contains("\"tap\":\"t.src_1\"")),
        "{err}"
    );
}

#[test]
fn unknown_tap_points_exit_2_with_a_suggestion_before_anything_runs() {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", b"abc");
    let output = dir.path().join("out.bin");
    let out = run(launch(&[
        "--tap",
        "filesrc",
        "filesrc",
        &prop("location", &input),
        "!",
        "filesink",
        &prop("location", &output),
    ]));
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("error: --tap filesrc: no element `filesrc` in the pipeline"),
        "{err}"
    );
    assert!(err.contains("= help: did you mean `filesrc0`?"), "{err}");
    assert!(!output.exists(), "nothing ran");

    let out = run(launch(&[
        "--tap",
        "filesrc0.sorc",
        "filesrc",
        &prop("location", &input),
        "!",
        "fakesink",
    ]));
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("`filesrc0` has no linked pad `sorc`"), "{err}");
    assert!(err.contains("did you mean `src`?"), "{err}");
}

// --- logs ----------------------------------------------------------------------------------------

#[test]
fn debug_filter_selects_one_element_and_logs_go_to_stderr_only() {
    let dir = tmp();
    let data = random_bytes(3000, 7);
    let input = file(dir.path(), "in.bin", &data);
    let mut cmd = launch(&[
        "-q",
        "-d",
        "info,fdsink0=debug",
        "filesrc",
        &prop("location", &input),
        "!",
        "identity",
        "!",
        "fdsink",
    ]);
    cmd.env_remove("PARALLAX_LOG");
    let out = run(cmd);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, data, "logs never reach stdout");
    let err = stderr(&out);
    assert!(err.contains("INFO"), "{err}");
    assert!(err.contains("Pipeline running"), "{err}");
    // The element's own span names it.
    assert!(
        err.lines().any(|l| l.contains("DEBUG")
            && l.contains("element{name=fdsink0 factory=fdsink}")
            && l.contains("End of stream: finishing")),
        "{err}"
    );
    // Other elements stay at info: filesrc0's debug line is filtered out.
    assert!(!err.contains("Source reached end of stream"), "{err}");
    assert!(!err.contains("element{name=filesrc0"), "{err}");
}

#[test]
fn parallax_log_takes_gst_style_filters_and_d_overrides_it() {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &random_bytes(10_000, 8));
    let args = [
        "-q".to_owned(),
        "filesrc".to_owned(),
        prop("location", &input),
        "blocksize=4000".to_owned(),
        "!".to_owned(),
        "fakesink".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // gst's form: a factory and a numeric level (6 = trace).
    let mut cmd = launch(&args);
    cmd.env("PARALLAX_LOG", "filesrc:6");
    let out = run(cmd);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let produced: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("TRACE") && l.contains("Produced a buffer"))
        .collect();
    assert_eq!(produced.len(), 3, "{err}");
    assert!(produced
        .iter()
        .all(|l| l.contains("element{name=filesrc0 factory=filesrc}")));
    assert!(!err.contains("fakesink0"), "{err}");

    // -d wins over the environment.
    let mut with_flag = vec!["-d", "error"];
    with_flag.extend(&args);
    let mut cmd = launch(&with_flag);
    cmd.env("PARALLAX_LOG", "trace");
    let out = run(cmd);
    assert_eq!(code(&out), 0);
    assert_eq!(stderr(&out), "");
}

#[test]
fn no_filter_no_logs_and_a_bad_filter_exits_2() {
    let mut cmd = launch(&["-q", "fakesrc num-buffers=5 ! fakesink"]);
    cmd.env_remove("PARALLAX_LOG");
    let out = run(cmd);
    assert_eq!(code(&out), 0);
    assert_eq!(stderr(&out), "");

    let out = run(launch(&[
        "-d",
        "info,[oops",
        "fakesrc num-buffers=5 ! fakesink",
    ]));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("error: -d: invalid log filter `info,[oops`"),
        "{}",
        stderr(&out)
    );
    // From the environment, the error says so.
    let mut cmd = launch(&["-q", "fakesrc num-buffers=5 ! fakesink"]);
    cmd.env("PARALLAX_LOG", "info,[oops");
    let out = run(cmd);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("error: PARALLAX_LOG: invalid log filter `info,[oops`"),
        "{}",
        stderr(&out)
    );
}

// --- completion ----------------------------------------------------------------------------------

/// Runs the checked-in bash completion for `words` (the last one being completed) and returns
/// what it offers, or None when bash is not installed.
fn bash_complete(words: &[&str]) -> Option<Vec<String>> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join("parallax-launch.bash");
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect();
    let cword = words.len() - 1;
    let line = format!(
        "source '{}'\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={cword}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         spec=$(complete -p parallax-launch)\n\
         fn=${{spec#*-F }}; fn=${{fn%% *}}\n\
         \"$fn\" parallax-launch \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" ")
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &line])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn bash_completes_element_names_after_a_bang() {
    let Some(offered) = bash_complete(&["parallax-launch", "filesrc", "location=a", "!", "fil"])
    else {
        eprintln!("bash is not installed: skipped");
        return;
    };
    assert_eq!(offered, ["filesrc", "filesink", "filter"]);
    let all = bash_complete(&["parallax-launch", "-q", "fakesrc", "!", ""]).unwrap();
    assert!(all.contains(&"queue".to_owned()) && all.contains(&"nullsink".to_owned()));
    assert!(
        !all.iter().any(|w| w.starts_with('-')),
        "after `!` only elements: {all:?}"
    );
    // The first pipeline word is an element too, and options still complete.
    let first = bash_complete(&["parallax-launch", "tes"]).unwrap();
    assert_eq!(first, ["testsrc"]);
    let option = bash_complete(&["parallax-launch", "--ta"]).unwrap();
    assert!(option.contains(&"--tap".to_owned()) && option.contains(&"--tap-format".to_owned()));
}
