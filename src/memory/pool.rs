//! [`MemoryPool`]: the owner's side of a shared arena. It loans fixed-size slots, keeps the
//! authoritative record of which slots are free in private memory, and serves peer processes.
//!
//! Which slots are free is an atomic bitmap in private memory, and each slot's loan state
//! (generation << 1 | loaned) is a private word too, so a loan or a release never trusts a value
//! read from the shared mapping. A loan sets the shared refcount to 1; clones increment it; the
//! drop that takes it to 0 returns the slot. An exhausted pool is backpressure:
//! [`MemoryPool::loan_blocking`] waits on a futex in the shared header, which both local releases
//! and peers' releases wake; [`MemoryPool::try_loan`] reports `None`, never panics.
//!
//! Peers (see [`super::peer`]) come in two kinds:
//!
//! - trusted ([`PeerAccess::ReadWrite`] arenas): they map the arena writable, and clone and drop
//!   with atomics on the shared refcount; a peer that drops the last reference pushes the slot
//!   onto its release ring, which the owner drains when it runs out of free slots (O(k) for k
//!   released slots). Ring entries are validated: an index out of range, a slot that is not on
//!   loan, or one still referenced is rejected and counted, never applied.
//! - untrusted ([`PeerAccess::ReadOnly`] arenas): the memfd is sealed with `F_SEAL_FUTURE_WRITE`
//!   once the owner mapped it, so the peer can only ever map it read-only; the owner keeps a
//!   private ledger of what it lent to each peer, and a release message for a slot the peer does
//!   not hold (or a second release) is rejected and counted.
//!
//! When a peer dies, [`MemoryPool::reclaim_peer`] takes its share out of every refcount and
//! returns the slots nobody else holds.

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::arena::{ArenaView, Layout, MAX_PEERS};
use super::buffer::Buffer;
use super::protocol::{forget_peer, last_reference, peer_clone, Word};
use super::sys::{page_size, Backing, Mapping};
use super::{IpcRef, MemoryError};

const LOANED: u32 = 1;

/// How to build a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Where the pages come from.
    pub backing: Backing,
    /// Bytes per slot: the largest buffer the pool can hold.
    pub slot_size: usize,
    /// Number of slots: how many buffers may be alive at once.
    pub slots: usize,
    /// Name of the memfd (shows in /proc/PID/fd), usually the element's name.
    pub name: String,
    /// What peer processes given the fd may do.
    pub peers: PeerAccess,
}

impl PoolConfig {
    /// A memfd-backed pool for trusted peers (the default `CpuArena` of a pipeline source).
    pub fn new(name: impl Into<String>, slots: usize, slot_size: usize) -> PoolConfig {
        PoolConfig {
            backing: Backing::Memfd,
            slot_size,
            slots,
            name: name.into(),
            peers: PeerAccess::ReadWrite,
        }
    }
}

/// What peers that map the arena may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerAccess {
    /// Trusted peers map it writable and keep refcounts in the shared mapping.
    #[default]
    ReadWrite,
    /// Peers are untrusted: the memfd is sealed against new writable mappings and the owner
    /// keeps the loan ledger privately.
    ReadOnly,
}

/// A peer's column in the arena (1-based in messages, `0..MAX_PEERS` inside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(u8);

impl PeerId {
    /// The column index, `0..MAX_PEERS`.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// Rebuilds an id received from a peer; `None` when out of range.
    pub fn from_index(index: usize) -> Option<PeerId> {
        (index < MAX_PEERS).then_some(PeerId(index as u8))
    }
}

/// What a newly admitted peer needs: its id and a duplicate of the arena's memfd to send it.
#[derive(Debug)]
pub struct PeerTicket {
    /// The peer's column.
    pub id: PeerId,
    /// The arena's memfd, for SCM_RIGHTS.
    pub fd: OwnedFd,
    /// How the peer must map it.
    pub access: PeerAccess,
}

/// Counters for `--stats`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PoolStats {
    /// Slots in the pool.
    pub slots: usize,
    /// Bytes per slot.
    pub slot_size: usize,
    /// Most slots loaned at the same time.
    pub high_water: usize,
    /// Loans served.
    pub loans: u64,
    /// Releases from peers that were refused (out of range, not on loan, not held, twice).
    pub rejected: u64,
}

