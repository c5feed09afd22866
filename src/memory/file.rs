//! Files as memory: [`MappedFileSegment`] maps a whole file, and [`FileWindows`] serves a file as
//! buffers that point straight into the page cache (the zero-copy `filesrc`).
//!
//! A buffer over a window also knows where its bytes sit in the file ([`FileExtent`]): the mapping
//! is the file's page cache and buffers are immutable, so a sink may have the kernel copy those
//! bytes from the file itself (`copy_file_range`) and get exactly what a write from the mapping
//! would have written.
//!
//! A mapped file can shrink under us (another process truncates it); touching a page past the
//! new end raises SIGBUS. [`super::sigbus`] turns such a fault inside one of our windows into a
//! page of zeros and a flag, and [`FileWindows`] reports the truncation as an error, so the
//! process never dies of it and never passes the zeros off as the file's contents.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::sigbus::{self, Registration};
use super::sys::{page_size, Access, Mapping};
use super::{Buffer, MemoryError};

/// A whole regular file mapped shared: writes through a read-write segment reach the file.
#[derive(Debug)]
pub struct MappedFileSegment {
    /// Dropped before `map` (see [`Window`]): the registration ends before the unmap.
    guard: Registration,
    map: Mapping,
    len: usize,
}

impl MappedFileSegment {
    /// Creates (or truncates) `path` to `len` bytes and maps it read-write.
    pub fn create(path: &Path, len: usize) -> Result<MappedFileSegment, MemoryError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|source| MemoryError::File {
                path: path.display().to_string(),
                source,
            })?;
        file.set_len(len as u64)
            .map_err(|source| MemoryError::File {
                path: path.display().to_string(),
                source,
            })?;
        Self::map(&file, path, Access::ReadWrite)
    }

    /// Maps an existing file read-write.
    pub fn open(path: &Path) -> Result<MappedFileSegment, MemoryError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| MemoryError::File {
                path: path.display().to_string(),
                source,
            })?;
        Self::map(&file, path, Access::ReadWrite)
    }

    /// Maps an existing file read-only.
    pub fn open_readonly(path: &Path) -> Result<MappedFileSegment, MemoryError> {
        let file = File::open(path).map_err(|source| MemoryError::File {
            path: path.display().to_string(),
            source,
        })?;
        Self::map(&file, path, Access::ReadOnly)
    }

    fn map(file: &File, path: &Path, access: Access) -> Result<MappedFileSegment, MemoryError> {
        let len = file
            .metadata()
            .map_err(|source| MemoryError::File {
                path: path.display().to_string(),
                source,
            })?
            .len();
        let len = usize::try_from(len)
            .map_err(|_| MemoryError::Limit("the file is too large to map on this machine"))?;
        let map = Mapping::file(file, 0, len, access, false)?;
        let guard = sigbus::register(&map, None)?;
        Ok(MappedFileSegment { map, len, guard })
    }

    /// The file's bytes. If the file was truncated meanwhile, the lost part reads as zeros and
    /// [`Self::was_truncated`] turns true.
    pub fn bytes(&self) -> &[u8] {
        &self.map.bytes()[..self.len]
    }

    /// The file's bytes, writable (read-write segments only).
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        let len = self.len;
        self.map.bytes_mut().map(|b| &mut b[..len])
    }

    /// Length of the file when mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a page of the mapping vanished (the file shrank) and was read as zeros.
    pub fn was_truncated(&self) -> bool {
        self.guard.hit()
    }
}

/// The open file that [`FileWindows`] maps (read-only), shared by its windows and by the buffers
/// over them: cloning is an atomic increment. It keeps the file open after the windows are
/// unmapped, so a sink can still copy from it.
#[derive(Debug, Clone)]
pub struct SourceFile(Arc<SourceFileInner>);

#[derive(Debug)]
struct SourceFileInner {
    file: File,
    path: String,
}

impl SourceFile {
    /// The file's name, as the user gave it (for error messages).
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// Whether both handles are the same open file.
    pub fn same_as(&self, other: &SourceFile) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl AsFd for SourceFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.file.as_fd()
    }
}

