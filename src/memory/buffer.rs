//! [`Buffer`]: a refcounted, sliceable view of bytes plus metadata. Entirely safe code.

use std::sync::Arc;

use super::file::{FileExtent, Window};
use super::peer::{PeerSlotRef, ReadOnlyLoan};
use super::pool::{PoolInner, SlotRef};

/// Buffer flags, as a bit set (gst's GstBufferFlags subset that means something here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BufferFlags(pub u32);

impl BufferFlags {
    /// The first buffer after a gap or a drop upstream.
    pub const DISCONT: BufferFlags = BufferFlags(1);
    /// The last buffer of a datagram or message boundary.
    pub const MARKER: BufferFlags = BufferFlags(2);
    /// Not more stream but a correction of bytes already sent: these bytes replace the ones at
    /// byte `meta.offset()` of the output (wavenc's final header, with the sizes it could only
    /// know at end of stream: gst's wavenc seeks back for this). A sink whose output can seek
    /// (filesink on a regular file) writes them there; one writing a stream that cannot seek
    /// (fdsink, filesink on a FIFO) drops the buffer, so the stream stays as first written.
    /// Sinks that do not write bytes (fakesink, appsink) see it as one more buffer.
    pub const REWRITE: BufferFlags = BufferFlags(4);
    /// A sample that cannot be decoded on its own (gst's `DELTA_UNIT`): a video frame that is
    /// not a keyframe, as a demuxer's sync-sample table says.
    pub const DELTA_UNIT: BufferFlags = BufferFlags(8);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: BufferFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BufferFlags {
    /// The names of the flags that are set (`discont`, `marker`), empty when none is.
    pub fn names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.contains(BufferFlags::DISCONT) {
            names.push("discont");
        }
        if self.contains(BufferFlags::MARKER) {
            names.push("marker");
        }
        if self.contains(BufferFlags::REWRITE) {
            names.push("rewrite");
        }
        if self.contains(BufferFlags::DELTA_UNIT) {
            names.push("delta-unit");
        }
        names
    }
}

/// gst's clock format for a time in nanoseconds, `0:00:01.500000000`, or `none`.
pub fn format_clock(ns: Option<u64>) -> String {
    match ns {
        None => "none".into(),
        Some(ns) => {
            let secs = ns / 1_000_000_000;
            format!(
                "{}:{:02}:{:02}.{:09}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                ns % 1_000_000_000
            )
        }
    }
}

/// What travels with a buffer besides its bytes.
///
/// The common fields are inline; user fields live behind one pointer that is `None` until a
/// field is set, so a pipeline that sets none pays no allocation, and cloning the metadata is
/// a copy (plus one atomic increment when fields are set: the map is shared and copied on
/// write). Every boundary (queue, rt thread, async runtime, worker process, shmsink/shmsrc)
/// carries all of it unchanged; across a process boundary user fields are held to
/// [`FieldLimits`].
///
/// Size matters: the metadata is part of every [`Buffer`], which moves by value through every
/// element call, and a `Buffer` over 128 bytes is moved by a call to `memcpy` rather than by
/// a few register moves (measured: +25% per buffer on `fakesrc ! fakesink`), and each byte
/// less is less to move. So the times and offsets are stored as gst stores them, `u64::MAX`
/// meaning none (`GST_CLOCK_TIME_NONE`, `GST_BUFFER_OFFSET_NONE`), behind accessors
/// ([`Metadata::pts`], [`Metadata::set_pts`], ...): 8 bytes each instead of an
/// `Option<u64>`'s 16.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// Position of this buffer in its source's output, from 0.
    pub sequence: u64,
    /// See [`Metadata::pts`].
    #[serde(serialize_with = "serialize_none_max")]
    pts: u64,
    /// See [`Metadata::duration`].
    #[serde(serialize_with = "serialize_none_max")]
    duration: u64,
    /// See [`Metadata::offset`].
    #[serde(serialize_with = "serialize_none_max")]
    offset: u64,
    /// See [`Metadata::dts`].
    #[serde(serialize_with = "serialize_none_max")]
    dts: u64,
    /// See [`Metadata::offset_end`].
    #[serde(serialize_with = "serialize_none_max")]
    offset_end: u64,
    /// Flags.
    pub flags: BufferFlags,
    /// Which stream (source) the buffer belongs to.
    pub stream_id: u32,
    /// User fields, in key order; `None` when there are none (never `Some` of an empty map).
    #[serde(serialize_with = "serialize_fields")]
    fields: Option<Arc<FieldMap>>,
}

