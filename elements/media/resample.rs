//! `audioresample`: sample rate conversion by a windowed-sinc filter (rubato), with gst's
//! `quality` scale and gst's output sample counts and timestamps.
//!
//! Over a stream of N input frames, gst's audioresample gives `floor((N - 1) x out / in) + 1`
//! output frames: every output frame whose position falls within the input's span. The
//! filter's delay is trimmed from the start and the tail is drained with silence at end of
//! stream, so the count is the same here, and output frame `j` is stamped `base + j / out`
//! seconds (gst rounds down to the nanosecond too), with offsets counting output frames.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Indexing, Resampler, Sample, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use super::{negotiated_or, AudioInfo, SampleFormat};
use crate::element::prelude::*;

use super::audio::AUDIO_CAPS;

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
    doc: "Converts the sample rate (the input's unless caps downstream ask for another) with a \
          windowed-sinc low-pass filter (Blackman-Harris², rubato), so content above the lower \
          Nyquist frequency is removed rather than aliased. Quality 0 to 3 use a sinc filter of \
          8, 16, 32 or 48 taps (gst's lengths, scaled by in/out when downsampling); from 4 (the \
          default) rates with a short common period (48000/44100: 160 frames) go through \
          rubato's FFT resampler, whose filter is longer and cheaper per sample than gst's 64 \
          taps, and other pairs through a sinc of gst's length for the quality (64 to 256). \
          Integer formats are resampled in 32-bit float, S32LE and F64LE in 64-bit float; \
          format and channels pass unchanged (audioconvert changes those). Over the stream, N \
          input frames give floor((N - 1) x out / in) + 1 output frames, as gst's do, stamped \
          from the first input pts with offsets in output frames; the filter's delay is taken \
          off the start and its tail drained at end of stream. When the rates are equal buffers \
          pass untouched.",
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
        ),
        PropSpec::enumeration(
            "resample-method",
            "kaiser",
            RESAMPLE_METHODS,
            "What resampling method to use",
        )
        .ignored("always a windowed sinc (Blackman-Harris²), whose length quality sets"),
        PropSpec::int(
            "sinc-filter-mode",
            0,
            0,
            2,
            "What sinc filter table mode to use",
        )
        .ignored("the filter table is chosen from the rates"),
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
        let quality = p.int("quality")? as usize;
        AudioResample::new(from, to.rate, quality)
            .map(|r| ElementImpl::Transform(Box::new(r)))
            .map_err(|e| ElementError::Config(format!("{}: {e}", p.instance())))
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

/// gst's filter length for each `quality` (its Kaiser table, 8 to 256 taps).
const TAPS: [usize; 11] = [8, 16, 32, 48, 64, 80, 96, 128, 160, 192, 256];

/// Input frames the filter takes a call.
const CHUNK: usize = 1024;

/// The largest number of filter phases kept as a table: when the reduced output rate is at
/// most this, every output position falls exactly on a phase (gst's "full" filter); above
/// it, phases are interpolated between 256 precomputed ones.
const MAX_PHASES: usize = 1024;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Nanoseconds of `frames` at `rate`, rounded to the nearest as gst's audioresample stamps
/// (`gst_util_uint64_scale_int_round`).
pub(crate) fn frames_to_ns(frames: u64, rate: u64) -> u64 {
    ((frames as u128 * 1_000_000_000 + rate as u128 / 2) / rate as u128) as u64
}

/// The total output frames of `n` input frames: gst's count.
pub(crate) fn output_frames(n: u64, in_rate: u32, out_rate: u32) -> u64 {
    if n == 0 {
        0
    } else {
        ((n - 1) as u128 * out_rate as u128 / in_rate as u128) as u64 + 1
    }
}

/// A streaming resampler over samples of type `T`: rubato's fixed-input sinc resampler, with
/// the input it has not taken yet and the delay still to trim.
struct Engine<T: Sample> {
    rs: Box<dyn Resampler<T>>,
    channels: usize,
    /// Interleaved input waiting for a whole chunk, from `start`.
    pending: Vec<T>,
    start: usize,
    /// Scratch for one call's output.
    scratch: Vec<T>,
    /// Output frames of the filter's delay still to drop.
    trim: usize,
}

