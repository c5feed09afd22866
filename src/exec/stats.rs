//! The run report: per element, per link and per pool counters, as a table for people or one
//! JSON object for scripts (`--stats=json`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::segment::{ElementStats, Level};
use super::Ending;
use crate::graph::Graph;
use crate::memory::{MemoryPool, PoolStats};
use crate::registry::Domain;

/// One element's line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ElementReport {
    /// Instance name.
    pub name: String,
    /// Factory name.
    pub factory: &'static str,
    /// The thread (segment) that ran it, from 0; async elements share the runtime's thread,
    /// numbered after the fused ones.
    pub thread: usize,
    /// The domain it ran in: `thread` (fused on an OS thread) or `async` (a tokio task).
    pub domain: Domain,
    /// Buffers through it (out of sources, into everything else).
    pub buffers: u64,
    /// Bytes of those buffers.
    pub bytes: u64,
    /// Nanoseconds inside its calls.
    pub busy_ns: u64,
    /// Buffers it dropped.
    pub dropped: u64,
    /// Buffers it cut short (datagrams longer than its mtu).
    pub truncated: u64,
    /// Of `bytes`, how many the kernel copied from their source file (`copy_file_range`)
    /// instead of the element writing them.
    pub kernel_copied: u64,
    /// Buffers it rendered against the pipeline clock (`sync=true`), as gst's QoS counts them.
    pub synced: u64,
    /// Of those, how many came more than 20 ms after their running time (gst's video sinks'
    /// `max-lateness`).
    pub late: u64,
    /// The latest a synced buffer came after its running time, in ns.
    pub max_lateness_ns: u64,
    /// Time per buffer inside its calls, on the buffers whose time was sampled (one in 32 at
    /// random, every one on a slow stream).
    pub processing_time: TimeHistogram,
}

/// One link's line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkReport {
    /// `element.pad` upstream.
    pub from: String,
    /// `element.pad` downstream.
    pub to: String,
    /// Buffers that crossed it.
    pub buffers: u64,
    /// Bytes of those buffers.
    pub bytes: u64,
    /// Most buffers waiting in it at once (links into a queue or funnel; 0 for direct calls).
    pub high_water: usize,
    /// Whether the link crosses threads.
    pub crosses_threads: bool,
}

/// One source pool's line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PoolReport {
    /// The source that fills it.
    pub element: String,
    /// What backs it (`memfd`, `heap`, `hugepages`; `memfd` after a huge-page fallback).
    pub backing: &'static str,
    /// How worker processes map it: `read-write`, or `read-only` (sealed, a private ledger)
    /// when one of them runs code that is not trusted.
    pub sharing: &'static str,
    /// Counters.
    #[serde(flatten)]
    pub stats: PoolStats,
}

/// Everything `--stats` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// `eos`, `interrupted` or `error`.
    pub ending: Ending,
    /// How the run failed (the message printed after `error:`), or null.
    pub error: Option<String>,
    /// Wall time of the run, in nanoseconds.
    pub wall_ns: u64,
    /// Threads (segments) used.
    pub threads: usize,
    /// Buffers into sinks.
    pub sink_buffers: u64,
    /// Bytes into sinks.
    pub sink_bytes: u64,
    /// Peak resident memory of the process, in KiB (VmHWM); filled by [`Report::measure_rss`].
    pub peak_rss_kib: Option<u64>,
    /// Per element.
    pub elements: Vec<ElementReport>,
    /// Per link.
    pub links: Vec<LinkReport>,
    /// Per source pool.
    pub pools: Vec<PoolReport>,
    /// Per `exec=rt` element: how long its cycles (one `process` call) took.
    pub rt: Vec<CycleReport>,
}

