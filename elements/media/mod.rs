//! Raw media: audio (`audiotestsrc`, `volume`, `audioconvert`), video (`videotestsrc`,
//! `videoconvert`, `videoscale`, `videoflip`, `videocrop`, `videorate`, `rawvideoparse`) and WAV
//! (`wavenc`), with gst's caps, property names, defaults and memory layouts.
//!
//! Each element learns its stream's format from the caps negotiated when the description was
//! validated (`Props::src_caps`, `Props::sink_caps`), never per buffer. The layouts here
//! ([`AudioInfo`], [`VideoInfo`]) follow gst's `GstAudioInfo` and `GstVideoInfo`: the same
//! strides, plane offsets and buffer sizes for the same caps.

use crate::element::prelude::*;

mod audio;
mod av1;
#[cfg(feature = "h264")]
mod h264;
mod resample;
mod video;
mod videoconvert;
mod videogeometry;
mod videorate;
mod videoscale;
mod wav;

pub(crate) use audio::FACTORIES as AUDIO;
pub(crate) use av1::FACTORIES as AV1;
#[cfg(feature = "h264")]
pub(crate) use h264::FACTORIES as H264;
pub(crate) use resample::FACTORIES as RESAMPLE;
/// Without the `h264` feature there are no H.264 elements.
#[cfg(not(feature = "h264"))]
pub(crate) const H264: &[&Factory] = &[];
pub(crate) use video::FACTORIES as VIDEO;
pub(crate) use videoconvert::FACTORIES as VIDEOCONVERT;
pub(crate) use videogeometry::FACTORIES as VIDEOGEOMETRY;
pub(crate) use videorate::FACTORIES as VIDEORATE;
pub(crate) use videoscale::FACTORIES as VIDEOSCALE;
pub(crate) use wav::sniff as sniff_wav;
pub(crate) use wav::FACTORIES as WAV;

/// A sample format of interleaved raw audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SampleFormat {
    U8,
    S16,
    S24,
    S32,
    F32,
    F64,
}

impl SampleFormat {
    /// gst's name, little-endian where it matters.
    pub(crate) fn parse(name: &str) -> Option<SampleFormat> {
        Some(match name {
            "U8" => SampleFormat::U8,
            "S16LE" => SampleFormat::S16,
            "S24LE" => SampleFormat::S24,
            "S32LE" => SampleFormat::S32,
            "F32LE" => SampleFormat::F32,
            "F64LE" => SampleFormat::F64,
            _ => return None,
        })
    }

    /// gst's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SampleFormat::U8 => "U8",
            SampleFormat::S16 => "S16LE",
            SampleFormat::S24 => "S24LE",
            SampleFormat::S32 => "S32LE",
            SampleFormat::F32 => "F32LE",
            SampleFormat::F64 => "F64LE",
        }
    }

    /// Bytes per sample.
    pub(crate) fn width(self) -> usize {
        match self {
            SampleFormat::U8 => 1,
            SampleFormat::S16 => 2,
            SampleFormat::S24 => 3,
            SampleFormat::S32 | SampleFormat::F32 => 4,
            SampleFormat::F64 => 8,
        }
    }

    /// Reads sample `i` of `bytes` as a float in [-1, 1].
    pub(crate) fn read(self, bytes: &[u8], i: usize) -> f64 {
        let at = i * self.width();
        let b = &bytes[at..at + self.width()];
        match self {
            SampleFormat::U8 => (b[0] as f64 - 128.0) / 128.0,
            SampleFormat::S16 => i16::from_le_bytes([b[0], b[1]]) as f64 / 32768.0,
            SampleFormat::S24 => {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f64 / 8_388_608.0
            }
            SampleFormat::S32 => {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64 / 2_147_483_648.0
            }
            SampleFormat::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            SampleFormat::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }

    /// Writes `v` (in [-1, 1], clipped) as sample `i` of `out`, rounding to the nearest integer
    /// sample as gst's audioconvert does without dithering.
    pub(crate) fn write(self, out: &mut [u8], i: usize, v: f64) {
        let at = i * self.width();
        let o = &mut out[at..at + self.width()];
        let int = |scale: f64, min: f64, max: f64| (v * scale).round().clamp(min, max);
        match self {
            SampleFormat::U8 => o[0] = (int(128.0, -128.0, 127.0) + 128.0) as u8,
            SampleFormat::S16 => {
                o.copy_from_slice(&(int(32768.0, -32768.0, 32767.0) as i16).to_le_bytes())
            }
            SampleFormat::S24 => {
                let s = int(8_388_608.0, -8_388_608.0, 8_388_607.0) as i32;
                o.copy_from_slice(&s.to_le_bytes()[..3]);
            }
            SampleFormat::S32 => o.copy_from_slice(
                &(int(2_147_483_648.0, -2_147_483_648.0, 2_147_483_647.0) as i32).to_le_bytes(),
            ),
            SampleFormat::F32 => o.copy_from_slice(&(v as f32).to_le_bytes()),
            SampleFormat::F64 => o.copy_from_slice(&v.to_le_bytes()),
        }
    }
}

