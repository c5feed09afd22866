//! Raw audio: `audiotestsrc`, `volume`, `audioconvert`, `rawaudioparse` and `audiorate`.

use super::{frames_to_ns, negotiated_or, AudioInfo, SampleFormat, AUDIO_FORMATS};
use crate::element::prelude::*;

/// The template of every raw audio pad here.
pub(crate) const AUDIO_CAPS: &str = concat!(
    "audio/x-raw, format=(string){ S16LE, S32LE, F32LE, F64LE, S24LE, U8 }, ",
    "layout=(string)interleaved, rate=(int)[ 1, 2147483647 ], channels=(int)[ 1, 2147483647 ]"
);

// --- audiotestsrc --------------------------------------------------------------------------

const WAVES: &[EnumValue] = &[
    EnumValue {
        nick: "sine",
        value: 0,
        doc: "Sine",
    },
    EnumValue {
        nick: "square",
        value: 1,
        doc: "Square",
    },
    EnumValue {
        nick: "saw",
        value: 2,
        doc: "Saw",
    },
    EnumValue {
        nick: "triangle",
        value: 3,
        doc: "Triangle",
    },
    EnumValue {
        nick: "silence",
        value: 4,
        doc: "Silence",
    },
    EnumValue {
        nick: "white-noise",
        value: 5,
        doc: "White uniform noise",
    },
    EnumValue {
        nick: "ticks",
        value: 8,
        doc: "Periodic Ticks",
    },
];

/// Picks gst's defaults (44100 Hz, mono, the first format) from what downstream allows.
static AUDIOTESTSRC_CAPS: CapsFns = CapsFns {
    forward: |_, _| Caps::parse(AUDIO_CAPS).expect("the template parses"),
    backward: CapsFns::identity,
    fixate: |caps, _| {
        let Some(mut s) = caps.first().cloned() else {
            return caps;
        };
        s.fixate_nearest_int("rate", 44100);
        s.fixate_nearest_int("channels", 1);
        s.fixate();
        Caps::one(s)
    },
};

