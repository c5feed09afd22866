//! Test sources and sinks: `fakesrc`, `testsrc`, `fakesink`, `identity`.

use std::time::Duration;

use super::{basesink_props, basesrc_props, hex_dump, Rng, FORMATS};
use crate::element::prelude::*;

/// How long `bytes` take at `rate` bytes per second, in ns; `None` when the rate is 0.
fn ns_at_rate(bytes: u64, rate: u64) -> Option<u64> {
    (u128::from(bytes) * 1_000_000_000)
        .checked_div(u128::from(rate))
        .map(|ns| u64::try_from(ns).unwrap_or(u64::MAX))
}

// --- fakesrc -------------------------------------------------------------------------------

const SIZE_TYPES: &[EnumValue] = &[
    EnumValue {
        nick: "empty",
        value: 1,
        doc: "Send empty buffers",
    },
    EnumValue {
        nick: "fixed",
        value: 2,
        doc: "Fixed size buffers (sizemax sized)",
    },
    EnumValue {
        nick: "random",
        value: 3,
        doc: "Random sized buffers (sizemin <= size <= sizemax)",
    },
];

const FILL_TYPES: &[EnumValue] = &[
    EnumValue {
        nick: "nothing",
        value: 1,
        doc: "Leave data as it is in the pool slot",
    },
    EnumValue {
        nick: "zero",
        value: 2,
        doc: "Fill buffers with zeros",
    },
    EnumValue {
        nick: "random",
        value: 3,
        doc: "Fill buffers with random data",
    },
    EnumValue {
        nick: "pattern",
        value: 4,
        doc: "Fill buffers with pattern 0x00 -> 0xff",
    },
    EnumValue {
        nick: "pattern-span",
        value: 5,
        doc: "Fill buffers with pattern 0x00 -> 0xff that spans buffers",
    },
];

const DATA_TYPES: &[EnumValue] = &[
    EnumValue {
        nick: "allocate",
        value: 1,
        doc: "Allocate data",
    },
    EnumValue {
        nick: "subbuffer",
        value: 2,
        doc: "Subbuffer data",
    },
];

