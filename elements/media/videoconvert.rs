//! `videoconvert`: pixel format conversion between every format [`PixelFormat`] knows, with
//! gst's defaults (limited-range YUV, BT.601 up to 576 lines and BT.709 above, full-range RGB).
//!
//! YUV and RGB meet through `yuvutils-rs` (SIMD); chroma repacking between YUV layouts, grey
//! and RGB byte orders are plain loops. A conversion takes at most two steps: YUV to YUV goes
//! through planar 4:2:0, an RGB byte order yuvutils does not write (ARGB, ABGR and their x
//! forms) through RGBA or BGRA rotated in place.

use super::{
    format_list, negotiated_or, prefer, Frames, Matrix, PixelFormat, VideoInfo, VIDEO_CAPS,
};
use crate::element::prelude::*;
use yuvutils_rs::{
    BufferStoreMut, YuvBiPlanarImage, YuvBiPlanarImageMut, YuvConversionMode, YuvPackedImage,
    YuvPackedImageMut, YuvPlanarImage, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
};

// --- videoconvert --------------------------------------------------------------------------

/// The format is free both ways; forward, the input's comes first so that fixation keeps it
/// (passthrough) unless downstream asks for another (gst's videoconvert transform_caps).
static VIDEOCONVERT_CAPS: CapsFns = CapsFns {
    forward: |input, _| free_format(input, true),
    backward: |down, _| free_format(down, false),
    fixate: |caps, _| caps.fixate(),
};

fn free_format(caps: &Caps, prefer_fixed: bool) -> Caps {
    let template = Caps::parse(VIDEO_CAPS).expect("the template parses");
    if caps.is_any() {
        return template;
    }
    let mut out = caps.clone();
    for s in out.structures_mut() {
        let fixed = s.get("format").cloned().filter(|_| prefer_fixed);
        s.set("format", prefer(fixed, format_list()));
        s.remove("colorimetry");
        s.remove("chroma-site");
    }
    out.intersect(&template)
}

pub(crate) static VIDEOCONVERT: Factory = Factory {
    name: "videoconvert",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Converts video from one colorspace to another",
    doc: "Converts between the raw video formats I420, YV12, NV12, YUY2, UYVY, RGB, BGR, RGBA, \
          BGRA, ARGB, ABGR, RGBx, BGRx, xRGB, xBGR, GRAY8 and GRAY16_LE, to the format caps \
          downstream ask for (the input's when they leave it free: buffers then pass \
          untouched). YUV is limited range with gst's default matrix: BT.601 up to 576 lines, \
          BT.709 above (or what a `colorimetry` field says); RGB is full range; grey takes Y \
          from YUV and full-range luma from RGB, as gst does. Size and framerate pass \
          unchanged (videoscale and videorate change those). Colour arithmetic is yuvutils-rs \
          (SIMD); chroma is downsampled by averaging and upsampled bilinearly. Output frames \
          have gst's strides, plane offsets and sizes.",
    pads: Pads::ONE_TO_ONE
        .with_caps(VIDEO_CAPS, VIDEO_CAPS)
        .with_rule(CapsRule::Derived(&VIDEOCONVERT_CAPS)),
    props: &[
        PropSpec::enumeration(
            "dither",
            "bayer",
            DITHER,
            "Apply dithering while converting",
        )
        .ignored("8-bit conversions are rounded, not dithered"),
        PropSpec::enumeration(
            "chroma-resampler",
            "linear",
            RESAMPLERS,
            "Chroma resampler method",
        )
        .ignored("chroma is always resampled linearly"),
        PropSpec::uint(
            "n-threads",
            1,
            0,
            u32::MAX as u64,
            "Maximum number of threads to use",
        )
        .ignored("each conversion runs on the element's thread"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let from = VideoInfo::from_caps(&negotiated_or(p.sink_caps(), VIDEO_CAPS), p.instance())?;
        let to = VideoInfo::from_caps(&negotiated_or(p.src_caps(), VIDEO_CAPS), p.instance())?;
        if (from.width, from.height) != (to.width, to.height) {
            return Err(ElementError::Config(format!(
                "{}: videoconvert keeps the size ({}x{}), but {}x{} is asked for: put videoscale next to it",
                p.instance(),
                from.width,
                from.height,
                to.width,
                to.height
            )));
        }
        Ok(ElementImpl::Transform(Box::new(VideoConvert {
            frames: Frames::new(p.instance(), to.size),
            converter: Converter::new(from, to),
        })))
    },
};

const DITHER: &[EnumValue] = &[
    EnumValue {
        nick: "none",
        value: 0,
        doc: "GST_VIDEO_DITHER_NONE",
    },
    EnumValue {
        nick: "verterr",
        value: 1,
        doc: "GST_VIDEO_DITHER_VERTERR",
    },
    EnumValue {
        nick: "floyd-steinberg",
        value: 2,
        doc: "GST_VIDEO_DITHER_FLOYD_STEINBERG",
    },
    EnumValue {
        nick: "sierra-lite",
        value: 3,
        doc: "GST_VIDEO_DITHER_SIERRA_LITE",
    },
    EnumValue {
        nick: "bayer",
        value: 4,
        doc: "GST_VIDEO_DITHER_BAYER",
    },
];

const RESAMPLERS: &[EnumValue] = &[
    EnumValue {
        nick: "nearest",
        value: 0,
        doc: "GST_VIDEO_RESAMPLER_METHOD_NEAREST",
    },
    EnumValue {
        nick: "linear",
        value: 1,
        doc: "GST_VIDEO_RESAMPLER_METHOD_LINEAR",
    },
    EnumValue {
        nick: "cubic",
        value: 2,
        doc: "GST_VIDEO_RESAMPLER_METHOD_CUBIC",
    },
    EnumValue {
        nick: "sinc",
        value: 3,
        doc: "GST_VIDEO_RESAMPLER_METHOD_SINC",
    },
    EnumValue {
        nick: "lanczos",
        value: 4,
        doc: "GST_VIDEO_RESAMPLER_METHOD_LANCZOS",
    },
];

/// videoconvert's state: the conversion and the frames it writes into.
struct VideoConvert {
    converter: Converter,
    frames: Frames,
}

impl Transform for VideoConvert {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.converter.is_passthrough() {
            return Ok(Flow::Push(buf));
        }
        let need = self.converter.from.size;
        if buf.len() < need {
            return Err(ElementError::Failed(format!(
                "a frame of {} bytes is shorter than the {need} its caps say",
                buf.len()
            )));
        }
        let converter = &mut self.converter;
        let mut out = self.frames.make(|dst| converter.convert(buf.data(), dst))?;
        out.meta = buf.meta.clone();
        Ok(Flow::Push(out))
    }
}

