//! Video timing: `videorate` (frames dropped or repeated to a framerate) and `rawvideoparse`
//! (a byte stream cut into stamped frames).

use super::{PixelFormat, VideoInfo, VIDEO_CAPS};
use crate::element::prelude::*;

/// Nanoseconds of frame `n` at `fps` (gst's `gst_util_uint64_scale`, rounding down).
fn frame_time(n: u64, fps: Fraction) -> u64 {
    (n as u128 * fps.den as u128 * 1_000_000_000 / fps.num as u128) as u64
}

// --- videorate -----------------------------------------------------------------------------

const RATE_CAPS: &str = "video/x-raw; image/jpeg; image/png";

/// The framerate is free both ways (capped by max-rate); forward, the input's comes first.
static VIDEORATE_CAPS: CapsFns = CapsFns {
    forward: |input, p| free_rate(input, p, true),
    backward: |down, p| free_rate(down, p, false),
    // A range left over (the input's rate was above max-rate) fixes to its top; a list
    // (the input's rate first) to the input's rate.
    fixate: |caps, p| {
        let Some(mut s) = caps.first().cloned() else {
            return caps;
        };
        if matches!(s.get("framerate"), Some(CapsValue::FractionRange(..))) {
            let max = p.int("max-rate").unwrap_or(i32::MAX as i64) as i32;
            s.fixate_nearest_fraction("framerate", Fraction { num: max, den: 1 });
        }
        s.fixate();
        Caps::one(s)
    },
};

fn free_rate(caps: &Caps, p: &Props, prefer_fixed: bool) -> Caps {
    let template = Caps::parse(RATE_CAPS).expect("the template parses");
    if caps.is_any() {
        return template;
    }
    // max-rate caps what comes out; what goes in may be any rate.
    let max = if prefer_fixed {
        p.int("max-rate").unwrap_or(i32::MAX as i64) as i32
    } else {
        i32::MAX
    };
    let mut top = Fraction { num: max, den: 1 };
    // drop-only never makes more frames than come in: at most the input's rate (as gst).
    if prefer_fixed && p.bool("drop-only").unwrap_or(false) {
        if let Some(f) = caps.first().and_then(|s| s.fraction("framerate")) {
            if f.as_f64() < top.as_f64() {
                top = f;
            }
        }
    }
    let mut out = caps.clone();
    for s in out.structures_mut() {
        let any =
            CapsValue::fraction_range(Fraction { num: 0, den: 1 }, top).expect("a fraction range");
        let fixed = s
            .get("framerate")
            .cloned()
            .filter(|_| prefer_fixed)
            .filter(|v| v.intersect(&any).is_some());
        s.set("framerate", super::prefer(fixed, any));
    }
    out.intersect(&template)
}

pub(crate) static VIDEORATE: Factory = Factory {
    name: "videorate",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Drops/duplicates/adjusts timestamps on video frames to make a perfect stream",
    doc: "Makes a stream of the framerate caps downstream ask for (the input's when they leave \
          it free; at most max-rate). Output frame k is stamped k / framerate and carries the \
          input frame whose pts is nearest to that time: frames between two output times are \
          dropped, and a frame is repeated (the same memory, not a copy) until the next one \
          is nearer. drop-only=true never repeats a frame (and refuses a rate above the \
          input's, as gst). At end of stream the last frame goes out once, at the next slot, \
          so the counts are gst's: 30 frames at 30/1 give 11 at 10/1, 10 at 10/1 give 27 at \
          30/1. Frames in and out show in --stats; each dropped frame posts a QoS message, \
          and the counts of frames in, out, duplicated and dropped (gst's read-only \
          properties) are a message at end of stream (-m).",
    pads: Pads::ONE_TO_ONE
        .with_caps(RATE_CAPS, RATE_CAPS)
        .with_rule(CapsRule::Derived(&VIDEORATE_CAPS)),
    props: &[
        PropSpec::bool(
            "drop-only",
            false,
            "Only drop frames, no duplicates are produced",
        ),
        PropSpec::int(
            "max-rate",
            i32::MAX as i64,
            1,
            i32::MAX as i64,
            "Maximum framerate allowed to pass through (in frames per second, implies drop-only)",
        ),
        PropSpec::uint("in", 0, 0, u64::MAX, "Number of input frames").read_only(),
        PropSpec::uint("out", 0, 0, u64::MAX, "Number of output frames").read_only(),
        PropSpec::uint("duplicate", 0, 0, u64::MAX, "Number of duplicated frames").read_only(),
        PropSpec::uint("drop", 0, 0, u64::MAX, "Number of dropped frames").read_only(),
        PropSpec::bool(
            "silent",
            true,
            "Don't emit notify for dropped and duplicated frames",
        )
        .ignored("parallax emits no notify signals"),
        PropSpec::bool(
            "skip-to-first",
            false,
            "Don't produce buffers before the first one we receive",
        )
        .ignored("output always starts at the first frame received"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let fps = |c: &Caps| {
            c.first()
                .and_then(|s| s.fraction("framerate"))
                .unwrap_or(Fraction { num: 0, den: 1 })
        };
        let (fps_in, fps_out) = (fps(p.sink_caps()), fps(p.src_caps()));
        Ok(ElementImpl::Transform(Box::new(VideoRate {
            fps_in,
            fps_out,
            drop_only: p.bool("drop-only")? || p.is_set("max-rate"),
            prev: None,
            prev_sent: false,
            next: 0,
            base: None,
            stats: RateStats::default(),
        })))
    },
};

/// gst videorate's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RateStats {
    input: u64,
    output: u64,
    duplicated: u64,
    dropped: u64,
}

