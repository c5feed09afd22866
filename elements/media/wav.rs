//! WAV: `wavenc`.

use super::{negotiated_or, AudioInfo, SampleFormat};
use crate::element::prelude::*;

/// What wavenc takes: the sample formats a canonical WAV file holds.
const WAVENC_SINK: &str = concat!(
    "audio/x-raw, format=(string){ S16LE, S32LE, S24LE, F32LE, F64LE, U8 }, ",
    "layout=(string)interleaved, rate=(int)[ 1, 2147483647 ], channels=(int)[ 1, 65535 ]"
);

/// The size fields of the header written before the sizes are known: "to the end of the
/// stream", as most readers take it.
const UNKNOWN: u32 = u32::MAX;

/// Bytes of the header: RIFF, fmt (16 bytes) and the data chunk's head.
pub(crate) const HEADER_LEN: usize = 44;

pub(crate) static WAVENC: Factory = Factory {
    name: "wavenc",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Encode raw audio into WAV",
    doc: "Writes a 44-byte RIFF/WAVE header for the negotiated format (PCM for integer samples, \
          IEEE float for F32LE and F64LE), then the samples unchanged. The first header's sizes \
          are 0xFFFFFFFF (not known yet); at end of stream a second header with the real sizes \
          follows, flagged `rewrite` at offset 0: filesink writes it over the first (gst's \
          wavenc seeks back for this), fdsink and other streams drop it and keep the streaming \
          header. Channels beyond two are written in the plain format, without \
          WAVE_FORMAT_EXTENSIBLE's channel mask; an odd data size gets no pad byte.",
    pads: Pads::ONE_TO_ONE
        .with_caps(WAVENC_SINK, "audio/x-wav")
        .with_rule(CapsRule::Fixed),
    props: &[],
    hints: Hints::FUSABLE,
    build: |p| {
        let info = AudioInfo::from_caps(&negotiated_or(p.sink_caps(), WAVENC_SINK), p.instance())?;
        Ok(ElementImpl::Transform(Box::new(WavEnc {
            info,
            data_len: 0,
            sent_header: false,
        })))
    },
};

/// wavenc's state: the format and how many sample bytes went out.
struct WavEnc {
    info: AudioInfo,
    data_len: u64,
    sent_header: bool,
}

/// The 44-byte header of `info` with `data_len` bytes of samples (`UNKNOWN` sizes when none).
pub(crate) fn header(info: &AudioInfo, data_len: Option<u64>) -> [u8; HEADER_LEN] {
    let (riff, data) = match data_len {
        Some(n) => (
            u32::try_from(n + 36).unwrap_or(UNKNOWN),
            u32::try_from(n).unwrap_or(UNKNOWN),
        ),
        None => (UNKNOWN, UNKNOWN),
    };
    let bpf = info.bpf() as u32;
    let tag: u16 = match info.format {
        SampleFormat::F32 | SampleFormat::F64 => 3,
        _ => 1,
    };
    let mut h = [0u8; HEADER_LEN];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        h[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"RIFF");
    put(&riff.to_le_bytes());
    put(b"WAVE");
    put(b"fmt ");
    put(&16u32.to_le_bytes());
    put(&tag.to_le_bytes());
    put(&(info.channels as u16).to_le_bytes());
    put(&info.rate.to_le_bytes());
    put(&(info.rate.saturating_mul(bpf)).to_le_bytes());
    put(&(bpf as u16).to_le_bytes());
    put(&((info.format.width() * 8) as u16).to_le_bytes());
    put(b"data");
    put(&data.to_le_bytes());
    h
}

impl WavEnc {
    fn header_buffer(&self, data_len: Option<u64>) -> Buffer {
        let mut b = Buffer::from_vec(header(&self.info, data_len).to_vec());
        b.meta.offset = Some(0);
        b
    }
}

impl Transform for WavEnc {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if !self.sent_header {
            let mut h = self.header_buffer(None);
            h.meta.pts = buf.meta.pts;
            cx.push(h);
            self.sent_header = true;
        }
        self.data_len += buf.len() as u64;
        Ok(Flow::Push(buf))
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if !self.sent_header {
            // No samples at all: a complete empty file, as gst's.
            cx.push(self.header_buffer(Some(0)));
            return Ok(());
        }
        let mut h = self.header_buffer(Some(self.data_len));
        h.meta.flags = BufferFlags::REWRITE;
        cx.push(h);
        Ok(())
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&WAVENC];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let info = AudioInfo {
            format: SampleFormat::S16,
            rate: 8000,
            channels: 1,
        };
        let h = header(&info, Some(1000));
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), 1036);
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 16000);
        assert_eq!(u16::from_le_bytes(h[32..34].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), 1000);
        let h = header(&info, None);
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), u32::MAX);
    }
}
