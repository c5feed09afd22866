//! Codecs: encoded images and audio in, raw `video/x-raw` and `audio/x-raw` out (and back),
//! each family behind the Cargo feature that brings it (`image-png`, `image-jpeg`, ...).
//!
//! Decoders read bytes that came from outside: their hints say so (semi-trusted), and a
//! malformed stream is an error that names the element and the byte offset where it went
//! wrong, never a panic. Encoded streams arrive in arbitrary chunks (4096 bytes from filesrc),
//! so each decoder finds its own frame boundaries and keeps what it has not used yet.

use crate::element::prelude::*;

mod aac;
#[cfg(any(
    feature = "audio-flac",
    feature = "audio-mp3",
    feature = "audio-aac",
    feature = "audio-vorbis"
))]
mod decode;
mod decodebin;
#[cfg(feature = "audio-flac")]
mod flac;
#[cfg(any(feature = "mpeg-ts", feature = "h264"))]
mod h264sps;
#[cfg(any(feature = "image-png", feature = "image-jpeg"))]
mod image;
mod mpeg;
#[cfg(feature = "mpeg-ts")]
mod mpegts;
#[cfg(feature = "audio-vorbis")]
mod ogg;
#[cfg(feature = "mp4")]
mod qtdemux;
mod typefind;

#[cfg(any(feature = "mpeg-ts", feature = "h264"))]
pub(crate) use h264sps::{find_sps, Sps};
pub(crate) use typefind::{sniff, typefind};

/// Every codec factory this build has.
pub(crate) const FACTORIES: &[&Factory] = &[
    #[cfg(feature = "image-png")]
    &image::PNGDEC,
    #[cfg(feature = "image-png")]
    &image::PNGENC,
    #[cfg(feature = "image-jpeg")]
    &image::JPEGDEC,
    #[cfg(feature = "image-jpeg")]
    &image::JPEGENC,
    #[cfg(feature = "audio-flac")]
    &flac::FLACPARSE,
    #[cfg(feature = "audio-flac")]
    &flac::FLACDEC,
    #[cfg(feature = "audio-flac")]
    &flac::FLACENC,
    #[cfg(feature = "audio-mp3")]
    &mpeg::MPEGAUDIOPARSE,
    #[cfg(feature = "audio-mp3")]
    &mpeg::MPG123AUDIODEC,
    #[cfg(feature = "audio-aac")]
    &aac::AACPARSE,
    #[cfg(feature = "audio-aac")]
    &aac::AVDEC_AAC,
    #[cfg(feature = "audio-vorbis")]
    &ogg::OGGDEMUX,
    #[cfg(feature = "audio-vorbis")]
    &ogg::VORBISDEC,
    #[cfg(feature = "mp4")]
    &qtdemux::QTDEMUX,
    #[cfg(feature = "mpeg-ts")]
    &mpegts::TSDEMUX,
    #[cfg(feature = "mpeg-ts")]
    &mpegts::TSPARSE,
    &typefind::TYPEFIND,
    &decodebin::DECODEBIN,
    &decodebin::URIDECODEBIN,
];

/// A container's demuxer, with what reads the streams of a file of its type (as the
/// demuxer's properties choose them), and of a stream read from its start (which may refuse
/// what only a file allows: an MP4 file whose index comes last).
pub(crate) type Demuxer = (
    &'static Factory,
    fn(&std::path::Path, &Props) -> Result<Vec<(String, Caps)>, String>,
    fn(&mut dyn std::io::Read, &Props) -> Result<Vec<(String, Caps)>, String>,
);

/// The demuxers this build has, for decodebin.
pub(crate) fn demuxers() -> Vec<Demuxer> {
    vec![
        #[cfg(feature = "mp4")]
        (
            &qtdemux::QTDEMUX,
            qtdemux::streams_of_file,
            qtdemux::streams_of_stream,
        ),
        #[cfg(feature = "mpeg-ts")]
        (
            &mpegts::TSDEMUX,
            mpegts::streams_of_file,
            mpegts::streams_of_stream,
        ),
    ]
}

/// A decoder's hints: computation on bytes from outside, reviewed Rust code.
#[allow(dead_code)]
pub(crate) const DECODER: Hints = Hints {
    trust: Trust::SemiTrusted,
    processing: Processing::Cpu,
    rt_safe: false,
    ..Hints::FUSABLE
};

/// An encoder's hints: computation on raw frames we made.
#[allow(dead_code)]
pub(crate) const ENCODER: Hints = Hints {
    processing: Processing::Cpu,
    rt_safe: false,
    ..Hints::FUSABLE
};

/// `template` narrowed to the fields `fields` of `from`'s first structure (where it has
/// them): how a codec carries width, height, framerate, rate or channels across itself.
#[allow(dead_code)]
pub(crate) fn carry(from: &Caps, template: &str, fields: &[&str]) -> Caps {
    let t = Caps::parse(template).expect("a codec's template parses");
    let Some(s) = from.first() else {
        return t;
    };
    let mut out = t.clone();
    for o in out.structures_mut() {
        for f in fields {
            if let Some(v) = s.get(f) {
                o.set(f, v.clone());
            }
        }
    }
    out.intersect(&t)
}

/// A decoder's error about the stream at byte `offset` (the executor adds the element's name).
#[allow(dead_code)]
pub(crate) fn bad_stream(offset: u64, what: impl std::fmt::Display) -> ElementError {
    ElementError::Failed(format!("{what} (at byte {offset})"))
}
