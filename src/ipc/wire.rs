//! The stream frame: buffers with their metadata, the stream's caps and end of stream, as bytes
//! any byte transport can carry (tcp, a unix socket, a websocket, a file).
//!
//! A frame is a 16-byte header and a payload:
//!
//! ```text
//! offset  size  field
//!      0     4  magic "STRM"
//!      4     2  version (1), little-endian
//!      6     2  flags (0; a reader refuses bits it does not know)
//!      8     4  payload length, little-endian
//!     12     4  CRC-32 (IEEE) of the payload, little-endian
//!     16     4  length H of the head, little-endian            } the payload
//!     20     H  the head: rkyv of [`WireHead`], checked by bytecheck }
//!   20+H     …  the buffer's bytes (buffer frames only)       }
//! ```
//!
//! The head is small (metadata, caps text) and is validated before anything in it is used; the
//! bytes follow it raw, so a reader that holds a whole frame in one buffer passes them on as a
//! slice of that buffer, without a copy. Nothing a peer sends is trusted: a bad magic, an
//! unknown version or flag, a CRC mismatch, a head that does not validate, metadata over the
//! limits or a length over the reader's maximum is a [`WireError`] naming the byte offset of the
//! frame in the stream.

use rkyv::{Archive, Deserialize, Serialize};

use super::frame::{MetaError, WireMeta};
use crate::memory::{Buffer, Metadata};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"STRM";
/// The frame version this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;
/// The largest payload any reader accepts, whatever it is told (the length field allows 4 GiB).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// What a frame's head says.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum WireHead {
    /// A buffer: its metadata; its bytes follow the head.
    Buffer(WireMeta),
    /// The stream's caps from here on, in caps text.
    Caps(String),
    /// End of stream: the writer sent everything.
    Eos,
}

/// A frame read back.
#[derive(Debug)]
pub enum Packet {
    /// A buffer, metadata and bytes as the writer had them.
    Buffer(Buffer),
    /// The stream's caps from here on.
    Caps(String),
    /// End of stream.
    Eos,
}

/// A frame that does not hold up, at `offset` bytes into the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad stream frame at byte {offset}: {why}")]
pub struct WireError {
    /// Where the frame starts in the stream.
    pub offset: u64,
    /// What is wrong with it.
    pub why: String,
}

/// Appends the frame of `buf` (metadata and bytes) to `out`.
pub fn encode_buffer(buf: &Buffer, out: &mut Vec<u8>) -> Result<(), MetaError> {
    encode_buffer_head(buf, out)?;
    out.extend_from_slice(buf.data());
    Ok(())
}

/// Appends all of `buf`'s frame but its bytes, which follow it unchanged in the stream: a
/// writer passes the buffer itself on after this, without copying it.
pub fn encode_buffer_head(buf: &Buffer, out: &mut Vec<u8>) -> Result<(), MetaError> {
    let meta = WireMeta::try_from(&buf.meta)?;
    encode(&WireHead::Buffer(meta), buf.data(), out);
    Ok(())
}

/// Appends a caps frame to `out`.
pub fn encode_caps(caps: &str, out: &mut Vec<u8>) {
    encode(&WireHead::Caps(caps.to_owned()), &[], out);
}

/// Appends an end-of-stream frame to `out`.
pub fn encode_eos(out: &mut Vec<u8>) {
    encode(&WireHead::Eos, &[], out);
}

