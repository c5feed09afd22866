//! zenohsink's shared-memory pool: a buffer of [`SHM_MIN`] bytes or more is copied once into a
//! Zenoh POSIX shared-memory segment and published from there, so that a subscriber in another
//! process on this host maps the segment and reads the bytes in place (zenohsrc wraps them in a
//! buffer without a copy). A peer that cannot map it (on another host, or without shared
//! memory) gets the bytes over its link as usual: Zenoh decides that per peer.
//!
//! Why one copy and not none: Zenoh's peers open a segment by the name their protocol gives it
//! (`/dev/shm/<id>.zenoh` for the POSIX one), and keep each chunk's reference count and
//! liveness watchdog in Zenoh's own metadata segment. The pipeline's pool is an anonymous memfd
//! whose slots the pipeline recycles under its own counts, and whose bytes upstream has already
//! written by the time a sink sees them. Publishing those slots in place would need a Zenoh
//! protocol of our own (which no other Zenoh program could read) and a way for the sink to hand
//! its allocator to the source; the copy into Zenoh's segment is the one copy left.
//!
//! The pool never holds the pipeline up: when no chunk is free even after reclaiming those
//! every reader released, a pool sized from the buffers grows (another segment as large as all
//! the earlier ones together, to [`AUTO_MAX`] in all), and past that, or with a fixed
//! `shm-size`, the buffer goes the ordinary way.

use zenoh::shm::{
    Defragment, GarbageCollect, JustAlloc, PosixShmProviderBackend, ShmProvider,
    ShmProviderBuilder, ZShmMut,
};
use zenoh::Wait as _;

/// Buffers smaller than this are not worth a chunk: a receiver copies them anyway (they would
/// pin a chunk for a few bytes).
pub(super) const SHM_MIN: usize = 4096;
/// The most memory a pool sized from the buffers (`shm-size=0`) takes, all its segments
/// together.
pub(super) const AUTO_MAX: usize = 256 << 20;
/// The smallest pool sized from the buffers.
const AUTO_MIN: usize = 4 << 20;
/// A pool sized from the buffers starts with room for this many of the first large one: a
/// subscriber's queue, the publisher's channel and what Zenoh has in flight.
const AUTO_BUFFERS: usize = 32;

/// What `shm=` asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ShmMode {
    Auto,
    On,
    Off,
}

/// The `shm` and `shm-size` properties.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShmPlan {
    pub(super) mode: ShmMode,
    /// Fixed pool size in bytes; 0 sizes it from the buffers.
    pub(super) size: usize,
}

impl ShmPlan {
    /// The session's `transport/shared_memory/enabled`: off only when asked.
    pub(super) fn enabled(&self) -> bool {
        self.mode != ShmMode::Off
    }
}

/// A publisher's shared memory, made on the first large buffer.
pub(super) struct ShmPool {
    plan: ShmPlan,
    /// The segments made so far, the newest last. Each stays until the session ends (readers
    /// may hold its chunks, and a chunk's header lives as long as its segment), and each is
    /// allocated from again as its chunks come back.
    providers: Vec<ShmProvider<PosixShmProviderBackend>>,
    /// The bytes of all of them (0: none made yet).
    total: usize,
    /// Why a pool could not be made, once one could not (Zenoh locks a pool's pages, and
    /// `ulimit -l` may not allow more): the pools made so far stay in use, no more are made.
    refused: Option<String>,
    /// Buffers published from shared memory, and large ones that went the ordinary way
    /// because the pool was full or could not be made.
    pub(super) shared: u64,
    pub(super) copied: u64,
}

/// What became of one buffer.
pub(super) enum Placed {
    /// Copied into a chunk of the pool: publish this.
    Shared(ZShmMut),
    /// Not placed (small, shared memory off, or the pool full): publish the buffer itself.
    Ordinary,
}