/// The formats the audio elements take and make, in gst's order of preference.
pub(crate) const AUDIO_FORMATS: &str = "{ S16LE, S32LE, F32LE, F64LE, S24LE, U8 }";

/// A fixed raw audio format: what `audio/x-raw` caps say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioInfo {
    pub(crate) format: SampleFormat,
    pub(crate) rate: u32,
    pub(crate) channels: u32,
}

impl AudioInfo {
    /// The format of fixed `audio/x-raw` caps; an error names what is missing.
    pub(crate) fn from_caps(caps: &Caps, element: &str) -> Result<AudioInfo, ElementError> {
        let bad = |what: &str| {
            ElementError::Config(format!("{element}: the stream's caps ({caps}) {what}"))
        };
        let s = caps
            .first()
            .filter(|s| s.name == "audio/x-raw")
            .ok_or_else(|| bad("are not audio/x-raw"))?;
        let format = s
            .string("format")
            .and_then(SampleFormat::parse)
            .ok_or_else(|| bad("name no sample format this element handles"))?;
        let rate = s
            .int("rate")
            .filter(|r| *r > 0)
            .ok_or_else(|| bad("give no rate"))?;
        let channels = s
            .int("channels")
            .filter(|c| *c > 0)
            .ok_or_else(|| bad("give no channels"))?;
        Ok(AudioInfo {
            format,
            rate: rate as u32,
            channels: channels as u32,
        })
    }

    /// Its fixed caps.
    pub(crate) fn caps(&self) -> Caps {
        Caps::parse(&format!(
            "audio/x-raw, format=(string){}, layout=(string)interleaved, rate=(int){}, channels=(int){}",
            self.format.name(),
            self.rate,
            self.channels
        ))
        .expect("fixed audio caps parse")
    }

    /// Bytes per frame (one sample of every channel).
    pub(crate) fn bpf(&self) -> usize {
        self.format.width() * self.channels as usize
    }
}

/// The negotiated caps, or (for an instance built outside a validated graph, as the registry's
/// contract test does) the template fixed by gst's default rule.
pub(crate) fn negotiated_or(caps: &Caps, template: &str) -> Caps {
    if caps.is_any() {
        Caps::parse(template).expect("the template parses").fixate()
    } else {
        caps.clone()
    }
}

/// gst's `GST_ROUND_UP_N`.
pub(crate) fn round_up(v: usize, n: usize) -> usize {
    v.div_ceil(n) * n
}

/// Nanoseconds of `frames` at `rate` (gst's `gst_util_uint64_scale_int` rounding down).
pub(crate) fn frames_to_ns(frames: u64, rate: u64) -> u64 {
    (frames as u128 * 1_000_000_000 / rate as u128) as u64
}

/// Every pixel format the video elements take and make, in gst's order of preference.
pub(crate) const VIDEO_FORMATS: &str =
    "{ I420, YV12, NV12, YUY2, UYVY, RGB, BGR, RGBA, BGRA, ARGB, \
     ABGR, RGBx, BGRx, xRGB, xBGR, GRAY8, GRAY16_LE }";

/// The template of every raw video pad here.
pub(crate) const VIDEO_CAPS: &str = concat!(
    "video/x-raw, format=(string){ I420, YV12, NV12, YUY2, UYVY, RGB, BGR, RGBA, BGRA, ARGB, ",
    "ABGR, RGBx, BGRx, xRGB, xBGR, GRAY8, GRAY16_LE }, width=(int)[ 1, 2147483647 ], ",
    "height=(int)[ 1, 2147483647 ], framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

/// `VIDEO_FORMATS` as a caps value.
pub(crate) fn format_list() -> CapsValue {
    Caps::parse(&format!("a/b, f=(string){VIDEO_FORMATS}"))
        .ok()
        .and_then(|c| c.first().and_then(|s| s.get("f").cloned()))
        .expect("the format list parses")
}

/// A caps field that prefers `fixed` (first in a list, so fixation keeps it) but allows
/// `any`: how a converter says "unchanged unless downstream asks otherwise".
pub(crate) fn prefer(fixed: Option<CapsValue>, any: CapsValue) -> CapsValue {
    match fixed {
        Some(v) if v.is_fixed() => CapsValue::list(vec![v, any.clone()]).unwrap_or(any),
        _ => any,
    }
}

/// The YUV matrix of a stream (gst's colorimetry, as far as conversion needs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matrix {
    Bt601,
    Bt709,
    Bt2020,
}