/// Appends the header and the head of a frame whose payload ends with `data`; `data` itself is
/// the caller's to append (or to send after), the CRC already covers it.
fn encode(head: &WireHead, data: &[u8], out: &mut Vec<u8>) {
    let head = rkyv::to_bytes::<rkyv::rancor::Error>(head).expect("a head always serializes");
    let payload_len = 4 + head.len() + data.len();
    let start = out.len();
    out.reserve(HEADER_LEN + 4 + head.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    // Lengths over u32 are refused by the caller's limits long before; saturate to be sure a
    // reader sees a length it refuses rather than a wrapped one it believes.
    out.extend_from_slice(&u32::try_from(payload_len).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[start + HEADER_LEN..]);
    crc.update(data);
    let crc = crc.finalize();
    out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
}

/// What a header says: the payload's length and CRC.
struct Header {
    payload_len: usize,
    crc: u32,
}

/// Reads frames back out of a byte stream cut anywhere: frames may span buffers and a buffer
/// may hold many. A frame inside one input buffer comes out as a slice of it.
pub struct Depayloader {
    /// Bytes of an unfinished frame carried over from earlier buffers.
    carry: Vec<u8>,
    /// Stream offset of the first byte not yet consumed (the start of `carry`).
    offset: u64,
    /// The largest payload accepted.
    max_payload: usize,
    /// After an error with resynchronisation on: skip to the next magic.
    hunting: bool,
}

impl Depayloader {
    /// A reader that accepts payloads up to `max_payload` bytes (at most [`MAX_PAYLOAD`]).
    pub fn new(max_payload: usize) -> Depayloader {
        Depayloader {
            carry: Vec::new(),
            offset: 0,
            max_payload: max_payload.min(MAX_PAYLOAD),
            hunting: false,
        }
    }

    /// Stream offset of the first byte not yet read into a frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes held of an unfinished frame.
    pub fn pending(&self) -> usize {
        self.carry.len()
    }

    /// Reads the frames `input` completes, in order, into `out`. A bad frame is an `Err` in
    /// the sequence; with `resync` the reader then looks for the next frame's magic and goes
    /// on, otherwise the caller should stop (later results would be meaningless).
    pub fn push(&mut self, input: &Buffer, resync: bool, out: &mut Vec<Result<Packet, WireError>>) {
        let bytes = input.data();
        let mut pos = 0;
        // Finish a frame begun in earlier buffers.
        while !self.carry.is_empty() {
            if self.hunting {
                // The carry holds at most the start of a magic cut by the last buffer's end.
                self.carry.extend_from_slice(&bytes[pos..]);
                pos = bytes.len();
                self.hunt_in_carry();
                if self.hunting {
                    return;
                }
                continue;
            }
            let want = match self.needed(&self.carry) {
                Ok(n) => n,
                Err(e) => {
                    out.push(Err(e));
                    if !resync {
                        return;
                    }
                    self.skip_carry_byte();
                    continue;
                }
            };
            if self.carry.len() < want {
                if pos == bytes.len() {
                    return;
                }
                let take = (want - self.carry.len()).min(bytes.len() - pos);
                self.carry.extend_from_slice(&bytes[pos..pos + take]);
                pos += take;
                if self.carry.len() < want {
                    return;
                }
                // A header just completed names the frame's length: look again.
                continue;
            }
            let frame = std::mem::take(&mut self.carry);
            let parsed = self.parse(&frame, None);
            self.after(parsed, frame.len(), resync, out);
            if self.hunting {
                // Look again from the byte after the bad frame's magic.
                self.carry = frame[1..].to_vec();
                self.offset -= (frame.len() - 1) as u64;
                self.hunt_in_carry();
            }
            if matches!(out.last(), Some(Err(_))) && !resync {
                return;
            }
        }
        // Whole frames inside this buffer are slices of it.
        while pos < bytes.len() {
            if self.hunting {
                match memchr::memmem::find(&bytes[pos..], &MAGIC) {
                    Some(at) => {
                        self.offset += at as u64;
                        pos += at;
                        self.hunting = false;
                    }
                    None => {
                        // Keep a possible partial magic at the end.
                        let keep = (bytes.len() - pos).min(MAGIC.len() - 1);
                        self.offset += (bytes.len() - pos - keep) as u64;
                        self.carry.extend_from_slice(&bytes[bytes.len() - keep..]);
                        return;
                    }
                }
            }
            let rest = &bytes[pos..];
            let want = match self.needed(rest) {
                Ok(n) => n,
                Err(e) => {
                    out.push(Err(e));
                    if !resync {
                        return;
                    }
                    self.offset += 1;
                    pos += 1;
                    self.hunting = true;
                    continue;
                }
            };
            if rest.len() < want {
                self.carry.extend_from_slice(rest);
                return;
            }
            let parsed = self.parse(&rest[..want], Some((input, pos)));
            self.after(parsed, want, resync, out);
            if self.hunting {
                self.offset -= want as u64 - 1;
                pos += 1;
            } else {
                pos += want;
            }
            if matches!(out.last(), Some(Err(_))) && !resync {
                return;
            }
        }
    }

    /// At end of stream: an error if a frame was cut off.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.carry.is_empty() || self.hunting {
            return Ok(());
        }
        Err(WireError {
            offset: self.offset,
            why: format!(
                "the stream ends inside a frame ({} bytes of it arrived)",
                self.carry.len()
            ),
        })
    }

    fn after(
        &mut self,
        parsed: Result<Packet, WireError>,
        len: usize,
        resync: bool,
        out: &mut Vec<Result<Packet, WireError>>,
    ) {
        self.offset += len as u64;
        if parsed.is_err() && resync {
            self.hunting = true;
        }
        out.push(parsed);
    }

    /// After a bad frame held in `carry`: drops up to the next magic in it.
    fn hunt_in_carry(&mut self) {
        match memchr::memmem::find(&self.carry, &MAGIC) {
            Some(at) => {
                self.carry.drain(..at);
                self.offset += at as u64;
                self.hunting = false;
            }
            None => {
                let keep = self.carry.len().min(MAGIC.len() - 1);
                let drop = self.carry.len() - keep;
                self.carry.drain(..drop);
                self.offset += drop as u64;
            }
        }
    }

    fn skip_carry_byte(&mut self) {
        self.carry.remove(0);
        self.offset += 1;
        self.hunting = true;
        self.hunt_in_carry();
    }

    /// The whole frame's length once its header is there; while fewer than 16 bytes are,
    /// the header's length (so the caller reads that much first).
    fn needed(&self, bytes: &[u8]) -> Result<usize, WireError> {
        if bytes.len() < HEADER_LEN {
            // Check what is there already, so garbage is reported at once.
            let n = bytes.len().min(4);
            if bytes[..n] != MAGIC[..n] {
                return Err(self.bad_magic(bytes));
            }
            return Ok(HEADER_LEN);
        }
        let h = self.header(bytes)?;
        Ok(HEADER_LEN + h.payload_len)
    }

    fn bad_magic(&self, bytes: &[u8]) -> WireError {
        let shown: String = bytes
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        let gdp = bytes.len() >= 2 && bytes[0] == 1 && bytes[1] == 0;
        WireError {
            offset: self.offset,
            why: format!(
                "expected the magic \"STRM\", found bytes {shown}{}",
                if gdp {
                    " (gst's gdppay writes GDP, which is not this format: both ends must be \
                     parallax)"
                } else {
                    ""
                }
            ),
        }
    }

    fn header(&self, b: &[u8]) -> Result<Header, WireError> {
        if b[..4] != MAGIC {
            return Err(self.bad_magic(b));
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(self.err(format!(
                "frame version {version}, this build reads version {VERSION}"
            )));
        }
        let flags = u16::from_le_bytes([b[6], b[7]]);
        if flags != 0 {
            return Err(self.err(format!("unknown flags {flags:#06x}")));
        }
        let payload_len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        if payload_len > self.max_payload {
            return Err(self.err(format!(
                "a payload of {payload_len} bytes, over the limit of {} (max-frame-size)",
                self.max_payload
            )));
        }
        if payload_len < 4 {
            return Err(self.err(format!("a payload of {payload_len} bytes has no head")));
        }
        let crc = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        Ok(Header { payload_len, crc })
    }

    fn err(&self, why: String) -> WireError {
        WireError {
            offset: self.offset,
            why,
        }
    }

    /// The head at the start of a payload, validated, and its length.
    fn head(&self, payload: &[u8]) -> Result<(WireHead, usize), WireError> {
        let head_len =
            u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        if head_len > payload.len() - 4 {
            return Err(self.err(format!(
                "a head of {head_len} bytes in a payload of {}",
                payload.len()
            )));
        }
        // rkyv reads from aligned memory; the head is small, so it is copied to align it.
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(head_len);
        aligned.extend_from_slice(&payload[4..4 + head_len]);
        let head = rkyv::from_bytes::<WireHead, rkyv::rancor::Error>(&aligned)
            .map_err(|e| self.err(format!("the head does not validate: {e}")))?;
        Ok((head, head_len))
    }

    /// Reads one whole frame. `within` is the input buffer and where the frame starts in it,
    /// when the frame lies inside one buffer: the bytes are then a slice of it.
    fn parse(&self, frame: &[u8], within: Option<(&Buffer, usize)>) -> Result<Packet, WireError> {
        let h = self.header(frame)?;
        let payload = &frame[HEADER_LEN..];
        let crc = crc32fast::hash(payload);
        if crc != h.crc {
            return Err(self.err(format!(
                "CRC mismatch (header says {:08x}, the payload's is {crc:08x})",
                h.crc
            )));
        }
        let (head, head_len) = self.head(payload)?;
        let data_start = HEADER_LEN + 4 + head_len;
        let data_len = frame.len() - data_start;
        match head {
            WireHead::Buffer(meta) => {
                let meta = Metadata::try_from(meta).map_err(|e| self.err(e.to_string()))?;
                let mut buf = match within {
                    Some((input, at)) => input
                        .slice(at + data_start..at + frame.len())
                        .expect("the frame lies inside the input"),
                    None => Buffer::from_vec(frame[data_start..].to_vec()),
                };
                buf.meta = meta;
                Ok(Packet::Buffer(buf))
            }
            WireHead::Caps(caps) if data_len == 0 => Ok(Packet::Caps(caps)),
            WireHead::Eos if data_len == 0 => Ok(Packet::Eos),
            _ => Err(self.err(format!("{data_len} bytes after a head that carries none"))),
        }
    }
}

