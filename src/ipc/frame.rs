//! The messages parallax processes exchange, framed with rkyv over SOCK_SEQPACKET unix sockets
//! (one datagram per frame, so boundaries come from the kernel and a frame's descriptors arrive
//! with it).
//!
//! Everything received is validated by rkyv's bytecheck before it is used: a peer that sends
//! malformed bytes gets a [`FrameError::Malformed`], never a crash. Values inside a valid frame
//! (slot numbers, lengths) are still the receiver's to check (see `memory::SharedArenaCache`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rkyv::{Archive, Deserialize, Serialize};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::unix::{recv_with_fds, send_with_fds};
use crate::memory::{BufferFlags, FieldLimits, FieldValue, IpcRef, Metadata};

/// The largest frame accepted.
pub const MAX_FRAME: usize = 64 * 1024;

/// Buffer metadata on the wire: every field of [`Metadata`], user fields included.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct WireMeta {
    /// See [`Metadata::sequence`].
    pub sequence: u64,
    /// See [`Metadata::pts`].
    pub pts: Option<u64>,
    /// See [`Metadata::dts`].
    pub dts: Option<u64>,
    /// See [`Metadata::duration`].
    pub duration: Option<u64>,
    /// See [`Metadata::offset`].
    pub offset: Option<u64>,
    /// See [`Metadata::offset_end`].
    pub offset_end: Option<u64>,
    /// See [`Metadata::flags`].
    pub flags: u32,
    /// See [`Metadata::stream_id`].
    pub stream_id: u32,
    /// See [`Metadata::fields`]; empty (no allocation) when the buffer has none.
    pub fields: Vec<WireField>,
}

/// One user field on the wire.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WireField {
    /// The key.
    pub key: String,
    /// The value.
    pub value: WireValue,
}

/// A [`FieldValue`] on the wire.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum WireValue {
    /// See [`FieldValue::Str`].
    Str(String),
    /// See [`FieldValue::Int`].
    Int(i64),
    /// See [`FieldValue::Bytes`].
    Bytes(Vec<u8>),
}

/// Metadata that cannot cross a process boundary: user fields over [`FieldLimits`] on the way
/// out, or anything a peer sent that does not hold up on the way in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("buffer metadata: {0}")]
pub struct MetaError(pub String);

impl TryFrom<&Metadata> for WireMeta {
    type Error = MetaError;