impl ShmPool {
    pub(super) fn new(plan: ShmPlan) -> ShmPool {
        ShmPool {
            plan,
            providers: Vec::new(),
            total: 0,
            refused: None,
            shared: 0,
            copied: 0,
        }
    }

    /// Copies `data` into a chunk when it is large enough and a chunk can be had; an error
    /// only when `shm=on` and no pool can be made.
    pub(super) fn place(&mut self, data: &[u8]) -> Result<Placed, String> {
        if !self.plan.enabled() || data.len() < SHM_MIN {
            return Ok(Placed::Ordinary);
        }
        loop {
            let free = self
                .providers
                .iter()
                .rev()
                .find_map(|p| alloc(p, data.len()));
            if let Some(mut chunk) = free {
                chunk.copy_from_slice(data);
                self.shared += 1;
                return Ok(Placed::Shared(chunk));
            }
            let Some(size) = self.next_size(data.len()) else {
                self.copied += 1;
                return Ok(Placed::Ordinary);
            };
            match ShmProviderBuilder::default_backend(size).wait() {
                Ok(p) => {
                    tracing::debug!(size, "Made a Zenoh shared-memory pool");
                    self.providers.push(p);
                    self.total += size;
                }
                Err(e) => {
                    let why = format!(
                        "cannot make a Zenoh shared-memory pool of {size} bytes: {e} (Zenoh \
                         locks its pages in memory: see `ulimit -l`)"
                    );
                    if self.plan.mode == ShmMode::On && self.providers.is_empty() {
                        return Err(format!(
                            "shm=on: {why}; shm=auto publishes over the network instead"
                        ));
                    }
                    tracing::debug!("{why}; large buffers that find no room go the ordinary way");
                    self.refused = Some(why);
                    self.copied += 1;
                    return Ok(Placed::Ordinary);
                }
            }
        }
    }

    /// Why large buffers went the ordinary way: the pool was full, or could not be made.
    pub(super) fn why_copied(&self) -> &str {
        self.refused.as_deref().unwrap_or("the pool was full")
    }

    /// The size of the next segment to make for a buffer of `len` bytes, if one should be
    /// made: the first sized from the buffer, each later one as large as all before it
    /// (doubling the pool), within [`AUTO_MAX`] in all.
    fn next_size(&self, len: usize) -> Option<usize> {
        if self.refused.is_some() {
            return None;
        }
        if self.plan.size > 0 {
            // Fixed: made once.
            return (self.total == 0).then_some(self.plan.size);
        }
        let want = if self.total == 0 {
            len.checked_next_power_of_two()?
                .saturating_mul(AUTO_BUFFERS)
                .clamp(AUTO_MIN, AUTO_MAX)
        } else {
            self.total.min(AUTO_MAX - self.total)
        };
        // A segment must hold a few such buffers to be of use; a pool that cannot grow is full.
        (len.saturating_mul(4) <= want).then_some(want)
    }
}