pub(crate) static AUDIOTESTSRC: Factory = Factory {
    name: "audiotestsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Creates audio test signals of given frequency and volume",
    doc: "Interleaved raw audio in the format negotiated downstream (S16LE at 44100 Hz, mono, \
          unless caps after it say otherwise): a sine, square, saw or triangle wave at `freq`, \
          silence, white noise or ticks, `samplesperbuffer` frames a buffer, each stamped with \
          its pts and duration. With is-live=true it produces each buffer when the pipeline \
          clock reaches its end, as a capture device would.",
    pads: Pads::SOURCE
        .with_caps("ANY", AUDIO_CAPS)
        .with_rule(CapsRule::Derived(&AUDIOTESTSRC_CAPS)),
    props: super::super::basesrc_props![
        PropSpec::int(
            "samplesperbuffer",
            1024,
            1,
            i32::MAX as i64,
            "Number of samples in each outgoing buffer"
        ),
        PropSpec::enumeration("wave", "sine", WAVES, "Oscillator waveform"),
        PropSpec::float(
            "freq",
            440.0,
            0.0,
            20000.0,
            "Frequency of test signal. The sample rate needs to be at least 2 times higher"
        )
        .mutable(),
        PropSpec::float("volume", 0.8, 0.0, 1.0, "Volume of test signal").mutable(),
        PropSpec::bool("is-live", false, "Whether to act as a live source"),
        PropSpec::uint(
            "seed",
            0,
            0,
            u32::MAX as u64,
            "Seed of the white noise (parallax: gst's is random)"
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let info = AudioInfo::from_caps(p.src_caps(), p.instance()).or_else(|_| {
            AudioInfo::from_caps(
                &(AUDIOTESTSRC_CAPS.fixate)(Caps::parse(AUDIO_CAPS).expect("parses"), p),
                p.instance(),
            )
        })?;
        Ok(ElementImpl::Source(Box::new(AudioTestSrc {
            info,
            frames_per_buffer: p.int("samplesperbuffer")? as usize,
            wave: p.nick("wave")?,
            freq: p.float("freq")?,
            volume: p.float("volume")?,
            set: (p.live_float("freq")?, p.live_float("volume")?),
            live: p.bool("is-live")?,
            remaining: u64::try_from(p.int("num-buffers")?).ok(),
            accumulator: 0.0,
            frames: 0,
            noise: u64::from(p.uint("seed")? as u32) | 1,
            scratch: Vec::new(),
        })))
    },
};

/// audiotestsrc's state: the oscillator's phase and the frames produced so far.
struct AudioTestSrc {
    info: AudioInfo,
    frames_per_buffer: usize,
    wave: &'static str,
    freq: f64,
    volume: f64,
    /// freq and volume as set now: read once per buffer, so they may change while it runs.
    set: (LiveFloat, LiveFloat),
    live: bool,
    remaining: Option<u64>,
    /// Phase in radians, in [0, 2π), advanced before each frame as gst does.
    accumulator: f64,
    frames: u64,
    noise: u64,
    scratch: Vec<f64>,
}

impl AudioTestSrc {
    /// One frame's value of the wave, in [-volume, volume].
    fn next_value(&mut self) -> f64 {
        let two_pi = std::f64::consts::TAU;
        let step = two_pi * self.freq / self.info.rate as f64;
        self.accumulator += step;
        if self.accumulator >= two_pi {
            self.accumulator -= two_pi;
        }
        let a = self.accumulator;
        let v = match self.wave {
            "square" => {
                if a < std::f64::consts::PI {
                    1.0
                } else {
                    -1.0
                }
            }
            "saw" => a / std::f64::consts::PI - 1.0,
            "triangle" => {
                let x = a / std::f64::consts::PI;
                if x < 0.5 {
                    2.0 * x
                } else if x < 1.5 {
                    2.0 - 2.0 * x
                } else {
                    2.0 * x - 4.0
                }
            }
            "silence" => 0.0,
            "white-noise" => {
                // xorshift64*: deterministic for a seed, unlike gst's g_random.
                self.noise ^= self.noise >> 12;
                self.noise ^= self.noise << 25;
                self.noise ^= self.noise >> 27;
                let r = self.noise.wrapping_mul(0x2545_f491_4f6c_dd1d);
                (r >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            }
            "ticks" => {
                // A sine burst of one period at the start of every second.
                let in_second = self.frames % self.info.rate as u64;
                let period = (self.info.rate as f64 / self.freq.max(1.0)) as u64;
                if in_second < period {
                    a.sin()
                } else {
                    0.0
                }
            }
            _ => a.sin(),
        };
        v * self.volume
    }
}

impl Source for AudioTestSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(PoolRequest {
            slot_size: self.frames_per_buffer * self.info.bpf(),
            slots: 0,
        })
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        if let Some(n) = &mut self.remaining {
            if *n == 0 {
                return Ok(None);
            }
            *n -= 1;
        }
        self.freq = self.set.0.get();
        self.volume = self.set.1.get();
        let frames = self.frames_per_buffer;
        let channels = self.info.channels as usize;
        let size = frames * self.info.bpf();
        let mut values = std::mem::take(&mut self.scratch);
        values.clear();
        for _ in 0..frames {
            let v = self.next_value();
            values.push(v);
            self.frames += 1;
        }
        let mut slot = cx.loan()?;
        let out = &mut slot.as_mut_slice()[..size];
        let format = self.info.format;
        for (f, v) in values.iter().enumerate() {
            for c in 0..channels {
                write_generated(format, out, f * channels + c, *v);
            }
        }
        self.scratch = values;
        let mut buf = slot.freeze(size);
        let start = self.frames - frames as u64;
        let rate = self.info.rate as u64;
        let pts = frames_to_ns(start, rate);
        let end = frames_to_ns(self.frames, rate);
        buf.meta.set_pts(Some(pts));
        buf.meta.set_duration(Some(end - pts));
        buf.meta.set_offset(Some(start));
        buf.meta.set_offset_end(Some(self.frames));
        if self.live {
            cx.wait_until_running_time(end);
        }
        Ok(Some(buf))
    }
}