    /// Checks the user fields against [`FieldLimits`] (so that the error says what is too
    /// large, not that a frame is) and copies everything.
    fn try_from(m: &Metadata) -> Result<WireMeta, MetaError> {
        let fields = if m.has_fields() {
            FieldLimits::check(m.fields()).map_err(MetaError)?;
            m.fields()
                .map(|(k, v)| WireField {
                    key: k.to_owned(),
                    value: match v {
                        FieldValue::Str(s) => WireValue::Str(s.clone()),
                        FieldValue::Int(i) => WireValue::Int(*i),
                        FieldValue::Bytes(b) => WireValue::Bytes(b.clone()),
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(WireMeta {
            sequence: m.sequence,
            pts: m.pts(),
            dts: m.dts(),
            duration: m.duration(),
            offset: m.offset(),
            offset_end: m.offset_end(),
            flags: m.flags.0,
            stream_id: m.stream_id,
            fields,
        })
    }
}

impl TryFrom<WireMeta> for Metadata {
    type Error = MetaError;

    /// Takes metadata a peer sent, which is not trusted: user fields must keep to
    /// [`FieldLimits`] and name each key once.
    fn try_from(m: WireMeta) -> Result<Metadata, MetaError> {
        let mut meta = Metadata::default();
        meta.sequence = m.sequence;
        meta.set_pts(m.pts);
        meta.set_dts(m.dts);
        meta.set_duration(m.duration);
        meta.set_offset(m.offset);
        meta.set_offset_end(m.offset_end);
        meta.flags = BufferFlags(m.flags);
        meta.stream_id = m.stream_id;
        if m.fields.is_empty() {
            return Ok(meta);
        }
        let values: Vec<(String, FieldValue)> = m
            .fields
            .into_iter()
            .map(|f| {
                let value = match f.value {
                    WireValue::Str(s) => FieldValue::Str(s),
                    WireValue::Int(i) => FieldValue::Int(i),
                    WireValue::Bytes(b) => FieldValue::Bytes(b),
                };
                (f.key, value)
            })
            .collect();
        FieldLimits::check(values.iter().map(|(k, v)| (k.as_str(), v))).map_err(MetaError)?;
        for (key, value) in values {
            if meta.field(&key).is_some() {
                return Err(MetaError(format!(
                    "the metadata field {key:?} appears twice"
                )));
            }
            meta.set_field(key, value);
        }
        Ok(meta)
    }
}

/// A reference into a shared arena, on the wire.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireRef {
    /// Arena id.
    pub arena_id: u64,
    /// Slot index.
    pub slot: u32,
    /// First byte in the slot.
    pub offset: u64,
    /// Byte count.
    pub len: u64,
}

impl From<IpcRef> for WireRef {
    fn from(r: IpcRef) -> WireRef {
        WireRef {
            arena_id: r.arena_id,
            slot: r.slot,
            offset: r.offset,
            len: r.len,
        }
    }
}

impl From<WireRef> for IpcRef {
    fn from(r: WireRef) -> IpcRef {
        IpcRef {
            arena_id: r.arena_id,
            slot: r.slot,
            offset: r.offset,
            len: r.len,
        }
    }
}

/// One message.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Frame {
    /// Hello from a producer: the protocol version.
    Hello {
        /// [`PROTOCOL`].
        version: u32,
    },
    /// Carries an arena's memfd (attached): map it with this peer column.
    Arena {
        /// The arena's id, as its header says.
        arena_id: u64,
        /// The receiver's column.
        peer: u8,
        /// Whether the receiver must map it read-only (untrusted).
        read_only: bool,
    },
    /// A buffer lent to the receiver.
    Buffer {
        /// Where its bytes are.
        at: WireRef,
        /// Its metadata.
        meta: WireMeta,
    },
    /// An untrusted receiver is done with a buffer.
    Release {
        /// The reference it was lent.
        at: WireRef,
    },
    /// The element in a worker process: factory and properties as written on the command line.
    Start {
        /// Factory name.
        factory: String,
        /// Instance name.
        name: String,
        /// `key=value` pairs, unparsed.
        props: Vec<(String, String)>,
        /// The caps negotiated on its sink and src pads, in gst's text form: the element is
        /// built for the stream it will get, as in the parent.
        caps: (String, String),
    },
    /// The worker processed one buffer and has nothing to pass on (dropped or held).
    Nothing,
    /// The caps of the stream from here on, in gst's text form: a stream producer sends them
    /// right after its greeting and again, in order with its buffers, where the format changes.
    Caps {
        /// The caps, as [`crate::caps::Caps`] prints them.
        caps: String,
    },
    /// A stream consumer takes the stream from now on. One that only asked for the caps (a
    /// description being validated) never sends it, and is not waited for nor sent buffers.
    Subscribe,
    /// End of stream.
    Eos,
    /// The sender failed; the text says why.
    Error {
        /// What went wrong.
        message: String,
    },
    /// A worker could not build its element from the properties it was given (a
    /// configuration error, exit 2 like the same element fused); the text says why.
    Refused {
        /// What is wrong with the configuration.
        message: String,
    },
}

/// Version of the frame protocol; bumped on any incompatible change (2: metadata carries dts,
/// offset_end and user fields; 3: the start frame carries the negotiated caps; 4: `Refused`;
/// 5: streams carry their caps, and consumers subscribe).
pub const PROTOCOL: u32 = 5;

/// What can go wrong receiving a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid frame.
    #[error("malformed frame from peer ({len} bytes): {why}")]
    Malformed {
        /// Bytes received.
        len: usize,
        /// What the validator said.
        why: String,
    },
}

/// Sends `frame` with `fds` attached.
pub fn send_frame(sock: impl AsFd, frame: &Frame, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(frame).map_err(std::io::Error::other)?;
    if bytes.len() > MAX_FRAME {
        return Err(std::io::Error::other("frame too large"));
    }
    send_with_fds(sock, &bytes, fds)
}

/// How long a process waiting for the next frame polls before it blocks: a wake-up after
/// blocking costs tens of microseconds (far more in a VM), an answer within this window costs
/// a few. At most this much CPU per wait is spent when nothing comes.
pub const SPIN_BEFORE_BLOCKING: std::time::Duration = std::time::Duration::from_micros(30);

/// Polls `sock` without blocking for up to `budget`: whether a frame (or the peer's hang-up)
/// is waiting. A caller that gets `false` blocks as usual.
pub fn spin_until_readable(sock: impl AsFd, budget: std::time::Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let start = std::time::Instant::now();
    loop {
        let mut fds = [PollFd::new(&sock, PollFlags::IN)];
        if poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0) {
            return true;
        }
        if start.elapsed() >= budget {
            return false;
        }
        // Yield rather than spin: the peer may be queued on this very CPU.
        std::thread::yield_now();
    }
}

