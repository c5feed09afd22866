//! `tsdemux` and `tsparse`: MPEG transport streams (ISO/IEC 13818-1), read by hand.
//!
//! The format is small: 188-byte packets, each starting with the sync byte 0x47 and naming
//! its PID; the program association table (PID 0) says which PID carries each program's map
//! table, the map table which PIDs carry the program's streams and what they are, and each
//! stream's PES packets (a header with pts and dts at 90 kHz, then the payload) run across as
//! many packets as they need. [`Parser`] walks packets as bytes come in, in chunks of any size:
//! it resynchronises on 0x47 after garbage (a warning naming the byte), checks each PID's
//! continuity counter (a gap is counted and warned about, as gst's, and the PES it broke is
//! dropped), reassembles table sections (CRC-checked) and PES packets, and reads the PCR.
//!
//! Timestamps are gst's: a PES's pts and dts in nanoseconds, minus the program's first PCR
//! (so a file made by mpegtsmux starts at 125 ms, as gst's tsdemux gives it), with the 33-bit
//! wrap undone. 192- and 204-byte packets (M2TS, with Reed-Solomon parity) are read too.

use super::bad_stream;
use crate::element::prelude::*;

/// The sync byte every packet starts with.
const SYNC: u8 = 0x47;
/// A packet without its M2TS timecode or parity.
const PACKET: usize = 188;
/// Bytes searched for the next packet before the stream is called no transport stream.
const MAX_RESYNC: u64 = 1 << 20;
/// The largest PES packet gathered: more is a broken stream, not a frame.
const MAX_PES: usize = 64 << 20;
/// Bytes of a file read to find its program's streams.
const MAX_PROBE: u64 = 32 << 20;
/// Warnings of one kind said one by one; the rest are counted.
const WARN_EACH: u64 = 5;

/// The MPEG-2 CRC-32 (polynomial 0x04C11DB7, not reflected) of PSI sections.
fn crc32_mpeg(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut k = 0;
            while k < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    data.iter().fold(0xFFFF_FFFF, |c, b| {
        (c << 8) ^ TABLE[((c >> 24) as u8 ^ b) as usize]
    })
}

/// One elementary stream of the program, with the pad it leaves on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Es {
    pub(crate) pid: u16,
    pub(crate) stream_type: u8,
    /// `video_0_0041`, `audio_0_0042`, as gst names them.
    pub(crate) pad: String,
    pub(crate) caps: Caps,
}

/// The caps gst's tsdemux gives a stream of `stream_type` with `descriptors` (the PMT's
/// ES_info), and whether it is video or audio; `None` for a stream it gives no pad here.
fn es_caps(stream_type: u8, descriptors: &[u8]) -> Option<(&'static str, &'static str)> {
    let mut tags = Vec::new();
    let mut registration = None;
    let mut d = descriptors;
    while d.len() >= 2 {
        let (tag, len) = (d[0], d[1] as usize);
        let Some(body) = d.get(2..2 + len) else { break };
        if tag == 0x05 && len >= 4 {
            registration = Some([body[0], body[1], body[2], body[3]]);
        }
        tags.push(tag);
        d = &d[2 + len..];
    }
    Some(match stream_type {
        0x01 => (
            "video",
            "video/mpeg, mpegversion=(int)1, systemstream=(boolean)false",
        ),
        0x02 => (
            "video",
            "video/mpeg, mpegversion=(int)2, systemstream=(boolean)false",
        ),
        0x03 | 0x04 => ("audio", "audio/mpeg, mpegversion=(int)1"),
        // gst prefers mpegversion 4 for ADTS, the one decoders take.
        0x0F => (
            "audio",
            "audio/mpeg, mpegversion=(int)4, stream-format=(string)adts",
        ),
        0x10 => (
            "video",
            "video/mpeg, mpegversion=(int)4, systemstream=(boolean)false",
        ),
        0x11 => (
            "audio",
            "audio/mpeg, mpegversion=(int)4, stream-format=(string)loas",
        ),
        0x1B => ("video", "video/x-h264, stream-format=(string)byte-stream"),
        0x24 => ("video", "video/x-h265, stream-format=(string)byte-stream"),
        0x81 => ("audio", "audio/x-ac3"),
        0x87 => ("audio", "audio/x-eac3"),
        0x82 | 0x85 | 0x86 | 0x8A => ("audio", "audio/x-dts"),
        // Private data: what its descriptors say.
        0x06 if tags.contains(&0x6A) || registration == Some(*b"AC-3") => ("audio", "audio/x-ac3"),
        0x06 if tags.contains(&0x7A) || registration == Some(*b"EAC3") => ("audio", "audio/x-eac3"),
        0x06 if tags.contains(&0x7B)
            || registration.is_some_and(|r| matches!(&r, b"DTS1" | b"DTS2" | b"DTS3")) =>
        {
            ("audio", "audio/x-dts")
        }
        _ => return None,
    })
}

/// What the parser found, in stream order.
#[derive(Debug)]
enum Event {
    /// A whole PES packet's payload on `pid`.
    Pes {
        pid: u16,
        data: Vec<u8>,
        pts: Option<u64>,
        dts: Option<u64>,
        discont: bool,
        /// File offset of the packet the PES started in.
        offset: u64,
    },
    /// A PCR (27 MHz) on `pid` in the packet at file offset `offset` (tsparse).
    Packet { offset: u64, pcr: u64, pid: u16 },
    /// Something lost or worked around; `kind` groups them for counting.
    Warn { kind: Warn, text: String },
}

/// Kinds of warning, each counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Warn {
    Sync,
    Continuity,
    Pes,
    Section,
    Program,
}

/// A PSI section being gathered.
#[derive(Default)]
struct Section {
    data: Vec<u8>,
    active: bool,
}

/// A PES packet being gathered on a stream's PID.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    /// The packet has a start (bytes before a stream's first unit start are not a packet).
    active: bool,
    offset: u64,
    /// The next packet given is the first after a loss.
    discont: bool,
}

/// The program chosen, once its map table is read.
struct Program {
    number: u16,
    pcr_pid: u16,
    streams: Vec<Es>,
}

/// The packet walker shared by tsdemux, tsparse and validation.
struct Parser {
    /// `program-number`, or -1 for the first program of the PAT.
    want: i64,
    /// Whether PES packets are gathered (tsdemux) or whole packets reported (tsparse).
    packets: bool,
    held: Vec<u8>,
    /// File offset of `held[0]`.
    base: u64,
    /// Packet stride (188, 192, 204) once in sync.
    stride: Option<usize>,
    /// Where the search for sync began, while out of sync.
    lost_at: Option<u64>,
    /// Last continuity counter per PID (0x10 = none yet).
    cc: Vec<u8>,
    pmt_pid: Option<u16>,
    program: Option<Program>,
    /// The PMT version read, to notice a change.
    pmt_version: Option<u8>,
    sections: std::collections::HashMap<u16, Section>,
    /// Per PID of the program's streams.
    pes: std::collections::HashMap<u16, Pending>,
    /// Whether a PAT was read.
    pat_seen: bool,
    /// The first PCR of the program's PCR PID (27 MHz), the time origin.
    first_pcr: Option<u64>,
    packets_seen: u64,
    /// Whole packets walked, for tsparse.
    passed: Passed,
}

