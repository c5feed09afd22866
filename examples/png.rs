//! Images: a raw frame from videotestsrc is encoded to PNG (pngenc), written to a file, read
//! back and decoded (pngdec). Caps negotiation picks the formats: the caps filter fixes RGBA at
//! 64x48, pngenc takes it, and pngdec gives RGBA because the caps after it ask for it.

use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn run(pipeline: &Pipeline) -> Result<(), Box<dyn std::error::Error>> {
    pipeline.run(Arc::new(RunControl::new()?), &RunOptions::default())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let png = dir.path().join("frame.png");
    let raw =
        "videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,format=RGBA,width=64,height=48";

    // The frame itself, and the same frame encoded into a file.
    let mut frame = Pipeline::parse(&format!("{raw} ! appsink name=out"))?;
    let original = frame.appsink("out")?;
    run(&frame)?;
    let original = original.pull().ok_or("no frame")?;
    run(&Pipeline::parse(&format!(
        "{raw} ! pngenc ! filesink location={}",
        png.display()
    ))?)?;
    let encoded = std::fs::read(&png)?;
    println!(
        "encoded a {} byte frame into a {} byte PNG (signature ok: {})",
        original.len(),
        encoded.len(),
        encoded.starts_with(b"\x89PNG\r\n\x1a\n")
    );

    // Read back and decoded to the format the caps after pngdec ask for.
    let mut decode = Pipeline::parse(&format!(
        "filesrc location={} ! pngdec ! video/x-raw,format=RGBA ! appsink name=out",
        png.display()
    ))?;
    let decoded = decode.appsink("out")?;
    run(&decode)?;
    let decoded = decoded.pull().ok_or("no decoded frame")?;
    println!(
        "64x48 RGBA frame through pngenc and pngdec: identical pixels: {}",
        decoded.data() == original.data()
    );
    Ok(())
}