/// Where a file-backed buffer's bytes are in their file: `len` bytes from `offset`. The file
/// held exactly these bytes when they were mapped, and still does unless someone else writes
/// to it or truncates it (which the mapping would show too).
#[derive(Debug, Clone, Copy)]
pub struct FileExtent<'a> {
    /// The file.
    pub file: &'a SourceFile,
    /// Absolute offset of the buffer's first byte in the file.
    pub offset: u64,
    /// Length of the buffer.
    pub len: usize,
}

/// One mapped window of a file, alive while any buffer points into it.
pub(super) struct Window {
    /// Declared (so dropped) before `map`: the SIGBUS registration must end before the unmap,
    /// or the handler could map its zero page over whatever reuses the address.
    guard: Registration,
    map: Mapping,
    file: SourceFile,
    /// Offset in the file of the window's first byte.
    start: u64,
    /// Whether the pages are mapped in yet (see [`Window::bytes`]).
    populated: AtomicBool,
    /// Shared with [`FileWindows`]: set when anyone reads a window's bytes through its mapping.
    read: Arc<AtomicBool>,
    /// Given back when the window goes, so that at most `max_windows` are mapped at once.
    token: kanal::Sender<()>,
}

impl Window {
    /// The window's bytes. Unless the window was populated when it was mapped, the first call
    /// maps all its pages in at once (one call instead of a page fault per 16 pages): a window
    /// that is only ever copied by the kernel from the file never pays for page tables it does
    /// not use.
    pub(super) fn bytes(&self) -> &[u8] {
        if !self.populated.load(Ordering::Relaxed) {
            // Two threads may both get here; populating twice is harmless.
            self.populated.store(true, Ordering::Relaxed);
            self.read.store(true, Ordering::Relaxed);
            self.map.populate_read();
        }
        self.map.bytes()
    }

    /// Length of the window, without touching it.
    fn len(&self) -> usize {
        self.map.len()
    }

    /// The file, and the absolute offset of byte `at` of the window.
    pub(super) fn extent(&self, at: usize, len: usize) -> FileExtent<'_> {
        FileExtent {
            file: &self.file,
            offset: self.start + at as u64,
            len,
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let _ = self.token.try_send(());
    }
}

/// Serves a regular file as zero-copy buffers, `window_len` bytes mapped at a time and at most
/// `max_windows` windows alive, so memory stays bounded however large the file is: when every
/// window is still referenced downstream, [`FileWindows::next_chunk`] waits (backpressure).
pub struct FileWindows {
    file: SourceFile,
    window_len: usize,
    next: u64,
    /// The largest size seen: a file that shrinks below it was truncated under us.
    seen_size: u64,
    current: Option<(Arc<Window>, u64)>,
    mapped: Vec<std::sync::Weak<Window>>,
    truncated: Arc<AtomicBool>,
    /// Whether any window's bytes were read through the mapping. From then on windows are
    /// populated as they are mapped, in the source's thread, so that a consumer in another
    /// thread finds them ready; until then they are left for the first reader to populate.
    read: Arc<AtomicBool>,
    tokens: kanal::Receiver<()>,
    token_tx: kanal::Sender<()>,
}

impl FileWindows {
    /// Serves `file` (named `what` in errors) from offset 0.
    pub fn new(file: File, what: String, window_len: usize, max_windows: usize) -> FileWindows {
        let window_len = window_len.max(1).next_multiple_of(page_size());
        let (token_tx, tokens) = kanal::bounded(max_windows.max(1));
        for _ in 0..max_windows.max(1) {
            let _ = token_tx.try_send(());
        }
        FileWindows {
            file: SourceFile(Arc::new(SourceFileInner { file, path: what })),
            window_len,
            next: 0,
            seen_size: 0,
            current: None,
            mapped: Vec::new(),
            truncated: Arc::new(AtomicBool::new(false)),
            read: Arc::new(AtomicBool::new(false)),
            tokens,
            token_tx,
        }
    }

