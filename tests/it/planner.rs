//! The planner: `--scheduling`, the `trust=` and `latency=` hints, `--quantum`.

use super::support::*;

#[test]
fn every_scheduling_mode_gives_the_same_bytes() {
    let data = random_bytes(2 << 20, 71);
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &data);
    let output = dir.path().join("out.bin");
    for mode in ["auto", "fused", "isolated", "rt"] {
        let scheduling = format!("--scheduling={mode}");
        let out = run(launch(&[
            "-q",
            &scheduling,
            "filesrc",
            &prop("location", &input),
            "blocksize=65536",
            "!",
            "identity",
            "!",
            "tee",
            "name=t",
            "!",
            "queue",
            "!",
            "filesink",
            &prop("location", &output),
            "t.",
            "!",
            "fakesink",
        ]));
        assert_eq!(code(&out), 0, "{mode}: {}", stderr(&out));
        assert_eq!(std::fs::read(&output).unwrap(), data, "{mode}");
    }
}

#[test]
fn the_planner_says_where_it_put_each_element_and_why() {
    let out = run_expecting(
        launch(&[
            "-v",
            "--validate",
            "fakesrc ! identity trust=untrusted ! identity latency=low ! identity ! fakesink",
        ]),
        0,
    );
    let err = stderr(&out);
    for line in [
        "/pipeline0/identity0: exec = isolated (planner: untrusted code runs in a sandboxed worker process)",
        "/pipeline0/identity1: exec = rt (planner: RT-safe with low latency runs on an rt thread)",
        "identity0's worker process (exec=isolated), over a socket",
    ] {
        assert!(err.contains(line), "missing {line:?} in\n{err}");
    }
    assert!(!err.contains("/pipeline0/identity2: exec"), "{err}");
    // --scheduling=fused leaves the low-latency element fused, but never untrusted code.
    let out = run(launch(&[
        "-v",
        "--validate",
        "--scheduling=fused",
        "fakesrc ! identity trust=untrusted ! identity latency=low ! fakesink",
    ]));
    let err = stderr(&out);
    assert!(
        err.contains("/pipeline0/identity0: exec = isolated"),
        "{err}"
    );
    assert!(!err.contains("/pipeline0/identity1: exec"), "{err}");
}

#[test]
fn an_untrusted_element_runs_isolated_and_its_output_is_intact() {
    let data = random_bytes(1 << 20, 72);
    let (got, err) = super::isolated::copy_through(&["identity", "trust=untrusted"], &data);
    assert_eq!(got, data);
    assert!(
        err.contains("message: identity0: isolated in worker process"),
        "the worker's summary is missing: {err}"
    );
}

#[test]
fn placement_properties_are_checked_and_untrusted_code_is_never_run_in_process() {
    for (args, message) in [
        (
            "fakesrc ! tee trust=untrusted ! fakesink",
            "tee0 is untrusted, but a tee cannot run in a worker process",
        ),
        (
            "fakesrc ! identity trust=untrusted exec=rt ! fakesink",
            "identity0 is untrusted and must run isolated, not exec=rt",
        ),
        (
            "fakesrc ! identity trust=maybe ! fakesink",
            "identity: `trust=maybe` is not a trust level",
        ),
        (
            "fakesrc ! identity latency=fast ! fakesink",
            "identity: `latency=fast` is not a latency class",
        ),
    ] {
        let out = run(launch(&[args]));
        assert_eq!(code(&out), 2, "{args}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args}: {}", stderr(&out));
    }
    let out = run(launch(&[
        "--scheduling=sideways",
        "fakesrc",
        "!",
        "fakesink",
    ]));
    assert_eq!(code(&out), 2);
    // --validate says what running would: an exec= the element cannot take is refused there.
    for (desc, says) in [
        ("fakesrc ! fakesink exec=rt", "put a queue before a sink"),
        ("tcpserversrc exec=rt ! fakesink", "never on an rt thread"),
    ] {
        let out = run(launch(&["--validate", desc]));
        assert_eq!(code(&out), 2, "{desc}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{desc}: {}", stderr(&out));
    }
}

#[test]
fn quantum_bounds_the_buffers_an_rt_thread_takes_per_cycle() {
    let cycles = |quantum: &str| {
        let out = run_expecting(
            launch(&[
                "-q",
                "--stats=json",
                "--quantum",
                quantum,
                "fakesrc num-buffers=400 ! identity exec=rt ! fakesink",
            ]),
            0,
        );
        stats(&out)["rt"][0]["cycles"].as_u64().unwrap()
    };
    assert_eq!(cycles("1"), 400);
    // Never more than 4 in a cycle: at least 100 cycles; how many more depends on how many were
    // waiting at each wake-up.
    let four = cycles("4");
    assert!((100..=400).contains(&four), "{four} cycles");
    let out = run(launch(&[
        "-v",
        "--validate",
        "--quantum=8",
        "fakesrc ! identity exec=rt ! fakesink",
    ]));
    assert!(
        stderr(&out).contains("rt thread (exec=rt, quantum 8)"),
        "{}",
        stderr(&out)
    );
    let out = run(launch(&["--quantum=0", "fakesrc", "!", "fakesink"]));
    assert_eq!(code(&out), 2);
}

