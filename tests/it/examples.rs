//! Every program in `examples/` runs to completion and prints what it shows.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The examples' directory, built once (a no-op when `cargo test` built them already).
fn examples_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--examples", "--quiet"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --examples failed");
        let deps = std::env::current_exe().expect("test binary path");
        deps.parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>/deps")
            .join("examples")
    })
}

/// Runs example `name` and returns its stdout and stderr; it must exit 0.
fn run(name: &str) -> (String, String) {
    let out = Command::new(examples_dir().join(name))
        .output()
        .unwrap_or_else(|e| panic!("example {name}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "example {name}: {}\n{stdout}{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn every_example_runs_and_shows_what_it_says() {
    let cases: &[(&str, &str)] = &[
        ("hello", "buffer 2: [0, 1, 2, 3, 4]"),
        ("transform", "PARALLAX (8 bytes)"),
        ("tee", "4 of 4 buffers are the same memory in both branches"),
        (
            "funnel",
            "merged 8 buffers: 3 from the first source, 5 from the second",
        ),
        ("queue", "pulled 100 buffers, sum 4950"),
        (
            "appsrc",
            "an error pushed by the program: in: the sensor went away",
        ),
        ("file_io", "copied 100000 bytes in"),
        ("tcp", "the server received 70 bytes, 10 lines"),
        ("typed", "result: [20, 40, 60, 80, 100]"),
        (
            "builder",
            "sensors seen: [2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1]",
        ),
        (
            "buffer_pool",
            "third loan while two are out: none (backpressure)",
        ),
        ("caps", "refused before running"),
        (
            "png",
            "64x48 RGBA frame through pngenc and pngdec: identical pixels: true",
        ),
        ("events", "message: qos: fakesink0: "),
    ];
    for (name, shows) in cases {
        let (stdout, _) = run(name);
        assert!(stdout.contains(shows), "example {name} printed:\n{stdout}");
    }
    let (_, stderr) = run("file_io");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_typed_map_crosses_into_a_worker_and_back_without_a_payload_copy() {
    let (stdout, stderr) = run("isolation");
    assert!(
        stdout.contains("8 readings converted in a worker process, as expected: true"),
        "{stdout}"
    );
    // Counter identity: every item went to the worker as a reference into the parent's pool
    // (0 copied) and came back as a reference into the worker's own pool.
    assert!(
        stderr.contains(
            "8 buffers sent, 0 came back as the same memory, 8 from the worker's arena, 0 copied"
        ),
        "{stderr}"
    );
    // A named filter in a worker sends back the very buffers it keeps (pointer identity: the
    // parent recognises its own slots), nothing re-archived or copied.
    assert!(
        stdout.contains("5 of 8 readings kept by a filter in a worker process, as expected: true"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "8 buffers sent, 5 came back as the same memory, 0 from the worker's arena, 0 copied"
        ),
        "{stderr}"
    );
    assert!(stdout.contains("copied for alignment: 0"), "{stdout}");
}
