//! The peer's side of a shared arena: [`SharedArenaCache`] maps each arena it is sent once and
//! turns [`IpcRef`]s into [`Buffer`]s without copying a byte.
//!
//! A trusted peer maps the arena writable and its buffers clone and drop with atomics on the
//! shared refcount (its own column, see [`super::protocol`]); the drop of the last reference in
//! any process pushes the slot onto this peer's release ring and wakes the owner.
//!
//! An untrusted peer maps the arena read-only (the owner sealed it against writable mappings).
//! Its buffers count references privately; when the last one goes, the [`IpcRef`] is queued on
//! [`SharedArenaCache::take_releases`] for the caller to send back to the owner, who checks it
//! against its ledger.
//!
//! Every value that comes from the owner — the header, the `IpcRef` — is checked against the
//! layout this side computed, so a corrupt header or reference is an error, never an
//! out-of-bounds access.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::arena::{header_of, ArenaView, Layout};
use super::buffer::Buffer;
use super::pool::{PeerAccess, PeerId};
use super::protocol::{peer_clone, peer_drop};
use super::sys::{is_sealed_against_shrinking, page_size, Access, Mapping};
use super::MemoryError;

/// A reference to bytes in a shared arena, as sent between processes: the arena, the slot, and
/// the byte range inside the slot. A lent `IpcRef` carries one reference: resolve it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpcRef {
    /// The arena's id (from its header).
    pub arena_id: u64,
    /// Slot index.
    pub slot: u32,
    /// First byte, relative to the slot.
    pub offset: u64,
    /// Number of bytes.
    pub len: u64,
}

impl IpcRef {
    /// Encoded size in bytes.
    pub const WIRE_LEN: usize = 28;

    /// Little-endian encoding, for tests and simple transports.
    pub fn to_bytes(&self) -> [u8; Self::WIRE_LEN] {
        let mut out = [0u8; Self::WIRE_LEN];
        out[..8].copy_from_slice(&self.arena_id.to_le_bytes());
        out[8..12].copy_from_slice(&self.slot.to_le_bytes());
        out[12..20].copy_from_slice(&self.offset.to_le_bytes());
        out[20..28].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// Decodes [`Self::to_bytes`]; `None` when the length is wrong. Values are not trusted here:
    /// [`SharedArenaCache::get_slot`] checks them.
    pub fn from_bytes(bytes: &[u8]) -> Option<IpcRef> {
        let bytes: &[u8; Self::WIRE_LEN] = bytes.try_into().ok()?;
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        Some(IpcRef {
            arena_id: u64_at(0),
            slot: u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            offset: u64_at(12),
            len: u64_at(20),
        })
    }
}

/// One arena as a peer sees it.
#[derive(Debug)]
pub(super) struct PeerArena {
    view: ArenaView,
    arena_id: u64,
    /// `Some(column)` for a trusted peer, `None` for a read-only one.
    column: Option<PeerId>,
}

/// A trusted peer's counted reference to one slot.
///
/// Packed to 12 bytes (4-byte aligned), like the owner's `SlotRef`, so that [`Buffer`]'s
/// storage stays at 16 bytes: the handle moves by value through every element call. The arena
/// is held as the raw form of an `Arc<PeerArena>`, one strong count per reference; both fields
/// are `Copy` and read by value, never by reference.
#[repr(C, packed(4))]
pub(super) struct PeerSlotRef {
    /// From `Arc::into_raw`; this reference owns one strong count of it.
    arena: std::ptr::NonNull<PeerArena>,
    index: u32,
}

// SAFETY: a PeerSlotRef is an `Arc<PeerArena>` in raw form plus an index, and `PeerArena` is
// Send + Sync (checked below), so it may move to and be shared across threads as the Arc could;
// its refcount protocol in the mapping is atomic.
#[allow(unsafe_code)]
unsafe impl Send for PeerSlotRef {}
// SAFETY: as for Send.
#[allow(unsafe_code)]
unsafe impl Sync for PeerSlotRef {}

const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PeerArena>();
};

impl PeerSlotRef {
    /// A reference to slot `index` of `arena`, taking over a count the caller holds on the slot.
    fn new(arena: Arc<PeerArena>, index: u32) -> PeerSlotRef {
        let raw = Arc::into_raw(arena).cast_mut();
        PeerSlotRef {
            arena: std::ptr::NonNull::new(raw).expect("Arc::into_raw is never null"),
            index,
        }
    }