/// Receives one frame and its descriptors; `None` when the peer closed the socket.
pub fn recv_frame(sock: impl AsFd) -> Result<Option<(Frame, Vec<OwnedFd>)>, FrameError> {
    thread_local! {
        // One aligned receive buffer per thread, allocated once: frames arrive per buffer, and
        // rkyv reads them in place (the start of an AlignedVec is aligned).
        static BUF: std::cell::RefCell<rkyv::util::AlignedVec<16>> =
            std::cell::RefCell::new(rkyv::util::AlignedVec::new());
    }
    BUF.with_borrow_mut(|buf| {
        if buf.len() < MAX_FRAME {
            buf.resize(MAX_FRAME, 0);
        }
        let (n, fds) = recv_with_fds(sock, &mut buf[..])?;
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        let frame = rkyv::from_bytes::<Frame, rkyv::rancor::Error>(&buf[..n]).map_err(|e| {
            FrameError::Malformed {
                len: n,
                why: e.to_string(),
            }
        })?;
        Ok(Some((frame, fds)))
    })
}

/// Lends `buf` to the peer on `sock` through `exporter` and sends it: its arena's memfd first
/// when this peer has not seen that arena, then the buffer frame.
pub fn send_buffer(
    sock: impl AsFd,
    exporter: &mut crate::memory::Exporter,
    buf: &crate::memory::Buffer,
) -> std::io::Result<()> {
    // Checked before anything is lent, so that a refusal leaves no loan behind.
    let meta = WireMeta::try_from(&buf.meta).map_err(std::io::Error::other)?;
    let (at, ticket) = exporter.export(buf).map_err(std::io::Error::other)?;
    if let Some(t) = ticket {
        let arena = Frame::Arena {
            arena_id: at.arena_id,
            peer: t.id.index() as u8,
            read_only: t.access == crate::memory::PeerAccess::ReadOnly,
        };
        send_frame(&sock, &arena, &[t.fd.as_fd()])?;
    }
    let frame = Frame::Buffer {
        at: at.into(),
        meta,
    };
    send_frame(&sock, &frame, &[])
}

/// Maps the arena an [`Frame::Arena`] announced, with the fd that came with it.
pub fn map_announced_arena(
    cache: &mut crate::memory::SharedArenaCache,
    peer: u8,
    read_only: bool,
    mut fds: Vec<OwnedFd>,
) -> Result<(), String> {
    let fd = fds.pop().ok_or("an arena frame without its fd")?;
    let id = crate::memory::PeerId::from_index(peer as usize)
        .ok_or(format!("peer column {peer} out of range"))?;
    let access = if read_only {
        crate::memory::PeerAccess::ReadOnly
    } else {
        crate::memory::PeerAccess::ReadWrite
    };
    cache.map_arena(fd, access, id).map_err(|e| e.to_string())?;
    Ok(())
}

/// A connected pair of SOCK_SEQPACKET unix sockets (close-on-exec).
pub fn seqpacket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

