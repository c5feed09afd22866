//! Events: a program subscribes to what a pipeline says about itself (gst's bus): its states,
//! each thread's start and end, QoS from a sink that falls behind the clock, warnings, errors,
//! the end of stream. `parallax-launch -m` prints the same stream.

use parallax::exec::events::Event;
use parallax::exec::{Pipeline, RunOptions, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // identity sleeps 50 ms per frame of 33 ms: the synced sink renders late.
    let pipeline = Pipeline::parse(
        "videotestsrc num-buffers=4 ! identity sleep-time=50000 ! fakesink sync=true",
    )?;
    let mut session = Session::new(pipeline, RunOptions::default())?;
    let events = session.subscribe();
    session.prepare()?;
    session.activate()?;
    let report = session.wait()?;
    // A program matches on the variants; printed, they are the lines -m shows.
    let mut late = 0;
    for event in events.drain() {
        if let Event::Qos { late: n, .. } = &event {
            late = *n;
        }
        print!("{}", event.line());
    }
    println!("the sink rendered {late} buffers late");
    println!("{} buffers into the sink", report.sink_buffers);
    Ok(())
}
