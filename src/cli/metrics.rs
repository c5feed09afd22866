//! `--metrics=ADDR:PORT`: Prometheus text exposition (format 0.0.4) at `/metrics`, from the
//! same live counts as the control socket's `stats`.
//!
//! The text is written by `prometheus-client` (the Prometheus project's Rust client): one
//! [`Collector`] reads the live report at each scrape, so the running pipeline does nothing for
//! the endpoint but publish the counts it already keeps. One GET path on one thread needs no
//! HTTP stack: the responder reads the request head, answers HTTP/1.0 with the whole body and
//! closes. Anything but `GET /metrics` gets a 404 (405 for another method); a client that
//! stalls is dropped after a timeout.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::exec::{Pipeline, Progress, Report, RunControl, TimeHistogram};
use crate::graph::Graph;

const IO_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_HEAD: usize = 8 * 1024;

/// Binds `addr` and serves until the process exits. `graph` gives the elements' names.
pub fn serve(
    addr: &str,
    pipeline: Arc<Pipeline>,
    progress: Arc<Progress>,
    control: Arc<RunControl>,
) -> Result<std::net::SocketAddr, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: {e}"))?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PipelineCollector {
        pipeline,
        progress,
        control,
    }));
    let local = listener
        .local_addr()
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    std::thread::Builder::new()
        .name("px-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &registry);
            }
        })
        .map_err(|e| format!("--metrics {addr}: cannot start its thread: {e}"))?;
    Ok(local)
}

fn answer(mut stream: TcpStream, registry: &Registry) {
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
            let mut body = String::new();
            // Writing into a String cannot fail; a collector's error leaves the text cut short.
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut body, registry);
            (
                "200 OK",
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                body,
            )
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

/// The label set of a metric that has none.
const NO_LABELS: [(&str, &str); 0] = [];

/// Reads the pipeline's live report at each scrape.
struct PipelineCollector {
    pipeline: Arc<Pipeline>,
    progress: Arc<Progress>,
    control: Arc<RunControl>,
}

impl std::fmt::Debug for PipelineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineCollector").finish_non_exhaustive()
    }
}

impl Collector for PipelineCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let live = self
            .progress
            .report(self.pipeline.graph())
            .map(|report| Live {
                report,
                queues: self.progress.queue_levels(),
                cycles: self.progress.cycle_times(),
                workers: self.progress.worker_starts(),
            });
        encode(
            encoder,
            self.pipeline.graph(),
            live.as_ref(),
            self.control.is_paused(),
        )
    }
}

/// What one scrape shows, once the pipeline runs.
pub struct Live {
    /// The run report as it stands.
    pub report: Report,
    /// Channel levels: (element, buffers, bytes).
    pub queues: Vec<(usize, usize, u64)>,
    /// rt elements' cycle times so far.
    pub cycles: Vec<(String, TimeHistogram)>,
    /// Worker processes started, by isolated element.
    pub workers: Vec<(String, u64)>,
}

/// One metric family: its descriptor, then one sample per label set.
fn family<'a, L, V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error>
where
    L: prometheus_client::encoding::EncodeLabelSet + 'a,
    V: prometheus_client::encoding::EncodeGaugeValue
        + prometheus_client::encoding::EncodeCounterValue
        + std::fmt::Debug,
{
    let mut metric = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in samples {
        let sample = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(sample)?,
            _ => ConstGauge::new(value).encode(sample)?,
        }
    }
    Ok(())
}

/// A histogram family of times, one histogram per label set, in seconds.
fn histograms<'a, L: prometheus_client::encoding::EncodeLabelSet + 'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, &'a TimeHistogram)>,
) -> Result<(), std::fmt::Error> {
    let mut metric =
        encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in samples {
        let buckets: Vec<(f64, u64)> = h
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let le = TimeHistogram::bound_ns(i).map_or(f64::INFINITY, |ns| ns as f64 / 1e9);
                (le, n)
            })
            .collect();
        metric
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(h.sum_ns as f64 / 1e9, h.count, &buckets, None)?;
    }
    Ok(())
}

