//! Still images: `pngdec`, `pngenc` (png crate) and `jpegdec` (zune-jpeg), `jpegenc`
//! (jpeg-encoder). One encoded image is one buffer on the encoded side and one frame, laid
//! out as gst's `GstVideoInfo` lays it out, on the raw side.

use super::super::media::{negotiated_or, PixelFormat, VideoInfo};
use super::{bad_stream, carry, DECODER, ENCODER};
use crate::element::prelude::*;

/// The fields an image codec carries between its encoded and raw caps.
const GEOMETRY: &[&str] = &["width", "height", "framerate"];

/// Largest image a decoder accepts: 2^28 pixels (16384 x 16384), so that a hostile header
/// cannot ask for terabytes.
const MAX_PIXELS: u64 = 1 << 28;

/// Copies tightly packed rows of `row` bytes into `info`'s strided first plane.
fn to_strided(tight: &[u8], row: usize, info: &VideoInfo) -> Vec<u8> {
    if info.stride[0] == row {
        let mut out = tight.to_vec();
        out.resize(info.size, 0);
        return out;
    }
    let mut out = vec![0; info.size];
    for (y, line) in tight.chunks_exact(row).take(info.height).enumerate() {
        let at = y * info.stride[0];
        out[at..at + row].copy_from_slice(line);
    }
    out
}

/// The tightly packed rows of `row` bytes of `info`'s strided first plane.
fn to_tight<'a>(frame: &'a [u8], row: usize, info: &VideoInfo) -> std::borrow::Cow<'a, [u8]> {
    if info.stride[0] == row {
        return std::borrow::Cow::Borrowed(&frame[..row * info.height]);
    }
    let mut out = Vec::with_capacity(row * info.height);
    for y in 0..info.height {
        let at = y * info.stride[0];
        out.extend_from_slice(&frame[at..at + row]);
    }
    std::borrow::Cow::Owned(out)
}

/// Bytes a pixel of the packed formats the image codecs handle.
fn pixel_bytes(format: PixelFormat) -> Option<usize> {
    match format {
        PixelFormat::Gray8 => Some(1),
        PixelFormat::Rgb3(_) => Some(3),
        PixelFormat::Rgb4(..) => Some(4),
        _ => None,
    }
}

/// A raw frame's size check: a buffer shorter than the negotiated frame is refused.
fn frame_of<'a>(buf: &'a Buffer, info: &VideoInfo) -> Result<&'a [u8], ElementError> {
    let data = buf.data();
    if data.len() < info.size {
        return Err(ElementError::Failed(format!(
            "a frame of {} bytes, but {}x{} needs {}",
            data.len(),
            info.width,
            info.height,
            info.size
        )));
    }
    Ok(data)
}

/// Bytes of one encoded image gathered from chunks: what a decoder has not used yet, and where
/// it starts in the stream.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Stream offset of `bytes[0]`.
    at: u64,
    /// The pts of the chunk that started the image.
    pts: Option<u64>,
}

impl Pending {
    fn push(&mut self, buf: &Buffer) {
        if self.bytes.is_empty() {
            self.pts = buf.meta.pts();
        }
        self.bytes.extend_from_slice(buf.data());
    }

    /// Removes the first `n` bytes (one image).
    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.bytes.split_off(n);
        self.at += n as u64;
        std::mem::replace(&mut self.bytes, rest)
    }
}

// --- pngdec / pngenc ------------------------------------------------------------------------

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

