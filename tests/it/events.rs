//! Pipeline events: what `-m` prints is the event stream, and the library gets the same
//! events (QoS from a late sink, warnings from elements, states of a typed pipeline).

use std::sync::Arc;

use parallax::exec::events::{Event, PipelineState};
use parallax::exec::{Pipeline, RunControl, RunOptions};
use parallax::typed::{collect, from_iter};

use crate::support::*;

/// A sink behind the clock: identity sleeps 50 ms per frame of 33 ms, so from the third
/// frame on every one comes more than 20 ms late (a lower bound: sleeping never takes less).
const LATE: &str = "videotestsrc num-buffers=6 ! identity sleep-time=50000 ! fakesink sync=true";

#[test]
fn a_late_sink_posts_qos_messages_that_m_prints_and_stats_agree() {
    let out = run_expecting(launch(&["-m", "--stats=json", LATE]), 0);
    let err = stderr(&out);
    let late = element(&stats(&out), "fakesink0")["late"].as_u64().unwrap();
    assert!(late >= 4, "{err}");
    // One message per late buffer, the last with the count --stats gives.
    assert_eq!(
        err.matches("message: qos: fakesink0: ").count() as u64,
        late,
        "{err}"
    );
    assert!(
        err.contains(&format!("message: qos: fakesink0: {late} late\n")),
        "{err}"
    );
    // Without -m, nothing of it is printed.
    let quiet = run_expecting(launch(&["-q", LATE]), 0);
    assert!(!stderr(&quiet).contains("qos"), "{}", stderr(&quiet));
}

#[test]
fn the_library_gets_the_same_qos_events_as_the_report_counts() {
    let pipeline = Pipeline::parse(LATE).unwrap();
    let control = Arc::new(RunControl::new().unwrap());
    let events = control.events().subscribe();
    let report = pipeline.run(control, &RunOptions::default()).unwrap();
    let got = events.drain();
    let late: Vec<u64> = got
        .iter()
        .filter_map(|e| match e {
            Event::Qos { element, late, .. } if element == "fakesink0" => Some(*late),
            _ => None,
        })
        .collect();
    let counted = report
        .elements
        .iter()
        .find(|e| e.name == "fakesink0")
        .unwrap()
        .late;
    assert_eq!(late.last().copied(), Some(counted), "{got:?}");
    assert_eq!(late.len() as u64, counted, "one QoS event per late buffer");
    // The run's own story, in order: running, the thread, the end.
    assert_eq!(
        got.first(),
        Some(&Event::StateChanged {
            from: PipelineState::Idle,
            to: PipelineState::Running
        })
    );
    assert_eq!(got.last(), Some(&Event::Eos));
}

#[test]
fn an_element_warning_is_printed_with_or_without_m_and_is_an_event() {
    let dir = tmp();
    let good = dir.path().join("good.strm");
    run_expecting(
        launch(&[
            "-q",
            "fakesrc",
            "num-buffers=50",
            "sizetype=fixed",
            "sizemax=100",
            "filltype=pattern",
            "!",
            "streampay",
            "!",
            "filesink",
            &prop("location", &good),
        ]),
        0,
    );
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let bad = file(dir.path(), "bad.strm", &bytes);
    let desc = format!(
        "filesrc {} ! streamdepay on-error=drop ! fakesink",
        prop("location", &bad)
    );
    for flag in ["-q", "-m"] {
        let out = run_expecting(launch(&[flag, &desc]), 0);
        let err = stderr(&out);
        assert_eq!(
            err.matches("parallax: warning: streamdepay0: bad stream frame")
                .count(),
            1,
            "{flag}: {err}"
        );
    }
    let pipeline = Pipeline::parse(&desc).unwrap();
    let control = Arc::new(RunControl::new().unwrap());
    let events = control.events().subscribe();
    let report = pipeline.run(control, &RunOptions::default()).unwrap();
    assert_eq!(report.sink_buffers, 49);
    assert!(
        events.drain().iter().any(|e| matches!(e,
            Event::Warning { element, message }
                if element == "streamdepay0" && message.contains("resynchronised"))),
        "a warning event"
    );
}

#[test]
fn a_typed_pipeline_has_the_same_event_stream() {
    let sealed = from_iter(0u32..10)
        .filter(|x: &u32| x % 2 == 1)
        .sink(collect::<u32>());
    let events = sealed.subscribe();
    let ran = sealed.run().unwrap();
    assert_eq!(ran.into_inner(), [1, 3, 5, 7, 9]);
    let got = events.drain();
    assert!(got.contains(&Event::StateChanged {
        from: PipelineState::Idle,
        to: PipelineState::Running
    }));
    assert!(got
        .iter()
        .any(|e| matches!(e, Event::Element { message, .. } if message == "end of stream")));
    assert_eq!(got.last(), Some(&Event::Eos));
}