/// Whole packets from file offset `offset`.
#[derive(Default)]
struct Passed {
    bytes: Vec<u8>,
    offset: u64,
}

impl Parser {
    fn new(want: i64, packets: bool) -> Parser {
        Parser {
            want,
            packets,
            held: Vec::new(),
            base: 0,
            stride: None,
            lost_at: None,
            cc: vec![0x10; 8192],
            pmt_pid: None,
            program: None,
            pmt_version: None,
            sections: Default::default(),
            pes: Default::default(),
            pat_seen: false,
            first_pcr: None,
            packets_seen: 0,
            passed: Passed::default(),
        }
    }

    /// Walks every whole packet of `data` (after what was held).
    fn push(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), ElementError> {
        self.held.extend_from_slice(data);
        let mut at = 0;
        loop {
            let rest = &self.held[at..];
            let Some(stride) = self.stride else {
                // Out of sync: find 0x47 with another one a stride later.
                match find_sync(rest) {
                    Sync::Found(skip, stride) => {
                        let here = self.base + (at + skip) as u64;
                        if let Some(lost) = self.lost_at.take() {
                            if here > lost {
                                out.push(Event::Warn {
                                    kind: Warn::Sync,
                                    text: format!(
                                        "lost sync at byte {lost}, resynchronised at byte {here} \
                                         ({} bytes skipped)",
                                        here - lost
                                    ),
                                });
                            }
                        }
                        at += skip;
                        self.stride = Some(stride);
                        continue;
                    }
                    Sync::More(skip) => {
                        at += skip;
                        let lost = *self.lost_at.get_or_insert(self.base);
                        let here = self.base + at as u64;
                        if here - lost > MAX_RESYNC {
                            return Err(bad_stream(
                                lost,
                                format!(
                                    "no MPEG-TS packet (sync byte 0x47 every 188 bytes) in the \
                                     {} bytes from here: not a transport stream",
                                    here - lost
                                ),
                            ));
                        }
                        break;
                    }
                }
            };
            if rest.len() < stride.max(PACKET + 1) {
                break;
            }
            if rest[0] != SYNC {
                self.stride = None;
                self.lost_at = Some(self.base + at as u64);
                continue;
            }
            let offset = self.base + at as u64;
            let packet: [u8; PACKET] = rest[..PACKET].try_into().expect("188 bytes");
            self.packet(&packet, offset, out)?;
            if self.packets {
                if self.passed.bytes.is_empty() {
                    self.passed.offset = offset;
                }
                self.passed
                    .bytes
                    .extend_from_slice(&self.held[at..at + stride]);
            }
            at += stride;
        }
        self.held.drain(..at);
        self.base += at as u64;
        Ok(())
    }