/// A slot pool over a shared arena; cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct MemoryPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for MemoryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPool")
            .field("stats", &self.stats())
            .finish()
    }
}

#[derive(Default)]
struct Peers {
    admitted: [Option<PeerAccess>; MAX_PEERS],
    /// Untrusted peers' loans: slot -> references held.
    ledgers: [HashMap<u32, u32>; MAX_PEERS],
}

pub(super) struct PoolInner {
    view: ArenaView,
    arena_id: u64,
    peer_access: PeerAccess,
    /// Bit set = slot free. Private memory: the owner's authoritative view.
    free: Box<[std::sync::atomic::AtomicU64]>,
    /// Per slot: generation << 1 | LOANED. Private memory.
    states: Box<[AtomicU32]>,
    /// Trusted peers admitted, as a bit set: skips ring draining when zero.
    trusted_peers: AtomicU32,
    peers: Mutex<Peers>,
    /// Consumer position of each trusted peer's release ring. A lock of its own, which only
    /// those who drain the rings take: a loan never finds the rings unreadable because a lend
    /// or an admission holds `peers`.
    heads: Mutex<[u32; MAX_PEERS]>,
    in_use: AtomicUsize,
    high_water: AtomicUsize,
    loans: AtomicU64,
    rejected: AtomicU64,
}

impl MemoryPool {
    /// Maps and lays out a new pool.
    pub fn new(config: &PoolConfig) -> Result<MemoryPool, MemoryError> {
        // Layout::new refuses a slot count it cannot lay out.
        let slot_size = round_slot(config.slot_size.max(1))?;
        let layout = Layout::new(config.slots, slot_size, page_size())?;
        let map = Mapping::new(config.backing, &config.name, layout.end)?;
        let view = ArenaView::new(map, layout)?;
        let arena_id = next_arena_id();
        view.init_header(arena_id);
        if config.peers == PeerAccess::ReadOnly {
            view.map.seal_future_write()?;
        }
        let words = config.slots.div_ceil(64);
        let free = (0..words)
            .map(|w| {
                let bits = (config.slots - w * 64).min(64);
                std::sync::atomic::AtomicU64::new(if bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                })
            })
            .collect();
        let states = (0..config.slots).map(|_| AtomicU32::new(0)).collect();
        Ok(MemoryPool {
            inner: Arc::new(PoolInner {
                view,
                arena_id,
                peer_access: config.peers,
                free,
                states,
                trusted_peers: AtomicU32::new(0),
                peers: Mutex::new(Peers::default()),
                heads: Mutex::new([0; MAX_PEERS]),
                in_use: AtomicUsize::new(0),
                high_water: AtomicUsize::new(0),
                loans: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        })
    }

    /// Bytes per slot: the largest buffer this pool can hand out.
    pub fn slot_size(&self) -> usize {
        self.inner.view.layout.slot_size
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.inner.view.layout.slots
    }

    /// Slots free right now (after taking in what peers released).
    pub fn available(&self) -> usize {
        self.inner.drain_rings();
        self.capacity() - self.inner.in_use.load(Ordering::Relaxed)
    }

    /// What backs the pool's pages (after any fallback).
    pub fn backing(&self) -> Backing {
        self.inner.view.map.backing()
    }

    /// The arena's id, as carried by every [`IpcRef`] into it.
    pub fn arena_id(&self) -> u64 {
        self.inner.arena_id
    }

    /// The memfd behind the pool; `None` for heap pools.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.view.map.fd()
    }

