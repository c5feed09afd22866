//! Raw video: `videotestsrc`.

use super::{Matrix, PixelFormat, VideoInfo, VIDEO_CAPS};
use crate::element::prelude::*;

// --- videotestsrc --------------------------------------------------------------------------

/// gst's pattern enum; the ones parallax cannot paint yet are refused when the element is built.
const PATTERNS: &[EnumValue] = &[
    EnumValue {
        nick: "smpte",
        value: 0,
        doc: "SMPTE 100% color bars",
    },
    EnumValue {
        nick: "snow",
        value: 1,
        doc: "Random (television snow)",
    },
    EnumValue {
        nick: "black",
        value: 2,
        doc: "100% Black",
    },
    EnumValue {
        nick: "white",
        value: 3,
        doc: "100% White",
    },
    EnumValue {
        nick: "red",
        value: 4,
        doc: "Red",
    },
    EnumValue {
        nick: "green",
        value: 5,
        doc: "Green",
    },
    EnumValue {
        nick: "blue",
        value: 6,
        doc: "Blue",
    },
    EnumValue {
        nick: "checkers-1",
        value: 7,
        doc: "Checkers 1px",
    },
    EnumValue {
        nick: "checkers-2",
        value: 8,
        doc: "Checkers 2px",
    },
    EnumValue {
        nick: "checkers-4",
        value: 9,
        doc: "Checkers 4px",
    },
    EnumValue {
        nick: "checkers-8",
        value: 10,
        doc: "Checkers 8px",
    },
    EnumValue {
        nick: "solid-color",
        value: 17,
        doc: "Solid color",
    },
];

/// One colour of gst's test patterns: (R, G, B) and BT.601 (Y, U, V), from videotestsrc's
/// tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Color {
    rgb: [u8; 3],
    yuv: [u8; 3],
}

const WHITE: Color = Color {
    rgb: [255, 255, 255],
    yuv: [235, 128, 128],
};
const YELLOW: Color = Color {
    rgb: [255, 255, 0],
    yuv: [210, 16, 146],
};
const CYAN: Color = Color {
    rgb: [0, 255, 255],
    yuv: [170, 166, 16],
};
const GREEN: Color = Color {
    rgb: [0, 255, 0],
    yuv: [145, 54, 34],
};
const MAGENTA: Color = Color {
    rgb: [255, 0, 255],
    yuv: [106, 202, 222],
};
const RED: Color = Color {
    rgb: [255, 0, 0],
    yuv: [81, 90, 240],
};
const BLUE: Color = Color {
    rgb: [0, 0, 255],
    yuv: [41, 240, 110],
};
const BLACK: Color = Color {
    rgb: [0, 0, 0],
    yuv: [16, 128, 128],
};

impl Color {
    /// Y, U, V of the colour in `matrix`, limited range: the BT.601 table, or worked out
    /// from RGB for HD streams, as gst's videotestsrc paints them.
    fn yuv_in(self, matrix: Matrix) -> [u8; 3] {
        if matrix == Matrix::Bt601 {
            return self.yuv;
        }
        let (kr, kb) = matrix.kr_kb();
        let [r, g, b] = self.rgb.map(f64::from);
        let y = kr * r + (1.0 - kr - kb) * g + kb * b;
        let scale = |v: f64, range: f64| (v * range / 255.0).round();
        [
            16.0 + scale(y, 219.0),
            128.0 + scale((b - y) / (2.0 * (1.0 - kb)), 224.0),
            128.0 + scale((r - y) / (2.0 * (1.0 - kr)), 224.0),
        ]
        .map(|v| v.clamp(0.0, 255.0) as u8)
    }
}

/// gst's defaults where downstream leaves a choice: 320x240 at 30/1, the first format.
static VIDEOTESTSRC_CAPS: CapsFns = CapsFns {
    forward: |_, _| Caps::parse(VIDEO_CAPS).expect("the template parses"),
    backward: CapsFns::identity,
    fixate: |caps, _| {
        let Some(mut s) = caps.first().cloned() else {
            return caps;
        };
        s.fixate_nearest_int("width", 320);
        s.fixate_nearest_int("height", 240);
        s.fixate_nearest_fraction("framerate", Fraction { num: 30, den: 1 });
        s.fixate();
        Caps::one(s)
    },
};

