//! `videoscale`: resizes raw video with `fast_image_resize` (SIMD), plane by plane, in every
//! format the other video elements know.

use super::{negotiated_or, Frames, PixelFormat, VideoInfo, VIDEO_CAPS};
use crate::element::prelude::*;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

// --- videoscale ----------------------------------------------------------------------------

/// Width and height are free both ways. Forward, the input's come first so that fixation
/// keeps them unless downstream asks for others; when downstream fixes only one, the other
/// stays the input's, as in gst.
static VIDEOSCALE_CAPS: CapsFns = CapsFns {
    forward: |input, _| free_size(input, true),
    backward: |down, _| free_size(down, false),
    fixate: |caps, _| caps.fixate(),
};

fn free_size(caps: &Caps, prefer_fixed: bool) -> Caps {
    let template = Caps::parse(VIDEO_CAPS).expect("the template parses");
    if caps.is_any() {
        return template;
    }
    let mut out = caps.clone();
    for s in out.structures_mut() {
        for f in ["width", "height"] {
            let any = CapsValue::int_range(1, i32::MAX as i64, 1).expect("a range");
            let fixed = s.get(f).cloned().filter(|_| prefer_fixed);
            s.set(f, super::prefer(fixed, any));
        }
        s.remove("pixel-aspect-ratio");
    }
    out.intersect(&template)
}