    /// The end of the stream: the last packet (without the byte after it), the PES packets
    /// still open.
    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), ElementError> {
        if self.base == 0 && self.held.is_empty() {
            return Ok(()); // an empty stream
        }
        if let Some(stride) = self.stride {
            if self.held.len() >= PACKET && self.held.len() <= stride && self.held[0] == SYNC {
                let packet: [u8; PACKET] = self.held[..PACKET].try_into().expect("188 bytes");
                let offset = self.base;
                self.packet(&packet, offset, out)?;
                if self.packets {
                    if self.passed.bytes.is_empty() {
                        self.passed.offset = offset;
                    }
                    self.passed.bytes.extend_from_slice(&packet);
                }
                self.base += self.held.len() as u64;
                self.held.clear();
            }
        }
        if !self.held.is_empty() {
            out.push(Event::Warn {
                kind: Warn::Sync,
                text: format!(
                    "the stream ends inside a packet at byte {} ({} bytes dropped)",
                    self.base,
                    self.held.len()
                ),
            });
            self.base += self.held.len() as u64;
            self.held.clear();
        }
        if self.packets_seen == 0 {
            return Err(bad_stream(
                self.base,
                "the stream ended before any MPEG-TS packet: not a transport stream",
            ));
        }
        if !self.packets {
            if !self.pat_seen {
                return Err(bad_stream(
                    self.base,
                    "the stream ended before its program association table: not an MPEG \
                     transport stream, or one cut short",
                ));
            }
            if self.program.is_none() {
                return Err(bad_stream(self.base, self.no_program()));
            }
        }
        let mut pids: Vec<u16> = self.pes.keys().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            self.emit(pid, true, out);
        }
        Ok(())
    }

    fn no_program(&self) -> String {
        match (self.want, self.pmt_pid) {
            (_, Some(pid)) => format!(
                "the stream ended before the program map table on PID {pid:#06x}: an MPEG \
                 transport stream cut short"
            ),
            (-1, None) => "the program association table lists no program".into(),
            (n, None) => format!("the program association table has no program {n}"),
        }
    }

    /// One packet at file offset `offset`.
    fn packet(
        &mut self,
        p: &[u8; PACKET],
        offset: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ElementError> {
        self.packets_seen += 1;
        let pid = u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]);
        let error = p[1] & 0x80 != 0;
        let unit_start = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let cc = p[3] & 0x0F;
        let mut payload_at = 4;
        let mut pcr = None;
        let mut discontinuity = false;
        if afc & 2 != 0 {
            let len = p[4] as usize;
            if len > 183 {
                out.push(Event::Warn {
                    kind: Warn::Pes,
                    text: format!(
                        "the packet at byte {offset} (PID {pid:#06x}) claims a {len}-byte \
                         adaptation field: dropped"
                    ),
                });
                return Ok(());
            }
            if len > 0 {
                discontinuity = p[5] & 0x80 != 0;
                if p[5] & 0x10 != 0 && len >= 7 {
                    let b = &p[6..12];
                    let base = u64::from(b[0]) << 25
                        | u64::from(b[1]) << 17
                        | u64::from(b[2]) << 9
                        | u64::from(b[3]) << 1
                        | u64::from(b[4]) >> 7;
                    let ext = u64::from(b[4] & 1) << 8 | u64::from(b[5]);
                    pcr = Some(base * 300 + ext);
                }
            }
            payload_at = 5 + len;
        }
        if self.packets {
            if let Some(pcr) = pcr {
                out.push(Event::Packet { offset, pcr, pid });
            }
        }
        if error || pid == 0x1FFF {
            return Ok(());
        }
        if let (Some(pcr), Some(prog)) = (pcr, &self.program) {
            if pid == prog.pcr_pid && self.first_pcr.is_none() {
                self.first_pcr = Some(pcr);
            }
        }
        let has_payload = afc & 1 != 0 && payload_at < PACKET;
        // Continuity: +1 per packet with payload; one duplicate is allowed.
        let known = pid == 0 || Some(pid) == self.pmt_pid || self.pes.contains_key(&pid);
        if afc & 1 != 0 && known {
            let last = self.cc[pid as usize];
            self.cc[pid as usize] = cc;
            if last != 0x10 && !discontinuity {
                if cc == last {
                    return Ok(()); // a duplicate packet
                }
                if cc != (last + 1) & 0x0F {
                    out.push(Event::Warn {
                        kind: Warn::Continuity,
                        text: format!(
                            "continuity counter of PID {pid:#06x} jumps from {last} to {cc} at \
                             byte {offset}: packets were lost"
                        ),
                    });
                    self.lost(pid, out);
                }
            }
        }
        if !has_payload {
            return Ok(());
        }
        let payload = &p[payload_at..];
        if pid == 0 || Some(pid) == self.pmt_pid {
            self.section(pid, unit_start, payload, offset, out);
        } else if !self.packets && self.pes.contains_key(&pid) {
            self.pes_bytes(pid, unit_start, payload, offset, out);
        }
        Ok(())
    }

    /// Packets of `pid` were lost before this one: the PES they broke is dropped.
    fn lost(&mut self, pid: u16, out: &mut Vec<Event>) {
        if let Some(s) = self.sections.get_mut(&pid) {
            s.active = false;
            s.data.clear();
        }
        if let Some(p) = self.pes.get_mut(&pid) {
            if p.active {
                out.push(Event::Warn {
                    kind: Warn::Pes,
                    text: format!(
                        "the PES packet of PID {pid:#06x} from byte {} lost packets: dropped",
                        p.offset
                    ),
                });
                p.active = false;
                p.data.clear();
            }
            p.discont = true;
        }
    }

    /// Section bytes on a table PID.
    fn section(
        &mut self,
        pid: u16,
        unit_start: bool,
        payload: &[u8],
        offset: u64,
        out: &mut Vec<Event>,
    ) {
        let mut tables = Vec::new();
        {
            let s = self.sections.entry(pid).or_default();
            let mut rest = payload;
            if unit_start {
                let pointer = rest[0] as usize;
                let Some(tail) = rest.get(1 + pointer..) else {
                    s.active = false;
                    s.data.clear();
                    return;
                };
                if s.active {
                    s.data.extend_from_slice(&rest[1..1 + pointer]);
                    take_sections(&mut s.data, &mut tables);
                }
                s.data.clear();
                s.active = true;
                rest = tail;
            } else if !s.active {
                return;
            }
            s.data.extend_from_slice(rest);
            take_sections(&mut s.data, &mut tables);
            if s.data.len() > 4096 {
                s.data.clear();
                s.active = false;
            }
        }
        for t in tables {
            if t.len() < 12 || crc32_mpeg(&t) != 0 {
                out.push(Event::Warn {
                    kind: Warn::Section,
                    text: format!(
                        "a table section of PID {pid:#06x} near byte {offset} fails its CRC: \
                         ignored"
                    ),
                });
                continue;
            }
            match (pid, t[0]) {
                (0, 0x00) => self.pat(&t),
                (_, 0x02) if Some(pid) == self.pmt_pid => self.pmt(&t, offset, out),
                _ => {}
            }
        }
    }

    /// The program association table (CRC checked).
    fn pat(&mut self, t: &[u8]) {
        self.pat_seen = true;
        if self.pmt_pid.is_some() {
            return;
        }
        let body = &t[8..t.len() - 4];
        for e in body.chunks_exact(4) {
            let number = u16::from_be_bytes([e[0], e[1]]);
            let pid = u16::from(e[2] & 0x1F) << 8 | u16::from(e[3]);
            if number == 0 {
                continue; // the network PID
            }
            if self.want < 0 || self.want == i64::from(number) {
                self.pmt_pid = Some(pid);
                return;
            }
        }
    }

    /// The program map table (CRC checked).
    fn pmt(&mut self, t: &[u8], offset: u64, out: &mut Vec<Event>) {
        let number = u16::from_be_bytes([t[3], t[4]]);
        let version = (t[5] >> 1) & 0x1F;
        if self.pmt_version == Some(version) {
            return;
        }
        let pcr_pid = u16::from(t[8] & 0x1F) << 8 | u16::from(t[9]);
        let info = (usize::from(t[10] & 0x0F) << 8) | usize::from(t[11]);
        let end = t.len() - 4;
        let mut at = 12 + info;
        let mut streams = Vec::new();
        while at + 5 <= end {
            let stream_type = t[at];
            let pid = u16::from(t[at + 1] & 0x1F) << 8 | u16::from(t[at + 2]);
            let len = (usize::from(t[at + 3] & 0x0F) << 8) | usize::from(t[at + 4]);
            let descriptors = t.get(at + 5..(at + 5 + len).min(end)).unwrap_or(&[]);
            if let Some((kind, caps)) = es_caps(stream_type, descriptors) {
                if !streams.iter().any(|s: &Es| s.pid == pid) {
                    streams.push(Es {
                        pid,
                        stream_type,
                        pad: format!("{kind}_0_{pid:04x}"),
                        caps: Caps::parse(caps).expect("a stream's caps parse"),
                    });
                }
            }
            at += 5 + len;
        }
        if self.pmt_version.is_some() {
            let same = self.program.as_ref().is_some_and(|p| {
                p.streams.len() == streams.len()
                    && p.streams.iter().zip(&streams).all(|(a, b)| a.pad == b.pad)
            });
            if !same {
                out.push(Event::Warn {
                    kind: Warn::Program,
                    text: format!(
                        "program {number} changes its streams near byte {offset}: only the \
                         first set is demuxed"
                    ),
                });
            }
            self.pmt_version = Some(version);
            return;
        }
        self.pmt_version = Some(version);
        for s in &streams {
            self.pes.insert(s.pid, Pending::default());
        }
        self.program = Some(Program {
            number,
            pcr_pid,
            streams,
        });
    }

    /// Payload bytes of a stream's PID.
    fn pes_bytes(
        &mut self,
        pid: u16,
        unit_start: bool,
        payload: &[u8],
        offset: u64,
        out: &mut Vec<Event>,
    ) {
        if unit_start {
            self.emit(pid, false, out);
        }
        let p = self.pes.get_mut(&pid).expect("a stream of the program");
        if unit_start {
            p.active = true;
            p.offset = offset;
            p.data.clear();
        } else if !p.active {
            return;
        }
        p.data.extend_from_slice(payload);
        // A PES of known length is whole once its bytes are in.
        if p.data.len() >= 6 {
            let len = usize::from(u16::from_be_bytes([p.data[4], p.data[5]]));
            if len != 0 && p.data.len() >= 6 + len {
                self.emit(pid, false, out);
                return;
            }
        }
        if p.data.len() > MAX_PES {
            out.push(Event::Warn {
                kind: Warn::Pes,
                text: format!(
                    "the PES packet of PID {pid:#06x} from byte {} runs past {MAX_PES} bytes: \
                     dropped",
                    p.offset
                ),
            });
            p.active = false;
            p.data.clear();
            p.discont = true;
        }
    }

    /// Gives the PES packet gathered on `pid`, if any (`end`: the stream ended).
    fn emit(&mut self, pid: u16, end: bool, out: &mut Vec<Event>) {
        let Some(p) = self.pes.get_mut(&pid) else {
            return;
        };
        if !p.active || p.data.is_empty() {
            return;
        }
        p.active = false;
        let data = std::mem::take(&mut p.data);
        let offset = p.offset;
        let warn = |text: String| Event::Warn {
            kind: Warn::Pes,
            text,
        };
        match read_pes(&data) {
            Ok((header, pts, dts)) => {
                let declared = usize::from(u16::from_be_bytes([data[4], data[5]]));
                let mut payload = data;
                if declared != 0 && payload.len() > 6 + declared {
                    payload.truncate(6 + declared); // stuffing after the packet
                } else if end && declared != 0 && payload.len() < 6 + declared {
                    out.push(warn(format!(
                        "the stream ends inside the PES packet of PID {pid:#06x} from byte \
                         {offset} ({} of {} bytes)",
                        payload.len(),
                        6 + declared
                    )));
                }
                payload.drain(..header.min(payload.len()));
                let discont = std::mem::take(&mut p.discont);
                out.push(Event::Pes {
                    pid,
                    data: payload,
                    pts,
                    dts,
                    discont,
                    offset,
                });
            }
            Err(why) => {
                p.discont = true;
                out.push(warn(format!(
                    "the PES packet of PID {pid:#06x} at byte {offset}: {why}: dropped"
                )));
            }
        }
    }
}