/// The cycle-time distribution of one `exec=rt` element.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CycleReport {
    /// The element.
    pub element: String,
    /// Cycles measured.
    pub cycles: u64,
    /// Median cycle, in nanoseconds.
    pub median_ns: u64,
    /// 99th percentile, in nanoseconds.
    pub p99_ns: u64,
    /// Longest cycle, in nanoseconds.
    pub max_ns: u64,
    /// Every cycle's time.
    pub cycle_time: TimeHistogram,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn report(
    graph: &Graph,
    per_element: &[ElementStats],
    per_link: &HashMap<(usize, String), ElementStats>,
    segment_of: &[usize],
    levels: &HashMap<usize, Arc<Level>>,
    bridges: &HashMap<usize, Arc<Level>>,
    pools: &HashMap<usize, MemoryPool>,
    rt: Vec<CycleReport>,
    threads: usize,
    wall: Duration,
    ending: Ending,
) -> Report {
    let dag = &graph.dag;
    let mut elements = Vec::new();
    let (mut sink_buffers, mut sink_bytes) = (0, 0);
    for n in dag.graph().node_indices() {
        let node = &dag[n];
        let s = per_element[n.index()];
        if node.factory.pads.src == crate::registry::PadPresence::None {
            sink_buffers += s.buffers;
            sink_bytes += s.bytes;
        }
        elements.push(ElementReport {
            name: node.name.clone(),
            factory: node.factory.name,
            thread: segment_of[n.index()],
            domain: node.factory.domain(),
            buffers: s.buffers,
            bytes: s.bytes,
            // A sampled estimate can overshoot; no element is busier than the run is long.
            busy_ns: s.busy_ns.min(wall.as_nanos() as u64),
            dropped: s.dropped,
            truncated: s.truncated,
            kernel_copied: s.kernel_copied,
            synced: s.synced,
            late: s.late,
            max_lateness_ns: s.max_lateness_ns,
            processing_time: s.times,
        });
    }
    let mut links = Vec::new();
    for e in dag.graph().edge_indices() {
        let (a, b) = dag.edge_endpoints(e).expect("edge exists");
        let link = &dag[e];
        // Out of an async source, the bridge is the channel the link crosses.
        let level = bridges.get(&a.index()).or_else(|| levels.get(&b.index()));
        // Into an element with one input, what it took in; into a funnel, what each input's
        // sender carried (the funnel's own count is all of its inputs together).
        let through = match per_link.get(&(a.index(), link.src_pad.clone())) {
            Some(s) if graph.parent_count(b) > 1 => *s,
            _ => per_element[b.index()],
        };
        links.push(LinkReport {
            from: format!("{}.{}", dag[a].name, link.src_pad),
            to: format!("{}.{}", dag[b].name, link.sink_pad),
            buffers: through.buffers,
            bytes: through.bytes,
            high_water: level.map_or(0, |l| l.high_water.load(Ordering::Relaxed)),
            crosses_threads: level.is_some(),
        });
    }
    let mut pool_reports: Vec<PoolReport> = pools
        .iter()
        .map(|(el, p)| PoolReport {
            element: dag[daggy::NodeIndex::new(*el)].name.clone(),
            backing: p.backing().name(),
            sharing: match p.peer_access() {
                crate::memory::PeerAccess::ReadWrite => "read-write",
                crate::memory::PeerAccess::ReadOnly => "read-only",
            },
            stats: p.stats(),
        })
        .collect();
    pool_reports.sort_by(|a, b| a.element.cmp(&b.element));
    Report {
        ending,
        error: None,
        wall_ns: wall.as_nanos() as u64,
        threads,
        sink_buffers,
        sink_bytes,
        // Read when the report is printed: /proc costs start-up time a -q run need not pay.
        peak_rss_kib: None,
        elements,
        links,
        pools: pool_reports,
        rt,
    }
}

/// VmHWM from /proc/self/status.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `1 buffer`, `2 buffers`: a count and its noun, singular for one.
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `1.50 GiB`, `512 B`.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

fn human_duration(ns: u64) -> String {
    match ns {
        n if n < 10_000 => format!("{n} ns"),
        n if n < 10_000_000 => format!("{:.1} µs", n as f64 / 1e3),
        n if n < 10_000_000_000 => format!("{:.1} ms", n as f64 / 1e6),
        n => format!("{:.2} s", n as f64 / 1e9),
    }
}

impl Report {
    /// Records the process's peak RSS so far.
    pub fn measure_rss(&mut self) {
        self.peak_rss_kib = peak_rss_kib();
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serialises")
    }

