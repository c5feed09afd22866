//! `videoflip` and `videocrop`: moving pixels without changing their values, plane by plane.

use super::{negotiated_or, Frames, PixelFormat, VideoInfo, VIDEO_CAPS};
use crate::element::prelude::*;

/// One plane of a format, as these elements walk it: where it starts, its stride, bytes per
/// pixel (a YUY2 macropixel counts as one), and the subsampling of its width and height.
#[derive(Debug, Clone, Copy)]
struct Plane {
    offset: usize,
    stride: usize,
    bytes: usize,
    sub: (usize, usize),
}

fn planes(info: &VideoInfo) -> Vec<Plane> {
    let p = |i: usize, bytes, sub| Plane {
        offset: info.offset[i],
        stride: info.stride[i],
        bytes,
        sub,
    };
    match info.format {
        PixelFormat::I420 | PixelFormat::Yv12 => {
            vec![p(0, 1, (1, 1)), p(1, 1, (2, 2)), p(2, 1, (2, 2))]
        }
        PixelFormat::Nv12 => vec![p(0, 1, (1, 1)), p(1, 2, (2, 2))],
        PixelFormat::Yuy2 | PixelFormat::Uyvy => vec![p(0, 4, (2, 1))],
        PixelFormat::Rgb3(_) => vec![p(0, 3, (1, 1))],
        PixelFormat::Rgb4(..) => vec![p(0, 4, (1, 1))],
        PixelFormat::Gray8 => vec![p(0, 1, (1, 1))],
        PixelFormat::Gray16Le => vec![p(0, 2, (1, 1))],
    }
}

fn is_packed_422(f: PixelFormat) -> bool {
    matches!(f, PixelFormat::Yuy2 | PixelFormat::Uyvy)
}

fn short_frame(len: usize, need: usize) -> ElementError {
    ElementError::Failed(format!(
        "a frame of {len} bytes is shorter than the {need} its caps say"
    ))
}

// --- videoflip -----------------------------------------------------------------------------

const FLIP_METHODS: &[EnumValue] = &[
    EnumValue {
        nick: "none",
        value: 0,
        doc: "Identity (no rotation)",
    },
    EnumValue {
        nick: "clockwise",
        value: 1,
        doc: "Rotate clockwise 90 degrees",
    },
    EnumValue {
        nick: "rotate-180",
        value: 2,
        doc: "Rotate 180 degrees",
    },
    EnumValue {
        nick: "counterclockwise",
        value: 3,
        doc: "Rotate counter-clockwise 90 degrees",
    },
    EnumValue {
        nick: "horizontal-flip",
        value: 4,
        doc: "Flip horizontally",
    },
    EnumValue {
        nick: "vertical-flip",
        value: 5,
        doc: "Flip vertically",
    },
    EnumValue {
        nick: "upper-left-diagonal",
        value: 6,
        doc: "Flip across upper left/lower right diagonal",
    },
    EnumValue {
        nick: "upper-right-diagonal",
        value: 7,
        doc: "Flip across upper right/lower left diagonal",
    },
    EnumValue {
        nick: "automatic",
        value: 8,
        doc: "Select flip method based on image-orientation tag",
    },
];

const DIRECTIONS: &[EnumValue] = &[
    EnumValue {
        nick: "identity",
        value: 0,
        doc: "GST_VIDEO_ORIENTATION_IDENTITY",
    },
    EnumValue {
        nick: "90r",
        value: 1,
        doc: "GST_VIDEO_ORIENTATION_90R",
    },
    EnumValue {
        nick: "180",
        value: 2,
        doc: "GST_VIDEO_ORIENTATION_180",
    },
    EnumValue {
        nick: "90l",
        value: 3,
        doc: "GST_VIDEO_ORIENTATION_90L",
    },
    EnumValue {
        nick: "horiz",
        value: 4,
        doc: "GST_VIDEO_ORIENTATION_HORIZ",
    },
    EnumValue {
        nick: "vert",
        value: 5,
        doc: "GST_VIDEO_ORIENTATION_VERT",
    },
    EnumValue {
        nick: "ul-lr",
        value: 6,
        doc: "GST_VIDEO_ORIENTATION_UL_LR",
    },
    EnumValue {
        nick: "ur-ll",
        value: 7,
        doc: "GST_VIDEO_ORIENTATION_UR_LL",
    },
    EnumValue {
        nick: "auto",
        value: 8,
        doc: "GST_VIDEO_ORIENTATION_AUTO",
    },
    EnumValue {
        nick: "custom",
        value: 9,
        doc: "GST_VIDEO_ORIENTATION_CUSTOM",
    },
];

