//! H.264 (feature `h264`): `openh264enc` and `openh264dec` on OpenH264 (built from the source
//! the openh264 crate bundles), and `h264parse`, which cuts an Annex B byte stream into access
//! units.
//!
//! All three speak gst's `video/x-h264, stream-format=byte-stream, alignment=au`: start codes in
//! front of every NAL unit, one access unit (one picture with its parameter sets) a buffer.

use super::super::codecs::{find_sps, Sps};
use super::{negotiated_or, VideoInfo};
use crate::element::prelude::*;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, QpRange,
    RateControlMode,
};
use openh264::formats::{YUVSlices, YUVSource};
use openh264::OpenH264API;

/// The raw side: 8-bit 4:2:0 planar.
const RAW_CAPS: &str = concat!(
    "video/x-raw, format=(string)I420, width=(int)[ 16, 4096 ], height=(int)[ 16, 4096 ], ",
    "framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

/// The coded side.
const H264_CAPS: &str = concat!(
    "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au, ",
    "width=(int)[ 16, 4096 ], height=(int)[ 16, 4096 ], ",
    "framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

/// The size and frame rate: what the raw side and the coded side share.
const GEOMETRY: &[&str] = &["width", "height", "framerate"];

/// What h264parse announces of an SPS (see `Sps::describe`).
const SPS_FIELDS: &[&str] = &[
    "width",
    "height",
    "framerate",
    "pixel-aspect-ratio",
    "interlace-mode",
    "chroma-format",
    "bit-depth-luma",
    "bit-depth-chroma",
    "profile",
    "level",
];

/// `template` with the size and framerate fields of `caps` where it has them.
fn carry_geometry(caps: &Caps, template: &str) -> Caps {
    carry_fields(caps, template, GEOMETRY)
}

/// `template` with the `fields` of `caps` where it has them (the template where they do not
/// fit it).
fn carry_fields(caps: &Caps, template: &str, fields: &[&str]) -> Caps {
    let template = Caps::parse(template).expect("the template parses");
    if caps.is_any() {
        return template;
    }
    let mut out = template.clone();
    if let (Some(from), Some(to)) = (caps.first(), out.structures_mut().first_mut()) {
        for field in fields {
            if let Some(v) = from.get(field) {
                to.set(field, v.clone());
            }
        }
    }
    let out = out.intersect(&template);
    if out.is_empty() {
        template
    } else {
        out
    }
}

const NATIVE: Hints = Hints {
    trust: Trust::SemiTrusted,
    processing: Processing::Cpu,
    native_code: true,
    rt_safe: false,
    ..Hints::FUSABLE
};

// --- openh264enc ---------------------------------------------------------------------------

const RATE_CONTROL: &[EnumValue] = &[
    EnumValue {
        nick: "quality",
        value: 0,
        doc: "Quality mode",
    },
    EnumValue {
        nick: "bitrate",
        value: 1,
        doc: "Bitrate mode",
    },
    EnumValue {
        nick: "buffer",
        value: 2,
        doc: "No bitrate control, just using buffer status",
    },
    EnumValue {
        nick: "off",
        value: -1,
        doc: "Rate control off mode",
    },
];

const COMPLEXITY: &[EnumValue] = &[
    EnumValue {
        nick: "low",
        value: 0,
        doc: "Low complexity / high speed encoding",
    },
    EnumValue {
        nick: "medium",
        value: 1,
        doc: "Medium complexity / medium speed encoding",
    },
    EnumValue {
        nick: "high",
        value: 2,
        doc: "High complexity / low speed encoding",
    },
];

static OPENH264ENC_CAPS: CapsFns = CapsFns {
    forward: |input, _| carry_geometry(input, H264_CAPS),
    backward: |down, _| carry_geometry(down, RAW_CAPS),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static OPENH264ENC: Factory = Factory {
    name: "openh264enc",
    aliases: &[],
    klass: Klass::Filter,
    summary: "OpenH264 video encoder",
    doc: "Encodes I420 frames of even width and height into H.264 (constrained baseline) with \
          OpenH264: one access unit a buffer (`video/x-h264, stream-format=byte-stream, \
          alignment=au`), parameter sets in front of every IDR frame, each buffer stamped with \
          the pts and duration of its frame. No frame is held back: a frame in, an access unit \
          out (a frame the rate control skips gives none).",
    pads: Pads::ONE_TO_ONE
        .with_caps(RAW_CAPS, H264_CAPS)
        .with_rule(CapsRule::Derived(&OPENH264ENC_CAPS)),
    props: &[
        PropSpec::uint(
            "bitrate",
            128_000,
            0,
            u32::MAX as u64,
            "Bitrate (in bits per second)",
        ),
        PropSpec::uint(
            "gop-size",
            90,
            0,
            u32::MAX as u64,
            "Number of frames between intra frames",
        ),
        PropSpec::enumeration("rate-control", "quality", RATE_CONTROL, "Rate control mode"),
        PropSpec::enumeration(
            "complexity",
            "medium",
            COMPLEXITY,
            "Complexity (speed against quality)",
        ),
        PropSpec::uint(
            "multi-thread",
            0,
            0,
            u16::MAX as u64,
            "The number of threads (0 = auto)",
        ),
        PropSpec::bool(
            "enable-frame-skip",
            false,
            "Skip frames to reach target bitrate",
        ),
        PropSpec::uint("qp-min", 0, 0, 51, "Minimum quantizer"),
        PropSpec::uint("qp-max", 51, 0, 51, "Maximum quantizer"),
        PropSpec::bool("scene-change-detection", true, "Detect scene changes"),
        PropSpec::bool("adaptive-quantization", true, "Adaptive quantization"),
        PropSpec::bool("background-detection", true, "Background detection"),
    ],
    hints: NATIVE,
    build: |p| {
        let info = VideoInfo::from_caps(&negotiated_or(p.sink_caps(), RAW_CAPS), p.instance())?;
        if info.width % 2 != 0 || info.height % 2 != 0 {
            return Err(ElementError::Config(format!(
                "OpenH264 codes even sizes only, not {}x{}",
                info.width, info.height
            )));
        }
        let rc = match p.nick("rate-control")? {
            "bitrate" => RateControlMode::Bitrate,
            "buffer" => RateControlMode::Bufferbased,
            "off" => RateControlMode::Off,
            _ => RateControlMode::Quality,
        };
        let complexity = match p.nick("complexity")? {
            "low" => Complexity::Low,
            "high" => Complexity::High,
            _ => Complexity::Medium,
        };
        let (qp_min, qp_max) = (p.uint("qp-min")? as u8, p.uint("qp-max")? as u8);
        if qp_min > qp_max {
            return Err(ElementError::Config(format!(
                "qp-min {qp_min} is above qp-max {qp_max}"
            )));
        }
        let fps = if info.fps.num > 0 {
            info.fps.as_f64() as f32
        } else {
            30.0
        };
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(p.uint("bitrate")? as u32))
            .max_frame_rate(FrameRate::from_hz(fps))
            .rate_control_mode(rc)
            .complexity(complexity)
            .num_threads(p.uint("multi-thread")? as u16)
            .skip_frames(p.bool("enable-frame-skip")?)
            .qp(QpRange::new(qp_min, qp_max))
            .scene_change_detect(p.bool("scene-change-detection")?)
            .adaptive_quantization(p.bool("adaptive-quantization")?)
            .background_detection(p.bool("background-detection")?)
            .intra_frame_period(IntraFramePeriod::from_num_frames(p.uint("gop-size")? as u32));
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| ElementError::Config(format!("OpenH264 would not start: {e}")))?;
        Ok(ElementImpl::Transform(Box::new(OpenH264Enc {
            info,
            encoder,
            frames: 0,
        })))
    },
};

struct OpenH264Enc {
    info: VideoInfo,
    encoder: Encoder,
    frames: u64,
}

impl Transform for OpenH264Enc {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let data = buf.data();
        let info = &self.info;
        if data.is_empty() {
            return Ok(Flow::Held);
        }
        if data.len() < info.size {
            return Err(ElementError::Failed(format!(
                "frame {} has {} bytes, but {}x{} I420 needs {}",
                self.frames,
                data.len(),
                info.width,
                info.height,
                info.size
            )));
        }
        // OpenH264 takes each plane exactly: its rows times its stride (sizes are even).
        let plane = |i: usize| {
            let rows = if i == 0 { info.height } else { info.height / 2 };
            &data[info.offset[i]..info.offset[i] + rows * info.stride[i]]
        };
        let yuv = YUVSlices::new(
            (plane(0), plane(1), plane(2)),
            (info.width, info.height),
            (info.stride[0], info.stride[1], info.stride[2]),
        );
        let frame = self.frames;
        self.frames += 1;
        let bits = self
            .encoder
            .encode(&yuv)
            .map_err(|e| ElementError::Failed(format!("OpenH264 failed on frame {frame}: {e}")))?;
        let au = bits.to_vec();
        if au.is_empty() {
            return Ok(Flow::Held);
        }
        let mut out = Buffer::from_vec(au);
        out.meta.set_pts(buf.meta.pts());
        out.meta.set_duration(buf.meta.duration());
        Ok(Flow::Push(out))
    }
}

