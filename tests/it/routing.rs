//! Routing: input-selector, output-selector, concat and streamiddemux.

use super::support::*;

#[test]
fn concat_plays_its_inputs_one_after_another_in_pad_order() {
    let dir = tmp();
    let a = file(dir.path(), "a", &random_bytes(100_000, 1));
    let b = file(dir.path(), "b", &random_bytes(70_000, 2));
    let c = file(dir.path(), "c", b"tail");
    // Written with the pads out of order: sink_0 still plays first.
    let out = run_expecting(
        launch(&[
            "-q",
            &format!(
                "filesrc location={} blocksize=999 ! cc.sink_1 filesrc location={} ! cc.sink_2 \
                 filesrc location={} blocksize=1000 ! cc.sink_0 concat name=cc ! fdsink",
                b.display(),
                c.display(),
                a.display()
            ),
        ]),
        0,
    );
    let mut want = random_bytes(100_000, 1);
    want.extend(random_bytes(70_000, 2));
    want.extend(b"tail");
    assert_eq!(out.stdout, want);
}

#[test]
fn input_selector_passes_the_active_pad_and_counts_the_rest_as_dropped() {
    for (active, passed) in [("sink_0", 30), ("sink_1", 20), ("1", 20)] {
        let out = run_expecting(
            launch(&[
                "--stats=json",
                &format!(
                    "fakesrc num-buffers=30 ! s.sink_0 fakesrc num-buffers=20 ! s.sink_1 \
                     input-selector name=s active-pad={active} ! fakesink"
                ),
            ]),
            0,
        );
        let s = stats(&out);
        assert_eq!(element(&s, "fakesink0")["buffers"], passed, "{active}");
        assert_eq!(element(&s, "s")["dropped"], 50 - passed, "{active}");
    }
    let out = run_expecting(
        launch(&["fakesrc ! s.sink_0 input-selector name=s active-pad=src_1 ! fakesink"]),
        2,
    );
    assert!(
        stderr(&out).contains("active-pad `src_1`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn output_selector_sends_everything_to_the_active_branch_and_ends_every_branch() {
    let out = run_expecting(
        launch(&[
            "--stats=json",
            "fakesrc num-buffers=40 ! output-selector name=o active-pad=src_1 \
             o.src_0 ! fakesink name=a o.src_1 ! queue ! fakesink name=b",
        ]),
        0,
    );
    let s = stats(&out);
    assert_eq!(element(&s, "a")["buffers"], 0);
    assert_eq!(element(&s, "b")["buffers"], 40);
    // An active pad that is not linked: dropped, counted, and the run still ends.
    let out = run_expecting(
        launch(&[
            "--stats=json",
            "fakesrc num-buffers=40 ! output-selector name=o active-pad=src_5 o.src_0 ! fakesink",
        ]),
        0,
    );
    assert_eq!(element(&stats(&out), "o")["dropped"], 40);
}

#[test]
fn streamiddemux_gives_each_stream_its_own_branch_even_one_that_appears_late() {
    // Stream 1 appears only after stream 0's ten buffers (concat plays them in turn); stream 2
    // never does, and its branch still gets end of stream.
    let out = run_expecting(
        launch(&[
            "--stats=json",
            "fakesrc num-buffers=10 ! c.sink_0 \
             fakesrc num-buffers=5 ! metadatainject stream-id=1 ! c.sink_1 \
             concat name=c ! streamiddemux name=d \
             d.src_0 ! fakesink name=zero d.src_1 ! fakesink name=one d.src_2 ! fakesink name=two",
        ]),
        0,
    );
    let s = stats(&out);
    assert_eq!(element(&s, "zero")["buffers"], 10);
    assert_eq!(element(&s, "one")["buffers"], 5);
    assert_eq!(element(&s, "two")["buffers"], 0);
    // A stream whose pad is not linked is dropped, counted.
    let out = run_expecting(
        launch(&[
            "--stats=json",
            "fakesrc num-buffers=4 ! metadatainject stream-id=7 ! streamiddemux name=d \
             d.src_0 ! fakesink name=zero",
        ]),
        0,
    );
    let s = stats(&out);
    assert_eq!(element(&s, "zero")["buffers"], 0);
    assert_eq!(element(&s, "d")["dropped"], 4);
}

#[test]
fn concat_ends_when_its_output_has_enough_even_with_inputs_waiting_their_turn() {
    // sink_1's source waits for its turn; the sink ends after one buffer, and so must the run.
    for tail in ["fakesink num-buffers=1", "fakesink num-buffers=150"] {
        let out = run_expecting(
            launch(&[
                "--stats=json",
                &format!(
                    "fakesrc num-buffers=100 ! c.sink_0 fakesrc ! c.sink_1 concat name=c ! {tail}"
                ),
            ]),
            0,
        );
        let want = if tail.ends_with("=1") { 1 } else { 150 };
        assert_eq!(element(&stats(&out), "fakesink0")["buffers"], want);
    }
}
