//! A pool of fixed-size slots cut out of one [`Mapping`], with the refcount of every slot stored
//! in the mapping itself.
//!
//! Layout of the mapping:
//!
//! ```text
//! [ ArenaHeader: magic, version, slot count, slot size, arena id ]   64 bytes
//! [ SlotHeader { refcount: AtomicU32, state: AtomicU32 } x slots ]   8 bytes each
//! [ padding to a page ]
//! [ slot data x slots ]                                               slot_size each
//! ```
//!
//! Which slots are free is tracked by the owner in private memory (an atomic bitmap), so a loan
//! never trusts a value read from the shared mapping. A loan sets the refcount to 1; clones
//! increment it; the drop that takes it to 0 returns the slot to the bitmap and wakes a producer
//! that waits for one. An exhausted pool is backpressure: [`Pool::loan_blocking`] waits, and
//! [`Pool::try_loan`] reports `None`, never panics.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::buffer::Buffer;
use super::sys::{page_size, Backing, Mapping};
use super::MemoryError;

const MAGIC: u64 = u64::from_le_bytes(*b"PRLXARN1");
const VERSION: u32 = 1;
const HEADER_LEN: usize = 64;
const STATE_FREE: u32 = 0;
const STATE_LOANED: u32 = 1;

/// The arena header at offset 0 of the mapping; written once by the owner.
#[repr(C)]
struct ArenaHeader {
    magic: AtomicU64,
    version: AtomicU32,
    slot_count: AtomicU32,
    slot_size: AtomicU64,
    arena_id: AtomicU64,
}

/// Per-slot header in the mapping. All atomics, so concurrent access from several threads (or
/// processes mapping the same memfd) is never a data race.
#[repr(C)]
struct SlotHeader {
    refcount: AtomicU32,
    state: AtomicU32,
}

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
}

/// A slot pool; cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

pub(super) struct PoolInner {
    map: Mapping,
    slots: usize,
    slot_size: usize,
    data_at: usize,
    /// Bit set = slot free. Private memory: the owner's authoritative view.
    free: Box<[AtomicU64]>,
    in_use: AtomicUsize,
    high_water: AtomicUsize,
    loans: AtomicU64,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

impl Pool {
    /// Maps and lays out a new pool.
    pub fn new(config: &PoolConfig) -> Result<Pool, MemoryError> {
        if config.slots == 0 || config.slots > u32::MAX as usize {
            return Err(MemoryError::Layout(
                "a pool needs between 1 and 2^32-1 slots",
            ));
        }
        let slot_size = round_slot(config.slot_size.max(1))?;
        let headers_len = config
            .slots
            .checked_mul(size_of::<SlotHeader>())
            .ok_or(MemoryError::Layout("slot headers overflow"))?;
        let data_at = (HEADER_LEN + headers_len).div_ceil(page_size()) * page_size();
        let total = config
            .slots
            .checked_mul(slot_size)
            .and_then(|d| d.checked_add(data_at))
            .ok_or(MemoryError::Layout("pool size overflows"))?;
        let map = Mapping::new(config.backing, &config.name, total)?;
        if map.len() < total {
            return Err(MemoryError::Layout(
                "the mapping is shorter than the pool layout",
            ));
        }
        let words = config.slots.div_ceil(64);
        let free: Box<[AtomicU64]> = (0..words)
            .map(|w| {
                let bits = (config.slots - w * 64).min(64);
                AtomicU64::new(if bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                })
            })
            .collect();
        let inner = PoolInner {
            map,
            slots: config.slots,
            slot_size,
            data_at,
            free,
            in_use: AtomicUsize::new(0),
            high_water: AtomicUsize::new(0),
            loans: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        };
        let header = inner.arena_header();
        header.version.store(VERSION, Ordering::Relaxed);
        header
            .slot_count
            .store(config.slots as u32, Ordering::Relaxed);
        header.slot_size.store(slot_size as u64, Ordering::Relaxed);
        header.arena_id.store(next_arena_id(), Ordering::Relaxed);
        header.magic.store(MAGIC, Ordering::Release);
        Ok(Pool {
            inner: Arc::new(inner),
        })
    }