#[test]
fn an_untrusted_worker_cannot_open_files_listen_or_run_programs_even_through_x32() {
    let attempt = |trust: &str| {
        let mut cmd = launch(&[
            "-q",
            "fakesrc",
            "num-buffers=3",
            "!",
            "identity",
            trust,
            "exec=isolated",
            "!",
            "fakesink",
        ]);
        cmd.env("PARALLAX_WORKER_FAULT", "escape");
        let out = run(cmd);
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        stderr(&out)
    };
    let err = attempt("trust=untrusted");
    assert!(
        err.contains(
            "identity0: escape attempt: open /etc/hostname: permission denied; listen on tcp: \
             permission denied; run /bin/true: permission denied; open /etc/hostname via x32: \
             permission denied; stat /etc/hostname: permission denied"
        ),
        "{err}"
    );
    // The same worker for trusted code is not confined: the test above proves the filter.
    let err = attempt("trust=trusted");
    assert!(err.contains("open /etc/hostname: allowed"), "{err}");
    // x32 numbers get past a list of x86_64 ones: unconfined, the kernel answers them itself
    // (it opens the file, or says it has no x32 ABI), never with EPERM.
    assert!(
        !err.contains("via x32: permission denied"),
        "the probe must reach the kernel: {err}"
    );
}

#[test]
fn untrusted_sources_and_sinks_build_before_the_sandbox_closes() {
    let dir = tmp();
    let output = dir.path().join("out.bin");
    run_expecting(
        launch(&[
            "-q",
            "fakesrc",
            "trust=untrusted",
            "num-buffers=3",
            "sizetype=fixed",
            "sizemax=100",
            "filltype=2",
            "!",
            "filesink",
            "trust=untrusted",
            &prop("location", &output),
        ]),
        0,
    );
    let got = std::fs::read(&output).unwrap();
    assert_eq!(got.len(), 300);
    assert!(got.iter().all(|&b| b == 0), "filltype=2 is zeros");
}

#[test]
fn untrusted_workers_get_sealed_read_only_arenas_and_release_through_the_ledger() {
    // 2000 buffers through a 16-slot pool: every slot comes back many times, through release
    // messages the owner checks against its ledger (the worker cannot touch a refcount).
    let out = run_expecting(
        launch(&[
            "-m",
            "--stats=json",
            "fakesrc",
            "num-buffers=2000",
            "sizetype=fixed",
            "sizemax=65536",
            "filltype=pattern",
            "!",
            "identity",
            "trust=untrusted",
            "!",
            "fakesink",
            "trust=untrusted",
        ]),
        0,
    );
    let s = stats(&out);
    let pool = &s["pools"][0];
    assert_eq!(pool["element"], "fakesrc0");
    assert_eq!(pool["sharing"], "read-only");
    assert_eq!(pool["rejected"], 0);
    assert_eq!(pool["loans"], 2000);
    assert_eq!(element(&s, "fakesink0")["buffers"], 2000);
    let err = stderr(&out);
    assert!(
        err.contains(
            "identity0: worker process",
        ) && err.contains("2000 buffers sent, 2000 came back as the same memory, 0 from the worker's arena, 0 copied"),
        "{err}"
    );
    // Trusted workers alone keep writable arenas.
    let out = run(launch(&[
        "-q",
        "--stats=json",
        "fakesrc num-buffers=10 sizetype=fixed sizemax=4096 ! identity exec=isolated ! fakesink",
    ]));
    assert_eq!(stats(&out)["pools"][0]["sharing"], "read-write");
}

#[test]
fn an_untrusted_worker_that_sends_garbage_for_releases_is_cut_off() {
    let mut cmd = launch(&[
        "fakesrc",
        "num-buffers=1000",
        "sizetype=fixed",
        "sizemax=4096",
        "!",
        "identity",
        "trust=untrusted",
        "!",
        "fakesink",
    ]);
    cmd.env("PARALLAX_WORKER_FAULT", "bad-release");
    let out = run(cmd);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("error: identity0: worker process "), "{err}");
    assert!(
        err.contains("on its release socket; it was stopped and"),
        "{err}"
    );
}
