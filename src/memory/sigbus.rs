//! Surviving a file that shrinks while it is mapped.
//!
//! Touching a page of a file mapping that lies past the file's end (another process truncated
//! it) raises SIGBUS, which would kill the process. Mappings registered here are guarded: a
//! SIGBUS whose fault address falls inside one of them replaces that page with a page of zeros
//! (an anonymous mapping at the same address), marks the registration as hit, and returns, so the
//! faulting load completes. The owner of the mapping checks [`Registration::hit`] and reports the
//! truncation as an error instead of passing the zeros on as data. A SIGBUS anywhere else goes to
//! the handler that was installed before ours (Rust's own, which reports stack overflows), or to
//! the default action.
//!
//! The handler only reads atomics and calls `mmap`, which is async-signal-safe.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::sys::{page_size, Mapping};

const SLOTS: usize = 256;

struct Slot {
    used: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    hit: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    used: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    hit: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A guarded mapping; dropping it (before the mapping is unmapped) stops guarding.
#[derive(Debug)]
pub(crate) struct Registration {
    slot: usize,
    /// Told about a hit when the registration ends, so the news outlives the mapping.
    report: Option<Arc<AtomicBool>>,
}

impl Registration {
    /// Whether a page of the mapping vanished and now reads as zeros.
    pub(crate) fn hit(&self) -> bool {
        TABLE[self.slot].hit.load(Ordering::Acquire)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let slot = &TABLE[self.slot];
        if let Some(report) = &self.report {
            if slot.hit.load(Ordering::Acquire) {
                report.store(true, Ordering::Release);
            }
        }
        slot.start.store(0, Ordering::Release);
        slot.end.store(0, Ordering::Release);
        slot.hit.store(false, Ordering::Release);
        slot.used.store(false, Ordering::Release);
    }
}

/// Guards `map` until the returned registration is dropped; fails when too many mappings are
/// guarded at once (the caller then does not map).
pub(crate) fn register(
    map: &Mapping,
    report: Option<Arc<AtomicBool>>,
) -> Result<Registration, super::MemoryError> {
    install();
    let start = map.as_ptr() as usize;
    for (i, slot) in TABLE.iter().enumerate() {
        if slot
            .used
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot.hit.store(false, Ordering::Relaxed);
            slot.end.store(start + map.len(), Ordering::Release);
            slot.start.store(start, Ordering::Release);
            return Ok(Registration { slot: i, report });
        }
    }
    Err(super::MemoryError::Limit(
        "too many file mappings at once to guard them against truncation",
    ))
}

fn install() {
    PREVIOUS.get_or_init(|| {
        PAGE.store(page_size(), Ordering::Relaxed);
        // SAFETY:
        // 1. `action` is fully initialised: zeroed (a valid empty sigaction), then the handler,
        //    flags and an empty mask are set.
        // 2. `on_sigbus` has the SA_SIGINFO signature and is async-signal-safe (atomics, mmap).
        // 3. `previous` is written by the kernel before it is read.
        #[allow(unsafe_code)]
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGBUS, &action, &mut previous);
            previous
        }
    });
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: for an SA_SIGINFO handler the kernel passes a valid siginfo_t.
    #[allow(unsafe_code)]
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for slot in &TABLE {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= slot.end.load(Ordering::Acquire) {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY:
        // 1. [at, at + page) lies inside a registered mapping that its owner has not unmapped
        //    (registrations end before the unmap), so MAP_FIXED replaces only our own pages.
        // 2. The new page is readable like the old one, and zero-filled; the owner reports the
        //    truncation instead of using these bytes as data.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::mmap(
                at as *mut c_void,
                page,
                libc::PROT_READ,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            slot.hit.store(true, Ordering::Release);
            return;
        }
    }
    chain(sig, info, ctx);
}

/// Not ours: hand the signal to whoever had it before, or to the default action.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: restoring the default disposition; returning re-runs the faulting instruction,
        // which then takes the default action (terminate with SIGBUS, as without us).
        #[allow(unsafe_code)]
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        }
        return;
    }
    // SAFETY: `handler` is the address of the handler installed before ours, with the signature
    // its flags declare; it is called with the arguments the kernel gave us.
    #[allow(unsafe_code)]
    unsafe {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                std::mem::transmute(handler);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}
