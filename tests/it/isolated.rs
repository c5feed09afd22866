//! `exec=isolated`: elements in worker processes, buffers shared, faults contained.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use super::support::*;

/// Copies `data` through `filesrc ! MIDDLE ! filesink` with `-m`: the bytes out and stderr.
pub(super) fn copy_through(middle: &[&str], data: &[u8]) -> (Vec<u8>, String) {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", data);
    let output = dir.path().join("out.bin");
    let (i, o) = (prop("location", &input), prop("location", &output));
    let mut args = vec!["-m", "filesrc", i.as_str(), "use-mmap=false", "!"];
    args.extend_from_slice(middle);
    args.extend(["!", "filesink", o.as_str()]);
    let out = run(launch(&args));
    assert_eq!(code(&out), 0, "{middle:?}: {}", stderr(&out));
    (std::fs::read(&output).unwrap(), stderr(&out))
}

#[test]
fn the_same_pipeline_with_its_middle_element_isolated_gives_the_same_bytes() {
    let data = random_bytes(3 << 20, 31);
    for middle in [
        &["identity"][..],
        &["identity", "exec=auto"][..],
        &["identity", "exec=isolated"][..],
        &[
            "identity",
            "exec=isolated",
            "!",
            "identity",
            "exec=isolated",
        ][..],
        &["valve", "exec=isolated"][..],
        &["identity", "exec=rt"][..],
        &["identity", "exec=rt", "!", "identity", "exec=isolated"][..],
        &["identity", "exec=async"][..],
        &[
            "identity",
            "exec=async",
            "!",
            "identity",
            "exec=rt",
            "!",
            "valve",
            "exec=isolated",
        ][..],
    ] {
        let (got, _) = copy_through(middle, &data);
        assert_eq!(got, data, "{middle:?}");
    }
}

#[test]
fn a_hundred_mebibytes_cross_an_isolated_identity_without_a_payload_copy() {
    let out = run_expecting(
        launch(&[
            "-m",
            "fakesrc",
            "num-buffers=100",
            "sizetype=fixed",
            "sizemax=1048576",
            "filltype=pattern",
            "!",
            "identity",
            "exec=isolated",
            "!",
            "fakesink",
        ]),
        0,
    );
    let err = stderr(&out);
    // Every buffer went to the worker as a reference into the source's memfd arena and came
    // back as the very same memory; none had to be copied into shared memory.
    assert!(
        err.contains("100 buffers sent, 100 came back as the same memory, 0 from the worker's arena, 0 copied"),
        "{err}"
    );
}

#[test]
fn isolated_sources_and_sinks_work_and_a_file_window_is_copied_once() {
    let data = random_bytes(1 << 20, 32);
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &data);
    let output = dir.path().join("out.bin");
    let out = run_expecting(
        launch(&[
            "-m",
            "filesrc",
            &prop("location", &input),
            "exec=isolated",
            "!",
            "filesink",
            &prop("location", &output),
            "exec=isolated",
        ]),
        0,
    );
    assert_eq!(std::fs::read(&output).unwrap(), data);
    // The isolated filesrc maps the file; its windows are not shared memory, so the worker
    // copies each once into its arena, and the parent maps that arena: "from the worker's arena".
    assert!(
        stderr(&out).contains("from the worker's arena"),
        "{}",
        stderr(&out)
    );
}

