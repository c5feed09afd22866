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
        b.meta.pts = Some(frames_to_ns(self.samples, rate));
        b.meta.duration =
            Some(frames_to_ns(self.samples + frames, rate) - frames_to_ns(self.samples, rate));
        b.meta.offset = Some(self.samples);
        self.samples += frames;
        b.meta.set_offset_end(Some(self.samples));
        Ok(Some(b))
    }
}

/// The `AudioDecoderOptions` every decoder here uses (Symphonia's defaults).
pub(crate) fn options() -> symphonia::core::codecs::audio::AudioDecoderOptions {
    symphonia::core::codecs::audio::AudioDecoderOptions::default()
}
