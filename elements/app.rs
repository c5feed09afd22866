//! Application elements: where a program embedding a pipeline pushes buffers in (`appsrc`) and
//! pulls them out (`appsink`), with gst's names and main properties.
//!
//! The program's end is an [`AppQueue`] it attaches to the element by name before the run
//! (`Pipeline::appsrc`, `Pipeline::appsink` hand it out). The queue is bounded both ways: an
//! `appsrc` holds at most `max-bytes` (a push then waits with `block=true`, or is refused with
//! [`AppError::Full`] otherwise: the queue never grows without bound), an `appsink` holds at most
//! `max-buffers` (the streaming thread then waits, or drops the oldest with `drop=true`).
//! End of stream and errors travel in order with the buffers. An element nobody attached a
//! queue to ends its stream at once (`appsrc`) or discards (`appsink`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{basesink_props, basesrc_props};
use crate::element::prelude::*;

// An app element's `caps` works as capsfilter's: what flows, within those caps.
use super::flow::{check_caps, CAPSFILTER_CAPS as APP_CAPS};

/// How often a wait looks at whether the run is stopping.
const WAIT_SLICE: Duration = Duration::from_millis(20);

/// Why a push or pull did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// `block=false` and the queue holds `max-bytes` already.
    #[error("the queue is full ({0} bytes queued)")]
    Full(u64),
    /// The pipeline is gone, or the stream was ended already.
    #[error("the stream is closed")]
    Closed,
}

enum Item {
    Buffer(Buffer),
    Eos,
    Error(String),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    bytes: u64,
    /// No more items will be taken (the element is gone) or given (end of stream pushed).
    closed: bool,
}

/// One end of an `appsrc` or `appsink`: the program's handle and the element share it.
pub struct AppQueue {
    queue: Mutex<Queue>,
    changed: Condvar,
    max_bytes: AtomicU64,
    /// 0: no limit on the number of buffers.
    max_buffers: AtomicU64,
    block: AtomicBool,
    drop_old: AtomicBool,
    dropped: AtomicU64,
    /// Set once the element was built with it (the pipeline is prepared).
    attached: AtomicBool,
}

impl std::fmt::Debug for AppQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppQueue")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for AppQueue {
    fn default() -> AppQueue {
        AppQueue {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            max_bytes: AtomicU64::new(APPSRC_MAX_BYTES),
            max_buffers: AtomicU64::new(0),
            block: AtomicBool::new(true),
            drop_old: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            attached: AtomicBool::new(false),
        }
    }
}