/// A flip or rotation: gst's orientation number (0 identity ... 7 ur-ll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Orientation(u8);

impl Orientation {
    /// The orientation the properties ask for: video-direction when set, else method;
    /// auto and custom have no tags to follow here, so they leave frames as they are.
    fn of(p: &Props) -> Result<Orientation, ElementError> {
        let (nick, table) = if p.is_set("video-direction") {
            (p.nick("video-direction")?, DIRECTIONS)
        } else {
            (p.nick("method")?, FLIP_METHODS)
        };
        let value = table.iter().find(|v| v.nick == nick).map_or(0, |v| v.value);
        Ok(Orientation(if value > 7 { 0 } else { value as u8 }))
    }

    /// Whether width and height trade places.
    fn transposes(self) -> bool {
        matches!(self.0, 1 | 3 | 6 | 7)
    }

    /// The input pixel shown at output (x, y) of a plane `w` x `h` pixels in the input.
    #[inline]
    fn source(self, x: usize, y: usize, w: usize, h: usize) -> (usize, usize) {
        match self.0 {
            1 => (y, h - 1 - x),
            2 => (w - 1 - x, h - 1 - y),
            3 => (w - 1 - y, x),
            4 => (w - 1 - x, y),
            5 => (x, h - 1 - y),
            6 => (y, x),
            7 => (w - 1 - y, h - 1 - x),
            _ => (x, y),
        }
    }
}

/// Width and height trade places under a rotation by 90 degrees or a diagonal flip.
static VIDEOFLIP_CAPS: CapsFns = CapsFns {
    forward: |input, p| swap_size(input, p),
    backward: |down, p| swap_size(down, p),
    fixate: CapsFns::default_fixate,
};

fn swap_size(caps: &Caps, p: &Props) -> Caps {
    let template = Caps::parse(VIDEO_CAPS).expect("the template parses");
    if caps.is_any() {
        return template;
    }
    let mut out = caps.clone();
    if Orientation::of(p).is_ok_and(|o| o.transposes()) {
        for s in out.structures_mut() {
            let (w, h) = (s.get("width").cloned(), s.get("height").cloned());
            s.remove("width");
            s.remove("height");
            if let Some(h) = h {
                s.set("width", h);
            }
            if let Some(w) = w {
                s.set("height", w);
            }
        }
    }
    out.intersect(&template)
}

