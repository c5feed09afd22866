//! What the audio decoders on Symphonia share: one coded packet in, one raw buffer out, in the
//! negotiated sample format, stamped from the samples decoded so far.

use super::super::media::{frames_to_ns, AudioInfo, SampleFormat};
use super::bad_stream;
use crate::element::prelude::*;
use symphonia::core::codecs::audio::AudioDecoder;
use symphonia::core::packet::PacketRef;

/// A Symphonia decoder and the stream's clock.
pub(crate) struct Decoder {
    /// The format negotiated on the src pad.
    pub(crate) info: AudioInfo,
    inner: Option<Box<dyn AudioDecoder>>,
    /// Samples per channel passed on so far.
    samples: u64,
    /// Packets decoded so far (the first ones may give no samples).
    packets: u64,
}

impl Decoder {
    pub(crate) fn new(info: AudioInfo) -> Decoder {
        Decoder {
            info,
            inner: None,
            samples: 0,
            packets: 0,
        }
    }

    /// Whether the stream's setup (headers, STREAMINFO) has made the decoder yet.
    pub(crate) fn ready(&self) -> bool {
        self.inner.is_some()
    }

    /// Starts decoding with `decoder`, made from the stream's setup, after checking that the
    /// stream's rate and channels are those negotiated.
    pub(crate) fn start(
        &mut self,
        decoder: Box<dyn AudioDecoder>,
        rate: u32,
        channels: u32,
        at: u64,
    ) -> Result<(), ElementError> {
        self.check(rate, channels, at)?;
        self.inner = Some(decoder);
        Ok(())
    }

    fn check(&self, rate: u32, channels: u32, at: u64) -> Result<(), ElementError> {
        if (rate, channels) != (self.info.rate, self.info.channels) {
            return Err(bad_stream(
                at,
                format!(
                    "the stream is {rate} Hz, {channels} channels, but was negotiated as {} Hz, \
                     {} channels",
                    self.info.rate, self.info.channels
                ),
            ));
        }
        Ok(())
    }

    /// Decodes the packet `data` that starts at byte `at` of the stream; the raw buffer, or
    /// `None` when the packet gives no samples (a decoder's priming packet).
    pub(crate) fn decode(&mut self, data: &[u8], at: u64) -> Result<Option<Buffer>, ElementError> {
        let Some(inner) = self.inner.as_mut() else {
            return Err(bad_stream(at, "a coded packet before the stream's setup"));
        };
        let packet = PacketRef::new(0, (self.packets as i64).into(), 0u64.into(), data);
        self.packets += 1;
        let decoded = inner.decode_ref(&packet).map_err(|e| bad_stream(at, e))?;
        let frames = decoded.frames() as u64;
        if frames == 0 {
            return Ok(None);
        }
        let spec = decoded.spec();
        let (rate, channels) = (spec.rate(), spec.channels().count() as u32);
        if (rate, channels) != (self.info.rate, self.info.channels) {
            return Err(bad_stream(
                at,
                format!(
                    "the stream changes to {rate} Hz, {channels} channels (negotiated {} Hz, {} \
                     channels)",
                    self.info.rate, self.info.channels
                ),
            ));
        }
        let mut out = Vec::new();
        match self.info.format {
            SampleFormat::S16 => decoded.copy_bytes_to_vec_interleaved_as::<i16>(&mut out),
            SampleFormat::S32 => decoded.copy_bytes_to_vec_interleaved_as::<i32>(&mut out),
            _ => decoded.copy_bytes_to_vec_interleaved_as::<f32>(&mut out),
        }
        let rate = self.info.rate as u64;
        let mut b = Buffer::from_vec(out);
        b.meta.set_pts(Some(frames_to_ns(self.samples, rate)));
        b.meta.set_duration(Some(
            frames_to_ns(self.samples + frames, rate) - frames_to_ns(self.samples, rate),
        ));
        b.meta.set_offset(Some(self.samples));
        self.samples += frames;
        b.meta.set_offset_end(Some(self.samples));
        Ok(Some(b))
    }
}