pub(crate) static FAKESRC: Factory = Factory {
    name: "fakesrc",
    aliases: &["nullsrc"],
    klass: Klass::Source,
    summary: "Produces buffers of chosen sizes and contents (nullsrc: empty buffers)",
    doc: "Produces `num-buffers` buffers (-1: until stopped) sized by `sizetype` (empty, fixed = \
          sizemax, random between sizemin and sizemax) and filled by `filltype` (nothing, zero, \
          random, pattern 0x00..0xff restarting in each buffer, pattern-span continuing across \
          buffers), byte for byte as gst's fakesrc. Empty buffers touch no memory at all.",
    pads: Pads::SOURCE,
    props: basesrc_props![
        PropSpec::enumeration(
            "sizetype",
            "empty",
            SIZE_TYPES,
            "How to determine buffer sizes"
        ),
        PropSpec::int("sizemin", 0, 0, i32::MAX as i64, "Minimum buffer size"),
        PropSpec::int("sizemax", 4096, 0, i32::MAX as i64, "Maximum buffer size"),
        PropSpec::enumeration(
            "filltype",
            "nothing",
            FILL_TYPES,
            "How to fill the buffer, if at all"
        ),
        PropSpec::int(
            "datarate",
            0,
            0,
            i32::MAX as i64,
            "Timestamps buffers with number of bytes per second (0 = none)"
        ),
        PropSpec::bool(
            "sync",
            false,
            "Sleep so that buffers leave at `datarate` bytes per second"
        ),
        PropSpec::bool("dump", false, "Dump buffer contents to stdout"),
        PropSpec::uint(
            "blocksize",
            4096,
            0,
            u32::MAX as u64,
            "Size in bytes to read per buffer (-1 = default)"
        )
        .ignored("fakesrc sizes buffers with sizetype/sizemax, as in gst"),
        PropSpec::bool("can-activate-pull", true, "Can activate in pull mode")
            .ignored("parallax sources always push"),
        PropSpec::bool("can-activate-push", true, "Can activate in push mode")
            .ignored("parallax sources always push"),
        PropSpec::enumeration("data", "allocate", DATA_TYPES, "Data allocation method")
            .ignored("buffers always come from the source's shared-memory pool"),
        PropSpec::enumeration(
            "format",
            "bytes",
            FORMATS,
            "The format of the segment events"
        )
        .ignored("parallax has no segment events"),
        PropSpec::bool(
            "is-live",
            false,
            "True if the element cannot produce data in PAUSED: each buffer is stamped with \
             the running time it is produced at (with datarate, produced at its time)"
        ),
        PropSpec::string("last-message", None, "The last status message").read_only(),
        PropSpec::int(
            "parentsize",
            40960,
            0,
            i32::MAX as i64,
            "Size of parent buffer for sub-buffered allocation"
        )
        .ignored("buffers always come from the source's shared-memory pool"),
        PropSpec::string("pattern", None, "Set the pattern (unused)").ignored("unused in gst too"),
        PropSpec::bool(
            "signal-handoffs",
            false,
            "Send a signal before pushing the buffer"
        )
        .ignored(super::NO_SIGNALS),
        PropSpec::bool("silent", true, "Don't produce last_message events")
            .ignored(super::NO_SIGNALS),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let sizemin = p.int("sizemin")? as usize;
        let sizemax = p.int("sizemax")? as usize;
        let sizetype = match p.nick("sizetype")? {
            "fixed" => SizeType::Fixed,
            "random" => SizeType::Random,
            _ => SizeType::Empty,
        };
        let filltype = match p.nick("filltype")? {
            "zero" => FillType::Zero,
            "random" => FillType::Random,
            "pattern" => FillType::Pattern,
            "pattern-span" => FillType::PatternSpan,
            _ => FillType::Nothing,
        };
        if sizetype == SizeType::Random && sizemin > sizemax {
            return Err(ElementError::Config(format!(
                "sizemin ({sizemin}) is larger than sizemax ({sizemax})"
            )));
        }
        Ok(ElementImpl::Source(Box::new(FakeSrc {
            num_buffers: u64::try_from(p.int("num-buffers")?).ok(),
            sizetype,
            sizemin,
            sizemax,
            filltype,
            datarate: p.int("datarate")? as u64,
            sync: p.bool("sync")? || p.bool("is-live")?,
            dump: p.bool("dump")?,
            do_timestamp: p.bool("do-timestamp")? || p.bool("is-live")?,
            pattern_byte: 0,
            rng: Rng::from_time(),
            sequence: 0,
            bytes: 0,
        })))
    },
};

/// fakesrc's `sizetype`, decided once at build instead of per buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeType {
    Empty,
    Fixed,
    Random,
}

/// fakesrc's `filltype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FillType {
    Nothing,
    Zero,
    Random,
    Pattern,
    PatternSpan,
}

/// fakesrc's state.
struct FakeSrc {
    num_buffers: Option<u64>,
    sizetype: SizeType,
    sizemin: usize,
    sizemax: usize,
    filltype: FillType,
    datarate: u64,
    sync: bool,
    dump: bool,
    do_timestamp: bool,
    pattern_byte: u8,
    rng: Rng,
    sequence: u64,
    bytes: u64,
}

impl FakeSrc {
    fn next_size(&mut self) -> usize {
        match self.sizetype {
            SizeType::Fixed => self.sizemax,
            SizeType::Random => {
                let span = (self.sizemax - self.sizemin) as u64 + 1;
                self.sizemin + (self.rng.next() % span) as usize
            }
            SizeType::Empty => 0,
        }
    }

    fn fill(&mut self, data: &mut [u8]) {
        match self.filltype {
            FillType::Zero => data.fill(0),
            FillType::Random => self.rng.fill(data),
            FillType::Pattern | FillType::PatternSpan => {
                if self.filltype == FillType::Pattern {
                    self.pattern_byte = 0;
                }
                for b in data {
                    *b = self.pattern_byte;
                    self.pattern_byte = self.pattern_byte.wrapping_add(1);
                }
            }
            FillType::Nothing => {}
        }
    }
}

