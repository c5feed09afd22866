//! The head of a stream that validation read from a source that cannot be read twice, lent
//! back to that source for the run.
//!
//! Caps are fixed when the description is validated, and `typefind` and `decodebin` learn
//! them from a stream's first bytes. A regular file can be read again at run time; a pipe, a
//! FIFO or a terminal cannot. So validation reads the head through a [`LentHead`] attached
//! to the source (its `Props::attached`), which keeps every byte it read, in order; the
//! source takes them back when it is built and passes exactly those bytes first, then reads
//! on from where validation stopped. Nothing is lost and nothing is read twice.
//!
//! A source that can be read twice (a URL, fetched again) lends a head too, but keeps none of
//! it: validation closes what it opened ([`LentHead::close`]) and the run starts afresh.

use std::io::Read;
use std::sync::Mutex;

/// Opens the stream, the first time its head is wanted (a FIFO's open waits for a writer).
pub type Opener = Box<dyn FnOnce() -> std::io::Result<Lender> + Send>;

/// What a lent head is read from.
pub enum Lender {
    /// An open file (a duplicate of the source's descriptor, or a FIFO the source will go on
    /// reading: a FIFO opened again would not report its writer's hang-up).
    File(std::fs::File),
    /// Anything else (a throwaway instance of a source that reads its stream twice).
    Reader(Box<dyn Read + Send>),
}

impl Lender {
    fn reader(&mut self) -> &mut dyn Read {
        match self {
            Lender::File(f) => f,
            Lender::Reader(r) => r,
        }
    }
}

/// The first bytes of a source's stream, read at validation and kept for the run.
pub struct LentHead {
    state: Mutex<State>,
    /// The source reads its stream again at run time (an HTTP download): the head is only
    /// validation's, closed once validation is done.
    rereads: bool,
}

struct State {
    /// Every byte read so far, from the stream's start.
    bytes: Vec<u8>,
    from: From,
    /// The stream ended within `bytes`.
    ended: bool,
    /// Closed after validation: the source reads its stream again.
    closed: bool,
}

enum From {
    /// Not opened yet.
    Opener(Opener),
    Open(Lender),
    /// Taken back by the source, or closed after validation.
    Closed,
}

impl std::fmt::Debug for LentHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.state.lock().map_or(0, |s| s.bytes.len());
        f.debug_struct("LentHead").field("held", &held).finish()
    }
}

impl LentHead {
    /// A head read from what `open` gives, once something asks for it, and passed on to the
    /// source at run time.
    pub fn new(open: Opener) -> LentHead {
        LentHead {
            rereads: false,
            state: Mutex::new(State {
                bytes: Vec::new(),
                from: From::Opener(open),
                ended: false,
                closed: false,
            }),
        }
    }

    /// The first `len` bytes of the stream (fewer when it ends sooner), reading what is not
    /// held yet: this waits for a pipe's writer, as typefinding waits for data.
    pub fn head(&self, len: usize) -> std::io::Result<Vec<u8>> {
        let mut s = self.state.lock().expect("no reader panics holding it");
        while s.bytes.len() < len && !s.ended {
            let want = len - s.bytes.len();
            s.read_more(want)?;
        }
        Ok(s.bytes[..len.min(s.bytes.len())].to_vec())
    }

