//! SIGHUP as a request, not an ending: `parallax-launch` reloads replaced plugins on it.
//!
//! The handler only writes a byte to a pipe (async-signal-safe); a thread of ours reads it
//! and does the work. Several signals before the thread wakes are one request.

use std::os::fd::{AsRawFd as _, IntoRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe's write end, for the handler (-1 before [`on_hangup`]). Never closed.
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

extern "C" fn hung_up(_signal: libc::c_int) {
    let fd = WRITE_END.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: (1) errno is read and restored around the call, so the interrupted code sees
    // its own; (2) write(2) on a non-blocking pipe is async-signal-safe and cannot block (a
    // full pipe already holds a request); (3) the byte lives on this stack for the call.
    #[allow(unsafe_code)]
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        let byte = 1u8;
        libc::write(fd, std::ptr::addr_of!(byte).cast(), 1);
        *errno = saved;
    }
}

/// Calls `request` on a thread of its own after every SIGHUP (signals that arrive while it runs
/// are one more call). Replaces whatever handled SIGHUP before (the Ctrl-C handler's, which
/// would end the run). Call it once.
pub fn on_hangup(request: impl Fn() + Send + 'static) -> std::io::Result<()> {
    use rustix::pipe::{pipe_with, PipeFlags};
    let (read_end, write_end): (OwnedFd, OwnedFd) = pipe_with(PipeFlags::CLOEXEC)?;
    rustix::fs::fcntl_setfl(&write_end, rustix::fs::OFlags::NONBLOCK)?;
    std::thread::Builder::new()
        .name("px-hangup".into())
        .spawn(move || {
            let mut bytes = [0u8; 64];
            loop {
                match rustix::io::read(&read_end, &mut bytes) {
                    Ok(0) => return,
                    Ok(_) => request(),
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return,
                }
            }
        })?;
    if WRITE_END
        .compare_exchange(
            -1,
            write_end.as_raw_fd(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        )
        .is_err()
    {
        return Err(std::io::Error::other(
            "a SIGHUP handler is installed already",
        ));
    }
    // Kept open for the life of the process: the handler may run at any time.
    let _ = write_end.into_raw_fd();
    // SAFETY: (1) `action` is fully initialised (zeroed, then the handler, an empty mask and
    // SA_RESTART set); (2) the handler only does what the comment on `hung_up` says, all of
    // it async-signal-safe; (3) sigaction replaces the previous SIGHUP disposition atomically.
    #[allow(unsafe_code)]
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = hung_up as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut())
    };
    if installed != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes this process ignore SIGHUP: a worker process, which `pkill -HUP parallax-launch` or a
/// signal to the process group reaches as well as its parent. The parent does the reloading.
pub fn ignore_hangup() -> std::io::Result<()> {
    // SAFETY: (1) `action` is fully initialised (zeroed, SIG_IGN, an empty mask); (2) ignoring
    // a signal runs no code of ours in a handler at all.
    #[allow(unsafe_code)]
    let set = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_IGN;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut())
    };
    if set != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
