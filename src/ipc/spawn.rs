//! Starting a worker process: this same binary, re-executed with a socket on fd 3.
//!
//! The child gets its end of a socketpair as fd 3 (and no other descriptor of ours: everything
//! else is close-on-exec), dies with its parent (PR_SET_PDEATHSIG), ignores SIGINT until it
//! takes SIGINT and SIGTERM as a drain of its own (the parent turns Ctrl-C into end of stream
//! and tells the worker), and, when `sandbox` is set, can never
//! gain privileges (PR_SET_NO_NEW_PRIVS: no setuid binaries, a precondition for seccomp).
//! A sandboxed worker then calls [`enter_sandbox`] once its element is built: a seccomp
//! allowlist of the system calls a worker needs to work on what it already holds; everything
//! else (opening files, sockets, programs, processes) is refused with EPERM.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command};

/// The fd number the worker finds its socket on.
pub const WORKER_FD: i32 = 3;
/// The fd number a sandboxed worker finds its release socket on (see [`spawn_worker`]).
pub const RELEASE_FD: i32 = 4;

/// Spawns `exe args` with `sock` as its fd 3 and, when given, `releases` as its fd 4 (the
/// socket on which a worker with read-only arenas says which buffers it is done with).
pub fn spawn_worker(
    exe: &std::path::Path,
    args: &[&str],
    sock: OwnedFd,
    releases: Option<OwnedFd>,
    sandbox: bool,
) -> std::io::Result<Child> {
    let raw = sock.as_raw_fd();
    let raw_releases = releases.as_ref().map_or(-1, |fd| fd.as_raw_fd());
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
            let mut raw_releases = raw_releases;
            if raw_releases == WORKER_FD {
                // Move it out of the way of the socket's dup2 to fd 3.
                raw_releases = libc::fcntl(raw_releases, libc::F_DUPFD, RELEASE_FD + 1);
                if raw_releases < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if raw == WORKER_FD {
                // Already in place: just let it survive exec.
                let flags = libc::fcntl(raw, libc::F_GETFD);
                libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(raw, WORKER_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if raw_releases == RELEASE_FD {
                let flags = libc::fcntl(raw_releases, libc::F_GETFD);
                libc::fcntl(raw_releases, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if raw_releases >= 0 && libc::dup2(raw_releases, RELEASE_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would kill us.
            // (An errno, not a message: nothing may allocate between fork and exec.)
            if libc::getppid() != parent.as_raw_nonzero().get() {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
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
    drop(releases);
    child
}

/// A sandboxed worker's release socket, in the worker process.
pub fn release_socket() -> std::io::Result<OwnedFd> {
    inherited_socket(RELEASE_FD)
}

/// System calls a sandboxed worker may make, unconditionally; everything else is refused with
/// EPERM (see [`enter_sandbox`] for the few allowed only with certain arguments). Derived from
/// what a worker does once its element is built (traced with strace over every element that
/// can be isolated, run untrusted; the conformance suite runs them all under this filter):
/// it works on what it already holds and nothing else. No `openat`, no `socket`, `connect`,
/// `bind` or `listen`, no `execve`, no new processes, no signals to others, no changes to the
/// file system.
fn allowed_syscalls() -> Vec<i64> {
    let mut allowed = vec![
        // Descriptors it holds: its sockets, the files its element opened while being built,
        // stdin/stdout/stderr, the arenas it was sent.
        libc::SYS_read,
        libc::SYS_readv,
        libc::SYS_pread64,
        libc::SYS_preadv,
        libc::SYS_preadv2,
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_pwrite64,
        libc::SYS_pwritev,
        libc::SYS_pwritev2,
        libc::SYS_lseek,
        libc::SYS_fstat,
        libc::SYS_close,
        libc::SYS_fcntl,
        libc::SYS_ftruncate,
        libc::SYS_fallocate,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        // Kernel copies between descriptors it holds (filesink, fdsink).
        libc::SYS_copy_file_range,
        libc::SYS_splice,
        libc::SYS_sendfile,
        // Its sockets: the parent's, and a shmsink's listener and consumers.
        libc::SYS_sendmsg,
        libc::SYS_recvmsg,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_shutdown,
        libc::SYS_accept4,
        libc::SYS_getsockopt,
        libc::SYS_getsockname,
        libc::SYS_getpeername,
        // Memory: the allocator, the arenas it maps, the memfd pools it makes.
        libc::SYS_brk,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_madvise,
        libc::SYS_memfd_create,
        // Waiting and time.
        libc::SYS_ppoll,
        libc::SYS_pselect6,
        libc::SYS_futex,
        libc::SYS_sched_yield,
        libc::SYS_nanosleep,
        libc::SYS_clock_nanosleep,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        // Signals to itself, and the ones it handles (the parent's drain).
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_restart_syscall,
        // The process itself.
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_getrandom,
        libc::SYS_sched_getaffinity,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    #[cfg(target_arch = "x86_64")]
    allowed.extend([libc::SYS_poll]);
    allowed
}

/// Confines the calling process for good, every thread it has and any it starts later
/// (TSYNC: a worker has a signal thread, started before): the allowlist of
/// [`allowed_syscalls`], plus `clone` for threads only, `tgkill` to itself (abort), `prctl`
/// to name a thread or read the aux vector, `ioctl` to ask whether a descriptor is a
/// terminal, and `statx`/`newfstatat` on a descriptor, never a path. Anything else is EPERM.
/// Needs PR_SET_NO_NEW_PRIVS, which [`spawn_worker`] sets for a sandboxed worker (and which is
/// set here again, harmlessly, for a direct caller).
pub fn enter_sandbox() -> std::io::Result<()> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| std::io::Error::other(format!("seccomp: {e}")))?;
    let err = |e: seccompiler::BackendError| std::io::Error::other(format!("seccomp: {e}"));
    let when = |arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, len, op, value)
            .and_then(|c| SeccompRule::new(vec![c]))
            .map_err(err)
    };
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> = allowed_syscalls()
        .into_iter()
        .map(|nr| (nr, vec![]))
        .collect();
    // clone(2) makes threads and processes alike: allowed only with CLONE_THREAD set (clone3
    // is refused outright, its flags are behind a pointer).
    let thread = libc::CLONE_THREAD as u64;
    rules.insert(
        libc::SYS_clone,
        vec![when(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(thread),
            thread,
        )?],
    );
    // tgkill may signal this process only (abort() raises SIGABRT with it).
    let me = u64::from(std::process::id());
    rules.insert(
        libc::SYS_tgkill,
        vec![when(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, me)?],
    );
    // prctl: a thread's name, and the aux vector (the runtime reads it); nothing else.
    const PR_GET_AUXV: u64 = 0x4155_5856;
    let mut prctl = Vec::new();
    for option in [
        libc::PR_SET_NAME as u64,
        libc::PR_GET_NAME as u64,
        PR_GET_AUXV,
    ] {
        prctl.push(when(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, option)?);
    }
    rules.insert(libc::SYS_prctl, prctl);
    // ioctl: whether a descriptor is a terminal (consolesink, fdsink), nothing else.
    // The request is a c_ulong, which is u64 only on some targets.
    #[allow(clippy::unnecessary_cast)]
    let tcgets = libc::TCGETS as u64;
    rules.insert(
        libc::SYS_ioctl,
        vec![when(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, tcgets)?],
    );
    // stat by descriptor only (AT_EMPTY_PATH): looking up a path is refused like opening it.
    let empty_path = libc::AT_EMPTY_PATH as u64;
    rules.insert(
        libc::SYS_statx,
        vec![when(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(empty_path),
            empty_path,
        )?],
    );
    rules.insert(
        libc::SYS_newfstatat,
        vec![when(
            3,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(empty_path),
            empty_path,
        )?],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(err)?;
    let mut program: seccompiler::BpfProgram = filter.try_into().map_err(err)?;
    // x32 system calls carry the x86_64 architecture tag with bit 30 set in the number; no
    // such number is on the list, but they are refused before it all the same, so that the
    // list never has to be read with them in mind. The program's jumps are relative, so a
    // prefix leaves them intact.
    #[cfg(target_arch = "x86_64")]
    program.splice(0..0, x32_guard());
    rustix::thread::set_no_new_privs(true)?;
    seccompiler::apply_filter_all_threads(&program)
        .map_err(|e| std::io::Error::other(format!("seccomp: {e}")))
}

/// The number bit of the x32 ABI (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A filter prefix that answers EPERM to every system call whose number has the x32 bit.
#[cfg(target_arch = "x86_64")]
fn x32_guard() -> [seccompiler::sock_filter; 3] {
    let op = |code: u32| code as u16;
    [
        // Load the system call number (offset 0 of struct seccomp_data).
        seccompiler::sock_filter {
            code: op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS),
            jt: 0,
            jf: 0,
            k: 0,
        },
        // Below the x32 bit: skip the refusal.
        seccompiler::sock_filter {
            code: op(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K),
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        seccompiler::sock_filter {
            code: op(libc::BPF_RET | libc::BPF_K),
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
    ]
}

/// There is no x32 ABI off x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub fn open_via_x32(_path: &std::ffi::CStr) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Opens `path` read-only through the x32 ABI's `openat`, as a hostile element might to get
/// past a filter of x86_64 numbers (the sandbox test's probe). Where the kernel has no x32
/// ABI the answer is ENOSYS.
#[cfg(target_arch = "x86_64")]
pub fn open_via_x32(path: &std::ffi::CStr) -> std::io::Result<()> {
    let nr = libc::c_long::from(X32_SYSCALL_BIT) | libc::SYS_openat;
    // SAFETY: openat takes a directory fd, a NUL-terminated path that outlives the call
    // (`path` is borrowed for it) and flags; it writes no memory of ours. A descriptor it
    // returns is closed right away.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::syscall(nr, libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the call just returned this descriptor, and nothing else owns it.
    #[allow(unsafe_code)]
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) });
    Ok(())
}

/// The worker's socket, in the worker process.
pub fn worker_socket() -> std::io::Result<OwnedFd> {
    inherited_socket(WORKER_FD)
}

/// An inherited socket, owned (a close-on-exec duplicate: the worker starts no program anyway).
fn inherited_socket(fd: i32) -> std::io::Result<OwnedFd> {
    super::inherited(fd)?.try_clone_to_owned()
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