// --- the conversion --------------------------------------------------------------------------

/// The RGB byte orders yuvutils reads and writes; `rotated` says the alpha (or padding) byte
/// comes first (ARGB from RGBA, ABGR from BGRA, each pixel rotated by one byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packing {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RgbLayout {
    packing: Packing,
    rotated: bool,
}

fn rgb_layout(format: PixelFormat) -> Option<RgbLayout> {
    let (packing, rotated) = match format {
        PixelFormat::Rgb3([0, 1, 2]) => (Packing::Rgb, false),
        PixelFormat::Rgb3(_) => (Packing::Bgr, false),
        PixelFormat::Rgb4([0, 1, 2], 3) => (Packing::Rgba, false),
        PixelFormat::Rgb4([2, 1, 0], 3) => (Packing::Bgra, false),
        PixelFormat::Rgb4([1, 2, 3], 0) => (Packing::Rgba, true),
        PixelFormat::Rgb4(_, _) => (Packing::Bgra, true),
        _ => return None,
    };
    Some(RgbLayout { packing, rotated })
}

fn yuv_matrix(m: Matrix) -> YuvStandardMatrix {
    match m {
        Matrix::Bt601 => YuvStandardMatrix::Bt601,
        Matrix::Bt709 => YuvStandardMatrix::Bt709,
        Matrix::Bt2020 => YuvStandardMatrix::Bt2020,
    }
}

fn failed(e: impl std::fmt::Display) -> ElementError {
    ElementError::Failed(format!("converting a frame: {e}"))
}

/// One conversion between two fixed formats of the same size.
pub(crate) struct Converter {
    pub(crate) from: VideoInfo,
    pub(crate) to: VideoInfo,
    /// Planar 4:2:0 or rotated RGB between two steps.
    scratch: Vec<u8>,
    /// Planar 4:2:2 on the way to YUY2 and UYVY.
    planar422: Vec<u8>,
}

impl Converter {
    pub(crate) fn new(from: VideoInfo, to: VideoInfo) -> Converter {
        Converter {
            from,
            to,
            scratch: Vec::new(),
            planar422: Vec::new(),
        }
    }

    /// Whether frames pass as they are.
    pub(crate) fn is_passthrough(&self) -> bool {
        self.from.format == self.to.format
            && (self.from.matrix == self.to.matrix || !self.from.format.is_yuv())
    }