    pub(super) fn arena(&self) -> &PeerArena {
        let arena = self.arena;
        // SAFETY: this reference owns a strong count of the arena (taken in `new` or `clone`,
        // given back only in `drop` or `into_ipc_ref`, which consume it), so the value lives at
        // least as long as the borrow of `self`.
        #[allow(unsafe_code)]
        unsafe {
            arena.as_ref()
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        // This peer holds a counted reference, so the owner does not reuse the slot.
        self.arena().view.slot_bytes(self.index)
    }

    pub(super) fn refcount(&self) -> u32 {
        self.arena()
            .view
            .slot_header(self.index)
            .total
            .load(Ordering::Acquire)
    }

    fn column(&self) -> usize {
        self.arena().column.map_or(0, PeerId::index)
    }

    /// Gives back this reference's strong count on the arena (once, from a consuming call).
    fn release_arena(arena: std::ptr::NonNull<PeerArena>) {
        // SAFETY: the pointer came from `Arc::into_raw` and carries one strong count that its
        // reference owned; the reference is being consumed, so the count is given back once.
        #[allow(unsafe_code)]
        drop(unsafe { Arc::from_raw(arena.as_ptr().cast_const()) });
    }

    /// Hands this reference back to the owner: no count changes here, the owner moves the share
    /// from this peer's column to itself when it adopts the reference.
    pub(super) fn into_ipc_ref(self, offset: usize, len: usize) -> IpcRef {
        let this = std::mem::ManuallyDrop::new(self);
        let r = IpcRef {
            arena_id: this.arena().arena_id,
            slot: this.index,
            offset: offset as u64,
            len: len as u64,
        };
        // The slot's reference travels on in `r`; only the arena's count is given back.
        PeerSlotRef::release_arena(this.arena);
        r
    }
}

impl Clone for PeerSlotRef {
    fn clone(&self) -> Self {
        let header = self.arena().view.slot_header(self.index);
        peer_clone(&header.total, &header.columns[self.column()]);
        let arena = self.arena;
        // SAFETY: `arena` came from `Arc::into_raw` and this reference holds a count of it, so
        // the Arc is alive; the new reference owns the count taken here.
        #[allow(unsafe_code)]
        unsafe {
            Arc::increment_strong_count(arena.as_ptr().cast_const())
        };
        PeerSlotRef {
            arena,
            index: self.index,
        }
    }
}

impl Drop for PeerSlotRef {
    fn drop(&mut self) {
        let view = &self.arena().view;
        let header = view.slot_header(self.index);
        if peer_drop(&header.total, &header.columns[self.column()]) {
            view.ring(self.column()).push(self.index);
            view.header().wake_waiters();
        }
        PeerSlotRef::release_arena(self.arena);
    }
}

/// An untrusted peer's loan: read-only bytes, counted privately, handed back on drop.
pub(super) struct ReadOnlyLoan {
    arena: Arc<PeerArena>,
    r: IpcRef,
    /// Where the release goes on drop; `None` once the loan was handed back whole.
    releases: Option<kanal::Sender<IpcRef>>,
}

impl ReadOnlyLoan {
    pub(super) fn arena(&self) -> &PeerArena {
        &self.arena
    }

    pub(super) fn bytes(&self) -> &[u8] {
        self.arena.view.slot_bytes(self.r.slot)
    }

    /// Hands the loan back to its owner as a reference to `offset..offset + len` of the slot
    /// (for [`super::MemoryPool::adopt`]), instead of releasing it.
    pub(super) fn hand_back(mut self, offset: usize, len: usize) -> IpcRef {
        self.releases = None;
        IpcRef {
            offset: offset as u64,
            len: len as u64,
            ..self.r
        }
    }
}

impl Drop for ReadOnlyLoan {
    fn drop(&mut self) {
        // The cache may be gone; then nobody will send releases and the owner reclaims the loan
        // when it sees this process go.
        if let Some(releases) = self.releases.take() {
            let _ = releases.send(self.r);
        }
    }
}

/// The most arenas one cache maps (one per pool the other side lends from).
pub const MAX_ARENAS: usize = 64;

/// Maps arenas received from an owner and resolves [`IpcRef`]s into buffers.
#[derive(Debug)]
pub struct SharedArenaCache {
    arenas: HashMap<u64, Arc<PeerArena>>,
    release_tx: kanal::Sender<IpcRef>,
    release_rx: kanal::Receiver<IpcRef>,
}

impl Default for SharedArenaCache {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedArenaCache {
    /// An empty cache.
    pub fn new() -> SharedArenaCache {
        let (release_tx, release_rx) = kanal::unbounded();
        SharedArenaCache {
            arenas: HashMap::new(),
            release_tx,
            release_rx,
        }
    }

