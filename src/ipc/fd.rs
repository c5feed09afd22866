//! Borrowing file descriptors that the process inherited (`fdsrc fd=0`, `fdsink fd=1`).

use std::os::fd::BorrowedFd;

use rustix::fs::FileType;

/// What kind of file an fd refers to; decides whether reads need `poll` to be interruptible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A regular file or block device: reads never block for long.
    File,
    /// A pipe, FIFO, socket, terminal or other character device: reads may block forever.
    Stream,
}

impl FdKind {
    /// Classifies an open fd.
    pub fn of(fd: BorrowedFd<'_>) -> std::io::Result<FdKind> {
        let st = rustix::fs::fstat(fd)?;
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile | FileType::BlockDevice => FdKind::File,
            _ => FdKind::Stream,
        })
    }
}

/// Borrows inherited descriptor `fd` for the rest of the process's life, after checking that it
/// is open. Parallax never closes descriptors it did not open, so the borrow stays valid.
pub fn inherited(fd: i32) -> std::io::Result<BorrowedFd<'static>> {
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(
            rustix::io::Errno::BADF.raw_os_error(),
        ));
    }
    // SAFETY:
    // 1. `borrow_raw` needs `fd` to stay open for 'static. We check right below that it is open
    //    (F_GETFD fails with EBADF otherwise, and no other access happens before the check).
    // 2. Nothing in Parallax closes a descriptor it did not open itself (elements own the files
    //    they open through `OwnedFd`/`File`), so an inherited fd stays open until exit.
    #[allow(unsafe_code)]
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(borrowed)?;
    Ok(borrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_like_fds_are_classified_and_bad_fds_refused() {
        let f = tempfile::tempfile().unwrap();
        use std::os::fd::AsFd;
        assert_eq!(FdKind::of(f.as_fd()).unwrap(), FdKind::File);
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(FdKind::of(r.as_fd()).unwrap(), FdKind::Stream);
        assert!(inherited(-1).is_err());
        assert!(inherited(1_000_000).is_err());
    }
}
