//! `--metrics=ADDR:PORT`: Prometheus text exposition (format 0.0.4) at `/metrics`, from the
//! same live counts as the control socket's `stats`.
//!
//! One GET path on one thread needs no HTTP stack: the responder reads the request head,
//! answers HTTP/1.0 with the whole body and closes. Anything but `GET /metrics` gets a 404
//! (405 for another method); a client that stalls is dropped after a timeout.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::exec::{Progress, Report};
use crate::graph::Graph;

const IO_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_HEAD: usize = 8 * 1024;

/// Binds `addr` and serves until the process exits. `graph` gives the elements' names.
pub fn serve(
    addr: &str,
    pipeline: Arc<crate::exec::Pipeline>,
    progress: Arc<Progress>,
    control: Arc<crate::exec::RunControl>,
) -> Result<std::net::SocketAddr, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    std::thread::Builder::new()
        .name("px-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &pipeline, &progress, &control);
            }
        })
        .map_err(|e| format!("--metrics {addr}: cannot start its thread: {e}"))?;
    Ok(local)
}

fn answer(
    mut stream: TcpStream,
    pipeline: &crate::exec::Pipeline,
    progress: &Progress,
    control: &crate::exec::RunControl,
) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.len() > MAX_HEAD {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = match progress.report(pipeline.graph()) {
                Some(report) => exposition(
                    pipeline.graph(),
                    &report,
                    &progress.queue_levels(),
                    control.is_paused(),
                ),
                None => "# the pipeline is not running yet\nparallax_up 1\n".to_owned(),
            };
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
        }
        (_, "/metrics") => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
        _ => (
            "404 Not Found",
            "text/plain",
            "metrics are at /metrics\n".into(),
        ),
    };
    let body = if method == "HEAD" { "" } else { body.as_str() };
    let _ = write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A label value escaped as the text format wants: backslash, double quote and newline.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// The metrics of a (live) report, in the text exposition format.
pub fn exposition(
    graph: &Graph,
    report: &Report,
    queues: &[(usize, usize, u64)],
    paused: bool,
) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    f.head("parallax_up", "gauge", "1 while the pipeline runs.");
    f.sample("parallax_up", &[], 1.0);
    f.head(
        "parallax_paused",
        "gauge",
        "1 while the pipeline is paused (control socket), else 0.",
    );
    f.sample("parallax_paused", &[], f64::from(u8::from(paused)));
    f.head(
        "parallax_running_seconds",
        "gauge",
        "Wall time since the pipeline started.",
    );
    f.sample("parallax_running_seconds", &[], report.wall_ns as f64 / 1e9);
    f.head(
        "parallax_threads",
        "gauge",
        "Threads (segments) the pipeline runs on.",
    );
    f.sample("parallax_threads", &[], report.threads as f64);
    type Pick = fn(&crate::exec::ElementReport) -> f64;
    let per_element: [(&str, &str, Pick); 4] = [
        (
            "parallax_element_buffers_total",
            "Buffers through the element (out of sources, into everything else).",
            |e| e.buffers as f64,
        ),
        (
            "parallax_element_bytes_total",
            "Bytes of those buffers.",
            |e| e.bytes as f64,
        ),
        (
            "parallax_element_busy_seconds_total",
            "Time spent inside the element's calls (sampled).",
            |e| e.busy_ns as f64 / 1e9,
        ),
        (
            "parallax_element_dropped_total",
            "Buffers the element dropped (valve, selectors, leaky queues).",
            |e| e.dropped as f64,
        ),
    ];
    for (name, help, pick) in per_element {
        f.head(name, "counter", help);
        for e in &report.elements {
            f.sample(
                name,
                &[("element", &e.name), ("factory", e.factory)],
                pick(e),
            );
        }
    }
    f.head(
        "parallax_queue_buffers",
        "gauge",
        "Buffers waiting now in the channel in front of the element (queues, funnels, async sinks).",
    );
    for &(el, buffers, _) in queues {
        let node = &graph.dag[daggy::NodeIndex::new(el)];
        f.sample(
            "parallax_queue_buffers",
            &[("element", &node.name), ("factory", node.factory.name)],
            buffers as f64,
        );
    }
    f.head(
        "parallax_link_high_water_buffers",
        "gauge",
        "Most buffers waiting at once in a link that crosses threads.",
    );
    for l in report.links.iter().filter(|l| l.crosses_threads) {
        f.sample(
            "parallax_link_high_water_buffers",
            &[("from", &l.from), ("to", &l.to)],
            l.high_water as f64,
        );
    }
    f.head(
        "parallax_pool_slots",
        "gauge",
        "Slots of a source's buffer pool.",
    );
    for p in &report.pools {
        f.sample(
            "parallax_pool_slots",
            &[("element", &p.element), ("backing", p.backing)],
            p.stats.slots as f64,
        );
    }
    f.head(
        "parallax_pool_high_water_slots",
        "gauge",
        "Most slots of a source's buffer pool in use at once.",
    );
    for p in &report.pools {
        f.sample(
            "parallax_pool_high_water_slots",
            &[("element", &p.element), ("backing", p.backing)],
            p.stats.high_water as f64,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
