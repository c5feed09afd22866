//! Typefinding: what the first bytes of a stream are, as caps (gst's typefind functions).
//!
//! Caps are settled when the description is validated, before anything runs, so a decoder
//! right after `filesrc` learns its format from the file's head: validation reads the first
//! bytes of a regular file that feeds an element wanting typed input, and the caps found here
//! stand on that link. Only what the head says is used (an image's size, later a stream's
//! rate and channels), and nothing is read from pipes or devices.

use crate::element::prelude::*;

/// Bytes of a file's head that typefinding reads at most.
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// The caps of a stream starting with `head`, when a codec of this build knows it.
pub(crate) fn sniff(head: &[u8]) -> Option<Caps> {
    #[cfg(feature = "image-png")]
    if let Some(c) = png(head) {
        return Some(c);
    }
    #[cfg(feature = "image-jpeg")]
    if let Some(c) = jpeg(head) {
        return Some(c);
    }
    #[cfg(feature = "audio-flac")]
    if let Some(c) = super::flac::sniff(head) {
        return Some(c);
    }
    #[cfg(feature = "audio-mp3")]
    if let Some(c) = super::mpeg::sniff(head) {
        return Some(c);
    }
    #[cfg(feature = "audio-aac")]
    if let Some(c) = super::aac::sniff(head) {
        return Some(c);
    }
    #[cfg(feature = "audio-vorbis")]
    if let Some(c) = super::ogg::sniff(head) {
        return Some(c);
    }
    let _ = head;
    None
}

/// A still image's caps: its size, framerate 0/1 (gst's for one picture).
#[allow(dead_code)]
fn image(name: &str, width: i64, height: i64) -> Option<Caps> {
    (width > 0 && height > 0).then(|| {
        Caps::one(
            Structure::new(name)
                .with("width", CapsValue::Int(width))
                .with("height", CapsValue::Int(height))
                .with(
                    "framerate",
                    CapsValue::Fraction(Fraction { num: 0, den: 1 }),
                ),
        )
    })
}

/// PNG: the signature, then IHDR's width and height.
#[cfg(feature = "image-png")]
fn png(head: &[u8]) -> Option<Caps> {
    if head.len() < 24 || &head[..8] != b"\x89PNG\r\n\x1a\n" || &head[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    image("image/png", be(16) as i64, be(20) as i64)
}

/// JPEG: SOI, then the segments up to a start-of-frame marker and its size.
#[cfg(feature = "image-jpeg")]
fn jpeg(head: &[u8]) -> Option<Caps> {
    if head.len() < 4 || head[..3] != [0xFF, 0xD8, 0xFF] {
        return None;
    }
    let mut at = 2;
    while at + 9 <= head.len() && head[at] == 0xFF {
        let marker = head[at + 1];
        let len = u16::from_be_bytes([head[at + 2], head[at + 3]]) as usize;
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let h = u16::from_be_bytes([head[at + 5], head[at + 6]]) as i64;
            let w = u16::from_be_bytes([head[at + 7], head[at + 8]]) as i64;
            return image("image/jpeg", w, h);
        }
        if len < 2 || marker == 0xDA {
            return None;
        }
        at += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bytes_have_no_caps() {
        assert!(sniff(b"").is_none());
        assert!(sniff(&[0xFF; 100]).is_none());
    }

    #[cfg(feature = "image-png")]
    #[test]
    fn png_head_gives_its_size() {
        let mut head = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        head.extend_from_slice(&640u32.to_be_bytes());
        head.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(
            sniff(&head).unwrap().to_string(),
            "image/png, width=(int)640, height=(int)480, framerate=(fraction)0/1"
        );
    }
}