    /// Counters for `--stats`.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            slots: self.capacity(),
            slot_size: self.slot_size(),
            high_water: self.inner.high_water.load(Ordering::Relaxed),
            loans: self.inner.loans.load(Ordering::Relaxed),
            rejected: self.inner.rejected.load(Ordering::Relaxed),
        }
    }

    /// Loans a free slot, or `None` when every slot is in use.
    pub fn try_loan(&self) -> Option<LoanedSlot> {
        let index = match self.inner.take_free() {
            Some(i) => i,
            None if self.inner.drain_rings() > 0 => self.inner.take_free()?,
            None => return None,
        };
        Some(PoolInner::hand_out(&self.inner, index))
    }

    /// Loans a free slot, waiting for one while the pool is exhausted (backpressure).
    /// `cancelled` is polled while waiting; when it returns true the wait ends with
    /// [`MemoryError::Cancelled`].
    pub fn loan_blocking(&self, cancelled: &dyn Fn() -> bool) -> Result<LoanedSlot, MemoryError> {
        let header = self.inner.view.header();
        loop {
            if let Some(slot) = self.try_loan() {
                return Ok(slot);
            }
            header.waiters.fetch_add(1, Ordering::SeqCst);
            let seq = header.wake_seq.load(Ordering::SeqCst);
            // Checked again after announcing ourselves: a release before the announcement is
            // seen here, one after it bumps `wake_seq`, so the futex wait returns at once.
            let result = match self.try_loan() {
                Some(slot) => Some(Ok(slot)),
                None if cancelled() => Some(Err(MemoryError::Cancelled)),
                None => {
                    let timeout = rustix::time::Timespec {
                        tv_sec: 0,
                        tv_nsec: Duration::from_millis(50).as_nanos() as i64,
                    };
                    let _woken = rustix::thread::futex::wait(
                        &header.wake_seq,
                        rustix::thread::futex::Flags::empty(),
                        seq,
                        Some(&timeout),
                    );
                    None
                }
            };
            header.waiters.fetch_sub(1, Ordering::SeqCst);
            if let Some(r) = result {
                return r;
            }
        }
    }

    /// How peers map this pool: writable (trusted) or read-only with a private ledger.
    pub fn peer_access(&self) -> PeerAccess {
        self.inner.peer_access
    }

    /// Admits a peer process: reserves a column and duplicates the memfd for it.
    pub fn admit_peer(&self) -> Result<PeerTicket, MemoryError> {
        let fd = self
            .fd()
            .ok_or(MemoryError::NotShareable("a heap pool has no fd to share"))?;
        let fd = rustix::io::fcntl_dupfd_cloexec(fd, 3)
            .map_err(|e| MemoryError::Memfd { source: e.into() })?;
        let mut peers = self.inner.lock_peers();
        let index =
            peers
                .admitted
                .iter()
                .position(Option::is_none)
                .ok_or(MemoryError::NotShareable(
                    "every peer column of this arena is taken",
                ))?;
        peers.admitted[index] = Some(self.inner.peer_access);
        if self.inner.peer_access == PeerAccess::ReadWrite {
            self.inner
                .trusted_peers
                .fetch_or(1 << index, Ordering::SeqCst);
        }
        Ok(PeerTicket {
            id: PeerId(index as u8),
            fd,
            access: self.inner.peer_access,
        })
    }

    /// Lends `buf` to `peer`: the returned [`IpcRef`] carries one reference that the peer owns
    /// (it resolves it once with [`super::SharedArenaCache::get_slot`]).
    pub fn lend(&self, buf: &Buffer, peer: PeerId) -> Result<IpcRef, MemoryError> {
        let (index, offset, len) = buf
            .slot_in(&self.inner)
            .ok_or(MemoryError::NotShareable("the buffer is not in this pool"))?;
        let mut peers = self.inner.lock_peers();
        match peers.admitted[peer.index()] {
            None => return Err(MemoryError::NotShareable("no such peer")),
            Some(PeerAccess::ReadWrite) => {
                // The owner holds `buf`, so the slot cannot be released while we add the share.
                let header = self.inner.view.slot_header(index);
                peer_clone(&header.total, &header.columns[peer.index()]);
            }
            Some(PeerAccess::ReadOnly) => {
                self.inner
                    .view
                    .slot_header(index)
                    .total
                    .fetch_add(1, Ordering::Relaxed);
                *peers.ledgers[peer.index()].entry(index).or_insert(0) += 1;
            }
        }
        Ok(IpcRef {
            arena_id: self.inner.arena_id,
            slot: index,
            offset: offset as u64,
            len: len as u64,
        })
    }

    /// An untrusted peer says it is done with `r`. Applied only if the ledger shows the peer holds
    /// that slot; otherwise rejected (and counted).
    pub fn release_from(&self, peer: PeerId, r: &IpcRef) -> Result<(), MemoryError> {
        let mut peers = self.inner.lock_peers();
        let held = if r.arena_id == self.inner.arena_id {
            peers.ledgers[peer.index()].get_mut(&r.slot)
        } else {
            None
        };
        let Some(count) = held else {
            drop(peers);
            self.inner.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(MemoryError::Rejected {
                slot: r.slot,
                why: "the peer does not hold this slot",
            });
        };
        *count -= 1;
        if *count == 0 {
            peers.ledgers[peer.index()].remove(&r.slot);
        }
        drop(peers);
        if last_reference(&self.inner.view.slot_header(r.slot).total) {
            self.inner.release(r.slot);
        }
        Ok(())
    }

    /// Takes back a reference that `peer` hands over with its ownership (a buffer it passes on
    /// unchanged): the peer's share moves to the owner, so the returned buffer's drop is the
    /// owner's. The reference is checked: this arena, a slot on loan, a byte range inside the
    /// slot, and a share the peer actually holds (its column for a trusted peer, the ledger for
    /// an untrusted one).
    pub fn adopt(&self, peer: PeerId, r: IpcRef) -> Result<Buffer, MemoryError> {
        let layout = &self.inner.view.layout;
        let bad = |why| Err(MemoryError::BadRef { r, why });
        if r.arena_id != self.inner.arena_id {
            return bad("not this arena");
        }
        if let Err(why) = layout.check_ref(&r) {
            return bad(why);
        }
        if self.inner.states[r.slot as usize].load(Ordering::Acquire) & LOANED == 0 {
            return bad("slot not on loan");
        }
        let mut peers = self.inner.lock_peers();
        match peers.admitted[peer.index()] {
            None => return bad("no such peer"),
            Some(PeerAccess::ReadWrite) => {
                let column = &self.inner.view.slot_header(r.slot).columns[peer.index()];
                let taken = column.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    held.checked_sub(1)
                });
                if taken.is_err() {
                    drop(peers);
                    self.inner.rejected.fetch_add(1, Ordering::Relaxed);
                    return bad("the peer holds no reference to this slot");
                }
            }
            Some(PeerAccess::ReadOnly) => {
                let ledger = &mut peers.ledgers[peer.index()];
                match ledger.get_mut(&r.slot) {
                    Some(n) if *n > 1 => *n -= 1,
                    Some(_) => {
                        ledger.remove(&r.slot);
                    }
                    None => {
                        drop(peers);
                        self.inner.rejected.fetch_add(1, Ordering::Relaxed);
                        return bad("the peer holds no reference to this slot");
                    }
                }
            }
        }
        let slot = SlotRef {
            pool: std::ptr::NonNull::from(&*self.inner),
            index: r.slot,
        };
        Ok(Buffer::from_slot_range(
            slot,
            r.offset as usize,
            r.len as usize,
        ))
    }

    /// A handle on the pool behind a slot reference.
    pub(super) fn of_slot(slot: &SlotRef) -> MemoryPool {
        let ptr = slot.pool.as_ptr().cast_const();
        // SAFETY: `slot` is alive, so its loan holds a strong count and the pointer is a live
        // Arc<PoolInner>; we add a count for the new handle before rebuilding it.
        #[allow(unsafe_code)]
        let inner = unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        };
        MemoryPool { inner }
    }

    /// A peer is gone (exited, killed, or cut off): takes its share out of every refcount,
    /// returns every slot nobody else holds, and frees its column. Returns the slots reclaimed.
    pub fn reclaim_peer(&self, peer: PeerId) -> usize {
        let p = peer.index();
        let mut reclaimed = 0;
        let mut peers = self.inner.lock_peers();
        match peers.admitted[p].take() {
            None => return 0,
            Some(PeerAccess::ReadOnly) => {
                for (slot, count) in std::mem::take(&mut peers.ledgers[p]) {
                    let total = &self.inner.view.slot_header(slot).total;
                    let column = AtomicU32::new(count);
                    if forget_peer(total, &column) && self.inner.release(slot) {
                        reclaimed += 1;
                    }
                }
            }
            Some(PeerAccess::ReadWrite) => {
                self.inner
                    .trusted_peers
                    .fetch_and(!(1 << p), Ordering::SeqCst);
                // What the peer pushed before it died is still valid.
                let mut heads = self.inner.heads.lock().unwrap_or_else(|e| e.into_inner());
                let mut head = heads[p];
                self.inner.view.ring(p).drain(&mut head, |slot| {
                    if self.inner.release_from_ring(slot) {
                        reclaimed += 1;
                    }
                });
                let ring = self.inner.view.ring(p);
                for cell in ring.cells {
                    cell.store(0, Ordering::Relaxed);
                }
                ring.tail.store(0, Ordering::Relaxed);
                heads[p] = 0;
                drop(heads);
                for slot in 0..self.capacity() as u32 {
                    let header = self.inner.view.slot_header(slot);
                    if forget_peer(&header.total, &header.columns[p]) && self.inner.release(slot) {
                        reclaimed += 1;
                    }
                }
                // A drop that reached zero but died before its push left an orphan: on loan,
                // referenced by nobody.
                for slot in 0..self.capacity() as u32 {
                    let state = self.inner.states[slot as usize].load(Ordering::Acquire);
                    let header = self.inner.view.slot_header(slot);
                    if state & LOANED != 0
                        && header.total.load(Ordering::Acquire) == 0
                        && self.inner.release_state(slot, state)
                    {
                        reclaimed += 1;
                    }
                }
            }
        }
        reclaimed
    }
}