// --- openh264dec ---------------------------------------------------------------------------

static OPENH264DEC_CAPS: CapsFns = CapsFns {
    forward: |input, _| carry_geometry(input, RAW_CAPS),
    backward: |down, _| carry_geometry(down, H264_CAPS),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static OPENH264DEC: Factory = Factory {
    name: "openh264dec",
    aliases: &[],
    klass: Klass::Filter,
    summary: "OpenH264 video decoder",
    doc: "Decodes H.264 access units (`video/x-h264, stream-format=byte-stream, alignment=au`, \
          as h264parse or openh264enc give them) with OpenH264 into I420 frames laid out as gst \
          lays them out, each stamped with the pts and duration of the access unit it came \
          from. The picture size comes from the caps in front of it; a stream of another size \
          is an error naming it. OpenH264 is C++ reading untrusted input: the planner runs \
          openh264dec in a worker process, and data it rejects is an error naming the byte \
          offset of the access unit.",
    pads: Pads::ONE_TO_ONE
        .with_caps(H264_CAPS, RAW_CAPS)
        .with_rule(CapsRule::Derived(&OPENH264DEC_CAPS)),
    props: &[],
    hints: NATIVE,
    build: |p| {
        let info = VideoInfo::from_caps(&negotiated_or(p.src_caps(), RAW_CAPS), p.instance())?;
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| ElementError::Config(format!("OpenH264 would not start: {e}")))?;
        Ok(ElementImpl::Transform(Box::new(OpenH264Dec {
            info,
            decoder,
            offset: 0,
        })))
    },
};