    /// The report as an aligned table.
    pub fn to_table(&self) -> String {
        let mut rows = vec![[
            "element".to_owned(),
            "factory".to_owned(),
            "thread".to_owned(),
            "buffers".to_owned(),
            "bytes".to_owned(),
            "busy".to_owned(),
            "dropped".to_owned(),
        ]];
        for e in &self.elements {
            rows.push([
                e.name.clone(),
                e.factory.to_owned(),
                match e.domain {
                    Domain::Async => "async".to_owned(),
                    Domain::Thread => e.thread.to_string(),
                },
                e.buffers.to_string(),
                human_bytes(e.bytes as f64),
                human_duration(e.busy_ns),
                e.dropped.to_string(),
            ]);
        }
        let mut widths = [0usize; 7];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            let mut line = String::new();
            for (i, (c, w)) in r.iter().zip(widths).enumerate() {
                let pad = w - c.chars().count();
                if i < 2 {
                    line.push_str(c);
                    line.push_str(&" ".repeat(pad + 2));
                } else {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(c);
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for e in self.elements.iter().filter(|e| e.truncated > 0) {
            out.push_str(&format!(
                "{}: {} truncated (datagrams longer than its mtu)\n",
                e.name,
                counted(e.truncated, "buffer")
            ));
        }
        for e in self.elements.iter().filter(|e| e.kernel_copied > 0) {
            out.push_str(&format!(
                "{}: {} copied in the kernel (copy_file_range or splice), {} written\n",
                e.name,
                human_bytes(e.kernel_copied as f64),
                human_bytes(e.bytes.saturating_sub(e.kernel_copied) as f64)
            ));
        }
        for e in self.elements.iter().filter(|e| e.synced > 0) {
            out.push_str(&format!(
                "{}: qos: {} synced to the clock, {} late (over 20 ms), max lateness {}\n",
                e.name,
                counted(e.synced, "buffer"),
                e.late,
                format_lateness(e.max_lateness_ns)
            ));
        }
        for l in self.links.iter().filter(|l| l.crosses_threads) {
            out.push_str(&format!(
                "link {} -> {}: {}, high-water {}\n",
                l.from,
                l.to,
                counted(l.buffers, "buffer"),
                l.high_water
            ));
        }
        for c in &self.rt {
            out.push_str(&format!(
                "rt {}: {} cycles, median {}, p99 {}, max {}\n",
                c.element,
                c.cycles,
                human_duration(c.median_ns),
                human_duration(c.p99_ns),
                human_duration(c.max_ns)
            ));
        }
        for p in &self.pools {
            let sealed = if p.sharing == "read-only" {
                ", read-only to workers"
            } else {
                ""
            };
            out.push_str(&format!(
                "pool {} ({}{sealed}): {} x {}, high-water {}\n",
                p.element,
                p.backing,
                p.stats.slots,
                human_bytes(p.stats.slot_size as f64),
                p.stats.high_water
            ));
        }
        let secs = self.wall_ns as f64 / 1e9;
        let rate = if secs > 0.0 {
            self.sink_bytes as f64 / secs
        } else {
            0.0
        };
        let ending = match self.ending {
            Ending::Eos => "end of stream",
            Ending::Interrupted => "interrupted, drained",
            Ending::Error => "failed",
        };
        out.push_str(&format!(
            "{ending}: {}, {} into sinks in {} ({}/s), {} thread{}",
            counted(self.sink_buffers, "buffer"),
            human_bytes(self.sink_bytes as f64),
            human_duration(self.wall_ns),
            human_bytes(rate),
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        ));
        if let Some(kib) = self.peak_rss_kib {
            out.push_str(&format!(", peak RSS {}", human_bytes(kib as f64 * 1024.0)));
        }
        out.push('\n');
        out
    }
}

/// A lateness as `0 ms` or `123.4 ms`.
fn format_lateness(ns: u64) -> String {
    if ns == 0 {
        "0 ms".to_owned()
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// Buckets of a [`TimeHistogram`] with a finite bound: `2^(8+i)` ns, from 256 ns to about half
/// a second; one more bucket takes everything longer.
pub const TIME_BUCKETS: usize = 22;

/// A distribution of times (an element's processing time per buffer, an rt element's cycle
/// time) in power-of-two buckets: recording is one count and one add, never an allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeHistogram {
    /// Observations by bucket (not cumulative); the last one has no bound.
    pub buckets: [u64; TIME_BUCKETS + 1],
    /// Observations in all.
    pub count: u64,
    /// Their sum, in nanoseconds.
    pub sum_ns: u64,
}

impl TimeHistogram {
    /// The upper bound of bucket `i` in nanoseconds (`None`: unbounded).
    pub fn bound_ns(i: usize) -> Option<u64> {
        (i < TIME_BUCKETS).then(|| 1u64 << (8 + i))
    }

    /// Counts one observation of `ns` nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        // ceil(log2(ns)) - 8, so that bucket i holds (2^(7+i), 2^(8+i)] ns.
        let log = 64 - ns.saturating_sub(1).leading_zeros() as usize;
        let i = log.saturating_sub(8).min(TIME_BUCKETS);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    /// Whether nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl std::ops::AddAssign<&TimeHistogram> for TimeHistogram {
    fn add_assign(&mut self, other: &TimeHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }
}

/// In JSON: `{"count", "sum_ns", "buckets": [{"le_ns", "count"}]}`, the buckets not cumulative
/// and only those with observations; `le_ns` is null for the unbounded one.
impl serde::Serialize for TimeHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Bucket {
            le_ns: Option<u64>,
            count: u64,
        }
        #[derive(serde::Serialize)]
        struct Histogram {
            count: u64,
            sum_ns: u64,
            buckets: Vec<Bucket>,
        }
        Histogram {
            count: self.count,
            sum_ns: self.sum_ns,
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &count)| Bucket {
                    le_ns: TimeHistogram::bound_ns(i),
                    count,
                })
                .collect(),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_fall_in_power_of_two_buckets() {
        let mut h = TimeHistogram::default();
        for ns in [0, 1, 256, 257, 512, 513, 1 << 29, (1 << 29) + 1, u64::MAX] {
            h.record(ns);
        }
        assert_eq!(h.buckets[0], 3, "up to 256 ns");
        assert_eq!(h.buckets[1], 2, "257..=512 ns");
        assert_eq!(h.buckets[2], 1);
        assert_eq!(h.buckets[TIME_BUCKETS - 1], 1, "up to 2^29 ns");
        assert_eq!(h.buckets[TIME_BUCKETS], 2, "beyond");
        assert_eq!(h.count, 9);
        assert_eq!(TimeHistogram::bound_ns(TIME_BUCKETS - 1), Some(1 << 29));
        assert_eq!(TimeHistogram::bound_ns(TIME_BUCKETS), None);
        let json = serde_json::to_value(h).unwrap();
        assert_eq!(json["buckets"][0]["le_ns"], 256);
        assert_eq!(
            json["buckets"].as_array().unwrap().last().unwrap()["le_ns"],
            serde_json::Value::Null
        );
    }
}