    /// Bytes per slot: the largest buffer this pool can hand out.
    pub fn slot_size(&self) -> usize {
        self.inner.slot_size
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.inner.slots
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.inner.slots - self.inner.in_use.load(Ordering::Relaxed)
    }

    /// What backs the pool's pages.
    pub fn backing(&self) -> Backing {
        self.inner.map.backing()
    }

    /// The memfd behind the pool, for sharing with another process.
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.inner.map.fd()
    }

    /// Counters for `--stats`.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            slots: self.inner.slots,
            slot_size: self.inner.slot_size,
            high_water: self.inner.high_water.load(Ordering::Relaxed),
            loans: self.inner.loans.load(Ordering::Relaxed),
        }
    }

    /// Loans a free slot, or `None` when every slot is in use.
    pub fn try_loan(&self) -> Option<SlotMut> {
        let index = self.inner.take_free()?;
        Some(PoolInner::hand_out(&self.inner, index))
    }

    /// Loans a free slot, waiting for one while the pool is exhausted (backpressure).
    /// `cancelled` is polled while waiting; when it returns true the wait ends with
    /// [`MemoryError::Cancelled`].
    pub fn loan_blocking(&self, cancelled: &dyn Fn() -> bool) -> Result<SlotMut, MemoryError> {
        loop {
            if let Some(slot) = self.try_loan() {
                return Ok(slot);
            }
            self.inner.waiters.fetch_add(1, Ordering::SeqCst);
            let guard = self.inner.lock.lock().unwrap_or_else(|p| p.into_inner());
            // Checked again after announcing ourselves: a release that happened before the
            // announcement is seen here, one after it takes the lock and notifies.
            let got = self.try_loan();
            let result = match got {
                Some(slot) => Some(Ok(slot)),
                None if cancelled() => Some(Err(MemoryError::Cancelled)),
                None => {
                    let _unused = self
                        .inner
                        .freed
                        .wait_timeout(guard, Duration::from_millis(50))
                        .unwrap_or_else(|p| p.into_inner());
                    None
                }
            };
            self.inner.waiters.fetch_sub(1, Ordering::SeqCst);
            if let Some(r) = result {
                return r;
            }
        }
    }
}

impl PoolInner {
    fn arena_header(&self) -> &ArenaHeader {
        // SAFETY:
        // 1. In bounds: the mapping is at least one page, and HEADER_LEN (64) >= size_of header.
        // 2. Aligned: the mapping is page aligned and ArenaHeader needs 8-byte alignment.
        // 3. ArenaHeader is all atomics, so shared access is never a data race.
        // 4. The borrow is tied to &self, which owns the mapping.
        #[allow(unsafe_code)]
        unsafe {
            &*self.map.as_ptr().cast::<ArenaHeader>()
        }
    }

    /// Header of slot `index`, bounds-checked.
    fn slot_header(&self, index: u32) -> &SlotHeader {
        let i = (index as usize).min(self.slots - 1);
        debug_assert_eq!(i, index as usize, "slot index out of range");
        let offset = HEADER_LEN + i * size_of::<SlotHeader>();
        // SAFETY:
        // 1. In bounds: i < slots (clamped above) and `new` reserved HEADER_LEN + slots * 8 bytes
        //    before `data_at`.
        // 2. Aligned: the mapping is page aligned, HEADER_LEN is 64 and SlotHeader is 8 bytes
        //    with 4-byte alignment.
        // 3. SlotHeader is all atomics: concurrent access is never a data race.
        // 4. The borrow is tied to &self, which owns the mapping.
        #[allow(unsafe_code)]
        unsafe {
            &*self.map.as_ptr().add(offset).cast::<SlotHeader>()
        }
    }