/// Reads the frames of a message that carries a buffer's frame apart from its bytes (a Zenoh
/// sample: the frames in its attachment, the buffer's bytes as its payload). `frames` holds
/// whole frames (caps, end of stream), of which the last may be a buffer frame cut just before
/// its bytes: those are `data`, which then comes out as the buffer, uncopied. The CRC of that
/// frame covers `data` as it does in a stream. Offsets in errors count from the start of
/// `frames`.
pub fn decode_detached(
    frames: &[u8],
    data: Buffer,
    max_payload: usize,
    out: &mut Vec<Packet>,
) -> Result<(), WireError> {
    let mut reader = Depayloader::new(max_payload);
    let mut data = Some(data);
    while (reader.offset as usize) < frames.len() {
        let rest = &frames[reader.offset as usize..];
        if rest.len() < HEADER_LEN {
            return Err(reader.err(format!("a header cut short at {} bytes", rest.len())));
        }
        let h = reader.header(rest)?;
        let len = HEADER_LEN + h.payload_len;
        if len <= rest.len() {
            out.push(reader.parse(&rest[..len], None)?);
            reader.offset += len as u64;
            continue;
        }
        // The buffer's frame: its bytes are the message's payload.
        let bytes = data
            .take()
            .expect("only the last frame reaches past the frames");
        if len != rest.len() + bytes.len() {
            return Err(reader.err(format!(
                "the frame says {} payload bytes, the message holds {}",
                h.payload_len,
                rest.len() - HEADER_LEN + bytes.len()
            )));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&rest[HEADER_LEN..]);
        crc.update(bytes.data());
        let crc = crc.finalize();
        if crc != h.crc {
            return Err(reader.err(format!(
                "CRC mismatch (header says {:08x}, the payload's is {crc:08x})",
                h.crc
            )));
        }
        let payload = &rest[HEADER_LEN..];
        if payload.len() < 4 {
            return Err(reader.err("a head cut short".into()));
        }
        let (head, head_len) = reader.head(payload)?;
        if 4 + head_len != payload.len() {
            return Err(reader.err(format!(
                "{} bytes between the head and the payload",
                payload.len() - 4 - head_len
            )));
        }
        let WireHead::Buffer(meta) = head else {
            return Err(reader.err(format!(
                "{} payload bytes after a head that carries none",
                bytes.len()
            )));
        };
        let mut buf = bytes;
        buf.meta = Metadata::try_from(meta).map_err(|e| reader.err(e.to_string()))?;
        out.push(Packet::Buffer(buf));
        return Ok(());
    }
    match data {
        Some(d) if !d.is_empty() => Err(reader.err(format!(
            "{} payload bytes and no buffer frame for them",
            d.len()
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::FieldValue;

    fn frames(bufs: &[Buffer]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_caps("audio/x-raw, rate=(int)48000", &mut out);
        for b in bufs {
            encode_buffer(b, &mut out).unwrap();
        }
        encode_eos(&mut out);
        out
    }

    fn sample() -> Vec<Buffer> {
        (0..5u8)
            .map(|i| {
                let mut b = Buffer::from_vec(vec![i; i as usize * 100]);
                b.meta.sequence = i as u64;
                b.meta.set_pts(Some(i as u64 * 1000));
                b.meta.set_field("k", FieldValue::Str(format!("v{i}")));
                b
            })
            .collect()
    }

    fn read_all(stream: &[u8], cut: usize, resync: bool) -> Vec<Result<Packet, WireError>> {
        let mut d = Depayloader::new(1 << 20);
        let mut out = Vec::new();
        for piece in stream.chunks(cut.max(1)) {
            d.push(&Buffer::from_vec(piece.to_vec()), resync, &mut out);
        }
        out
    }

    #[test]
    fn frames_read_back_whatever_the_cuts() {
        let bufs = sample();
        let stream = frames(&bufs);
        for cut in [1, 2, 3, 7, 16, 17, 100, 333, 4096, stream.len()] {
            let got = read_all(&stream, cut, false);
            assert_eq!(got.len(), bufs.len() + 2, "cut {cut}");
            assert!(matches!(&got[0], Ok(Packet::Caps(c)) if c.starts_with("audio/x-raw")));
            for (b, g) in bufs.iter().zip(&got[1..]) {
                let Ok(Packet::Buffer(g)) = g else {
                    panic!("cut {cut}: {g:?}")
                };
                assert_eq!(g.data(), b.data());
                assert_eq!(g.meta, b.meta);
            }
            assert!(matches!(got.last(), Some(Ok(Packet::Eos))));
        }
    }

    #[test]
    fn a_frame_inside_one_buffer_is_a_slice_of_it() {
        let mut out = Vec::new();
        encode_buffer(&Buffer::from_vec(vec![7; 4096]), &mut out).unwrap();
        let input = Buffer::from_vec(out);
        let mut d = Depayloader::new(1 << 20);
        let mut got = Vec::new();
        d.push(&input, false, &mut got);
        let Some(Ok(Packet::Buffer(b))) = got.pop() else {
            panic!()
        };
        let (start, end) = (
            input.data().as_ptr_range().start,
            input.data().as_ptr_range().end,
        );
        assert!(b.data().as_ptr() >= start && b.data().as_ptr() < end);
    }

    #[test]
    fn a_flipped_byte_is_an_error_at_its_frame_and_resync_finds_the_next() {
        let bufs = sample();
        let clean = frames(&bufs);
        // Flip a byte inside the third buffer frame's data.
        let mut offsets = Vec::new();
        let mut at = 0;
        while at < clean.len() {
            offsets.push(at);
            let len = u32::from_le_bytes(clean[at + 8..at + 12].try_into().unwrap()) as usize;
            at += HEADER_LEN + len;
        }
        let mut bad = clean.clone();
        bad[offsets[3] + 40] ^= 0x55;
        for cut in [1, 5, 64, bad.len()] {
            let got = read_all(&bad, cut, false);
            let err = got.iter().find_map(|r| r.as_ref().err()).unwrap();
            assert_eq!(err.offset, offsets[3] as u64, "cut {cut}");
            assert!(err.why.contains("CRC"), "{}", err.why);
            let got = read_all(&bad, cut, true);
            let buffers = got
                .iter()
                .filter(|g| matches!(g, Ok(Packet::Buffer(_))))
                .count();
            assert_eq!(
                buffers,
                bufs.len() - 1,
                "cut {cut}: one dropped, the rest read"
            );
            assert!(matches!(got.last(), Some(Ok(Packet::Eos))));
        }
    }

    #[test]
    fn garbage_and_gdp_are_named() {
        let got = read_all(b"hello world, not frames", 4, false);
        let e = got[0].as_ref().unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.why.contains("68 65 6c 6c"), "{}", e.why);
        let got = read_all(&[1, 0, 0, 0, 0, 0, 0, 0], 8, false);
        assert!(got[0].as_ref().unwrap_err().why.contains("gdppay"));
    }

    #[test]
    fn a_cut_stream_is_an_error_at_finish() {
        let stream = frames(&sample());
        let mut d = Depayloader::new(1 << 20);
        let mut out = Vec::new();
        d.push(
            &Buffer::from_vec(stream[..stream.len() / 2].to_vec()),
            false,
            &mut out,
        );
        assert!(out.iter().all(|r| r.is_ok()));
        let e = d.finish().unwrap_err();
        assert!(e.why.contains("ends inside a frame"), "{}", e.why);
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_reading_it() {
        let mut out = Vec::new();
        encode_buffer(&Buffer::from_vec(vec![0; 2000]), &mut out).unwrap();
        let mut d = Depayloader::new(1000);
        let mut got = Vec::new();
        d.push(&Buffer::from_vec(out[..20].to_vec()), false, &mut got);
        assert!(got[0].as_ref().unwrap_err().why.contains("over the limit"));
    }

    #[test]
    fn a_detached_frame_reads_back_with_its_bytes_uncopied() {
        let b = &sample()[3];
        let mut frames = Vec::new();
        encode_caps("text/plain", &mut frames);
        encode_buffer_head(b, &mut frames).unwrap();
        let data = Buffer::from_vec(b.data().to_vec());
        let at = data.data().as_ptr();
        let mut out = Vec::new();
        decode_detached(&frames, data.clone(), 1 << 20, &mut out).unwrap();
        assert!(matches!(&out[0], Packet::Caps(c) if c == "text/plain"));
        let Packet::Buffer(got) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(got.data().as_ptr(), at);
        assert_eq!(got.meta, b.meta);
        // Other bytes than the frame's: the CRC says so.
        let mut other = b.data().to_vec();
        other[0] ^= 1;
        let e = decode_detached(&frames, Buffer::from_vec(other), 1 << 20, &mut out).unwrap_err();
        assert!(e.why.contains("CRC"), "{}", e.why);
        let e = decode_detached(&frames, Buffer::from_vec(vec![1]), 1 << 20, &mut out).unwrap_err();
        assert!(e.why.contains("the message holds"), "{}", e.why);
        let mut eos = Vec::new();
        encode_eos(&mut eos);
        out.clear();
        decode_detached(&eos, Buffer::from_vec(Vec::new()), 1 << 20, &mut out).unwrap();
        assert!(matches!(out[..], [Packet::Eos]));
    }

    proptest::proptest! {
        #[test]
        fn random_attachments_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), data in 0usize..64) {
            let mut frames = Vec::new();
            encode_buffer_head(&sample()[1], &mut frames).unwrap();
            for (i, b) in bytes.iter().enumerate() {
                let n = frames.len();
                frames[(i * 5) % n] ^= b;
            }
            let _ = decode_detached(&frames, Buffer::from_vec(vec![7; data]), 1 << 20, &mut Vec::new());
            let _ = decode_detached(&bytes, Buffer::from_vec(vec![7; data]), 1 << 20, &mut Vec::new());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600), cut in 1usize..64, resync: bool) {
            let mut stream = frames(&sample()[..2]);
            let n = bytes.len().min(stream.len());
            for (i, b) in bytes.iter().enumerate().take(n) {
                stream[(i * 7) % n.max(1)] ^= b;
            }
            stream.extend_from_slice(&bytes);
            let _ = read_all(&stream, cut, resync);
        }
    }
}