/// videorate's state: the last frame seen and the next output slot.
struct VideoRate {
    fps_in: Fraction,
    fps_out: Fraction,
    drop_only: bool,
    prev: Option<Buffer>,
    /// Whether `prev` went out at least once.
    prev_sent: bool,
    /// The next output frame's number.
    next: u64,
    /// The first frame's pts: output times count from it.
    base: Option<u64>,
    stats: RateStats,
}

impl VideoRate {
    fn slot_time(&self, k: u64) -> u64 {
        self.base.unwrap_or(0) + frame_time(k, self.fps_out)
    }

    /// Sends `prev` for output slot `self.next`, or skips the slot under drop-only.
    fn emit_prev(&mut self, cx: &mut Ctx<'_>) {
        let Some(prev) = &self.prev else { return };
        if self.prev_sent && self.drop_only {
            self.next += 1;
            return;
        }
        let mut out = prev.clone();
        let t = self.slot_time(self.next);
        out.meta.set_pts(Some(t));
        out.meta
            .set_duration(Some(self.slot_time(self.next + 1) - t));
        out.meta.set_offset(Some(self.next));
        out.meta.set_offset_end(Some(self.next + 1));
        if self.prev_sent {
            self.stats.duplicated += 1;
        }
        self.prev_sent = true;
        self.stats.output += 1;
        self.next += 1;
        cx.push(out);
    }

    /// `prev` is replaced: count it dropped if it never went out (a QoS message says so).
    fn retire_prev(&mut self, cx: &Ctx<'_>) {
        if self.prev.is_some() && !self.prev_sent {
            self.stats.dropped += 1;
            cx.post_qos(0, self.stats.dropped);
        }
    }
}

impl Transform for VideoRate {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        self.stats.input += 1;
        if self.fps_out.num <= 0 || (self.fps_in == self.fps_out && !self.drop_only) {
            self.stats.output += 1;
            return Ok(Flow::Push(buf));
        }
        let Some(pts) = buf.meta.pts() else {
            // No time to place it by: it goes out as it is.
            self.stats.output += 1;
            return Ok(Flow::Push(buf));
        };
        if self.base.is_none() {
            self.base = Some(pts);
        }
        if let Some(p0) = self.prev.as_ref().and_then(|b| b.meta.pts()) {
            // Slots nearer to the previous frame than to this one show the previous frame.
            let mid = p0 + pts.saturating_sub(p0) / 2;
            while self.slot_time(self.next) < mid {
                self.emit_prev(cx);
            }
        }
        self.retire_prev(cx);
        self.prev = Some(buf);
        self.prev_sent = false;
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        // The last frame goes out once, at the next slot (gst's videorate at EOS).
        if self.prev.is_some() && !self.prev_sent {
            self.prev_sent = false;
            let drop_only = std::mem::replace(&mut self.drop_only, false);
            self.emit_prev(cx);
            self.drop_only = drop_only;
        }
        self.retire_prev(cx);
        self.prev = None;
        let s = self.stats;
        tracing::debug!(
            input = s.input,
            output = s.output,
            duplicated = s.duplicated,
            dropped = s.dropped,
            "Videorate finished"
        );
        cx.message(format_args!(
            "{} frames in, {} out, {} duplicated, {} dropped",
            s.input, s.output, s.duplicated, s.dropped
        ));
        Ok(())
    }
}