    /// Maps the arena behind `fd` (received from its owner) once, after checking its header.
    /// `access` and `id` must be what the owner's [`super::PeerTicket`] said. Returns the
    /// arena id.
    pub fn map_arena(
        &mut self,
        fd: OwnedFd,
        access: PeerAccess,
        id: PeerId,
    ) -> Result<u64, MemoryError> {
        if !is_sealed_against_shrinking(std::os::fd::AsFd::as_fd(&fd)) {
            return Err(MemoryError::BadArena(
                "the memfd is not sealed against shrinking: mapping it could SIGBUS",
            ));
        }
        let file_len = rustix::fs::fstat(&fd)
            .map_err(|e| MemoryError::Memfd { source: e.into() })?
            .st_size;
        let file_len = u64::try_from(file_len).unwrap_or(0);
        let page = page_size();
        if file_len < page as u64 {
            return Err(MemoryError::BadArena("the memfd is shorter than a header"));
        }
        let map_access = match access {
            PeerAccess::ReadWrite => Access::ReadWrite,
            PeerAccess::ReadOnly => Access::ReadOnly,
        };
        // One mapping of the whole memfd, with the access it keeps: a first, one-page peek
        // could not be unmapped from a huge-page arena (its mapping is 2 MiB at least).
        let whole = usize::try_from(file_len)
            .map_err(|_| MemoryError::BadArena("the memfd is too large to map"))?;
        let map = Mapping::attach(fd, whole, map_access)?;
        let (layout, arena_id, _) = Layout::from_header(header_of(&map), file_len, page)?;
        // An owner announces each arena once; a peer that keeps sending new ones could exhaust
        // our address space and fds.
        if self.arenas.contains_key(&arena_id) {
            return Err(MemoryError::BadArena("this arena is already mapped"));
        }
        if self.arenas.len() >= MAX_ARENAS {
            return Err(MemoryError::BadArena("too many arenas from one peer"));
        }
        let view = ArenaView::new(map, layout)?;
        let column = (access == PeerAccess::ReadWrite).then_some(id);
        self.arenas.insert(
            arena_id,
            Arc::new(PeerArena {
                view,
                arena_id,
                column,
            }),
        );
        Ok(arena_id)
    }

    /// Whether `buf` lives in one of the arenas this cache mapped (the same mapping, not just
    /// the same id): only such a buffer can go back to that owner as a reference. A buffer from
    /// a third process (a shmsrc's producer) must be copied instead.
    pub fn maps(&self, buf: &Buffer) -> bool {
        buf.peer_arena().is_some_and(|arena| {
            self.arenas
                .get(&arena.arena_id)
                .is_some_and(|mine| std::ptr::eq(Arc::as_ptr(mine), arena))
        })
    }

    /// Resolves a lent reference into a buffer over the shared bytes (no copy). Consumes the
    /// reference the owner lent: call it once per `IpcRef` received.
    pub fn get_slot(&self, r: IpcRef) -> Result<Buffer, MemoryError> {
        let arena = self.arenas.get(&r.arena_id).ok_or(MemoryError::BadRef {
            r,
            why: "unknown arena",
        })?;
        arena
            .view
            .layout
            .check_ref(&r)
            .map_err(|why| MemoryError::BadRef { r, why })?;
        let (offset, len) = (r.offset as usize, r.len as usize);
        Ok(match arena.column {
            Some(_) => {
                Buffer::from_peer_slot(PeerSlotRef::new(Arc::clone(arena), r.slot), offset, len)
            }
            None => Buffer::from_read_only_loan(
                ReadOnlyLoan {
                    arena: Arc::clone(arena),
                    r,
                    releases: Some(self.release_tx.clone()),
                },
                offset,
                len,
            ),
        })
    }