/// `fdsrc fd=0 ! identity exec=isolated ! fakesink` with `-m`, its stderr, and the worker's pid.
fn stdin_through_isolated_identity() -> (
    std::process::Child,
    BufReader<std::process::ChildStderr>,
    i32,
) {
    let mut child = launch(&[
        "-m",
        "fdsrc",
        "fd=0",
        "!",
        "identity",
        "exec=isolated",
        "!",
        "fakesink",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let pid = loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no worker started");
        if let Some(rest) = line.split("isolated in worker process ").nth(1) {
            break rest.trim().parse::<i32>().unwrap();
        }
    };
    (child, err, pid)
}

#[test]
fn killing_a_worker_mid_stream_ends_the_pipeline_with_an_error_naming_it() {
    let (mut child, mut err, pid) = stdin_through_isolated_identity();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&[7u8; 65536]).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // More input, so the parent meets the dead worker if it has not noticed yet; if it has, it
    // has stopped reading and this write fails (EPIPE), which is fine.
    let _ = stdin.write_all(&[7u8; 65536]);
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        rest.contains(&format!(
            "identity0: worker process {pid} was killed by signal 9 (SIGKILL)"
        )),
        "{rest}"
    );
    // Reaped: no zombie left behind.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn a_worker_that_sends_garbage_or_bad_references_is_cut_off() {
    for (fault, says) in [("garbage", "malformed frame"), ("bad-ref", "unknown arena")] {
        let mut cmd = launch(&[
            "fakesrc",
            "num-buffers=3",
            "!",
            "identity",
            "exec=isolated",
            "!",
            "fakesink",
        ]);
        cmd.env("PARALLAX_WORKER_FAULT", fault);
        let out = run(cmd);
        assert_eq!(code(&out), 1, "{fault}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{fault}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("identity0: worker process"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_worker_dies_with_its_parent() {
    let (mut parent, _err, pid) = stdin_through_isolated_identity();
    parent.kill().unwrap();
    parent.wait().unwrap();
    // PR_SET_PDEATHSIG: the kernel kills the worker with its parent; wait (bounded) for it.
    let proc_dir = format!("/proc/{pid}");
    let gone = (0..500).any(|_| {
        let status = std::fs::read_to_string(format!("{proc_dir}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init to reap it.
        let done = status.is_empty() || status.split(' ').nth(2) == Some("Z");
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        done
    });
    assert!(gone, "worker {pid} outlived its parent");
}

#[test]
fn elements_that_cannot_be_isolated_and_bad_exec_values_are_refused() {
    for (desc, says) in [
        (
            "fakesrc ! tee exec=isolated ! fakesink",
            "tee cannot run isolated",
        ),
        (
            "fakesrc ! identity exec=elsewhere ! fakesink",
            "exec takes one of: auto, async, rt, isolated",
        ),
        ("fakesrc ! fakesink exec=async", "no async implementation"),
    ] {
        let out = run(launch(&[desc]));
        assert_eq!(code(&out), 2, "{desc}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{desc}: {}", stderr(&out));
    }
}

#[test]
fn an_rt_element_reports_its_cycle_times_and_explains_its_priority() {
    let out = run_expecting(
        launch(&[
            "-m",
            "fakesrc",
            "num-buffers=500",
            "!",
            "identity",
            "exec=rt",
            "!",
            "fakesink",
        ]),
        0,
    );
    let err = stderr(&out);
    assert!(
        err.contains("identity0: rt thread: 500 cycles, median"),
        "{err}"
    );
    assert!(
        err.contains("identity0: exec=rt runs on its own thread at normal priority: no --rt-priority was given"),
        "{err}"
    );
    let out = run_expecting(
        launch(&[
            "-q",
            "--stats=json",
            "fakesrc",
            "num-buffers=300",
            "!",
            "identity",
            "exec=rt",
            "!",
            "fakesink",
        ]),
        0,
    );
    let rt = &stats(&out)["rt"][0];
    assert_eq!(rt["element"], "identity0");
    assert_eq!(rt["cycles"], 300);
    assert!(rt["median_ns"].as_u64().unwrap() <= rt["p99_ns"].as_u64().unwrap());
    assert!(rt["p99_ns"].as_u64().unwrap() <= rt["max_ns"].as_u64().unwrap());
    let out = run_expecting(launch(&["fakesrc", "!", "fakesink", "exec=rt"]), 2);
    assert!(
        stderr(&out).contains("put a queue before a sink"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_shows_where_an_element_may_run() {
    let mut cmd = std::process::Command::new(inspect_bin());
    cmd.arg("identity");
    let out = run(cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("exec=isolated: in a worker process"),
        "{text}"
    );
    assert!(text.contains("exec=rt: on a thread of its own"), "{text}");
    assert!(
        text.contains("exec=async: on the pipeline's tokio runtime"),
        "{text}"
    );
    let mut cmd = std::process::Command::new(inspect_bin());
    cmd.args(["--json", "tee"]);
    let out = run(cmd);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["exec"],
        serde_json::json!([]),
        "a tee runs where its input does"
    );
}

#[test]
fn a_tee_whose_branches_run_in_different_domains_gives_every_branch_every_byte() {
    let data = random_bytes(2 << 20, 33);
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &data);
    let outs: Vec<_> = (0..3).map(|i| dir.path().join(format!("out{i}"))).collect();
    let o: Vec<String> = outs.iter().map(|p| prop("location", p)).collect();
    let out = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &input),
        "use-mmap=false",
        "!",
        "tee",
        "name=t",
        "!",
        "identity",
        "exec=isolated",
        "!",
        "filesink",
        &o[0],
        "t.",
        "!",
        "identity",
        "exec=rt",
        "!",
        "filesink",
        &o[1],
        "t.",
        "!",
        "identity",
        "exec=async",
        "!",
        "queue",
        "!",
        "filesink",
        &o[2],
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for p in &outs {
        assert_eq!(std::fs::read(p).unwrap(), data, "{}", p.display());
    }
}

#[test]
fn bridge_capacity_sets_the_rt_hand_over_and_refuses_zero() {
    let data = random_bytes(1 << 20, 34);
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &data);
    let output = dir.path().join("out.bin");
    run_expecting(
        launch(&[
            "-q",
            "--bridge-capacity=1",
            "filesrc",
            &prop("location", &input),
            "blocksize=1000",
            "!",
            "identity",
            "exec=rt",
            "!",
            "filesink",
            &prop("location", &output),
        ]),
        0,
    );
    assert_eq!(std::fs::read(&output).unwrap(), data);
    // -v shows the size the run uses.
    let out = run(launch(&[
        "-v",
        "--bridge-capacity=5",
        "fakesrc num-buffers=1 ! identity exec=rt ! fakesink",
    ]));
    assert!(
        stderr(&out).contains(
            "identity0's rt thread (exec=rt, quantum 1), over a bounded channel of 5 buffers"
        ),
        "{}",
        stderr(&out)
    );
    let out = run(launch(&["--bridge-capacity=0", "fakesrc", "!", "fakesink"]));
    assert_eq!(code(&out), 2);
}

#[test]
fn a_worker_that_cannot_build_its_element_names_it_once_and_the_file() {
    let out = run_expecting(
        launch(&[
            "filesrc",
            "location=/nonexistent/in.bin",
            "exec=isolated",
            "!",
            "fakesink",
        ]),
        1,
    );
    let err = stderr(&out);
    assert!(
        err.contains(
            "filesrc0: in its worker process: cannot open /nonexistent/in.bin for reading"
        ),
        "{err}"
    );
    assert_eq!(err.matches("filesrc0").count(), 1, "{err}");
}