/// Writes a generated value as gst's audiotestsrc does: integers truncated toward zero from
/// `value * max`, not rounded (so its sine is byte for byte gst's).
fn write_generated(format: SampleFormat, out: &mut [u8], i: usize, v: f64) {
    let at = i * format.width();
    let o = &mut out[at..at + format.width()];
    match format {
        SampleFormat::S16 => o.copy_from_slice(&((v * 32767.0) as i16).to_le_bytes()),
        SampleFormat::S32 => o.copy_from_slice(&((v * 2_147_483_647.0) as i32).to_le_bytes()),
        SampleFormat::S24 => o.copy_from_slice(&((v * 8_388_607.0) as i32).to_le_bytes()[..3]),
        SampleFormat::U8 => o[0] = ((v * 127.0) as i32 + 128) as u8,
        SampleFormat::F32 | SampleFormat::F64 => format.write(out, i, v),
    }
}

// --- volume --------------------------------------------------------------------------------

pub(crate) static VOLUME: Factory = Factory {
    name: "volume",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Set volume on audio/raw streams",
    doc: "Multiplies every sample by `volume` (0 to 10, 1 leaves the stream as it is), clipping \
          integer samples at their range; mute=true makes silence. The format passes through.",
    pads: Pads::ONE_TO_ONE.with_caps(AUDIO_CAPS, AUDIO_CAPS),
    props: &[
        PropSpec::float("volume", 1.0, 0.0, 10.0, "volume factor, 1.0=100%").mutable(),
        PropSpec::bool("mute", false, "mute channel").mutable(),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let info = AudioInfo::from_caps(&negotiated_or(p.sink_caps(), AUDIO_CAPS), p.instance())?;
        Ok(ElementImpl::Transform(Box::new(Volume {
            info,
            volume: p.live_float("volume")?,
            mute: p.live_bool("mute")?,
        })))
    },
};

/// volume's state: the format and the factor's two properties, read live per buffer.
struct Volume {
    info: AudioInfo,
    volume: LiveFloat,
    mute: LiveBool,
}

impl Transform for Volume {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let factor = if self.mute.get() {
            0.0
        } else {
            self.volume.get()
        };
        if factor == 1.0 {
            return Ok(Flow::Push(buf));
        }
        let format = self.info.format;
        let n = buf.len() / format.width();
        let mut out = vec![0u8; buf.len()];
        let data = buf.data();
        for i in 0..n {
            format.write(
                &mut out,
                i,
                (format.read(data, i) * factor).clamp(-1.0, 1.0),
            );
        }
        let mut o = Buffer::from_vec(out);
        o.meta = buf.meta.clone();
        Ok(Flow::Push(o))
    }
}

// --- audioconvert --------------------------------------------------------------------------

/// Any format and channel count in, any out: the format and channels fields are dropped both
/// ways, so what comes out is the input unless downstream asks for other.
static AUDIOCONVERT_CAPS: CapsFns = CapsFns {
    forward: |input, _| keep_first(input, widen(input)),
    backward: |down, _| widen(down),
    fixate: |caps, _| caps.fixate(),
};

/// `caps` with format and channels free (gst's audioconvert transform_caps).
fn widen(caps: &Caps) -> Caps {
    let mut out = caps.clone();
    for s in out.structures_mut() {
        s.set(
            "format",
            Caps::parse(&format!("a/b, f=(string){AUDIO_FORMATS}"))
                .ok()
                .and_then(|c| c.first().and_then(|s| s.get("f").cloned()))
                .expect("the format list parses"),
        );
        s.remove("channels");
        s.remove("channel-mask");
    }
    out.intersect(&Caps::parse(AUDIO_CAPS).expect("the template parses"))
}

/// `wide` with the input's own format and channels first, so that fixation keeps them unless
/// downstream asks for other (gst's audioconvert fixates to the nearest of the input).
fn keep_first(input: &Caps, mut wide: Caps) -> Caps {
    let Some(from) = input.first() else {
        return wide;
    };
    for s in wide.structures_mut() {
        for f in ["format", "channels"] {
            let all = s
                .get(f)
                .cloned()
                .unwrap_or_else(|| CapsValue::int_range(1, 2147483647, 1).expect("a range"));
            s.set(f, super::prefer(from.get(f).cloned(), all));
        }
    }
    wide
}