impl Source for FakeSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        (self.sizetype != SizeType::Empty).then_some(PoolRequest {
            slot_size: self.sizemax.max(1),
            slots: 0,
        })
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        if self.num_buffers.is_some_and(|n| self.sequence >= n) {
            return Ok(None);
        }
        let size = self.next_size();
        let mut buf = if size == 0 {
            Buffer::empty()
        } else {
            let mut slot = cx.loan()?;
            self.fill(&mut slot.as_mut_slice()[..size]);
            slot.freeze(size)
        };
        if let Some(pts) = ns_at_rate(self.bytes, self.datarate) {
            buf.meta.set_pts(Some(pts));
            buf.meta
                .set_duration(ns_at_rate(size as u64, self.datarate));
            // Paced against the pipeline's running time, the clock do-timestamp stamps with
            // (it stands still while the pipeline is paused).
            if self.sync {
                cx.wait_until_running_time(pts);
            }
        } else if self.do_timestamp {
            buf.meta.set_pts(Some(cx.running_time_ns()));
        }
        buf.meta.sequence = self.sequence;
        buf.meta.set_offset(Some(self.bytes));
        buf.meta.set_offset_end(Some(self.bytes + size as u64));
        self.sequence += 1;
        self.bytes += size as u64;
        if self.dump {
            hex_dump(buf.data())?;
        }
        Ok(Some(buf))
    }
}

// --- testsrc -------------------------------------------------------------------------------

const TEST_PATTERNS: &[EnumValue] = &[
    EnumValue {
        nick: "counter",
        value: 0,
        doc: "Byte i of the stream is i mod 256",
    },
    EnumValue {
        nick: "zero",
        value: 1,
        doc: "All bytes 0x00",
    },
    EnumValue {
        nick: "ones",
        value: 2,
        doc: "All bytes 0xff",
    },
    EnumValue {
        nick: "random",
        value: 3,
        doc: "Pseudo-random bytes from `seed`",
    },
];

pub(crate) static TESTSRC: Factory = Factory {
    name: "testsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Produces test-pattern buffers of a fixed size",
    doc: "Produces `num-buffers` buffers of `blocksize` bytes with a known pattern: counter \
          (byte i of the stream is i mod 256, so any slice can be checked), zero, ones, or \
          random from `seed` (the same seed gives the same bytes).",
    pads: Pads::SOURCE,
    props: basesrc_props![
        PropSpec::uint("blocksize", 4096, 1, u32::MAX as u64, "Bytes per buffer"),
        PropSpec::enumeration("pattern", "counter", TEST_PATTERNS, "What the bytes are"),
        PropSpec::uint("seed", 1, 0, u64::MAX, "Seed of the random pattern"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Source(Box::new(TestSrc {
            num_buffers: u64::try_from(p.int("num-buffers")?).ok(),
            blocksize: p.uint("blocksize")? as usize,
            pattern: p.nick("pattern")?,
            rng: Rng::new(p.uint("seed")?),
            sequence: 0,
            offset: 0,
        })))
    },
};

/// testsrc's state.
struct TestSrc {
    num_buffers: Option<u64>,
    blocksize: usize,
    pattern: &'static str,
    rng: Rng,
    sequence: u64,
    offset: u64,
}

impl Source for TestSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(PoolRequest {
            slot_size: self.blocksize,
            slots: 0,
        })
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        if self.num_buffers.is_some_and(|n| self.sequence >= n) {
            return Ok(None);
        }
        let mut slot = cx.loan()?;
        let data = &mut slot.as_mut_slice()[..self.blocksize];
        match self.pattern {
            "zero" => data.fill(0),
            "ones" => data.fill(0xff),
            "random" => self.rng.fill(data),
            _ => {
                for (i, b) in data.iter_mut().enumerate() {
                    *b = (self.offset + i as u64) as u8;
                }
            }
        }
        let mut buf = slot.freeze(self.blocksize);
        buf.meta.sequence = self.sequence;
        buf.meta.set_offset(Some(self.offset));
        buf.meta
            .set_offset_end(Some(self.offset + self.blocksize as u64));
        self.sequence += 1;
        self.offset += self.blocksize as u64;
        Ok(Some(buf))
    }
}

