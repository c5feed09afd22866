//! How buffers cross from one thread to the next: a shared (many-sender) kanal channel for
//! funnels, selectors, leaky queues and async ends, and a one-sender, one-receiver ring for the
//! common `queue` between two threads.
//!
//! The ring is what makes a queue cheap. A shared channel takes a lock for every buffer, on a
//! cache line both threads write, so each hand-over moves that line between cores. The ring
//! ([`rtrb`]) has a head only the reader writes and a tail only the writer writes, each side
//! caching the other's, so a reader that is behind takes a whole run of buffers for one look
//! at the tail: hand-overs batch by themselves when the consumer lags. Neither side sleeps
//! while there is work; a side that must wait says so in [`Park`] and is woken only then.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use kanal::{Receiver, Sender};

use super::segment::{Item, Level};

/// How long a parked side sleeps before it looks again on its own (a stop, a pause, the other
/// side gone): wake-ups do not depend on it, it only bounds a missed signal's cost.
const PARK: Duration = Duration::from_millis(50);

/// Looks at an empty ring this many times before parking: a reader about as fast as its writer
/// finds the next buffers within them and never pays for a sleep and a wake-up.
const LOOKS: u32 = 24;

/// Pauses between two looks at an empty ring. Each look reads the writer's tail, taking its
/// cache line away from the writer, which must then fetch it back to push: a reader that
/// watched the tail without pause would cost the writer a miss per buffer. Pausing lets the
/// writer push a run of buffers undisturbed, which the reader then takes with one look.
const PAUSES: u32 = 48;

/// Looks for `ready` [`LOOKS`] times, [`PAUSES`] spins apart: true as soon as it holds, false
/// when the side should park instead.
#[inline]
fn spin_until(mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..LOOKS {
        for _ in 0..PAUSES {
            std::hint::spin_loop();
        }
        if ready() {
            return true;
        }
    }
    false
}

/// How often (in buffers) the writer of a ring takes a fresh look at the reader's counts for
/// the queue's high-water mark, besides every time it finds the queue full.
const LOOK_EVERY: u64 = 64;

/// A side of a ring that waits says so here; the other side wakes it only then.
#[derive(Default)]
struct Park {
    /// The reader waits for a buffer.
    reader: Flag,
    /// The writer waits for room.
    writer: Flag,
    lock: Mutex<()>,
    wake: Condvar,
}

/// A flag on its own cache line: each is written only by the side that waits, and read on
/// every hand-over by the other.
#[derive(Default)]
#[repr(align(128))]
struct Flag {
    waiting: AtomicBool,
    gone: AtomicBool,
}

impl Park {
    /// Wakes the other side if `flag` says it waits. The fence orders the caller's hand-over
    /// (a push, a pop) before the look at the flag, and pairs with the fence in [`Park::wait`]:
    /// either the waiter sees the hand-over or this sees the waiter.
    #[inline]
    fn wake_if(&self, flag: &Flag) {
        if self.is_waiting(flag) {
            self.wake(flag);
        }
    }

    /// Wakes the side that waits on `flag` and lowers the flag for it: the hand-overs that
    /// follow, until that side runs again, then do not wake it once more each. (Before, a
    /// writer paid a wake-up system call for every buffer it pushed while its reader was
    /// waking: W3 took one every 7 buffers.) Under the lock, so the waiter is either asleep
    /// and woken, or has not yet raised the flag and will see the hand-over when it does.
    #[cold]
    fn wake(&self, flag: &Flag) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        flag.waiting.store(false, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// Whether `flag`'s side waits, looked at after the caller's hand-over (see
    /// [`Park::wake_if`]).
    #[inline]
    fn is_waiting(&self, flag: &Flag) -> bool {
        fence(Ordering::SeqCst);
        flag.waiting.load(Ordering::Relaxed)
    }

    #[cold]
    fn wake_now(&self) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_all();
    }