impl AppQueue {
    /// A queue with gst's defaults; the element's properties set its limits when it is built.
    pub fn new() -> Arc<AppQueue> {
        Arc::new(AppQueue::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn full(&self, q: &Queue) -> bool {
        let max_bytes = self.max_bytes.load(Ordering::Relaxed);
        let max_buffers = self.max_buffers.load(Ordering::Relaxed);
        (max_bytes > 0 && q.bytes >= max_bytes)
            || (max_buffers > 0 && q.items.len() as u64 >= max_buffers)
    }

    /// Queues `buf`, waiting for room when the queue is full and `block` is set (backpressure),
    /// refusing it otherwise.
    pub fn push(&self, buf: Buffer) -> Result<(), AppError> {
        let mut q = self.lock();
        loop {
            if q.closed {
                return Err(AppError::Closed);
            }
            if !self.full(&q) {
                break;
            }
            if self.drop_old.load(Ordering::Relaxed) {
                if let Some(Item::Buffer(old)) = q.items.pop_front() {
                    q.bytes -= old.len() as u64;
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            if !self.block.load(Ordering::Relaxed) {
                return Err(AppError::Full(q.bytes));
            }
            q = self.changed.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        q.bytes += buf.len() as u64;
        q.items.push_back(Item::Buffer(buf));
        self.changed.notify_all();
        Ok(())
    }

    /// Queues a copy of `bytes` as one buffer.
    pub fn push_bytes(&self, bytes: &[u8]) -> Result<(), AppError> {
        self.push(Buffer::from_vec(bytes.to_vec()))
    }

    /// Ends the stream after what is queued; later pushes are refused.
    pub fn end_of_stream(&self) -> Result<(), AppError> {
        self.finish(Item::Eos)
    }

    /// Fails the stream with `message` after what is queued (the run ends with an error
    /// naming the element).
    pub fn error(&self, message: impl Into<String>) -> Result<(), AppError> {
        self.finish(Item::Error(message.into()))
    }

    fn finish(&self, last: Item) -> Result<(), AppError> {
        let mut q = self.lock();
        if q.closed {
            return Err(AppError::Closed);
        }
        q.items.push_back(last);
        q.closed = true;
        self.changed.notify_all();
        Ok(())
    }

    /// The next buffer, waiting for it; `None` at end of stream, or once the element is gone
    /// (the pipeline stopped). An error pushed upstream of an appsink ends the run, not this.
    pub fn pull(&self) -> Option<Buffer> {
        self.pull_until(|| false).ok().flatten()
    }

    /// The next buffer, waiting at most `timeout`; `Err(())` when none came in time.
    #[allow(clippy::result_unit_err)]
    pub fn pull_timeout(&self, timeout: Duration) -> Result<Option<Buffer>, ()> {
        let until = std::time::Instant::now() + timeout;
        self.pull_until(|| std::time::Instant::now() >= until)
    }

    /// Every buffer up to end of stream.
    pub fn collect(&self) -> Vec<Buffer> {
        std::iter::from_fn(|| self.pull()).collect()
    }

    /// Buffers dropped by `drop=true` so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Takes the next item; `Err(Some(message))` for an error item, `Err(None)` when `give_up`
    /// said so first.
    fn take(&self, give_up: &dyn Fn() -> bool) -> Result<Option<Buffer>, Option<String>> {
        let mut q = self.lock();
        loop {
            match q.items.pop_front() {
                Some(Item::Buffer(b)) => {
                    q.bytes -= b.len() as u64;
                    self.changed.notify_all();
                    return Ok(Some(b));
                }
                Some(Item::Eos) => return Ok(None),
                Some(Item::Error(m)) => return Err(Some(m)),
                None if q.closed => return Ok(None),
                None if give_up() => return Err(None),
                None => {
                    q = self
                        .changed
                        .wait_timeout(q, WAIT_SLICE)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }

    fn pull_until(&self, give_up: impl Fn() -> bool) -> Result<Option<Buffer>, ()> {
        match self.take(&give_up) {
            Ok(b) => Ok(b),
            Err(Some(_)) => Ok(None),
            Err(None) => Err(()),
        }
    }

    /// The element is gone: nobody takes or gives any more.
    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// The element's side of an appsink: waits for room (or drops the oldest).
    fn offer(&self, buf: Buffer, cx: &Ctx<'_>) -> Result<(), ElementError> {
        let mut q = self.lock();
        while self.full(&q) {
            if self.drop_old.load(Ordering::Relaxed) {
                if let Some(Item::Buffer(old)) = q.items.pop_front() {
                    q.bytes -= old.len() as u64;
                    let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    cx.post_qos(0, dropped);
                }
                continue;
            }
            if cx.is_stopping() {
                return Err(ElementError::Interrupted);
            }
            q = self
                .changed
                .wait_timeout(q, WAIT_SLICE)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        q.bytes += buf.len() as u64;
        q.items.push_back(Item::Buffer(buf));
        self.changed.notify_all();
        Ok(())
    }
}

/// gst's appsrc `max-bytes` default.
const APPSRC_MAX_BYTES: u64 = 200_000;

// --- appsrc ----------------------------------------------------------------------------------

pub(crate) static APPSRC: Factory = Factory {
    name: "appsrc",
    aliases: &["memorysrc"],
    klass: Klass::Source,
    summary: "Buffers pushed by the program that runs the pipeline",
    doc: "The program gets this element's queue with `Pipeline::appsrc(name)` and pushes \
          buffers, end of stream or an error into it. The queue holds at most `max-bytes`: a push \
          then waits (`block=true`) or is refused (`block=false`), so memory stays bounded. \
          Without a program attached (`parallax-launch`), the stream ends at once.",
    pads: Pads::SOURCE.with_rule(CapsRule::Derived(&APP_CAPS)),
    props: basesrc_props![
        PropSpec::string(
            "caps",
            None,
            "The caps of the buffers pushed (NULL means ANY)"
        )
        .checked(check_caps),
        PropSpec::bool("is-live", false, "Whether to act as a live source")
            .ignored("buffers are passed on as soon as they are pushed, live or not"),
        PropSpec::uint(
            "max-bytes",
            APPSRC_MAX_BYTES,
            0,
            u64::MAX,
            "The maximum number of bytes to queue (0 = unlimited buffers' count bound only)"
        ),
        PropSpec::uint(
            "max-buffers",
            0,
            0,
            u64::MAX,
            "The maximum number of buffers to queue (0 = unlimited)"
        ),
        PropSpec::bool(
            "block",
            false,
            "Block push-buffer when max-bytes are queued (false: the push is refused)"
        ),
        PropSpec::bool(
            "emit-signals",
            true,
            "Emit need-data, enough-data and seek-data"
        )
        .ignored(super::NO_SIGNALS),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let queue = p.attached::<AppQueue>();
        if let Some(q) = &queue {
            q.max_bytes.store(p.uint("max-bytes")?, Ordering::Relaxed);
            q.max_buffers
                .store(p.uint("max-buffers")?, Ordering::Relaxed);
            q.block.store(p.bool("block")?, Ordering::Relaxed);
            q.attached.store(true, Ordering::Relaxed);
        }
        Ok(ElementImpl::Source(Box::new(AppSrc {
            queue,
            left: u64::try_from(p.int("num-buffers")?).ok(),
        })))
    },
};

/// The program's queue, when one was attached.
struct AppSrc {
    queue: Option<Arc<AppQueue>>,
    /// `num-buffers`, when set.
    left: Option<u64>,
}

impl Source for AppSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        let Some(queue) = &self.queue else {
            return Ok(None);
        };
        if self.left == Some(0) {
            return Ok(None);
        }
        match queue.take(&|| cx.should_stop()) {
            Ok(Some(buf)) => {
                self.left = self.left.map(|n| n - 1);
                Ok(Some(buf))
            }
            Ok(None) | Err(None) => Ok(None),
            Err(Some(message)) => Err(ElementError::Failed(message)),
        }
    }
}

impl Drop for AppSrc {
    fn drop(&mut self) {
        if let Some(q) = &self.queue {
            q.close();
        }
    }
}

// --- appsink ---------------------------------------------------------------------------------

pub(crate) static APPSINK: Factory = Factory {
    name: "appsink",
    aliases: &["memorysink", "sharedmemorysink"],
    klass: Klass::Sink,
    summary: "Hands buffers to the program that runs the pipeline",
    doc: "The program gets this element's queue with `Pipeline::appsink(name)` and pulls \
          buffers until end of stream. At `max-buffers` queued the streaming thread waits \
          (backpressure) or, with `drop=true`, the oldest buffer is dropped. Without a program \
          attached (`parallax-launch`), buffers are discarded.",
    pads: Pads::SINK.with_rule(CapsRule::Derived(&APP_CAPS)),
    props: basesink_props![
        PropSpec::string("caps", None, "The caps the sink accepts (NULL means ANY)")
            .checked(check_caps),
        PropSpec::uint(
            "max-buffers",
            0,
            0,
            u32::MAX as u64,
            "The maximum number of buffers to queue (0 = unlimited: the upstream pools bound it)"
        ),
        PropSpec::uint(
            "max-bytes",
            0,
            0,
            u64::MAX,
            "The maximum number of bytes to queue (0 = unlimited)"
        ),
        PropSpec::bool("drop", false, "Drop old buffers when the queue is full"),
        PropSpec::bool(
            "sync",
            true,
            "Sync on the clock: hand over each buffer at its running time (its pts)"
        ),
        PropSpec::bool("emit-signals", false, "Emit new-preroll and new-sample")
            .ignored(super::NO_SIGNALS),
        PropSpec::bool(
            "wait-on-eos",
            true,
            "Wait for all buffers to be consumed at EOS"
        )
        .ignored(
            "end of stream is queued after the buffers; the run does not wait for the program"
        ),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let queue = p.attached::<AppQueue>();
        if let Some(q) = &queue {
            q.max_buffers
                .store(p.uint("max-buffers")?, Ordering::Relaxed);
            q.max_bytes.store(p.uint("max-bytes")?, Ordering::Relaxed);
            q.drop_old.store(p.bool("drop")?, Ordering::Relaxed);
            q.attached.store(true, Ordering::Relaxed);
        }
        Ok(ElementImpl::Sink(Box::new(AppSink {
            queue,
            sync: p.bool("sync")?,
        })))
    },
};

/// The program's queue, when one was attached.
struct AppSink {
    queue: Option<Arc<AppQueue>>,
    sync: bool,
}

impl Sink for AppSink {
    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        self.render_owned(buf.clone(), cx)
    }

    fn render_owned(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        if self.sync {
            cx.wait_for_pts(&buf);
        }
        if let Some(q) = &self.queue {
            q.offer(buf, cx)?;
        }
        Ok(SinkFlow::Continue)
    }

    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if let Some(q) = &self.queue {
            let _ = q.end_of_stream();
        }
        Ok(())
    }
}

impl Drop for AppSink {
    fn drop(&mut self) {
        if let Some(q) = &self.queue {
            q.close();
        }
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&APPSRC, &APPSINK];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_non_blocking_queue_refuses_and_a_dropping_one_keeps_the_newest() {
        let q = AppQueue::new();
        q.block.store(false, Ordering::Relaxed);
        q.max_bytes.store(4, Ordering::Relaxed);
        q.push_bytes(b"abcd").unwrap();
        assert_eq!(q.push_bytes(b"e"), Err(AppError::Full(4)));
        q.drop_old.store(true, Ordering::Relaxed);
        q.push_bytes(b"e").unwrap();
        assert_eq!(q.dropped(), 1);
        q.end_of_stream().unwrap();
        assert_eq!(q.push_bytes(b"f"), Err(AppError::Closed));
        let got: Vec<Vec<u8>> = q.collect().iter().map(|b| b.data().to_vec()).collect();
        assert_eq!(got, vec![b"e".to_vec()]);
    }

    #[test]
    fn an_error_is_delivered_after_the_buffers_before_it() {
        let q = AppQueue::new();
        q.push_bytes(b"x").unwrap();
        q.error("bad input").unwrap();
        assert!(q.take(&|| false).unwrap().is_some());
        assert_eq!(q.take(&|| false).unwrap_err(), Some("bad input".into()));
    }
}
