//! Raw audio: `audiotestsrc`, `volume`, `audioconvert` and `audioresample`.

use super::{frames_to_ns, negotiated_or, AudioInfo, SampleFormat, AUDIO_FORMATS};
use crate::element::prelude::*;

/// The template of every raw audio pad here.
const AUDIO_CAPS: &str = concat!(
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
        ),
        PropSpec::float("volume", 0.8, 0.0, 1.0, "Volume of test signal"),
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
        buf.meta.pts = Some(pts);
        buf.meta.duration = Some(end - pts);
        buf.meta.offset = Some(start);
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
    forward: |input, _| widen(input),
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

// --- audioresample -------------------------------------------------------------------------

/// The rate is free both ways; everything else passes. Forward, the input's rate comes first
/// in a list with every other rate, so that fixation keeps it unless downstream asks for
/// another (gst's audioresample fixates to the rate nearest the input's).
static AUDIORESAMPLE_CAPS: CapsFns = CapsFns {
    forward: |input, _| free_rate(input, true),
    backward: |down, _| free_rate(down, false),
    fixate: |caps, _| caps.fixate(),
};

fn free_rate(caps: &Caps, prefer_fixed: bool) -> Caps {
    let mut out = caps.clone();
    for s in out.structures_mut() {
        let any = CapsValue::int_range(1, i32::MAX as i64, 1).expect("a range");
        let rate = match s.int("rate") {
            Some(r) if prefer_fixed => {
                CapsValue::list(vec![CapsValue::Int(r), any.clone()]).unwrap_or(any)
            }
            _ => any,
        };
        s.set("rate", rate);
    }
    out
}