    /// Sleeps on `flag` until woken or [`PARK`] passes, unless `ready` holds once the flag is
    /// up (the other side acted meanwhile).
    #[cold]
    fn wait(&self, flag: &Flag, ready: impl Fn() -> bool) {
        let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        flag.waiting.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !ready() {
            let _unused = self
                .wake
                .wait_timeout(guard, PARK)
                .unwrap_or_else(|p| p.into_inner());
        }
        flag.waiting.store(false, Ordering::Relaxed);
    }
}

/// A ring of `capacity` items whose fill `level` counts (a queue's limits and stats).
pub(super) fn ring(capacity: usize, level: Arc<Level>) -> (RingTx, RingRx) {
    let capacity = capacity.max(1);
    let (tx, rx) = rtrb::RingBuffer::new(capacity);
    let park = Arc::new(Park::default());
    let resume = (capacity / 4).max(1);
    (
        RingTx {
            tx,
            park: Arc::clone(&park),
            level: Arc::clone(&level),
            pushed: 0,
            pushed_bytes: 0,
            seen_bytes: 0,
            high_water: 0,
            resume,
        },
        RingRx {
            rx,
            park,
            level,
            popped: 0,
            popped_bytes: 0,
            resume,
        },
    )
}

/// The writing end of a ring: one thread's `Send` op.
pub(super) struct RingTx {
    tx: rtrb::Producer<Item>,
    park: Arc<Park>,
    level: Arc<Level>,
    /// What this side put in, in all (it alone writes the level's counts of it).
    pushed: u64,
    pushed_bytes: u64,
    /// The reader's byte count at the last look: never more than the truth, so the queue is
    /// never taken for emptier than it is.
    seen_bytes: u64,
    high_water: u64,
    /// Free slots the writer waits for once it found the ring full: a quarter of it.
    /// Resuming at the first free slot would make the writer look at the reader's head for
    /// every buffer while the reader writes it for every buffer, moving that cache line
    /// between the cores twice a buffer; with room for a run, the writer pushes the run on
    /// its cached copy of the head and the reader pops undisturbed.
    resume: usize,
}

/// What a blocking hand-over found.
pub(super) enum Sent {
    Done,
    /// The reader is gone: nothing more goes in.
    Gone,
    /// The pipeline stops.
    Stopped,
}

impl RingTx {
    fn byte_limit_reached(&mut self) -> bool {
        let max = self.level.max_bytes();
        if max == 0 || self.pushed_bytes - self.seen_bytes < max {
            return false;
        }
        self.look();
        self.pushed_bytes - self.seen_bytes >= max
    }

    /// Takes a fresh look at what the reader took, for the byte limit and the high-water mark.
    fn look(&mut self) {
        self.seen_bytes = self.level.popped().1;
        // From the ring's own indices: the reader's counts follow its head a moment later.
        let fill = (self.tx.buffer().capacity() - self.tx.slots()) as u64;
        if fill > self.high_water {
            self.high_water = fill;
            self.level.raise_high_water(fill);
        }
    }

    fn is_gone(&self) -> bool {
        self.park.reader.gone.load(Ordering::Acquire) || self.tx.is_abandoned()
    }

    /// Whether there is room to resume: [`RingTx::resume`] free slots, and the byte limit not
    /// reached.
    fn has_room(&mut self) -> bool {
        self.tx.slots() >= self.resume && !self.byte_limit_reached()
    }

