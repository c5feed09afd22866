//! Issue 20: what a gst user tripped on (lost tail on error, off-by-one, stdout corruption,
//! rejected gst options, misleading suggestions). Each test fails without its fix.

use crate::support::*;

/// A runtime error upstream must not lose what the sink already holds: 999 buffers of 4096
/// bytes reached filesink before identity failed on the 1000th, and all of them are in the
/// file (gst writes the same), not only what filesink had written out of its gathering buffer.
#[test]
fn an_error_upstream_flushes_what_the_sink_holds() {
    let dir = tmp();
    let out = dir.path().join("e.bin");
    let o = run_expecting(
        launch(&[
            "-q",
            "fakesrc num-buffers=2000 sizetype=fixed sizemax=4096 ! identity error-after=1000 !",
            "filesink",
            &prop("location", &out),
        ]),
        1,
    );
    assert!(
        stderr(&o).contains("identity0: error-after=1000"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 999 * 4096);
}

/// identity eos-after=N ends the stream on the Nth buffer, as gst: N-1 buffers pass, and 0
/// means never (error-after too).
#[test]
fn identity_eos_after_passes_n_minus_one_buffers_as_gst() {
    let dir = tmp();
    for (after, bytes) in [("1", 0), ("2", 10), ("3", 20), ("0", 100)] {
        let out = dir.path().join(format!("eos{after}.bin"));
        run_expecting(
            launch(&[
                "-q",
                "fakesrc num-buffers=10 sizetype=fixed sizemax=10 ! identity",
                &format!("eos-after={after}"),
                "! filesink",
                &prop("location", &out),
            ]),
            0,
        );
        assert_eq!(
            std::fs::metadata(&out).unwrap().len(),
            bytes,
            "eos-after={after}"
        );
    }
    let out = dir.path().join("err0.bin");
    run_expecting(
        launch(&[
            "-q",
            "fakesrc num-buffers=10 sizetype=fixed sizemax=10 ! identity error-after=0 ! filesink",
            &prop("location", &out),
        ]),
        0,
    );
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 100);
}