    /// References an untrusted peer is done with, to send back to the owner.
    pub fn take_releases(&self) -> Vec<IpcRef> {
        std::iter::from_fn(|| self.release_rx.try_recv().ok().flatten()).collect()
    }

    /// How many arenas are mapped.
    pub fn len(&self) -> usize {
        self.arenas.len()
    }

    /// Whether no arena is mapped.
    pub fn is_empty(&self) -> bool {
        self.arenas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryPool, PoolConfig};

    fn attach(pool: &MemoryPool) -> (SharedArenaCache, PeerId) {
        let t = pool.admit_peer().unwrap();
        let mut cache = SharedArenaCache::new();
        assert_eq!(
            cache.map_arena(t.fd, t.access, t.id).unwrap(),
            pool.arena_id()
        );
        (cache, t.id)
    }

    #[test]
    fn a_trusted_peer_shares_bytes_and_refcounts_and_its_drops_come_back_through_the_ring() {
        let pool = MemoryPool::new(&PoolConfig::new("t", 2, 4096)).unwrap();
        let (cache, id) = attach(&pool);
        let mut s = pool.try_loan().unwrap();
        s.as_mut_slice()[..5].copy_from_slice(b"hello");
        let b = s.freeze(5);
        let r = pool.lend(&b, id).unwrap();
        let seen = cache.get_slot(r).unwrap();
        assert_eq!(seen.data(), b"hello");
        assert_eq!(seen.slot_refcount(), Some(2));
        let again = seen.clone();
        assert_eq!(
            b.slot_refcount(),
            Some(3),
            "the peer's clone is visible to the owner"
        );
        drop(b);
        drop(seen);
        assert_eq!(pool.available(), 1);
        drop(again);
        assert_eq!(pool.available(), 2, "the owner drained the peer's release");
        assert_eq!(pool.stats().rejected, 0);
    }

