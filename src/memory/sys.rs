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
    /// A sealed memfd on 2 MiB huge pages (fewer TLB misses); falls back to [`Backing::Memfd`]
    /// with one warning when the system has no huge pages reserved.
    HugePages,
    /// A regular file mapped with `mmap`.
    File,
}

impl Backing {
    /// The name used by `--memory` and the stats.
    pub fn name(self) -> &'static str {
        match self {
            Backing::Heap => "heap",
            Backing::Memfd => "memfd",
            Backing::HugePages => "hugepages",
            Backing::File => "file",
        }
    }
}

/// Size of the huge pages asked for by [`Backing::HugePages`].
pub const HUGE_PAGE: usize = 2 << 20;

/// How a mapping may be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Loads only; a store would fault. The kernel refuses to upgrade it when the fd is read-only
    /// or sealed with `F_SEAL_FUTURE_WRITE`.
    ReadOnly,
    /// Loads and stores.
    ReadWrite,
}

/// One memory mapping, unmapped on drop.
///
/// Invariants: `ptr` is page aligned, `len > 0`, and `ptr..ptr + len` stays mapped until `drop`
/// (read-write unless `access` says otherwise). When the mapping is over a memfd the memfd is
/// sealed against shrinking, so no other holder of the fd can truncate it under us (which would
/// turn our reads into SIGBUS).
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    fd: Option<OwnedFd>,
    backing: Backing,
    access: Access,
}