/// Whole sections at the start of `data`, moved to `tables`; stops at stuffing (0xFF) or at
/// a section not yet whole.
fn take_sections(data: &mut Vec<u8>, tables: &mut Vec<Vec<u8>>) {
    let mut at = 0;
    while at + 3 <= data.len() && data[at] != 0xFF {
        let len = (usize::from(data[at + 1] & 0x0F) << 8) | usize::from(data[at + 2]);
        if at + 3 + len > data.len() {
            break;
        }
        tables.push(data[at..at + 3 + len].to_vec());
        at += 3 + len;
    }
    if at + 3 <= data.len() && data[at] == 0xFF {
        at = data.len();
    }
    data.drain(..at);
}

/// A PES packet's header length, pts and dts (90 kHz).
fn read_pes(d: &[u8]) -> Result<(usize, Option<u64>, Option<u64>), &'static str> {
    if d.len() < 6 || d[..3] != [0, 0, 1] {
        return Err("no PES start code");
    }
    let stream_id = d[3];
    // program_stream_map, padding, private_stream_2, ECM, EMM, directory, DSMCC, H.222.1 E:
    // no optional header.
    if matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    ) {
        return Ok((6, None, None));
    }
    if d.len() < 9 || d[6] & 0xC0 != 0x80 {
        return Err("a PES header cut short or not MPEG-2");
    }
    let header = 9 + usize::from(d[8]);
    if d.len() < header {
        return Err("a PES header longer than its packet");
    }
    let ts = |b: &[u8]| -> u64 {
        u64::from((b[0] >> 1) & 7) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1)
    };
    let (pts, dts) = match d[7] >> 6 {
        2 if header >= 14 => (Some(ts(&d[9..14])), None),
        3 if header >= 19 => (Some(ts(&d[9..14])), Some(ts(&d[14..19]))),
        0 | 1 => (None, None),
        _ => return Err("a PES header too short for its timestamps"),
    };
    Ok((header, pts, dts))
}

enum Sync {
    /// A packet starts this many bytes in, at this stride.
    Found(usize, usize),
    /// None yet: these bytes can be dropped, wait for more.
    More(usize),
}

/// The first 0x47 in `b` followed by another at a packet stride (and a third when the bytes
/// are there).
fn find_sync(b: &[u8]) -> Sync {
    let mut from = 0;
    while let Some(i) = memchr::memchr(SYNC, &b[from..]).map(|i| i + from) {
        let mut undecided = false;
        for stride in [188usize, 192, 204] {
            match (b.get(i + stride), b.get(i + 2 * stride)) {
                (Some(&SYNC), Some(&SYNC)) => return Sync::Found(i, stride),
                (Some(&SYNC), None) => undecided = true,
                (None, _) => undecided = true,
                _ => {}
            }
        }
        if undecided {
            return Sync::More(i);
        }
        from = i + 1;
    }
    Sync::More(b.len())
}

/// Bytes of each audio stream read to learn its rate and channels.
const AUDIO_PROBE: usize = 4096;
/// The longest SPS looked for: a parameter set is a few dozen bytes, a few hundred with
/// scaling matrices.
const MAX_SPS: usize = 64 * 1024;

/// An H.264 stream's first bytes while its first sequence parameter set is looked for.
#[derive(Default)]
struct SpsSearch {
    /// Bytes not searched yet, from where an SPS may begin.
    pending: Vec<u8>,
    /// The SPS read, or why it could not be read.
    found: Option<Result<super::Sps, String>>,
}

impl SpsSearch {
    /// Looks for the SPS in `data` (after what was pending); `end`: nothing follows.
    fn push(&mut self, data: &[u8], end: bool) {
        if self.found.is_some() {
            return;
        }
        self.pending.extend_from_slice(data);
        match super::find_sps(&self.pending) {
            Some((begin, Some(stop))) => {
                self.found = Some(super::Sps::parse(&self.pending[begin..stop]));
            }
            Some((begin, None)) if end || self.pending.len() - begin > MAX_SPS => {
                self.found = Some(super::Sps::parse(&self.pending[begin..]));
            }
            Some((begin, None)) => {
                // Keep the start code in front of the unit.
                self.pending.drain(..begin.saturating_sub(3));
                return;
            }
            None => {
                // A start code may be cut by the end of the data.
                let keep = self.pending.len().saturating_sub(3);
                self.pending.drain(..keep);
                return;
            }
        }
        self.pending = Vec::new();
    }
}

/// The program's streams in a stream read from its start (a file, or a pipe's head lent at
/// validation), for validation and decodebin: reads packets until the chosen program's map
/// table, then until each audio stream's first frames, whose headers add the rate and channels
/// to its caps, and each H.264 stream's first sequence parameter set, which adds the picture
/// size, frame rate, profile and level (what decoders after it negotiate with).
pub(crate) fn program_of_stream(f: &mut dyn std::io::Read, want: i64) -> Result<Vec<Es>, String> {
    program_within(f, want, MAX_PROBE)
}

