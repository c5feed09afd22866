//! Starting a worker process: this same binary, re-executed with a socket on fd 3.
//!
//! The child gets its end of a socketpair as fd 3 (and no other descriptor of ours: everything
//! else is close-on-exec), dies with its parent (PR_SET_PDEATHSIG), ignores SIGINT (the parent
//! turns Ctrl-C into end of stream and tells the worker), and, when `sandbox` is set, can never
//! gain privileges (PR_SET_NO_NEW_PRIVS: no setuid binaries, a precondition for seccomp).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command};

/// The fd number the worker finds its socket on.
pub const WORKER_FD: i32 = 3;

/// Spawns `exe args` with `sock` as its fd 3.
pub fn spawn_worker(
    exe: &std::path::Path,
    args: &[&str],
    sock: OwnedFd,
    sandbox: bool,
) -> std::io::Result<Child> {
    let raw = sock.as_raw_fd();
    let parent = rustix::process::getpid();
    let mut cmd = Command::new(exe);
    // stdin, stdout and stderr are the parent's, so `fdsrc fd=0 exec=isolated` reads them.
    cmd.args(args);
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (dup2, fcntl, prctl, signal, getppid through libc), touches no allocator and no
    // lock, and reads only values copied in before the fork.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            if raw == WORKER_FD {
                // Already in place: just let it survive exec.
                let flags = libc::fcntl(raw, libc::F_GETFD);
                libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(raw, WORKER_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would kill us.
            if libc::getppid() != parent.as_raw_nonzero().get() {
                return Err(std::io::Error::other("parent exited"));
            }
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            if sandbox && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(sock);
    child
}

/// The worker's socket, in the worker process.
pub fn worker_socket() -> std::io::Result<OwnedFd> {
    let fd = super::inherited(WORKER_FD)?;
    let owned = fd.try_clone_to_owned()?;
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(owned)
}

/// Gives the calling thread the SCHED_FIFO policy at `priority` (1-99).
pub fn set_realtime(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call; pid 0 means
    // the calling thread; the call only changes scheduling attributes.
    #[allow(unsafe_code)]
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
