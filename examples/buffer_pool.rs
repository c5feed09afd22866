//! Buffer pools: slots loaned from shared memory, frozen into buffers whose clones share the
//! bytes; an exhausted pool is backpressure (no slot), never growth.

use parallax::memory::{MemoryPool, PoolConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = MemoryPool::new(&PoolConfig::new("example", 2, 4096))?;
    let mut slot = pool.try_loan().expect("a fresh pool has free slots");
    slot.as_mut_slice()[..5].copy_from_slice(b"hello");
    let buf = slot.freeze(5);
    let clone = buf.clone();
    println!(
        "buffer {:?}, clone shares its bytes: {}",
        String::from_utf8_lossy(buf.data()),
        buf.data().as_ptr() == clone.data().as_ptr()
    );
    let second = pool.try_loan().expect("one slot left");
    println!(
        "third loan while two are out: {}",
        if pool.try_loan().is_none() {
            "none (backpressure)"
        } else {
            "a slot"
        }
    );
    drop((buf, clone, second));
    println!(
        "after the buffers are dropped: {}",
        if pool.try_loan().is_some() {
            "a slot again"
        } else {
            "none"
        }
    );
    Ok(())
}