/// [`program_of_stream`], reading at most about `limit` bytes.
fn program_within(f: &mut dyn std::io::Read, want: i64, limit: u64) -> Result<Vec<Es>, String> {
    let mut parser = Parser::new(want, false);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let mut heads: std::collections::HashMap<u16, Vec<u8>> = Default::default();
    let mut sps: std::collections::HashMap<u16, SpsSearch> = Default::default();
    let streams = |p: &Parser, kind: &str| -> Vec<u16> {
        p.program
            .iter()
            .flat_map(|p| &p.streams)
            .filter(|s| match kind {
                "h264" => s.stream_type == 0x1B,
                _ => s.pad.starts_with("audio"),
            })
            .map(|s| s.pid)
            .collect()
    };
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        let read = if n == 0 {
            parser.finish(&mut out)
        } else {
            parser.push(&buf[..n], &mut out)
        };
        let video = streams(&parser, "h264");
        for e in out.drain(..) {
            if let Event::Pes { pid, data, .. } = e {
                if video.contains(&pid) {
                    sps.entry(pid).or_default().push(&data, false);
                    continue;
                }
                let head = heads.entry(pid).or_default();
                let room = AUDIO_PROBE.saturating_sub(head.len());
                head.extend_from_slice(&data[..room.min(data.len())]);
            }
        }
        if let Err(e) = read {
            if parser.program.is_none() || n == 0 {
                return Err(e.to_string());
            }
            break;
        }
        let probed = parser.program.is_some()
            && streams(&parser, "audio")
                .iter()
                .all(|pid| heads.get(pid).is_some_and(|h| h.len() >= AUDIO_PROBE))
            && video
                .iter()
                .all(|pid| sps.get(pid).is_some_and(|s| s.found.is_some()));
        if n == 0 || probed || parser.base > limit {
            break;
        }
    }
    for s in sps.values_mut() {
        s.push(&[], true);
    }
    match parser.program {
        Some(p) if p.streams.is_empty() => {
            Err(format!("program {} has no stream tsdemux gives", p.number))
        }
        Some(mut p) => {
            for s in &mut p.streams {
                if s.stream_type == 0x1B {
                    let pid = s.pid;
                    match sps.remove(&pid).and_then(|s| s.found) {
                        Some(Ok(sps)) => {
                            for st in s.caps.structures_mut() {
                                sps.describe(st);
                            }
                        }
                        Some(Err(why)) => {
                            return Err(format!(
                                "the H.264 stream on PID {pid:#06x}: its first sequence \
                                 parameter set is broken: {why}"
                            ));
                        }
                        None => {
                            return Err(format!(
                                "the H.264 stream on PID {pid:#06x} has no sequence parameter \
                                 set (SPS) in the first {} bytes: its picture size, which \
                                 the elements after tsdemux are planned with, is unknown",
                                parser.base
                            ));
                        }
                    }
                } else if let Some(head) = heads.get(&s.pid) {
                    refine(&mut s.caps, head);
                }
            }
            Ok(p.streams)
        }
        None if !parser.pat_seen => Err(format!(
            "no program association table in the first {} bytes: not an MPEG transport stream",
            parser.base
        )),
        None => Err(parser.no_program()),
    }
}

/// Adds what an audio stream's first frames say (rate, channels, layer) to its caps.
fn refine(caps: &mut Caps, head: &[u8]) {
    let Some(found) = super::sniff(head) else {
        return;
    };
    let (Some(from), Some(name)) = (found.first(), caps.first().map(|s| s.name.clone())) else {
        return;
    };
    if from.name != name {
        return;
    }
    for s in caps.structures_mut() {
        for field in ["layer", "mpegaudioversion", "rate", "channels"] {
            if let Some(v) = from.get(field) {
                s.set(field, v.clone());
            }
        }
    }
}

/// decodebin's view of a file's program (see [`streams_of_stream`]).
pub(crate) fn streams_of_file(
    path: &std::path::Path,
    props: &Props,
) -> Result<Vec<(String, Caps)>, String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    streams_of_stream(&mut f, props)
}

/// decodebin's view of [`program_of_stream`]: the program `program-number` says.
pub(crate) fn streams_of_stream(
    f: &mut dyn std::io::Read,
    props: &Props,
) -> Result<Vec<(String, Caps)>, String> {
    let want = props.int("program-number").unwrap_or(-1);
    Ok(program_of_stream(f, want)?
        .into_iter()
        .map(|s| (s.pad, s.caps))
        .collect())
}

/// A pad's route number: its PID, the hex digits after the last `_`.
fn pad_pid(pad: &str) -> Option<u32> {
    let (kind, pid) = pad.rsplit_once('_')?;
    if !(kind.starts_with("video_") || kind.starts_with("audio_")) {
        return None;
    }
    u32::from_str_radix(pid, 16).ok().filter(|p| *p < 0x2000)
}

/// Counts warnings by kind, saying the first few of each.
#[derive(Default)]
struct Warnings {
    counts: [u64; 5],
}

impl Warnings {
    fn say(&mut self, kind: Warn, text: &str, cx: &Ctx<'_>) {
        let n = &mut self.counts[kind as usize];
        *n += 1;
        if *n <= WARN_EACH {
            cx.warn(text);
        }
        if *n == WARN_EACH {
            cx.warn("further warnings of this kind are counted and given at the end");
        }
    }

    fn summary(&self, cx: &Ctx<'_>) {
        let names = [
            "sync losses",
            "continuity errors",
            "PES packets dropped",
            "table sections ignored",
            "program changes",
        ];
        for (n, name) in self.counts.iter().zip(names) {
            if *n > WARN_EACH {
                cx.warn(format_args!("{n} {name} in all"));
            }
        }
    }
}

// --- tsdemux -------------------------------------------------------------------------------

const PROGRAM_NUMBER: PropSpec = PropSpec::int(
    "program-number",
    -1,
    -1,
    i32::MAX as i64,
    "Program Number to demux for (-1 to ignore)",
);

pub(crate) static TSDEMUX: Factory = Factory {
    name: "tsdemux",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Demuxes MPEG2 transport streams",
    doc: "Reads an MPEG transport stream (188-byte packets; 192 and 204 too) and gives each \
          stream of one program on a pad named as gst names it, `video_0_0041` or \
          `audio_0_0044` (the PID in hex): H.264 as `stream-format=byte-stream` with the \
          picture size, frame rate (when it has one), profile and level its first sequence \
          parameter set gives (as gst's h264parse announces them, so a decoder after it knows \
          its size), H.265 as `stream-format=byte-stream`, AAC as ADTS (`audio/mpeg, mpegversion=4, stream-format=adts`) or LATM, MPEG audio, \
          MPEG-1/2/4 video, AC-3, E-AC-3 and DTS as caps only. Each buffer is one PES \
          packet's payload stamped with its pts and dts, minus the program's first PCR as \
          gst's are. `program-number` picks the program (the first of the association table \
          by default). The program's streams are read from the file when the description is \
          validated, so `demux.` without a pad name takes the next stream its downstream \
          accepts; the input is a file, or a pipe whose head validation reads. Garbage between packets is skipped and \
          a gap in a PID's continuity counter drops the PES it broke, each a warning naming \
          the byte (the first few said, the rest counted); bytes with no packet in the first \
          MiB, or a stream without its tables, are an error naming the byte offset; an H.264 \
          stream without a sequence parameter set in the first 32 MiB is an error naming its \
          PID.",
    pads: Pads {
        sink: PadPresence::Always("sink"),
        src: PadPresence::Request("video_%01x_%04x audio_%01x_%04x"),
        sink_caps: "video/mpegts, systemstream=(boolean)true",
        src_caps: "video/mpeg; video/x-h264; video/x-h265; audio/mpeg; audio/x-ac3; \
                   audio/x-eac3; audio/x-dts",
        rule: CapsRule::Fixed,
    },
    props: &[PROGRAM_NUMBER],
    hints: super::DECODER,
    build: |p| {
        let want = p.int("program-number")?;
        Ok(ElementImpl::Demux {
            imp: Box::new(TsDemux {
                parser: Parser::new(want, false),
                out: Vec::new(),
                warnings: Warnings::default(),
            }),
            router: Box::new(ByPid),
        })
    },
};