    /// Puts `item` in, waiting while the queue is full. `run` says when to stop waiting (a
    /// stop, a pause); without it (end of stream, caps) only the reader's end stops the wait.
    pub(super) fn send(&mut self, item: Item, run: Option<&super::RunControl>) -> Sent {
        let len = match &item {
            Item::Buffer(buf) => Some(buf.len() as u64),
            _ => None,
        };
        let mut item = item;
        loop {
            if self.is_gone() {
                return Sent::Gone;
            }
            if !self.byte_limit_reached() {
                match self.tx.push(item) {
                    Ok(()) => break,
                    Err(rtrb::PushError::Full(back)) => item = back,
                }
            }
            // Full: the high-water mark is the capacity, or what the bytes allowed.
            self.look();
            if let Some(run) = run {
                if run.is_stopping() {
                    return Sent::Stopped;
                }
                run.hold_if_paused();
            }
            // A few looks first, pausing between them as the reader does for buffers; the
            // writer parks only when none found room (or the reader gone).
            if spin_until(|| self.is_gone() || self.has_room()) {
                continue;
            }
            let resume = self.resume;
            let max = self.level.max_bytes();
            let (tx, level, pushed_bytes) = (&self.tx, &self.level, self.pushed_bytes);
            self.park.wait(&self.park.writer, || {
                let bytes_ok = max == 0 || pushed_bytes - level.popped().1 < max;
                bytes_ok && tx.slots() >= resume
            });
        }
        if let Some(len) = len {
            self.pushed += 1;
            self.pushed_bytes += len;
            self.level.set_pushed(self.pushed, self.pushed_bytes);
            if self.pushed % LOOK_EVERY == 0 {
                self.look();
            }
        }
        self.park.wake_if(&self.park.reader);
        Sent::Done
    }
}

impl Drop for RingTx {
    fn drop(&mut self) {
        self.park.writer.gone.store(true, Ordering::Release);
        self.park.wake_now();
    }
}

/// The reading end of a ring: a queue's thread.
pub(super) struct RingRx {
    rx: rtrb::Consumer<Item>,
    park: Arc<Park>,
    level: Arc<Level>,
    popped: u64,
    popped_bytes: u64,
    /// The writer's [`RingTx::resume`]: a waiting writer is woken once that many slots are
    /// free, not at each buffer taken.
    resume: usize,
}

impl RingRx {
    fn writer_gone(&self) -> bool {
        self.park.writer.gone.load(Ordering::Acquire) || self.rx.is_abandoned()
    }

    fn took(&mut self, item: Item) -> Item {
        if let Item::Buffer(buf) = &item {
            self.popped += 1;
            self.popped_bytes += buf.len() as u64;
            self.level.set_popped(self.popped, self.popped_bytes);
        }
        if self.park.is_waiting(&self.park.writer)
            && self.rx.buffer().capacity() - self.rx.slots() >= self.resume
        {
            self.park.wake(&self.park.writer);
        }
        item
    }

    /// The next item, waiting for it; `None` once the writer is gone and the ring is empty.
    pub(super) fn recv(&mut self) -> Option<Item> {
        loop {
            if let Ok(item) = self.rx.pop() {
                return Some(self.took(item));
            }
            if spin_until(|| !self.rx.is_empty()) {
                continue;
            }
            if self.writer_gone() {
                // What it wrote before it went is still read.
                return self.rx.pop().ok().map(|item| self.took(item));
            }
            let (rx, park) = (&self.rx, &self.park);
            park.wait(&park.reader, || {
                !rx.is_empty() || park.writer.gone.load(Ordering::Acquire)
            });
        }
    }

    fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Drops what is queued and tells the writer nothing more is read.
    fn close(&mut self) {
        self.park.reader.gone.store(true, Ordering::Release);
        while let Ok(item) = self.rx.pop() {
            drop(self.took(item));
        }
        self.park.wake_now();
    }
}

impl Drop for RingRx {
    fn drop(&mut self) {
        self.close();
    }
}

/// The sending end of a thread's output channel.
pub(super) enum ChanTx {
    Shared(Sender<Item>),
    Ring(RingTx),
}

impl ChanTx {
    /// Sends a caps change or the end of stream (waiting for room); false when the reader is
    /// gone.
    pub(super) fn send_event(&mut self, item: Item) -> bool {
        match self {
            ChanTx::Shared(tx) => tx.send(item).is_ok(),
            ChanTx::Ring(tx) => matches!(tx.send(item, None), Sent::Done),
        }
    }

    /// Whether the reader is gone.
    pub(super) fn is_disconnected(&self) -> bool {
        match self {
            ChanTx::Shared(tx) => tx.is_disconnected(),
            ChanTx::Ring(tx) => tx.is_gone(),
        }
    }
}