    /// Converts one frame: `src` in `from`'s layout, `dst` (every byte written) in `to`'s.
    pub(crate) fn convert(&mut self, src: &[u8], dst: &mut [u8]) -> Result<(), ElementError> {
        let (from, to) = (&self.from, &self.to);
        let matrix = yuv_matrix(to.matrix);
        if from.format == to.format {
            dst.copy_from_slice(&src[..dst.len()]);
            return Ok(());
        }
        match (rgb_layout(from.format), rgb_layout(to.format)) {
            (Some(a), Some(b)) => {
                rgb_to_rgb(from, a, src, to, b, dst);
                Ok(())
            }
            (None, Some(b)) => {
                if is_gray(from.format) {
                    gray_to_rgb(from, src, to, dst);
                    return Ok(());
                }
                let stride = to.stride[0] as u32;
                let matrix = yuv_matrix(from.matrix);
                if nv12_padded(from) {
                    let i420 = VideoInfo::new(PixelFormat::I420, from.width, from.height, from.fps);
                    let mut planar = std::mem::take(&mut self.scratch);
                    planar.resize(i420.size, 0);
                    yuv_to_yuv(from, src, &i420, &mut planar, &mut self.planar422)?;
                    yuv_to_rgb(&i420, &planar, b.packing, dst, stride, matrix)?;
                    self.scratch = planar;
                } else {
                    yuv_to_rgb(from, src, b.packing, dst, stride, matrix)?;
                }
                if b.rotated {
                    rotate_pixels(to, dst, true);
                }
                Ok(())
            }
            (Some(a), None) => {
                if is_gray(to.format) {
                    rgb_to_gray(from, a, src, to, dst);
                    return Ok(());
                }
                let (data, stride) = if a.rotated {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(&src[..from.size]);
                    rotate_pixels(from, &mut self.scratch, false);
                    (&self.scratch[..], from.stride[0])
                } else {
                    (src, from.stride[0])
                };
                let tmp = &mut self.planar422;
                if nv12_padded(to) {
                    let i420 = VideoInfo::new(PixelFormat::I420, to.width, to.height, to.fps);
                    let mut planar = vec![0; i420.size];
                    rgb_to_yuv(
                        a.packing,
                        data,
                        stride as u32,
                        &i420,
                        &mut planar,
                        matrix,
                        tmp,
                    )?;
                    return from_planar(&i420, &planar, to, dst);
                }
                rgb_to_yuv(a.packing, data, stride as u32, to, dst, matrix, tmp)
            }
            (None, None) => yuv_to_yuv(from, src, to, dst, &mut self.scratch),
        }
    }
}

/// NV12 whose chroma rows are longer than the chroma (a width that is not a multiple of 4):
/// yuvutils 0.8 refuses such planes, so they go through planar 4:2:0.
fn nv12_padded(info: &VideoInfo) -> bool {
    info.format == PixelFormat::Nv12 && info.stride[1] != info.width.div_ceil(2) * 2
}

fn is_gray(f: PixelFormat) -> bool {
    matches!(f, PixelFormat::Gray8 | PixelFormat::Gray16Le)
}

/// The planes of a planar 4:2:0 frame as Y, U, V, whichever order they are stored in.
fn planar_view<'a>(info: &VideoInfo, data: &'a [u8]) -> YuvPlanarImage<'a, u8> {
    let (pu, pv, su, sv) = if info.format == PixelFormat::Yv12 {
        (
            info.offset[2],
            info.offset[1],
            info.stride[2],
            info.stride[1],
        )
    } else {
        (
            info.offset[1],
            info.offset[2],
            info.stride[1],
            info.stride[2],
        )
    };
    let chroma_len = su * info.height.div_ceil(2);
    YuvPlanarImage {
        y_plane: &data[..info.stride[0] * info.height],
        y_stride: info.stride[0] as u32,
        u_plane: &data[pu..pu + chroma_len],
        u_stride: su as u32,
        v_plane: &data[pv..pv + chroma_len],
        v_stride: sv as u32,
        width: info.width as u32,
        height: info.height as u32,
    }
}