/// Sends each PES to its PID's pad.
struct ByPid;

impl Router for ByPid {
    fn route(&mut self, buf: &Buffer) -> Option<u32> {
        Some(buf.meta.stream_id)
    }

    fn pad_number(&self, pad: &str) -> Option<u32> {
        pad_pid(pad)
    }
}

struct TsDemux {
    parser: Parser,
    out: Vec<Event>,
    warnings: Warnings,
}

/// 90 kHz ticks to nanoseconds, as gst rounds them.
fn ticks_ns(t: u64) -> u64 {
    (u128::from(t) * 100_000 / 9) as u64
}

impl TsDemux {
    /// A 33-bit timestamp in ns since the program's first PCR, the wrap undone.
    fn time(&mut self, t: u64) -> u64 {
        const WRAP: i64 = 1 << 33;
        let origin = *self.parser.first_pcr.get_or_insert(t * 300);
        let origin_ticks = (origin / 300) as i64;
        // The 33-bit value nearest the origin (a stream of more than 13 hours wraps once per
        // 26.5 hours; read relative to the origin, a late timestamp unwraps forwards).
        let mut diff = (t as i64 - origin_ticks).rem_euclid(WRAP);
        if diff >= WRAP / 2 {
            diff -= WRAP;
        }
        let ticks = (origin_ticks + diff).max(0) as u64;
        ticks_ns(ticks).saturating_sub((u128::from(origin) * 1000 / 27) as u64)
    }

    fn give(&mut self, cx: &mut Ctx<'_>) {
        let events = std::mem::take(&mut self.out);
        for e in events {
            match e {
                Event::Pes {
                    pid,
                    data,
                    pts,
                    dts,
                    discont,
                    offset,
                } => {
                    let mut b = Buffer::from_vec(data);
                    let pts = pts.map(|t| self.time(t));
                    let dts = dts.map(|t| self.time(t)).or(pts);
                    b.meta.set_pts(pts);
                    b.meta.set_dts(dts);
                    b.meta.set_offset(Some(offset));
                    b.meta.stream_id = u32::from(pid);
                    if discont {
                        b.meta.flags = BufferFlags(b.meta.flags.0 | BufferFlags::DISCONT.0);
                    }
                    cx.push(b);
                }
                Event::Warn { kind, text } => self.warnings.say(kind, &text, cx),
                Event::Packet { .. } => {}
            }
        }
    }
}

impl Transform for TsDemux {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let pushed = self.parser.push(buf.data(), &mut self.out);
        self.give(cx);
        pushed?;
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let finished = self.parser.finish(&mut self.out);
        self.give(cx);
        self.warnings.summary(cx);
        finished
    }
}

// --- tsparse -------------------------------------------------------------------------------

pub(crate) static TSPARSE: Factory = Factory {
    name: "tsparse",
    aliases: &["mpegtsparse2"],
    klass: Klass::Filter,
    summary: "Parses MPEG2 transport streams",
    doc: "Passes an MPEG transport stream on in whole packets: bytes between packets are \
          dropped (a warning naming the byte), a packet cut in two by the input's chunks is \
          joined, and each buffer holds `alignment` packets (0: the whole packets of each \
          input buffer; at the end of the stream the last buffer holds what is left). \
          `set-timestamps` stamps each buffer with the time of its first packet, interpolated \
          between the PCRs around it (the PCR PID is the first seen, or `pcr-pid`), from the \
          first PCR on; buffers before it have none. Packets pass unchanged, 192- and \
          204-byte ones with their extra bytes.",
    pads: Pads::ONE_TO_ONE
        .with_caps(
            "video/mpegts, systemstream=(boolean)true",
            "video/mpegts, systemstream=(boolean)true",
        )
        .with_rule(CapsRule::Passthrough),
    props: &[
        PropSpec::uint(
            "alignment",
            0,
            0,
            u32::MAX as u64,
            "Number of packets per buffer (padded with dummy packets on EOS) (0 = auto)",
        ),
        PropSpec::bool(
            "set-timestamps",
            false,
            "If set, timestamps will be set on the output buffers using PCRs and smoothed over \
             the smoothing-latency period",
        ),
        PropSpec::int(
            "pcr-pid",
            -1,
            -1,
            i32::MAX as i64,
            "Set the PID to use for PCR values (-1 for auto)",
        ),
        PropSpec::uint(
            "smoothing-latency",
            0,
            0,
            u32::MAX as u64,
            "Additional latency in microseconds for smoothing jitter in input timestamps on live capture",
        )
        .ignored("timestamps come from the PCRs around each packet, not from arrival times"),
    ],
    hints: Hints {
        trust: Trust::SemiTrusted,
        ..Hints::FUSABLE
    },
    build: |p| {
        let pcr_pid = p.int("pcr-pid")?;
        Ok(ElementImpl::Transform(Box::new(TsParse {
            parser: Parser::new(-1, true),
            out: Vec::new(),
            alignment: p.uint("alignment")? as usize,
            stamp: p.bool("set-timestamps")?,
            pcr_pid: u16::try_from(pcr_pid).ok(),
            first: None,
            pcrs: [None; 2],
            warnings: Warnings::default(),
        })))
    },
};

struct TsParse {
    parser: Parser,
    out: Vec<Event>,
    alignment: usize,
    stamp: bool,
    pcr_pid: Option<u16>,
    /// The first PCR (27 MHz).
    first: Option<u64>,
    /// The last two PCRs as (file offset, 27 MHz), for the byte rate.
    pcrs: [Option<(u64, u64)>; 2],
    warnings: Warnings,
}

/// A null packet, which pads the last buffer to `alignment` packets as gst's.
fn null_packet() -> [u8; PACKET] {
    let mut p = [0xFF; PACKET];
    p[..4].copy_from_slice(&[SYNC, 0x1F, 0xFF, 0x10]);
    p
}