impl<T: Sample> Engine<T> {
    fn new(info: &AudioInfo, out_rate: u32, quality: usize) -> Result<Engine<T>, String> {
        let (i, o) = (info.rate as u64, out_rate as u64);
        let phases = (o / gcd(i, o)) as usize;
        // Downsampling, the filter is as long in output frames as gst's (it scales the taps
        // by in / out), so the cutoff keeps its steepness at the lower rate.
        let taps = TAPS[quality.min(10)];
        let taps = if o < i {
            ((taps as u64 * i).div_ceil(o) as usize).min(4096)
        } else {
            taps
        };
        let params = if phases <= MAX_PHASES {
            SincInterpolationParameters::new(taps, WindowFunction::BlackmanHarris2)
                .oversampling_factor(phases)
                .interpolation(SincInterpolationType::Nearest)
        } else {
            SincInterpolationParameters::new(taps, WindowFunction::BlackmanHarris2)
                .oversampling_factor(256)
                .interpolation(SincInterpolationType::Linear)
        };
        let channels = info.channels as usize;
        // From quality 4 (gst's default) on, a rate pair with a small common period takes
        // rubato's FFT resampler: a longer filter than gst's 64 taps at a lower cost per
        // sample. Below, or when the period is long (48000 -> 44101), the sinc filter.
        let reduced_in = (i / gcd(i, o)) as usize;
        let rs: Box<dyn Resampler<T>> = if quality >= 4 && reduced_in <= CHUNK {
            Box::new(
                rubato::Fft::new(
                    i as usize,
                    o as usize,
                    CHUNK,
                    channels,
                    rubato::FixedSync::Input,
                )
                .map_err(|e| format!("cannot resample {i} Hz to {o} Hz: {e}"))?,
            )
        } else {
            Box::new(
                Async::new_sinc(
                    o as f64 / i as f64,
                    1.0,
                    &params,
                    CHUNK,
                    channels,
                    FixedAsync::Input,
                )
                .map_err(|e| format!("cannot resample {i} Hz to {o} Hz: {e}"))?,
            )
        };
        let trim = rs.output_delay();
        let scratch = vec![T::coerce_from(0.0f64); rs.output_frames_max() * channels];
        Ok(Engine {
            rs,
            channels,
            pending: Vec::new(),
            start: 0,
            scratch,
            trim,
        })
    }

    /// Runs one chunk from `pending` (`partial` frames of it when the stream ends), appending
    /// what comes out, less the delay, to `out`.
    fn run(&mut self, partial: Option<usize>, out: &mut Vec<T>) -> Result<(), String> {
        let ch = self.channels;
        let avail = (self.pending.len() - self.start) / ch;
        let input = &self.pending[self.start..];
        let zeros;
        let input = if partial.is_some() && avail < CHUNK {
            // The last, short chunk: rubato reads `partial` frames of a full-sized buffer.
            zeros = {
                let mut z = input.to_vec();
                z.resize(CHUNK * ch, T::coerce_from(0.0f64));
                z
            };
            &zeros[..]
        } else {
            input
        };
        let frames_in = input.len() / ch;
        let inp = InterleavedSlice::new(input, ch, frames_in).map_err(|e| e.to_string())?;
        let frames_out = self.scratch.len() / ch;
        let mut outp = InterleavedSlice::new_mut(&mut self.scratch[..], ch, frames_out)
            .map_err(|e| e.to_string())?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (used, made) = self
            .rs
            .process_into_buffer(&inp, &mut outp, indexing.as_ref())
            .map_err(|e| e.to_string())?;
        self.start += used.min(avail) * ch;
        let skip = self.trim.min(made);
        self.trim -= skip;
        out.extend_from_slice(&self.scratch[skip * ch..made * ch]);
        Ok(())
    }

    /// Takes `input` (interleaved) and appends every output frame it completes to `out`.
    fn push(&mut self, input: impl Iterator<Item = T>, out: &mut Vec<T>) -> Result<(), String> {
        self.pending.drain(..self.start);
        self.start = 0;
        self.pending.extend(input);
        while (self.pending.len() - self.start) / self.channels >= self.rs.input_frames_next() {
            self.run(None, out)?;
        }
        Ok(())
    }

    /// End of stream: drains the filter with silence until `out` holds `wanted` more frames.
    fn drain(&mut self, wanted: usize, out: &mut Vec<T>) -> Result<(), String> {
        let goal = out.len() + wanted * self.channels;
        while out.len() < goal {
            let left = (self.pending.len() - self.start) / self.channels;
            self.run(Some(left.min(CHUNK)), out)?;
        }
        out.truncate(goal);
        Ok(())
    }
}

