//! The descriptor cache: what the probe child found in each library file, kept between runs so
//! that a start with many plugins installed reads one small file instead of loading every
//! library in a child.
//!
//! One file, `plugins.cache`, in `$PARALLAX_CACHE_DIR`, else `$XDG_CACHE_HOME/parallax`, else
//! `~/.cache/parallax` (`PARALLAX_CACHE_DIR=` empty turns the cache off). It starts with a
//! text line naming the Parallax version and the plugin ABI version that wrote it, then the
//! CRC-32 of the rest, then the entries archived with rkyv. An entry is a library's path, its
//! [`FileId`] when it was read (device, inode, size, modification and change times to the
//! nanosecond) and what was found: a descriptor or the reason it was refused. An entry is used
//! only while the file still has that identity, so a rebuilt or replaced library is read again.
//!
//! Nothing in the file is trusted: another version's header, a wrong checksum, an archive that
//! fails validation (bytecheck) or a file too large makes it count as absent, and it is
//! rewritten. A descriptor from the cache goes through the same checks as a fresh one. Writes
//! go to a temporary file renamed over the old one, so a reader never sees half a cache.

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};

use rkyv::rancor::Error as RkyvError;

use super::{FileId, Said};

/// The cache's file name in its directory.
pub const FILE_NAME: &str = "plugins.cache";
/// A cache larger than this is not read (it is garbage or hostile; 50 plugins take ~50 KiB).
const MAX_BYTES: u64 = 64 << 20;
/// At most this many entries are kept (the files of this run first).
const MAX_ENTRIES: usize = 4096;

/// One library as it was read.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Entry {
    /// The path searched, as bytes.
    path: Vec<u8>,
    /// Its identity then.
    id: FileId,
    /// What the probe found.
    said: Said,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Entries {
    entries: Vec<Entry>,
}

/// What identifies the writer: a cache of another version or ABI is not read.
fn header() -> String {
    format!(
        "parallax {} plugin descriptor cache, ABI {}.{}\n",
        env!("CARGO_PKG_VERSION"),
        super::abi::PX_ABI_VERSION,
        super::abi::PX_ABI_MINOR
    )
}

/// The cache's directory, or `None` when it is off (or no home is known).
pub fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PARALLAX_CACHE_DIR") {
        return (!d.is_empty()).then(|| PathBuf::from(d));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .map(|d| d.join("parallax"))
}

/// The cached entries by path; empty when there is no cache or it is not valid.
pub fn load(dir: &Path) -> HashMap<PathBuf, (FileId, Said)> {
    let mut out = HashMap::new();
    let Some(entries) = read(&dir.join(FILE_NAME)) else {
        return out;
    };
    for e in entries.entries {
        out.insert(
            PathBuf::from(std::ffi::OsString::from_vec(e.path)),
            (e.id, e.said),
        );
    }
    out
}

fn read(file: &Path) -> Option<Entries> {
    let f = std::fs::File::open(file).ok()?;
    let mut bytes = Vec::new();
    f.take(MAX_BYTES + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > MAX_BYTES {
        return None;
    }
    let rest = bytes.strip_prefix(header().as_bytes())?;
    let (crc, body) = rest.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*crc) != crc32fast::hash(body) {
        return None;
    }
    // rkyv reads from aligned memory.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
    rkyv::from_bytes::<Entries, RkyvError>(&aligned).ok()
}

/// Writes `fresh` (this run's files) and the still valid entries of `old` for other files,
/// atomically. Failing to write costs only the next start's speed, so errors are ignored.
pub fn store(
    dir: &Path,
    fresh: Vec<(PathBuf, FileId, Said)>,
    old: HashMap<PathBuf, (FileId, Said)>,
) {
    let mut entries: Vec<Entry> = Vec::with_capacity(fresh.len() + old.len());
    let mut seen = std::collections::HashSet::new();
    for (path, id, said) in fresh {
        if seen.insert(path.clone()) {
            entries.push(Entry {
                path: path.into_os_string().into_vec(),
                id,
                said,
            });
        }
    }
    let mut old: Vec<_> = old.into_iter().collect();
    old.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, (id, said)) in old {
        if entries.len() >= MAX_ENTRIES {
            break;
        }
        // Entries of files that changed or went away are dropped.
        if !seen.contains(&path) && FileId::of(&path).ok() == Some(id) {
            entries.push(Entry {
                path: path.into_os_string().into_vec(),
                id,
                said,
            });
        }
    }
    let _ = write(dir, &Entries { entries });
}

fn write(dir: &Path, entries: &Entries) -> std::io::Result<()> {
    let body = rkyv::to_bytes::<RkyvError>(entries).map_err(std::io::Error::other)?;
    let mut bytes = header().into_bytes();
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    std::fs::create_dir_all(dir)?;
    // A name of this process's own: concurrent starts each write theirs, the last rename wins.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{FILE_NAME}.{}.{nanos}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
        .and_then(|()| std::fs::rename(&tmp, dir.join(FILE_NAME)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    Ok(())
}
