//! Mixing: the program pushes text into an appsrc, a dynamic description transforms it
//! (`regexfilter`-free: `identity` and a `queue`), and a typed stage reads what an appsink gives.

use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut pipeline = Pipeline::parse(
        "appsrc name=in caps=text/plain ! identity ! queue ! appsink name=out sync=false",
    )?;
    let (input, out) = (pipeline.appsrc("in")?, pipeline.appsink("out")?);
    for word in ["one", "two", "three"] {
        input.push_bytes(word.as_bytes())?;
    }
    input.end_of_stream()?;
    pipeline.run(Arc::new(RunControl::new()?), &RunOptions::default())?;
    let words: Vec<String> = out
        .collect()
        .iter()
        .map(|b| String::from_utf8_lossy(b.data()).into_owned())
        .collect();
    println!("pushed 3 words, pulled {words:?}");

    // An error pushed by the program ends the run with an error naming the element.
    let mut failing = Pipeline::parse("appsrc name=in ! fakesink")?;
    let input = failing.appsrc("in")?;
    input.error("the sensor went away")?;
    let err = failing
        .run(Arc::new(RunControl::new()?), &RunOptions::default())
        .unwrap_err();
    println!("an error pushed by the program: {err}");
    Ok(())
}