// --- fakesink ------------------------------------------------------------------------------

const STATE_ERRORS: &[EnumValue] = &[
    EnumValue {
        nick: "none",
        value: 0,
        doc: "No state change errors",
    },
    EnumValue {
        nick: "null-to-ready",
        value: 1,
        doc: "Fail state change from NULL to READY",
    },
    EnumValue {
        nick: "ready-to-paused",
        value: 2,
        doc: "Fail state change from READY to PAUSED",
    },
    EnumValue {
        nick: "paused-to-playing",
        value: 3,
        doc: "Fail state change from PAUSED to PLAYING",
    },
    EnumValue {
        nick: "playing-to-paused",
        value: 4,
        doc: "Fail state change from PLAYING to PAUSED",
    },
    EnumValue {
        nick: "paused-to-ready",
        value: 5,
        doc: "Fail state change from PAUSED to READY",
    },
    EnumValue {
        nick: "ready-to-null",
        value: 6,
        doc: "Fail state change from READY to NULL",
    },
];

pub(crate) static FAKESINK: Factory = Factory {
    name: "fakesink",
    aliases: &["nullsink"],
    klass: Klass::Sink,
    summary: "Discards buffers (after counting them)",
    doc: "Drops every buffer. With num-buffers=N it ends the stream after N buffers, as gst's \
          fakesink; with dump=true it hex-dumps each buffer to stdout.",
    pads: Pads::SINK,
    props: basesink_props![
        PropSpec::int(
            "num-buffers",
            -1,
            -1,
            i32::MAX as i64,
            "Number of buffers to accept before going EOS (-1 = unlimited)"
        ),
        PropSpec::bool("dump", false, "Dump buffer contents to stdout"),
        PropSpec::bool(
            "sync",
            false,
            "Sync on the clock: render each buffer at its running time (its pts)"
        ),
        PropSpec::enumeration(
            "state-error",
            "none",
            STATE_ERRORS,
            "Generate a state change error"
        )
        .ignored("parallax has no gst state changes to fail"),
        PropSpec::bool(
            "silent",
            true,
            "Don't produce last_message events (false: print gst's last-message line for \
             every buffer on stdout, with all its metadata)"
        ),
        PropSpec::bool(
            "signal-handoffs",
            false,
            "Send a signal before unreffing the buffer"
        )
        .ignored(super::NO_SIGNALS),
        PropSpec::string(
            "last-message",
            None,
            "The message describing current status"
        )
        .read_only(),
        PropSpec::bool("can-activate-pull", false, "Can activate in pull mode")
            .ignored("parallax sinks are pushed to"),
        PropSpec::bool("can-activate-push", true, "Can activate in push mode")
            .ignored("parallax sinks are pushed to"),
        PropSpec::bool(
            "drop-out-of-segment",
            true,
            "Drop and don't render out-of-segment buffers"
        )
        .ignored("parallax has no segments"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Sink(Box::new(
            FakeSink {
                plain: false,
                remaining: u64::try_from(p.int("num-buffers")?).ok(),
                dump: p.bool("dump")?,
                last_message: (!p.bool("silent")?).then(|| p.instance().to_owned()),
                sync: p.bool("sync")?,
                qos: Qos::default(),
            }
            .judged(),
        )))
    },
};

/// fakesink's state.
struct FakeSink {
    /// Neither sync, last-message nor dump: a buffer costs one test (and the count).
    plain: bool,
    remaining: Option<u64>,
    dump: bool,
    /// The instance name, when `silent=false` asks for a last-message line per buffer.
    last_message: Option<String>,
    /// Render at the buffer's running time (`sync=true`).
    sync: bool,
    /// How late buffers came, when synced.
    qos: Qos,
}