impl TsParse {
    /// Gives the whole packets passed so far, in buffers of `alignment` packets.
    fn give(&mut self, end: bool, cx: &mut Ctx<'_>) {
        for e in std::mem::take(&mut self.out) {
            match e {
                Event::Packet { offset, pcr, pid } => {
                    if self.pcr_pid.is_none() {
                        self.pcr_pid = Some(pid);
                    }
                    if self.pcr_pid == Some(pid) {
                        self.first.get_or_insert(pcr);
                        self.pcrs = [self.pcrs[1], Some((offset, pcr))];
                    }
                }
                Event::Warn { kind, text } => self.warnings.say(kind, &text, cx),
                Event::Pes { .. } => {}
            }
        }
        let stride = self.parser.stride.unwrap_or(PACKET);
        let per = if self.alignment == 0 {
            usize::MAX / stride
        } else {
            self.alignment
        };
        let mut passed = std::mem::take(&mut self.parser.passed);
        if end && self.alignment > 0 && stride == PACKET {
            let n = passed.bytes.len() / stride;
            let pad = (per - n % per) % per;
            if n % per != 0 {
                for _ in 0..pad {
                    passed.bytes.extend_from_slice(&null_packet());
                }
            }
        }
        let mut at = 0;
        while passed.bytes.len() - at >= stride {
            let n = ((passed.bytes.len() - at) / stride).min(per);
            if n < per && !end {
                break;
            }
            let mut b = Buffer::from_vec(passed.bytes[at..at + n * stride].to_vec());
            let offset = passed.offset + at as u64;
            b.meta.set_offset(Some(offset));
            if self.stamp {
                b.meta.set_pts(self.time_at(offset));
                b.meta.set_dts(b.meta.pts());
            }
            cx.push(b);
            at += n * stride;
        }
        passed.bytes.drain(..at);
        passed.offset += at as u64;
        self.parser.passed = passed;
    }

    /// The time of the byte at `offset`: the last PCR before it, carried on at the rate of
    /// the last two, in ns since the first.
    fn time_at(&self, offset: u64) -> Option<u64> {
        let first = self.first?;
        let (o1, p1) = self.pcrs[1]?;
        let at = match self.pcrs[0] {
            Some((o0, p0)) if o1 > o0 && p1 > p0 => {
                let rate = (p1 - p0) as f64 / (o1 - o0) as f64;
                p1 as f64 + (offset as f64 - o1 as f64) * rate
            }
            _ => p1 as f64,
        };
        Some(((at - first as f64).max(0.0) * 1000.0 / 27.0) as u64)
    }
}

impl Transform for TsParse {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let pushed = self.parser.push(buf.data(), &mut self.out);
        self.give(false, cx);
        pushed?;
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let finished = self.parser.finish(&mut self.out);
        self.give(true, cx);
        self.warnings.summary(cx);
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A table section with its CRC, in one packet on `pid`.
    fn table(pid: u16, table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
        let mut s = vec![
            table_id,
            0xB0 | ((body.len() + 9) >> 8) as u8,
            (body.len() + 9) as u8,
        ];
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(&[0xC1, 0, 0]);
        s.extend_from_slice(body);
        let crc = crc32_mpeg(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        let mut p = vec![SYNC, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0];
        p.extend_from_slice(&s);
        p.resize(PACKET, 0xFF);
        p
    }

    /// A PES of `payload` with `pts` on `pid` (continuity from `cc`), the first packet with a
    /// PCR of `pcr` (90 kHz) when given.
    fn pes(pid: u16, payload: &[u8], pts: u64, pcr: Option<u64>, cc: &mut u8) -> Vec<u8> {
        let mut d = vec![0, 0, 1, 0xC0];
        d.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
        d.extend_from_slice(&[0x80, 0x80, 5]);
        d.extend_from_slice(&[
            0x21 | ((pts >> 29) & 0x0E) as u8,
            (pts >> 22) as u8,
            0x01 | (pts >> 14) as u8 & 0xFE,
            (pts >> 7) as u8,
            0x01 | (pts << 1) as u8,
        ]);
        d.extend_from_slice(payload);
        let mut out = Vec::new();
        let mut first = true;
        let mut rest = &d[..];
        while !rest.is_empty() {
            let mut p = vec![SYNC, (pid >> 8) as u8, pid as u8, 0x10 | *cc];
            if first {
                p[1] |= 0x40;
            }
            *cc = (*cc + 1) & 15;
            let mut af = Vec::new();
            if let (true, Some(pcr)) = (first, pcr) {
                af = vec![
                    7,
                    0x10,
                    (pcr >> 25) as u8,
                    (pcr >> 17) as u8,
                    (pcr >> 9) as u8,
                ];
                af.extend_from_slice(&[(pcr >> 1) as u8, ((pcr & 1) << 7) as u8 | 0x7E, 0]);
            }
            let room = PACKET - 4 - af.len();
            if rest.len() < room {
                // Stuffing in the adaptation field.
                let stuff = room - rest.len();
                if af.is_empty() {
                    af = vec![(stuff - 1) as u8];
                    if stuff > 1 {
                        af.push(0);
                        af.resize(stuff, 0xFF);
                    }
                } else {
                    af[0] += stuff as u8;
                    af.resize(af.len() + stuff, 0xFF);
                }
            }
            if !af.is_empty() {
                p[3] |= 0x20;
            }
            p.extend_from_slice(&af);
            let n = (PACKET - p.len()).min(rest.len());
            p.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            out.extend_from_slice(&p);
            first = false;
        }
        out
    }

    /// Two programs (1 on PMT 0x100, stream 0x41; 2 on PMT 0x200, stream 0x51), three PES
    /// each, the second program's PTS wrapping past 2^33.
    fn two_programs() -> Vec<u8> {
        let mut ts = table(0, 0, 1, &[0, 1, 0xE1, 0x00, 0, 2, 0xE2, 0x00]);
        ts.extend(table(
            0x100,
            2,
            1,
            &[0xE0, 0x41, 0xF0, 0, 0x03, 0xE0, 0x41, 0xF0, 0],
        ));
        ts.extend(table(
            0x200,
            2,
            2,
            &[0xE0, 0x51, 0xF0, 0, 0x0F, 0xE0, 0x51, 0xF0, 0],
        ));
        let (mut a, mut b) = (0, 0);
        let wrap = 1u64 << 33;
        for i in 0..3u64 {
            let pcr = (i == 0).then_some(1000);
            ts.extend(pes(0x41, &[i as u8; 300], 10_000 + i * 3000, pcr, &mut a));
            let pcr = (i == 0).then_some(wrap - 3000);
            let pts = (wrap - 3000 + i * 3000) % wrap;
            ts.extend(pes(0x51, &[i as u8; 100], pts, pcr, &mut b));
        }
        ts
    }

    /// Runs tsdemux's parser over `input` in chunks: each PES as (pid, size, pts ns).
    fn demux(
        input: &[u8],
        chunk: usize,
        want: i64,
    ) -> Result<Vec<(u16, usize, Option<u64>)>, ElementError> {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let mut d = TsDemux {
            parser: Parser::new(want, false),
            out: Vec::new(),
            warnings: Warnings::default(),
        };
        let mut got = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            d.process(Buffer::from_vec(c.to_vec()), &mut cx)?;
            got.extend(
                cx.take_pushed()
                    .map(|b| (b.meta.stream_id as u16, b.len(), b.meta.pts())),
            );
        }
        d.flush(&mut cx)?;
        got.extend(
            cx.take_pushed()
                .map(|b| (b.meta.stream_id as u16, b.len(), b.meta.pts())),
        );
        Ok(got)
    }

