//! Caps negotiation: checked when the description is validated, before anything runs. A caps
//! filter fixes the format; an appsink whose `caps` cannot agree is refused with a caret.

use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = "audiotestsrc num-buffers=2 ! audio/x-raw,rate=8000,channels=1 ! appsink name=out";
    let mut pipeline = Pipeline::parse(text)?;
    let out = pipeline.appsink("out")?;
    pipeline.run(Arc::new(RunControl::new()?), &RunOptions::default())?;
    let got = out.collect();
    println!(
        "negotiated {text:?}: {} buffers of {} bytes",
        got.len(),
        got.first().map_or(0, |b| b.len())
    );

    let refused = "audiotestsrc ! appsink caps=video/x-raw";
    match Pipeline::parse(refused) {
        Ok(_) => println!("unexpectedly accepted"),
        Err(d) => println!("refused before running:\n{}", d.render(refused)),
    }
    Ok(())
}
