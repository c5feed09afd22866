//! `qtdemux`: MP4/QuickTime files into their tracks' samples.
//!
//! The boxes of `moov` are read by Mozilla's `mp4parse` (Firefox's MP4 parser); this file
//! only walks the top-level boxes as bytes come in, turns each track's sample tables (stsc,
//! stco/co64, stsz, stts, ctts, stss) into a list of samples with their file offsets and
//! times, and cuts the samples out of `mdat` in file order: a sample that lies inside one
//! incoming buffer leaves as a slice of it (with `filesrc`, of the mapped file: no copy at
//! all), one across buffers as a copy. Each sample leaves on its track's
//! pad (`video_0`, `audio_0`, numbered per kind in track order as gst's), stamped with pts
//! (composition time, after the edit list's media start), dts, duration and the delta-unit
//! flag for non-sync video samples.
//!
//! A file whose `moov` comes after `mdat` (gst's mp4mux writes them so unless `faststart`) is
//! demuxed by holding `mdat` until `moov` is read, up to [`MAX_HELD`] bytes; a faststart file
//! streams with only the current sample held. A box or table that contradicts itself, a
//! sample outside the file and a file cut short are errors naming the byte offset.

use super::bad_stream;
use crate::element::prelude::*;

/// Bytes of a file qtdemux holds at most while it waits for `moov` (or for one sample).
pub(crate) const MAX_HELD: usize = 1 << 30;
/// The largest `moov` read.
const MAX_MOOV: u64 = 256 << 20;

/// One track that has a pad.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    /// `video_0`, `audio_1`.
    pub(crate) pad: String,
    /// What [`Track::pad`] routes as (see [`pad_number`]).
    pub(crate) number: u32,
    pub(crate) caps: Caps,
}

/// One sample of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    offset: u64,
    size: u32,
    /// Index into the tracks.
    track: u16,
    dts: u64,
    pts: u64,
    duration: u64,
    sync: bool,
}

/// A pad's route number: `video_N` is N, `audio_N` is 1<<16 | N, `subtitle_N` 2<<16 | N.
pub(crate) fn pad_number(pad: &str) -> Option<u32> {
    let (kind, n) = pad.rsplit_once('_')?;
    let n: u32 = n.parse().ok().filter(|n| *n < 1 << 16)?;
    let k = match kind {
        "video" => 0,
        "audio" => 1,
        "subtitle" => 2,
        _ => return None,
    };
    Some(k << 16 | n)
}