pub(crate) static VIDEOSCALE: Factory = Factory {
    name: "videoscale",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Resizes video",
    doc: "Scales raw video to the width and height caps downstream ask for (the input's when \
          they leave them free: buffers then pass untouched; when they fix only one, the other \
          stays the input's, as in gst). Every plane is resized on its own with fast_image_resize \
          (SIMD): nearest-neighbour, bilinear (2-tap interpolation, the default), and the \
          multi-tap methods as convolutions (4-tap and catrom: Catmull-Rom, lanczos and sinc: \
          Lanczos3, bilinear2: bilinear, hermite: Hamming, spline: Gaussian, mitchell: \
          Mitchell). YUY2 and UYVY are scaled by macropixel (two pixels and their shared \
          chroma as one). With add-borders=true (the default), when caps downstream fix a \
          pixel-aspect-ratio that would distort the picture, it is scaled to fit and the rest \
          is filled with black; without one the picture is stretched (gst says so with a \
          pixel-aspect-ratio in its output caps; parallax's output caps carry none). Format and framerate pass unchanged.",
    pads: Pads::ONE_TO_ONE
        .with_caps(VIDEO_CAPS, VIDEO_CAPS)
        .with_rule(CapsRule::Derived(&VIDEOSCALE_CAPS)),
    props: &[
        PropSpec::enumeration("method", "bilinear", METHODS, "method"),
        PropSpec::bool(
            "add-borders",
            true,
            "Add black borders if necessary to keep the display aspect ratio",
        ),
        PropSpec::float("sharpness", 1.0, 0.5, 1.5, "Sharpness of filter")
            .ignored("the filters keep their own sharpness"),
        PropSpec::float("envelope", 2.0, 1.0, 5.0, "Size of filter envelope")
            .ignored("the filters keep their own envelope"),
        PropSpec::uint(
            "n-threads",
            1,
            0,
            u32::MAX as u64,
            "Maximum number of threads to use",
        )
        .ignored("each frame is scaled on the element's thread"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let sink = negotiated_or(p.sink_caps(), VIDEO_CAPS);
        let src = negotiated_or(p.src_caps(), VIDEO_CAPS);
        let from = VideoInfo::from_caps(&sink, p.instance())?;
        let to = VideoInfo::from_caps(&src, p.instance())?;
        if from.format != to.format {
            return Err(ElementError::Config(format!(
                "{}: videoscale keeps the format, but the caps ask it to change: put videoconvert next to it",
                p.instance()
            )));
        }
        let par = |c: &Caps| {
            c.first()
                .and_then(|s| s.fraction("pixel-aspect-ratio"))
                .filter(|f| f.num > 0 && f.den > 0)
        };
        // Where the picture goes in the output: all of it, unless borders keep the aspect.
        let mut area = (0, 0, to.width, to.height);
        if let (true, Some(out_par)) = (p.bool("add-borders")?, par(&src)) {
            let in_par = par(&sink).unwrap_or(Fraction { num: 1, den: 1 });
            // Display aspect ratios as exact fractions: w * par_n / (h * par_d).
            let in_dar = (from.width as u128 * in_par.num as u128)
                * (to.height as u128 * out_par.den as u128);
            let out_dar = (to.width as u128 * out_par.num as u128)
                * (from.height as u128 * in_par.den as u128);
            if in_dar > out_dar {
                // Wider than the output: bars above and below.
                let h = (to.height as u128 * out_dar / in_dar) as usize;
                let h = h.max(1) & !1;
                area = (0, ((to.height - h) / 2) & !1, to.width, h.max(1));
            } else if in_dar < out_dar {
                let w = (to.width as u128 * in_dar / out_dar) as usize;
                let w = w.max(1) & !1;
                area = (((to.width - w) / 2) & !1, 0, w.max(1), to.height);
            }
        }
        let alg = match p.nick("method")? {
            "nearest-neighbour" => ResizeAlg::Nearest,
            "bilinear" => ResizeAlg::Interpolation(FilterType::Bilinear),
            "bilinear2" => ResizeAlg::Convolution(FilterType::Bilinear),
            "4-tap" | "catrom" => ResizeAlg::Convolution(FilterType::CatmullRom),
            "hermite" => ResizeAlg::Convolution(FilterType::Hamming),
            "spline" => ResizeAlg::Convolution(FilterType::Gaussian),
            "mitchell" => ResizeAlg::Convolution(FilterType::Mitchell),
            _ => ResizeAlg::Convolution(FilterType::Lanczos3),
        };
        Ok(ElementImpl::Transform(Box::new(VideoScale {
            frames: Frames::new(p.instance(), to.size),
            scaler: Scaler::new(from, to, area, alg),
        })))
    },
};

const METHODS: &[EnumValue] = &[
    EnumValue {
        nick: "nearest-neighbour",
        value: 0,
        doc: "Nearest Neighbour",
    },
    EnumValue {
        nick: "bilinear",
        value: 1,
        doc: "Bilinear (2-tap)",
    },
    EnumValue {
        nick: "4-tap",
        value: 2,
        doc: "4-tap Sinc",
    },
    EnumValue {
        nick: "lanczos",
        value: 3,
        doc: "Lanczos",
    },
    EnumValue {
        nick: "bilinear2",
        value: 4,
        doc: "Bilinear (multi-tap)",
    },
    EnumValue {
        nick: "sinc",
        value: 5,
        doc: "Sinc (multi-tap)",
    },
    EnumValue {
        nick: "hermite",
        value: 6,
        doc: "Hermite (multi-tap)",
    },
    EnumValue {
        nick: "spline",
        value: 7,
        doc: "Spline (multi-tap)",
    },
    EnumValue {
        nick: "catrom",
        value: 8,
        doc: "Catmull-Rom (multi-tap)",
    },
    EnumValue {
        nick: "mitchell",
        value: 9,
        doc: "Mitchell (multi-tap)",
    },
];

/// videoscale's state.
struct VideoScale {
    scaler: Scaler,
    frames: Frames,
}

impl Transform for VideoScale {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.scaler.from == self.scaler.to {
            return Ok(Flow::Push(buf));
        }
        let need = self.scaler.from.size;
        if buf.len() < need {
            return Err(ElementError::Failed(format!(
                "a frame of {} bytes is shorter than the {need} its caps say",
                buf.len()
            )));
        }
        let scaler = &mut self.scaler;
        let mut out = self.frames.make(|dst| scaler.scale(buf.data(), dst))?;
        out.meta = buf.meta.clone();
        Ok(Flow::Push(out))
    }
}

/// One plane of a format: where it starts, its stride, how its pixels are grouped, and how
/// many pixels it has across and down for a frame of `w` x `h`.
#[derive(Debug, Clone, Copy)]
struct Plane {
    offset: usize,
    stride: usize,
    kind: PixelType,
    bytes: usize,
    /// Divisors of width and height (chroma subsampling, macropixels), rounding up.
    sub: (usize, usize),
    /// The value of black, per byte of a pixel.
    black: [u8; 4],
}