/// gst's fakesink `last-message` for `buf`, in `-v`'s path form, followed by what gst has no
/// room for (sequence, stream id) and the user fields as `meta:`:
///
/// ```text
/// /pipeline0/fakesink0: last-message = chain   ******* (fakesink0:sink) (4 bytes, dts: none,
///   pts: none, duration: none, offset: 0, offset_end: 4, flags: 00000000 , sequence: 0,
///   stream: 0, meta: none)
/// ```
fn last_message(name: &str, buf: &Buffer) -> String {
    use std::fmt::Write as _;
    let m = &buf.meta;
    let opt = |v: Option<u64>| v.map_or("none".to_owned(), |v| v.to_string());
    let mut line = format!(
        "/pipeline0/{name}: last-message = chain   ******* ({name}:sink) ({} bytes, dts: {}, \
         pts: {}, duration: {}, offset: {}, offset_end: {}, flags: {:08x} {}, sequence: {}, \
         stream: {}, meta: ",
        buf.len(),
        format_clock(m.dts()),
        format_clock(m.pts()),
        format_clock(m.duration()),
        opt(m.offset()),
        opt(m.offset_end()),
        m.flags.0,
        m.flags.names().join(" "),
        m.sequence,
        m.stream_id,
    );
    if m.has_fields() {
        for (i, (key, value)) in m.fields().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(line, "{sep}{}={value}", key.escape_debug());
        }
    } else {
        line.push_str("none");
    }
    line.push_str(")\n");
    line
}

impl FakeSink {
    fn judged(mut self) -> FakeSink {
        self.plain = !self.sync && self.last_message.is_none() && !self.dump;
        self
    }

    /// Sync, last-message and dump, off the common path.
    #[cold]
    fn render_slow(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self.sync {
            cx.sync_to_pts(buf, &mut self.qos);
        }
        if let Some(name) = &self.last_message {
            use std::io::Write as _;
            std::io::stdout()
                .lock()
                .write_all(last_message(name, buf).as_bytes())
                .map_err(|e| ElementError::io("writing last-message to stdout", e))?;
        }
        if self.dump {
            hex_dump(buf.data())?;
        }
        Ok(())
    }
}

impl Sink for FakeSink {
    fn qos(&self) -> Qos {
        self.qos
    }

    #[inline]
    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        if !self.plain {
            self.render_slow(buf, cx)?;
        }
        match &mut self.remaining {
            None => Ok(SinkFlow::Continue),
            Some(n) => {
                *n = n.saturating_sub(1);
                Ok(if *n == 0 {
                    SinkFlow::Done
                } else {
                    SinkFlow::Continue
                })
            }
        }
    }
}

// --- identity ------------------------------------------------------------------------------