/// The Y, U and V planes of a planar 4:2:0 `dst`, writable.
fn planar_mut<'a>(info: &VideoInfo, dst: &'a mut [u8]) -> YuvPlanarImageMut<'a, u8> {
    let (o1, o2) = (info.offset[1], info.offset[2]);
    let (y, rest) = dst.split_at_mut(o1);
    let (p1, p2) = rest.split_at_mut(o2 - o1);
    let (u, v, su, sv) = if info.format == PixelFormat::Yv12 {
        (p2, p1, info.stride[2], info.stride[1])
    } else {
        (p1, p2, info.stride[1], info.stride[2])
    };
    // yuvutils wants planes of exactly their rows (an odd height's last row is its own).
    let ch = info.height.div_ceil(2);
    let (y, u, v) = (
        &mut y[..info.stride[0] * info.height],
        &mut u[..su * ch],
        &mut v[..sv * ch],
    );
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: info.stride[0] as u32,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: su as u32,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: sv as u32,
        width: info.width as u32,
        height: info.height as u32,
    }
}

/// Writes `src` (any YUV format but grey) as packed RGB into `dst`.
fn yuv_to_rgb(
    from: &VideoInfo,
    src: &[u8],
    packing: Packing,
    dst: &mut [u8],
    stride: u32,
    matrix: YuvStandardMatrix,
) -> Result<(), ElementError> {
    use yuvutils_rs as y;
    let r = YuvRange::Limited;
    let mode = YuvConversionMode::Balanced;
    let (w, h) = (from.width as u32, from.height as u32);
    match from.format {
        PixelFormat::I420 | PixelFormat::Yv12 => {
            let img = planar_view(from, src);
            match packing {
                Packing::Rgb => y::yuv420_to_rgb(&img, dst, stride, r, matrix),
                Packing::Bgr => y::yuv420_to_bgr(&img, dst, stride, r, matrix),
                Packing::Rgba => y::yuv420_to_rgba(&img, dst, stride, r, matrix),
                Packing::Bgra => y::yuv420_to_bgra(&img, dst, stride, r, matrix),
            }
        }
        PixelFormat::Nv12 => {
            let img = YuvBiPlanarImage {
                y_plane: &src[..from.stride[0] * from.height],
                y_stride: from.stride[0] as u32,
                uv_plane: &src
                    [from.offset[1]..from.offset[1] + from.stride[1] * from.height.div_ceil(2)],
                uv_stride: from.stride[1] as u32,
                width: w,
                height: h,
            };
            match packing {
                Packing::Rgb => y::yuv_nv12_to_rgb(&img, dst, stride, r, matrix, mode),
                Packing::Bgr => y::yuv_nv12_to_bgr(&img, dst, stride, r, matrix, mode),
                Packing::Rgba => y::yuv_nv12_to_rgba(&img, dst, stride, r, matrix, mode),
                Packing::Bgra => y::yuv_nv12_to_bgra(&img, dst, stride, r, matrix, mode),
            }
        }
        PixelFormat::Yuy2 | PixelFormat::Uyvy => {
            let img = YuvPackedImage {
                yuy: &src[..from.stride[0] * from.height],
                yuy_stride: from.stride[0] as u32,
                width: w,
                height: h,
            };
            match (from.format == PixelFormat::Yuy2, packing) {
                (true, Packing::Rgb) => y::yuyv422_to_rgb(&img, dst, stride, r, matrix),
                (true, Packing::Bgr) => y::yuyv422_to_bgr(&img, dst, stride, r, matrix),
                (true, Packing::Rgba) => y::yuyv422_to_rgba(&img, dst, stride, r, matrix),
                (true, Packing::Bgra) => y::yuyv422_to_bgra(&img, dst, stride, r, matrix),
                (false, Packing::Rgb) => y::uyvy422_to_rgb(&img, dst, stride, r, matrix),
                (false, Packing::Bgr) => y::uyvy422_to_bgr(&img, dst, stride, r, matrix),
                (false, Packing::Rgba) => y::uyvy422_to_rgba(&img, dst, stride, r, matrix),
                (false, Packing::Bgra) => y::uyvy422_to_bgra(&img, dst, stride, r, matrix),
            }
        }
        _ => unreachable!("grey and RGB are handled before"),
    }
    .map_err(failed)
}