fn planes(info: &VideoInfo) -> Vec<Plane> {
    let p = |i: usize, kind, bytes, sub, black| Plane {
        offset: info.offset[i],
        stride: info.stride[i],
        kind,
        bytes,
        sub,
        black,
    };
    match info.format {
        PixelFormat::I420 | PixelFormat::Yv12 => vec![
            p(0, PixelType::U8, 1, (1, 1), [16; 4]),
            p(1, PixelType::U8, 1, (2, 2), [128; 4]),
            p(2, PixelType::U8, 1, (2, 2), [128; 4]),
        ],
        PixelFormat::Nv12 => vec![
            p(0, PixelType::U8, 1, (1, 1), [16; 4]),
            p(1, PixelType::U8x2, 2, (2, 2), [128; 4]),
        ],
        PixelFormat::Yuy2 => vec![p(0, PixelType::U8x4, 4, (2, 1), [16, 128, 16, 128])],
        PixelFormat::Uyvy => vec![p(0, PixelType::U8x4, 4, (2, 1), [128, 16, 128, 16])],
        PixelFormat::Rgb3(_) => vec![p(0, PixelType::U8x3, 3, (1, 1), [0; 4])],
        PixelFormat::Rgb4(_, a) => {
            let mut black = [0; 4];
            black[a] = 255;
            vec![p(0, PixelType::U8x4, 4, (1, 1), black)]
        }
        PixelFormat::Gray8 => vec![p(0, PixelType::U8, 1, (1, 1), [0; 4])],
        PixelFormat::Gray16Le => vec![p(0, PixelType::U16, 2, (1, 1), [0; 4])],
    }
}

/// Scales frames of one format from one size to another.
struct Scaler {
    from: VideoInfo,
    to: VideoInfo,
    /// Where the picture goes in the output (x, y, w, h); the rest is black.
    area: (usize, usize, usize, usize),
    options: ResizeOptions,
    resizer: Resizer,
    src_rows: Vec<u8>,
    dst_rows: Vec<u8>,
}

impl Scaler {
    fn new(
        from: VideoInfo,
        to: VideoInfo,
        area: (usize, usize, usize, usize),
        alg: ResizeAlg,
    ) -> Scaler {
        Scaler {
            from,
            to,
            area,
            options: ResizeOptions::new().resize_alg(alg).use_alpha(false),
            resizer: Resizer::new(),
            src_rows: Vec::new(),
            dst_rows: Vec::new(),
        }
    }

    fn scale(&mut self, src: &[u8], dst: &mut [u8]) -> Result<(), ElementError> {
        let fail =
            |e: &dyn std::fmt::Display| ElementError::Failed(format!("scaling a frame: {e}"));
        let (ax, ay, aw, ah) = self.area;
        let bordered = (aw, ah) != (self.to.width, self.to.height);
        for (sp, dp) in planes(&self.from).into_iter().zip(planes(&self.to)) {
            let (sw, sh) = (
                self.from.width.div_ceil(sp.sub.0),
                self.from.height.div_ceil(sp.sub.1),
            );
            let (dw, dh) = (aw.div_ceil(dp.sub.0), ah.div_ceil(dp.sub.1));
            let (dx, dy) = (ax / dp.sub.0, ay / dp.sub.1);
            if bordered {
                let rows = self.to.height.div_ceil(dp.sub.1);
                let across = self.to.width.div_ceil(dp.sub.0);
                for row in 0..rows {
                    let line = &mut dst[dp.offset + row * dp.stride..][..across * dp.bytes];
                    for px in line.chunks_exact_mut(dp.bytes) {
                        px.copy_from_slice(&dp.black[..dp.bytes]);
                    }
                }
            }
            // fast_image_resize wants rows back to back: planes with padded strides go
            // through a packed copy.
            let src_packed = sp.stride == sw * sp.bytes;
            let src_img = if src_packed {
                ImageRef::new(
                    sw as u32,
                    sh as u32,
                    &src[sp.offset..sp.offset + sw * sh * sp.bytes],
                    sp.kind,
                )
            } else {
                self.src_rows.clear();
                for row in 0..sh {
                    self.src_rows
                        .extend_from_slice(&src[sp.offset + row * sp.stride..][..sw * sp.bytes]);
                }
                ImageRef::new(sw as u32, sh as u32, &self.src_rows, sp.kind)
            }
            .map_err(|e| fail(&e))?;
            let dst_packed = dp.stride == dw * dp.bytes && dx == 0;
            if dst_packed {
                let start = dp.offset + dy * dp.stride;
                let mut img = Image::from_slice_u8(
                    dw as u32,
                    dh as u32,
                    &mut dst[start..start + dw * dh * dp.bytes],
                    dp.kind,
                )
                .map_err(|e| fail(&e))?;
                self.resizer
                    .resize(&src_img, &mut img, &self.options)
                    .map_err(|e| fail(&e))?;
            } else {
                self.dst_rows.resize(dw * dh * dp.bytes, 0);
                let mut img =
                    Image::from_slice_u8(dw as u32, dh as u32, &mut self.dst_rows, dp.kind)
                        .map_err(|e| fail(&e))?;
                self.resizer
                    .resize(&src_img, &mut img, &self.options)
                    .map_err(|e| fail(&e))?;
                for row in 0..dh {
                    let at = dp.offset + (dy + row) * dp.stride + dx * dp.bytes;
                    dst[at..at + dw * dp.bytes]
                        .copy_from_slice(&self.dst_rows[row * dw * dp.bytes..][..dw * dp.bytes]);
                }
            }
        }
        Ok(())
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&VIDEOSCALE];

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