/// How `dts` and `offset_end` store none (gst's `GST_CLOCK_TIME_NONE`).
const NONE: u64 = u64::MAX;

fn from_none_max(v: u64) -> Option<u64> {
    (v != NONE).then_some(v)
}

fn serialize_none_max<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&from_none_max(*v), s)
}

impl Default for Metadata {
    fn default() -> Metadata {
        Metadata {
            sequence: 0,
            pts: NONE,
            duration: NONE,
            offset: NONE,
            dts: NONE,
            offset_end: NONE,
            flags: BufferFlags::default(),
            stream_id: 0,
            fields: None,
        }
    }
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("sequence", &self.sequence)
            .field("pts", &self.pts())
            .field("dts", &self.dts())
            .field("duration", &self.duration())
            .field("offset", &self.offset())
            .field("offset_end", &self.offset_end())
            .field("flags", &self.flags)
            .field("stream_id", &self.stream_id)
            .field("fields", &self.fields)
            .finish()
    }
}

/// The user fields of a [`Metadata`], in key order.
type FieldMap = std::collections::BTreeMap<String, FieldValue>;

/// The value of a user field of [`Metadata`].
///
/// As JSON (`--tap-format=json`, `metadataextract`): a string is a string, an integer a
/// number, bytes an object `{"bytes": "<hex>"}` so that they cannot be taken for a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Text.
    Str(String),
    /// A signed integer.
    Int(i64),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl FieldValue {
    /// The text, for a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, for an integer value.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            FieldValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes, for a bytes value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            FieldValue::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Bytes this value takes in [`FieldLimits::total_bytes`].
    pub fn byte_len(&self) -> usize {
        match self {
            FieldValue::Str(s) => s.len(),
            FieldValue::Int(_) => 8,
            FieldValue::Bytes(b) => b.len(),
        }
    }
}

/// `"text"` (escaped, so control characters never reach a terminal raw), `(int)5`,
/// `(bytes)0aff`: the notation `metadatainject set=` reads, with strings quoted.
impl std::fmt::Display for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Str(s) => write!(f, "{s:?}"),
            FieldValue::Int(i) => write!(f, "(int){i}"),
            FieldValue::Bytes(b) => {
                f.write_str("(bytes)")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}

impl serde::Serialize for FieldValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            FieldValue::Str(text) => s.serialize_str(text),
            FieldValue::Int(i) => s.serialize_i64(*i),
            FieldValue::Bytes(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("bytes", &hex)?;
                m.end()
            }
        }
    }
}

fn serialize_fields<S: serde::Serializer>(
    fields: &Option<Arc<FieldMap>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(fields.iter().flat_map(|m| m.iter()))
}

/// How many user fields, and how large, may cross a process boundary (worker, shm): what a
/// receiver accepts from a peer it does not trust, and what a sender checks first so that the
/// error names the cause rather than the frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits;

impl FieldLimits {
    /// Fields per buffer at most.
    pub const MAX_FIELDS: usize = 64;
    /// Bytes per key at most (keys are never empty).
    pub const MAX_KEY_BYTES: usize = 256;
    /// Bytes of all keys and values together at most (an integer counts 8): half a frame.
    pub const MAX_TOTAL_BYTES: usize = 32 * 1024;