pub(crate) static VIDEOTESTSRC: Factory = Factory {
    name: "videotestsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Creates a test video stream",
    doc: "Raw video frames in the format, size and framerate negotiated downstream (I420, \
          320x240 at 30/1 unless caps after it say otherwise), laid out as gst lays them out \
          (the same strides, plane offsets and frame sizes). Patterns: smpte (the colour bars \
          and reverse bars; the bottom strip is black, without gst's pluge), snow, black, white, \
          red, green, blue, checkers-1/2/4/8 (red and green squares), solid-color (white). \
          Solid colours and checkers are byte for byte gst's (YUV in BT.601 up to 576 lines, BT.709 above, as gst). Each frame carries its pts and \
          duration; with is-live=true a frame is produced when the pipeline clock reaches its \
          end.",
    pads: Pads::SOURCE
        .with_caps("ANY", VIDEO_CAPS)
        .with_rule(CapsRule::Derived(&VIDEOTESTSRC_CAPS)),
    props: super::super::basesrc_props![
        PropSpec::enumeration(
            "pattern",
            "smpte",
            PATTERNS,
            "Type of test pattern to generate"
        ),
        PropSpec::bool("is-live", false, "Whether to act as a live source"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let caps = if p.src_caps().is_fixed() {
            p.src_caps().clone()
        } else {
            (VIDEOTESTSRC_CAPS.fixate)(Caps::parse(VIDEO_CAPS).expect("parses"), p)
        };
        let info = VideoInfo::from_caps(&caps, p.instance())?;
        let pattern = p.nick("pattern")?;
        let mut src = VideoTestSrc {
            frame: vec![0; info.size],
            info,
            snow: pattern == "snow",
            live: p.bool("is-live")?,
            remaining: u64::try_from(p.int("num-buffers")?).ok(),
            frames: 0,
            noise: 0x9e37_79b9_7f4a_7c15,
        };
        if !src.snow {
            let color_at = pattern_fn(pattern);
            paint(&src.info, &mut src.frame, color_at);
        }
        Ok(ElementImpl::Source(Box::new(src)))
    },
};

type ColorAt = fn(usize, usize, usize, usize) -> Color;

/// The colour of pixel (x, y) of a `w` x `h` frame for a static pattern.
fn pattern_fn(pattern: &str) -> ColorAt {
    match pattern {
        "black" => |_, _, _, _| BLACK,
        "white" | "solid-color" => |_, _, _, _| WHITE,
        "red" => |_, _, _, _| RED,
        "green" => |_, _, _, _| GREEN,
        "blue" => |_, _, _, _| BLUE,
        "checkers-1" => |x, y, _, _| checker(x, y, 1),
        "checkers-2" => |x, y, _, _| checker(x, y, 2),
        "checkers-4" => |x, y, _, _| checker(x, y, 4),
        "checkers-8" => |x, y, _, _| checker(x, y, 8),
        _ => smpte,
    }
}

fn checker(x: usize, y: usize, size: usize) -> Color {
    if ((x / size) ^ (y / size)) & 1 == 0 {
        RED
    } else {
        GREEN
    }
}

fn smpte(x: usize, y: usize, w: usize, h: usize) -> Color {
    const BARS: [Color; 7] = [WHITE, YELLOW, CYAN, GREEN, MAGENTA, RED, BLUE];
    const REVERSE: [Color; 7] = [BLUE, BLACK, MAGENTA, BLACK, CYAN, BLACK, WHITE];
    let bar = (x * 7 / w).min(6);
    if y < h * 2 / 3 {
        BARS[bar]
    } else if y < h * 3 / 4 {
        REVERSE[bar]
    } else {
        BLACK
    }
}

/// Paints a frame pixel by pixel in `info`'s layout; 4:2:0 and 4:2:2 chroma come from the
/// top-left pixel of each block, as gst's packing takes them.
fn paint(info: &VideoInfo, out: &mut [u8], color_at: impl Fn(usize, usize, usize, usize) -> Color) {
    let (w, h) = (info.width, info.height);
    let (s, o) = (info.stride, info.offset);
    for y in 0..h {
        for x in 0..w {
            let c = color_at(x, y, w, h);
            let [yy, u, v] = c.yuv_in(info.matrix);
            match info.format {
                PixelFormat::I420 | PixelFormat::Yv12 => {
                    out[y * s[0] + x] = yy;
                    if x % 2 == 0 && y % 2 == 0 {
                        let (pu, pv) = if info.format == PixelFormat::I420 {
                            (1, 2)
                        } else {
                            (2, 1)
                        };
                        out[o[pu] + y / 2 * s[pu] + x / 2] = u;
                        out[o[pv] + y / 2 * s[pv] + x / 2] = v;
                    }
                }
                PixelFormat::Nv12 => {
                    out[y * s[0] + x] = yy;
                    if x % 2 == 0 && y % 2 == 0 {
                        let at = o[1] + y / 2 * s[1] + x;
                        out[at] = u;
                        out[at + 1] = v;
                    }
                }
                PixelFormat::Yuy2 | PixelFormat::Uyvy => {
                    let at = y * s[0] + x / 2 * 4;
                    let (py, pu, pv) = if info.format == PixelFormat::Yuy2 {
                        (0, 1, 3)
                    } else {
                        (1, 0, 2)
                    };
                    out[at + py + (x % 2) * 2] = yy;
                    if x % 2 == 0 {
                        out[at + pu] = u;
                        out[at + pv] = v;
                    }
                }
                PixelFormat::Rgb3(order) => {
                    let at = y * s[0] + x * 3;
                    for (i, &pos) in order.iter().enumerate() {
                        out[at + pos] = c.rgb[i];
                    }
                }
                PixelFormat::Rgb4(order, alpha) => {
                    let at = y * s[0] + x * 4;
                    for (i, &pos) in order.iter().enumerate() {
                        out[at + pos] = c.rgb[i];
                    }
                    out[at + alpha] = 255;
                }
                PixelFormat::Gray8 => out[y * s[0] + x] = yy,
                PixelFormat::Gray16Le => {
                    let at = y * s[0] + x * 2;
                    out[at..at + 2].copy_from_slice(&(yy as u16 * 257).to_le_bytes());
                }
            }
        }
    }
}

/// videotestsrc's state: a painted frame (static patterns), or noise painted per frame.
struct VideoTestSrc {
    info: VideoInfo,
    frame: Vec<u8>,
    snow: bool,
    live: bool,
    remaining: Option<u64>,
    frames: u64,
    noise: u64,
}

impl VideoTestSrc {
    /// pts of frame `n`: n / framerate seconds, none for a variable framerate (0/1).
    fn pts(&self, n: u64) -> Option<u64> {
        let f = self.info.fps;
        (f.num > 0).then(|| (n as u128 * f.den as u128 * 1_000_000_000 / f.num as u128) as u64)
    }
}

impl Source for VideoTestSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(PoolRequest {
            slot_size: self.info.size,
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
        if self.snow {
            let mut noise = self.noise;
            let mut next = move || {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise
            };
            let grey = |v: u64| {
                let l = (v >> 56) as u8;
                // A random grey: the same light in RGB and in Y, neutral chroma.
                Color {
                    rgb: [l, l, l],
                    yuv: [16 + (l as u16 * 219 / 255) as u8, 128, 128],
                }
            };
            let values: Vec<u64> = (0..self.info.width * self.info.height)
                .map(|_| next())
                .collect();
            self.noise = next();
            let w = self.info.width;
            let info = self.info.clone();
            paint(&info, &mut self.frame, |x, y, _, _| grey(values[y * w + x]));
        }
        let size = self.info.size;
        let mut slot = cx.loan()?;
        slot.as_mut_slice()[..size].copy_from_slice(&self.frame);
        let mut buf = slot.freeze(size);
        let n = self.frames;
        self.frames += 1;
        buf.meta.set_pts(self.pts(n));
        if let (Some(a), Some(b)) = (self.pts(n), self.pts(n + 1)) {
            buf.meta.set_duration(Some(b - a));
            if self.live {
                cx.wait_until_running_time(b);
            }
        }
        buf.meta.set_offset(Some(n));
        buf.meta.set_offset_end(Some(n + 1));
        Ok(Some(buf))
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&VIDEOTESTSRC];

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pattern: &str, format: &str, w: usize, h: usize) -> Vec<u8> {
        let info = VideoInfo::new(
            PixelFormat::parse(format).unwrap(),
            w,
            h,
            Fraction { num: 30, den: 1 },
        );
        let mut out = vec![0; info.size];
        paint(&info, &mut out, pattern_fn(pattern));
        out
    }

    #[test]
    fn solid_red_and_checkers_are_gst_bytes() {
        // Bytes from gst-launch-1.0 videotestsrc pattern=... num-buffers=1 at 4x2.
        assert_eq!(
            frame("red", "I420", 4, 2),
            [81, 81, 81, 81, 81, 81, 81, 81, 90, 90, 0, 0, 240, 240, 0, 0]
        );
        assert_eq!(
            frame("red", "YUY2", 4, 2)[..8],
            [81, 90, 81, 240, 81, 90, 81, 240]
        );
        assert_eq!(frame("red", "GRAY16_LE", 4, 2), [0x51; 16]);
        assert_eq!(
            frame("checkers-1", "RGB", 4, 2),
            [
                255, 0, 0, 0, 255, 0, 255, 0, 0, 0, 255, 0, //
                0, 255, 0, 255, 0, 0, 0, 255, 0, 255, 0, 0
            ]
        );
    }

    #[test]
    fn red_is_red_in_every_format() {
        let template = Caps::parse(VIDEO_CAPS).unwrap();
        let Some(CapsValue::List(formats)) = template.first().unwrap().get("format").cloned()
        else {
            panic!("the template lists formats");
        };
        for f in formats {
            let CapsValue::Str(name) = f else { panic!() };
            let name = name.as_str();
            let format = PixelFormat::parse(name).unwrap();
            let info = VideoInfo::new(format, 6, 4, Fraction { num: 30, den: 1 });
            let out = frame("red", name, 6, 4);
            let (r, g, b) = match format {
                PixelFormat::Rgb3(o) => (out[o[0]], out[o[1]], out[o[2]]),
                PixelFormat::Rgb4(o, _) => (out[o[0]], out[o[1]], out[o[2]]),
                _ => {
                    // Luma of red everywhere.
                    let y = match format {
                        PixelFormat::Uyvy => out[1],
                        _ => out[0],
                    };
                    assert_eq!(y, 81, "{name}");
                    continue;
                }
            };
            assert_eq!((r, g, b), (255, 0, 0), "{name}");
            assert_eq!(out.len(), info.size, "{name}");
        }
    }
}