    /// The whole stream from its start, for a demuxer that must read further to list its
    /// streams: the bytes held, then more (which are held too).
    pub fn reader(&self) -> impl Read + '_ {
        HeadReader { head: self, at: 0 }
    }

    /// Whether the source passes the head at run time (it was not closed after validation).
    pub fn replays(&self) -> bool {
        self.state.lock().is_ok_and(|s| !s.closed)
    }

    /// Bytes held.
    pub fn held(&self) -> usize {
        self.state.lock().map_or(0, |s| s.bytes.len())
    }

    /// The bytes read so far, for the source to pass first, whether the stream ended within
    /// them, and the file they were read from (the source reads on from it, or from its own
    /// descriptor and drops it). Once only: later calls get nothing.
    pub fn take(&self) -> (Vec<u8>, bool, Option<std::fs::File>) {
        let mut s = self.state.lock().expect("no reader panics holding it");
        let file = match std::mem::replace(&mut s.from, From::Closed) {
            From::Open(Lender::File(f)) => Some(f),
            _ => None,
        };
        (std::mem::take(&mut s.bytes), s.ended, file)
    }

    /// A head for validation alone, from a source that reads its stream again at run time:
    /// [`LentHead::close`] drops it once validation is done.
    pub fn rereading(open: Opener) -> LentHead {
        LentHead {
            rereads: true,
            ..LentHead::new(open)
        }
    }

    /// Whether the source reads its stream again at run time (see [`LentHead::rereading`]).
    pub fn rereads(&self) -> bool {
        self.rereads
    }

    /// Drops what validation opened and the bytes held: for a source that reads its stream
    /// again at run time.
    pub fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.from = From::Closed;
            s.bytes = Vec::new();
            s.closed = true;
        }
    }
}

impl State {
    /// Reads up to `want` more bytes (at least one unless the stream ended).
    fn read_more(&mut self, want: usize) -> std::io::Result<()> {
        if let From::Opener(_) = self.from {
            let From::Opener(open) = std::mem::replace(&mut self.from, From::Closed) else {
                unreachable!("matched above")
            };
            self.from = From::Open(open()?);
        }
        let From::Open(lender) = &mut self.from else {
            self.ended = true;
            return Ok(());
        };
        let at = self.bytes.len();
        self.bytes.resize(at + want.clamp(1, 64 * 1024), 0);
        let n = loop {
            match lender.reader().read(&mut self.bytes[at..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A descriptor left non-blocking by whoever passed it: wait for data.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Lender::File(f) = lender {
                        let mut fds = [rustix::event::PollFd::new(f, rustix::event::PollFlags::IN)];
                        let _ = rustix::event::poll(&mut fds, None);
                        continue;
                    }
                    self.bytes.truncate(at);
                    return Err(e);
                }
                Err(e) => {
                    self.bytes.truncate(at);
                    return Err(e);
                }
            }
        };
        self.bytes.truncate(at + n);
        if n == 0 {
            self.ended = true;
        }
        Ok(())
    }
}

struct HeadReader<'a> {
    head: &'a LentHead,
    at: usize,
}

impl Read for HeadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.head.state.lock().expect("no reader panics holding it");
        if self.at >= s.bytes.len() && !s.ended {
            s.read_more(buf.len())?;
        }
        let n = s.bytes.len().saturating_sub(self.at).min(buf.len());
        buf[..n].copy_from_slice(&s.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lent(data: &'static [u8], chunk: usize) -> LentHead {
        /// Gives at most `chunk` bytes a read, as a pipe may.
        struct Dribble(&'static [u8], usize);
        impl Read for Dribble {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(self.1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        LentHead::new(Box::new(move || {
            Ok(Lender::Reader(Box::new(Dribble(data, chunk))))
        }))
    }

    #[test]
    fn the_head_gathers_small_reads_and_stops_at_the_end() {
        let h = lent(b"0123456789", 3);
        assert_eq!(h.head(5).unwrap(), b"01234");
        assert_eq!(h.head(100).unwrap(), b"0123456789");
        assert_eq!(h.take().0, b"0123456789");
        assert_eq!(h.take().0, b"");
    }

    #[test]
    fn the_reader_replays_the_head_then_reads_on_and_keeps_it_all() {
        let h = lent(b"abcdefgh", 2);
        assert_eq!(h.head(3).unwrap(), b"abc");
        let mut all = Vec::new();
        h.reader().read_to_end(&mut all).unwrap();
        assert_eq!(all, b"abcdefgh");
        assert_eq!(h.held(), 8);
        let (bytes, ended, file) = h.take();
        assert_eq!(
            (bytes.as_slice(), ended, file.is_none()),
            (&b"abcdefgh"[..], true, true)
        );
    }
}
