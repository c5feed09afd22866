//! The simplest pipeline: a description parsed, run to end of stream, its buffers pulled by
//! the program through an appsink.

use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut pipeline = Pipeline::parse(
        "fakesrc num-buffers=3 sizetype=fixed sizemax=5 filltype=pattern ! appsink name=out",
    )?;
    let out = pipeline.appsink("out")?;
    let report = pipeline.run(Arc::new(RunControl::new()?), &RunOptions::default())?;
    for (i, buf) in out.collect().iter().enumerate() {
        println!("buffer {i}: {:?}", buf.data());
    }
    println!(
        "ended with {:?} after {} elements ran",
        report.ending,
        report.elements.len()
    );
    Ok(())
}