pub(crate) static AUDIOCONVERT: Factory = Factory {
    name: "audioconvert",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Convert audio to different formats",
    doc: "Converts between sample formats (S16LE, S32LE, F32LE, F64LE, S24LE, U8) and channel \
          counts (mono is copied to every channel; more channels are averaged into fewer), as \
          negotiated with what is downstream. Integers are rounded, not dithered \
          (dithering=none in gst); when nothing changes buffers pass untouched.",
    pads: Pads::ONE_TO_ONE
        .with_caps(AUDIO_CAPS, AUDIO_CAPS)
        .with_rule(CapsRule::Derived(&AUDIOCONVERT_CAPS)),
    props: &[
        PropSpec::enumeration(
            "dithering",
            "none",
            DITHER,
            "Selects between different dithering methods.",
        )
        .ignored("samples are rounded, never dithered, so that output is reproducible"),
        PropSpec::enumeration(
            "noise-shaping",
            "none",
            NOISE_SHAPING,
            "Selects between different noise shaping methods.",
        )
        .ignored("samples are rounded, never noise-shaped"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let from = AudioInfo::from_caps(&negotiated_or(p.sink_caps(), AUDIO_CAPS), p.instance())?;
        let to = AudioInfo::from_caps(&negotiated_or(p.src_caps(), AUDIO_CAPS), p.instance())?;
        if from.rate != to.rate {
            return Err(ElementError::Config(format!(
                "{}: audioconvert keeps the rate ({} Hz), but {} Hz is asked for: put audioresample after it",
                p.instance(),
                from.rate,
                to.rate
            )));
        }
        Ok(ElementImpl::Transform(Box::new(AudioConvert { from, to })))
    },
};

const DITHER: &[EnumValue] = &[
    EnumValue {
        nick: "none",
        value: 0,
        doc: "No dithering",
    },
    EnumValue {
        nick: "rpdf",
        value: 1,
        doc: "Rectangular dithering",
    },
    EnumValue {
        nick: "tpdf",
        value: 2,
        doc: "Triangular dithering (default)",
    },
    EnumValue {
        nick: "tpdf-hf",
        value: 3,
        doc: "High frequency triangular dithering",
    },
];

const NOISE_SHAPING: &[EnumValue] = &[
    EnumValue {
        nick: "none",
        value: 0,
        doc: "No noise shaping (default)",
    },
    EnumValue {
        nick: "error-feedback",
        value: 1,
        doc: "Error feedback",
    },
    EnumValue {
        nick: "simple",
        value: 2,
        doc: "Simple 2-pole noise shaping",
    },
    EnumValue {
        nick: "medium",
        value: 3,
        doc: "Medium 5-pole noise shaping",
    },
    EnumValue {
        nick: "high",
        value: 4,
        doc: "High 8-pole noise shaping",
    },
];

/// audioconvert's state: the formats on both sides.
struct AudioConvert {
    from: AudioInfo,
    to: AudioInfo,
}

impl Transform for AudioConvert {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.from == self.to {
            return Ok(Flow::Push(buf));
        }
        let (fc, tc) = (self.from.channels as usize, self.to.channels as usize);
        let frames = buf.len() / self.from.bpf();
        let size = frames * self.to.bpf();
        let mut out = vec![0u8; size];
        let data = buf.data();
        for f in 0..frames {
            let read = |c: usize| self.from.format.read(data, f * fc + c);
            for c in 0..tc {
                let v = if fc == tc {
                    read(c)
                } else if fc == 1 {
                    read(0)
                } else if tc == 1 {
                    (0..fc).map(read).sum::<f64>() / fc as f64
                } else {
                    read(c % fc)
                };
                self.to.format.write(&mut out, f * tc + c, v);
            }
        }
        let mut o = Buffer::from_vec(out);
        o.meta = buf.meta.clone();
        Ok(Flow::Push(o))
    }
}

// --- rawaudioparse -------------------------------------------------------------------------

/// gst's `GstAudioFormat` nicks and values for the formats rawaudioparse reads.
const PCM_FORMATS: &[EnumValue] = &[
    EnumValue {
        nick: "u8",
        value: 3,
        doc: "GST_AUDIO_FORMAT_U8",
    },
    EnumValue {
        nick: "s16le",
        value: 4,
        doc: "GST_AUDIO_FORMAT_S16LE",
    },
    EnumValue {
        nick: "s32le",
        value: 12,
        doc: "GST_AUDIO_FORMAT_S32LE",
    },
    EnumValue {
        nick: "s24le",
        value: 16,
        doc: "GST_AUDIO_FORMAT_S24LE",
    },
    EnumValue {
        nick: "f32le",
        value: 28,
        doc: "GST_AUDIO_FORMAT_F32LE",
    },
    EnumValue {
        nick: "f64le",
        value: 30,
        doc: "GST_AUDIO_FORMAT_F64LE",
    },
];

