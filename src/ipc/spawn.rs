//! Starting a worker process: this same binary, re-executed with a socket on fd 3.
//!
//! The child gets its end of a socketpair as fd 3 (and no other descriptor of ours: everything
//! else is close-on-exec), dies with its parent (PR_SET_PDEATHSIG), ignores SIGINT (the parent
//! turns Ctrl-C into end of stream and tells the worker), and, when `sandbox` is set, can never
//! gain privileges (PR_SET_NO_NEW_PRIVS: no setuid binaries, a precondition for seccomp).
//! A sandboxed worker then calls [`enter_sandbox`] once its element is built: a seccomp filter
//! that refuses (EPERM) every way out of the process's current resources.

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

/// System calls a sandboxed worker may not make, each refused with EPERM: running programs,
/// new processes (clone3 too, so a sandboxed worker starts no threads either; it has no need
/// to), opening files, new sockets, touching other processes, and reconfiguring the
/// system. What it already holds (its socket, the fds its element opened while being built,
/// the arenas it is sent) keeps working, and so does creating its own memfd pools.
fn denied_syscalls() -> Vec<i64> {
    let mut denied = vec![
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_clone3,
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_open,
        libc::SYS_pidfd_getfd,
        libc::SYS_kill,
        libc::SYS_tkill,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
        libc::SYS_pidfd_send_signal,
        libc::SYS_truncate,
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_removexattr,
        libc::SYS_lremovexattr,
        libc::SYS_utimensat,
        libc::SYS_fchmodat2,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_chroot,
        libc::SYS_pivot_root,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_setuid,
        libc::SYS_setgid,
        libc::SYS_setreuid,
        libc::SYS_setregid,
        libc::SYS_setresuid,
        libc::SYS_setresgid,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_mknodat,
        libc::SYS_unlinkat,
        libc::SYS_renameat2,
        libc::SYS_mkdirat,
        libc::SYS_symlinkat,
        libc::SYS_linkat,
        libc::SYS_fchmodat,
        libc::SYS_fchownat,
    ];
    #[cfg(target_arch = "x86_64")]
    denied.extend([
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_renameat,
        libc::SYS_mkdir,
        libc::SYS_rmdir,
        libc::SYS_symlink,
        libc::SYS_link,
        libc::SYS_chmod,
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_mknod,
        libc::SYS_iopl,
        libc::SYS_ioperm,
    ]);
    denied
}

/// Confines the calling process for good (and every thread it starts later): the seccomp
/// filter of [`denied_syscalls`]. Needs PR_SET_NO_NEW_PRIVS, which [`spawn_worker`] sets
/// for a sandboxed worker (and which is set here again, harmlessly, for a direct caller).
pub fn enter_sandbox() -> std::io::Result<()> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| std::io::Error::other(format!("seccomp: {e}")))?;
    let err = |e: seccompiler::BackendError| std::io::Error::other(format!("seccomp: {e}"));
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> = denied_syscalls()
        .into_iter()
        .map(|nr| (nr, vec![]))
        .collect();
    // clone(2) makes threads and processes alike: refuse it unless CLONE_THREAD is set.
    let thread = libc::CLONE_THREAD as u64;
    let no_thread = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(thread),
        0,
    )
    .map_err(err)?;
    rules.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![no_thread]).map_err(err)?],
    );
    // tgkill may signal this process only (abort() raises SIGABRT with it).
    let me = u64::from(std::process::id());
    let other_process =
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, me).map_err(err)?;
    rules.insert(
        libc::SYS_tgkill,
        vec![SeccompRule::new(vec![other_process]).map_err(err)?],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    let mut program: seccompiler::BpfProgram = filter.try_into().map_err(err)?;
    // x32 system calls carry the x86_64 architecture tag with bit 30 set in the number, so a
    // list of x86_64 numbers does not see them: refuse every one of them before the list.
    // The program's jumps are relative, so a prefix leaves them intact.
    #[cfg(target_arch = "x86_64")]
    program.splice(0..0, x32_guard());
    rustix::thread::set_no_new_privs(true)?;
    seccompiler::apply_filter(&program).map_err(|e| std::io::Error::other(format!("seccomp: {e}")))
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