    /// The next `max` bytes (fewer at the end of a window or of the file) as a buffer over the
    /// mapping; `None` at end of file. `cancelled` is polled while waiting for a window.
    pub fn next_chunk(
        &mut self,
        max: usize,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Buffer>, MemoryError> {
        self.check_truncation()?;
        let (window, start) = match &self.current {
            Some((w, start)) if self.next < start + w.len() as u64 => (Arc::clone(w), *start),
            _ => match self.map_next(cancelled)? {
                Some(w) => w,
                None => return Ok(None),
            },
        };
        let at = (self.next - start) as usize;
        let len = max.max(1).min(window.len() - at);
        self.next += len as u64;
        Ok(Some(Buffer::from_file_window(window, at, len)))
    }

    fn map_next(
        &mut self,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<(Arc<Window>, u64)>, MemoryError> {
        self.current = None;
        let size = self
            .file
            .0
            .file
            .metadata()
            .map_err(|source| MemoryError::File {
                path: self.file.path().to_owned(),
                source,
            })?
            .len();
        if size < self.seen_size {
            return Err(MemoryError::Truncated {
                path: self.file.path().to_owned(),
            });
        }
        self.seen_size = size;
        if self.next >= size {
            return Ok(None);
        }
        loop {
            match self
                .tokens
                .recv_timeout(std::time::Duration::from_millis(50))
            {
                Ok(()) => break,
                Err(_) if cancelled() => return Err(MemoryError::Cancelled),
                Err(_) => {}
            }
        }
        // Mappings start on a page: after a short last window (the file has grown since),
        // `next` is not on one, so the window starts a little before it.
        let start = self.next - self.next % page_size() as u64;
        let len = (size - start).min(self.window_len as u64) as usize;
        let populate = self.read.load(Ordering::Relaxed);
        let mapped = Mapping::file(&self.file.0.file, start, len, Access::ReadOnly, populate)
            .and_then(|map| {
                let guard = sigbus::register(&map, Some(Arc::clone(&self.truncated)))?;
                Ok((map, guard))
            });
        let (map, guard) = match mapped {
            Ok(m) => m,
            Err(e) => {
                // The window never came to be: its token goes back.
                let _ = self.token_tx.try_send(());
                return Err(MemoryError::File {
                    path: self.file.path().to_owned(),
                    source: std::io::Error::other(e),
                });
            }
        };
        let window = Arc::new(Window {
            map,
            guard,
            file: self.file.clone(),
            start,
            populated: AtomicBool::new(populate),
            read: Arc::clone(&self.read),
            token: self.token_tx.clone(),
        });
        self.mapped.retain(|w| w.strong_count() > 0);
        self.mapped.push(Arc::downgrade(&window));
        self.current = Some((Arc::clone(&window), start));
        Ok(Some((window, start)))
    }

    fn check_truncation(&self) -> Result<(), MemoryError> {
        let hit = self
            .mapped
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .any(|w| w.guard.hit());
        if hit || self.truncated.load(Ordering::Relaxed) {
            return Err(MemoryError::Truncated {
                path: self.file.path().to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn mapped_file_segments_create_open_and_open_readonly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        {
            let mut seg = MappedFileSegment::create(&path, 10).unwrap();
            seg.bytes_mut().unwrap().copy_from_slice(b"0123456789");
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
        let mut rw = MappedFileSegment::open(&path).unwrap();
        rw.bytes_mut().unwrap()[0] = b'x';
        let mut ro = MappedFileSegment::open_readonly(&path).unwrap();
        assert_eq!(ro.bytes(), b"x123456789", "both map the same pages");
        assert!(ro.bytes_mut().is_none());
        assert!(MappedFileSegment::open_readonly(&dir.path().join("nope"))
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }

    #[test]
    fn a_file_truncated_under_its_mapping_reads_zeros_and_says_so() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let page = page_size();
        file.write_all(&vec![7u8; 4 * page]).unwrap();
        let seg = MappedFileSegment::open_readonly(file.path()).unwrap();
        assert_eq!(seg.bytes()[3 * page], 7);
        file.as_file().set_len(page as u64).unwrap();
        // Without the guard this load would kill the test process with SIGBUS.
        let sum: u64 = seg.bytes().iter().map(|&b| u64::from(b)).sum();
        assert_eq!(sum, 7 * page as u64, "the lost pages read as zeros");
        assert!(seg.was_truncated());
    }

    #[test]
    fn windows_serve_the_whole_file_in_chunks_without_copying() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..3 * page_size() + 100).map(|i| i as u8).collect();
        file.write_all(&data).unwrap();
        let mut w = FileWindows::new(file.reopen().unwrap(), "f".into(), page_size(), 2);
        let mut got = Vec::new();
        let mut held = Vec::new();
        while let Some(b) = w.next_chunk(1000, &|| false).unwrap() {
            assert!(b.len() <= 1000);
            got.extend_from_slice(b.data());
            // Hold at most one window's buffers so the two window tokens suffice.
            if held.len() > 2 {
                held.clear();
            }
            held.push(b);
        }
        assert_eq!(got, data);
        let b1 = held.pop().unwrap();
        let b2 = b1.clone();
        assert_eq!(b1.data().as_ptr(), b2.data().as_ptr());
    }

    #[test]
    fn every_buffer_knows_where_its_bytes_are_in_the_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..5 * page_size() + 77).map(|i| (i * 31) as u8).collect();
        file.write_all(&data).unwrap();
        let mut w = FileWindows::new(file.reopen().unwrap(), "f".into(), 2 * page_size(), 2);
        let mut at = 0;
        while let Some(b) = w.next_chunk(1000, &|| false).unwrap() {
            assert!(b.is_scarce(), "a window is one of a few");
            let x = b.file_extent().unwrap();
            assert_eq!((x.offset, x.len), (at, b.len()));
            let mut read = vec![0u8; x.len];
            rustix::io::pread(x.file, &mut read, x.offset).unwrap();
            assert_eq!(read, b.data());
            let s = b.slice(10..20).unwrap();
            assert_eq!(s.file_extent().unwrap().offset, at + 10);
            assert!(s.file_extent().unwrap().file.same_as(x.file));
            assert_eq!(x.file.path(), "f");
            at += b.len() as u64;
        }
        assert_eq!(at, data.len() as u64);
        assert!(Buffer::from_vec(vec![1]).file_extent().is_none());
    }

    #[test]
    fn windows_are_populated_once_someone_reads_them() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&vec![3u8; 4 * page_size()]).unwrap();
        let mut w = FileWindows::new(file.reopen().unwrap(), "f".into(), page_size(), 4);
        let populated = |b: &Buffer| b.window().unwrap().populated.load(Ordering::Relaxed);
        // Copied by the kernel, never read: nothing is populated.
        let first = w.next_chunk(page_size(), &|| false).unwrap().unwrap();
        let second = w.next_chunk(page_size(), &|| false).unwrap().unwrap();
        assert!(!populated(&first) && !populated(&second));
        // The first read populates its window, and windows mapped later come populated.
        assert_eq!(second.data()[0], 3);
        assert!(populated(&second) && !populated(&first));
        let third = w.next_chunk(page_size(), &|| false).unwrap().unwrap();
        assert!(populated(&third));
    }