struct OpenH264Dec {
    info: VideoInfo,
    decoder: Decoder,
    /// Bytes taken so far: where the next access unit starts in the stream.
    offset: u64,
}

impl Transform for OpenH264Dec {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let at = self.offset;
        self.offset += buf.len() as u64;
        if buf.is_empty() {
            return Ok(Flow::Held);
        }
        let info = &self.info;
        let picture = self.decoder.decode(buf.data()).map_err(|e| {
            ElementError::Failed(format!(
                "OpenH264 rejects the H.264 data at byte offset {at}: {e}"
            ))
        })?;
        let Some(pic) = picture else {
            return Ok(Flow::Held);
        };
        let (w, h) = pic.dimensions();
        if (w, h) != (info.width, info.height) {
            return Err(ElementError::Failed(format!(
                "the stream's pictures are {w}x{h}, but the caps say {}x{}",
                info.width, info.height
            )));
        }
        let strides = pic.strides();
        let mut out = vec![0u8; info.size];
        for (i, (src, stride)) in [
            (pic.y(), strides.0),
            (pic.u(), strides.1),
            (pic.v(), strides.2),
        ]
        .into_iter()
        .enumerate()
        {
            let (pw, ph) = if i == 0 {
                (w, h)
            } else {
                (w.div_ceil(2), h.div_ceil(2))
            };
            for row in 0..ph {
                let to = info.offset[i] + row * info.stride[i];
                let from = row * stride;
                out[to..to + pw].copy_from_slice(&src[from..from + pw]);
            }
        }
        let mut frame = Buffer::from_vec(out);
        frame.meta.set_pts(buf.meta.pts());
        frame.meta.set_duration(buf.meta.duration());
        Ok(Flow::Push(frame))
    }
}

