//! The raw layer: memfd creation and memory mappings through rustix.
//!
//! This is one of the two places in Parallax that hold `unsafe` code. A [`Mapping`] owns one
//! `mmap` region for its whole life and unmaps it on drop; nothing above this module sees a raw
//! pointer except [`super::pool`], which turns slot indices into bounds-checked slices.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use super::MemoryError;

/// Where the pages of a mapping come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous private memory: cheapest, never shareable with another process.
    Heap,
    /// A sealed memfd: the fd can be sent to another process, which maps the same pages.
    Memfd,
}

/// One read-write memory mapping, unmapped on drop.
///
/// Invariants: `ptr` is page aligned, `len > 0`, and `ptr..ptr + len` stays mapped read-write
/// until `drop`. When `fd` is present the mapping is `MAP_SHARED` over it and the memfd is sealed
/// against shrinking, so no other holder of the fd can truncate it under us (which would turn
/// our reads into SIGBUS).
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    fd: Option<OwnedFd>,
}

// SAFETY:
// 1. `Mapping` owns its region exclusively (nobody else unmaps it) and exposes it only through raw
//    pointers; all access goes through `pool`, which synchronises with atomics.
// 2. An mmap region is not tied to the thread that created it.
#[allow(unsafe_code)]
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only hands out the base pointer and length; see the `Send` reasoning.
#[allow(unsafe_code)]
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes (rounded up to a page) of zeroed memory from `backing`.
    pub fn new(backing: Backing, name: &str, len: usize) -> Result<Self, MemoryError> {
        let len = round_to_page(len.max(1));
        match backing {
            Backing::Heap => Self::anonymous(len),
            Backing::Memfd => Self::memfd(name, len),
        }
    }

    fn anonymous(len: usize) -> Result<Self, MemoryError> {
        // SAFETY:
        // 1. A null hint lets the kernel choose the address, so no existing mapping is replaced.
        // 2. The returned region is owned by the new `Mapping` and unmapped exactly once in `drop`.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(|e| MemoryError::Map {
            len,
            source: e.into(),
        })?;
        let ptr = non_null(ptr, len)?;
        Ok(Mapping { ptr, len, fd: None })
    }

    fn memfd(name: &str, len: usize) -> Result<Self, MemoryError> {
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| MemoryError::Memfd { source: e.into() })?;
        rustix::fs::ftruncate(&fd, len as u64)
            .map_err(|e| MemoryError::Memfd { source: e.into() })?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK)
            .map_err(|e| MemoryError::Memfd { source: e.into() })?;
        // SAFETY:
        // 1. A null hint lets the kernel choose the address, so no existing mapping is replaced.
        // 2. The memfd is `len` bytes long and sealed against shrinking, so every page of the
        //    mapping stays backed for as long as it is mapped.
        // 3. The region is owned by the new `Mapping` and unmapped exactly once in `drop`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(|e| MemoryError::Map {
            len,
            source: e.into(),
        })?;
        let ptr = non_null(ptr, len)?;
        Ok(Mapping {
            ptr,
            len,
            fd: Some(fd),
        })
    }

    /// Base address of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// The memfd behind the mapping, to hand to another process; `None` for heap mappings.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// What the pages come from.
    pub fn backing(&self) -> Backing {
        if self.fd.is_some() {
            Backing::Memfd
        } else {
            Backing::Heap
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY:
        // 1. `ptr..ptr + len` is exactly the region mmap returned in `new`, unmapped only here.
        // 2. Every borrow of the region is tied to a borrow of this `Mapping` (or of the pool that
        //    owns it through an `Arc`), so none outlives this call.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn non_null(ptr: *mut std::ffi::c_void, len: usize) -> Result<NonNull<u8>, MemoryError> {
    NonNull::new(ptr.cast::<u8>()).ok_or(MemoryError::Map {
        len,
        source: std::io::Error::other("mmap returned null"),
    })
}

/// The page size, read once.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

fn round_to_page(len: usize) -> usize {
    let page = page_size();
    len.div_ceil(page) * page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfd_mapping_is_zeroed_sealed_and_page_rounded() {
        let m = Mapping::new(Backing::Memfd, "test", 10).unwrap();
        assert_eq!(m.len(), page_size());
        assert_eq!(m.backing(), Backing::Memfd);
        let fd = m.fd().unwrap();
        let seals = rustix::fs::fcntl_get_seals(fd).unwrap();
        assert!(seals.contains(SealFlags::SHRINK));
        assert!(
            rustix::fs::ftruncate(fd, 0).is_err(),
            "a sealed memfd cannot shrink"
        );
    }

    #[test]
    fn heap_mapping_has_no_fd() {
        let m = Mapping::new(Backing::Heap, "test", 3 * page_size() + 1).unwrap();
        assert_eq!(m.len(), 4 * page_size());
        assert!(m.fd().is_none());
    }
}