/// The movie: its tracks with pads and every sample, in file order.
#[derive(Debug, Default)]
struct Movie {
    tracks: Vec<Track>,
    samples: Vec<Sample>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A track's caps, or `None` for a codec qtdemux gives no pad.
fn track_caps(entry: &mp4parse::SampleEntry) -> Option<(&'static str, Caps)> {
    use mp4parse::{AudioCodecSpecific, CodecType, SampleEntry, VideoCodecSpecific};
    let text = match entry {
        SampleEntry::Video(v) => {
            let size = format!("width=(int){}, height=(int){}", v.width, v.height);
            match (&v.codec_type, &v.codec_specific) {
                (CodecType::H264, VideoCodecSpecific::AVCConfig(avcc)) => (
                    "video",
                    format!(
                        "video/x-h264, stream-format=(string)avc, alignment=(string)au, {size}, \
                         codec_data=(string){}",
                        hex(avcc)
                    ),
                ),
                (CodecType::AV1, VideoCodecSpecific::AV1Config(av1c))
                    if av1c.raw_config.iter().skip(1).any(|b| *b != 0) =>
                {
                    (
                        "video",
                        format!(
                            "video/x-av1, stream-format=(string)obu-stream, alignment=(string)tu, \
                         {size}, codec_data=(string){}",
                            hex(&av1c.raw_config)
                        ),
                    )
                }
                // An av1C without a config record (some muxers write it empty).
                (CodecType::AV1, _) => (
                    "video",
                    format!(
                        "video/x-av1, stream-format=(string)obu-stream, alignment=(string)tu, \
                         {size}"
                    ),
                ),
                (CodecType::VP9, _) => ("video", format!("video/x-vp9, {size}")),
                _ => return None,
            }
        }
        SampleEntry::Audio(a) => {
            let (rate, channels) = (a.samplerate as i64, a.channelcount as i64);
            match (&a.codec_type, &a.codec_specific) {
                (CodecType::AAC, AudioCodecSpecific::ES_Descriptor(es)) => (
                    "audio",
                    format!(
                        "audio/mpeg, mpegversion=(int)4, stream-format=(string)raw, \
                         framed=(boolean)true, rate=(int){}, channels=(int){}, \
                         codec_data=(string){}",
                        es.audio_sample_rate.map_or(rate, i64::from),
                        es.audio_channel_count.map_or(channels, i64::from),
                        hex(&es.decoder_specific_data)
                    ),
                ),
                (CodecType::MP3, _) => (
                    "audio",
                    format!(
                        "audio/mpeg, mpegversion=(int)1, layer=(int)3, parsed=(boolean)true, \
                         rate=(int){rate}, channels=(int){channels}"
                    ),
                ),
                (CodecType::Opus, _) => (
                    "audio",
                    format!("audio/x-opus, rate=(int){rate}, channels=(int){channels}"),
                ),
                _ => return None,
            }
        }
        SampleEntry::Unknown => return None,
    };
    Some((text.0, Caps::parse(&text.1).ok()?))
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `value * 1e9 / timescale` without overflow.
fn to_ns(value: u64, timescale: u64) -> u64 {
    (value as u128 * 1_000_000_000 / timescale.max(1) as u128).min(u64::MAX as u128) as u64
}

/// Reads the movie from `moov`'s bytes (the whole box, its header included) at file offset
/// `at`; `file_len` bounds the samples (`None` while unknown).
fn read_movie(moov: &[u8], at: u64) -> Result<Movie, String> {
    // mp4parse wants a file type first; the file's own is not needed for the tracks.
    let mut bytes = b"\0\0\0\x14ftypisom\0\0\0\0isom".to_vec();
    bytes.extend_from_slice(moov);
    // gst's mp4mux writes an empty av1C (no marker byte) when the encoder gave no sequence
    // header; mp4parse refuses that entry, so it is read as a config without OBUs.
    let mut from = 0;
    while let Some(i) = find(&bytes[from..], b"av1C").map(|i| i + from) {
        if i >= 4 && i + 5 <= bytes.len() {
            let size = u32::from_be_bytes(bytes[i - 4..i].try_into().expect("4 bytes"));
            if size >= 9 && bytes[i + 4] & 0x80 == 0 {
                bytes[i + 4] = 0x81;
            }
        }
        from = i + 4;
    }
    let ctx = mp4parse::read_mp4(&mut std::io::Cursor::new(bytes))
        .map_err(|e| format!("the moov box at byte {at} does not parse: {e:?}"))?;
    let mut movie = Movie::default();
    let mut per_kind = [0u32; 3];
    for t in ctx.tracks.iter() {
        let Some(entry) = t.stsd.as_ref().and_then(|s| s.descriptions.first()) else {
            continue;
        };
        let Some((kind, caps)) = track_caps(entry) else {
            continue;
        };
        let k = usize::from(kind == "audio");
        let pad = format!("{kind}_{}", per_kind[k]);
        per_kind[k] += 1;
        let index = movie.tracks.len() as u16;
        let number = pad_number(&pad).expect("made above");
        samples_of(t, index, &mut movie.samples)
            .map_err(|e| format!("track {} ({pad}): {e}", t.track_id.unwrap_or(0)))?;
        movie.tracks.push(Track { pad, number, caps });
    }
    movie.samples.sort_by_key(|s| (s.offset, s.track));
    Ok(movie)
}

/// Appends track `t`'s samples (as track `index`) to `out`.
fn samples_of(t: &mp4parse::Track, index: u16, out: &mut Vec<Sample>) -> Result<(), String> {
    let timescale = t.timescale.map_or(0, |s| s.0);
    if timescale == 0 {
        return Err("no timescale".into());
    }
    let (Some(stsc), Some(stco), Some(stsz), Some(stts)) = (&t.stsc, &t.stco, &t.stsz, &t.stts)
    else {
        return Err("a sample table box is missing".into());
    };
    let count: usize = if stsz.sample_size == 0 {
        stsz.sample_sizes.len()
    } else {
        stts.samples.iter().map(|s| s.sample_count as usize).sum()
    };
    if count > 50_000_000 {
        return Err(format!("{count} samples is more than any file holds"));
    }
    let size_of = |i: usize| -> u32 {
        if stsz.sample_size == 0 {
            stsz.sample_sizes[i]
        } else {
            stsz.sample_size
        }
    };
    // Offsets: chunk by chunk, stsc saying how many samples each chunk holds.
    let mut offsets = Vec::with_capacity(count);
    let chunks = stco.offsets.len();
    for (e, entry) in stsc.samples.iter().enumerate() {
        let first = entry.first_chunk.max(1) as usize - 1;
        let last = stsc
            .samples
            .get(e + 1)
            .map_or(chunks, |n| (n.first_chunk.max(1) as usize - 1).min(chunks));
        for chunk in first..last {
            let mut at = stco.offsets[chunk];
            for _ in 0..entry.samples_per_chunk {
                if offsets.len() == count {
                    break;
                }
                let size = size_of(offsets.len());
                offsets.push((at, size));
                at = at
                    .checked_add(u64::from(size))
                    .ok_or("a sample lies past 2^64")?;
            }
        }
    }
    if offsets.len() < count {
        return Err(format!(
            "the chunks hold {} samples, the sizes give {count}",
            offsets.len()
        ));
    }
    // Times: stts deltas, ctts offsets, shifted by the edit list's media start.
    let mut deltas = stts
        .samples
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.sample_delta, s.sample_count as usize));
    let mut cts = t.ctts.as_ref().map(|c| {
        c.samples.iter().flat_map(|s| {
            let v = match s.time_offset {
                mp4parse::TimeOffsetVersion::Version0(v) => i64::from(v),
                mp4parse::TimeOffsetVersion::Version1(v) => i64::from(v),
            };
            std::iter::repeat_n(v, s.sample_count as usize)
        })
    });
    let start = t.media_time.map_or(0, |m| m.0) as i64;
    let sync: Option<std::collections::HashSet<u32>> =
        t.stss.as_ref().map(|s| s.samples.iter().copied().collect());
    let video = t.track_type == mp4parse::TrackType::Video;
    let mut dts: u64 = 0;
    for (i, (offset, size)) in offsets.into_iter().enumerate() {
        let delta = u64::from(deltas.next().unwrap_or(0));
        let shift = cts.as_mut().and_then(|c| c.next()).unwrap_or(0);
        let pts = (dts as i64)
            .saturating_add(shift)
            .saturating_sub(start)
            .max(0) as u64;
        let dts_shifted = (dts as i64).saturating_sub(start).max(0) as u64;
        out.push(Sample {
            offset,
            size,
            track: index,
            dts: to_ns(dts_shifted, timescale),
            pts: to_ns(pts, timescale),
            duration: to_ns(pts.saturating_add(delta), timescale) - to_ns(pts, timescale),
            sync: !video || sync.as_ref().is_none_or(|s| s.contains(&(i as u32 + 1))),
        });
        dts = dts.saturating_add(delta);
    }
    Ok(())
}