    /// Checks `fields` (key, value pairs, possibly from a peer) against the limits; the error
    /// says which one is exceeded.
    pub fn check<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a FieldValue)>,
    ) -> Result<(), String> {
        let (mut count, mut total) = (0usize, 0usize);
        for (key, value) in fields {
            count += 1;
            if count > FieldLimits::MAX_FIELDS {
                return Err(format!(
                    "more than {} metadata fields",
                    FieldLimits::MAX_FIELDS
                ));
            }
            if key.is_empty() || key.len() > FieldLimits::MAX_KEY_BYTES {
                return Err(format!(
                    "a metadata field key of {} bytes (1..={} allowed)",
                    key.len(),
                    FieldLimits::MAX_KEY_BYTES
                ));
            }
            total = total.saturating_add(key.len() + value.byte_len());
            if total > FieldLimits::MAX_TOTAL_BYTES {
                return Err(format!(
                    "metadata fields of more than {} bytes",
                    FieldLimits::MAX_TOTAL_BYTES
                ));
            }
        }
        Ok(())
    }
}

impl Metadata {
    /// Presentation time in nanoseconds, when the source knows it.
    #[inline]
    pub fn pts(&self) -> Option<u64> {
        from_none_max(self.pts)
    }

    /// Sets the presentation time; `Some(u64::MAX)` is gst's "none" and reads back as `None`.
    #[inline]
    pub fn set_pts(&mut self, pts: Option<u64>) {
        self.pts = pts.unwrap_or(NONE);
    }

    /// Duration in nanoseconds, when known.
    #[inline]
    pub fn duration(&self) -> Option<u64> {
        from_none_max(self.duration)
    }

    /// Sets the duration; `Some(u64::MAX)` is gst's "none" and reads back as `None`.
    #[inline]
    pub fn set_duration(&mut self, duration: Option<u64>) {
        self.duration = duration.unwrap_or(NONE);
    }

    /// Byte offset of the first byte in the source's stream (gst's `offset`), when meaningful.
    #[inline]
    pub fn offset(&self) -> Option<u64> {
        from_none_max(self.offset)
    }

    /// Sets the offset; `Some(u64::MAX)` is gst's "none" and reads back as `None`.
    #[inline]
    pub fn set_offset(&mut self, offset: Option<u64>) {
        self.offset = offset.unwrap_or(NONE);
    }

    /// Decoding time in nanoseconds, when it is known (and differs from pts, or is known on
    /// its own).
    pub fn dts(&self) -> Option<u64> {
        from_none_max(self.dts)
    }

    /// Sets the decoding time; `Some(u64::MAX)` is gst's "none" and reads back as `None`.
    pub fn set_dts(&mut self, dts: Option<u64>) {
        self.dts = dts.unwrap_or(NONE);
    }

    /// Byte offset just past the last byte in the source's stream (gst's `offset_end`), when
    /// meaningful.
    pub fn offset_end(&self) -> Option<u64> {
        from_none_max(self.offset_end)
    }

    /// Sets the end offset; `Some(u64::MAX)` is gst's "none" and reads back as `None`.
    pub fn set_offset_end(&mut self, end: Option<u64>) {
        self.offset_end = end.unwrap_or(NONE);
    }

    /// The user field `key`, if set.
    pub fn field(&self, key: &str) -> Option<&FieldValue> {
        self.fields.as_ref()?.get(key)
    }

    /// Sets the user field `key` to `value`, replacing what it held. The first field allocates
    /// the map; a map shared with another handle (a clone, a tee branch) is copied first.
    pub fn set_field(&mut self, key: impl Into<String>, value: FieldValue) {
        let map = self.fields.get_or_insert_with(Default::default);
        Arc::make_mut(map).insert(key.into(), value);
    }

    /// Removes the user field `key`, if set; removing the last one frees the map.
    pub fn remove_field(&mut self, key: &str) {
        if let Some(map) = &mut self.fields {
            if map.contains_key(key) {
                Arc::make_mut(map).remove(key);
                if map.is_empty() {
                    self.fields = None;
                }
            }
        }
    }