    /// Base pointer of slot `index`'s data, bounds-checked.
    fn slot_ptr(&self, index: u32) -> *mut u8 {
        let i = (index as usize).min(self.slots - 1);
        debug_assert_eq!(i, index as usize, "slot index out of range");
        // SAFETY:
        // 1. In bounds: data_at + (i + 1) * slot_size <= map.len(), as laid out in `new`.
        // 2. Pointer arithmetic only; no access happens here.
        #[allow(unsafe_code)]
        unsafe {
            self.map.as_ptr().add(self.data_at + i * self.slot_size)
        }
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

    fn hand_out(this: &Arc<PoolInner>, index: u32) -> SlotMut {
        let header = this.slot_header(index);
        header.refcount.store(1, Ordering::Relaxed);
        header.state.store(STATE_LOANED, Ordering::Relaxed);
        let used = this.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        this.high_water.fetch_max(used, Ordering::Relaxed);
        this.loans.fetch_add(1, Ordering::Relaxed);
        SlotMut {
            slot: SlotRef {
                pool: Arc::clone(this),
                index,
            },
        }
    }

    fn release(&self, index: u32) {
        let header = self.slot_header(index);
        header.state.store(STATE_FREE, Ordering::Relaxed);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        let word = &self.free[index as usize / 64];
        word.fetch_or(1u64 << (index % 64), Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.freed.notify_all();
        }
    }
}

/// A counted reference to one loaned slot. Cloning increments the refcount in the mapping;
/// dropping the last reference returns the slot to its pool.
pub(super) struct SlotRef {
    pool: Arc<PoolInner>,
    index: u32,
}

impl SlotRef {
    /// The whole slot, read-only.
    pub(super) fn bytes(&self) -> &[u8] {
        let ptr = self.pool.slot_ptr(self.index);
        // SAFETY:
        // 1. ptr..ptr + slot_size lies inside the mapping (slot_ptr's bounds).
        // 2. The slot is loaned (refcount >= 1 while this SlotRef lives), so the pool does not
        //    hand it out again, and the only writer, `SlotMut`, was consumed by `freeze` before
        //    any `SlotRef` became shareable: no `&mut` aliases this slice.
        // 3. The borrow is tied to &self, which keeps the pool (and its mapping) alive.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(ptr, self.pool.slot_size)
        }
    }

    /// The slot's refcount as stored in the mapping.
    pub(super) fn refcount(&self) -> u32 {
        self.pool
            .slot_header(self.index)
            .refcount
            .load(Ordering::Acquire)
    }
}

impl Clone for SlotRef {
    fn clone(&self) -> Self {
        let old = self
            .pool
            .slot_header(self.index)
            .refcount
            .fetch_add(1, Ordering::Relaxed);
        if old > u32::MAX / 2 {
            // Like `Arc`: billions of live clones means a leak; aborting beats a wrap to zero.
            std::process::abort();
        }
        SlotRef {
            pool: Arc::clone(&self.pool),
            index: self.index,
        }
    }
}

impl Drop for SlotRef {
    fn drop(&mut self) {
        let header = self.pool.slot_header(self.index);
        if header.refcount.fetch_sub(1, Ordering::Release) == 1 {
            // Every other holder's reads of the slot happen before it is reused.
            fence(Ordering::Acquire);
            self.pool.release(self.index);
        }
    }
}

/// A slot on loan and not yet shared: the only handle that may write its bytes.
pub struct SlotMut {
    slot: SlotRef,
}

impl SlotMut {
    /// The whole slot, writable. Contents are whatever the previous user left (zero when fresh).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let ptr = self.slot.pool.slot_ptr(self.slot.index);
        // SAFETY:
        // 1. ptr..ptr + slot_size lies inside the mapping (slot_ptr's bounds).
        // 2. A `SlotMut` is created only by a fresh loan (refcount 1) and is not `Clone`, so this
        //    `&mut self` is the only way to reach the slot: no other reference aliases it.
        // 3. The borrow is tied to &mut self, which keeps the pool (and its mapping) alive.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts_mut(ptr, self.slot.pool.slot_size)
        }
    }

    /// Bytes this slot can hold.
    pub fn capacity(&self) -> usize {
        self.slot.pool.slot_size
    }

    /// Turns the first `len` bytes (clamped to the slot size) into a shareable [`Buffer`].
    pub fn freeze(self, len: usize) -> Buffer {
        let len = len.min(self.slot.pool.slot_size);
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

    fn pool(backing: Backing, slots: usize, slot_size: usize) -> Pool {
        Pool::new(&PoolConfig {
            backing,
            slot_size,
            slots,
            name: "test".into(),
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
}