/// A top-level box header at the start of `b`: (box size or `None` for "to the end", header
/// length, type); `None` while `b` is too short to tell.
fn box_header(b: &[u8]) -> Option<(Option<u64>, u64, [u8; 4])> {
    let head = b.get(..8)?;
    let size = u32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
    let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
    Some(match size {
        0 => (None, 8, kind),
        1 => {
            let large = u64::from_be_bytes(b.get(8..16)?.try_into().expect("8 bytes"));
            (Some(large), 16, kind)
        }
        n => (Some(u64::from(n)), 8, kind),
    })
}

/// The tracks of the MP4 file at `path`, for decodebin and validation: reads the top-level
/// boxes up to `moov` (seeking over the others) and the movie's tracks.
pub(crate) fn tracks_of_file(path: &std::path::Path) -> Result<Vec<Track>, String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut at = 0u64;
    while at < len {
        let mut head = [0u8; 16];
        let n = ((len - at) as usize).min(16);
        f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
        f.read_exact(&mut head[..n]).map_err(|e| e.to_string())?;
        let Some((size, hlen, kind)) = box_header(&head[..n]) else {
            return Err(format!("a box header is cut short at byte {at}"));
        };
        let size = size.unwrap_or(len - at);
        if size < hlen {
            return Err(format!("the box at byte {at} claims {size} bytes"));
        }
        if &kind == b"moov" {
            if size > MAX_MOOV {
                return Err(format!("the moov box at byte {at} claims {size} bytes"));
            }
            let mut moov = vec![0u8; size as usize];
            f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
            f.read_exact(&mut moov)
                .map_err(|_| format!("the moov box at byte {at} is cut short"))?;
            return Ok(read_movie(&moov, at)?.tracks);
        }
        at = at.saturating_add(size);
    }
    Err("no moov box: not an MP4/QuickTime file, or one cut short".into())
}

