//! The lock-free protocols that run on words inside a shared mapping: the cross-process refcount
//! of a slot and the per-peer release ring.
//!
//! They are written against the [`Word`] trait rather than `AtomicU32` so that the very same code
//! runs in production on words inside a memfd mapping and, in the tests, on loom's model-checked
//! atomics (`cargo test` explores every interleaving of the loom tests below).
//!
//! # Refcount protocol
//!
//! Every slot header holds `total`, the number of live references in all processes, and one
//! column per peer process counting that peer's share of `total`. The owner's own references are
//! only in `total`. Whoever takes `total` from 1 to 0 releases the slot: the owner directly, a
//! peer by pushing the slot index onto its release ring.
//!
//! A peer always raises `total` before its column and lowers its column before `total`. If it is
//! killed between the two, its column under-counts its share, so when the owner subtracts the dead
//! peer's column from `total` the slot can only stay referenced too long (a leak of that one slot),
//! never be freed while someone still reads it.
//!
//! # Release ring
//!
//! A ring of `cap` cells (a power of two, at least the number of slots) and a `tail` counter. A
//! producer claims a position with `fetch_add` on `tail` and stores `slot + 1` into the cell;
//! zero means empty. The single consumer (the owner) swaps cells back to zero in order from its
//! private head. A slot is pushed at most once per loan and is not loaned again before the owner
//! drained it, so at most `slots <= cap` cells are ever occupied: producers never overwrite.
//! Values are validated by the consumer, never trusted.

use std::sync::atomic::{AtomicU32, Ordering};

/// The atomic operations the protocols need, on one 32-bit word.
pub(crate) trait Word: Sync {
    fn load(&self, order: Ordering) -> u32;
    fn store(&self, value: u32, order: Ordering);
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32;
    fn swap(&self, value: u32, order: Ordering) -> u32;
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
}

impl Word for AtomicU32 {
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    fn store(&self, value: u32, order: Ordering) {
        AtomicU32::store(self, value, order)
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_sub(self, value, order)
    }
    fn swap(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::swap(self, value, order)
    }
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        AtomicU32::compare_exchange(self, current, new, success, failure)
    }
}

/// Adds one reference held by a peer whose column is `column`.
pub(crate) fn peer_clone<W: Word>(total: &W, column: &W) {
    total.fetch_add(1, Ordering::Relaxed);
    column.fetch_add(1, Ordering::Relaxed);
}

/// Drops one reference held by a peer; true when it was the last one in any process, in which
/// case the caller must release the slot.
pub(crate) fn peer_drop<W: Word>(total: &W, column: &W) -> bool {
    column.fetch_sub(1, Ordering::Relaxed);
    last_reference(total)
}

/// Drops one reference from `total`; true when it was the last one.
pub(crate) fn last_reference<W: Word>(total: &W) -> bool {
    if total.fetch_sub(1, Ordering::Release) == 1 {
        // Every other holder's reads of the slot happen before it is reused.
        std::sync::atomic::fence(Ordering::Acquire);
        true
    } else {
        false
    }
}

/// Takes a dead peer's share out of `total`: its column, clamped to what `total` holds so a
/// garbage column cannot wrap the count. True when nothing references the slot any more.
pub(crate) fn forget_peer<W: Word>(total: &W, column: &W) -> bool {
    let share = column.swap(0, Ordering::Relaxed);
    if share == 0 {
        return false;
    }
    let mut now = total.load(Ordering::Relaxed);
    loop {
        let take = share.min(now);
        if take == 0 {
            return false;
        }
        match total.compare_exchange(now, now - take, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return now == take,
            Err(seen) => now = seen,
        }
    }
}

/// A multi-producer, single-consumer ring of slot indices; see the module docs.
pub(crate) struct ReleaseRing<'a, W> {
    pub(crate) tail: &'a W,
    /// `cap` cells, `cap` a power of two.
    pub(crate) cells: &'a [W],
}