const RAW_FORMATS: &[EnumValue] = &[
    EnumValue {
        nick: "pcm",
        value: 0,
        doc: "PCM",
    },
    EnumValue {
        nick: "mulaw",
        value: 1,
        doc: "µ-Law",
    },
    EnumValue {
        nick: "alaw",
        value: 2,
        doc: "A-Law",
    },
];

/// The format rawaudioparse gives: the sink caps' with use-sink-caps=true, else its properties'.
fn rawaudioparse_info(input: &Caps, p: &Props) -> Result<AudioInfo, ElementError> {
    if p.bool("use-sink-caps")? {
        return AudioInfo::from_caps(input, p.instance()).map_err(|_| {
            ElementError::Config(format!(
                "{}: use-sink-caps=true needs fixed audio/x-raw caps before it, not {input}",
                p.instance()
            ))
        });
    }
    if p.nick("format")? != "pcm" {
        return Err(ElementError::Config(format!(
            "{}: format={} is not supported: only pcm",
            p.instance(),
            p.nick("format")?
        )));
    }
    let format = SampleFormat::parse(&p.nick("pcm-format")?.to_uppercase())
        .ok_or_else(|| ElementError::Config(format!("{}: unknown pcm-format", p.instance())))?;
    Ok(AudioInfo {
        format,
        rate: p.int("sample-rate")? as u32,
        channels: p.int("num-channels")? as u32,
    })
}