/// decodebin's view of [`tracks_of_file`].
pub(crate) fn streams_of_file(
    path: &std::path::Path,
    _props: &Props,
) -> Result<Vec<(String, Caps)>, String> {
    Ok(tracks_of_file(path)?
        .into_iter()
        .map(|t| (t.pad, t.caps))
        .collect())
}

/// Bytes of boxes before `moov` that [`streams_of_stream`] reads through at most: they are
/// held until the run passes them on.
const MAX_STREAM_SKIP: u64 = 16 << 20;

/// [`streams_of_file`] on a stream read from its start (a pipe's head lent at validation):
/// the boxes before `moov` are read through, so only a file whose `moov` comes before `mdat`
/// (faststart) can say its tracks before the run.
pub(crate) fn streams_of_stream(
    f: &mut dyn std::io::Read,
    _props: &Props,
) -> Result<Vec<(String, Caps)>, String> {
    use std::io::Read as _;
    let mut at = 0u64;
    loop {
        // 8 bytes, and 8 more for a 64-bit size: never into the next box.
        let mut head = [0u8; 16];
        let mut n = 0;
        while n < 8 || (n < 16 && head[..4] == [0, 0, 0, 1]) {
            let want = if n < 8 { 8 } else { 16 };
            match f.read(&mut head[n..want]).map_err(|e| e.to_string())? {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            return Err("no moov box: not an MP4/QuickTime file, or one cut short".into());
        }
        let Some((size, hlen, kind)) = box_header(&head[..n]) else {
            return Err(format!("a box header is cut short at byte {at}"));
        };
        // A box running to the end of the stream is the media data too.
        let Some(size) = size.filter(|_| &kind != b"mdat") else {
            return Err(format!(
                "the media data (mdat, at byte {at}) comes before the index (moov): from a \
                 stream, only a faststart file's tracks are known before the run"
            ));
        };
        if size < hlen || size < n as u64 {
            return Err(format!("the box at byte {at} claims {size} bytes"));
        }
        if &kind == b"moov" {
            if size > MAX_MOOV {
                return Err(format!("the moov box at byte {at} claims {size} bytes"));
            }
            let mut moov = head[..n].to_vec();
            f.take(size - n as u64)
                .read_to_end(&mut moov)
                .map_err(|e| e.to_string())?;
            if (moov.len() as u64) < size {
                return Err(format!("the moov box at byte {at} is cut short"));
            }
            return Ok(read_movie(&moov, at)?
                .tracks
                .into_iter()
                .map(|t| (t.pad, t.caps))
                .collect());
        }
        at = at.saturating_add(size);
        if at > MAX_STREAM_SKIP {
            return Err(format!(
                "no moov box in the first {MAX_STREAM_SKIP} bytes of the stream"
            ));
        }
        let skipped = std::io::copy(&mut f.take(size - n as u64), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        if skipped < size - n as u64 {
            return Err(format!("the box at byte {} is cut short", at - size));
        }
    }
}

// --- qtdemux -------------------------------------------------------------------------------

pub(crate) static QTDEMUX: Factory = Factory {
    name: "qtdemux",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Demultiplex a QuickTime file into audio and video streams",
    doc: "Reads an MP4/QuickTime file (its boxes parsed by mp4parse) and gives each track's \
          samples on a pad of its own: `video_0`, `video_1`... and `audio_0`... in track \
          order, H.264 as `video/x-h264, stream-format=avc` with the avcC record as \
          `codec_data`, AV1 as `video/x-av1, stream-format=obu-stream` with av1C, AAC as \
          `audio/mpeg, mpegversion=4, stream-format=raw` with its AudioSpecificConfig, MP3, \
          Opus and VP9 too; other tracks get no pad. Each sample is stamped with pts from the \
          sample tables (decode time plus composition offset, minus the edit list's media \
          start), dts, duration and, for video, the delta-unit flag on non-sync samples. The \
          file's tracks are read when the description is validated, so every pad's caps are \
          known before the run and `demux.` without a pad name takes the next track its \
          downstream accepts; the input is a regular file (`filesrc`, `fdsrc < file`), or a \
          pipe carrying a faststart file (moov before mdat), whose head validation reads. \
          A file whose moov follows mdat is held in memory until moov is read (at most 1 GiB); \
          a faststart file streams. Samples leave in file order. A broken box, a table that \
          contradicts itself or a file cut short is an error naming the byte offset.",
    pads: Pads {
        sink: PadPresence::Always("sink"),
        src: PadPresence::Request("video_%u audio_%u"),
        sink_caps: "video/quicktime",
        src_caps: "video/x-h264; video/x-av1; video/x-vp9; audio/mpeg; audio/x-opus",
        rule: CapsRule::Fixed,
    },
    props: &[],
    hints: super::DECODER,
    build: |_| {
        Ok(ElementImpl::Demux {
            imp: Box::new(QtDemux::default()),
            router: Box::new(ByTrack),
        })
    },
};

/// Sends each sample to its track's pad.
struct ByTrack;

impl Router for ByTrack {
    fn route(&mut self, buf: &Buffer) -> Option<u32> {
        Some(buf.meta.stream_id)
    }

    fn pad_number(&self, pad: &str) -> Option<u32> {
        pad_number(pad)
    }
}

/// The bytes qtdemux holds, from file offset `base` on: copies first, then the incoming
/// buffers themselves, so that a sample inside one leaves as a slice of it (no copy: a mapped
/// file's window, an HTTP body's chunk). Memory its source has only so much of (a pool's slots,
/// `filesrc`'s few windows: [`Buffer::is_scarce`]) is held as is only in the newest buffer:
/// when another comes, the bytes still needed move into the copies, so that waiting for `moov`
/// or for a large sample never leaves the source without memory to read into.
#[derive(Default)]
struct Held {
    /// Bytes `base..base + copied.len()`.
    copied: Vec<u8>,
    /// The buffers after them, each with the file offset of its first byte, contiguous.
    chunks: std::collections::VecDeque<(u64, Buffer)>,
    base: u64,
    len: usize,
}

impl Held {
    fn end(&self) -> u64 {
        self.base + self.len as u64
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `buf`, the bytes from [`Held::end`] on.
    fn push(&mut self, buf: Buffer) {
        if buf.is_empty() {
            return;
        }
        if self.chunks.iter().any(|(_, c)| c.is_scarce()) {
            for (_, c) in self.chunks.drain(..) {
                self.copied.extend_from_slice(c.data());
            }
        }
        self.chunks.push_back((self.end(), buf));
        self.len += self.chunks.back().map_or(0, |(_, b)| b.len());
    }

    /// Starts over, empty, at file offset `at`.
    fn restart_at(&mut self, at: u64) {
        self.copied.clear();
        self.chunks.clear();
        self.base = at;
        self.len = 0;
    }

    fn copied_end(&self) -> u64 {
        self.base + self.copied.len() as u64
    }

    /// The chunk holding file offset `at` (>= the copies' end, < end), and `at`'s place in it.
    fn locate(&self, at: u64) -> (usize, usize) {
        let i = self
            .chunks
            .partition_point(|(start, _)| *start <= at)
            .saturating_sub(1);
        (i, (at - self.chunks[i].0) as usize)
    }

    /// Copies the held bytes from `at` (>= base) on into `out`, up to its length; how many
    /// were copied.
    fn copy_to(&self, at: u64, out: &mut [u8]) -> usize {
        let mut n = 0;
        if at < self.copied_end() {
            let piece = &self.copied[(at - self.base) as usize..];
            n = piece.len().min(out.len());
            out[..n].copy_from_slice(&piece[..n]);
        }
        let at = at + n as u64;
        if at >= self.end() || n == out.len() {
            return n;
        }
        let (first, mut rel) = self.locate(at);
        for (_, chunk) in self.chunks.range(first..) {
            let piece = &chunk.data()[rel..];
            let take = piece.len().min(out.len() - n);
            out[n..n + take].copy_from_slice(&piece[..take]);
            n += take;
            rel = 0;
            if n == out.len() {
                break;
            }
        }
        n
    }

    /// Bytes `at..at + len` (all held) as a buffer: a slice of the one buffer holding them, or
    /// a copy.
    fn buffer(&self, at: u64, len: usize) -> Buffer {
        if len == 0 {
            return Buffer::empty();
        }
        if at >= self.copied_end() {
            let (i, rel) = self.locate(at);
            if let Some(slice) = self.chunks[i].1.slice(rel..rel + len) {
                return slice;
            }
        }
        let mut bytes = vec![0; len];
        let n = self.copy_to(at, &mut bytes);
        debug_assert_eq!(n, len, "the caller checked the bytes are held");
        Buffer::from_vec(bytes)
    }

    /// Lets go of the bytes before file offset `keep` (all of them when `keep` is past the end).
    fn drop_before(&mut self, keep: u64) {
        if keep <= self.base {
            return;
        }
        let n = ((keep - self.base) as usize).min(self.len);
        let new_base = self.base + n as u64;
        let from_copies = n.min(self.copied.len());
        self.copied.drain(..from_copies);
        while let Some((start, chunk)) = self.chunks.front_mut() {
            let chunk_end = *start + chunk.len() as u64;
            if chunk_end <= new_base {
                self.chunks.pop_front();
            } else {
                if *start < new_base {
                    let cut = (new_base - *start) as usize;
                    *chunk = chunk.slice(cut..chunk.len()).expect("inside the chunk");
                    *start = new_base;
                }
                break;
            }
        }
        self.base = new_base;
        self.len -= n;
    }
}

/// qtdemux's state.
#[derive(Default)]
struct QtDemux {
    /// Bytes still needed.
    held: Held,
    /// Where the next top-level box starts, while moov is not read.
    scan: u64,
    /// The first mdat's offset, while moov is not read: bytes from there are kept.
    mdat: Option<u64>,
    movie: Option<Movie>,
    /// The next sample to give.
    next: usize,
}

impl QtDemux {
    fn end(&self) -> u64 {
        self.held.end()
    }

    /// Reads top-level boxes until moov is read or more bytes are needed.
    fn find_moov(&mut self) -> Result<(), ElementError> {
        while self.movie.is_none() {
            let mut head = [0u8; 16];
            let n = self.held.copy_to(self.scan, &mut head);
            let Some((size, hlen, kind)) = box_header(&head[..n]) else {
                break;
            };
            let Some(size) = size else {
                if &kind == b"mdat" {
                    // mdat to the end of the file before any moov: nothing can be read.
                    return Err(bad_stream(
                        self.scan,
                        "mdat runs to the end of the stream and no moov came before it",
                    ));
                }
                return Err(bad_stream(
                    self.scan,
                    "a box runs to the end before any moov",
                ));
            };
            if size < hlen {
                return Err(bad_stream(
                    self.scan,
                    format!(
                        "the {} box claims {size} bytes",
                        String::from_utf8_lossy(&kind)
                    ),
                ));
            }
            match &kind {
                b"moov" => {
                    if size > MAX_MOOV {
                        return Err(bad_stream(
                            self.scan,
                            format!("the moov box claims {size} bytes"),
                        ));
                    }
                    if self.end() < self.scan.saturating_add(size) {
                        break;
                    }
                    let mut moov = vec![0; size as usize];
                    self.held.copy_to(self.scan, &mut moov);
                    let movie =
                        read_movie(&moov, self.scan).map_err(|e| bad_stream(self.scan, e))?;
                    self.movie = Some(movie);
                }
                b"mdat" => {
                    self.mdat.get_or_insert(self.scan);
                }
                _ => {}
            }
            self.scan = self.scan.saturating_add(size);
        }
        // Keep bytes from the first mdat (samples lie there), else from the next box.
        let keep = match (&self.movie, self.mdat) {
            (Some(_), _) => self.held.base,
            (None, Some(m)) => m,
            (None, None) => self.scan,
        };
        self.held.drop_before(keep);
        if self.held.len > MAX_HELD {
            return Err(bad_stream(
                self.end(),
                format!(
                    "moov was not found in the first {MAX_HELD} bytes of mdat: remux the file \
                     with moov first (mp4mux faststart=true)"
                ),
            ));
        }
        Ok(())
    }

    /// Gives every sample whose bytes are in.
    fn give(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let Some(movie) = self.movie.take() else {
            return Ok(());
        };
        let given = self.give_from(&movie, cx);
        self.movie = Some(movie);
        given
    }

    fn give_from(&mut self, movie: &Movie, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        while let Some(s) = movie.samples.get(self.next) {
            if s.offset < self.held.base {
                return Err(bad_stream(
                    s.offset,
                    format!(
                        "a sample of {} lies before bytes already passed",
                        movie.tracks[s.track as usize].pad
                    ),
                ));
            }
            let end = s.offset.saturating_add(u64::from(s.size));
            if end > self.end() {
                break;
            }
            let mut b = self.held.buffer(s.offset, s.size as usize);
            b.meta.set_pts(Some(s.pts));
            b.meta.set_dts(Some(s.dts));
            b.meta.set_duration(Some(s.duration));
            b.meta.set_offset(Some(s.offset));
            b.meta.stream_id = movie.tracks[s.track as usize].number;
            if !s.sync {
                b.meta.flags = BufferFlags(b.meta.flags.0 | BufferFlags::DELTA_UNIT.0);
            }
            cx.push(b);
            self.next += 1;
        }
        let keep = movie
            .samples
            .get(self.next)
            .map_or(self.end(), |s| s.offset);
        self.held.drop_before(keep);
        Ok(())
    }
}

impl Transform for QtDemux {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        // Bytes before the next one needed (a box being skipped) are not kept at all.
        let pos = self.end();
        let skip = if self.held.is_empty() {
            let skip = (self.keep_from().saturating_sub(pos)).min(buf.len() as u64) as usize;
            self.held.restart_at(pos + skip as u64);
            skip
        } else {
            0
        };
        self.held.push(
            buf.slice(skip..buf.len())
                .expect("skip is within the buffer"),
        );
        self.find_moov()?;
        self.give(cx)?;
        Ok(Flow::Held)
    }

    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        match &self.movie {
            None => Err(bad_stream(
                self.end(),
                "the stream ended before its moov box: not an MP4/QuickTime file, or one cut short",
            )),
            Some(m) => match m.samples.get(self.next) {
                Some(s) => Err(bad_stream(
                    self.end(),
                    format!(
                        "the stream ends, but a sample of {} needs bytes {}..{}",
                        m.tracks[s.track as usize].pad,
                        s.offset,
                        s.offset.saturating_add(u64::from(s.size))
                    ),
                )),
                None => Ok(()),
            },
        }
    }
}

impl QtDemux {
    /// The first byte still needed: everything before it may be dropped as it comes.
    fn keep_from(&self) -> u64 {
        match &self.movie {
            Some(m) => m.samples.get(self.next).map_or(u64::MAX, |s| s.offset),
            None => self.mdat.unwrap_or(self.scan),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A box of `kind` holding `body`.
    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    /// Runs qtdemux over `input` in chunks of `chunk` bytes: what it gave, or its error.
    fn demux(input: &[u8], chunk: usize) -> Result<usize, ElementError> {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let mut d = QtDemux::default();
        let mut given = 0;
        for c in input.chunks(chunk.max(1)) {
            d.process(Buffer::from_vec(c.to_vec()), &mut cx)?;
            given += cx.take_pushed().count();
        }
        d.flush(&mut cx)?;
        Ok(given)
    }

    #[test]
    fn pads_route_by_kind_and_number() {
        assert_eq!(pad_number("video_0"), Some(0));
        assert_eq!(pad_number("audio_2"), Some(1 << 16 | 2));
        assert_eq!(pad_number("src_0"), None);
        assert_eq!(pad_number("audio_x"), None);
    }

    #[test]
    fn a_stream_without_moov_names_where_it_ended() {
        let input = [boxed(b"ftyp", b"isom\0\0\0\0"), boxed(b"free", &[0; 30])].concat();
        let e = demux(&input, 7).unwrap_err().to_string();
        assert_eq!(
            e,
            "the stream ended before its moov box: not an MP4/QuickTime file, or one cut short \
             (at byte 54)"
        );
        let e = demux(b"\0\0\0\x04ftyp", 3).unwrap_err().to_string();
        assert!(e.contains("claims 4 bytes (at byte 0)"), "{e}");
    }

    #[test]
    fn held_bytes_leave_as_slices_of_the_incoming_buffers_when_they_can() {
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let (a, b) = (
            Buffer::from_vec(data[..100].to_vec()),
            Buffer::from_vec(data[100..].to_vec()),
        );
        let mut held = Held::default();
        held.restart_at(1000);
        held.push(a.clone());
        held.push(Buffer::empty());
        held.push(b.clone());
        assert_eq!((held.base, held.end()), (1000, 1300));
        // Inside one buffer: a slice of it, no copy.
        let inside = held.buffer(1110, 50);
        assert_eq!(inside.data(), &data[110..160]);
        assert_eq!(inside.data().as_ptr(), b.data()[10..].as_ptr());
        assert_eq!(held.buffer(1000, 100).data().as_ptr(), a.data().as_ptr());
        // Across two: a copy of the same bytes.
        let across = held.buffer(1090, 20);
        assert_eq!(across.data(), &data[90..110]);
        let mut head = [0u8; 16];
        assert_eq!(held.copy_to(1295, &mut head), 5);
        assert_eq!(&head[..5], &data[295..]);
        // Dropping cuts the first buffer it keeps, and still shares it.
        held.drop_before(1150);
        assert_eq!((held.base, held.len, held.chunks.len()), (1150, 150, 1));
        assert_eq!(
            held.buffer(1150, 150).data().as_ptr(),
            b.data()[50..].as_ptr()
        );
        held.drop_before(u64::MAX);
        assert!(held.is_empty() && held.chunks.is_empty());
        assert_eq!(held.base, 1300);
    }

    #[test]
    fn of_a_pool_s_buffers_only_the_newest_is_held_as_is() {
        let pool = MemoryPool::new(&PoolConfig::new("t", 2, 64)).unwrap();
        let mut held = Held::default();
        for (i, bytes) in [b"abc", b"def", b"ghi"].into_iter().enumerate() {
            let mut slot = pool
                .try_loan()
                .expect("a slot is free: one at most is held");
            slot.as_mut_slice()[..3].copy_from_slice(bytes);
            let buf = slot.freeze(3);
            let at = buf.data().as_ptr();
            held.push(buf);
            assert_eq!(held.copied.len(), 3 * i, "the older ones are copies");
            let newest = held.buffer(3 * i as u64, 3);
            assert_eq!(newest.data().as_ptr(), at, "the newest is read in place");
        }
        assert_eq!(held.buffer(2, 5).data(), b"cdefg");
        assert_eq!(held.buffer(0, 9).data(), b"abcdefghi");
        held.drop_before(4);
        assert_eq!(held.buffer(4, 5).data(), b"efghi");
        held.drop_before(7);
        assert_eq!(
            (held.copied.len(), held.buffer(7, 2).data()),
            (0, &b"hi"[..])
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes in a moov (and around it), in any chunking: an error or samples, never a
        /// panic.
        #[test]
        fn hostile_boxes_never_panic(
            moov in proptest::collection::vec(any::<u8>(), 0..600),
            mdat in proptest::collection::vec(any::<u8>(), 0..300),
            chunk in 1usize..200,
            moov_first in any::<bool>(),
        ) {
            let (m, d) = (boxed(b"moov", &moov), boxed(b"mdat", &mdat));
            let mut input = boxed(b"ftyp", b"isom\0\0\0\0");
            if moov_first {
                input.extend([m, d].concat());
            } else {
                input.extend([d, m].concat());
            }
            let _ = demux(&input, chunk);
            let _ = demux(&moov, chunk);
        }
    }
}