pub(crate) static AUDIORESAMPLE: Factory = Factory {
    name: "audioresample",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Resamples audio",
    doc: "Converts the sample rate (the input's unless caps downstream ask for another) by \
          linear interpolation between the two nearest input frames, in double precision; \
          format and channels pass unchanged (audioconvert changes those). No low-pass filter \
          is applied, so when downsampling, content above the new Nyquist frequency aliases: \
          fine for test signals and speech-band audio, not for mastering. Over the stream, N \
          input frames give ceil(N x out-rate / in-rate) output frames; output buffers are \
          stamped from the first input pts. When the rates are equal buffers pass untouched.",
    pads: Pads::ONE_TO_ONE
        .with_caps(AUDIO_CAPS, AUDIO_CAPS)
        .with_rule(CapsRule::Derived(&AUDIORESAMPLE_CAPS)),
    props: &[
        PropSpec::int(
            "quality",
            4,
            0,
            10,
            "Resample quality with 0 being the lowest and 10 being the best",
        )
        .ignored("resampling is always linear interpolation"),
        PropSpec::enumeration(
            "resample-method",
            "kaiser",
            RESAMPLE_METHODS,
            "What resampling method to use",
        )
        .ignored("resampling is always linear interpolation"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let from = AudioInfo::from_caps(&negotiated_or(p.sink_caps(), AUDIO_CAPS), p.instance())?;
        let to = AudioInfo::from_caps(&negotiated_or(p.src_caps(), AUDIO_CAPS), p.instance())?;
        if (from.format, from.channels) != (to.format, to.channels) {
            return Err(ElementError::Config(format!(
                "{}: audioresample changes only the rate, but {:?} x{} becomes {:?} x{}: put audioconvert next to it",
                p.instance(),
                from.format,
                from.channels,
                to.format,
                to.channels
            )));
        }
        Ok(ElementImpl::Transform(Box::new(AudioResample {
            info: from,
            out_rate: to.rate,
            consumed: 0,
            produced: 0,
            prev: vec![0.0; from.channels as usize],
            base_pts: None,
            meta: None,
        })))
    },
};

const RESAMPLE_METHODS: &[EnumValue] = &[
    EnumValue {
        nick: "nearest",
        value: 0,
        doc: "Nearest",
    },
    EnumValue {
        nick: "linear",
        value: 1,
        doc: "Linear",
    },
    EnumValue {
        nick: "cubic",
        value: 2,
        doc: "Cubic",
    },
    EnumValue {
        nick: "blackman-nuttall",
        value: 3,
        doc: "Blackman Nuttall",
    },
    EnumValue {
        nick: "kaiser",
        value: 4,
        doc: "Kaiser",
    },
];

/// audioresample's state. Output frame `j` sits at input position `j x in / out`: it is made
/// once the input frame after that position has arrived (or at end of stream).
struct AudioResample {
    /// The input format (the output's but for the rate).
    info: AudioInfo,
    out_rate: u32,
    /// Input frames seen before the current buffer.
    consumed: u64,
    /// Output frames made.
    produced: u64,
    /// The last input frame of the previous buffer, per channel.
    prev: Vec<f64>,
    /// The first input buffer's pts: output is stamped from it.
    base_pts: Option<u64>,
    /// The last input buffer's metadata, for what is made at end of stream.
    meta: Option<Metadata>,
}

impl AudioResample {
    /// Makes every output frame whose input frames are known: `data` holds the input frames
    /// from `self.consumed`, and `last` says the stream ends after them.
    fn resample(&mut self, data: &[u8], last: bool) -> Option<Buffer> {
        let format = self.info.format;
        let ch = self.info.channels as usize;
        let n = (data.len() / self.info.bpf()) as u64;
        let (rin, rout) = (self.info.rate as u128, self.out_rate as u128);
        let end = self.consumed + n;
        let read = |i: u64, c: usize, prev: &[f64]| -> f64 {
            if i < self.consumed {
                prev[c]
            } else {
                format.read(data, ((i - self.consumed) as usize) * ch + c)
            }
        };
        let start = self.produced;
        let mut out = Vec::new();
        let mut j = start;
        loop {
            let at = j as u128 * rin;
            let i0 = (at / rout) as u64;
            let frac = (at % rout) as f64 / rout as f64;
            let ready = if last { i0 < end } else { i0 + 1 < end };
            if !ready {
                break;
            }
            let first = out.len() / format.width();
            out.resize(out.len() + ch * format.width(), 0);
            for c in 0..ch {
                let a = read(i0, c, &self.prev);
                let b = if i0 + 1 < end {
                    read(i0 + 1, c, &self.prev)
                } else {
                    a
                };
                format.write(&mut out, first + c, a + (b - a) * frac);
            }
            j += 1;
        }
        if n > 0 {
            for c in 0..ch {
                self.prev[c] = read(end - 1, c, &self.prev);
            }
        }
        self.consumed = end;
        self.produced = j;
        if j == start {
            return None;
        }
        let mut buf = Buffer::from_vec(out);
        if let Some(m) = &self.meta {
            buf.meta = m.clone();
        }
        let rate = self.out_rate as u64;
        let base = self.base_pts.unwrap_or(0);
        let pts = base + frames_to_ns(start, rate);
        buf.meta.pts = Some(pts);
        buf.meta.duration = Some(base + frames_to_ns(j, rate) - pts);
        buf.meta.offset = Some(start);
        buf.meta.set_offset_end(Some(j));
        Some(buf)
    }
}

impl Transform for AudioResample {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.info.rate == self.out_rate {
            return Ok(Flow::Push(buf));
        }
        if self.base_pts.is_none() {
            self.base_pts = Some(buf.meta.pts.unwrap_or(0));
        }
        self.meta = Some(buf.meta.clone());
        Ok(match self.resample(buf.data(), false) {
            Some(out) => Flow::Push(out),
            None => Flow::Held,
        })
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self.info.rate != self.out_rate && self.consumed > 0 {
            if let Some(out) = self.resample(&[], true) {
                cx.push(out);
            }
        }
        Ok(())
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&AUDIOTESTSRC, &VOLUME, &AUDIOCONVERT, &AUDIORESAMPLE];

#[cfg(test)]
mod tests {
    use super::*;

    /// S16 mono buffers of a 1 kHz sine at 44100 Hz, `frames` each.
    fn sine_buffers(count: usize, frames: usize) -> Vec<Buffer> {
        let mut n = 0u64;
        (0..count)
            .map(|_| {
                let mut out = vec![0u8; frames * 2];
                for f in 0..frames {
                    n += 1;
                    let v = (std::f64::consts::TAU * 1000.0 * n as f64 / 44100.0).sin() * 0.8;
                    SampleFormat::S16.write(&mut out, f, v);
                }
                Buffer::from_vec(out)
            })
            .collect()
    }

    #[test]
    fn resampling_44100_to_8000_keeps_count_and_frequency() {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let info = AudioInfo {
            format: SampleFormat::S16,
            rate: 44100,
            channels: 1,
        };
        let mut r = AudioResample {
            info,
            out_rate: 8000,
            consumed: 0,
            produced: 0,
            prev: vec![0.0],
            base_pts: None,
            meta: None,
        };
        let mut out = Vec::new();
        let per_buffer = 1024.0 * 8000.0 / 44100.0;
        for buf in sine_buffers(50, 1024) {
            match r.process(buf, &mut cx).unwrap() {
                Flow::Push(b) => {
                    let frames = (b.len() / 2) as f64;
                    // Each buffer gives its share, within one frame of the boundary.
                    assert!((frames - per_buffer).abs() <= 1.0, "{frames} frames");
                    out.extend_from_slice(b.data());
                }
                other => panic!("{other:?}"),
            }
        }
        r.flush(&mut cx).unwrap();
        for b in cx.take_pushed() {
            out.extend_from_slice(b.data());
        }
        // Exact over the stream: ceil(51200 x 8000 / 44100).
        let frames = out.len() / 2;
        assert_eq!(frames, (51_200u64 * 8000).div_ceil(44100) as usize);
        let s: Vec<i16> = out
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        // 51200 / 44100 s of 1 kHz: 1161 periods, one rising zero crossing each.
        let rising = s.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        assert!((1160..=1162).contains(&rising), "{rising} rising crossings");
        let peak = s.iter().map(|v| v.unsigned_abs()).max().unwrap();
        assert!(peak > 24_000, "peak {peak}");
    }
}