static RAWAUDIOPARSE_CAPS: CapsFns = CapsFns {
    forward: |input, p| match rawaudioparse_info(input, p) {
        Ok(info) => info.caps(),
        // Refused when the element is built, with the reason.
        Err(_) => Caps::parse(AUDIO_CAPS).expect("the template parses"),
    },
    backward: |_, _| Caps::Any,
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static RAWAUDIOPARSE: Factory = Factory {
    name: "rawaudioparse",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Converts unformatted data streams into timestamped raw audio frames",
    doc: "Cuts a byte stream into whole frames of raw audio in the format its properties say \
          (pcm-format, sample-rate, num-channels; S16LE stereo at 44100 Hz by default) or, with \
          use-sink-caps=true, the raw audio caps in front of it; each buffer is stamped with \
          pts, duration and offsets in frames. A frame cut by a buffer boundary is joined to \
          the next; a last partial frame is dropped. Only format=pcm and interleaved layouts.",
    pads: Pads::ONE_TO_ONE
        .with_caps("ANY", AUDIO_CAPS)
        .with_rule(CapsRule::Derived(&RAWAUDIOPARSE_CAPS)),
    props: &[
        PropSpec::enumeration(
            "format",
            "pcm",
            RAW_FORMATS,
            "Format of the raw audio stream",
        ),
        PropSpec::enumeration(
            "pcm-format",
            "s16le",
            PCM_FORMATS,
            "Format of audio samples in PCM stream (ignored if format property is not set to pcm)",
        ),
        PropSpec::int(
            "sample-rate",
            44100,
            1,
            i32::MAX as i64,
            "Rate of audio samples in raw stream",
        ),
        PropSpec::int(
            "num-channels",
            2,
            1,
            i32::MAX as i64,
            "Number of channels in raw stream",
        ),
        PropSpec::bool("interleaved", true, "True if audio has interleaved layout")
            .ignored("only interleaved layouts"),
        PropSpec::bool(
            "use-sink-caps",
            false,
            "Use the sink caps for defining the output format",
        ),
        PropSpec::bool(
            "disable-passthrough",
            false,
            "Force processing (disables passthrough)",
        )
        .ignored("buffers are always cut into whole frames and stamped"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let info = rawaudioparse_info(p.sink_caps(), p)?;
        Ok(ElementImpl::Transform(Box::new(RawAudioParse {
            info,
            frames: 0,
            partial: Vec::new(),
        })))
    },
};

/// rawaudioparse's state: frames given, and the start of a frame cut by a boundary.
struct RawAudioParse {
    info: AudioInfo,
    frames: u64,
    partial: Vec<u8>,
}

impl Transform for RawAudioParse {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let bpf = self.info.bpf();
        let mut out = if self.partial.is_empty() && buf.len() % bpf == 0 {
            buf
        } else if self.partial.is_empty() {
            let whole = buf.len() / bpf * bpf;
            self.partial.extend_from_slice(&buf.data()[whole..]);
            match buf.slice(0..whole) {
                Some(b) if whole > 0 => b,
                _ => return Ok(Flow::Held),
            }
        } else {
            let mut bytes = std::mem::take(&mut self.partial);
            bytes.extend_from_slice(buf.data());
            let whole = bytes.len() / bpf * bpf;
            self.partial = bytes.split_off(whole);
            if whole == 0 {
                return Ok(Flow::Held);
            }
            Buffer::from_vec(bytes)
        };
        if out.is_empty() {
            return Ok(Flow::Held);
        }
        let n = (out.len() / bpf) as u64;
        let rate = self.info.rate as u64;
        let pts = frames_to_ns(self.frames, rate);
        out.meta.set_pts(Some(pts));
        out.meta
            .set_duration(Some(frames_to_ns(self.frames + n, rate) - pts));
        out.meta.set_offset(Some(self.frames));
        out.meta.set_offset_end(Some(self.frames + n));
        self.frames += n;
        Ok(Flow::Push(out))
    }
}

// --- audiorate -----------------------------------------------------------------------------

pub(crate) static AUDIORATE: Factory = Factory {
    name: "audiorate",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Drops/duplicates/adjusts timestamps on audio samples to make a perfect stream",
    doc: "Makes the stream continuous by its timestamps: a gap longer than `tolerance` (40 ms) \
          is filled with silence, an overlap longer than it is cut off (whole buffers dropped \
          when they lie before what was given), and within the tolerance buffers are restamped \
          to follow on. The stream starts at time 0 (silence before a late first buffer) \
          unless skip-to-first=true. Output buffers carry pts, duration and offsets in frames. \
          The in, out, add and drop counts (in frames) are logged at end of stream \
          (PARALLAX_LOG=info).",
    pads: Pads::ONE_TO_ONE.with_caps(AUDIO_CAPS, AUDIO_CAPS),
    props: &[
        PropSpec::uint("in", 0, 0, u64::MAX, "Number of input samples").read_only(),
        PropSpec::uint("out", 0, 0, u64::MAX, "Number of output samples").read_only(),
        PropSpec::uint("add", 0, 0, u64::MAX, "Number of added samples").read_only(),
        PropSpec::uint("drop", 0, 0, u64::MAX, "Number of dropped samples").read_only(),
        PropSpec::bool(
            "silent",
            true,
            "Don't emit notify for dropped and duplicated frames",
        )
        .ignored("no notifications; the counts are logged at end of stream"),
        PropSpec::uint(
            "tolerance",
            40_000_000,
            0,
            u64::MAX,
            "Only act if timestamp jitter/imperfection exceeds indicated tolerance (ns)",
        ),
        PropSpec::bool(
            "skip-to-first",
            false,
            "Don't produce buffers before the first one we receive",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let info = AudioInfo::from_caps(&negotiated_or(p.sink_caps(), AUDIO_CAPS), p.instance())?;
        Ok(ElementImpl::Transform(Box::new(AudioRate::new(
            info,
            p.uint("tolerance")?,
            p.bool("skip-to-first")?,
        ))))
    },
};

/// audiorate's state: the next frame the stream expects, and the counts.
struct AudioRate {
    info: AudioInfo,
    tolerance: u64,
    skip_to_first: bool,
    /// The frame offset the next output starts at (`None` before the first buffer).
    next: Option<u64>,
    counts: RateCounts,
}

/// Frames in, out, added as silence and dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RateCounts {
    inp: u64,
    out: u64,
    add: u64,
    drop: u64,
}

impl AudioRate {
    fn new(info: AudioInfo, tolerance: u64, skip_to_first: bool) -> AudioRate {
        AudioRate {
            info,
            tolerance,
            skip_to_first,
            next: None,
            counts: RateCounts::default(),
        }
    }

    /// `buf` made to start at the expected frame: silence before it, or its start cut off.
    fn fix(&mut self, buf: Buffer) -> Option<Buffer> {
        let bpf = self.info.bpf();
        let rate = self.info.rate as u64;
        let frames = (buf.len() / bpf) as u64;
        self.counts.inp += frames;
        // The buffer's frame offset by its pts (rounded), or where the stream is.
        let at = buf
            .meta
            .pts()
            .map(|t| ((t as u128 * rate as u128 + 500_000_000) / 1_000_000_000) as u64);
        let next = *self.next.get_or_insert(match at {
            Some(a) if self.skip_to_first => a,
            _ => 0,
        });
        let at = at.unwrap_or(next);
        let tol = (self.tolerance as u128 * rate as u128 / 1_000_000_000) as u64;
        let mut out = if at > next + tol {
            // A gap: silence from `next` to `at`, then the buffer.
            let gap = (at - next) as usize;
            let silence = if self.info.format == SampleFormat::U8 {
                0x80
            } else {
                0
            };
            let mut bytes = vec![silence; gap * bpf];
            bytes.extend_from_slice(buf.data());
            self.counts.add += gap as u64;
            Buffer::from_vec(bytes)
        } else if at + tol < next {
            // An overlap: what lies before `next` is dropped.
            let cut = (next - at).min(frames);
            self.counts.drop += cut;
            if cut == frames {
                return None;
            }
            buf.slice(cut as usize * bpf..frames as usize * bpf)?
        } else {
            buf
        };
        let n = (out.len() / bpf) as u64;
        let pts = frames_to_ns(next, rate);
        out.meta.set_pts(Some(pts));
        out.meta
            .set_duration(Some(frames_to_ns(next + n, rate) - pts));
        out.meta.set_offset(Some(next));
        out.meta.set_offset_end(Some(next + n));
        self.next = Some(next + n);
        self.counts.out += n;
        Some(out)
    }
}

impl Transform for AudioRate {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        Ok(match self.fix(buf) {
            Some(out) => Flow::Push(out),
            None => Flow::Drop,
        })
    }

    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let c = self.counts;
        tracing::info!(
            r#in = c.inp,
            out = c.out,
            add = c.add,
            drop = c.drop,
            "Audio rate counts"
        );
        Ok(())
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[
    &AUDIOTESTSRC,
    &VOLUME,
    &AUDIOCONVERT,
    &RAWAUDIOPARSE,
    &AUDIORATE,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn s16(frames: usize, pts_ms: u64) -> Buffer {
        let mut b = Buffer::from_vec(vec![1u8; frames * 2]);
        b.meta.set_pts(Some(pts_ms * 1_000_000));
        b
    }

    #[test]
    fn audiorate_fills_gaps_drops_overlaps_and_counts() {
        let info = AudioInfo {
            format: SampleFormat::S16,
            rate: 1000,
            channels: 1,
        };
        let mut r = AudioRate::new(info, 40_000_000, false);
        // Starts at 100 ms: 100 frames of silence first (skip-to-first=false).
        let b = r.fix(s16(50, 100)).unwrap();
        assert_eq!(b.len(), 150 * 2);
        assert_eq!(&b.data()[..200], &[0u8; 200][..]);
        assert_eq!((b.meta.offset(), b.meta.pts()), (Some(0), Some(0)));
        // Within tolerance (10 ms late): restamped to follow on.
        let b = r.fix(s16(50, 160)).unwrap();
        assert_eq!((b.len(), b.meta.offset()), (100, Some(150)));
        // An overlap of 60 ms (starts at 140 ms, 200 expected): 60 frames cut off.
        let b = r.fix(s16(100, 140)).unwrap();
        assert_eq!(
            (b.len(), b.meta.offset(), b.meta.pts()),
            (80, Some(200), Some(200_000_000))
        );
        // Wholly before: dropped.
        assert!(r.fix(s16(20, 0)).is_none());
        assert_eq!(
            r.counts,
            RateCounts {
                inp: 220,
                out: 240,
                add: 100,
                drop: 80
            }
        );
        let mut r = AudioRate::new(info, 40_000_000, true);
        let b = r.fix(s16(50, 100)).unwrap();
        assert_eq!((b.len(), b.meta.offset()), (100, Some(100)));
        // tolerance=0: a 1 ms gap is filled.
        let mut r = AudioRate::new(info, 0, true);
        r.fix(s16(10, 0)).unwrap();
        assert_eq!(r.fix(s16(10, 11)).unwrap().len(), 22);
    }
}