pub(crate) static VIDEOFLIP: Factory = Factory {
    name: "videoflip",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Flips and rotates video",
    doc: "Rotates raw video by 90, 180 or 270 degrees, or flips it horizontally, vertically or \
          across a diagonal (`video-direction`, or the older `method`), in every format; \
          rotations by 90 degrees and diagonal flips swap width and height in the caps. \
          YUY2 and UYVY take flips and the 180 degree rotation only (convert to I420 to rotate \
          by 90). auto/automatic and custom leave frames unchanged (parallax has no \
          image-orientation tags).",
    pads: Pads::ONE_TO_ONE
        .with_caps(VIDEO_CAPS, VIDEO_CAPS)
        .with_rule(CapsRule::Derived(&VIDEOFLIP_CAPS)),
    props: &[
        PropSpec::enumeration(
            "method",
            "none",
            FLIP_METHODS,
            "method (deprecated, use video-direction instead)",
        ),
        PropSpec::enumeration(
            "video-direction",
            "identity",
            DIRECTIONS,
            "Video direction: rotation and flipping",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let from = VideoInfo::from_caps(&negotiated_or(p.sink_caps(), VIDEO_CAPS), p.instance())?;
        let o = Orientation::of(p)?;
        if o.transposes() && is_packed_422(from.format) {
            return Err(ElementError::Config(format!(
                "{}: videoflip cannot turn {:?} by 90 degrees or across a diagonal: put videoconvert ! video/x-raw,format=I420 before it",
                p.instance(),
                from.format
            )));
        }
        let (w, h) = if o.transposes() {
            (from.height, from.width)
        } else {
            (from.width, from.height)
        };
        let to = VideoInfo::new(from.format, w, h, from.fps);
        Ok(ElementImpl::Transform(Box::new(VideoFlip {
            frames: Frames::new(p.instance(), to.size),
            from,
            to,
            orientation: o,
        })))
    },
};

/// videoflip's state.
struct VideoFlip {
    from: VideoInfo,
    to: VideoInfo,
    orientation: Orientation,
    frames: Frames,
}

impl VideoFlip {
    fn flip(&self, src: &[u8], dst: &mut [u8]) {
        let o = self.orientation;
        for (sp, dp) in planes(&self.from).into_iter().zip(planes(&self.to)) {
            let (w, h) = (
                self.from.width.div_ceil(sp.sub.0),
                self.from.height.div_ceil(sp.sub.1),
            );
            let (ow, oh) = if o.transposes() { (h, w) } else { (w, h) };
            let b = sp.bytes;
            for y in 0..oh {
                let line = &mut dst[dp.offset + y * dp.stride..][..ow * b];
                for x in 0..ow {
                    let (sx, sy) = o.source(x, y, w, h);
                    let at = sp.offset + sy * sp.stride + sx * b;
                    line[x * b..x * b + b].copy_from_slice(&src[at..at + b]);
                }
            }
            // A mirrored YUY2 macropixel also swaps its two lumas.
            if is_packed_422(self.from.format) && matches!(o.0, 2 | 4) {
                let luma = if self.from.format == PixelFormat::Yuy2 {
                    (0, 2)
                } else {
                    (1, 3)
                };
                for y in 0..oh {
                    let line = &mut dst[dp.offset + y * dp.stride..][..ow * 4];
                    for px in line.chunks_exact_mut(4) {
                        px.swap(luma.0, luma.1);
                    }
                }
            }
        }
    }
}

impl Transform for VideoFlip {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.orientation.0 == 0 {
            return Ok(Flow::Push(buf));
        }
        if buf.len() < self.from.size {
            return Err(short_frame(buf.len(), self.from.size));
        }
        let mut frames = std::mem::replace(&mut self.frames, Frames::new("", 0));
        let made = frames.make(|dst| {
            self.flip(buf.data(), dst);
            Ok(())
        });
        self.frames = frames;
        let mut out = made?;
        out.meta = buf.meta.clone();
        Ok(Flow::Push(out))
    }
}

// --- videocrop -----------------------------------------------------------------------------

/// The crop of each side; `None` for -1 (auto: what downstream's caps leave over).
#[derive(Debug, Clone, Copy)]
struct Crop {
    left: Option<usize>,
    right: Option<usize>,
    top: Option<usize>,
    bottom: Option<usize>,
}

impl Crop {
    fn of(p: &Props) -> Result<Crop, ElementError> {
        let side = |n: &str| -> Result<Option<usize>, ElementError> {
            Ok(usize::try_from(p.int(n)?).ok())
        };
        Ok(Crop {
            left: side("left")?,
            right: side("right")?,
            top: side("top")?,
            bottom: side("bottom")?,
        })
    }
}

/// The size shrinks by the crop: fixed where every side of an axis is known, free (up to
/// what is left) where one is -1, for downstream to decide.
static VIDEOCROP_CAPS: CapsFns = CapsFns {
    forward: |input, p| crop_size(input, p, true),
    backward: |down, p| crop_size(down, p, false),
    fixate: CapsFns::default_fixate,
};

fn crop_size(caps: &Caps, p: &Props, forward: bool) -> Caps {
    let template = Caps::parse(VIDEO_CAPS).expect("the template parses");
    let Ok(c) = Crop::of(p) else {
        return template;
    };
    if caps.is_any() {
        return template;
    }
    let mut out = caps.clone();
    for s in out.structures_mut() {
        for (field, a, b) in [("width", c.left, c.right), ("height", c.top, c.bottom)] {
            let known = (a.unwrap_or(0) + b.unwrap_or(0)) as i64;
            let auto = a.is_none() || b.is_none();
            match s.int(field) {
                Some(v) if forward && !auto => {
                    s.set(field, CapsValue::Int((v - known).max(0)));
                }
                Some(v) if forward => match CapsValue::int_range(1, (v - known).max(1), 1) {
                    Some(r) => s.set(field, r),
                    None => s.set(field, CapsValue::Int(1)),
                },
                Some(v) if !auto => s.set(field, CapsValue::Int(v + known)),
                _ => s.remove(field),
            }
        }
    }
    out.intersect(&template)
}

