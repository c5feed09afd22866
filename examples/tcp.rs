//! TCP: a pipeline sends what the program pushes to a TCP server (here a plain std listener).

use std::io::Read as _;
use std::sync::Arc;

use parallax::exec::{Pipeline, RunControl, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
        let (mut peer, _) = listener.accept()?;
        let mut got = Vec::new();
        peer.read_to_end(&mut got)?;
        Ok(got)
    });
    let mut pipeline = Pipeline::parse(&format!(
        "appsrc name=in ! tcpclientsink host=127.0.0.1 port={port}"
    ))?;
    let input = pipeline.appsrc("in")?;
    for i in 0..10 {
        input.push_bytes(format!("line {i}\n").as_bytes())?;
    }
    input.end_of_stream()?;
    pipeline.run(Arc::new(RunControl::new()?), &RunOptions::default())?;
    let got = server.join().expect("server thread")?;
    println!(
        "the server received {} bytes, {} lines",
        got.len(),
        got.iter().filter(|&&b| b == b'\n').count()
    );
    Ok(())
}
