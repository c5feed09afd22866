//! Files: a description copies a file to another, byte for byte.

use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("parallax-file-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (input, output) = (dir.join("in.bin"), dir.join("out.bin"));
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&input, &bytes)?;
    let pipeline = Pipeline::parse(&format!(
        "filesrc location={} ! queue ! filesink location={}",
        input.display(),
        output.display()
    ))?;
    let report = pipeline.run(Arc::new(RunControl::new()?), &RunOptions::default())?;
    let copied = std::fs::read(&output)?;
    println!(
        "copied {} bytes in {} buffers: identical = {}",
        copied.len(),
        report
            .elements
            .iter()
            .find(|e| e.name.starts_with("filesink"))
            .map_or(0, |e| e.buffers),
        copied == bytes
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