// --- h264parse -----------------------------------------------------------------------------

/// h264parse's output for `input`: what the input's caps say and, on `avc` input, what the
/// SPS in its codec_data says, as gst's h264parse announces it.
fn parsed_caps(input: &Caps) -> Caps {
    let mut from = input.clone();
    if let Some(sps) = Avc::from_caps(input).ok().flatten().and_then(|a| a.sps()) {
        for s in from.structures_mut() {
            sps.describe(s);
        }
    }
    carry_fields(&from, H264_CAPS, SPS_FIELDS)
}

static H264PARSE_CAPS: CapsFns = CapsFns {
    forward: |input, _| parsed_caps(input),
    // Any H.264 is taken (a byte stream in any chunks, or avc samples), whatever the size
    // downstream wants: what comes out is decided going forward.
    backward: |_, _| Caps::parse("video/x-h264").expect("the template parses"),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static H264PARSE: Factory = Factory {
    name: "h264parse",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Parses H.264 streams",
    doc: "Cuts an Annex B byte stream (start codes in front of NAL units, in buffers of any \
          size, as filesrc reads a .h264 file) into access units: a new one starts at an access \
          unit delimiter, SPS, PPS or SEI, or at a slice whose first_mb_in_slice is 0 after a \
          slice of the current one. Bytes before the first start code are an error naming \
          their offset. The pts of each unit is that of the buffer its first byte came in. \
          An `avc` stream (`stream-format=avc` with its avcC record as `codec_data`, as \
          qtdemux gives MP4's H.264) is converted to the byte stream decoders take: each \
          sample's length-prefixed NAL units get start codes, and the SPS and PPS of \
          codec_data go in front of every IDR picture that lacks them; timestamps and flags \
          pass with each sample. A NAL length past its sample, or a codec_data that is no \
          avcC record, is an error naming the byte offset. Its caps carry what the stream's \
          SPS says as gst's h264parse announces it (`width`, `height`, `framerate` when the \
          SPS has it, `profile`, `level`, `chroma-format`...): read from codec_data on avc \
          input, passed on from the caps in front otherwise (tsdemux reads them from the \
          file).",
    pads: Pads::ONE_TO_ONE
        .with_caps("video/x-h264", H264_CAPS)
        .with_rule(CapsRule::Derived(&H264PARSE_CAPS)),
    props: &[PropSpec::int(
        "config-interval",
        0,
        -1,
        3600,
        "Send SPS and PPS at this interval in seconds (parameter sets pass as they come)",
    )
    .ignored("parameter sets are passed as the stream carries them")],
    hints: Hints {
        trust: Trust::SemiTrusted,
        ..Hints::FUSABLE
    },
    build: |p| {
        if let Some(avc) = Avc::from_caps(p.sink_caps())? {
            return Ok(ElementImpl::Transform(Box::new(AvcToByteStream {
                avc,
                offset: 0,
            })));
        }
        Ok(ElementImpl::Transform(Box::new(H264Parse {
            pending: Vec::new(),
            base: 0,
            au_start: None,
            has_vcl: false,
            scanned: 0,
            pts: None,
        })))
    },
};

/// An `avc` stream's configuration (the avcC record of its codec_data).
struct Avc {
    /// Bytes of each NAL unit's length prefix (1, 2 or 4).
    length_size: usize,
    /// The SPS and PPS units with start codes.
    parameter_sets: Vec<u8>,
}

impl Avc {
    /// The configuration of `caps` when they say `stream-format=avc`.
    fn from_caps(caps: &Caps) -> Result<Option<Avc>, ElementError> {
        let Some(s) = caps.first() else {
            return Ok(None);
        };
        if s.string("stream-format") != Some("avc") {
            return Ok(None);
        }
        let hex = s.string("codec_data").ok_or_else(|| {
            ElementError::Config(
                "an avc stream needs its avcC record as codec_data in its caps".into(),
            )
        })?;
        let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let bytes = bytes
            .filter(|_| hex.len() % 2 == 0)
            .ok_or_else(|| ElementError::Config("codec_data is not hex".into()))?;
        Avc::parse(&bytes).map(Some).map_err(|(at, why)| {
            ElementError::Config(format!(
                "codec_data is not an avcC record: {why} (at byte offset {at})"
            ))
        })
    }

    /// Reads an avcC record: version, profile, compatibility, level, length size, then the
    /// SPS and PPS, each with a 16-bit length.
    fn parse(b: &[u8]) -> Result<Avc, (usize, &'static str)> {
        if b.len() < 7 || b[0] != 1 {
            return Err((0, "no version 1 header"));
        }
        let length_size = usize::from(b[4] & 3) + 1;
        if length_size == 3 {
            return Err((4, "a 3-byte NAL length"));
        }
        let mut parameter_sets = Vec::new();
        let mut at = 5;
        for (mask, what) in [(0x1F, "an SPS"), (0xFF, "a PPS")] {
            let n = b.get(at).ok_or((at, "cut short"))? & mask;
            at += 1;
            for _ in 0..n {
                let len = b
                    .get(at..at + 2)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    .ok_or((at, "cut short"))?;
                let unit = b.get(at + 2..at + 2 + len).ok_or((at, what))?;
                parameter_sets.extend_from_slice(&[0, 0, 0, 1]);
                parameter_sets.extend_from_slice(unit);
                at += 2 + len;
            }
        }
        Ok(Avc {
            length_size,
            parameter_sets,
        })
    }

    /// The first SPS of the record, when it reads.
    fn sps(&self) -> Option<Sps> {
        let (begin, end) = find_sps(&self.parameter_sets)?;
        let end = end.unwrap_or(self.parameter_sets.len());
        Sps::parse(&self.parameter_sets[begin..end]).ok()
    }

    /// One sample's NAL units with start codes, the parameter sets in front of an IDR picture
    /// that lacks them; `Err` is the offset in the sample of a length past its end.
    fn convert(&self, sample: &[u8]) -> Result<Vec<u8>, usize> {
        let mut out = Vec::with_capacity(sample.len() + self.parameter_sets.len() + 16);
        let (mut at, mut idr, mut has_sps) = (0, false, false);
        let mut units = Vec::new();
        while at < sample.len() {
            let head = sample.get(at..at + self.length_size).ok_or(at)?;
            let len = head.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
            let unit = sample.get(at + self.length_size..at + self.length_size + len);
            let unit = unit.filter(|u| !u.is_empty()).ok_or(at)?;
            match unit[0] & 0x1F {
                5 => idr = true,
                7 => has_sps = true,
                _ => {}
            }
            units.push(unit);
            at += self.length_size + len;
        }
        if idr && !has_sps {
            out.extend_from_slice(&self.parameter_sets);
        }
        for u in units {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(u);
        }
        Ok(out)
    }
}

/// h264parse on an `avc` stream: each sample (an access unit) converted on its own.
struct AvcToByteStream {
    avc: Avc,
    /// Stream offset of the next sample.
    offset: u64,
}

impl Transform for AvcToByteStream {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let at = buf.meta.offset().unwrap_or(self.offset);
        self.offset = at + buf.len() as u64;
        if buf.is_empty() {
            return Ok(Flow::Held);
        }
        let bytes = self.avc.convert(buf.data()).map_err(|i| {
            ElementError::Failed(format!(
                "a NAL unit's length runs past its avc sample at byte offset {}",
                at + i as u64
            ))
        })?;
        let mut out = Buffer::from_vec(bytes);
        out.meta.set_pts(buf.meta.pts());
        out.meta.set_dts(buf.meta.dts());
        out.meta.set_duration(buf.meta.duration());
        out.meta.set_offset(buf.meta.offset());
        out.meta.flags = buf.meta.flags;
        Ok(Flow::Push(out))
    }
}