/// The engine for the stream's sample type.
enum Engines {
    F32(Engine<f32>),
    F64(Engine<f64>),
}

/// audioresample's state.
struct AudioResample {
    /// The input format (the output's but for the rate).
    info: AudioInfo,
    out_rate: u32,
    engine: Option<Engines>,
    /// Input frames taken.
    consumed: u64,
    /// Output frames made.
    produced: u64,
    /// The first input buffer's pts: output is stamped from it.
    base_pts: Option<u64>,
    /// The last input buffer's metadata, for what is made at end of stream.
    meta: Option<Metadata>,
    out32: Vec<f32>,
    out64: Vec<f64>,
}

impl AudioResample {
    fn new(info: AudioInfo, out_rate: u32, quality: usize) -> Result<AudioResample, String> {
        let engine = if info.rate == out_rate {
            None
        } else if matches!(info.format, SampleFormat::S32 | SampleFormat::F64) {
            Some(Engines::F64(Engine::new(&info, out_rate, quality)?))
        } else {
            Some(Engines::F32(Engine::new(&info, out_rate, quality)?))
        };
        Ok(AudioResample {
            info,
            out_rate,
            engine,
            consumed: 0,
            produced: 0,
            base_pts: None,
            meta: None,
            out32: Vec::new(),
            out64: Vec::new(),
        })
    }

    /// Feeds `data` (or drains, at end of stream) and wraps what came out in a buffer.
    fn resample(&mut self, data: &[u8], last: bool) -> Result<Option<Buffer>, String> {
        let format = self.info.format;
        let frames_in = (data.len() / self.info.bpf()) as u64;
        self.consumed += frames_in;
        let wanted = if last {
            (output_frames(self.consumed, self.info.rate, self.out_rate) - self.produced) as usize
        } else {
            0
        };
        let bytes = match self.engine.as_mut() {
            None => return Ok(None),
            Some(Engines::F32(e)) => {
                let mut out = std::mem::take(&mut self.out32);
                out.clear();
                if last {
                    e.drain(wanted, &mut out)?;
                } else {
                    e.push(decode_f32(format, data), &mut out)?;
                }
                let bytes = encode(format, out.iter().map(|v| *v as f64));
                self.out32 = out;
                bytes
            }
            Some(Engines::F64(e)) => {
                let mut out = std::mem::take(&mut self.out64);
                out.clear();
                let n = data.len() / format.width();
                if last {
                    e.drain(wanted, &mut out)?;
                } else {
                    e.push((0..n).map(|i| format.read(data, i)), &mut out)?;
                }
                let bytes = encode(format, out.iter().copied());
                self.out64 = out;
                bytes
            }
        };
        let made = (bytes.len() / self.info.bpf()) as u64;
        if made == 0 {
            return Ok(None);
        }
        let start = self.produced;
        self.produced += made;
        let mut buf = Buffer::from_vec(bytes);
        if let Some(m) = &self.meta {
            buf.meta = m.clone();
        }
        let rate = self.out_rate as u64;
        let base = self.base_pts.unwrap_or(0);
        let pts = base + frames_to_ns(start, rate);
        buf.meta.set_pts(Some(pts));
        buf.meta
            .set_duration(Some(base + frames_to_ns(self.produced, rate) - pts));
        buf.meta.set_offset(Some(start));
        buf.meta.set_offset_end(Some(self.produced));
        Ok(Some(buf))
    }
}

/// The samples of `data` as f32, one loop per format.
fn decode_f32(format: SampleFormat, data: &[u8]) -> impl Iterator<Item = f32> + '_ {
    let w = format.width();
    data.chunks_exact(w).map(move |b| match format {
        SampleFormat::S16 => i16::from_le_bytes([b[0], b[1]]) as f32 * (1.0 / 32768.0),
        SampleFormat::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        SampleFormat::U8 => (b[0] as f32 - 128.0) * (1.0 / 128.0),
        _ => format.read(b, 0) as f32,
    })
}

