//! [`MemorySegment`]: what every kind of memory a buffer can live in has in common, so code that
//! only needs to know where bytes are, how many, of what kind and whether another process can
//! map them (stats, the IPC layer) does not care which backend made them.

use std::os::fd::BorrowedFd;

use super::sys::{Backing, Mapping};
use super::MappedFileSegment;

/// A contiguous region of memory.
pub trait MemorySegment: Send + Sync {
    /// Start of the region. Only the memory module dereferences it.
    fn as_ptr(&self) -> *const u8;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Where the pages come from.
    fn memory_type(&self) -> Backing;
    /// A descriptor another process can map the region from, if any.
    fn fd(&self) -> Option<BorrowedFd<'_>>;
}

impl MemorySegment for Mapping {
    fn as_ptr(&self) -> *const u8 {
        Mapping::as_ptr(self)
    }
    fn len(&self) -> usize {
        Mapping::len(self)
    }
    fn memory_type(&self) -> Backing {
        self.backing()
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Mapping::fd(self)
    }
}

impl MemorySegment for MappedFileSegment {
    fn as_ptr(&self) -> *const u8 {
        self.bytes().as_ptr()
    }
    fn len(&self) -> usize {
        MappedFileSegment::len(self)
    }
    fn memory_type(&self) -> Backing {
        Backing::File
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// Private anonymous memory (never shareable): the `heap` backend.
pub struct HeapSegment;

impl HeapSegment {
    /// Maps `len` bytes of zeroed private memory.
    pub fn create(len: usize) -> Result<Mapping, super::MemoryError> {
        Mapping::new(Backing::Heap, "heap", len)
    }
}

/// 2 MiB huge pages in a sealed memfd, falling back to normal pages with one warning.
pub struct HugePageSegment;

impl HugePageSegment {
    /// Maps `len` bytes (rounded up to a huge page) of zeroed shareable memory.
    pub fn create(name: &str, len: usize) -> Result<Mapping, super::MemoryError> {
        Mapping::new(Backing::HugePages, name, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_is_a_segment() {
        let heap = HeapSegment::create(100).unwrap();
        let huge = HugePageSegment::create("t", 100).unwrap();
        let memfd = Mapping::new(Backing::Memfd, "t", 100).unwrap();
        let segments: [&dyn MemorySegment; 3] = [&heap, &huge, &memfd];
        assert_eq!(segments[0].memory_type(), Backing::Heap);
        assert!(segments[0].fd().is_none());
        // Huge pages when the system has them reserved, otherwise a memfd after one warning.
        assert!(matches!(
            segments[1].memory_type(),
            Backing::HugePages | Backing::Memfd
        ));
        assert!(segments[1].fd().is_some());
        assert!(segments[2].len() >= 100);
    }
}