/// Writes packed RGB `src` as `to` (any YUV format but grey) into `dst`.
fn rgb_to_yuv(
    packing: Packing,
    src: &[u8],
    stride: u32,
    to: &VideoInfo,
    dst: &mut [u8],
    matrix: YuvStandardMatrix,
    tmp: &mut Vec<u8>,
) -> Result<(), ElementError> {
    use yuvutils_rs as y;
    let r = YuvRange::Limited;
    let mode = YuvConversionMode::Balanced;
    let (w, h) = (to.width as u32, to.height as u32);
    match to.format {
        PixelFormat::I420 | PixelFormat::Yv12 => {
            let mut img = planar_mut(to, dst);
            match packing {
                Packing::Rgb => y::rgb_to_yuv420(&mut img, src, stride, r, matrix, mode),
                Packing::Bgr => y::bgr_to_yuv420(&mut img, src, stride, r, matrix, mode),
                Packing::Rgba => y::rgba_to_yuv420(&mut img, src, stride, r, matrix, mode),
                Packing::Bgra => y::bgra_to_yuv420(&mut img, src, stride, r, matrix, mode),
            }
            .map_err(failed)
        }
        PixelFormat::Nv12 => {
            let (yp, uv) = dst.split_at_mut(to.offset[1]);
            let yp = &mut yp[..to.stride[0] * to.height];
            let uv = &mut uv[..to.stride[1] * to.height.div_ceil(2)];
            let mut img = YuvBiPlanarImageMut {
                y_plane: BufferStoreMut::Borrowed(yp),
                y_stride: to.stride[0] as u32,
                uv_plane: BufferStoreMut::Borrowed(uv),
                uv_stride: to.stride[1] as u32,
                width: w,
                height: h,
            };
            match packing {
                Packing::Rgb => y::rgb_to_yuv_nv12(&mut img, src, stride, r, matrix, mode),
                Packing::Bgr => y::bgr_to_yuv_nv12(&mut img, src, stride, r, matrix, mode),
                Packing::Rgba => y::rgba_to_yuv_nv12(&mut img, src, stride, r, matrix, mode),
                Packing::Bgra => y::bgra_to_yuv_nv12(&mut img, src, stride, r, matrix, mode),
            }
            .map_err(failed)
        }
        PixelFormat::Yuy2 | PixelFormat::Uyvy => {
            // Through planar 4:2:2, then packed.
            let cw = to.width.div_ceil(2);
            let (ys, cs) = (to.width, cw);
            tmp.resize(ys * to.height + 2 * cs * to.height, 0);
            let (yp, rest) = tmp.split_at_mut(ys * to.height);
            let (u, v) = rest.split_at_mut(cs * to.height);
            let mut img = YuvPlanarImageMut {
                y_plane: BufferStoreMut::Borrowed(yp),
                y_stride: ys as u32,
                u_plane: BufferStoreMut::Borrowed(u),
                u_stride: cs as u32,
                v_plane: BufferStoreMut::Borrowed(v),
                v_stride: cs as u32,
                width: w,
                height: h,
            };
            match packing {
                Packing::Rgb => y::rgb_to_yuv422(&mut img, src, stride, r, matrix, mode),
                Packing::Bgr => y::bgr_to_yuv422(&mut img, src, stride, r, matrix, mode),
                Packing::Rgba => y::rgba_to_yuv422(&mut img, src, stride, r, matrix, mode),
                Packing::Bgra => y::bgra_to_yuv422(&mut img, src, stride, r, matrix, mode),
            }
            .map_err(failed)?;
            let view = YuvPlanarImage {
                y_plane: &tmp[..ys * to.height],
                y_stride: ys as u32,
                u_plane: &tmp[ys * to.height..ys * to.height + cs * to.height],
                u_stride: cs as u32,
                v_plane: &tmp[ys * to.height + cs * to.height..],
                v_stride: cs as u32,
                width: w,
                height: h,
            };
            let mut packed = YuvPackedImageMut {
                yuy: BufferStoreMut::Borrowed(&mut dst[..to.stride[0] * to.height]),
                yuy_stride: to.stride[0] as u32,
                width: w,
                height: h,
            };
            if to.format == PixelFormat::Yuy2 {
                y::yuv422_to_yuyv422(&mut packed, &view)
            } else {
                y::yuv422_to_uyvy422(&mut packed, &view)
            }
            .map_err(failed)
        }
        _ => unreachable!("grey and RGB are handled before"),
    }
}