    fn scale(from: &VideoInfo, src: &[u8], to: &VideoInfo, alg: ResizeAlg) -> Vec<u8> {
        let mut out = vec![0; to.size];
        let area = (0, 0, to.width, to.height);
        Scaler::new(from.clone(), to.clone(), area, alg)
            .scale(src, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn nearest_doubles_pixels_and_halves_keep_them() {
        // A 2x2 RGB frame: red, green / blue, white.
        let from = info("RGB", 2, 2);
        let mut src = vec![0; from.size];
        src[..6].copy_from_slice(&[255, 0, 0, 0, 255, 0]);
        src[8..14].copy_from_slice(&[0, 0, 255, 255, 255, 255]);
        let to = info("RGB", 4, 4);
        let out = scale(&from, &src, &to, ResizeAlg::Nearest);
        let px = |x: usize, y: usize| &out[y * to.stride[0] + x * 3..][..3];
        assert_eq!(px(0, 0), [255, 0, 0]);
        assert_eq!(px(1, 1), [255, 0, 0]);
        assert_eq!(px(2, 0), [0, 255, 0]);
        assert_eq!(px(0, 3), [0, 0, 255]);
        assert_eq!(px(3, 3), [255, 255, 255]);
    }

    #[test]
    fn every_format_scales_a_flat_frame_to_the_same_colour() {
        for name in [
            "I420",
            "YV12",
            "NV12",
            "YUY2",
            "UYVY",
            "RGB",
            "BGRx",
            "GRAY8",
            "GRAY16_LE",
        ] {
            let from = info(name, 30, 18);
            let src: Vec<u8> = (0..from.size).map(|i| [90u8, 91][i % 2]).collect();
            let to = info(name, 13, 7);
            let out = scale(
                &from,
                &src,
                &to,
                ResizeAlg::Interpolation(FilterType::Bilinear),
            );
            assert_eq!(out.len(), to.size, "{name}");
            // Every pixel byte of the first row is one of the two values.
            for &b in &out[..to.width.min(to.stride[0])] {
                assert!((89..=92).contains(&b), "{name}: {b}");
            }
        }
    }

    #[test]
    fn borders_are_black_and_the_picture_fits_between() {
        let from = info("RGBA", 4, 2);
        let src = [200u8; 32];
        let to = info("RGBA", 4, 4);
        let mut out = vec![0; to.size];
        Scaler::new(from, to.clone(), (0, 1, 4, 2), ResizeAlg::Nearest)
            .scale(&src, &mut out)
            .unwrap();
        assert_eq!(out[..16], [0, 0, 0, 255].repeat(4)[..]);
        assert_eq!(out[16..48], [200; 32]);
        assert_eq!(out[48..], [0, 0, 0, 255].repeat(4)[..]);
    }
}