/// A chunk of `len` bytes from `provider`: at once, or after reclaiming the chunks every reader
/// released (joining free space when that is what it takes); `None` when the segment is full.
fn alloc(provider: &ShmProvider<PosixShmProviderBackend>, len: usize) -> Option<ZShmMut> {
    provider
        .alloc(len)
        .with_policy::<GarbageCollect<JustAlloc, Defragment>>()
        .wait()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(mode: ShmMode, size: usize) -> ShmPlan {
        ShmPlan { mode, size }
    }

    #[test]
    fn small_buffers_and_shm_off_go_the_ordinary_way() {
        let mut pool = ShmPool::new(plan(ShmMode::Auto, 0));
        assert!(matches!(
            pool.place(&[1; SHM_MIN - 1]).unwrap(),
            Placed::Ordinary
        ));
        let mut off = ShmPool::new(plan(ShmMode::Off, 0));
        assert!(matches!(
            off.place(&[1; 1 << 20]).unwrap(),
            Placed::Ordinary
        ));
        assert_eq!((pool.shared + off.shared, pool.copied + off.copied), (0, 0));
    }

    #[test]
    fn a_full_fixed_pool_falls_back_and_reuses_released_chunks() {
        let mut pool = ShmPool::new(plan(ShmMode::On, 1 << 20));
        let data = vec![7u8; 300_000];
        let mut held = Vec::new();
        // Three fit in 1 MiB; the fourth does not, and goes the ordinary way, without waiting.
        for _ in 0..3 {
            match pool.place(&data).unwrap() {
                Placed::Shared(chunk) => {
                    assert_eq!(&chunk[..], &data[..], "the bytes were copied in");
                    held.push(chunk);
                }
                Placed::Ordinary => panic!("room for three"),
            }
        }
        assert!(matches!(pool.place(&data).unwrap(), Placed::Ordinary));
        assert_eq!((pool.shared, pool.copied), (3, 1));
        // Released chunks are reclaimed.
        held.clear();
        assert!(matches!(pool.place(&data).unwrap(), Placed::Shared(_)));
        assert_eq!(pool.providers.len(), 1, "a fixed pool never grows");
    }

    #[test]
    fn a_pool_that_cannot_be_made_is_an_error_with_shm_on_and_a_fallback_with_auto() {
        // No system makes a pool of usize::MAX bytes; the refusal comes before any memory.
        let err = ShmPool::new(plan(ShmMode::On, usize::MAX))
            .place(&[1; SHM_MIN])
            .err()
            .expect("refused");
        assert!(
            err.starts_with(&format!(
                "shm=on: cannot make a Zenoh shared-memory pool of {}",
                usize::MAX
            )),
            "{err}"
        );
        let mut auto = ShmPool::new(plan(ShmMode::Auto, usize::MAX));
        assert!(matches!(
            auto.place(&[1; SHM_MIN]).unwrap(),
            Placed::Ordinary
        ));
        assert!(matches!(
            auto.place(&[1; SHM_MIN]).unwrap(),
            Placed::Ordinary
        ));
        assert_eq!((auto.shared, auto.copied), (0, 2));
        assert!(
            auto.why_copied().starts_with("cannot make"),
            "{}",
            auto.why_copied()
        );
    }

    #[test]
    fn a_pool_sized_from_the_buffers_grows_to_its_limit() {
        let sized = |total| ShmPool {
            total,
            ..ShmPool::new(plan(ShmMode::Auto, 0))
        };
        assert_eq!(sized(0).next_size(1 << 20), Some(32 << 20));
        assert_eq!(sized(0).next_size(5000), Some(AUTO_MIN));
        // Each new segment doubles the pool: 32 + 32, then + 64, then + 128 = 256 MiB.
        assert_eq!(sized(32 << 20).next_size(1 << 20), Some(32 << 20));
        assert_eq!(sized(128 << 20).next_size(1 << 20), Some(128 << 20));
        assert_eq!(
            sized(192 << 20).next_size(1 << 20),
            Some(64 << 20),
            "the last segment fills the pool to its limit, no more"
        );
        assert_eq!(sized(AUTO_MAX).next_size(1 << 20), None, "at its limit");
        assert_eq!(
            sized(AUTO_MAX - (1 << 20)).next_size(1 << 20),
            None,
            "room left for fewer than four such buffers"
        );
        assert_eq!(
            sized(0).next_size(128 << 20),
            None,
            "too large for any pool"
        );
        let fixed = |total| ShmPool {
            total,
            ..ShmPool::new(plan(ShmMode::Auto, 1 << 20))
        };
        assert_eq!(fixed(0).next_size(300_000), Some(1 << 20));
        assert_eq!(fixed(1 << 20).next_size(300_000), None, "made once");
        let refused = ShmPool {
            refused: Some("no".into()),
            ..ShmPool::new(plan(ShmMode::Auto, 0))
        };
        assert_eq!(refused.next_size(1 << 20), None, "no more after a refusal");
    }
}