/// The receiving end of a thread's input channel.
pub(super) enum ChanRx {
    Shared(Receiver<Item>),
    Ring(RingRx),
}

impl ChanRx {
    /// The next item, waiting for it; `None` when every sender left (without end of stream,
    /// or after it).
    pub(super) fn recv(&mut self) -> Option<Item> {
        match self {
            ChanRx::Shared(rx) => rx.recv().ok(),
            ChanRx::Ring(rx) => rx.recv(),
        }
    }

    /// An item if one is queued, without waiting (shared channels only: a ring is read by
    /// [`ChanRx::recv`]).
    pub(super) fn try_recv(&self) -> Option<Item> {
        match self {
            ChanRx::Shared(rx) => rx.try_recv().ok().flatten(),
            ChanRx::Ring(_) => None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            ChanRx::Shared(rx) => rx.is_empty(),
            ChanRx::Ring(rx) => rx.is_empty(),
        }
    }

    pub(super) fn close(&mut self) {
        match self {
            ChanRx::Shared(rx) => {
                let _ = rx.close();
            }
            ChanRx::Ring(rx) => rx.close(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Buffer;

    fn buf(n: usize) -> Item {
        Item::Buffer(Buffer::from_vec(vec![0u8; n]))
    }

    #[test]
    fn every_item_crosses_once_and_in_order_while_both_sides_park() {
        let level = Level::new(0);
        let (mut tx, mut rx) = ring(4, Arc::clone(&level));
        let reader = std::thread::spawn(move || {
            let mut lens = Vec::new();
            while let Some(item) = rx.recv() {
                match item {
                    Item::Buffer(b) => lens.push(b.len()),
                    Item::Eos => break,
                    Item::Caps(_) => {}
                }
            }
            lens
        });
        for n in 1..=10_000 {
            assert!(matches!(tx.send(buf(n % 7), None), Sent::Done));
        }
        assert!(tx.send_eos());
        let lens = reader.join().unwrap();
        assert_eq!(lens.len(), 10_000);
        assert!(lens.iter().enumerate().all(|(i, &l)| l == (i + 1) % 7));
        assert_eq!(level.now().0, 0);
        assert!(level.high_water.load(Ordering::Relaxed) <= 4);
    }

    #[test]
    fn the_byte_limit_holds_the_writer_back_until_the_reader_takes() {
        let level = Level::new(100);
        let (mut tx, mut rx) = ring(64, Arc::clone(&level));
        assert!(matches!(tx.send(buf(60), None), Sent::Done));
        assert!(matches!(tx.send(buf(60), None), Sent::Done));
        // 120 bytes queued, over 100: the next waits until the reader takes one.
        let writer = std::thread::spawn(move || {
            let sent = matches!(tx.send(buf(60), None), Sent::Done);
            (sent, tx)
        });
        let first = rx.recv();
        assert!(matches!(first, Some(Item::Buffer(ref b)) if b.len() == 60));
        let (sent, tx) = writer.join().unwrap();
        assert!(sent);
        assert_eq!(level.now(), (2, 120));
        drop(tx);
        assert!(rx.recv().is_some() && rx.recv().is_some());
        assert!(rx.recv().is_none(), "the writer is gone and the ring empty");
    }

    #[test]
    fn a_closed_reader_drops_what_is_queued_and_ends_the_writer() {
        let level = Level::new(0);
        let (mut tx, mut rx) = ring(2, Arc::clone(&level));
        assert!(matches!(tx.send(buf(1), None), Sent::Done));
        assert!(matches!(tx.send(buf(1), None), Sent::Done));
        let writer = std::thread::spawn(move || matches!(tx.send(buf(1), None), Sent::Gone));
        rx.close();
        assert!(
            writer.join().unwrap(),
            "a full ring's writer sees the reader go"
        );
        assert_eq!(level.now().0, 0);
    }

    impl RingTx {
        fn send_eos(&mut self) -> bool {
            matches!(self.send(Item::Eos, None), Sent::Done)
        }
    }
}