/// `values` written in `format`, rounded and clipped as audioconvert does.
fn encode(format: SampleFormat, values: impl ExactSizeIterator<Item = f64>) -> Vec<u8> {
    let mut out = vec![0u8; values.len() * format.width()];
    match format {
        SampleFormat::S16 => {
            for (o, v) in out.chunks_exact_mut(2).zip(values) {
                let s = (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                o.copy_from_slice(&s.to_le_bytes());
            }
        }
        SampleFormat::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(values) {
                o.copy_from_slice(&(v as f32).to_le_bytes());
            }
        }
        _ => {
            for (i, v) in values.enumerate() {
                format.write(&mut out, i, v);
            }
        }
    }
    out
}

impl Transform for AudioResample {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.engine.is_none() {
            return Ok(Flow::Push(buf));
        }
        if self.base_pts.is_none() {
            self.base_pts = Some(buf.meta.pts().unwrap_or(0));
        }
        self.meta = Some(buf.meta.clone());
        match self.resample(buf.data(), false) {
            Ok(Some(out)) => Ok(Flow::Push(out)),
            Ok(None) => Ok(Flow::Held),
            Err(e) => Err(ElementError::Failed(e)),
        }
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self.engine.is_some() && self.consumed > 0 {
            match self.resample(&[], true) {
                Ok(Some(out)) => cx.push(out),
                Ok(None) => {}
                Err(e) => return Err(ElementError::Failed(e)),
            }
        }
        Ok(())
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&AUDIORESAMPLE];

#[cfg(test)]
mod tests {
    use super::*;

    /// Mono buffers of a sine of `freq` Hz at `rate`, `frames` each, in `format`.
    fn sine_buffers(
        format: SampleFormat,
        rate: u32,
        freq: f64,
        count: usize,
        frames: usize,
    ) -> Vec<Buffer> {
        let mut n = 0u64;
        (0..count)
            .map(|_| {
                let mut out = vec![0u8; frames * format.width()];
                for f in 0..frames {
                    let v = (std::f64::consts::TAU * freq * n as f64 / rate as f64).sin() * 0.8;
                    format.write(&mut out, f, v);
                    n += 1;
                }
                let mut b = Buffer::from_vec(out);
                b.meta
                    .set_pts(Some(frames_to_ns(n - frames as u64, rate as u64)));
                b
            })
            .collect()
    }

    /// Runs `buffers` through a resampler to `out_rate`; every output buffer, in order.
    fn run(
        format: SampleFormat,
        rate: u32,
        out_rate: u32,
        quality: usize,
        buffers: Vec<Buffer>,
    ) -> Vec<Buffer> {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let info = AudioInfo {
            format,
            rate,
            channels: 1,
        };
        let mut r = AudioResample::new(info, out_rate, quality).unwrap();
        let mut out = Vec::new();
        for buf in buffers {
            match r.process(buf, &mut cx).unwrap() {
                Flow::Push(b) => out.push(b),
                Flow::Held => {}
                other => panic!("{other:?}"),
            }
        }
        r.flush(&mut cx).unwrap();
        out.extend(cx.take_pushed());
        out
    }

    fn samples(bufs: &[Buffer], format: SampleFormat) -> Vec<f64> {
        let mut all = Vec::new();
        for b in bufs {
            let n = b.len() / format.width();
            all.extend((0..n).map(|i| format.read(b.data(), i)));
        }
        all
    }

    /// The frequency of `s` at `rate` by its rising zero crossings, and its amplitude.
    fn frequency_and_peak(s: &[f64], rate: u32) -> (f64, f64) {
        // Skip the edges, where the filter starts and drains.
        let body = &s[s.len() / 10..s.len() * 9 / 10];
        let rising: Vec<usize> = body
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
            .map(|(i, _)| i)
            .collect();
        let periods = (rising.len() - 1) as f64;
        let span = (rising[rising.len() - 1] - rising[0]) as f64;
        // The level by RMS over whole periods (a peak sample depends on where it falls).
        let whole = &body[rising[0]..rising[rising.len() - 1]];
        let rms = (whole.iter().map(|v| v * v).sum::<f64>() / whole.len() as f64).sqrt();
        (periods * rate as f64 / span, rms * std::f64::consts::SQRT_2)
    }