fn seqpacket_socket() -> std::io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// A SOCK_SEQPACKET socket listening on `path` (which must not exist: `AlreadyExists`
/// otherwise, and nothing there is replaced), with permissions `mode`. The socket is bound under
/// a temporary name and renamed into place once it listens, so a client that sees `path` can
/// always connect.
pub fn listen(path: &Path, mode: u32) -> std::io::Result<OwnedFd> {
    let fd = seqpacket_socket()?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let placed = (|| {
        rustix::net::bind(&fd, &SocketAddrUnix::new(&tmp)?)?;
        rustix::net::listen(&fd, 16)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            path,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(std::io::Error::from)
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(fd)
}

/// Accepts one connection (blocking unless the listener is non-blocking).
pub fn accept(listener: impl AsFd) -> std::io::Result<OwnedFd> {
    Ok(rustix::net::accept_with(listener, SocketFlags::CLOEXEC)?)
}

/// Connects to a SOCK_SEQPACKET socket at `path`.
pub fn connect(path: &Path) -> std::io::Result<OwnedFd> {
    let fd = seqpacket_socket()?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_their_descriptors() {
        let (a, b) = seqpacket_pair().unwrap();
        let f = Frame::Buffer {
            at: WireRef {
                arena_id: 7,
                slot: 3,
                offset: 0,
                len: 100,
            },
            meta: WireMeta {
                sequence: 9,
                pts: Some(5),
                ..WireMeta::default()
            },
        };
        let file = tempfile::tempfile().unwrap();
        send_frame(&a, &f, &[file.as_fd()]).unwrap();
        send_frame(&a, &Frame::Eos, &[]).unwrap();
        let (got, fds) = recv_frame(&b).unwrap().unwrap();
        assert_eq!((got, fds.len()), (f, 1));
        assert_eq!(recv_frame(&b).unwrap().unwrap().0, Frame::Eos);
        drop(a);
        assert!(recv_frame(&b).unwrap().is_none());
    }

    #[test]
    fn metadata_with_user_fields_crosses_unchanged() {
        let mut m = Metadata::default();
        m.sequence = 3;
        m.set_pts(Some(10));
        m.set_duration(Some(1));
        m.set_offset(Some(100));
        m.set_dts(Some(9));
        m.set_offset_end(Some(164));
        (m.flags, m.stream_id) = (BufferFlags::MARKER, 7);
        m.set_field("s", FieldValue::Str("é,=\n".into()));
        m.set_field("n", FieldValue::Int(i64::MIN));
        m.set_field("b", FieldValue::Bytes(vec![0, 1, 255]));
        let (a, b) = seqpacket_pair().unwrap();
        let f = Frame::Buffer {
            at: WireRef {
                arena_id: 1,
                slot: 0,
                offset: 0,
                len: 0,
            },
            meta: WireMeta::try_from(&m).unwrap(),
        };
        send_frame(&a, &f, &[]).unwrap();
        let Some((Frame::Buffer { meta, .. }, _)) = recv_frame(&b).unwrap() else {
            panic!("not a buffer frame");
        };
        assert_eq!(Metadata::try_from(meta).unwrap(), m);
        assert_eq!(
            Metadata::try_from(WireMeta::default()).unwrap(),
            Metadata::default()
        );
    }

    #[test]
    fn fields_a_peer_sends_are_checked_not_trusted() {
        let field = |key: &str, value: WireValue| WireField {
            key: key.into(),
            value,
        };
        let twice = WireMeta {
            fields: vec![field("k", WireValue::Int(1)), field("k", WireValue::Int(2))],
            ..WireMeta::default()
        };
        let e = Metadata::try_from(twice).unwrap_err();
        assert_eq!(
            e.to_string(),
            "buffer metadata: the metadata field \"k\" appears twice"
        );
        let many = WireMeta {
            fields: (0..=FieldLimits::MAX_FIELDS)
                .map(|i| field(&i.to_string(), WireValue::Int(0)))
                .collect(),
            ..WireMeta::default()
        };
        assert!(Metadata::try_from(many).is_err());
        let empty_key = WireMeta {
            fields: vec![field("", WireValue::Str(String::new()))],
            ..WireMeta::default()
        };
        assert!(Metadata::try_from(empty_key).is_err());
        // And a sender refuses, with the cause, what a receiver would refuse.
        let mut big = Metadata::default();
        big.set_field(
            "b",
            FieldValue::Bytes(vec![0; FieldLimits::MAX_TOTAL_BYTES]),
        );
        let e = WireMeta::try_from(&big).unwrap_err();
        assert!(e.to_string().contains("more than 32768 bytes"), "{e}");
    }

    #[test]
    fn garbage_is_a_malformed_frame_not_a_crash() {
        let (a, b) = seqpacket_pair().unwrap();
        for junk in [&[0xffu8; 3][..], &[0u8; 64][..], &[0x41; 1000][..]] {
            send_with_fds(&a, junk, &[]).unwrap();
            match recv_frame(&b) {
                Err(FrameError::Malformed { len, .. }) => assert_eq!(len, junk.len()),
                other => panic!("{junk:?}: {other:?}"),
            }
        }
    }
}