// SAFETY:
// 1. `Mapping` owns its region exclusively (nobody else unmaps it) and exposes it only through raw
//    pointers; all access goes through the arena code, which synchronises with atomics.
// 2. An mmap region is not tied to the thread that created it.
#[allow(unsafe_code)]
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only hands out the base pointer and length; see the `Send` reasoning.
#[allow(unsafe_code)]
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes (rounded up to a page) of zeroed memory from `backing`.
    /// [`Backing::File`] is not a valid request here: see [`Mapping::file`].
    pub fn new(backing: Backing, name: &str, len: usize) -> Result<Self, MemoryError> {
        let len = round_to(len.max(1), page_size());
        match backing {
            Backing::Heap | Backing::File => Self::anonymous(len),
            Backing::Memfd => Self::memfd(name, len, MemfdFlags::empty(), Backing::Memfd),
            Backing::HugePages => {
                let huge = round_to(len, HUGE_PAGE);
                match Self::memfd(
                    name,
                    huge,
                    MemfdFlags::HUGETLB | MemfdFlags::HUGE_2MB,
                    backing,
                ) {
                    Ok(map) => Ok(map),
                    Err(e) => {
                        warn_no_huge_pages(&e);
                        Self::memfd(name, len, MemfdFlags::empty(), Backing::Memfd)
                    }
                }
            }
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
        Ok(Mapping {
            ptr,
            len,
            fd: None,
            backing: Backing::Heap,
            access: Access::ReadWrite,
        })
    }

    fn memfd(
        name: &str,
        len: usize,
        flags: MemfdFlags,
        backing: Backing,
    ) -> Result<Self, MemoryError> {
        let memfd_err = |e: rustix::io::Errno| MemoryError::Memfd { source: e.into() };
        let fd = rustix::fs::memfd_create(
            name,
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING | flags,
        )
        .map_err(memfd_err)?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(memfd_err)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).map_err(memfd_err)?;
        let mut map = Self::map_fd(&fd, len, Access::ReadWrite, 0)?;
        map.fd = Some(fd);
        map.backing = backing;
        Ok(map)
    }

    /// Maps `len` bytes of a memfd another process shared with us. The caller has checked that
    /// the memfd is sealed against shrinking (see [`is_sealed_against_shrinking`]) and at least
    /// `len` bytes long.
    pub fn attach(fd: OwnedFd, len: usize, access: Access) -> Result<Self, MemoryError> {
        let mut map = Self::map_fd(&fd, len, access, 0)?;
        map.fd = Some(fd);
        map.backing = Backing::Memfd;
        Ok(map)
    }

    /// Maps `len` bytes of a regular file from `offset` (a multiple of the page size), shared,
    /// so writes reach the file; `populate` faults every page in now (one syscall instead of a
    /// fault per page). If another process truncates the file, touching the lost pages raises
    /// SIGBUS: guard the mapping with `sigbus::register` before touching it.
    pub fn file(
        file: &std::fs::File,
        offset: u64,
        len: usize,
        access: Access,
        populate: bool,
    ) -> Result<Self, MemoryError> {
        let extra = if populate {
            MapFlags::POPULATE
        } else {
            MapFlags::empty()
        };
        let mut map = Self::map_fd_with(file, len.max(1), access, offset, extra)?;
        map.backing = Backing::File;
        Ok(map)
    }

    fn map_fd(fd: impl AsFd, len: usize, access: Access, offset: u64) -> Result<Self, MemoryError> {
        Self::map_fd_with(fd, len, access, offset, MapFlags::empty())
    }

    fn map_fd_with(
        fd: impl AsFd,
        len: usize,
        access: Access,
        offset: u64,
        extra: MapFlags,
    ) -> Result<Self, MemoryError> {
        let prot = match access {
            Access::ReadOnly => ProtFlags::READ,
            Access::ReadWrite => ProtFlags::READ | ProtFlags::WRITE,
        };
        // SAFETY:
        // 1. A null hint lets the kernel choose the address, so no existing mapping is replaced.
        // 2. For memfds: the caller made sure the memfd is at least `len` bytes and sealed
        //    against shrinking, so every page stays backed while mapped. For files: see `file`.
        // 3. The region is owned by the new `Mapping` and unmapped exactly once in `drop`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                MapFlags::SHARED | extra,
                fd,
                offset,
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
            fd: None,
            backing: Backing::Heap,
            access,
        })
    }

    /// Seals the memfd so that nobody (this process included) can create a new writable mapping
    /// of it or `write` to it; existing writable mappings keep working. A peer given the fd can
    /// then only ever map it read-only.
    pub fn seal_future_write(&self) -> Result<(), MemoryError> {
        let fd = self
            .fd
            .as_ref()
            .ok_or(MemoryError::Limit("only a memfd can be sealed"))?;
        rustix::fs::fcntl_add_seals(fd, SealFlags::FUTURE_WRITE)
            .map_err(|e| MemoryError::Memfd { source: e.into() })
    }

    /// Asks the kernel to fault the whole mapping in now rather than page by page.
    pub fn populate(&self) {
        // SAFETY: the range is exactly this mapping; MADV_WILLNEED does not change its contents.
        let _ = unsafe {
            rustix::mm::madvise(
                self.ptr.as_ptr().cast(),
                self.len,
                rustix::mm::Advice::WillNeed,
            )
        };
    }

    /// Maps every page of the mapping in now, reading it from the file if needed, so the loads
    /// that follow take no page fault: what `populate` does at map time, for a mapping whose
    /// pages turn out to be read after all. A page that cannot be mapped (a file truncated
    /// meanwhile) is left alone; touching it faults as it would have anyway.
    pub fn populate_read(&self) {
        // SAFETY: the range is exactly this mapping; MADV_POPULATE_READ only maps its pages
        // (like the loads that follow would) and changes no byte.
        let populated = unsafe {
            rustix::mm::madvise(
                self.ptr.as_ptr().cast(),
                self.len,
                rustix::mm::Advice::LinuxPopulateRead,
            )
        };
        if populated == Err(rustix::io::Errno::INVAL) {
            // Before Linux 5.14: read ahead at least, and take the faults.
            self.populate();
        }
    }

    /// Base address of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes: a multiple of the page size, except for a file mapping (the length asked
    /// for; the kernel maps the rest of the last page).
    pub fn len(&self) -> usize {
        self.len
    }

    /// The mapped bytes of a file mapping, read-only.
    ///
    /// Only for [`Backing::File`] mappings, whose bytes no atomics share: arena mappings are read
    /// through the arena's bounds-checked accessors instead.
    pub(super) fn bytes(&self) -> &[u8] {
        debug_assert_eq!(self.backing, Backing::File);
        // SAFETY:
        // 1. ptr..ptr + len is mapped readable for the life of self.
        // 2. File mappings hold no atomics; another process may change the bytes (values, never
        //    addresses), and a truncation is turned into zero pages by `sigbus`.
        // 3. The borrow is tied to &self.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr(), self.len)
        }
    }

    /// The mapped bytes of a read-write file mapping; `None` when read-only.
    pub(super) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        if self.access != Access::ReadWrite {
            return None;
        }
        debug_assert_eq!(self.backing, Backing::File);
        // SAFETY: as `bytes`, and &mut self is the only borrow of the mapping.
        #[allow(unsafe_code)]
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) })
    }

    /// Always false: a mapping is at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd behind the mapping, to hand to another process; `None` for heap mappings.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// What the pages come from (after any fallback).
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// Whether stores are allowed.
    pub fn access(&self) -> Access {
        self.access
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

fn round_to(len: usize, unit: usize) -> usize {
    len.div_ceil(unit) * unit
}

/// Whether `fd` carries `F_SEAL_SHRINK`, so that mapping it cannot SIGBUS on a later truncate.
pub fn is_sealed_against_shrinking(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(SealFlags::SHRINK))
}

fn warn_no_huge_pages(e: &MemoryError) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "parallax: warning: huge pages unavailable ({e}); using normal pages \
             (reserve some with: sysctl vm.nr_hugepages=N)"
        );
    });
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
