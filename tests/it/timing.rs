//! Timed elements: timeout, debounce and delay. Silences are made by holding a pipe open, and
//! each assertion waits for an event (bytes on stdout, an exit), never for a wall-clock bound.

use std::io::{Read as _, Write as _};

use super::support::*;

/// Reads from `out` until `want` was seen (or the stream ends), returning what was read.
fn read_until(out: &mut impl std::io::Read, want: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(want) {
        match out.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    got
}

#[test]
fn timeout_sends_its_fallback_while_the_input_is_silent_and_passes_data() {
    let mut child = spawn_piped(&[
        "-q",
        r"fdsrc ! timeout timeout=20000000 fallback=T\n repeat=false ! fdsink",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Silent from the start: a fallback comes, once.
    assert_eq!(read_until(&mut stdout, b"T\n"), b"T\n");
    stdin.write_all(b"data\n").unwrap();
    stdin.flush().unwrap();
    // The data passes, and the next silence gives one more fallback.
    assert_eq!(read_until(&mut stdout, b"T\n"), b"data\nT\n");
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    child.stdout = None;
    let out = wait(child);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(rest.is_empty() || rest == b"T\n", "{rest:?}");
}

#[test]
fn debounce_passes_the_last_buffer_of_a_burst() {
    // A burst written at once, then end of stream: only its last buffer passes.
    let out = run_expecting(
        launch(&[
            "--stats=json",
            "fakesrc num-buffers=50 ! debounce quiet=1000000000 ! fakesink",
        ]),
        0,
    );
    let s = stats(&out);
    assert_eq!(element(&s, "fakesink0")["buffers"], 1);
    assert_eq!(element(&s, "debounce0")["dropped"], 49);
}

#[test]
fn delay_holds_buffers_back_but_delivers_every_one_in_order() {
    let dir = tmp();
    let data = random_bytes(64 * 1024, 5);
    let input = file(dir.path(), "in", &data);
    for exec in ["auto", "isolated", "async"] {
        let started = std::time::Instant::now();
        let out = run_expecting(
            launch(&[
                "-q",
                &format!(
                    "filesrc location={} blocksize=4096 ! delay delay=50000000 exec={exec} ! fdsink",
                    input.display()
                ),
            ]),
            0,
        );
        assert_eq!(out.stdout, data, "exec={exec}");
        // Lower bound only: nothing can leave before its delay.
        assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    }
}