impl PoolInner {
    fn lock_peers(&self) -> std::sync::MutexGuard<'_, Peers> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_free(&self) -> Option<u32> {
        for (w, word) in self.free.iter().enumerate() {
            let mut bits = word.load(Ordering::Relaxed);
            while bits != 0 {
                let bit = bits.trailing_zeros();
                match word.compare_exchange_weak(
                    bits,
                    bits & !(1u64 << bit),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some((w * 64) as u32 + bit),
                    Err(now) => bits = now,
                }
            }
        }
        None
    }

    fn hand_out(this: &Arc<PoolInner>, index: u32) -> LoanedSlot {
        let state = &this.states[index as usize];
        let next = (state.load(Ordering::Relaxed) | LOANED).wrapping_add(2) | LOANED;
        // The refcount and the pool count first, the loaned state last: the orphan scan of
        // `reclaim_peer` and the release rings free a slot that is loaned with a refcount of 0,
        // so the slot must never be seen loaned while its old refcount of 0 is still there.
        let header = this.view.slot_header(index);
        header.total.store(1, Ordering::Relaxed);
        if this.trusted_peers.load(Ordering::Relaxed) != 0 {
            // Whatever a misbehaving peer left in its column must not count for this loan.
            for column in &header.columns {
                column.store(0, Ordering::Relaxed);
            }
        }
        // The loan keeps the pool alive: one strong count per loan, not per reference, so that a
        // clone is a single atomic on the shared refcount. `release_state` gives it back.
        // SAFETY: `this` is a live Arc, so its pointer is valid for increment_strong_count.
        #[allow(unsafe_code)]
        unsafe {
            Arc::increment_strong_count(Arc::as_ptr(this));
        }
        state.store(next, Ordering::Release);
        header.state.store(next, Ordering::Relaxed);
        let used = this.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        this.high_water.fetch_max(used, Ordering::Relaxed);
        this.loans.fetch_add(1, Ordering::Relaxed);
        LoanedSlot {
            slot: SlotRef {
                pool: std::ptr::NonNull::from(&**this),
                index,
            },
        }
    }

    /// Returns a slot whose last reference is gone. False when it was not on loan (someone
    /// else already returned it).
    fn release(&self, index: u32) -> bool {
        let state = self.states[index as usize].load(Ordering::Acquire);
        state & LOANED != 0 && self.release_state(index, state)
    }

    /// Returns slot `index` if its private state is still `state` (same loan generation).
    fn release_state(&self, index: u32, state: u32) -> bool {
        if self.states[index as usize]
            .compare_exchange(state, state & !LOANED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.view
            .slot_header(index)
            .state
            .store(state & !LOANED, Ordering::Relaxed);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        self.free[index as usize / 64].fetch_or(1u64 << (index % 64), Ordering::SeqCst);
        self.wake_waiters();
        // SAFETY:
        // 1. Every PoolInner lives in an Arc (only `MemoryPool::new` makes one), and `hand_out`
        //    added one strong count for this loan, which the state CAS above ends exactly once.
        // 2. Nothing touches `self` after this line; callers either hold their own strong count
        //    (a `MemoryPool` handle) or, like `SlotRef::drop`, return without touching the pool.
        #[allow(unsafe_code)]
        unsafe {
            Arc::decrement_strong_count(self as *const PoolInner);
        }
        true
    }

    fn wake_waiters(&self) {
        self.view.header().wake_waiters();
    }

    /// Takes in what trusted peers pushed onto their release rings. O(k) for k entries.
    fn drain_rings(&self) -> usize {
        let mut trusted = self.trusted_peers.load(Ordering::SeqCst);
        if trusted == 0 {
            return 0;
        }
        // One consumer at a time.
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        let mut released = 0;
        while trusted != 0 {
            let p = trusted.trailing_zeros() as usize;
            trusted &= trusted - 1;
            self.view.ring(p).drain(&mut heads[p], |slot| {
                if self.release_from_ring(slot) {
                    released += 1;
                }
            });
        }
        released
    }

    /// Validates and applies one ring entry; counts it as rejected when it does not hold up.
    fn release_from_ring(&self, slot: u32) -> bool {
        let ok = (slot as usize) < self.view.layout.slots && {
            let state = self.states[slot as usize].load(Ordering::Acquire);
            state & LOANED != 0
                && self.view.slot_header(slot).total.load(Ordering::Acquire) == 0
                && self.release_state(slot, state)
        };
        if !ok {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

/// A counted reference to one loaned slot, owner side. Cloning increments the refcount in the
/// mapping; dropping the last reference returns the slot to its pool.
///
/// Packed to 12 bytes (4-byte aligned), so that [`Buffer`]'s storage, a tag and this, takes
/// 16 bytes instead of 24: the handle moves by value through every element call. Both fields
/// are `Copy` and read by value, never by reference.
#[repr(C, packed(4))]
pub(super) struct SlotRef {
    /// Kept alive by the loan's strong count (see `hand_out`) while any reference exists.
    pool: std::ptr::NonNull<PoolInner>,
    index: u32,
}

// SAFETY: a SlotRef only reads through `pool` (PoolInner is Send + Sync: atomics, a mutex and a
// mapping) and its refcount protocol is atomic, so it may move to and be shared across threads.
#[allow(unsafe_code)]
unsafe impl Send for SlotRef {}
// SAFETY: as for Send.
#[allow(unsafe_code)]
unsafe impl Sync for SlotRef {}

impl SlotRef {
    fn pool(&self) -> &PoolInner {
        let pool = self.pool;
        // SAFETY: the loan this reference belongs to holds a strong count on the pool until its
        // last reference is gone (`release_state`), and this reference is not gone yet; the
        // returned borrow is tied to `&self`.
        #[allow(unsafe_code)]
        unsafe {
            pool.as_ref()
        }
    }

    /// Whether the slot's pool can be lent to a peer with `access`: memfd-backed, and sealed
    /// for read-only sharing when the peer is read-only. Reads the pool in place (no count).
    pub(super) fn lendable_to(&self, access: PeerAccess) -> bool {
        let pool = self.pool();
        pool.view.map.fd().is_some()
            && (access == PeerAccess::ReadWrite || pool.peer_access == PeerAccess::ReadOnly)
    }

    /// The whole slot, read-only.
    pub(super) fn bytes(&self) -> &[u8] {
        // The slot is loaned (refcount >= 1 while this SlotRef lives) and its only writer,
        // `LoanedSlot`, was consumed by `freeze` before any `SlotRef` became shareable.
        self.pool().view.slot_bytes(self.index)
    }

    /// The slot's refcount as stored in the mapping.
    pub(super) fn refcount(&self) -> u32 {
        self.pool()
            .view
            .slot_header(self.index)
            .total
            .load(Ordering::Acquire)
    }

    /// The slot index if this reference belongs to `pool`.
    pub(super) fn index_in(&self, pool: &Arc<PoolInner>) -> Option<u32> {
        std::ptr::eq(self.pool.as_ptr(), Arc::as_ptr(pool)).then_some(self.index)
    }
}

impl Clone for SlotRef {
    fn clone(&self) -> Self {
        let old = Word::fetch_add(
            &self.pool().view.slot_header(self.index).total,
            1,
            Ordering::Relaxed,
        );
        if old > u32::MAX / 2 {
            // Like `Arc`: billions of live clones means a leak; aborting beats a wrap to zero.
            std::process::abort();
        }
        SlotRef {
            pool: self.pool,
            index: self.index,
        }
    }
}

impl Drop for SlotRef {
    fn drop(&mut self) {
        if last_reference(&self.pool().view.slot_header(self.index).total) {
            // May free the pool: nothing touches it afterwards.
            self.pool().release(self.index);
        }
    }
}

/// A slot on loan and not yet shared: the only handle that may write its bytes. Dropping it
/// unused returns the slot.
pub struct LoanedSlot {
    slot: SlotRef,
}

impl LoanedSlot {
    /// The whole slot, writable. Contents are whatever the previous user left (zero when fresh).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let view = &self.slot.pool().view;
        let ptr = view.slot_ptr(self.slot.index);
        // SAFETY:
        // 1. ptr..ptr + slot_size lies inside the mapping (slot_ptr's bounds).
        // 2. A `LoanedSlot` is created only by a fresh loan (refcount 1) and is not `Clone`, so
        //    this `&mut self` is the only way to reach the slot: no other reference aliases it.
        // 3. The borrow is tied to &mut self, which keeps the pool (and its mapping) alive.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts_mut(ptr, view.layout.slot_size)
        }
    }

    /// Bytes this slot can hold.
    pub fn capacity(&self) -> usize {
        self.slot.pool().view.layout.slot_size
    }

    /// Turns the first `len` bytes (clamped to the slot size) into a shareable [`Buffer`].
    pub fn freeze(self, len: usize) -> Buffer {
        let len = len.min(self.capacity());
        Buffer::from_slot(self.slot, len)
    }
}

fn round_slot(size: usize) -> Result<usize, MemoryError> {
    let align = if size >= page_size() { page_size() } else { 64 };
    size.checked_next_multiple_of(align)
        .ok_or(MemoryError::Layout("slot size overflows"))
}

fn next_arena_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    (u64::from(std::process::id()) << 32) | NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(backing: Backing, slots: usize, slot_size: usize) -> MemoryPool {
        MemoryPool::new(&PoolConfig {
            backing,
            ..PoolConfig::new("test", slots, slot_size)
        })
        .unwrap()
    }

    #[test]
    fn loans_until_exhausted_then_none_and_reuses_released_slots() {
        for backing in [Backing::Heap, Backing::Memfd] {
            let p = pool(backing, 3, 100);
            let a = p.try_loan().unwrap();
            let b = p.try_loan().unwrap();
            let c = p.try_loan().unwrap();
            assert!(p.try_loan().is_none());
            assert_eq!(p.available(), 0);
            drop(b);
            let d = p.try_loan().unwrap();
            assert!(p.try_loan().is_none());
            drop((a, c, d));
            assert_eq!(p.available(), 3);
            assert_eq!(p.stats().high_water, 3);
        }
    }

    #[test]
    fn refcount_lives_in_the_mapping_and_frees_at_zero() {
        let p = pool(Backing::Memfd, 1, 64);
        let mut s = p.try_loan().unwrap();
        s.as_mut_slice()[..3].copy_from_slice(b"abc");
        let b1 = s.freeze(3);
        let b2 = b1.clone();
        assert_eq!(b1.slot_refcount(), Some(2));
        assert!(p.try_loan().is_none());
        drop(b1);
        assert_eq!(b2.slot_refcount(), Some(1));
        assert_eq!(b2.data(), b"abc");
        drop(b2);
        assert!(p.try_loan().is_some());
    }

    #[test]
    fn buffers_outlive_their_pool_handle_and_free_it_last() {
        let p = pool(Backing::Memfd, 2, 64);
        let mut s = p.try_loan().unwrap();
        s.as_mut_slice()[..2].copy_from_slice(b"hi");
        let b = s.freeze(2);
        let c = b.clone();
        let unused = p.try_loan().unwrap();
        drop(p);
        drop(unused);
        drop(b);
        assert_eq!(c.data(), b"hi");
        drop(c);
    }

    #[test]
    fn more_than_64_slots_use_several_bitmap_words() {
        let p = pool(Backing::Heap, 130, 8);
        let loans: Vec<_> = (0..130).map(|_| p.try_loan().unwrap()).collect();
        assert!(p.try_loan().is_none());
        drop(loans);
        assert_eq!(p.available(), 130);
    }

    #[test]
    fn blocking_loan_waits_for_a_release_from_another_thread() {
        let p = pool(Backing::Memfd, 1, 64);
        let held = p.try_loan().unwrap().freeze(1);
        let releaser = std::thread::spawn(move || drop(held));
        let got = p.loan_blocking(&|| false);
        releaser.join().unwrap();
        assert!(got.is_ok());
    }

    #[test]
    fn blocking_loan_ends_when_cancelled() {
        let p = pool(Backing::Heap, 1, 64);
        let _held = p.try_loan().unwrap();
        assert!(matches!(
            p.loan_blocking(&|| true),
            Err(MemoryError::Cancelled)
        ));
    }

    #[test]
    fn stress_many_threads_clone_and_drop() {
        let p = pool(Backing::Memfd, 8, 64);
        for _ in 0..200 {
            let b = p.loan_blocking(&|| false).unwrap().freeze(8);
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let b = b.clone();
                    std::thread::spawn(move || {
                        for _ in 0..100 {
                            let c = b.clone();
                            drop(c);
                        }
                    })
                })
                .collect();
            drop(b);
            for h in handles {
                h.join().unwrap();
            }
        }
        assert_eq!(p.available(), 8);
    }

    #[test]
    fn stress_loaners_and_releasers_on_four_threads_lose_no_slot() {
        let p = pool(Backing::Memfd, 4, 64);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Buffer>(8);
        let producer = {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let mut s = p.loan_blocking(&|| false).unwrap();
                    s.as_mut_slice()[..4].copy_from_slice(&i.to_le_bytes());
                    tx.send(s.freeze(4)).unwrap();
                }
            })
        };
        let (to_releaser, releaser_rx) = std::sync::mpsc::sync_channel::<Buffer>(2);
        let releaser = std::thread::spawn(move || releaser_rx.into_iter().for_each(drop));
        let mut expect = 0u32;
        for b in rx {
            assert_eq!(b.data(), expect.to_le_bytes());
            to_releaser.send(b.clone()).unwrap();
            expect += 1;
        }
        producer.join().unwrap();
        drop(to_releaser);
        releaser.join().unwrap();
        assert_eq!(expect, 20_000);
        assert_eq!(p.available(), 4);
        assert_eq!(p.stats().loans, 20_000);
    }

    #[test]
    fn untrusted_ledger_rejects_unheld_and_double_releases() {
        let p = MemoryPool::new(&PoolConfig {
            peers: PeerAccess::ReadOnly,
            ..PoolConfig::new("test", 2, 64)
        })
        .unwrap();
        let ticket = p.admit_peer().unwrap();
        let b = p.try_loan().unwrap().freeze(10);
        let r = p.lend(&b, ticket.id).unwrap();
        assert_eq!(b.slot_refcount(), Some(2));
        drop(b);
        assert_eq!(p.available(), 1, "the peer still holds its loan");
        let forged = IpcRef { slot: 1, ..r };
        assert!(matches!(
            p.release_from(ticket.id, &forged),
            Err(MemoryError::Rejected { slot: 1, .. })
        ));
        p.release_from(ticket.id, &r).unwrap();
        assert!(p.release_from(ticket.id, &r).is_err(), "second release");
        assert_eq!(p.available(), 2);
        assert_eq!(p.stats().rejected, 2);
    }

    #[test]
    fn an_untrusted_arena_cannot_be_mapped_writable_again() {
        let p = MemoryPool::new(&PoolConfig {
            peers: PeerAccess::ReadOnly,
            ..PoolConfig::new("test", 1, 64)
        })
        .unwrap();
        let ticket = p.admit_peer().unwrap();
        let len = rustix::fs::fstat(&ticket.fd).unwrap().st_size as usize;
        let writable = Mapping::attach(ticket.fd, len, super::super::sys::Access::ReadWrite);
        assert!(
            writable.is_err(),
            "F_SEAL_FUTURE_WRITE refuses a writable mapping"
        );
        // The owner's own mapping still writes.
        let mut s = p.try_loan().unwrap();
        s.as_mut_slice()[0] = 7;
        assert_eq!(s.freeze(1).data(), [7]);
    }

    #[test]
    fn a_forgotten_untrusted_peer_gives_its_loans_back() {
        let p = MemoryPool::new(&PoolConfig {
            peers: PeerAccess::ReadOnly,
            ..PoolConfig::new("test", 3, 64)
        })
        .unwrap();
        let t = p.admit_peer().unwrap();
        for _ in 0..3 {
            let b = p.try_loan().unwrap().freeze(1);
            p.lend(&b, t.id).unwrap();
            p.lend(&b, t.id).unwrap();
        }
        assert_eq!(p.available(), 0);
        assert_eq!(p.reclaim_peer(t.id), 3);
        assert_eq!(p.available(), 3);
    }
}