// --- rawvideoparse -------------------------------------------------------------------------

/// gst's GstVideoFormat nicks and values, for the formats parallax lays out.
const RAW_FORMATS: &[EnumValue] = &[
    EnumValue {
        nick: "i420",
        value: 2,
        doc: "GST_VIDEO_FORMAT_I420",
    },
    EnumValue {
        nick: "yv12",
        value: 3,
        doc: "GST_VIDEO_FORMAT_YV12",
    },
    EnumValue {
        nick: "yuy2",
        value: 4,
        doc: "GST_VIDEO_FORMAT_YUY2",
    },
    EnumValue {
        nick: "uyvy",
        value: 5,
        doc: "GST_VIDEO_FORMAT_UYVY",
    },
    EnumValue {
        nick: "rgbx",
        value: 7,
        doc: "GST_VIDEO_FORMAT_RGBx",
    },
    EnumValue {
        nick: "bgrx",
        value: 8,
        doc: "GST_VIDEO_FORMAT_BGRx",
    },
    EnumValue {
        nick: "xrgb",
        value: 9,
        doc: "GST_VIDEO_FORMAT_xRGB",
    },
    EnumValue {
        nick: "xbgr",
        value: 10,
        doc: "GST_VIDEO_FORMAT_xBGR",
    },
    EnumValue {
        nick: "rgba",
        value: 11,
        doc: "GST_VIDEO_FORMAT_RGBA",
    },
    EnumValue {
        nick: "bgra",
        value: 12,
        doc: "GST_VIDEO_FORMAT_BGRA",
    },
    EnumValue {
        nick: "argb",
        value: 13,
        doc: "GST_VIDEO_FORMAT_ARGB",
    },
    EnumValue {
        nick: "abgr",
        value: 14,
        doc: "GST_VIDEO_FORMAT_ABGR",
    },
    EnumValue {
        nick: "rgb",
        value: 15,
        doc: "GST_VIDEO_FORMAT_RGB",
    },
    EnumValue {
        nick: "bgr",
        value: 16,
        doc: "GST_VIDEO_FORMAT_BGR",
    },
    EnumValue {
        nick: "nv12",
        value: 23,
        doc: "GST_VIDEO_FORMAT_NV12",
    },
    EnumValue {
        nick: "gray8",
        value: 25,
        doc: "GST_VIDEO_FORMAT_GRAY8",
    },
    EnumValue {
        nick: "gray16-le",
        value: 27,
        doc: "GST_VIDEO_FORMAT_GRAY16_LE",
    },
];

/// The caps name of a format nick.
fn caps_name(nick: &str) -> &'static str {
    match nick {
        "yv12" => "YV12",
        "yuy2" => "YUY2",
        "uyvy" => "UYVY",
        "rgbx" => "RGBx",
        "bgrx" => "BGRx",
        "xrgb" => "xRGB",
        "xbgr" => "xBGR",
        "rgba" => "RGBA",
        "bgra" => "BGRA",
        "argb" => "ARGB",
        "abgr" => "ABGR",
        "rgb" => "RGB",
        "bgr" => "BGR",
        "nv12" => "NV12",
        "gray8" => "GRAY8",
        "gray16-le" => "GRAY16_LE",
        _ => "I420",
    }
}

/// `num/den` as a framerate; an error names the text.
fn parse_fps(text: &str) -> Result<Fraction, String> {
    let (n, d) = text.split_once('/').unwrap_or((text, "1"));
    let (n, d) = (n.trim().parse::<i32>(), d.trim().parse::<i32>());
    match (n, d) {
        (Ok(n), Ok(d)) if n >= 0 && d > 0 => Ok(Fraction { num: n, den: d }),
        _ => Err(format!("`{text}` is not a framerate like 25/1")),
    }
}