/// The largest access unit h264parse gathers: more is a broken stream, not a picture.
const MAX_AU: usize = 32 << 20;

/// h264parse's state: bytes not yet cut, where the current access unit starts in them.
struct H264Parse {
    pending: Vec<u8>,
    /// Stream offset of `pending[0]`.
    base: u64,
    /// Where in `pending` the current access unit starts, once a start code was seen.
    au_start: Option<usize>,
    /// Whether the current access unit has a slice yet.
    has_vcl: bool,
    /// How far `pending` was searched for start codes.
    scanned: usize,
    pts: Option<u64>,
}

/// Where the next 3-byte start code at or after `from` is, and where its NAL unit begins.
fn next_start(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        let at = i + memchr_zero(&data[i..])?;
        if at + 3 <= data.len() && data[at + 1] == 0 && data[at + 2] == 1 {
            // A 4-byte start code's extra zero belongs to it.
            let begin = if at > 0 && data[at - 1] == 0 {
                at - 1
            } else {
                at
            };
            return Some((begin, at + 3));
        }
        i = at + 1;
    }
    None
}

fn memchr_zero(data: &[u8]) -> Option<usize> {
    data.iter().position(|b| *b == 0)
}

impl H264Parse {
    /// Cuts every access unit that is complete in `pending`.
    fn cut(&mut self, cx: &mut Ctx<'_>) {
        while let Some((begin, nal)) = next_start(&self.pending, self.scanned) {
            if nal >= self.pending.len() {
                // The NAL header is not here yet.
                self.scanned = begin;
                return;
            }
            let kind = self.pending[nal] & 0x1f;
            let starts_au = match kind {
                6..=9 | 14..=18 => self.has_vcl,
                1 | 5 => {
                    if nal + 1 >= self.pending.len() {
                        self.scanned = begin;
                        return;
                    }
                    // first_mb_in_slice is ue(v): a leading 1 bit is 0.
                    let first_mb_zero = self.pending[nal + 1] & 0x80 != 0;
                    let starts = self.has_vcl && first_mb_zero;
                    self.has_vcl = true;
                    starts
                }
                _ => false,
            };
            match self.au_start {
                None => self.au_start = Some(begin),
                Some(start) if starts_au => {
                    self.emit(start, begin, cx);
                    self.au_start = Some(0);
                    self.has_vcl = matches!(kind, 1 | 5);
                    self.scanned = nal - begin;
                    continue;
                }
                Some(_) => {}
            }
            self.scanned = nal;
        }
        self.scanned = self.pending.len().saturating_sub(3).max(self.scanned);
    }