/// Writes every family: the pipeline's state, then (once it runs) per element, per link, per
/// pool, rt and worker metrics. Names carry their unit (`_seconds`, `_bytes`) and counters end
/// in `_total`; elements are labelled `element` and `factory`.
pub fn encode(
    mut encoder: DescriptorEncoder,
    graph: &Graph,
    live: Option<&Live>,
    paused: bool,
) -> Result<(), std::fmt::Error> {
    let e = &mut encoder;
    family(
        e,
        "parallax_up",
        "1 while the pipeline runs.",
        None,
        MetricType::Gauge,
        [(NO_LABELS, 1u64)],
    )?;
    family(
        e,
        "parallax_paused",
        "1 while the pipeline is paused (control socket), else 0.",
        None,
        MetricType::Gauge,
        [(NO_LABELS, u64::from(paused))],
    )?;
    let Some(live) = live else {
        // Not planned yet: nothing else is known.
        return Ok(());
    };
    let report = &live.report;
    family(
        e,
        "parallax_running",
        "Wall time since the pipeline started.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
        [(NO_LABELS, report.wall_ns as f64 / 1e9)],
    )?;
    family(
        e,
        "parallax_threads",
        "Threads (segments) the pipeline runs on.",
        None,
        MetricType::Gauge,
        [(NO_LABELS, report.threads as u64)],
    )?;
    let labels = |el: &crate::exec::ElementReport| {
        [
            ("element", el.name.clone()),
            ("factory", el.factory.to_owned()),
        ]
    };
    type Pick = fn(&crate::exec::ElementReport) -> u64;
    let counters: [(&str, &str, Option<Unit>, Pick); 5] = [
        (
            "parallax_element_buffers",
            "Buffers through the element (out of sources, into everything else).",
            None,
            |e| e.buffers,
        ),
        (
            "parallax_element",
            "Bytes of those buffers.",
            Some(Unit::Bytes),
            |e| e.bytes,
        ),
        (
            "parallax_element_dropped",
            "Buffers the element dropped (valve, selectors, leaky queues, throttle).",
            None,
            |e| e.dropped,
        ),
        (
            "parallax_element_synced",
            "Buffers the element rendered against the pipeline clock (sync=true).",
            None,
            |e| e.synced,
        ),
        (
            "parallax_element_late",
            "Of those, buffers that came more than 20 ms after their running time.",
            None,
            |e| e.late,
        ),
    ];
    for (name, help, unit, pick) in counters {
        family(
            e,
            name,
            help,
            unit.as_ref(),
            MetricType::Counter,
            report.elements.iter().map(|el| (labels(el), pick(el))),
        )?;
    }
    family(
        e,
        "parallax_element_busy",
        "Time spent inside the element's calls (sampled).",
        Some(&Unit::Seconds),
        MetricType::Counter,
        report
            .elements
            .iter()
            .map(|el| (labels(el), el.busy_ns as f64 / 1e9)),
    )?;
    family(
        e,
        "parallax_element_max_lateness",
        "The latest a synced buffer came after its running time.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
        report
            .elements
            .iter()
            .filter(|el| el.synced > 0)
            .map(|el| (labels(el), el.max_lateness_ns as f64 / 1e9)),
    )?;
    histograms(
        e,
        "parallax_element_processing",
        "Time inside the element's calls per buffer, on the buffers whose time is sampled (one \
         in 32 at random, every one on slow streams).",
        report
            .elements
            .iter()
            .map(|el| (labels(el), &el.processing_time)),
    )?;
    family(
        e,
        "parallax_queue_buffers",
        "Buffers waiting now in the channel in front of the element (queues, funnels, async sinks).",
        None,
        MetricType::Gauge,
        live.queues.iter().map(|&(el, buffers, _)| {
            let node = &graph.dag[daggy::NodeIndex::new(el)];
            (
                [("element", node.name.clone()), ("factory", node.factory.name.to_owned())],
                buffers as u64,
            )
        }),
    )?;
    family(
        e,
        "parallax_queue",
        "Bytes waiting now in the channel in front of the element.",
        Some(&Unit::Bytes),
        MetricType::Gauge,
        live.queues.iter().map(|&(el, _, bytes)| {
            let node = &graph.dag[daggy::NodeIndex::new(el)];
            (
                [
                    ("element", node.name.clone()),
                    ("factory", node.factory.name.to_owned()),
                ],
                bytes,
            )
        }),
    )?;
    family(
        e,
        "parallax_link_high_water_buffers",
        "Most buffers waiting at once in a link that crosses threads.",
        None,
        MetricType::Gauge,
        report.links.iter().filter(|l| l.crosses_threads).map(|l| {
            (
                [("from", l.from.clone()), ("to", l.to.clone())],
                l.high_water as u64,
            )
        }),
    )?;
    let pool = |p: &crate::exec::PoolReport| {
        [
            ("element", p.element.clone()),
            ("backing", p.backing.to_owned()),
        ]
    };
    family(
        e,
        "parallax_pool_slots",
        "Slots of a source's buffer pool.",
        None,
        MetricType::Gauge,
        report.pools.iter().map(|p| (pool(p), p.stats.slots as u64)),
    )?;
    family(
        e,
        "parallax_pool_high_water_slots",
        "Most slots of a source's buffer pool in use at once.",
        None,
        MetricType::Gauge,
        report
            .pools
            .iter()
            .map(|p| (pool(p), p.stats.high_water as u64)),
    )?;
    family(
        e,
        "parallax_pool_slot",
        "Size of one slot of a source's buffer pool.",
        Some(&Unit::Bytes),
        MetricType::Gauge,
        report
            .pools
            .iter()
            .map(|p| (pool(p), p.stats.slot_size as u64)),
    )?;
    histograms(
        e,
        "parallax_rt_cycle",
        "How long each cycle (one process call) of an exec=rt element took.",
        live.cycles
            .iter()
            .map(|(name, h)| ([("element", name.clone())], h)),
    )?;
    family(
        e,
        "parallax_isolated_worker_starts",
        "Worker processes started for an exec=isolated element.",
        None,
        MetricType::Counter,
        live.workers
            .iter()
            .map(|(name, n)| ([("element", name.clone())], *n)),
    )?;
    family(
        e,
        "parallax_isolated_worker_restarts",
        "Worker processes started to replace one that ended (a worker that dies ends the run \
         instead, so this stays 0).",
        None,
        MetricType::Counter,
        live.workers
            .iter()
            .map(|(name, n)| ([("element", name.clone())], n.saturating_sub(1))),
    )
}