pub(crate) static VIDEOCROP: Factory = Factory {
    name: "videocrop",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Crops video into a user-defined region",
    doc: "Cuts `left`, `right`, `top` and `bottom` pixels off every frame of raw video, in \
          every format (chroma of 4:2:0 and 4:2:2 formats from the nearest even pixel; YUY2 \
          and UYVY need an even left). -1 on a side crops what the caps downstream leave over \
          (split between two -1 sides), as gst's auto-crop does. Cropping more than the frame \
          is an error naming the sizes.",
    pads: Pads::ONE_TO_ONE
        .with_caps(VIDEO_CAPS, VIDEO_CAPS)
        .with_rule(CapsRule::Derived(&VIDEOCROP_CAPS)),
    props: &[
        PropSpec::int(
            "left",
            0,
            -1,
            i32::MAX as i64,
            "Pixels to crop at left (-1 to auto-crop)",
        ),
        PropSpec::int(
            "right",
            0,
            -1,
            i32::MAX as i64,
            "Pixels to crop at right (-1 to auto-crop)",
        ),
        PropSpec::int(
            "top",
            0,
            -1,
            i32::MAX as i64,
            "Pixels to crop at top (-1 to auto-crop)",
        ),
        PropSpec::int(
            "bottom",
            0,
            -1,
            i32::MAX as i64,
            "Pixels to crop at bottom (-1 to auto-crop)",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let from = VideoInfo::from_caps(&negotiated_or(p.sink_caps(), VIDEO_CAPS), p.instance())?;
        let c = Crop::of(p)?;
        let out_caps = p.src_caps();
        let out = |field: &str| {
            out_caps
                .first()
                .and_then(|s| s.int(field))
                .map(|v| v as usize)
        };
        let resolve = |size: usize, a: Option<usize>, b: Option<usize>, down: Option<usize>| {
            let known = a.unwrap_or(0) + b.unwrap_or(0);
            let spare = down.map_or(0, |d| size.saturating_sub(known + d));
            match (a, b) {
                (Some(a), Some(b)) => (a, b),
                (None, Some(b)) => (spare, b),
                (Some(a), None) => (a, spare),
                (None, None) => (spare / 2, spare - spare / 2),
            }
        };
        let (left, right) = resolve(from.width, c.left, c.right, out("width"));
        let (top, bottom) = resolve(from.height, c.top, c.bottom, out("height"));
        if left + right >= from.width || top + bottom >= from.height {
            return Err(ElementError::Config(format!(
                "{}: cropping {left}+{right} x {top}+{bottom} pixels leaves nothing of a {}x{} frame",
                p.instance(),
                from.width,
                from.height
            )));
        }
        if is_packed_422(from.format) && left % 2 == 1 {
            return Err(ElementError::Config(format!(
                "{}: YUY2 and UYVY are cropped by whole macropixels: left={left} must be even",
                p.instance()
            )));
        }
        let to = VideoInfo::new(
            from.format,
            from.width - left - right,
            from.height - top - bottom,
            from.fps,
        );
        Ok(ElementImpl::Transform(Box::new(VideoCrop {
            frames: Frames::new(p.instance(), to.size),
            from,
            to,
            left,
            top,
        })))
    },
};

/// videocrop's state: the layouts and the top-left corner kept.
struct VideoCrop {
    from: VideoInfo,
    to: VideoInfo,
    left: usize,
    top: usize,
    frames: Frames,
}

impl VideoCrop {
    fn crop(&self, src: &[u8], dst: &mut [u8]) {
        for (sp, dp) in planes(&self.from).into_iter().zip(planes(&self.to)) {
            let w = self.to.width.div_ceil(sp.sub.0);
            let h = self.to.height.div_ceil(sp.sub.1);
            let (x0, y0) = (self.left / sp.sub.0, self.top / sp.sub.1);
            for y in 0..h {
                let at = sp.offset + (y0 + y) * sp.stride + x0 * sp.bytes;
                dst[dp.offset + y * dp.stride..][..w * sp.bytes]
                    .copy_from_slice(&src[at..at + w * sp.bytes]);
            }
        }
    }
}

impl Transform for VideoCrop {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.from == self.to {
            return Ok(Flow::Push(buf));
        }
        if buf.len() < self.from.size {
            return Err(short_frame(buf.len(), self.from.size));
        }
        let mut frames = std::mem::replace(&mut self.frames, Frames::new("", 0));
        let made = frames.make(|dst| {
            self.crop(buf.data(), dst);
            Ok(())
        });
        self.frames = frames;
        let mut out = made?;
        out.meta = buf.meta.clone();
        Ok(Flow::Push(out))
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&VIDEOFLIP, &VIDEOCROP];

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

    /// A GRAY8 frame whose pixel (x, y) is 10 * y + x.
    fn numbered(w: usize, h: usize) -> (VideoInfo, Vec<u8>) {
        let i = info("GRAY8", w, h);
        let mut f = vec![0; i.size];
        for y in 0..h {
            for x in 0..w {
                f[y * i.stride[0] + x] = (10 * y + x) as u8;
            }
        }
        (i, f)
    }

    fn flip(o: u8, from: &VideoInfo, src: &[u8]) -> (VideoInfo, Vec<u8>) {
        let o = Orientation(o);
        let (w, h) = if o.transposes() {
            (from.height, from.width)
        } else {
            (from.width, from.height)
        };
        let to = VideoInfo::new(from.format, w, h, from.fps);
        let f = VideoFlip {
            from: from.clone(),
            to: to.clone(),
            orientation: o,
            frames: Frames::new("t", to.size),
        };
        let mut out = vec![0; to.size];
        f.flip(src, &mut out);
        (to, out)
    }

    #[test]
    fn rotations_and_flips_move_known_pixels() {
        // 3 x 2:  0  1  2
        //        10 11 12
        let (i, f) = numbered(3, 2);
        let rows = |to: &VideoInfo, out: &[u8]| -> Vec<Vec<u8>> {
            (0..to.height)
                .map(|y| out[y * to.stride[0]..][..to.width].to_vec())
                .collect()
        };
        let (to, out) = flip(1, &i, &f);
        assert_eq!(rows(&to, &out), [[10, 0], [11, 1], [12, 2]]);
        let (to, out) = flip(3, &i, &f);
        assert_eq!(rows(&to, &out), [[2, 12], [1, 11], [0, 10]]);
        let (to, out) = flip(2, &i, &f);
        assert_eq!(rows(&to, &out), [[12, 11, 10], [2, 1, 0]]);
        let (to, out) = flip(4, &i, &f);
        assert_eq!(rows(&to, &out), [[2, 1, 0], [12, 11, 10]]);
        let (to, out) = flip(5, &i, &f);
        assert_eq!(rows(&to, &out), [[10, 11, 12], [0, 1, 2]]);
        let (to, out) = flip(6, &i, &f);
        assert_eq!(rows(&to, &out), [[0, 10], [1, 11], [2, 12]]);
        let (to, out) = flip(7, &i, &f);
        assert_eq!(rows(&to, &out), [[12, 2], [11, 1], [10, 0]]);
    }

    #[test]
    fn mirrored_yuy2_swaps_lumas() {
        let i = info("YUY2", 4, 1);
        let src = [1, 128, 2, 129, 3, 130, 4, 131];
        let (_, out) = flip(4, &i, &src);
        assert_eq!(out, [4, 130, 3, 131, 2, 128, 1, 129]);
    }

    #[test]
    fn crop_keeps_the_inner_pixels_of_every_plane() {
        let from = info("I420", 8, 4);
        let src: Vec<u8> = (0..from.size as u32).map(|v| v as u8).collect();
        let to = info("I420", 4, 2);
        let c = VideoCrop {
            from: from.clone(),
            to: to.clone(),
            left: 2,
            top: 2,
            frames: Frames::new("t", to.size),
        };
        let mut out = vec![0; to.size];
        c.crop(&src, &mut out);
        // Y rows 2..4, columns 2..6.
        assert_eq!(out[..4], src[18..22]);
        assert_eq!(out[4..8], src[26..30]);
        // U row 1, columns 1..3.
        assert_eq!(out[8..10], src[32 + 4 + 1..32 + 4 + 3]);
    }
}