const PNGDEC_SRC: &str = concat!(
    "video/x-raw, format=(string){ RGBA, RGB, GRAY8 }, width=(int)[ 1, 2147483647 ], ",
    "height=(int)[ 1, 2147483647 ], framerate=(fraction)[ 0/1, 2147483647/1 ]"
);
const PNG_CAPS: &str = concat!(
    "image/png, width=(int)[ 1, 2147483647 ], height=(int)[ 1, 2147483647 ], ",
    "framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

/// The raw side takes the encoded side's geometry, and the other way round.
static PNGDEC_CAPS: CapsFns = CapsFns {
    forward: |input, _| carry(input, PNGDEC_SRC, GEOMETRY),
    backward: |down, _| carry(down, PNG_CAPS, GEOMETRY),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static PNGDEC: Factory = Factory {
    name: "pngdec",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Decode a png video frame to a raw image",
    doc: "Decodes each PNG image of the stream (found by its chunks, whatever the buffers' \
          sizes) into one frame of the negotiated format: RGBA unless downstream asks for RGB \
          or GRAY8 (palettes and low bit depths are expanded, 16-bit samples keep their high \
          byte, and colour is converted as needed). A signature, chunk or CRC that is wrong is \
          an error naming the byte where the image starts; so is an image cut short at end of \
          stream.",
    pads: Pads::ONE_TO_ONE
        .with_caps(PNG_CAPS, PNGDEC_SRC)
        .with_rule(CapsRule::Derived(&PNGDEC_CAPS)),
    props: &[],
    hints: DECODER,
    build: |p| {
        let info = VideoInfo::from_caps(&negotiated_or(p.src_caps(), PNGDEC_SRC), p.instance())?;
        Ok(ElementImpl::Transform(Box::new(PngDec {
            info,
            pending: Pending::default(),
        })))
    },
};

/// pngdec's state: the frame layout and the bytes of the image being gathered.
struct PngDec {
    info: VideoInfo,
    pending: Pending,
}

/// The length of the first complete PNG in `data` (signature through IEND), `None` while it
/// is incomplete; an error names what is wrong and its offset in `data`.
fn png_len(data: &[u8]) -> Result<Option<usize>, (usize, String)> {
    let head = data.len().min(8);
    if data[..head] != PNG_SIGNATURE[..head] {
        return Err((0, "not a PNG image: the signature is wrong".into()));
    }
    let mut at = 8;
    while at + 8 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len > i32::MAX as usize {
            return Err((at, format!("a chunk claims {len} bytes")));
        }
        let end = at + 12 + len;
        if &data[at + 4..at + 8] == b"IEND" {
            return Ok((end <= data.len()).then_some(end));
        }
        at = end;
    }
    Ok(None)
}

impl PngDec {
    fn decode(&self, png: Vec<u8>, offset: u64) -> Result<Vec<u8>, ElementError> {
        let bad = |what: String| bad_stream(offset, what);
        let mut decoder = png::Decoder::new_with_limits(
            std::io::Cursor::new(png),
            png::Limits {
                bytes: (MAX_PIXELS * 8) as usize,
            },
        );
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
        let (w, h) = (reader.info().width as usize, reader.info().height as usize);
        if (w, h) != (self.info.width, self.info.height) {
            return Err(bad(format!(
                "the image is {w}x{h}, but the stream was negotiated as {}x{}",
                self.info.width, self.info.height
            )));
        }
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| bad("the image is too large".into()))?;
        let mut decoded = vec![0; size];
        let out = reader
            .next_frame(&mut decoded)
            .map_err(|e| bad(e.to_string()))?;
        let channels = out.color_type.samples();
        let pixels = &decoded[..w * h * channels];
        Ok(self.convert(pixels, channels))
    }

    /// The frame of `pixels` (tight, 8-bit, `channels` samples: gray, gray+alpha, RGB, RGBA)
    /// in the negotiated format.
    fn convert(&self, pixels: &[u8], channels: usize) -> Vec<u8> {
        let info = &self.info;
        let want = pixel_bytes(info.format).expect("pngdec's formats are packed");
        if want == channels {
            return to_strided(pixels, info.width * want, info);
        }
        let mut tight = Vec::with_capacity(info.width * info.height * want);
        for px in pixels.chunks_exact(channels) {
            let (rgb, alpha) = match channels {
                1 => ([px[0]; 3], 255),
                2 => ([px[0]; 3], px[1]),
                3 => ([px[0], px[1], px[2]], 255),
                _ => ([px[0], px[1], px[2]], px[3]),
            };
            match want {
                1 => {
                    // BT.601 luma, as gst's videoconvert computes grey from RGB.
                    let y = (rgb[0] as u32 * 77 + rgb[1] as u32 * 150 + rgb[2] as u32 * 29) >> 8;
                    tight.push(y as u8);
                }
                3 => tight.extend_from_slice(&rgb),
                _ => {
                    tight.extend_from_slice(&rgb);
                    tight.push(alpha);
                }
            }
        }
        to_strided(&tight, info.width * want, info)
    }
}

