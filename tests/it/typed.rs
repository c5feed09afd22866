//! Typed pipelines, app elements and events, through the library: the same engine as a
//! description, the same bytes and stats.

use std::sync::Arc;

use parallax::exec::events::{Event, PipelineState};
use parallax::exec::{Pipeline, Report, RunControl, RunOptions, Session};
use parallax::typed::{from_iter, Payload};

fn run(pipeline: &Pipeline) -> Report {
    pipeline
        .run(Arc::new(RunControl::new().unwrap()), &RunOptions::default())
        .unwrap()
}

/// (factory, buffers, bytes, thread) of every element that is not a source.
fn shape(report: &Report) -> Vec<(&'static str, u64, u64, usize)> {
    report
        .elements
        .iter()
        .filter(|e| !e.factory.ends_with("src"))
        .map(|e| (e.factory, e.buffers, e.bytes, e.thread))
        .collect()
}

#[test]
fn typed_and_dynamic_versions_give_the_same_bytes_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let (typed_out, dynamic_out) = (dir.path().join("typed"), dir.path().join("dynamic"));
    let items = || (0u64..500).map(|i| i * 3);

    // Typed: an iterator of u64, through a queue, into a file.
    let sealed = from_iter(items())
        .through("queue max-size-buffers=8")
        .sink_description(&format!("filesink location={}", typed_out.display()));
    let typed = sealed.run().unwrap().report;

    // Dynamic: the same archives pushed by the program into an appsrc, the same description.
    let mut pipeline = Pipeline::parse(&format!(
        "appsrc name=in block=true ! queue max-size-buffers=8 ! filesink location={}",
        dynamic_out.display()
    ))
    .unwrap();
    let input = pipeline.appsrc("in").unwrap();
    for i in items() {
        input.push_bytes(&i.encode().unwrap()).unwrap();
    }
    input.end_of_stream().unwrap();
    let dynamic = run(&pipeline);

    let (a, b) = (
        std::fs::read(&typed_out).unwrap(),
        std::fs::read(&dynamic_out).unwrap(),
    );
    assert_eq!(a.len(), 500 * 8);
    assert_eq!(a, b, "the same bytes");
    assert_eq!(shape(&typed), shape(&dynamic), "the same stats");
    assert_eq!(typed.threads, dynamic.threads, "the same segments");
    assert_eq!(typed.sink_buffers, 500);
    assert_eq!(typed.sink_bytes, dynamic.sink_bytes);
}

#[test]
fn a_typed_pipeline_is_a_graph_like_any_other_plan_and_dot_included() {
    let sealed = from_iter(0u32..4)
        .map(|x: u32| x + 1)
        .through("queue")
        .filter(|x: &u32| x % 2 == 0)
        .sink(parallax::typed::collect::<u32>());
    let pipeline = sealed.pipeline().unwrap();
    let dot = parallax::graph::dot::to_dot(pipeline.graph(), None);
    for name in ["typedsrc0", "typed1", "queue0", "typed2", "typedsink3"] {
        assert!(dot.contains(name), "{name} missing from\n{dot}");
    }
    let plan = pipeline.plan_text(None, None).join("\n");
    assert!(plan.contains("queue0"), "{plan}");
    // Two segments: the source's thread and the queue's.
    assert_eq!(run(&pipeline).threads, 2);
}

#[test]
fn a_session_publishes_state_changes_element_messages_and_end_of_stream() {
    let mut pipeline = Pipeline::parse("appsrc name=in ! appsink name=out sync=false").unwrap();
    let (input, out) = (
        pipeline.appsrc("in").unwrap(),
        pipeline.appsink("out").unwrap(),
    );
    let mut session = Session::new(pipeline, RunOptions::default()).unwrap();
    let events = session.subscribe();
    session.prepare().unwrap();
    session.activate().unwrap();
    input.push_bytes(b"abc").unwrap();
    input.end_of_stream().unwrap();
    assert_eq!(out.pull().unwrap().data(), b"abc");
    assert!(out.pull().is_none());
    session.wait().unwrap();
    let got = events.drain();
    let states: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { to, .. } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            PipelineState::Idle,
            PipelineState::Running,
            PipelineState::Suspended
        ]
    );
    assert!(got
        .iter()
        .any(|e| matches!(e, Event::Element { message, .. } if message == "started")));
    assert_eq!(
        got.iter().filter(|e| **e == Event::Eos).count(),
        1,
        "{got:?}"
    );
}

#[test]
fn an_error_from_the_program_is_an_event_and_the_run_fails_naming_the_appsrc() {
    let mut pipeline = Pipeline::parse("appsrc name=feed ! fakesink").unwrap();
    let input = pipeline.appsrc("feed").unwrap();
    input.error("bad frame").unwrap();
    let control = Arc::new(RunControl::new().unwrap());
    let events = control.events().subscribe();
    let err = pipeline
        .run(control, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "feed: bad frame");
    assert!(events.drain().contains(&Event::Error {
        element: Some("feed".into()),
        message: "bad frame".into()
    }));
}

#[test]
fn an_appsink_that_drops_keeps_the_newest_and_counts_the_rest() {
    let mut pipeline = Pipeline::parse(
        "fakesrc num-buffers=100 sizetype=fixed sizemax=4 ! appsink name=out max-buffers=2 drop=true",
    )
    .unwrap();
    let out = pipeline.appsink("out").unwrap();
    run(&pipeline);
    assert_eq!(out.collect().len(), 2);
    assert_eq!(out.dropped(), 98);
}

#[test]
fn app_elements_without_a_program_end_at_once_or_discard() {
    let report = run(&Pipeline::parse("appsrc ! identity ! appsink").unwrap());
    assert_eq!(report.sink_buffers, 0);
    let report = run(&Pipeline::parse("fakesrc num-buffers=3 ! memorysink").unwrap());
    assert_eq!(report.sink_buffers, 3);
    let err = Pipeline::parse("fakesrc ! fakesink name=x")
        .unwrap()
        .appsink("x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`x` is a fakesink, not an appsink"), "{err}");
}