pub(crate) static IDENTITY: Factory = Factory {
    name: "identity",
    aliases: &["passthrough"],
    klass: Klass::Filter,
    summary: "Passes buffers through, optionally dropping, delaying or failing",
    doc: "Passes every buffer unchanged (no copy). drop-probability drops at random, sleep-time \
          sleeps per buffer, error-after=N fails on the Nth buffer, eos-after=N ends the stream there (N-1 \
          pass, as gst; 0 is never for both), dump hex-dumps to stdout, datarate re-timestamps. panic-after is a parallax \
          addition to exercise the fault path: the element panics after N buffers. \
          drop-probability, sleep-time and dump may change while the pipeline runs.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::float(
            "drop-probability",
            0.0,
            0.0,
            1.0,
            "The probability a buffer is dropped",
        )
        .mutable(),
        PropSpec::uint(
            "sleep-time",
            0,
            0,
            u32::MAX as u64,
            "Microseconds to sleep between processing",
        )
        .mutable(),
        PropSpec::int(
            "error-after",
            -1,
            -1,
            i32::MAX as i64,
            "Error after N buffers (-1 = never)",
        ),
        PropSpec::int(
            "eos-after",
            -1,
            -1,
            i32::MAX as i64,
            "EOS after N buffers (-1 = never)",
        ),
        PropSpec::int(
            "panic-after",
            -1,
            -1,
            i32::MAX as i64,
            "Panic after N buffers (-1 = never); for testing fault handling",
        ),
        PropSpec::bool("dump", false, "Dump buffer contents to stdout").mutable(),
        PropSpec::int(
            "datarate",
            0,
            0,
            i32::MAX as i64,
            "(Re)timestamps buffers with number of bytes per second (0 = inactive)",
        ),
        PropSpec::bool("silent", true, "Don't produce last_message events")
            .ignored(super::NO_SIGNALS),
        PropSpec::bool(
            "signal-handoffs",
            true,
            "Send a signal before pushing the buffer",
        )
        .ignored(super::NO_SIGNALS),
        PropSpec::string("last-message", None, "The last status message").read_only(),
        PropSpec::bool(
            "single-segment",
            false,
            "Timestamp buffers and eat segments",
        )
        .ignored("parallax has no segments"),
        PropSpec::bool(
            "sync",
            false,
            "Synchronize to pipeline clock: pass each buffer on at its running time (its pts)",
        ),
        PropSpec::time(
            "ts-offset",
            0,
            i64::MIN,
            i64::MAX,
            "Timestamp offset for synchronisation",
        ),
        PropSpec::bool("qos", false, "Handle Quality-of-Service events").ignored(super::NO_CLOCK),
        PropSpec::bool("drop-allocation", false, "Don't forward allocation queries")
            .ignored("parallax has no allocation queries"),
        PropSpec::string(
            "drop-buffer-flags",
            None,
            "Drop buffers with the given flags",
        )
        .ignored("gst buffer flags do not exist here"),
        PropSpec::string("stats", None, "Statistics (see --stats)").read_only(),
        PropSpec::bool(
            "check-imperfect-offset",
            false,
            "Send element messages if offset and offset_end do not match up",
        )
        .ignored("parallax posts no element messages; --tap shows every buffer's offset"),
        PropSpec::bool(
            "check-imperfect-timestamp",
            false,
            "Send element messages if timestamps and durations do not match up",
        )
        .ignored("parallax posts no element messages; --tap shows every buffer's timestamps"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let after = |name: &str| -> Result<Option<u64>, ElementError> {
            Ok(u64::try_from(p.int(name)?).ok())
        };
        let mut identity = Identity {
            drop_probability: p.live_float("drop-probability")?,
            sleep: p.live_uint("sleep-time")?,
            error_after: after("error-after")?,
            eos_after: after("eos-after")?,
            panic_after: after("panic-after")?,
            dump: p.live_bool("dump")?,
            datarate: p.int("datarate")? as u64,
            sync: p
                .bool("sync")?
                .then_some(ClockSync::new(p.time("ts-offset")?)),
            seen: 0,
            bytes: 0,
            rng: Rng::from_time(),
            plain: false,
        };
        identity.plain = identity.is_plain();
        Ok(ElementImpl::Transform(Box::new(identity)))
    },
};

/// identity's state. drop-probability, sleep-time and dump may change while it runs: they are
/// read per buffer (three loads of shared words).
struct Identity {
    drop_probability: LiveFloat,
    /// sleep-time, in microseconds.
    sleep: LiveUInt,
    error_after: Option<u64>,
    eos_after: Option<u64>,
    panic_after: Option<u64>,
    dump: LiveBool,
    datarate: u64,
    /// `sync=true`: passes each buffer on at its running time.
    sync: Option<ClockSync>,
    seen: u64,
    bytes: u64,
    rng: Rng,
    /// None of the fixed options is set: unless a live one is, every buffer passes as it is.
    plain: bool,
}

impl Identity {
    fn is_plain(&self) -> bool {
        let never = |after: Option<u64>| after.is_none_or(|n| n == 0);
        never(self.eos_after)
            && never(self.error_after)
            && self.panic_after.is_none()
            && self.datarate == 0
            && self.sync.is_none()
    }

    /// Whether the options that may change while running are all off now.
    #[inline]
    fn live_off(&self) -> bool {
        self.sleep.get() == 0 && self.drop_probability.get() <= 0.0 && !self.dump.get()
    }
}

impl Transform for Identity {
    fn qos(&self) -> Qos {
        self.sync.map(|s| s.qos).unwrap_or_default()
    }