/// The `AudioDecoderOptions` every decoder here uses (Symphonia's defaults).
pub(crate) fn options() -> symphonia::core::codecs::audio::AudioDecoderOptions {
    symphonia::core::codecs::audio::AudioDecoderOptions::default()
}

// --- framing --------------------------------------------------------------------------------

/// What a parser's `measure` says of the unread bytes of a stream.
pub(crate) enum Measure<H> {
    /// They start with a whole unit (frame, page) of this many bytes, with its header's
    /// fields.
    Unit(usize, H),
    /// They start with this many bytes to pass over (a tag).
    #[cfg_attr(not(feature = "audio-mp3"), allow(dead_code))]
    Skip(usize),
    /// More bytes are needed to tell: the stream must not end here, inside `what`.
    Wait(&'static str),
}

/// A unit's bytes, its header's fields and its stream offset.
pub(crate) type Found<'a, H> = (&'a [u8], H, u64);

/// Bytes that come in arbitrary chunks (4096 from filesrc), cut into the units a parser's
/// `measure` finds at their head: what the framers of MP3, ADTS, Ogg and FLAC share.
#[derive(Default)]
pub(crate) struct Chunks {
    pending: Vec<u8>,
    /// Bytes of `pending` already taken.
    used: usize,
    /// Stream offset of `pending[0]`.
    at: u64,
}

impl Chunks {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.used > 0 {
            self.pending.drain(..self.used);
            self.at += self.used as u64;
            self.used = 0;
        }
        self.pending.extend_from_slice(bytes);
    }

    /// The next unit, its header's fields and its stream offset, or `None` until more bytes
    /// come. `measure` gets the unread bytes and their stream offset; at end of stream
    /// (`eos`) bytes it waits on are an error naming what the stream ends inside.
    pub(crate) fn next<H>(
        &mut self,
        eos: bool,
        mut measure: impl FnMut(&[u8], u64) -> Result<Measure<H>, ElementError>,
    ) -> Result<Option<Found<'_, H>>, ElementError> {
        loop {
            let data = &self.pending[self.used..];
            let at = self.at + self.used as u64;
            if data.is_empty() {
                return Ok(None);
            }
            match measure(data, at)? {
                Measure::Unit(n, h) => {
                    let start = self.used;
                    self.used += n;
                    return Ok(Some((&self.pending[start..start + n], h, at)));
                }
                Measure::Skip(n) => self.used += n,
                Measure::Wait(what) if eos => {
                    return Err(bad_stream(
                        at,
                        format!("the stream ends inside {what} ({} bytes)", data.len()),
                    ))
                }
                Measure::Wait(_) => return Ok(None),
            }
        }
    }
}

/// A frame header that gives its frame's length: what an MP3 or ADTS stream is cut by.
#[cfg(any(feature = "audio-mp3", feature = "audio-aac"))]
pub(crate) trait Header: Copy + Sized {
    /// The unit at the head of `data` (at stream offset `at`; `eos` when no more bytes will
    /// come), given the stream's first header so far, which it sets.
    fn measure(
        data: &[u8],
        at: u64,
        eos: bool,
        first: &mut Option<Self>,
    ) -> Result<Measure<Self>, ElementError>;
}

/// Finds the frames of a stream of headers `H` in bytes that come in arbitrary chunks; the
/// first frame's header is kept, for later ones to agree with.
#[cfg(any(feature = "audio-mp3", feature = "audio-aac"))]
pub(crate) struct Framer<H> {
    chunks: Chunks,
    first: Option<H>,
}

#[cfg(any(feature = "audio-mp3", feature = "audio-aac"))]
impl<H> Default for Framer<H> {
    fn default() -> Self {
        Framer {
            chunks: Chunks::default(),
            first: None,
        }
    }
}

#[cfg(any(feature = "audio-mp3", feature = "audio-aac"))]
impl<H: Header> Framer<H> {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.chunks.push(bytes);
    }

    /// The next frame (header included), its header and its stream offset; at end of stream
    /// (`eos`) what is left must be whole frames.
    pub(crate) fn next(&mut self, eos: bool) -> Result<Option<Found<'_, H>>, ElementError> {
        let first = &mut self.first;
        self.chunks
            .next(eos, |data, at| H::measure(data, at, eos, first))
    }
}