/// YUV to YUV (grey included), through planar 4:2:0 where the layouts differ.
fn yuv_to_yuv(
    from: &VideoInfo,
    src: &[u8],
    to: &VideoInfo,
    dst: &mut [u8],
    scratch: &mut Vec<u8>,
) -> Result<(), ElementError> {
    use yuvutils_rs as y;
    let (w, h) = (from.width, from.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    // 1. `src` as planar 4:2:0 (tightly packed in `scratch` unless it already is one).
    let i420 = VideoInfo::new(PixelFormat::I420, w, h, from.fps);
    let planar: &[u8] = match from.format {
        // Planar already: the target is written straight from it.
        PixelFormat::I420 | PixelFormat::Yv12 => return from_planar(from, src, to, dst),
        PixelFormat::Nv12 => {
            scratch.resize(i420.size, 0);
            for row in 0..h {
                let s = &src[row * from.stride[0]..][..w];
                scratch[row * i420.stride[0]..][..w].copy_from_slice(s);
            }
            for row in 0..ch {
                let s = &src[from.offset[1] + row * from.stride[1]..][..cw * 2];
                for x in 0..cw {
                    scratch[i420.offset[1] + row * i420.stride[1] + x] = s[2 * x];
                    scratch[i420.offset[2] + row * i420.stride[2] + x] = s[2 * x + 1];
                }
            }
            scratch
        }
        PixelFormat::Yuy2 | PixelFormat::Uyvy => {
            scratch.resize(i420.size, 0);
            let packed = YuvPackedImage {
                yuy: &src[..from.stride[0] * h],
                yuy_stride: from.stride[0] as u32,
                width: w as u32,
                height: h as u32,
            };
            let mut img = planar_mut(&i420, scratch);
            if from.format == PixelFormat::Yuy2 {
                y::yuyv422_to_yuv420(&mut img, &packed)
            } else {
                y::uyvy422_to_yuv420(&mut img, &packed)
            }
            .map_err(failed)?;
            scratch
        }
        PixelFormat::Gray8 | PixelFormat::Gray16Le => {
            scratch.resize(i420.size, 128);
            scratch[i420.offset[1]..].fill(128);
            for row in 0..h {
                let d = &mut scratch[row * i420.stride[0]..][..w];
                let s = &src[row * from.stride[0]..];
                if from.format == PixelFormat::Gray8 {
                    d.copy_from_slice(&s[..w]);
                } else {
                    for (x, o) in d.iter_mut().enumerate() {
                        *o = s[2 * x + 1];
                    }
                }
            }
            scratch
        }
        _ => unreachable!("RGB is handled before"),
    };
    from_planar(&i420, planar, to, dst)
}

/// Writes planar 4:2:0 `src` (laid out as `from`) as `to` (YUV or grey).
fn from_planar(
    from: &VideoInfo,
    src: &[u8],
    to: &VideoInfo,
    dst: &mut [u8],
) -> Result<(), ElementError> {
    use yuvutils_rs as y;
    let (w, h) = (from.width, from.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let view = planar_view(from, src);
    let copy_rows = |dst: &mut [u8], ds: usize, src: &[u8], ss: usize, rows: usize, len: usize| {
        for row in 0..rows {
            dst[row * ds..][..len].copy_from_slice(&src[row * ss..][..len]);
        }
    };
    match to.format {
        PixelFormat::I420 | PixelFormat::Yv12 => {
            let mut img = planar_mut(to, dst);
            let (ys, us, vs) = (img.y_stride, img.u_stride, img.v_stride);
            copy_rows(
                img.y_plane.borrow_mut(),
                ys as usize,
                view.y_plane,
                view.y_stride as usize,
                h,
                w,
            );
            copy_rows(
                img.u_plane.borrow_mut(),
                us as usize,
                view.u_plane,
                view.u_stride as usize,
                ch,
                cw,
            );
            copy_rows(
                img.v_plane.borrow_mut(),
                vs as usize,
                view.v_plane,
                view.v_stride as usize,
                ch,
                cw,
            );
            Ok(())
        }
        PixelFormat::Nv12 => {
            copy_rows(
                dst,
                to.stride[0],
                view.y_plane,
                view.y_stride as usize,
                h,
                w,
            );
            for row in 0..ch {
                let d = &mut dst[to.offset[1] + row * to.stride[1]..][..cw * 2];
                let u = &view.u_plane[row * view.u_stride as usize..][..cw];
                let v = &view.v_plane[row * view.v_stride as usize..][..cw];
                for x in 0..cw {
                    d[2 * x] = u[x];
                    d[2 * x + 1] = v[x];
                }
            }
            Ok(())
        }
        PixelFormat::Yuy2 | PixelFormat::Uyvy => {
            let mut packed = YuvPackedImageMut {
                yuy: BufferStoreMut::Borrowed(&mut dst[..to.stride[0] * h]),
                yuy_stride: to.stride[0] as u32,
                width: w as u32,
                height: h as u32,
            };
            if to.format == PixelFormat::Yuy2 {
                y::yuv420_to_yuyv422(&mut packed, &view)
            } else {
                y::yuv420_to_uyvy422(&mut packed, &view)
            }
            .map_err(failed)
        }
        PixelFormat::Gray8 => {
            copy_rows(
                dst,
                to.stride[0],
                view.y_plane,
                view.y_stride as usize,
                h,
                w,
            );
            Ok(())
        }
        PixelFormat::Gray16Le => {
            for row in 0..h {
                let s = &view.y_plane[row * view.y_stride as usize..][..w];
                let d = &mut dst[row * to.stride[0]..][..2 * w];
                for (x, &v) in s.iter().enumerate() {
                    d[2 * x..2 * x + 2].copy_from_slice(&(v as u16 * 257).to_le_bytes());
                }
            }
            Ok(())
        }
        _ => unreachable!("RGB is handled before"),
    }
}

/// The (R, G, B, alpha) byte positions of a packed RGB format; alpha is `None` for 3 bytes.
fn positions(f: PixelFormat) -> ([usize; 3], Option<usize>, usize) {
    match f {
        PixelFormat::Rgb3(o) => (o, None, 3),
        PixelFormat::Rgb4(o, a) => (o, Some(a), 4),
        _ => unreachable!("only RGB formats have RGB positions"),
    }
}

fn rgb_to_rgb(
    from: &VideoInfo,
    _: RgbLayout,
    src: &[u8],
    to: &VideoInfo,
    _: RgbLayout,
    dst: &mut [u8],
) {
    let (si, sa, sb) = positions(from.format);
    let (di, da, db) = positions(to.format);
    for row in 0..from.height {
        let s = &src[row * from.stride[0]..][..from.width * sb];
        let d = &mut dst[row * to.stride[0]..][..to.width * db];
        for (sp, dp) in s.chunks_exact(sb).zip(d.chunks_exact_mut(db)) {
            for c in 0..3 {
                dp[di[c]] = sp[si[c]];
            }
            if let Some(a) = da {
                dp[a] = sa.map_or(255, |a| sp[a]);
            }
        }
    }
}

/// Rotates every 4-byte pixel of `data` by one byte: RGBA to ARGB (`forward`) or back.
fn rotate_pixels(info: &VideoInfo, data: &mut [u8], forward: bool) {
    for row in 0..info.height {
        let line = &mut data[row * info.stride[0]..][..info.width * 4];
        for px in line.chunks_exact_mut(4) {
            let v = u32::from_le_bytes([px[0], px[1], px[2], px[3]]);
            let v = if forward {
                v.rotate_left(8)
            } else {
                v.rotate_right(8)
            };
            px.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// Grey is full-range luma next to RGB (gst's GRAY colorimetry): R = G = B = grey.
fn gray_to_rgb(from: &VideoInfo, src: &[u8], to: &VideoInfo, dst: &mut [u8]) {
    let (di, da, db) = positions(to.format);
    for row in 0..from.height {
        let s = &src[row * from.stride[0]..];
        let d = &mut dst[row * to.stride[0]..][..to.width * db];
        for (x, dp) in d.chunks_exact_mut(db).enumerate() {
            let g = if from.format == PixelFormat::Gray8 {
                s[x]
            } else {
                s[2 * x + 1]
            };
            for c in di {
                dp[c] = g;
            }
            if let Some(a) = da {
                dp[a] = 255;
            }
        }
    }
}

/// Full-range luma of RGB with the stream's matrix coefficients.
fn rgb_to_gray(from: &VideoInfo, _: RgbLayout, src: &[u8], to: &VideoInfo, dst: &mut [u8]) {
    let (si, _, sb) = positions(from.format);
    let (kr, kb) = to.matrix.kr_kb();
    // 16-bit fixed point weights.
    let (wr, wb) = ((kr * 65536.0).round() as u32, (kb * 65536.0).round() as u32);
    let wg = 65536 - wr - wb;
    for row in 0..from.height {
        let s = &src[row * from.stride[0]..][..from.width * sb];
        let d = &mut dst[row * to.stride[0]..];
        for (x, sp) in s.chunks_exact(sb).enumerate() {
            let l = wr * sp[si[0]] as u32 + wg * sp[si[1]] as u32 + wb * sp[si[2]] as u32;
            if to.format == PixelFormat::Gray8 {
                d[x] = ((l + 32768) >> 16) as u8;
            } else {
                let v = ((l as u64 * 257 + 32768) >> 16) as u16;
                d[2 * x..2 * x + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&VIDEOCONVERT];

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 17] = [
        "I420",
        "YV12",
        "NV12",
        "YUY2",
        "UYVY",
        "RGB",
        "BGR",
        "RGBA",
        "BGRA",
        "ARGB",
        "ABGR",
        "RGBx",
        "BGRx",
        "xRGB",
        "xBGR",
        "GRAY8",
        "GRAY16_LE",
    ];

    fn info(format: &str, w: usize, h: usize) -> VideoInfo {
        VideoInfo::new(
            PixelFormat::parse(format).unwrap(),
            w,
            h,
            Fraction { num: 30, den: 1 },
        )
    }

    /// An RGB frame with a smooth gradient (so 4:2:0 loses little).
    fn gradient(w: usize, h: usize) -> (VideoInfo, Vec<u8>) {
        let i = info("RGB", w, h);
        let mut f = vec![0; i.size];
        for y in 0..h {
            for x in 0..w {
                let at = y * i.stride[0] + x * 3;
                f[at] = (40 + x * 64 / w) as u8;
                f[at + 1] = (60 + y * 32 / h) as u8;
                f[at + 2] = (200 - (x + y) * 48 / (w + h)) as u8;
            }
        }
        (i, f)
    }

    fn convert(from: &VideoInfo, src: &[u8], to: &VideoInfo) -> Vec<u8> {
        let mut out = vec![0; to.size];
        Converter::new(from.clone(), to.clone())
            .convert(src, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_pair_round_trips_through_every_format() {
        // RGB -> X -> RGB stays close for every X but grey (which drops colour).
        for (w, h) in [(32, 16), (33, 17)] {
            let (rgb, src) = gradient(w, h);
            for name in ALL {
                let mid = info(name, w, h);
                let there = convert(&rgb, &src, &mid);
                assert_eq!(there.len(), mid.size, "{name}");
                let back = convert(&mid, &there, &rgb);
                if name.starts_with("GRAY") {
                    continue;
                }
                let mut worst = 0;
                for y in 0..h {
                    for x in 0..w * 3 {
                        let at = y * rgb.stride[0] + x;
                        worst = worst.max((back[at] as i32 - src[at] as i32).abs());
                    }
                }
                assert!(worst <= 4, "{name} at {w}x{h}: off by {worst}");
            }
        }
    }

    #[test]
    fn yuv_to_yuv_pairs_keep_the_planes() {
        let (rgb, src) = gradient(16, 8);
        let i420 = convert(&rgb, &src, &info("I420", 16, 8));
        let from = info("I420", 16, 8);
        for name in ["YV12", "NV12", "YUY2", "UYVY"] {
            let mid = info(name, 16, 8);
            let there = convert(&from, &i420, &mid);
            let back = convert(&mid, &there, &from);
            // Luma is carried exactly; 4:2:2 chroma goes back to 4:2:0 by averaging rows.
            assert_eq!(back[..128], i420[..128], "{name}");
            for (a, b) in back[128..].iter().zip(&i420[128..]) {
                assert!((*a as i32 - *b as i32).abs() <= 2, "{name}");
            }
        }
    }

    #[test]
    fn gray_takes_luma_as_gst_does() {
        // gst: I420 red (Y 81) to GRAY8 is 81; RGB red to GRAY8 is 76; GRAY8 235 to RGB 235.
        let i420 = info("I420", 4, 2);
        let red = [81u8, 81, 81, 81, 81, 81, 81, 81, 90, 90, 240, 240];
        let mut src = vec![0; i420.size];
        src[..8].copy_from_slice(&red[..8]);
        src[8..10].copy_from_slice(&[90, 90]);
        src[12..14].copy_from_slice(&[240, 240]);
        assert_eq!(convert(&i420, &src, &info("GRAY8", 4, 2)), [81; 8]);
        let rgb = info("RGB", 4, 2);
        let red_rgb: Vec<u8> = [255, 0, 0].repeat(8);
        assert_eq!(convert(&rgb, &red_rgb, &info("GRAY8", 4, 2)), [76; 8]);
        let gray = info("GRAY8", 4, 2);
        assert_eq!(convert(&gray, &[235; 8], &rgb), [235; 24]);
        let g16 = convert(&i420, &src, &info("GRAY16_LE", 4, 2));
        assert_eq!(g16, [0x51; 16]);
    }

    #[test]
    fn alpha_first_orders_rotate() {
        let rgb = info("RGB", 2, 1);
        let px = [10u8, 20, 30, 40, 50, 60];
        let mut src = px.to_vec();
        src.resize(rgb.size, 0);
        assert_eq!(
            convert(&rgb, &src, &info("ARGB", 2, 1)),
            [255, 10, 20, 30, 255, 40, 50, 60]
        );
        assert_eq!(
            convert(&rgb, &src, &info("xBGR", 2, 1)),
            [255, 30, 20, 10, 255, 60, 50, 40]
        );
    }
}