impl Matrix {
    /// gst's default for a YUV stream `height` lines high: BT.709 above 576 lines (HD),
    /// BT.601 at and below (SD).
    pub(crate) fn default_for(height: usize) -> Matrix {
        if height > 576 {
            Matrix::Bt709
        } else {
            Matrix::Bt601
        }
    }

    /// The matrix a `colorimetry` caps field names, if it names one parallax knows.
    fn parse(text: &str) -> Option<Matrix> {
        Some(match text {
            "bt601" | "smpte240m" => Matrix::Bt601,
            "bt709" => Matrix::Bt709,
            "bt2020" | "bt2100-pq" | "bt2100-hlg" => Matrix::Bt2020,
            _ => {
                // gst's "range:matrix:transfer:primaries" form: matrix 3 is BT.709, 4 BT.601,
                // 6 BT.2020.
                match text.split(':').nth(1)? {
                    "3" => Matrix::Bt709,
                    "4" | "5" => Matrix::Bt601,
                    "6" => Matrix::Bt2020,
                    _ => return None,
                }
            }
        })
    }

    /// (Kr, Kb) of the matrix.
    pub(crate) fn kr_kb(self) -> (f64, f64) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
            Matrix::Bt2020 => (0.2627, 0.0593),
        }
    }
}

/// Output frames of a video transform, written into slots of a pool the element keeps, so a
/// stream of frames reuses the same few mappings instead of allocating (and faulting in) a
/// fresh frame each time. When every slot is still downstream it falls back to the heap.
pub(crate) struct Frames {
    name: String,
    size: usize,
    pool: Option<MemoryPool>,
    no_pool: bool,
}

impl Frames {
    /// Frames of `size` bytes for element `name`.
    pub(crate) fn new(name: &str, size: usize) -> Frames {
        Frames {
            name: name.to_owned(),
            size,
            pool: None,
            no_pool: false,
        }
    }

    /// A frame whose bytes `fill` writes (all of them: a reused slot holds an old frame).
    pub(crate) fn make(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<(), ElementError>,
    ) -> Result<Buffer, ElementError> {
        if self.pool.is_none() && !self.no_pool {
            match MemoryPool::new(&PoolConfig::new(self.name.clone(), 8, self.size.max(1))) {
                Ok(pool) => self.pool = Some(pool),
                Err(_) => self.no_pool = true,
            }
        }
        if let Some(mut slot) = self.pool.as_ref().and_then(|p| p.try_loan()) {
            fill(&mut slot.as_mut_slice()[..self.size])?;
            return Ok(slot.freeze(self.size));
        }
        let mut out = vec![0; self.size];
        fill(&mut out)?;
        Ok(Buffer::from_vec(out))
    }
}

/// The largest frame the video elements make or take (2 GiB): larger caps are refused when the
/// element is built, before any memory is asked for.
const MAX_FRAME_BYTES: u128 = 1 << 31;

/// A fixed raw video format: gst's `GstVideoInfo`, the same strides, offsets and sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoInfo {
    pub(crate) format: PixelFormat,
    /// The YUV matrix: from the caps' colorimetry, else gst's default for the height.
    pub(crate) matrix: Matrix,
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) fps: Fraction,
    /// Bytes per line of each plane.
    pub(crate) stride: [usize; 3],
    /// Where each plane starts.
    pub(crate) offset: [usize; 3],
    /// Bytes per frame.
    pub(crate) size: usize,
}

/// A pixel format: its gst name and how it is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PixelFormat {
    I420,
    Yv12,
    Nv12,
    Yuy2,
    Uyvy,
    /// Packed 3 bytes a pixel: byte order of R, G, B.
    Rgb3([usize; 3]),
    /// Packed 4 bytes a pixel: byte order of R, G, B and where alpha (or padding) goes.
    Rgb4([usize; 3], usize),
    Gray8,
    Gray16Le,
}

impl PixelFormat {
    /// Whether the format carries YUV (or grey) rather than RGB.
    pub(crate) fn is_yuv(self) -> bool {
        !matches!(self, PixelFormat::Rgb3(_) | PixelFormat::Rgb4(..))
    }

    /// The format of gst's name; `None` for one parallax does not handle.
    pub(crate) fn parse(name: &str) -> Option<PixelFormat> {
        use PixelFormat::*;
        Some(match name {
            "I420" => I420,
            "YV12" => Yv12,
            "NV12" => Nv12,
            "YUY2" => Yuy2,
            "UYVY" => Uyvy,
            "RGB" => Rgb3([0, 1, 2]),
            "BGR" => Rgb3([2, 1, 0]),
            "RGBA" => Rgb4([0, 1, 2], 3),
            "RGBx" => Rgb4([0, 1, 2], 3),
            "BGRA" => Rgb4([2, 1, 0], 3),
            "BGRx" => Rgb4([2, 1, 0], 3),
            "ARGB" => Rgb4([1, 2, 3], 0),
            "xRGB" => Rgb4([1, 2, 3], 0),
            "ABGR" => Rgb4([3, 2, 1], 0),
            "xBGR" => Rgb4([3, 2, 1], 0),
            "GRAY8" => Gray8,
            "GRAY16_LE" => Gray16Le,
            _ => return None,
        })
    }
}

