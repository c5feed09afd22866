//! `parallax-top`: a live view of a pipeline run with `parallax-launch --control=PATH`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser as _;
use parallax::cli::{TopArgs, TopFormat};
use serde_json::{json, Value};

/// One connection to the control socket.
struct Client {
    out: UnixStream,
    input: BufReader<UnixStream>,
}

impl Client {
    fn connect(path: &std::path::Path) -> Result<Client, String> {
        let out = UnixStream::connect(path)
            .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
        let input = BufReader::new(
            out.try_clone()
                .map_err(|e| format!("{}: {e}", path.display()))?,
        );
        Ok(Client { out, input })
    }

    /// The live stats object, or `None` once the pipeline is gone.
    fn stats(&mut self) -> Option<Value> {
        writeln!(self.out, "{}", json!({"cmd": "stats"})).ok()?;
        let mut line = String::new();
        if self.input.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let answer: Value = serde_json::from_str(&line).ok()?;
        (answer["ok"] == true).then_some(answer)
    }
}

/// One element's row: what changed between two samples.
fn rows(before: &Value, now: &Value, secs: f64) -> Vec<Value> {
    let empty = Vec::new();
    let old = before["stats"]["elements"].as_array().unwrap_or(&empty);
    let queues = now["queues"].as_array().unwrap_or(&empty);
    now["stats"]["elements"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap_or("");
            let prev = old.iter().find(|o| o["name"] == e["name"]);
            let delta = |field: &str| {
                let a = prev.and_then(|p| p[field].as_u64()).unwrap_or(0);
                e[field].as_u64().unwrap_or(0).saturating_sub(a) as f64
            };
            let into = queues
                .iter()
                .find(|q| q["element"] == e["name"])
                .and_then(|q| q["buffers"].as_u64());
            json!({
                "name": name,
                "factory": e["factory"],
                "buffers_per_s": delta("buffers") / secs,
                "bytes_per_s": delta("bytes") / secs,
                "busy_percent": (delta("busy_ns") / (secs * 1e9) * 100.0).min(100.0),
                "queue_buffers": into,
                "dropped": e["dropped"],
                "buffers": e["buffers"],
                "late": e["late"],
                "synced": e["synced"],
            })
        })
        .collect()
}

fn table(state: &str, rows: &[Value]) -> String {
    let mut out = format!(
        "{:<20} {:<14} {:>12} {:>12} {:>6} {:>6} {:>10} {:>8}\n",
        "ELEMENT", "FACTORY", "BUF/S", "BYTES/S", "BUSY%", "QUEUE", "DROPPED", "LATE"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<20} {:<14} {:>12.0} {:>12} {:>6.1} {:>6} {:>10} {:>8}\n",
            r["name"].as_str().unwrap_or(""),
            r["factory"].as_str().unwrap_or(""),
            r["buffers_per_s"].as_f64().unwrap_or(0.0),
            parallax::exec::human_bytes(r["bytes_per_s"].as_f64().unwrap_or(0.0)),
            r["busy_percent"].as_f64().unwrap_or(0.0),
            r["queue_buffers"]
                .as_u64()
                .map_or("-".to_owned(), |q| q.to_string()),
            r["dropped"].as_u64().unwrap_or(0),
            r["late"].as_u64().unwrap_or(0),
        ));
    }
    out.push_str(&format!("pipeline {state}\n"));
    out
}

fn main() -> ExitCode {
    let args = TopArgs::parse();
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        eprintln!("error: --interval must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let mut client = match Client::connect(&args.control) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(mut before) = client.stats() else {
        eprintln!(
            "error: {}: no statistics (has the pipeline started?)",
            args.control.display()
        );
        return ExitCode::from(1);
    };
    let mut at = Instant::now();
    let stdout = std::io::stdout();
    let interactive =
        !args.once && args.format == TopFormat::Table && std::io::IsTerminal::is_terminal(&stdout);
    loop {
        std::thread::sleep(Duration::from_secs_f64(args.interval));
        let Some(now) = client.stats() else {
            return ExitCode::SUCCESS;
        };
        let secs = at.elapsed().as_secs_f64();
        at = Instant::now();
        let rows = rows(&before, &now, secs);
        let state = now["state"].as_str().unwrap_or("running");
        let text = match args.format {
            TopFormat::Json => {
                json!({"schema": 1, "state": state, "interval_s": secs, "elements": rows})
                    .to_string()
                    + "\n"
            }
            TopFormat::Table if interactive => format!("\x1b[H\x1b[2J{}", table(state, &rows)),
            TopFormat::Table => table(state, &rows),
        };
        let mut out = stdout.lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::SUCCESS;
        }
        if args.once {
            return ExitCode::SUCCESS;
        }
        before = now;
    }
}