    fn process(&mut self, mut buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.plain && self.live_off() {
            return Ok(Flow::Push(buf));
        }
        // As gst: eos-after=N ends the stream on the Nth buffer (N-1 pass), error-after=N fails
        // on it, and 0 means never for both (issue 20).
        let nth = |after: Option<u64>| after.is_some_and(|n| n > 0 && self.seen + 1 >= n);
        if nth(self.eos_after) {
            return Ok(Flow::Eos);
        }
        if nth(self.error_after) {
            return Err(ElementError::Failed(format!(
                "error-after={} reached",
                self.seen + 1
            )));
        }
        if self.panic_after.is_some_and(|n| self.seen >= n) {
            panic!("panic-after={} reached", self.seen);
        }
        self.seen += 1;
        let sleep = self.sleep.get();
        if sleep > 0 {
            std::thread::sleep(Duration::from_micros(sleep));
        }
        let drop_probability = self.drop_probability.get();
        if drop_probability > 0.0 && self.rng.unit() < drop_probability {
            return Ok(Flow::Drop);
        }
        if let Some(pts) = ns_at_rate(self.bytes, self.datarate) {
            buf.meta.set_pts(Some(pts));
            buf.meta
                .set_duration(ns_at_rate(buf.len() as u64, self.datarate));
        }
        self.bytes += buf.len() as u64;
        if let Some(sync) = &mut self.sync {
            sync.wait(&buf, cx);
        }
        if self.dump.get() {
            hex_dump(buf.data())?;
        }
        Ok(Flow::Push(buf))
    }
}

/// gst's `sync=true` with a `ts-offset` on a transform: waits until the running time reaches
/// the buffer's pts plus the offset, and counts how late buffers came.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClockSync {
    ts_offset: i64,
    qos: Qos,
}

impl ClockSync {
    pub(crate) fn new(ts_offset: i64) -> ClockSync {
        ClockSync {
            ts_offset,
            qos: Qos::default(),
        }
    }

    /// Waits for `buf`'s running time (a buffer without a pts passes at once).
    pub(crate) fn wait(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) {
        if let Some(pts) = buf.meta.pts() {
            let at = (i128::from(pts) + i128::from(self.ts_offset)).max(0);
            let at = u64::try_from(at).unwrap_or(u64::MAX);
            if self.qos.observe(cx.wait_until_running_time(at)) {
                cx.post_qos(self.qos.late, 0);
            }
        }
    }
}

// --- clocksync -----------------------------------------------------------------------------

pub(crate) static CLOCKSYNC: Factory = Factory {
    name: "clocksync",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Synchronise buffers to the clock",
    doc: "Passes every buffer unchanged (no copy) at its running time: the buffer waits until           the pipeline clock reaches its pts plus ts-offset (a buffer without a pts passes at           once). The clock stands still while the pipeline is paused. Buffers that come more           than 20 ms after their time are counted late in --stats. sync=false passes           everything at once.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::bool("sync", true, "Synchronize to pipeline clock"),
        PropSpec::time(
            "ts-offset",
            0,
            i64::MIN,
            i64::MAX,
            "Timestamp offset for synchronisation",
        ),
        PropSpec::bool(
            "sync-to-first",
            false,
            "Automatically set ts-offset based on running time of the first buffer and pipeline's base time",
        ),
        PropSpec::bool("qos", false, "Generate Quality-of-Service events upstream")
            .ignored("lateness is counted in --stats; no QoS events travel upstream"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(ClockSyncElement {
            sync: p.bool("sync")?.then_some(ClockSync::new(p.time("ts-offset")?)),
            to_first: p.bool("sync-to-first")?,
        })))
    },
};

/// clocksync's state.
struct ClockSyncElement {
    sync: Option<ClockSync>,
    /// `sync-to-first=true`: the first buffer sets ts-offset so that it passes at once.
    to_first: bool,
}

impl Transform for ClockSyncElement {
    fn qos(&self) -> Qos {
        self.sync.map(|s| s.qos).unwrap_or_default()
    }

    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if let Some(sync) = &mut self.sync {
            if self.to_first {
                self.to_first = false;
                if let Some(pts) = buf.meta.pts() {
                    let now = i128::from(cx.running_time_ns());
                    sync.ts_offset = i64::try_from(now - i128::from(pts)).unwrap_or(0);
                }
            }
            sync.wait(&buf, cx);
        }
        Ok(Flow::Push(buf))
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&FAKESRC, &TESTSRC, &FAKESINK, &IDENTITY, &CLOCKSYNC];
