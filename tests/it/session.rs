//! The library's pipeline states: Suspended ⇄ Idle ⇄ Running.

use std::sync::Arc;
use std::time::Duration;

use parallax::exec::{Pipeline, Progress, RunOptions, Session, State};

/// Memfds this process has open whose name mentions `name`.
fn memfds(name: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.to_string_lossy().contains(&format!("memfd:{name}")))
        .count()
}

#[test]
fn states_move_only_along_the_allowed_edges_and_hold_what_they_say() {
    let p = Pipeline::parse(
        "fakesrc name=sessionsrc num-buffers=10 sizetype=fixed sizemax=64 ! fakesink",
    )
    .unwrap();
    let mut s = Session::new(p, RunOptions::default()).unwrap();
    assert_eq!(s.state(), State::Suspended);
    let err = s.activate().unwrap_err().to_string();
    assert!(
        err.contains("cannot activate a pipeline that is Suspended: it must be Idle"),
        "{err}"
    );
    assert_eq!(memfds("sessionsrc"), 0, "Suspended holds nothing");
    s.prepare().unwrap();
    assert_eq!(s.state(), State::Idle);
    assert_eq!(memfds("sessionsrc"), 1, "Idle holds the source's pool");
    assert!(s.prepare().is_err());
    assert!(s.pause(Duration::from_secs(1)).is_err());
    assert_eq!(s.suspend().unwrap().map(|r| r.sink_buffers), None);
    assert_eq!(s.state(), State::Suspended);
    assert_eq!(memfds("sessionsrc"), 0, "suspend released the pool");
    s.prepare().unwrap();
    s.activate().unwrap();
    assert_eq!(s.state(), State::Running);
    let report = s.wait().unwrap();
    assert_eq!(report.sink_buffers, 10);
    assert_eq!(s.state(), State::Suspended);
}

#[test]
fn a_paused_pipeline_holds_still_and_resumes_where_it_stopped() {
    let progress = Arc::new(Progress::new());
    let options = RunOptions {
        progress: Some(Arc::clone(&progress)),
        ..RunOptions::default()
    };
    let n = 3_000_000u64;
    let p = Pipeline::parse(&format!("fakesrc num-buffers={n} ! identity ! fakesink")).unwrap();
    let mut s = Session::new(p, options).unwrap();
    s.prepare().unwrap();
    s.activate().unwrap();
    s.pause(Duration::from_secs(10)).unwrap();
    assert_eq!(s.state(), State::Idle);
    let at_pause = progress.snapshot().sink_buffers;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        progress.snapshot().sink_buffers,
        at_pause,
        "nothing moves while paused"
    );
    s.activate().unwrap();
    let report = s.wait().unwrap();
    assert_eq!(report.sink_buffers, n, "every buffer arrived, once");
}

#[test]
fn suspending_a_paused_run_stops_it_and_reports_what_went_through() {
    let progress = Arc::new(Progress::new());
    let options = RunOptions {
        progress: Some(Arc::clone(&progress)),
        ..RunOptions::default()
    };
    let p = Pipeline::parse("fakesrc num-buffers=-1 ! queue ! fakesink").unwrap();
    let mut s = Session::new(p, options).unwrap();
    s.prepare().unwrap();
    s.activate().unwrap();
    // Bounded wait (the test watchdog aside) for the first buffers to arrive.
    for _ in 0..10_000 {
        if progress.snapshot().sink_buffers > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    s.pause(Duration::from_secs(10)).unwrap();
    let report = s.suspend().unwrap().expect("it ran");
    assert_eq!(report.ending, parallax::exec::Ending::Interrupted);
    assert!(report.sink_buffers > 0);
    assert_eq!(s.state(), State::Suspended);
    // Suspended again: it can be prepared and released anew.
    s.prepare().unwrap();
    assert!(s.suspend().unwrap().is_none());
}

#[test]
fn a_drained_run_does_not_stop_the_next_one() {
    let p = Pipeline::parse("fakesrc num-buffers=5000 ! fakesink").unwrap();
    let mut s = Session::new(p, RunOptions::default()).unwrap();
    s.prepare().unwrap();
    s.activate().unwrap();
    s.control().request_drain();
    s.wait().unwrap();
    // The same session runs again with a fresh control block: every buffer, end of stream.
    s.prepare().unwrap();
    s.activate().unwrap();
    let again = s.wait().unwrap();
    assert_eq!(again.ending, parallax::exec::Ending::Eos);
    assert_eq!(again.sink_buffers, 5000);
}

#[test]
fn a_pipeline_with_an_element_run_apart_pauses_and_resumes_without_losing_a_buffer() {
    // The output half of an rt or async element relays a stream; only the real source parks.
    for middle in ["identity exec=rt", "identity exec=async"] {
        let n = 200_000u64;
        let p = Pipeline::parse(&format!("fakesrc num-buffers={n} ! {middle} ! fakesink")).unwrap();
        let mut s = Session::new(p, RunOptions::default()).unwrap();
        s.prepare().unwrap();
        s.activate().unwrap();
        s.pause(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{middle}: {e}"));
        assert_eq!(s.state(), State::Idle, "{middle}");
        s.activate().unwrap();
        let report = s.wait().unwrap();
        assert_eq!(
            report.sink_buffers, n,
            "{middle}: every buffer arrived, once"
        );
    }
}
