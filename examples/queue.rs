//! Backpressure: the program pushes into an appsrc that holds at most 4 buffers (`block=true`
//! waits), through a queue of 2, into an appsink of 2 that the program drains slowly. Nothing
//! grows without bound and nothing is lost.

use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut pipeline = Pipeline::parse(
        "appsrc name=in block=true max-buffers=4 ! queue max-size-buffers=2 ! \
         appsink name=out max-buffers=2 sync=false",
    )?;
    let (input, out) = (pipeline.appsrc("in")?, pipeline.appsink("out")?);
    let producer = std::thread::spawn(move || {
        for i in 0..100u32 {
            input
                .push_bytes(&i.to_le_bytes())
                .expect("the pipeline takes it");
        }
        input.end_of_stream().expect("not ended before");
    });
    let runner = std::thread::spawn(move || {
        pipeline.run(
            Arc::new(RunControl::new().expect("control")),
            &RunOptions::default(),
        )
    });
    let mut sum = 0u64;
    let mut n = 0;
    while let Some(buf) = out.pull() {
        sum += u64::from(u32::from_le_bytes(buf.data().try_into()?));
        n += 1;
    }
    producer.join().expect("producer");
    runner.join().expect("runner")?;
    println!("pulled {n} buffers, sum {sum} (0 + 1 + ... + 99 = 4950)");
    Ok(())
}