impl<W: Word> ReleaseRing<'_, W> {
    /// Pushes `slot`. SeqCst so that a consumer that announced it waits (see the pool) either
    /// sees this cell or is woken.
    pub(crate) fn push(&self, slot: u32) {
        let pos = self.tail.fetch_add(1, Ordering::Relaxed);
        let cell = &self.cells[pos as usize & (self.cells.len() - 1)];
        cell.store(slot.wrapping_add(1), Ordering::SeqCst);
    }

    /// Pops up to `cells.len()` entries in order from `head`, calling `each` with the raw value
    /// (not validated). Stops at the first empty cell: a producer that claimed it has not stored
    /// yet. Returns how many were popped. Single consumer only.
    pub(crate) fn drain(&self, head: &mut u32, mut each: impl FnMut(u32)) -> usize {
        let mask = self.cells.len() - 1;
        let mut popped = 0;
        while popped < self.cells.len() {
            let cell = &self.cells[*head as usize & mask];
            let value = cell.load(Ordering::Acquire);
            if value == 0 {
                break;
            }
            // Only the consumer writes a full cell: producers never reach it again before this.
            cell.store(0, Ordering::Relaxed);
            *head = head.wrapping_add(1);
            popped += 1;
            each(value.wrapping_sub(1));
        }
        popped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct LoomWord(loom::sync::atomic::AtomicU32);

    impl Word for LoomWord {
        fn load(&self, order: Ordering) -> u32 {
            self.0.load(order)
        }
        fn store(&self, value: u32, order: Ordering) {
            self.0.store(value, order)
        }
        fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
            self.0.fetch_add(value, order)
        }
        fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
            self.0.fetch_sub(value, order)
        }
        fn swap(&self, value: u32, order: Ordering) -> u32 {
            self.0.swap(value, order)
        }
        fn compare_exchange(
            &self,
            current: u32,
            new: u32,
            success: Ordering,
            failure: Ordering,
        ) -> Result<u32, u32> {
            self.0.compare_exchange(current, new, success, failure)
        }
    }

    fn word(v: u32) -> LoomWord {
        LoomWord(loom::sync::atomic::AtomicU32::new(v))
    }

    /// A slot with `total` and two peer columns, shared by the loom threads.
    struct Slot {
        total: LoomWord,
        columns: [LoomWord; 2],
        releases: LoomWord,
    }

    #[test]
    fn loom_owner_and_peer_drop_release_exactly_once() {
        loom::model(|| {
            // The owner holds one reference and lent one to peer 0; the peer clones it.
            let slot = loom::sync::Arc::new(Slot {
                total: word(2),
                columns: [word(1), word(0)],
                releases: word(0),
            });
            let peer = {
                let slot = slot.clone();
                loom::thread::spawn(move || {
                    peer_clone(&slot.total, &slot.columns[0]);
                    for _ in 0..2 {
                        if peer_drop(&slot.total, &slot.columns[0]) {
                            slot.releases.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            };
            if last_reference(&slot.total) {
                slot.releases.fetch_add(1, Ordering::Relaxed);
            }
            peer.join().unwrap();
            assert_eq!(slot.releases.load(Ordering::Relaxed), 1);
            assert_eq!(slot.total.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn loom_forgetting_a_dead_peer_never_frees_what_a_live_holder_reads() {
        loom::model(|| {
            // Owner holds 1; peer 0 holds 2 (lent + a clone) and dies; peer 1 holds 1 and drops
            // concurrently with the owner reclaiming peer 0.
            let slot = loom::sync::Arc::new(Slot {
                total: word(4),
                columns: [word(2), word(1)],
                releases: word(0),
            });
            let live = {
                let slot = slot.clone();
                loom::thread::spawn(move || {
                    if peer_drop(&slot.total, &slot.columns[1]) {
                        slot.releases.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            if forget_peer(&slot.total, &slot.columns[0]) {
                slot.releases.fetch_add(1, Ordering::Relaxed);
            }
            // The owner still holds its own reference: nothing may be released yet.
            assert!(slot.total.load(Ordering::Relaxed) >= 1);
            live.join().unwrap();
            assert_eq!(slot.releases.load(Ordering::Relaxed), 0);
            assert!(last_reference(&slot.total));
        });
    }

    #[test]
    fn loom_ring_delivers_every_push_exactly_once() {
        loom::model(|| {
            let ring = loom::sync::Arc::new((word(0), [word(0), word(0), word(0), word(0)]));
            let producers: Vec<_> = (0..2u32)
                .map(|p| {
                    let ring = ring.clone();
                    loom::thread::spawn(move || {
                        let r = ReleaseRing {
                            tail: &ring.0,
                            cells: &ring.1,
                        };
                        r.push(p + 10);
                    })
                })
                .collect();
            let mut head = 0u32;
            let mut seen = Vec::new();
            let r = ReleaseRing {
                tail: &ring.0,
                cells: &ring.1,
            };
            r.drain(&mut head, |v| seen.push(v));
            for p in producers {
                p.join().unwrap();
            }
            r.drain(&mut head, |v| seen.push(v));
            seen.sort_unstable();
            assert_eq!(seen, vec![10, 11]);
            assert_eq!(head, 2);
        });
    }

    #[test]
    fn forget_peer_clamps_a_garbage_column() {
        let total = AtomicU32::new(2);
        let column = AtomicU32::new(u32::MAX);
        assert!(forget_peer(&total, &column));
        assert_eq!(total.load(Ordering::Relaxed), 0);
        assert_eq!(column.load(Ordering::Relaxed), 0);
    }
}