    #[test]
    fn an_arena_announced_twice_is_refused() {
        let pool = MemoryPool::new(&PoolConfig::new("t", 1, 64)).unwrap();
        let (mut cache, _) = attach(&pool);
        let t = pool.admit_peer().unwrap();
        let err = cache.map_arena(t.fd, t.access, t.id).unwrap_err();
        assert!(err.to_string().contains("already mapped"), "{err}");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn bad_refs_are_errors() {
        let pool = MemoryPool::new(&PoolConfig::new("t", 2, 64)).unwrap();
        let (cache, _) = attach(&pool);
        let good = IpcRef {
            arena_id: pool.arena_id(),
            slot: 0,
            offset: 0,
            len: 1,
        };
        for (bad, why) in [
            (
                IpcRef {
                    arena_id: 1,
                    ..good
                },
                "unknown arena",
            ),
            (IpcRef { slot: 2, ..good }, "slot index out of range"),
            (
                IpcRef {
                    offset: 60,
                    len: 5,
                    ..good
                },
                "byte range outside the slot",
            ),
            (
                IpcRef {
                    offset: u64::MAX,
                    len: 2,
                    ..good
                },
                "byte range outside the slot",
            ),
        ] {
            match cache.get_slot(bad) {
                Err(MemoryError::BadRef { why: w, .. }) => assert_eq!(w, why),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_corrupt_header_is_refused_and_the_owner_keeps_going() {
        let pool = MemoryPool::new(&PoolConfig::new("t", 2, 64)).unwrap();
        let (cache, _) = attach(&pool);
        drop(cache);
        // A peer scribbles over the header through its writable mapping.
        let t = pool.admit_peer().unwrap();
        let len = rustix::fs::fstat(&t.fd).unwrap().st_size as usize;
        let map = Mapping::attach(t.fd, len, Access::ReadWrite).unwrap();
        header_of(&map).slot_count.store(1 << 30, Ordering::Relaxed);
        let t2 = pool.admit_peer().unwrap();
        let err = SharedArenaCache::new()
            .map_arena(t2.fd, t2.access, t2.id)
            .unwrap_err();
        assert!(err.to_string().contains("impossible slot count"), "{err}");
        header_of(&map).magic.store(0, Ordering::Relaxed);
        let t3 = pool.admit_peer().unwrap();
        let err = SharedArenaCache::new()
            .map_arena(t3.fd, t3.access, t3.id)
            .unwrap_err();
        assert!(err.to_string().contains("bad magic"), "{err}");
        let mut s = pool.try_loan().unwrap();
        s.as_mut_slice()[0] = 1;
        assert_eq!(s.freeze(1).data(), [1]);
    }

    #[test]
    fn garbage_in_a_release_ring_is_rejected_and_counted() {
        let pool = MemoryPool::new(&PoolConfig::new("t", 4, 64)).unwrap();
        let (cache, id) = attach(&pool);
        let arena = cache.arenas.values().next().unwrap();
        let ring = arena.view.ring(id.index());
        // A 4-slot arena has a 4-cell ring; a peer that pushes more than that only loses its own
        // entries.
        ring.push(9999); // out of range
        ring.push(1); // not on loan
        let held = pool.try_loan().unwrap().freeze(1);
        let r = pool.lend(&held, id).unwrap();
        let peer_buf = cache.get_slot(r).unwrap();
        ring.push(r.slot); // still referenced
        assert_eq!(pool.available(), 3);
        assert_eq!(pool.stats().rejected, 3);
        drop((held, peer_buf));
        ring.push(r.slot); // a second release of the same loan
        assert_eq!(pool.available(), 4);
        assert_eq!(pool.stats().rejected, 4);
    }

    #[test]
    fn an_untrusted_peer_reads_and_hands_releases_back() {
        let pool = MemoryPool::new(&PoolConfig {
            peers: PeerAccess::ReadOnly,
            ..PoolConfig::new("t", 1, 64)
        })
        .unwrap();
        let (cache, id) = attach(&pool);
        let mut s = pool.try_loan().unwrap();
        s.as_mut_slice()[..2].copy_from_slice(b"ro");
        let b = s.freeze(2);
        let r = pool.lend(&b, id).unwrap();
        drop(b);
        let seen = cache.get_slot(r).unwrap();
        assert_eq!(seen.data(), b"ro");
        let c = seen.clone();
        drop(seen);
        assert!(cache.take_releases().is_empty());
        drop(c);
        let back = cache.take_releases();
        assert_eq!(back, vec![r]);
        assert_eq!(pool.available(), 0);
        pool.release_from(id, &back[0]).unwrap();
        assert_eq!(pool.available(), 1);
    }

    #[test]
    fn a_buffer_goes_to_a_peer_and_comes_back_as_the_same_memory() {
        let pool = MemoryPool::new(&PoolConfig::new("t", 2, 64)).unwrap();
        let mut exporter = crate::memory::Exporter::new();
        let mut s = pool.try_loan().unwrap();
        s.as_mut_slice()[..4].copy_from_slice(b"same");
        let b = s.freeze(4);
        let (r, ticket) = exporter.export(&b).unwrap();
        let t = ticket.expect("first export admits the peer");
        let mut cache = SharedArenaCache::new();
        cache.map_arena(t.fd, t.access, t.id).unwrap();
        let (r2, again) = exporter.export(&b).unwrap();
        assert!(again.is_none(), "admitted once");
        let extra = cache.get_slot(r2).unwrap();
        let seen = cache.get_slot(r).unwrap();
        let back = exporter.adopt(seen.into_ipc_ref().unwrap()).unwrap();
        assert_eq!(back.data(), b"same");
        assert_eq!(
            back.data().as_ptr(),
            b.data().as_ptr(),
            "no copy either way"
        );
        assert_eq!(
            back.slot_refcount(),
            Some(3),
            "owner's b and back, the peer's extra"
        );
        drop(extra);
        // Handing back a share the peer no longer holds is refused.
        assert!(matches!(
            exporter.adopt(r),
            Err(MemoryError::BadRef {
                why: "the peer holds no reference to this slot",
                ..
            })
        ));
        drop((b, back));
        drop(exporter);
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn ipc_ref_round_trips_through_bytes() {
        let r = IpcRef {
            arena_id: 0x1234_5678_9abc,
            slot: 7,
            offset: 12,
            len: 99,
        };
        assert_eq!(IpcRef::from_bytes(&r.to_bytes()), Some(r));
        assert_eq!(IpcRef::from_bytes(&[0; 3]), None);
    }
}