    // Output frames gst-launch-1.0 1.24 gives for
    // `audiotestsrc num-buffers=B samplesperbuffer=S ! audio/x-raw,rate=IN,format=S16LE,channels=1
    //  ! audioresample ! audio/x-raw,rate=OUT ! filesink` (the same for quality 0, 4 and 10).
    const GST_COUNTS: &[(u32, u32, usize, usize, u64)] = &[
        (48000, 44100, 10, 1024, 9408),
        (44100, 8000, 50, 1024, 9288),
        (44100, 48000, 7, 1000, 7618),
        (8000, 44100, 3, 100, 1649),
        (48000, 44100, 1, 1, 1),
        (48000, 44100, 1, 161, 148),
        (48000, 44100, 3, 161, 443),
        (44100, 22050, 1, 5, 3),
        (22050, 44100, 1, 5, 9),
        (48000, 44100, 2, 1024, 1881),
        (44100, 48000, 1, 4410, 4799),
    ];

    #[test]
    fn output_counts_are_gst_counts() {
        for &(i, o, count, frames, gst) in GST_COUNTS {
            assert_eq!(output_frames((count * frames) as u64, i, o), gst);
            for quality in [0, 4, 10] {
                let out = run(
                    SampleFormat::S16,
                    i,
                    o,
                    quality,
                    sine_buffers(SampleFormat::S16, i, 440.0, count, frames),
                );
                let total: usize = out.iter().map(|b| b.len() / 2).sum();
                assert_eq!(
                    total as u64, gst,
                    "{i} -> {o}, {count} x {frames}, q{quality}"
                );
            }
        }
    }

    #[test]
    fn timestamps_and_offsets_follow_output_frames() {
        let out = run(
            SampleFormat::F32,
            8000,
            44100,
            4,
            sine_buffers(SampleFormat::F32, 8000, 440.0, 3, 100),
        );
        let mut at = 0u64;
        for b in &out {
            let n = (b.len() / 4) as u64;
            // gst: pts 0:00:00.008390023 for offset 370 at 44100 Hz, duration up to the next.
            assert_eq!(b.meta.pts(), Some(frames_to_ns(at, 44100)));
            assert_eq!(
                b.meta.duration(),
                Some(frames_to_ns(at + n, 44100) - frames_to_ns(at, 44100))
            );
            assert_eq!(b.meta.offset(), Some(at));
            assert_eq!(b.meta.offset_end(), Some(at + n));
            at += n;
        }
        assert_eq!(at, 1649);
        assert_eq!(frames_to_ns(370, 44100), 8_390_023);
    }

    #[test]
    fn a_sine_keeps_its_frequency_and_level() {
        for (format, i, o, freq) in [
            (SampleFormat::F32, 48000, 44100, 1000.0),
            (SampleFormat::S16, 44100, 8000, 1000.0),
            (SampleFormat::S16, 8000, 44100, 440.0),
            (SampleFormat::F64, 44100, 48000, 3000.0),
            (SampleFormat::S32, 48000, 44101, 997.0),
        ] {
            for quality in [0, 4, 10] {
                let out = run(
                    format,
                    i,
                    o,
                    quality,
                    sine_buffers(format, i, freq, 40, 1024),
                );
                let (f, peak) = frequency_and_peak(&samples(&out, format), o);
                assert!(
                    (f - freq).abs() < freq * 0.002,
                    "{i} -> {o} q{quality}: {f} Hz"
                );
                // The shortest filter (8 taps) rolls off early: 3 kHz loses 6% at 48000 Hz.
                let slack = if quality == 0 { 0.07 } else { 0.002 };
                assert!(
                    (peak - 0.8).abs() < slack,
                    "{i} -> {o} q{quality}: peak {peak}"
                );
            }
        }
    }

    #[test]
    fn content_above_the_new_nyquist_is_filtered_not_aliased() {
        // 6 kHz at 44100 Hz is above 4 kHz, the Nyquist frequency of 8000 Hz: linear
        // interpolation folds it to 2 kHz at nearly full level; the filter removes it.
        let out = run(
            SampleFormat::F32,
            44100,
            8000,
            4,
            sine_buffers(SampleFormat::F32, 44100, 6000.0, 20, 1024),
        );
        let s = samples(&out, SampleFormat::F32);
        let body = &s[s.len() / 10..s.len() * 9 / 10];
        let peak = body.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(peak < 0.01, "alias left at {peak}");
    }

    #[test]
    fn equal_rates_pass_buffers_untouched() {
        let bufs = sine_buffers(SampleFormat::S16, 44100, 440.0, 2, 64);
        let first = bufs[0].data().as_ptr();
        let out = run(SampleFormat::S16, 44100, 44100, 4, bufs);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data().as_ptr(), first);
    }
}