    #[test]
    fn the_crc_of_a_section_with_its_crc_is_zero() {
        let t = table(0, 0, 1, &[0, 1, 0xE1, 0]);
        let len = 3 + (usize::from(t[6] & 0x0F) << 8 | usize::from(t[7]));
        assert_eq!(crc32_mpeg(&t[5..5 + len]), 0);
    }

    #[test]
    fn program_number_picks_the_program_and_times_start_at_its_first_pcr() {
        let ts = two_programs();
        let ms = |n: u64| Some(n * 1_000_000);
        for chunk in [1, 100, 188, 4096] {
            let one = demux(&ts, chunk, -1).unwrap();
            // PCR 1000 ticks, PTS 10000: 100 ms, then 33.3 ms apart (3000 ticks).
            assert_eq!(
                one,
                [
                    (0x41, 300, ms(100)),
                    (0x41, 300, Some(133_333_333)),
                    (0x41, 300, Some(166_666_666))
                ]
            );
            // The second program's PTS wraps past 2^33 and its times go on.
            let two = demux(&ts, chunk, 2).unwrap();
            assert_eq!(
                two,
                [
                    (0x51, 100, ms(0)),
                    (0x51, 100, Some(33_333_333)),
                    (0x51, 100, Some(66_666_667))
                ]
            );
        }
        let e = demux(&ts, 188, 3).unwrap_err().to_string();
        assert!(e.contains("has no program 3 (at byte"), "{e}");
    }

    #[test]
    fn garbage_and_lost_packets_are_counted_not_fatal() {
        let ts = two_programs();
        let mut bad = ts[..188 * 3].to_vec();
        bad.extend_from_slice(b"garbage");
        bad.extend_from_slice(&ts[188 * 3..188 * 4]);
        bad.extend_from_slice(&ts[188 * 5..]); // the first PES's second packet lost
        let got = demux(&bad, 50, 1).unwrap();
        // The PES that lost a packet is dropped; the others come.
        assert_eq!(got.len(), 2, "{got:?}");
        // Noise is an error naming the byte.
        let noise: Vec<u8> = (0..(MAX_RESYNC as usize + 4096))
            .map(|i| (i * 7 % 251) as u8 & 0x3F)
            .collect();
        let e = demux(&noise, 4096, -1).unwrap_err().to_string();
        assert!(e.ends_with("not a transport stream (at byte 0)"), "{e}");
    }

    /// A program with H.264 on PID 0x41, one PES for each payload.
    fn h264_program(payloads: &[Vec<u8>]) -> tempfile::NamedTempFile {
        let mut ts = table(0, 0, 1, &[0, 1, 0xE1, 0x00]);
        ts.extend(table(
            0x100,
            2,
            1,
            &[0xE0, 0x41, 0xF0, 0, 0x1B, 0xE0, 0x41, 0xF0, 0],
        ));
        let mut cc = 0;
        for (i, p) in payloads.iter().enumerate() {
            let pcr = (i == 0).then_some(1000);
            ts.extend(pes(0x41, p, 10_000 + i as u64 * 3000, pcr, &mut cc));
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), ts).unwrap();
        f
    }

    /// OpenH264's SPS of a 320x240 picture, with its start code.
    const SPS_320: [u8; 18] = [
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0x8c, 0x8d, 0x40, 0xa0, 0xf9, 0x00, 0xf0, 0x88, 0x46,
        0xa0,
    ];

    #[test]
    fn an_h264_streams_caps_carry_what_its_first_sps_says() {
        // Slices first (a file cut mid-stream), then the SPS cut across two PES packets.
        let slice = [&[0, 0, 0, 1, 0x41][..], &[0x9a; 600]].concat();
        let mut payloads = vec![slice.clone(), slice.clone()];
        payloads.push([&slice[..], &SPS_320[..10]].concat());
        payloads.push([&SPS_320[10..], &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]].concat());
        let f = h264_program(&payloads);
        let streams = program_of_stream(&mut std::fs::File::open(f.path()).unwrap(), -1).unwrap();
        assert_eq!(
            streams[0].caps.to_string(),
            "video/x-h264, stream-format=(string)byte-stream, width=(int)320, height=(int)240, \
             pixel-aspect-ratio=(fraction)1/1, interlace-mode=(string)progressive, \
             chroma-format=(string)4:2:0, bit-depth-luma=(int)8, bit-depth-chroma=(int)8, \
             profile=(string)constrained-baseline, level=(string)1.3"
        );
        // The SPS as the stream's last bytes.
        let f = h264_program(&[slice.clone(), SPS_320.to_vec()]);
        assert!(program_of_stream(&mut std::fs::File::open(f.path()).unwrap(), -1).is_ok());
    }

    #[test]
    fn an_h264_stream_without_an_sps_in_its_head_names_the_pid() {
        let slice = [&[0, 0, 0, 1, 0x41][..], &[0x9a; 1000]].concat();
        let f = h264_program(&vec![slice.clone(); 5]);
        let e = program_of_stream(&mut std::fs::File::open(f.path()).unwrap(), -1).unwrap_err();
        assert!(
            e.starts_with(
                "the H.264 stream on PID 0x0041 has no sequence parameter set (SPS) in the \
                 first 6016 bytes: its picture size"
            ),
            "{e}"
        );
        // One that comes later than what is read.
        let mut late = vec![slice.clone(); 12];
        late.push(SPS_320.to_vec());
        let f = h264_program(&late);
        let e = program_within(&mut std::fs::File::open(f.path()).unwrap(), -1, 8192).unwrap_err();
        assert!(
            e.contains("PID 0x0041 has no sequence parameter set"),
            "{e}"
        );
        assert!(program_within(&mut std::fs::File::open(f.path()).unwrap(), -1, 1 << 20).is_ok());
        // A broken one names its field.
        let f = h264_program(&[SPS_320[..9].to_vec(), vec![0, 0, 1, 0x68]]);
        let e = program_of_stream(&mut std::fs::File::open(f.path()).unwrap(), -1).unwrap_err();
        assert!(
            e.ends_with(
                "its first sequence parameter set is broken: cut short before \
                 pic_order_cnt_type"
            ),
            "{e}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Flipped bytes, cuts and any chunking: buffers, warnings or an error naming the
        /// byte, never a panic.
        #[test]
        fn damaged_streams_never_panic(
            flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..12),
            cut in any::<usize>(),
            chunk in 1usize..400,
            want in -1i64..3,
        ) {
            let mut ts = two_programs();
            for (at, x) in flips {
                let n = ts.len();
                ts[at % n] ^= x;
            }
            ts.truncate(cut % (ts.len() + 1));
            if let Err(e) = demux(&ts, chunk, want) {
                prop_assert!(e.to_string().contains("(at byte "), "{}", e);
            }
        }
    }
}