impl Transform for PngDec {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        self.pending.push(&buf);
        loop {
            let at = self.pending.at;
            match png_len(&self.pending.bytes) {
                Err((off, what)) => return Err(bad_stream(at + off as u64, what)),
                Ok(None) => return Ok(Flow::Held),
                Ok(Some(n)) => {
                    let pts = self.pending.pts;
                    let png = self.pending.take(n);
                    let mut frame = Buffer::from_vec(self.decode(png, at)?);
                    frame.meta.set_pts(pts.or(buf.meta.pts()));
                    cx.push(frame);
                    if self.pending.bytes.is_empty() {
                        return Ok(Flow::Held);
                    }
                }
            }
        }
    }

    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self.pending.bytes.is_empty() {
            return Ok(());
        }
        Err(bad_stream(
            self.pending.at,
            format!(
                "the stream ends inside a PNG image ({} bytes of it)",
                self.pending.bytes.len()
            ),
        ))
    }
}

const PNGENC_SINK: &str = concat!(
    "video/x-raw, format=(string){ RGBA, RGB, GRAY8 }, width=(int)[ 1, 2147483647 ], ",
    "height=(int)[ 1, 2147483647 ], framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

static PNGENC_CAPS: CapsFns = CapsFns {
    forward: |input, _| carry(input, PNG_CAPS, GEOMETRY),
    backward: |down, _| carry(down, PNGENC_SINK, GEOMETRY),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static PNGENC: Factory = Factory {
    name: "pngenc",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Encode a video frame to a .png image",
    doc: "Encodes each RGBA, RGB or GRAY8 frame into one PNG image (8 bits a sample, no \
          interlacing), as one buffer. compression-level picks the deflate effort; with \
          snapshot=true the stream ends after the first image.",
    pads: Pads::ONE_TO_ONE
        .with_caps(PNGENC_SINK, PNG_CAPS)
        .with_rule(CapsRule::Derived(&PNGENC_CAPS)),
    props: &[
        PropSpec::uint(
            "compression-level",
            6,
            0,
            9,
            "PNG compression level (0 = none, 9 = most)",
        ),
        PropSpec::bool("snapshot", false, "Send EOS after encoding a frame"),
    ],
    hints: ENCODER,
    build: |p| {
        let info = VideoInfo::from_caps(&negotiated_or(p.sink_caps(), PNGENC_SINK), p.instance())?;
        let compression = match p.uint("compression-level")? {
            0 => png::Compression::NoCompression,
            1 => png::Compression::Fastest,
            2 | 3 => png::Compression::Fast,
            4..=6 => png::Compression::Balanced,
            _ => png::Compression::High,
        };
        Ok(ElementImpl::Transform(Box::new(PngEnc {
            info,
            compression,
            snapshot: p.bool("snapshot")?,
        })))
    },
};

/// pngenc's state: the frame layout and the encoder settings.
struct PngEnc {
    info: VideoInfo,
    compression: png::Compression,
    snapshot: bool,
}

impl Transform for PngEnc {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if buf.is_empty() {
            // A zero-length buffer carries no frame (a gap): nothing to encode.
            return Ok(Flow::Drop);
        }
        let info = &self.info;
        let frame = frame_of(&buf, info)?;
        let (color, bpp) = match info.format {
            PixelFormat::Gray8 => (png::ColorType::Grayscale, 1),
            PixelFormat::Rgb3(_) => (png::ColorType::Rgb, 3),
            _ => (png::ColorType::Rgba, 4),
        };
        let tight = to_tight(frame, info.width * bpp, info);
        let mut out = Vec::with_capacity(tight.len() / 2 + 1024);
        let failed = |e: png::EncodingError| ElementError::Failed(e.to_string());
        {
            let mut enc = png::Encoder::new(&mut out, info.width as u32, info.height as u32);
            enc.set_color(color);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(self.compression);
            let mut writer = enc.write_header().map_err(failed)?;
            writer.write_image_data(&tight).map_err(failed)?;
            writer.finish().map_err(failed)?;
        }
        let mut png = Buffer::from_vec(out);
        png.meta.set_pts(buf.meta.pts());
        png.meta.set_duration(buf.meta.duration());
        if self.snapshot {
            cx.push(png);
            return Ok(Flow::Eos);
        }
        Ok(Flow::Push(png))
    }
}

// --- jpegdec / jpegenc ----------------------------------------------------------------------

const JPEG_CAPS: &str = concat!(
    "image/jpeg, width=(int)[ 1, 65535 ], height=(int)[ 1, 65535 ], ",
    "framerate=(fraction)[ 0/1, 2147483647/1 ]"
);
const JPEGDEC_SRC: &str = concat!(
    "video/x-raw, format=(string){ RGB, BGR, RGBx, BGRx, GRAY8 }, width=(int)[ 1, 65535 ], ",
    "height=(int)[ 1, 65535 ], framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

static JPEGDEC_CAPS: CapsFns = CapsFns {
    forward: |input, _| carry(input, JPEGDEC_SRC, GEOMETRY),
    backward: |down, _| carry(down, JPEG_CAPS, GEOMETRY),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static JPEGDEC: Factory = Factory {
    name: "jpegdec",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Decode images from JPEG format",
    doc: "Decodes each JPEG image of the stream (baseline or progressive, found by its markers \
          whatever the buffers' sizes) into one frame of the negotiated format: RGB unless \
          downstream asks for BGR, RGBx, BGRx or GRAY8 (gst's jpegdec prefers I420 for colour \
          images; put videoconvert after it for YUV). A marker or segment that is wrong is an \
          error naming the byte where the image starts; so is an image cut short at end of \
          stream.",
    pads: Pads::ONE_TO_ONE
        .with_caps(JPEG_CAPS, JPEGDEC_SRC)
        .with_rule(CapsRule::Derived(&JPEGDEC_CAPS)),
    props: &[],
    hints: DECODER,
    build: |p| {
        let info = VideoInfo::from_caps(&negotiated_or(p.src_caps(), JPEGDEC_SRC), p.instance())?;
        Ok(ElementImpl::Transform(Box::new(JpegDec {
            info,
            pending: Pending::default(),
        })))
    },
};

/// jpegdec's state: the frame layout and the bytes of the image being gathered.
struct JpegDec {
    info: VideoInfo,
    pending: Pending,
}

/// The length of the first complete JPEG in `data` (SOI through EOI), walking its segments
/// and entropy-coded data so that a thumbnail's EOI inside APP1 does not end it; `None` while
/// it is incomplete.
pub(crate) fn jpeg_len(data: &[u8]) -> Result<Option<usize>, (usize, String)> {
    if data.len() >= 2 && data[..2] != [0xFF, 0xD8] || data.first().is_some_and(|b| *b != 0xFF) {
        return Err((0, "not a JPEG image: no start-of-image marker".into()));
    }
    let mut at = 2;
    loop {
        // Fill bytes (0xFF runs) may precede a marker.
        while at + 1 < data.len() && data[at] == 0xFF && data[at + 1] == 0xFF {
            at += 1;
        }
        if at + 2 > data.len() {
            return Ok(None);
        }
        if data[at] != 0xFF {
            return Err((at, format!("expected a marker, found 0x{:02X}", data[at])));
        }
        let marker = data[at + 1];
        match marker {
            0xD9 => return Ok(Some(at + 2)),
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                if at + 4 > data.len() {
                    return Ok(None);
                }
                let len = u16::from_be_bytes([data[at + 2], data[at + 3]]) as usize;
                if len < 2 {
                    return Err((at, format!("segment 0xFF{marker:02X} claims {len} bytes")));
                }
                at += 2 + len;
                if marker == 0xDA {
                    // Entropy-coded data: runs until a marker other than stuffing or RSTn.
                    loop {
                        match memchr_ff(&data[at.min(data.len())..]) {
                            None => return Ok(None),
                            Some(i) => {
                                let m = at + i;
                                if m + 1 >= data.len() {
                                    return Ok(None);
                                }
                                match data[m + 1] {
                                    0x00 | 0xD0..=0xD7 | 0xFF => at = m + 1,
                                    _ => {
                                        at = m;
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn memchr_ff(data: &[u8]) -> Option<usize> {
    data.iter().position(|b| *b == 0xFF)
}

impl JpegDec {
    fn decode(&self, jpeg: &[u8], offset: u64) -> Result<Vec<u8>, ElementError> {
        use zune_jpeg::zune_core::bytestream::ZCursor;
        use zune_jpeg::zune_core::colorspace::ColorSpace;
        use zune_jpeg::zune_core::options::DecoderOptions;
        let bad = |what: String| bad_stream(offset, what);
        let info = &self.info;
        let (space, bpp) = match info.format {
            PixelFormat::Gray8 => (ColorSpace::Luma, 1),
            PixelFormat::Rgb3([2, 1, 0]) => (ColorSpace::BGR, 3),
            PixelFormat::Rgb3(_) => (ColorSpace::RGB, 3),
            PixelFormat::Rgb4([2, 1, 0], _) => (ColorSpace::BGRA, 4),
            _ => (ColorSpace::RGBA, 4),
        };
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(space)
            .set_max_width(65535)
            .set_max_height(65535);
        let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
        decoder.decode_headers().map_err(|e| bad(e.to_string()))?;
        let (w, h) = decoder
            .dimensions()
            .ok_or_else(|| bad("no image size".into()))?;
        if (w, h) != (info.width, info.height) {
            return Err(bad(format!(
                "the image is {w}x{h}, but the stream was negotiated as {}x{}",
                info.width, info.height
            )));
        }
        let mut tight = vec![0; w * h * bpp];
        decoder
            .decode_into(&mut tight)
            .map_err(|e| bad(e.to_string()))?;
        Ok(to_strided(&tight, w * bpp, info))
    }
}

impl Transform for JpegDec {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        // An image can only end in a chunk that holds an EOI marker (or its second byte):
        // walking the whole image again for every chunk would be quadratic.
        let fresh = self.pending.bytes.len().saturating_sub(1);
        self.pending.push(&buf);
        let started = self.pending.bytes.len() <= buf.len() + 1;
        if !started && memchr::memmem::find(&self.pending.bytes[fresh..], b"\xFF\xD9").is_none() {
            return Ok(Flow::Held);
        }
        loop {
            let at = self.pending.at;
            match jpeg_len(&self.pending.bytes) {
                Err((off, what)) => return Err(bad_stream(at + off as u64, what)),
                Ok(None) => return Ok(Flow::Held),
                Ok(Some(n)) => {
                    let pts = self.pending.pts;
                    let jpeg = self.pending.take(n);
                    let mut frame = Buffer::from_vec(self.decode(&jpeg, at)?);
                    frame.meta.set_pts(pts.or(buf.meta.pts()));
                    cx.push(frame);
                    if self.pending.bytes.is_empty() {
                        return Ok(Flow::Held);
                    }
                }
            }
        }
    }

    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self.pending.bytes.is_empty() {
            return Ok(());
        }
        Err(bad_stream(
            self.pending.at,
            format!(
                "the stream ends inside a JPEG image ({} bytes of it)",
                self.pending.bytes.len()
            ),
        ))
    }
}

const JPEGENC_SINK: &str = concat!(
    "video/x-raw, format=(string){ RGB, BGR, RGBx, BGRx, RGBA, BGRA, GRAY8 }, ",
    "width=(int)[ 1, 65535 ], height=(int)[ 1, 65535 ], ",
    "framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

static JPEGENC_CAPS: CapsFns = CapsFns {
    forward: |input, _| carry(input, JPEG_CAPS, GEOMETRY),
    backward: |down, _| carry(down, JPEGENC_SINK, GEOMETRY),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static JPEGENC: Factory = Factory {
    name: "jpegenc",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Encode images in JPEG format",
    doc: "Encodes each frame into one baseline JPEG image (YCbCr with full-resolution chroma, \
          4:4:4, as gst's jpegenc keeps RGB input) at the given quality. With snapshot=true the stream ends \
          after the first image.",
    pads: Pads::ONE_TO_ONE
        .with_caps(JPEGENC_SINK, JPEG_CAPS)
        .with_rule(CapsRule::Derived(&JPEGENC_CAPS)),
    props: &[
        PropSpec::int("quality", 85, 0, 100, "Quality of encoding"),
        PropSpec::bool("snapshot", false, "Send EOS after encoding a frame"),
    ],
    hints: ENCODER,
    build: |p| {
        let info = VideoInfo::from_caps(&negotiated_or(p.sink_caps(), JPEGENC_SINK), p.instance())?;
        Ok(ElementImpl::Transform(Box::new(JpegEnc {
            info,
            quality: p.int("quality")?.clamp(1, 100) as u8,
            snapshot: p.bool("snapshot")?,
        })))
    },
};

/// The JPEG standard's luminance table (Annex K) scaled to `quality` as libjpeg scales it
/// (`jpeg_quality_scaling`), in natural order.
fn luma_table(quality: u8) -> [u16; 64] {
    const ANNEX_K: [u16; 64] = [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
        56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
        104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ];
    let q = quality.clamp(1, 100) as u32;
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    ANNEX_K.map(|v| ((v as u32 * scale + 50) / 100).clamp(1, 255) as u16)
}

/// jpegenc's state: the frame layout and the quality.
struct JpegEnc {
    info: VideoInfo,
    quality: u8,
    snapshot: bool,
}

impl Transform for JpegEnc {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        use jpeg_encoder::ColorType;
        if buf.is_empty() {
            // A zero-length buffer carries no frame (a gap): nothing to encode.
            return Ok(Flow::Drop);
        }
        let info = &self.info;
        let frame = frame_of(&buf, info)?;
        let (color, bpp) = match info.format {
            PixelFormat::Gray8 => (ColorType::Luma, 1),
            PixelFormat::Rgb3([2, 1, 0]) => (ColorType::Bgr, 3),
            PixelFormat::Rgb3(_) => (ColorType::Rgb, 3),
            PixelFormat::Rgb4([2, 1, 0], _) => (ColorType::Bgra, 4),
            _ => (ColorType::Rgba, 4),
        };
        let tight = to_tight(frame, info.width * bpp, info);
        let mut out = Vec::with_capacity(tight.len() / 8 + 1024);
        let mut enc = jpeg_encoder::Encoder::new(&mut out, self.quality);
        // RGB comes in at full resolution in every colour and gst's jpegenc keeps it so
        // (4:4:4): halving the chroma (4:2:0) costs little on smooth pictures but loses most
        // of a noisy one's colour detail.
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1);
        // gst's jpegenc writes RGB input as RGB, each colour with the luminance table. Here
        // it becomes YCbCr, whose chroma errors reach R and B 1.4 and 1.8 times larger: the
        // chroma step is half the luminance one (not the coarser chrominance table), so that
        // colour noise keeps gst's fidelity (31 dB where gst's has 33; 10.6 before).
        let table = luma_table(self.quality);
        let chroma = table.map(|v| (v / 2).max(1));
        enc.set_quantization_tables(
            jpeg_encoder::QuantizationTableType::Custom(Box::new(table)),
            jpeg_encoder::QuantizationTableType::Custom(Box::new(chroma)),
        );
        enc.encode(&tight, info.width as u16, info.height as u16, color)
            .map_err(|e| ElementError::Failed(e.to_string()))?;
        let mut jpeg = Buffer::from_vec(out);
        jpeg.meta.set_pts(buf.meta.pts());
        jpeg.meta.set_duration(buf.meta.duration());
        if self.snapshot {
            cx.push(jpeg);
            return Ok(Flow::Eos);
        }
        Ok(Flow::Push(jpeg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info(format: &str, w: usize, h: usize) -> VideoInfo {
        VideoInfo::new(
            PixelFormat::parse(format).unwrap(),
            w,
            h,
            Fraction { num: 0, den: 1 },
        )
    }

    /// A 37x23 frame of `format` with every byte different from its neighbours.
    fn frame(format: &str) -> (VideoInfo, Vec<u8>) {
        let i = info(format, 37, 23);
        let bytes = (0..i.size).map(|n| (n * 7 % 251) as u8).collect();
        (i, bytes)
    }

    fn encode(t: &mut dyn Transform, frame: Vec<u8>) -> Vec<u8> {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        match t.process(Buffer::from_vec(frame), &mut cx).unwrap() {
            Flow::Push(b) => b.data().to_vec(),
            other => panic!("{other:?}"),
        }
    }

    /// Feeds `bytes` in chunks of `chunk` to `dec`, then end of stream: the frames out, or
    /// the first error.
    fn decode_chunked(
        dec: &mut dyn Transform,
        bytes: &[u8],
        chunk: usize,
    ) -> Result<Vec<Vec<u8>>, ElementError> {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        for c in bytes.chunks(chunk.max(1)) {
            dec.process(Buffer::from_vec(c.to_vec()), &mut cx)?;
        }
        dec.flush(&mut cx)?;
        Ok(cx.take_pushed().map(|b| b.data().to_vec()).collect())
    }

    fn png_of(format: &str) -> (VideoInfo, Vec<u8>, Vec<u8>) {
        let (i, raw) = frame(format);
        let mut enc = PngEnc {
            info: i.clone(),
            compression: png::Compression::Fast,
            snapshot: false,
        };
        let png = encode(&mut enc, raw.clone());
        (i, raw, png)
    }

    #[test]
    fn png_round_trips_bit_exact_in_every_format_and_chunking() {
        for format in ["RGBA", "RGB", "GRAY8"] {
            let (i, raw, png) = png_of(format);
            for chunk in [1, 7, 4096] {
                let mut dec = PngDec {
                    info: i.clone(),
                    pending: Pending::default(),
                };
                let frames = decode_chunked(&mut dec, &png, chunk).unwrap();
                assert_eq!(frames.len(), 1, "{format}");
                // Strides pad RGB and GRAY8 rows: only the pixels must match.
                let row = i.width * pixel_bytes(i.format).unwrap();
                for y in 0..i.height {
                    let at = y * i.stride[0];
                    assert_eq!(
                        frames[0][at..at + row],
                        raw[at..at + row],
                        "{format} row {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn two_pngs_in_one_buffer_are_two_frames() {
        let (i, _, png) = png_of("RGB");
        let mut dec = PngDec {
            info: i,
            pending: Pending::default(),
        };
        let twice = [png.clone(), png].concat();
        assert_eq!(
            decode_chunked(&mut dec, &twice, twice.len()).unwrap().len(),
            2
        );
    }

    #[test]
    fn cut_png_is_an_error_with_its_offset() {
        let (i, _, png) = png_of("RGB");
        let mut dec = PngDec {
            info: i,
            pending: Pending::default(),
        };
        let cut = &png[..png.len() / 2];
        let e = decode_chunked(&mut dec, cut, 100).unwrap_err().to_string();
        assert!(
            e.contains("ends inside a PNG image") && e.ends_with("(at byte 0)"),
            "{e}"
        );
    }

    fn jpeg_of(format: &str, w: usize, h: usize) -> (VideoInfo, Vec<u8>, Vec<u8>) {
        let i = info(format, w, h);
        // A smooth gradient, without wrap-arounds: what JPEG is for.
        let bpp = pixel_bytes(i.format).unwrap();
        let mut raw = vec![0; i.size];
        for y in 0..h {
            for x in 0..w {
                for c in 0..bpp {
                    raw[y * i.stride[0] + x * bpp + c] = [x * 2 + y, y * 3, 200 - x * 2][c] as u8;
                }
            }
        }
        let mut enc = JpegEnc {
            info: i.clone(),
            quality: 90,
            snapshot: false,
        };
        let jpeg = encode(&mut enc, raw.clone());
        (i, raw, jpeg)
    }

    /// PSNR in dB of `b` against `a`, over the pixels of `i` (not the stride padding).
    fn psnr(i: &VideoInfo, a: &[u8], b: &[u8]) -> f64 {
        let row = i.width * pixel_bytes(i.format).unwrap();
        let mut sum = 0.0;
        for y in 0..i.height {
            let at = y * i.stride[0];
            for (p, q) in a[at..at + row].iter().zip(&b[at..at + row]) {
                sum += (*p as f64 - *q as f64).powi(2);
            }
        }
        let mse = sum / (row * i.height) as f64;
        10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
    }

    #[test]
    fn jpeg_round_trip_keeps_size_within_35_db() {
        for format in ["RGB", "GRAY8"] {
            let (i, raw, jpeg) = jpeg_of(format, 64, 48);
            let mut dec = JpegDec {
                info: i.clone(),
                pending: Pending::default(),
            };
            let frames = decode_chunked(&mut dec, &jpeg, 333).unwrap();
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].len(), i.size);
            let db = psnr(&i, &raw, &frames[0]);
            assert!(db > 35.0, "{format}: {db:.1} dB");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Flipped bytes, a cut, any chunking: an error or frames, never a panic or a hang.
        #[test]
        fn corrupted_images_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
            chunk in 1usize..5000,
            jpeg in any::<bool>(),
        ) {
            let (i, _, mut bytes) = if jpeg { jpeg_of("RGB", 40, 24) } else { png_of("RGB") };
            for (at, v) in flips {
                let n = bytes.len();
                bytes[at % n] ^= v;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let mut dec: Box<dyn Transform> = if jpeg {
                Box::new(JpegDec { info: i, pending: Pending::default() })
            } else {
                Box::new(PngDec { info: i, pending: Pending::default() })
            };
            if let Err(e) = decode_chunked(dec.as_mut(), &bytes, chunk) {
                prop_assert!(e.to_string().contains("(at byte "), "{}", e);
            }
        }
    }

    #[test]
    fn png_framing_finds_iend_and_refuses_other_bytes() {
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(&[0, 0, 0, 0]);
        png.extend_from_slice(b"IEND");
        png.extend_from_slice(&[0xAE, 0x42, 0x60, 0x82]);
        assert_eq!(png_len(&png), Ok(Some(20)));
        assert_eq!(png_len(&png[..19]), Ok(None));
        assert_eq!(png_len(&png[..3]), Ok(None));
        assert!(png_len(b"GIF89a").is_err());
    }

    #[test]
    fn jpeg_framing_skips_segments_and_stuffing() {
        let jpeg = [
            0xFF, 0xD8, // SOI
            0xFF, 0xE1, 0, 6, 0xFF, 0xD9, 0, 0, // APP1 holding a stray EOI
            0xFF, 0xDA, 0, 2, // SOS
            1, 0xFF, 0x00, 2, 0xFF, 0xD0, 3, // data, stuffing, RST0
            0xFF, 0xD9, // EOI
        ];
        assert_eq!(jpeg_len(&jpeg), Ok(Some(jpeg.len())));
        assert_eq!(jpeg_len(&jpeg[..jpeg.len() - 1]), Ok(None));
        assert!(jpeg_len(b"\x89PNG").is_err());
    }
}