    /// Pushes `pending[start..end]` as one access unit and drops it from `pending`.
    fn emit(&mut self, start: usize, end: usize, cx: &mut Ctx<'_>) {
        let mut au = Buffer::from_vec(self.pending[start..end].to_vec());
        au.meta.set_pts(self.pts);
        au.meta.set_offset(Some(self.base + start as u64));
        cx.push(au);
        self.pending.drain(..end);
        self.base += end as u64;
    }
}

impl Transform for H264Parse {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.pending.is_empty() {
            self.pts = buf.meta.pts();
        }
        self.pending.extend_from_slice(buf.data());
        self.cut(cx);
        if self.pending.len() > MAX_AU {
            return Err(ElementError::Failed(format!(
                "no access unit ends within {MAX_AU} bytes of byte offset {}",
                self.base
            )));
        }
        if self.au_start.is_none() && self.pending.len() > 4 {
            let junk = self.pending.iter().position(|b| *b != 0).unwrap_or(0);
            return Err(ElementError::Failed(format!(
                "no start code at byte offset {}: this is not an H.264 byte stream",
                self.base + junk as u64
            )));
        }
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if let Some(start) = self.au_start {
            if start < self.pending.len() {
                let end = self.pending.len();
                self.emit(start, end, cx);
            }
        }
        Ok(())
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&OPENH264ENC, &OPENH264DEC, &H264PARSE];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let mut p = H264Parse {
            pending: Vec::new(),
            base: 0,
            au_start: None,
            has_vcl: false,
            scanned: 0,
            pts: None,
        };
        for c in chunks {
            p.process(Buffer::from_vec(c.to_vec()), &mut cx).unwrap();
        }
        p.flush(&mut cx).unwrap();
        cx.take_pushed().map(|b| b.data().to_vec()).collect()
    }

    /// Ten access units of a 32x32 gradient, encoded once.
    fn stream() -> &'static [Vec<u8>] {
        static AUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        AUS.get_or_init(|| {
            let run = DetachedRun::new();
            let mut cx = run.ctx();
            let caps = "video/x-raw, format=(string)I420, width=(int)32, height=(int)32, framerate=(fraction)30/1";
            let mut p = Props::defaults("openh264enc", OPENH264ENC.props);
            p.set_caps(Caps::parse(caps).unwrap(), Caps::parse(caps).unwrap());
            let Ok(ElementImpl::Transform(mut enc)) = (OPENH264ENC.build)(&p) else {
                panic!("openh264enc builds");
            };
            (0..10u8)
                .map(|n| {
                    let frame: Vec<u8> = (0..32 * 32 * 3 / 2)
                        .map(|i| (i as u8).wrapping_mul(3).wrapping_add(n * 5))
                        .collect();
                    match enc.process(Buffer::from_vec(frame), &mut cx).unwrap() {
                        Flow::Push(b) => b.data().to_vec(),
                        other => panic!("{other:?}"),
                    }
                })
                .collect()
        })
    }

    fn decode(aus: &[Vec<u8>]) -> Result<usize, String> {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let caps = "video/x-raw, format=(string)I420, width=(int)32, height=(int)32, framerate=(fraction)30/1";
        let mut p = Props::defaults("openh264dec", OPENH264DEC.props);
        p.set_caps(Caps::parse(caps).unwrap(), Caps::parse(caps).unwrap());
        let Ok(ElementImpl::Transform(mut dec)) = (OPENH264DEC.build)(&p) else {
            panic!("openh264dec builds");
        };
        let mut frames = 0;
        for au in aus {
            if let Flow::Push(b) = dec
                .process(Buffer::from_vec(au.clone()), &mut cx)
                .map_err(|e| e.to_string())?
            {
                assert_eq!(b.len(), 32 * 32 * 3 / 2);
                frames += 1;
            }
        }
        Ok(frames)
    }

    #[test]
    fn a_clean_stream_decodes_every_frame_and_parses_back() {
        assert_eq!(decode(stream()), Ok(10));
        let whole = stream().concat();
        assert_eq!(parse(&[&whole]), stream());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Flipped bytes and cut streams give frames or an error naming the offset: never a
        /// panic or a hang, in the parser or the decoder.
        #[test]
        fn damaged_streams_fail_cleanly(
            flips in proptest::collection::vec((0usize..10, 0usize..4096, 1u8..=255), 0..8),
            cut in 0usize..4096,
            chunk in 1usize..300,
        ) {
            let mut aus = stream().to_vec();
            for (au, at, x) in flips {
                let len = aus[au].len();
                aus[au][at % len] ^= x;
            }
            let mut whole = aus.concat();
            whole.truncate(cut % whole.len() + 1);
            let chunks: Vec<&[u8]> = whole.chunks(chunk).collect();
            let run = DetachedRun::new();
            let mut cx = run.ctx();
            let mut parser = H264Parse {
                pending: Vec::new(),
                base: 0,
                au_start: None,
                has_vcl: false,
                scanned: 0,
                pts: None,
            };
            for c in chunks {
                if let Err(e) = parser.process(Buffer::from_vec(c.to_vec()), &mut cx) {
                    proptest::prop_assert!(e.to_string().contains("byte offset"), "{}", e);
                    return Ok(());
                }
            }
            parser.flush(&mut cx).unwrap();
            let cut: Vec<Vec<u8>> = cx.take_pushed().map(|b| b.data().to_vec()).collect();
            if let Err(e) = decode(&cut) {
                proptest::prop_assert!(
                    e.starts_with("OpenH264 rejects the H.264 data at byte offset ")
                        || e.starts_with("the stream"),
                    "{}",
                    e
                );
            }
        }
    }

    #[test]
    fn avc_samples_become_a_byte_stream_with_parameter_sets_before_idr() {
        let avcc = [
            1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3,
        ];
        let avc = Avc::parse(&avcc).unwrap();
        let idr = [0, 0, 0, 3, 0x65, 9, 9];
        assert_eq!(
            avc.convert(&idr).unwrap(),
            [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9]
        );
        // An IDR with its own parameter sets, and a P slice, get none added.
        let inband = [0, 0, 0, 2, 0x67, 5, 0, 0, 0, 2, 0x65, 9];
        assert_eq!(
            avc.convert(&inband).unwrap(),
            [0, 0, 0, 1, 0x67, 5, 0, 0, 0, 1, 0x65, 9]
        );
        assert_eq!(
            avc.convert(&[0, 0, 0, 2, 0x41, 7]).unwrap(),
            [0, 0, 0, 1, 0x41, 7]
        );
        // A length past the sample names where it is.
        assert_eq!(
            avc.convert(&[0, 0, 0, 2, 0x41, 7, 0, 0, 0, 9, 0x41]),
            Err(6)
        );
        assert_eq!(
            Avc::parse(&[1, 2, 3]).err(),
            Some((0, "no version 1 header"))
        );
        let caps = Caps::parse("video/x-h264, stream-format=(string)avc, codec_data=(string)01ff")
            .unwrap();
        let e = Avc::from_caps(&caps).err().unwrap().to_string();
        assert!(e.contains("codec_data is not an avcC record"), "{e}");
    }

    #[test]
    fn avc_caps_announce_what_the_sps_of_codec_data_says() {
        // OpenH264's record of a 350x202 stream; the container says 352x208, the SPS crops.
        let caps = Caps::parse(
            "video/x-h264, stream-format=(string)avc, alignment=(string)au, width=(int)352, \
             height=(int)208, codec_data=(string)0142c00dffe1000f6742c00d8c8d40b0db52403c2211a8\
             01000468ce3c80",
        )
        .unwrap();
        assert_eq!(
            parsed_caps(&caps).to_string(),
            "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au, \
             width=(int)350, height=(int)202, framerate=(fraction)[ 0/1, 2147483647/1 ], \
             pixel-aspect-ratio=(fraction)1/1, interlace-mode=(string)progressive, \
             chroma-format=(string)4:2:0, bit-depth-luma=(int)8, bit-depth-chroma=(int)8, \
             profile=(string)constrained-baseline, level=(string)1.3"
        );
        // A byte stream's fields pass as they come.
        let caps =
            Caps::parse("video/x-h264, width=(int)64, height=(int)48, level=(string)1b").unwrap();
        let out = parsed_caps(&caps).to_string();
        assert!(out.contains("width=(int)64, height=(int)48"), "{out}");
        assert!(out.ends_with("level=(string)1b"), "{out}");
    }

    proptest::proptest! {
        /// Any codec_data and any sample: a conversion or an error, never a panic.
        #[test]
        fn hostile_avc_never_panics(
            avcc in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            sample in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            if let Ok(avc) = Avc::parse(&avcc) {
                let _ = avc.convert(&sample);
            }
        }
    }

    #[test]
    fn access_units_are_cut_at_parameter_sets_and_first_slices() {
        let sps = [0, 0, 0, 1, 0x67, 1, 2];
        let pps = [0, 0, 0, 1, 0x68, 3];
        let idr = [0, 0, 1, 0x65, 0x88, 9, 9];
        let p1 = [0, 0, 0, 1, 0x41, 0x9a, 7];
        let p2 = [0, 0, 0, 1, 0x41, 0x9a, 8];
        let stream: Vec<u8> = [&sps[..], &pps, &idr, &p1, &p2].concat();
        let want = vec![[&sps[..], &pps, &idr].concat(), p1.to_vec(), p2.to_vec()];
        assert_eq!(parse(&[&stream]), want);
        // The same cut whatever the chunking, one byte at a time too.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse(&bytes), want);
        let bytes: Vec<&[u8]> = stream.chunks(5).collect();
        assert_eq!(parse(&bytes), want);
    }
}