/// The caps the properties describe.
fn raw_caps(p: &Props) -> Result<Caps, ElementError> {
    let fps = parse_fps(p.string("framerate")?.unwrap_or("25/1")).map_err(|e| {
        ElementError::Config(format!("{}: property `framerate`: {e}", p.instance()))
    })?;
    let (w, h) = (p.int("width")?, p.int("height")?);
    if w <= 0 || h <= 0 {
        return Err(ElementError::Config(format!(
            "{}: a {w}x{h} frame has no pixels: set width and height",
            p.instance()
        )));
    }
    Ok(Caps::one(
        Structure::new("video/x-raw")
            .with(
                "format",
                CapsValue::Str(caps_name(p.nick("format")?).into()),
            )
            .with("width", CapsValue::Int(w))
            .with("height", CapsValue::Int(h))
            .with("framerate", CapsValue::Fraction(fps)),
    ))
}

static RAWVIDEOPARSE_CAPS: CapsFns = CapsFns {
    forward: |input, p| {
        if p.bool("use-sink-caps").unwrap_or(false) {
            return input.clone();
        }
        raw_caps(p).unwrap_or_else(|_| Caps::parse(VIDEO_CAPS).expect("the template parses"))
    },
    backward: |_, _| Caps::Any,
    fixate: CapsFns::default_fixate,
};

