//! [`Exporter`]: lends buffers from any number of pools to one peer process, admitting the peer
//! to each pool the first time one of that pool's buffers goes its way, and giving everything
//! back when the peer goes.

use std::collections::HashMap;

use super::pool::{PeerId, PeerTicket};
use super::{Buffer, IpcRef, MemoryError, MemoryPool};

/// One peer's view of the pools it was lent buffers from.
#[derive(Default)]
pub struct Exporter {
    pools: HashMap<u64, (MemoryPool, PeerId)>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("arenas", &self.pools.len())
            .finish()
    }
}

impl Exporter {
    /// An exporter that has lent nothing yet.
    pub fn new() -> Exporter {
        Exporter::default()
    }

    /// Lends `buf` to the peer. For a pool the peer has not seen, also returns the ticket whose
    /// memfd must reach the peer before (or with) the reference. Buffers that do not live in a
    /// shareable pool give [`MemoryError::NotShareable`]: the caller copies them into one.
    pub fn export(&mut self, buf: &Buffer) -> Result<(IpcRef, Option<PeerTicket>), MemoryError> {
        let pool = buf.pool().ok_or(MemoryError::NotShareable(
            "the buffer is not in a shared arena",
        ))?;
        if pool.fd().is_none() {
            return Err(MemoryError::NotShareable(
                "the buffer's pool is heap memory",
            ));
        }
        let mut ticket = None;
        let peer = match self.pools.get(&pool.arena_id()) {
            Some((_, peer)) => *peer,
            None => {
                let t = pool.admit_peer()?;
                let id = t.id;
                self.pools.insert(pool.arena_id(), (pool.clone(), id));
                ticket = Some(t);
                id
            }
        };
        let r = pool.lend(buf, peer)?;
        Ok((r, ticket))
    }

    /// Takes back a reference the peer returns with its ownership (see
    /// [`MemoryPool::adopt`]): a buffer the peer passed on unchanged.
    pub fn adopt(&self, r: IpcRef) -> Result<Buffer, MemoryError> {
        let (pool, peer) = self.pools.get(&r.arena_id).ok_or(MemoryError::BadRef {
            r,
            why: "not an arena lent to this peer",
        })?;
        pool.adopt(*peer, r)
    }

    /// An untrusted peer released `r`.
    pub fn release(&self, r: &IpcRef) -> Result<(), MemoryError> {
        let (pool, peer) = self.pools.get(&r.arena_id).ok_or(MemoryError::Rejected {
            slot: r.slot,
            why: "not an arena lent to this peer",
        })?;
        pool.release_from(*peer, r)
    }

    /// The peer is gone: reclaims everything it held, in every pool. Returns the slots freed.
    pub fn reclaim_all(&mut self) -> usize {
        self.pools
            .drain()
            .map(|(_, (pool, peer))| pool.reclaim_peer(peer))
            .sum()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.reclaim_all();
    }
}
