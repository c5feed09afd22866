//! The layout of a shared arena inside one mapping, and bounds-checked access to its parts.
//!
//! ```text
//! [ ArenaHeader: magic, version, slot count, slot size, arena id, layout, wake word ]  128 B
//! [ SlotHeader { total, state, columns[MAX_PEERS] } x slots ]                          64 B each
//! [ per peer: ring tail (64 B) + ring cells (4 B x ring_cap), rounded to 64 B ] x MAX_PEERS
//! [ padding to a page ]
//! [ slot data x slots ]                                                      slot_size each
//! ```
//!
//! The owner computes a [`Layout`] from its own configuration and never reads it back. A peer
//! reads the header once, into private memory, and accepts the arena only if every field agrees
//! with the layout it recomputes and the memfd is long enough ([`Layout::from_header`]). From then
//! on, every index either side uses is checked against that private copy.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::protocol::ReleaseRing;
use super::sys::Mapping;
use super::MemoryError;

pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"PRLXARN2");
pub(crate) const VERSION: u32 = 2;
/// Peer processes an arena can serve at once (columns in each slot header).
pub const MAX_PEERS: usize = 14;
/// The most slots an arena may have: bounds what a peer will accept from a header.
pub(crate) const MAX_SLOTS: usize = 1 << 20;
const HEADER_LEN: usize = 128;
const SLOT_HEADER_LEN: usize = 64;
const RING_TAIL_LEN: usize = 64;

/// At offset 0 of the mapping; written once by the owner, except the two wake words.
#[repr(C)]
pub(crate) struct ArenaHeader {
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    pub(crate) slot_count: AtomicU32,
    pub(crate) slot_size: AtomicU64,
    pub(crate) arena_id: AtomicU64,
    pub(crate) ring_cap: AtomicU32,
    pub(crate) max_peers: AtomicU32,
    pub(crate) data_at: AtomicU64,
    pub(crate) map_len: AtomicU64,
    /// Bumped by every release while someone waits; the waiters' futex word.
    pub(crate) wake_seq: AtomicU32,
    /// How many owner threads wait for a free slot.
    pub(crate) waiters: AtomicU32,
}

impl ArenaHeader {
    /// Wakes every process waiting for a free slot, if any waits (a release just happened).
    pub(crate) fn wake_waiters(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake_seq.fetch_add(1, Ordering::SeqCst);
            let _ = rustix::thread::futex::wake(
                &self.wake_seq,
                rustix::thread::futex::Flags::empty(),
                u32::MAX,
            );
        }
    }
}

/// Per-slot header; all atomics, so access from any thread of any process is never a data race.
#[repr(C)]
pub(crate) struct SlotHeader {
    /// Live references in all processes.
    pub(crate) total: AtomicU32,
    /// Informational copy of the owner's private state (generation << 1 | loaned); never trusted.
    pub(crate) state: AtomicU32,
    /// Each peer's share of `total`.
    pub(crate) columns: [AtomicU32; MAX_PEERS],
}

const _: () = assert!(size_of::<ArenaHeader>() <= HEADER_LEN);
const _: () = assert!(size_of::<SlotHeader>() == SLOT_HEADER_LEN);

/// Where everything is, computed from the slot count and size alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) slots: usize,
    pub(crate) slot_size: usize,
    pub(crate) ring_cap: usize,
    rings_at: usize,
    ring_stride: usize,
    pub(crate) data_at: usize,
    /// End of the last slot.
    pub(crate) end: usize,
}