impl VideoInfo {
    /// The layout of fixed `video/x-raw` caps (gst's `gst_video_info_from_caps`).
    pub(crate) fn from_caps(caps: &Caps, element: &str) -> Result<VideoInfo, ElementError> {
        let bad = |what: &str| {
            ElementError::Config(format!("{element}: the stream's caps ({caps}) {what}"))
        };
        let s = caps
            .first()
            .filter(|s| s.name == "video/x-raw")
            .ok_or_else(|| bad("are not video/x-raw"))?;
        let format = s
            .string("format")
            .and_then(PixelFormat::parse)
            .ok_or_else(|| bad("name no pixel format this element handles"))?;
        let dim = |f: &str| s.int(f).filter(|v| *v > 0).map(|v| v as usize);
        let width = dim("width").ok_or_else(|| bad("give no width"))?;
        let height = dim("height").ok_or_else(|| bad("give no height"))?;
        let fps = s
            .fraction("framerate")
            .unwrap_or(Fraction { num: 0, den: 1 });
        // A frame's bytes must fit comfortably in memory: 4 bytes a pixel at most, 2 GiB.
        let bytes = width as u128 * height as u128 * 4;
        if bytes > MAX_FRAME_BYTES {
            return Err(bad(&format!(
                "describe a {width}x{height} frame of up to {bytes} bytes; parallax takes frames \
                 of at most {MAX_FRAME_BYTES} bytes"
            )));
        }
        let mut info = VideoInfo::new(format, width, height, fps);
        if let Some(m) = s.string("colorimetry").and_then(Matrix::parse) {
            info.matrix = m;
        }
        Ok(info)
    }

    /// gst's `fill_planes` for `format` at `width` x `height`.
    pub(crate) fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        fps: Fraction,
    ) -> VideoInfo {
        use PixelFormat::*;
        let (w, h) = (width, height);
        let (stride, offset, size) = match format {
            I420 | Yv12 => {
                let s0 = round_up(w, 4);
                let s1 = round_up(round_up(w, 2) / 2, 4);
                let o1 = s0 * round_up(h, 2);
                let o2 = o1 + s1 * (round_up(h, 2) / 2);
                ([s0, s1, s1], [0, o1, o2], o2 + s1 * (round_up(h, 2) / 2))
            }
            Nv12 => {
                let s0 = round_up(w, 4);
                let o1 = s0 * round_up(h, 2);
                ([s0, s0, 0], [0, o1, 0], o1 + s0 * round_up(h, 2) / 2)
            }
            Yuy2 | Uyvy => {
                let s = round_up(round_up(w, 2) * 2, 4);
                ([s, 0, 0], [0; 3], s * h)
            }
            Rgb3(_) => {
                let s = round_up(w * 3, 4);
                ([s, 0, 0], [0; 3], s * h)
            }
            Rgb4(..) => ([w * 4, 0, 0], [0; 3], w * 4 * h),
            Gray8 => {
                let s = round_up(w, 4);
                ([s, 0, 0], [0; 3], s * h)
            }
            Gray16Le => {
                let s = round_up(w * 2, 4);
                ([s, 0, 0], [0; 3], s * h)
            }
        };
        VideoInfo {
            format,
            matrix: Matrix::default_for(height),
            width,
            height,
            fps,
            stride,
            offset,
            size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(format: &str, w: usize, h: usize) -> VideoInfo {
        VideoInfo::new(
            PixelFormat::parse(format).unwrap(),
            w,
            h,
            Fraction { num: 30, den: 1 },
        )
    }

    #[test]
    fn layouts_match_gst_video_info() {
        // Values from gst_video_info_set_format for the same formats and sizes.
        let i = info("I420", 320, 240);
        assert_eq!(
            (i.stride, i.offset, i.size),
            ([320, 160, 160], [0, 76800, 96000], 115200)
        );
        let i = info("I420", 321, 241);
        assert_eq!(
            (i.stride, i.offset, i.size),
            ([324, 164, 164], [0, 78408, 98252], 118096)
        );
        let i = info("NV12", 1920, 1080);
        assert_eq!((i.stride[0], i.offset[1], i.size), (1920, 2073600, 3110400));
        assert_eq!(info("YUY2", 321, 2).stride[0], 644);
        assert_eq!(info("RGB", 321, 1).size, 964);
        assert_eq!(info("BGRx", 1920, 1080).size, 8294400);
        assert_eq!(info("GRAY16_LE", 3, 3).size, 24);
    }
}