pub(crate) static RAWVIDEOPARSE: Factory = Factory {
    name: "rawvideoparse",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Converts unformatted data streams into timestamped raw video frames",
    doc: "Cuts a byte stream (a file of raw frames, a pipe) into frames of the format, width, \
          height and framerate the properties give (or, with use-sink-caps=true, the caps \
          before it), laid out as gst lays them out: each frame is the size gst's caps give, \
          or frame-size bytes when that is larger (the rest of each frame is skipped). Frames \
          are stamped with pts n / framerate, duration and offset n. Frames that arrive whole \
          in one input buffer pass as slices of it, without a copy. A partial frame at the \
          end of the stream is dropped with a warning, as gst does.",
    pads: Pads::ONE_TO_ONE
        .with_caps("ANY", VIDEO_CAPS)
        .with_rule(CapsRule::Derived(&RAWVIDEOPARSE_CAPS)),
    props: &[
        PropSpec::enumeration(
            "format",
            "i420",
            RAW_FORMATS,
            "Format of frames in raw stream",
        ),
        PropSpec::int(
            "width",
            320,
            0,
            i32::MAX as i64,
            "Width of frames in raw stream",
        ),
        PropSpec::int(
            "height",
            240,
            0,
            i32::MAX as i64,
            "Height of frames in raw stream",
        ),
        PropSpec::string("framerate", Some("25/1"), "Rate of frames in raw stream"),
        PropSpec::uint(
            "frame-size",
            0,
            0,
            u32::MAX as u64,
            "Size of a frame (0 = frames are tightly packed together)",
        ),
        PropSpec::bool(
            "use-sink-caps",
            false,
            "Use the sink caps for defining the output format",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let caps = if p.bool("use-sink-caps")? {
            p.sink_caps().clone()
        } else if p.src_caps().is_fixed() && !p.src_caps().is_any() {
            p.src_caps().clone()
        } else {
            raw_caps(p)?
        };
        let info = VideoInfo::from_caps(&caps, p.instance())?;
        let frame_size = (p.uint("frame-size")? as usize).max(info.size);
        Ok(ElementImpl::Transform(Box::new(RawVideoParse {
            info,
            frame_size,
            pending: Vec::new(),
            frames: 0,
        })))
    },
};

/// rawvideoparse's state: bytes of a frame not yet whole, and frames made so far.
struct RawVideoParse {
    info: VideoInfo,
    frame_size: usize,
    pending: Vec<u8>,
    frames: u64,
}

impl RawVideoParse {
    fn stamp(&mut self, mut buf: Buffer) -> Buffer {
        let n = self.frames;
        self.frames += 1;
        let fps = self.info.fps;
        buf.meta.set_pts(None);
        buf.meta.set_duration(None);
        if fps.num > 0 {
            let t = frame_time(n, fps);
            buf.meta.set_pts(Some(t));
            buf.meta.set_duration(Some(frame_time(n + 1, fps) - t));
        }
        buf.meta.set_offset(Some(n));
        buf.meta.set_offset_end(Some(n + 1));
        buf
    }
}

impl Transform for RawVideoParse {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let (fs, size) = (self.frame_size, self.info.size);
        let mut at = 0;
        let data = buf.data();
        if !self.pending.is_empty() {
            let take = (fs - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            at = take;
            if self.pending.len() == fs {
                let mut frame = std::mem::take(&mut self.pending);
                frame.truncate(size);
                let out = self.stamp(Buffer::from_vec(frame));
                cx.push(out);
            }
        }
        while data.len() - at >= fs {
            let frame = buf
                .slice(at..at + size)
                .expect("the range lies inside the buffer");
            let out = self.stamp(frame);
            cx.push(out);
            at += fs;
        }
        if at < data.len() {
            self.pending.extend_from_slice(&data[at..]);
        }
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if !self.pending.is_empty() {
            cx.warn(format_args!(
                "a partial frame of {} bytes (frames are {}) dropped at end of stream",
                self.pending.len(),
                self.frame_size
            ));
            self.pending.clear();
        }
        Ok(())
    }
}

// PixelFormat is named so that a new format added there is remembered here too.
const _: fn(&str) -> Option<PixelFormat> = PixelFormat::parse;

pub(crate) const FACTORIES: &[&Factory] = &[&VIDEORATE, &RAWVIDEOPARSE];

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(fps_in: i32, fps_out: i32, drop_only: bool, frames: u64) -> (Vec<Buffer>, RateStats) {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let fin = Fraction {
            num: fps_in,
            den: 1,
        };
        let mut r = VideoRate {
            fps_in: fin,
            fps_out: Fraction {
                num: fps_out,
                den: 1,
            },
            drop_only,
            prev: None,
            prev_sent: false,
            next: 0,
            base: None,
            stats: RateStats::default(),
        };
        let mut out = Vec::new();
        for n in 0..frames {
            let mut b = Buffer::from_vec(vec![n as u8]);
            b.meta.set_pts(Some(frame_time(n, fin)));
            b.meta
                .set_duration(Some(frame_time(n + 1, fin) - frame_time(n, fin)));
            match r.process(b, &mut cx).unwrap() {
                Flow::Held => {}
                other => panic!("{other:?}"),
            }
            out.extend(cx.take_pushed());
        }
        r.flush(&mut cx).unwrap();
        out.extend(cx.take_pushed());
        (out, r.stats)
    }

    #[test]
    fn thirty_to_ten_drops_two_of_three() {
        let (out, s) = rate(30, 10, false, 30);
        // gst's count: ten slots by nearest frame, and the last frame at EOS.
        assert_eq!(out.len(), 11);
        let firsts: Vec<u8> = out.iter().map(|b| b.data()[0]).collect();
        assert_eq!(firsts, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 29]);
        assert_eq!(out[1].meta.pts(), Some(100_000_000));
        assert_eq!(
            s,
            RateStats {
                input: 30,
                output: 11,
                duplicated: 0,
                dropped: 19
            }
        );
    }

    #[test]
    fn ten_to_thirty_repeats_frames_until_the_next_is_nearer() {
        let (out, s) = rate(10, 30, false, 10);
        assert_eq!(out.len(), 27);
        assert_eq!(s.duplicated, 17);
        assert_eq!(s.dropped, 0);
        let firsts: Vec<u8> = out.iter().map(|b| b.data()[0]).collect();
        assert_eq!(firsts[..7], [0, 0, 1, 1, 1, 2, 2]);
        // Repeats share memory with the frame they repeat.
        assert_eq!(out[2].data().as_ptr(), out[3].data().as_ptr());
    }

    #[test]
    fn drop_only_never_repeats() {
        let (out, s) = rate(10, 30, true, 10);
        assert_eq!(out.len(), 10);
        assert_eq!(s.duplicated, 0);
    }

    #[test]
    fn framerates_parse_or_say_why() {
        assert_eq!(
            parse_fps("30000/1001"),
            Ok(Fraction {
                num: 30000,
                den: 1001
            })
        );
        assert_eq!(parse_fps("25"), Ok(Fraction { num: 25, den: 1 }));
        assert!(parse_fps("fast").unwrap_err().contains("`fast`"));
    }
}