impl Layout {
    /// Checks a reference's slot and byte range against this layout (never trusting the
    /// values, which come from another process).
    pub(crate) fn check_ref(&self, r: &super::IpcRef) -> Result<(), &'static str> {
        if r.slot as usize >= self.slots {
            return Err("slot index out of range");
        }
        if r.offset
            .checked_add(r.len)
            .is_none_or(|end| end > self.slot_size as u64)
        {
            return Err("byte range outside the slot");
        }
        Ok(())
    }

    pub(crate) fn new(slots: usize, slot_size: usize, page: usize) -> Result<Layout, MemoryError> {
        if slots == 0 || slots > MAX_SLOTS {
            return Err(MemoryError::Layout(
                "an arena needs between 1 and 2^20 slots",
            ));
        }
        if slot_size == 0 {
            return Err(MemoryError::Layout("slots cannot be empty"));
        }
        let ring_cap = slots.next_power_of_two();
        let rings_at = HEADER_LEN + slots * SLOT_HEADER_LEN;
        let ring_stride = (RING_TAIL_LEN + ring_cap * 4).next_multiple_of(64);
        let data_at = (rings_at + MAX_PEERS * ring_stride).next_multiple_of(page);
        let end = slots
            .checked_mul(slot_size)
            .and_then(|d| d.checked_add(data_at))
            .ok_or(MemoryError::Layout("arena size overflows"))?;
        Ok(Layout {
            slots,
            slot_size,
            ring_cap,
            rings_at,
            ring_stride,
            data_at,
            end,
        })
    }

    /// Reads a header once and checks every field against the layout it implies and against
    /// `file_len`, the length of the memfd. Returns the layout, the arena id and the mapped length.
    pub(crate) fn from_header(
        header: &ArenaHeader,
        file_len: u64,
        page: usize,
    ) -> Result<(Layout, u64, usize), MemoryError> {
        let bad = MemoryError::BadArena;
        // Each field is loaded exactly once; only these private copies are used below.
        let magic = header.magic.load(Ordering::Acquire);
        let version = header.version.load(Ordering::Relaxed);
        let slots = header.slot_count.load(Ordering::Relaxed) as usize;
        let slot_size = header.slot_size.load(Ordering::Relaxed);
        let arena_id = header.arena_id.load(Ordering::Relaxed);
        let ring_cap = header.ring_cap.load(Ordering::Relaxed) as usize;
        let max_peers = header.max_peers.load(Ordering::Relaxed) as usize;
        let data_at = header.data_at.load(Ordering::Relaxed);
        let map_len = header.map_len.load(Ordering::Relaxed);
        if magic != MAGIC {
            return Err(bad("bad magic: not a parallax arena"));
        }
        if version != VERSION {
            return Err(bad("unsupported arena version"));
        }
        let slot_size = usize::try_from(slot_size).map_err(|_| bad("slot size too large"))?;
        let layout = Layout::new(slots, slot_size, page)
            .map_err(|_| bad("impossible slot count or size"))?;
        if ring_cap != layout.ring_cap || max_peers != MAX_PEERS {
            return Err(bad(
                "ring capacity or peer count disagrees with the slot count",
            ));
        }
        if data_at != layout.data_at as u64 {
            return Err(bad("data offset disagrees with the slot count"));
        }
        if map_len < layout.end as u64 || map_len > file_len || map_len % page as u64 != 0 {
            return Err(bad(
                "mapped length disagrees with the layout or the memfd's size",
            ));
        }
        let map_len = usize::try_from(map_len).map_err(|_| bad("arena too large"))?;
        Ok((layout, arena_id, map_len))
    }
}

/// A mapping together with the layout it is known (or was checked) to have.
#[derive(Debug)]
pub(crate) struct ArenaView {
    pub(crate) map: Mapping,
    pub(crate) layout: Layout,
}

impl ArenaView {
    /// Wraps a mapping; fails unless it covers the whole layout.
    pub(crate) fn new(map: Mapping, layout: Layout) -> Result<ArenaView, MemoryError> {
        if map.len() < layout.end {
            return Err(MemoryError::Layout(
                "the mapping is shorter than the arena layout",
            ));
        }
        Ok(ArenaView { map, layout })
    }

