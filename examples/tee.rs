//! A tee hands each branch the same buffer (a refcount clone, never a copy): both appsinks
//! see the bytes at the same address.

use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut pipeline = Pipeline::parse(
        "fakesrc num-buffers=4 sizetype=fixed sizemax=64 ! tee name=t \
         t. ! queue ! appsink name=a  t. ! queue ! appsink name=b",
    )?;
    let (a, b) = (pipeline.appsink("a")?, pipeline.appsink("b")?);
    pipeline.run(Arc::new(RunControl::new()?), &RunOptions::default())?;
    let (a, b) = (a.collect(), b.collect());
    let same = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.data().as_ptr() == y.data().as_ptr())
        .count();
    println!(
        "branch a: {} buffers, branch b: {} buffers",
        a.len(),
        b.len()
    );
    println!(
        "{same} of {} buffers are the same memory in both branches",
        a.len()
    );
    Ok(())
}