    /// Sets every user field of `other` here, replacing fields of the same key. When this
    /// metadata has no fields of its own it shares `other`'s map: no allocation, one atomic
    /// increment (what `metadatainject set=` does to each buffer).
    pub fn merge_fields(&mut self, other: &Metadata) {
        match (&mut self.fields, &other.fields) {
            (_, None) => {}
            (None, Some(theirs)) => self.fields = Some(Arc::clone(theirs)),
            (Some(mine), Some(theirs)) => {
                if !Arc::ptr_eq(mine, theirs) {
                    let map = Arc::make_mut(mine);
                    for (k, v) in theirs.iter() {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }

    /// Removes every user field.
    pub fn clear_fields(&mut self) {
        self.fields = None;
    }

    /// The user fields, in key order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.fields
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Whether any user field is set.
    pub fn has_fields(&self) -> bool {
        self.fields.is_some()
    }

    /// How many user fields are set.
    pub fn field_count(&self) -> usize {
        self.fields.as_ref().map_or(0, |m| m.len())
    }
}

/// The owner of a [`Storage::Foreign`] buffer's bytes.
type ForeignOwner = Box<dyn AsRef<[u8]> + Send + Sync>;

#[derive(Clone)]
enum Storage {
    /// No bytes at all (fakesrc's default empty buffers): no memory is touched.
    Empty,
    /// A slot of a [`super::MemoryPool`]; shareable with another process when memfd-backed.
    Slot(SlotRef),
    /// A slot of another process's arena, mapped writable (trusted peer).
    Peer(PeerSlotRef),
    /// A slot of another process's arena, mapped read-only (untrusted peer).
    ReadOnly(Arc<ReadOnlyLoan>),
    /// Bytes an element built itself.
    Heap(Arc<Vec<u8>>),
    /// A window of a mapped file (zero-copy filesrc).
    File(Arc<Window>),
    /// Immutable bytes another library owns and refcounts (hyper's `Bytes`, a Zenoh sample's
    /// payload), kept alive by this handle: see [`Buffer::from_owner`]. Boxed, so that the
    /// `Arc` is a thin pointer and the storage stays at 16 bytes (one more allocation per
    /// foreign buffer, none per clone).
    Foreign(Arc<ForeignOwner>),
}

/// A refcounted view of bytes: cloning is an atomic increment, slicing shares the memory.
#[derive(Clone)]
pub struct Buffer {
    storage: Storage,
    offset: usize,
    len: usize,
    /// Metadata; free to change, it is per handle.
    pub meta: Metadata,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.storage {
            Storage::Empty => "empty",
            Storage::Slot(_) => "slot",
            Storage::Peer(_) => "peer slot",
            Storage::ReadOnly(_) => "read-only peer slot",
            Storage::Heap(_) => "heap",
            Storage::File(_) => "file",
            Storage::Foreign(_) => "foreign",
        };
        f.debug_struct("Buffer")
            .field("len", &self.len)
            .field("storage", &kind)
            .field("meta", &self.meta)
            .finish()
    }
}

impl Buffer {
    /// A buffer with no bytes.
    pub fn empty() -> Buffer {
        Buffer {
            storage: Storage::Empty,
            offset: 0,
            len: 0,
            meta: Metadata::default(),
        }
    }

    /// A buffer that owns `bytes` on the heap.
    pub fn from_vec(bytes: Vec<u8>) -> Buffer {
        let len = bytes.len();
        Buffer {
            storage: Storage::Heap(Arc::new(bytes)),
            offset: 0,
            len,
            meta: Metadata::default(),
        }
    }

    /// A buffer over bytes another library owns, without a copy: `owner` (a `bytes::Bytes`, a
    /// Zenoh payload, anything that derefs to bytes) moves into the buffer and is dropped when
    /// the last handle on it (clone or slice) goes. The bytes are read through
    /// `owner.as_ref()` whenever the buffer is read, so it must give the same bytes every time
    /// (every immutable byte container does); elements that change bytes build a new buffer
    /// from [`Buffer::data`], so the owner is never written. A buffer crossing into another
    /// process is copied into shared memory there, as one made by [`Buffer::from_vec`] is.
    pub fn from_owner<T: AsRef<[u8]> + Send + Sync + 'static>(owner: T) -> Buffer {
        let len = owner.as_ref().len();
        Buffer {
            storage: Storage::Foreign(Arc::new(Box::new(owner))),
            offset: 0,
            len,
            meta: Metadata::default(),
        }
    }

    pub(super) fn from_slot(slot: SlotRef, len: usize) -> Buffer {
        Buffer::from_slot_range(slot, 0, len)
    }

    pub(super) fn from_peer_slot(slot: PeerSlotRef, offset: usize, len: usize) -> Buffer {
        Buffer {
            storage: Storage::Peer(slot),
            offset,
            len,
            meta: Metadata::default(),
        }
    }

    pub(super) fn from_read_only_loan(loan: ReadOnlyLoan, offset: usize, len: usize) -> Buffer {
        Buffer {
            storage: Storage::ReadOnly(Arc::new(loan)),
            offset,
            len,
            meta: Metadata::default(),
        }
    }

    pub(super) fn from_file_window(window: Arc<Window>, offset: usize, len: usize) -> Buffer {
        Buffer {
            storage: Storage::File(window),
            offset,
            len,
            meta: Metadata::default(),
        }
    }

    pub(super) fn from_slot_range(slot: SlotRef, offset: usize, len: usize) -> Buffer {
        Buffer {
            storage: Storage::Slot(slot),
            offset,
            len,
            meta: Metadata::default(),
        }
    }

    /// The pool this buffer's slot belongs to, when it lives in one of this process's pools.
    pub fn pool(&self) -> Option<super::MemoryPool> {
        match &self.storage {
            Storage::Slot(slot) => Some(super::MemoryPool::of_slot(slot)),
            _ => None,
        }
    }

    /// Turns a buffer this process received from another one back into the reference it came
    /// as, handing its share back with it (for [`super::MemoryPool::adopt`] on the other side).
    /// Other buffers are returned unchanged as the error.
    // The error is the buffer itself, handed back by value as every element call moves it;
    // boxing it would allocate on the path this is meant to keep free.
    #[allow(clippy::result_large_err)]
    pub fn into_ipc_ref(self) -> Result<super::IpcRef, Buffer> {
        match self.storage {
            Storage::Peer(slot) => Ok(slot.into_ipc_ref(self.offset, self.len)),
            // A read-only loan goes back whole (the owner's ledger moves it back to the owner);
            // one still shared with another handle here cannot.
            Storage::ReadOnly(loan) => match Arc::try_unwrap(loan) {
                Ok(loan) => Ok(loan.hand_back(self.offset, self.len)),
                Err(loan) => Err(Buffer {
                    storage: Storage::ReadOnly(loan),
                    ..self
                }),
            },
            storage => Err(Buffer { storage, ..self }),
        }
    }

    /// The other process's arena this buffer lives in, when it lives in one.
    pub(super) fn peer_arena(&self) -> Option<&super::peer::PeerArena> {
        match &self.storage {
            Storage::Peer(slot) => Some(slot.arena()),
            Storage::ReadOnly(loan) => Some(loan.arena()),
            _ => None,
        }
    }

    /// Slot index and byte range when this buffer lives in `pool`.
    pub(super) fn slot_in(&self, pool: &Arc<PoolInner>) -> Option<(u32, usize, usize)> {
        match &self.storage {
            Storage::Slot(slot) => Some((slot.index_in(pool)?, self.offset, self.len)),
            _ => None,
        }
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        let all: &[u8] = match &self.storage {
            Storage::Empty => return &[],
            Storage::Slot(slot) => slot.bytes(),
            Storage::Peer(slot) => slot.bytes(),
            Storage::ReadOnly(loan) => loan.bytes(),
            Storage::Heap(v) => v,
            Storage::File(w) => w.bytes(),
            Storage::Foreign(owner) => (***owner).as_ref(),
        };
        // offset + len <= backing length is kept by every constructor and by `slice`.
        &all[self.offset..self.offset + self.len]
    }

    /// Where the bytes are in a regular file, for a buffer over a mapped window of one
    /// (`filesrc`'s zero-copy path, and any slice or clone of such a buffer): a sink writing to
    /// a file can then have the kernel copy them from the source file (`copy_file_range`)
    /// instead of writing them from the mapping. `None` for every other kind of memory.
    pub fn file_extent(&self) -> Option<FileExtent<'_>> {
        match &self.storage {
            Storage::File(w) => Some(w.extent(self.offset, self.len)),
            _ => None,
        }
    }

    /// The mapped window of a file-backed buffer, for the file module's tests.
    #[cfg(test)]
    pub(super) fn window(&self) -> Option<&Window> {
        match &self.storage {
            Storage::File(w) => Some(w),
            _ => None,
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A new handle on `range` of this buffer's bytes, sharing the memory (no copy).
    /// Returns `None` when the range is out of bounds.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Option<Buffer> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        let mut sub = self.clone();
        sub.offset = self.offset + range.start;
        sub.len = range.end - range.start;
        Some(sub)
    }

    /// Whether this process can lend the buffer to a peer with `access` without a copy: it
    /// lives in a slot of one of this process's memfd-backed pools, and, for a read-only peer,
    /// a pool sealed for read-only sharing.
    pub fn is_shareable_with(&self, access: super::PeerAccess) -> bool {
        match &self.storage {
            Storage::Slot(slot) => slot.lendable_to(access),
            _ => false,
        }
    }

    /// Whether this process can lend the buffer to another one without a copy: it lives in a
    /// slot of one of this process's memfd-backed pools. (A buffer received from another
    /// process, a heap pool's, a mapped file's or heap bytes cannot be lent.)
    pub fn is_shareable(&self) -> bool {
        match &self.storage {
            Storage::Slot(slot) => slot.lendable_to(super::PeerAccess::ReadWrite),
            _ => false,
        }
    }

    /// Whether the bytes are in memory its source has only so much of: a slot of a pool (this
    /// process's or another's) or a window of a mapped file (`filesrc` keeps a few alive). The
    /// source waits for more when all of it is out, so an element that holds buffers for long
    /// (a demuxer waiting for its index) copies these rather than starve it.
    pub fn is_scarce(&self) -> bool {
        matches!(
            self.storage,
            Storage::Slot(_) | Storage::Peer(_) | Storage::ReadOnly(_) | Storage::File(_)
        )
    }

    /// The refcount stored in the shared slot header (all processes), for arena buffers.
    pub fn slot_refcount(&self) -> Option<u32> {
        match &self.storage {
            Storage::Slot(slot) => Some(slot.refcount()),
            Storage::Peer(slot) => Some(slot.refcount()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_gst_style() {
        assert_eq!(format_clock(Some(1_500_000_000)), "0:00:01.500000000");
        assert_eq!(format_clock(Some(3_723_000_000_001)), "1:02:03.000000001");
        assert_eq!(format_clock(None), "none");
    }

    #[test]
    fn metadata_stays_small_and_fields_cost_nothing_until_set() {
        // One pointer for the user fields, niche-optimised: None is a null pointer.
        assert_eq!(
            std::mem::size_of::<Option<Arc<FieldMap>>>(),
            std::mem::size_of::<usize>()
        );
        // A Buffer over 128 bytes is moved by memcpy calls, and each byte less is less to
        // move: see Metadata's docs. Storage is a tag and a 12-byte reference.
        assert_eq!(std::mem::size_of::<Storage>(), 16);
        assert!(std::mem::size_of::<Metadata>() <= 64);
        assert!(std::mem::size_of::<Buffer>() <= 96);
        let m = Metadata::default();
        assert!(!m.has_fields());
        assert_eq!(m.fields().count(), 0);
        assert_eq!(m.field("x"), None);
        assert_eq!((m.dts(), m.offset_end()), (None, None));
    }

    #[test]
    fn times_and_offsets_read_back_with_gsts_none() {
        let mut m = Metadata::default();
        assert_eq!((m.pts(), m.duration(), m.offset()), (None, None, None));
        m.set_pts(Some(0));
        m.set_duration(Some(u64::MAX - 1));
        m.set_offset(Some(7));
        assert_eq!(
            (m.pts(), m.duration(), m.offset()),
            (Some(0), Some(u64::MAX - 1), Some(7))
        );
        m.set_pts(Some(u64::MAX));
        m.set_duration(None);
        m.set_offset(None);
        assert_eq!((m.pts(), m.duration(), m.offset()), (None, None, None));
    }

    #[test]
    fn dts_and_offset_end_read_back_with_gsts_none() {
        let mut m = Metadata::default();
        m.set_dts(Some(0));
        m.set_offset_end(Some(u64::MAX - 1));
        assert_eq!((m.dts(), m.offset_end()), (Some(0), Some(u64::MAX - 1)));
        m.set_dts(Some(u64::MAX));
        assert_eq!(m.dts(), None, "u64::MAX is none, as GST_CLOCK_TIME_NONE");
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            (&json["dts"], &json["offset_end"]),
            (&serde_json::Value::Null, &serde_json::json!(u64::MAX - 1))
        );
        assert!(format!("{m:?}").contains("dts: None"));
    }

    #[test]
    fn fields_are_kept_in_key_order_and_copied_on_write() {
        let mut a = Metadata::default();
        a.set_field("z", FieldValue::Int(-3));
        a.set_field("a", FieldValue::Str("text".into()));
        a.set_field(String::from("m"), FieldValue::Bytes(vec![0, 255]));
        let keys: Vec<&str> = a.fields().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "m", "z"]);
        let mut b = a.clone();
        b.set_field("a", FieldValue::Int(1));
        assert_eq!(a.field("a"), Some(&FieldValue::Str("text".into())));
        assert_eq!(b.field("a").and_then(FieldValue::as_int), Some(1));
        b.remove_field("a");
        b.remove_field("m");
        b.remove_field("missing");
        assert_eq!(b.field_count(), 1);
        b.remove_field("z");
        assert!(!b.has_fields(), "removing the last field frees the map");
        assert_eq!(b, Metadata::default());
        assert_eq!(a.field_count(), 3);
    }

    #[test]
    fn merging_shares_the_map_until_both_sides_have_fields() {
        let mut template = Metadata::default();
        template.set_field("k", FieldValue::Int(1));
        let mut plain = Metadata::default();
        plain.merge_fields(&template);
        assert!(Arc::ptr_eq(
            plain.fields.as_ref().unwrap(),
            template.fields.as_ref().unwrap()
        ));
        let mut own = Metadata::default();
        own.set_field("k", FieldValue::Int(0));
        own.set_field("mine", FieldValue::Int(2));
        own.merge_fields(&template);
        let got: Vec<(&str, &FieldValue)> = own.fields().collect();
        assert_eq!(
            got,
            [("k", &FieldValue::Int(1)), ("mine", &FieldValue::Int(2))]
        );
        own.merge_fields(&Metadata::default());
        assert_eq!(own.field_count(), 2);
    }

    #[test]
    fn field_values_print_and_serialise_unambiguously() {
        assert_eq!(
            FieldValue::Str("a\nb\u{1b}".into()).to_string(),
            r#""a\nb\u{1b}""#
        );
        assert_eq!(FieldValue::Int(-5).to_string(), "(int)-5");
        assert_eq!(
            FieldValue::Bytes(vec![0x0a, 0xff]).to_string(),
            "(bytes)0aff"
        );
        let mut m = Metadata::default();
        m.set_field("s", FieldValue::Str("x".into()));
        m.set_field("n", FieldValue::Int(5));
        m.set_field("b", FieldValue::Bytes(vec![1]));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json["fields"],
            serde_json::json!({"b": {"bytes": "01"}, "n": 5, "s": "x"})
        );
        assert_eq!(
            serde_json::to_value(Metadata::default()).unwrap()["fields"],
            serde_json::json!({})
        );
    }

    #[test]
    fn field_limits_name_what_is_exceeded() {
        let v = FieldValue::Int(0);
        assert!(FieldLimits::check([("k", &v)]).is_ok());
        assert!(FieldLimits::check([("", &v)])
            .unwrap_err()
            .contains("key of 0 bytes"));
        let long = "k".repeat(FieldLimits::MAX_KEY_BYTES + 1);
        assert!(FieldLimits::check([(long.as_str(), &v)]).is_err());
        let keys: Vec<String> = (0..=FieldLimits::MAX_FIELDS)
            .map(|i| i.to_string())
            .collect();
        let e = FieldLimits::check(keys.iter().map(|k| (k.as_str(), &v))).unwrap_err();
        assert!(e.contains("more than 64 metadata fields"), "{e}");
        let big = FieldValue::Bytes(vec![0; FieldLimits::MAX_TOTAL_BYTES]);
        let e = FieldLimits::check([("b", &big)]).unwrap_err();
        assert!(e.contains("more than 32768 bytes"), "{e}");
    }

    #[test]
    fn clone_and_slice_share_memory() {
        let b = Buffer::from_vec(b"hello world".to_vec());
        let c = b.clone();
        assert_eq!(b.data().as_ptr(), c.data().as_ptr());
        let s = b.slice(6..11).unwrap();
        assert_eq!(s.data(), b"world");
        assert_eq!(s.data().as_ptr(), b.data()[6..].as_ptr());
        assert!(b.slice(5..12).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let bad = b.slice(3..2);
        assert!(bad.is_none());
    }

    /// Foreign bytes that say when they are dropped.
    struct Owned(Vec<u8>, Arc<std::sync::atomic::AtomicUsize>);

    impl AsRef<[u8]> for Owned {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    impl Drop for Owned {
        fn drop(&mut self) {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn foreign_bytes_are_read_in_place_and_dropped_with_the_last_handle() {
        use std::sync::atomic::Ordering::SeqCst;
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bytes = b"foreign bytes".to_vec();
        let at = bytes.as_ptr();
        let b = Buffer::from_owner(Owned(bytes, Arc::clone(&drops)));
        assert_eq!(b.data(), b"foreign bytes");
        assert_eq!(b.data().as_ptr(), at, "no copy: the owner's own bytes");
        assert_eq!(format!("{b:?}").matches("foreign").count(), 1);
        let c = b.clone();
        let s = b.slice(8..13).unwrap();
        assert_eq!(s.data(), b"bytes");
        assert_eq!(s.data().as_ptr(), at.wrapping_add(8));
        assert!(b.slice(8..14).is_none());
        assert!(!b.is_shareable() && b.pool().is_none() && b.file_extent().is_none());
        assert!(!b.is_scarce());
        drop(b);
        drop(c);
        assert_eq!(drops.load(SeqCst), 0, "a slice still holds the owner");
        assert_eq!(s.data(), b"bytes");
        drop(s);
        assert_eq!(drops.load(SeqCst), 1, "dropped once, with the last handle");
        let empty = Buffer::from_owner(Vec::new());
        assert!(empty.is_empty() && empty.data().is_empty());
    }

    #[test]
    fn empty_buffer_has_no_bytes() {
        let b = Buffer::empty();
        assert!(b.is_empty());
        assert_eq!(b.data(), b"");
        assert!(!b.is_shareable());
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Buffer>();
        check::<super::super::MemoryPool>();
        check::<super::super::SharedArenaCache>();
    }

    #[test]
    fn only_buffers_in_this_process_s_memfd_pools_can_be_lent() {
        use crate::memory::{Backing, MemoryPool, PoolConfig};
        let memfd = MemoryPool::new(&PoolConfig::new("t", 1, 64)).unwrap();
        assert!(memfd.try_loan().unwrap().freeze(1).is_shareable());
        let heap = MemoryPool::new(&PoolConfig {
            backing: Backing::Heap,
            ..PoolConfig::new("t", 1, 64)
        })
        .unwrap();
        assert!(!heap.try_loan().unwrap().freeze(1).is_shareable());
        assert!(!Buffer::from_vec(vec![1]).is_shareable());
        assert!(heap.try_loan().unwrap().freeze(1).is_scarce());
        assert!(memfd.try_loan().unwrap().freeze(1).is_scarce());
        assert!(!Buffer::from_vec(vec![1]).is_scarce());
    }
}