    /// Writes the header; the owner does this once, before the fd is shared.
    pub(crate) fn init_header(&self, arena_id: u64) {
        let h = self.header();
        let l = &self.layout;
        h.version.store(VERSION, Ordering::Relaxed);
        h.slot_count.store(l.slots as u32, Ordering::Relaxed);
        h.slot_size.store(l.slot_size as u64, Ordering::Relaxed);
        h.arena_id.store(arena_id, Ordering::Relaxed);
        h.ring_cap.store(l.ring_cap as u32, Ordering::Relaxed);
        h.max_peers.store(MAX_PEERS as u32, Ordering::Relaxed);
        h.data_at.store(l.data_at as u64, Ordering::Relaxed);
        h.map_len.store(self.map.len() as u64, Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
    }

    pub(crate) fn header(&self) -> &ArenaHeader {
        header_of(&self.map)
    }

    /// Header of slot `index`. Out-of-range indices are clamped (and caught in debug builds):
    /// callers validate indices first, so a clamp means a bug, never an out-of-bounds access.
    pub(crate) fn slot_header(&self, index: u32) -> &SlotHeader {
        let i = self.clamp(index);
        let offset = HEADER_LEN + i * SLOT_HEADER_LEN;
        // SAFETY:
        // 1. In bounds: i < slots and the layout reserves HEADER_LEN + slots * 64 bytes before
        //    the rings, inside the mapping (`new` checked map.len() >= layout.end).
        // 2. Aligned: the mapping is page aligned and offset is a multiple of 64.
        // 3. SlotHeader is all atomics: concurrent access from any process is never a data race.
        //    On a read-only mapping only loads happen (peers with read-only access never touch
        //    slot headers).
        // 4. The borrow is tied to &self, which owns the mapping.
        #[allow(unsafe_code)]
        unsafe {
            &*self.map.as_ptr().add(offset).cast::<SlotHeader>()
        }
    }

    /// The release ring of peer column `peer` (0-based).
    pub(crate) fn ring(&self, peer: usize) -> ReleaseRing<'_, AtomicU32> {
        let p = peer.min(MAX_PEERS - 1);
        debug_assert_eq!(p, peer, "peer column out of range");
        let tail_at = self.layout.rings_at + p * self.layout.ring_stride;
        let cells_at = tail_at + RING_TAIL_LEN;
        // SAFETY:
        // 1. In bounds: the layout reserves MAX_PEERS ring strides of RING_TAIL_LEN + 4 * ring_cap
        //    bytes after the slot headers, all before data_at <= map.len().
        // 2. Aligned: rings_at and ring_stride are multiples of 64; AtomicU32 needs 4.
        // 3. Only atomics live there, so shared access is never a data race.
        // 4. The borrows are tied to &self, which owns the mapping.
        #[allow(unsafe_code)]
        unsafe {
            let base = self.map.as_ptr();
            ReleaseRing {
                tail: &*base.add(tail_at).cast::<AtomicU32>(),
                cells: std::slice::from_raw_parts(
                    base.add(cells_at).cast::<AtomicU32>(),
                    self.layout.ring_cap,
                ),
            }
        }
    }

    /// Base pointer of slot `index`'s data; clamped like [`Self::slot_header`].
    pub(crate) fn slot_ptr(&self, index: u32) -> *mut u8 {
        let i = self.clamp(index);
        // SAFETY:
        // 1. In bounds: data_at + (i + 1) * slot_size <= layout.end <= map.len().
        // 2. Pointer arithmetic only; no access happens here.
        #[allow(unsafe_code)]
        unsafe {
            self.map
                .as_ptr()
                .add(self.layout.data_at + i * self.layout.slot_size)
        }
    }

    /// The whole of slot `index`, read-only.
    ///
    /// Callers hold a reference to the slot (so the owner does not hand it out for writing) and
    /// no `LoanedSlot` for it exists any more.
    pub(crate) fn slot_bytes(&self, index: u32) -> &[u8] {
        // SAFETY:
        // 1. slot_ptr(index)..+slot_size lies inside the mapping (see slot_ptr).
        // 2. The caller holds a counted reference, so the slot is not loaned out for writing
        //    while this borrow lives (a peer outside the trust model could still write the bytes;
        //    that changes values, never addresses).
        // 3. The borrow is tied to &self, which owns the mapping.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.slot_ptr(index), self.layout.slot_size)
        }
    }

    fn clamp(&self, index: u32) -> usize {
        let i = (index as usize).min(self.layout.slots - 1);
        debug_assert_eq!(i, index as usize, "slot index out of range");
        i
    }
}

/// The header of any mapping of at least one page.
pub(crate) fn header_of(map: &Mapping) -> &ArenaHeader {
    // SAFETY:
    // 1. In bounds: every mapping is at least one page, and ArenaHeader is < 128 bytes.
    // 2. Aligned: mappings are page aligned; ArenaHeader needs 8.
    // 3. ArenaHeader is all atomics, so shared access is never a data race; on a read-only
    //    mapping only loads happen.
    // 4. The borrow is tied to &map.
    #[allow(unsafe_code)]
    unsafe {
        &*map.as_ptr().cast::<ArenaHeader>()
    }
}
