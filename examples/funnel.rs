//! A funnel merges several streams into one: two sources, one appsink.

use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut pipeline = Pipeline::parse(
        "funnel name=f ! appsink name=out \
         fakesrc num-buffers=3 sizetype=fixed sizemax=1 filltype=zero ! f. \
         fakesrc num-buffers=5 sizetype=fixed sizemax=2 filltype=zero ! f.",
    )?;
    let out = pipeline.appsink("out")?;
    pipeline.run(Arc::new(RunControl::new()?), &RunOptions::default())?;
    let got = out.collect();
    let ones = got.iter().filter(|b| b.len() == 1).count();
    let twos = got.iter().filter(|b| b.len() == 2).count();
    println!(
        "merged {} buffers: {ones} from the first source, {twos} from the second",
        got.len()
    );
    Ok(())
}
