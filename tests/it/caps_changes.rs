//! Caps changes in mid-stream: a concat of two formats announces the second input's caps in
//! the stream, in order with the buffers; every element below re-reads its format, passes the
//! change on, or ends the run naming itself and both caps.

use std::process::Stdio;

use super::support::*;

/// `fakesrc` of `n` buffers of 4 bytes, filled with a pattern, typed as `caps`.
fn input(n: u32, caps: &str) -> String {
    format!("fakesrc num-buffers={n} sizetype=fixed sizemax=4 filltype=pattern ! {caps}")
}

/// `parallax-launch` with the description split on spaces.
fn line(text: &str) -> std::process::Command {
    launch(&text.split(' ').collect::<Vec<_>>())
}

#[test]
fn a_concat_of_two_formats_reaches_every_branch_through_queues_and_tees() {
    let text = format!(
        "-q --stats=json {} ! concat name=c ! queue ! tee name=t ! identity ! fakesink name=a \
         t. ! queue ! fakesink name=b {} ! c.",
        input(3, "a/b,x=1"),
        input(2, "a/b,x=2")
    );
    let out = run_expecting(line(&text), 0);
    let st = stats(&out);
    assert_eq!(element(&st, "a")["buffers"], 5);
    assert_eq!(element(&st, "b")["buffers"], 5);
}

#[test]
fn a_capsfilter_refuses_a_change_that_does_not_fit_after_the_buffers_before_it() {
    let dir = tmp();
    let out_path = dir.path().join("out");
    let text = format!(
        "{} ! concat name=c ! queue ! a/b,x=1 ! filesink {} {} ! c.",
        input(3, "a/b,x=1"),
        prop("location", &out_path),
        input(2, "a/b,x=2")
    );
    let out = run_expecting(line(&text), 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "capsfilter1: cannot take a caps change in mid-stream from a/b, x=(int)1 to a/b, \
             x=(int)2: they do not fit a/b, x=(int)1"
        ),
        "{err}"
    );
    // In order: the first input's three buffers were written before the change arrived.
    assert_eq!(std::fs::read(&out_path).unwrap().len(), 12);
}

#[test]
fn an_element_whose_output_depends_on_the_format_refuses_a_change_by_default() {
    let text = "-q audiotestsrc num-buffers=2 ! audio/x-raw,rate=8000,channels=1 ! concat name=c \
                ! wavenc ! fakesink audiotestsrc num-buffers=2 ! \
                audio/x-raw,rate=16000,channels=1 ! c.";
    let out = run_expecting(line(text), 1);
    let err = stderr(&out);
    assert!(
        err.contains("wavenc0: cannot take a caps change in mid-stream from audio/x-raw")
            && err.contains("rate=(int)8000")
            && err.contains("rate=(int)16000"),
        "{err}"
    );
}

#[test]
fn inputs_of_one_format_announce_nothing_and_a_funnel_still_needs_one() {
    // Same caps on both inputs: nothing is announced, wavenc takes the whole stream.
    let text = "-q audiotestsrc num-buffers=2 ! audio/x-raw,rate=8000,channels=1 ! concat name=c \
                ! wavenc ! fakesink audiotestsrc num-buffers=2 ! \
                audio/x-raw,rate=8000,channels=1 ! c.";
    run_expecting(line(text), 0);
    // A funnel interleaves its inputs: they must agree before anything runs.
    let text = format!(
        "{} ! funnel name=f ! fakesink {} ! f.",
        input(1, "a/b,x=1"),
        input(1, "a/b,x=2")
    );
    let out = run_expecting(line(&text), 2);
    assert!(stderr(&out).contains("its inputs must carry the same caps"));
}

#[test]
fn a_change_that_cannot_reach_a_worker_process_is_an_error_naming_it() {
    let text = format!(
        "{} ! concat name=c ! identity name=w exec=isolated ! fakesink {} ! c.",
        input(2, "a/b,x=1"),
        input(2, "a/b,x=2")
    );
    let out = run_expecting(line(&text), 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "w: cannot take a caps change in mid-stream from a/b, x=(int)1 to a/b, x=(int)2"
        ) && err.contains("worker process"),
        "{err}"
    );
}

#[test]
fn a_change_travels_over_shm_to_the_consumer() {
    let dir = tmp();
    let sock_path = dir.path().join("s");
    let sock = prop("socket-path", &sock_path);
    let producer_line = format!(
        "-q {} ! concat name=c ! shmsink {sock} {} ! c.",
        input(3, "a/b,x=1"),
        input(2, "a/b,x=2")
    );
    // The consumer takes the stream as its producer says it is, and sees the change: a filter
    // for the first format refuses it, naming both caps.
    let mut producer = line(&producer_line).stderr(Stdio::piped()).spawn().unwrap();
    while !sock_path.exists() {
        assert!(
            producer.try_wait().unwrap().is_none(),
            "producer ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = run_expecting(line(&format!("-q shmsrc {sock} ! a/b,x=1 ! fakesink")), 1);
    let err = stderr(&out);
    assert!(
        err.contains("cannot take a caps change in mid-stream from a/b, x=(int)1 to a/b, x=(int)2"),
        "{err}"
    );
    let _ = wait(producer);
    // A consumer that takes anything gets all five buffers.
    let producer = line(&producer_line).stderr(Stdio::piped()).spawn().unwrap();
    while !sock_path.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = run_expecting(
        line(&format!(
            "-q --stats=json shmsrc {sock} ! fakesink name=out"
        )),
        0,
    );
    assert_eq!(element(&stats(&out), "out")["buffers"], 5);
    assert_eq!(code(&wait(producer)), 0);
}

#[test]
fn a_change_from_a_source_into_a_concat_waits_for_the_stream_to_reach_that_input() {
    let dir = tmp();
    let sock_path = dir.path().join("s");
    let sock = prop("socket-path", &sock_path);
    let producer = line(&format!(
        "-q {} ! concat name=c ! shmsink {sock} {} ! c.",
        input(3, "a/b,x=1"),
        input(2, "a/b,x=2")
    ))
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    while !sock_path.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The shmsrc's change (x=1 to x=2) goes down with its buffers, and the second input's
    // caps (x=1) are announced when the concat reaches it: all six buffers arrive.
    let out = run_expecting(
        line(&format!(
            "-q --stats=json shmsrc {sock} ! concat name=c ! fakesink name=out {} ! c.",
            input(1, "a/b,x=1")
        )),
        0,
    );
    assert_eq!(element(&stats(&out), "out")["buffers"], 6);
    assert_eq!(code(&wait(producer)), 0);
}