    #[test]
    fn a_file_that_grows_after_its_unaligned_end_is_read_on() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let first: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        file.write_all(&first).unwrap();
        let mut w = FileWindows::new(file.reopen().unwrap(), "f".into(), 1 << 20, 2);
        let mut got = Vec::new();
        while let Some(b) = w.next_chunk(1 << 20, &|| false).unwrap() {
            got.extend_from_slice(b.data());
        }
        assert_eq!(got, first);
        let more: Vec<u8> = (0..7000u32).map(|i| (i * 7) as u8).collect();
        file.write_all(&more).unwrap();
        while let Some(b) = w.next_chunk(1 << 20, &|| false).unwrap() {
            got.extend_from_slice(b.data());
        }
        assert_eq!(got.len(), 12_000);
        assert_eq!(&got[5000..], &more[..]);
    }

    #[test]
    fn a_window_wait_ends_when_cancelled() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&vec![1u8; 2 * page_size()]).unwrap();
        let mut w = FileWindows::new(file.reopen().unwrap(), "f".into(), page_size(), 1);
        let first = w.next_chunk(page_size(), &|| false).unwrap().unwrap();
        assert!(matches!(
            w.next_chunk(page_size(), &|| true),
            Err(MemoryError::Cancelled)
        ));
        drop(first);
        assert!(w.next_chunk(page_size(), &|| false).unwrap().is_some());
    }
}
