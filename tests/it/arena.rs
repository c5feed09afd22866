//! Shared arenas across a real process boundary: this test binary re-runs itself as the peer
//! (the ignored `peer_child` test, driven by environment variables), receives the arena's memfd
//! over a unix socket by SCM_RIGHTS, and clones, drops, dies, or misbehaves on purpose.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};

use parallax::ipc::{recv_with_fds, send_with_fds};
use parallax::memory::{
    Buffer, IpcRef, Mapping, MemoryPool, PeerAccess, PeerId, PoolConfig, SharedArenaCache,
};

const SLOTS: usize = 4;
const SLOT_SIZE: usize = 4096;

/// The owner's side of one test: a pool, a child process and the socket to it.
struct Owner {
    pool: MemoryPool,
    peer: PeerId,
    child: Child,
    sock: UnixStream,
    _dir: tempfile::TempDir,
}

impl Owner {
    /// Starts a child in `role`, admits it and lends it `lent` buffers (slot k holds "slot-k").
    fn start(role: &str, access: PeerAccess, lent: usize) -> (Owner, Vec<Buffer>) {
        let pool = MemoryPool::new(&PoolConfig {
            peers: access,
            ..PoolConfig::new("arena-test", SLOTS, SLOT_SIZE)
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["arena::peer_child", "--exact", "--ignored", "--nocapture"])
            .env("PARALLAX_ARENA_SOCKET", &path)
            .env("PARALLAX_ARENA_ROLE", role)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (sock, _) = listener.accept().unwrap();
        let ticket = pool.admit_peer().unwrap();
        let buffers: Vec<Buffer> = (0..lent)
            .map(|k| {
                let mut s = pool.try_loan().unwrap();
                let text = format!("slot-{k}");
                s.as_mut_slice()[..text.len()].copy_from_slice(text.as_bytes());
                s.freeze(text.len())
            })
            .collect();
        let mut msg = vec![
            ticket.id.index() as u8,
            u8::from(access == PeerAccess::ReadOnly),
            lent as u8,
        ];
        for b in &buffers {
            msg.extend_from_slice(&pool.lend(b, ticket.id).unwrap().to_bytes());
        }
        send_with_fds(&sock, &msg, &[ticket.fd.as_fd()]).unwrap();
        let owner = Owner {
            pool,
            peer: ticket.id,
            child,
            sock,
            _dir: dir,
        };
        (owner, buffers)
    }

    fn expect(&mut self, what: u8) {
        let mut b = [0u8];
        self.sock.read_exact(&mut b).unwrap();
        assert_eq!(b[0] as char, what as char, "child said something else");
    }

    fn read_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.sock.read_exact(&mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn finish(mut self) -> MemoryPool {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "peer child failed: {status}");
        self.pool
    }
}

#[test]
fn a_child_process_clones_and_drops_and_the_owner_reclaims_every_slot() {
    let (mut owner, buffers) = Owner::start("trusted", PeerAccess::ReadWrite, 3);
    owner.expect(b'C');
    for b in &buffers {
        let seen_by_child = owner.read_u32();
        // Owner 1 + the lent reference + the child's clone, seen identically on both sides.
        assert_eq!(seen_by_child, 3);
        assert_eq!(b.slot_refcount(), Some(3));
    }
    drop(buffers);
    assert_eq!(
        owner.pool.available(),
        SLOTS - 3,
        "the child still holds three slots"
    );
    owner.sock.write_all(b"D").unwrap();
    owner.expect(b'X');
    let pool = owner.finish();
    assert_eq!(
        pool.available(),
        SLOTS,
        "every slot came back through the release ring"
    );
    assert_eq!(pool.stats().rejected, 0);
}

#[test]
fn a_killed_child_s_loans_are_reclaimed() {
    let (mut owner, buffers) = Owner::start("hold", PeerAccess::ReadWrite, 3);
    owner.expect(b'C');
    owner.child.kill().unwrap();
    owner.child.wait().unwrap();
    drop(buffers);
    assert_eq!(
        owner.pool.available(),
        SLOTS - 3,
        "the dead child's references remain"
    );
    assert_eq!(owner.pool.reclaim_peer(owner.peer), 3);
    assert_eq!(owner.pool.available(), SLOTS);
    // The pool works as before.
    let b = owner.pool.try_loan().unwrap().freeze(1);
    assert_eq!(b.slot_refcount(), Some(1));
}

#[test]
fn a_hostile_child_cannot_hurt_the_owner() {
    let (mut owner, mut buffers) = Owner::start("hostile", PeerAccess::ReadWrite, 3);
    // The child's reference to slot 0 becomes the last one: its drop goes through the ring.
    drop(buffers.remove(0));
    owner.sock.write_all(b"G").unwrap();
    owner.expect(b'H');
    let truncate_refused = owner.read_u32();
    let peer = owner.peer;
    let pool = owner.finish();
    assert_eq!(
        truncate_refused, 1,
        "ftruncate of the sealed memfd must fail"
    );
    // The owner still reads its own buffers, unchanged.
    for (k, b) in buffers.iter().enumerate() {
        assert_eq!(b.data(), format!("slot-{}", k + 1).as_bytes());
    }
    // The child's legitimate release of slot 0 is applied; its forged out-of-range entry and its
    // second release of slot 0 are rejected and counted.
    assert_eq!(pool.available(), SLOTS - 2);
    assert_eq!(pool.stats().rejected, 2);
    // The header it zeroed does not fool the next peer...
    let t = pool.admit_peer().unwrap();
    let err = SharedArenaCache::new()
        .map_arena(t.fd, t.access, t.id)
        .unwrap_err();
    assert!(err.to_string().contains("bad magic"), "{err}");
    // ...and the owner loans and writes on, and gets back what the dead child held.
    let mut s = pool.try_loan().unwrap();
    s.as_mut_slice()[..2].copy_from_slice(b"ok");
    assert_eq!(s.freeze(2).data(), b"ok");
    drop(buffers);
    assert_eq!(pool.reclaim_peer(peer), 2);
    assert_eq!(pool.available(), SLOTS);
}

#[test]
fn an_untrusted_child_only_reads_and_its_bad_releases_are_rejected() {
    let (mut owner, buffers) = Owner::start("untrusted", PeerAccess::ReadOnly, 2);
    drop(buffers);
    owner.expect(b'R');
    assert_eq!(owner.read_u32(), 1, "a writable mapping was refused");
    assert_eq!(owner.read_u32(), 1, "pwrite was refused");
    let count = owner.read_u32() as usize;
    let mut accepted = 0;
    let mut rejected = 0;
    for _ in 0..count {
        let mut bytes = [0u8; IpcRef::WIRE_LEN];
        owner.sock.read_exact(&mut bytes).unwrap();
        let r = IpcRef::from_bytes(&bytes).unwrap();
        match owner.pool.release_from(owner.peer, &r) {
            Ok(()) => accepted += 1,
            Err(_) => rejected += 1,
        }
    }
    let pool = owner.finish();
    assert_eq!((accepted, rejected), (2, 2));
    assert_eq!(pool.stats().rejected, 2);
    assert_eq!(pool.available(), SLOTS);
}

/// The peer side, run by the tests above in a child process.
#[test]
#[ignore = "helper: the tests above run it as a child process"]
fn peer_child() {
    let path = std::env::var("PARALLAX_ARENA_SOCKET").expect("run by the arena tests");
    let role = std::env::var("PARALLAX_ARENA_ROLE").unwrap();
    let mut sock = UnixStream::connect(path).unwrap();
    let mut msg = [0u8; 3 + 8 * IpcRef::WIRE_LEN];
    let (n, mut fds) = recv_with_fds(&sock, &mut msg).unwrap();
    let (id, read_only, count) = (msg[0], msg[1] == 1, msg[2] as usize);
    assert_eq!(n, 3 + count * IpcRef::WIRE_LEN);
    let refs: Vec<IpcRef> = msg[3..n]
        .chunks(IpcRef::WIRE_LEN)
        .map(|c| IpcRef::from_bytes(c).unwrap())
        .collect();
    let fd = fds.pop().unwrap();
    let raw = std::fs::File::from(fd.try_clone().unwrap());
    let access = if read_only {
        PeerAccess::ReadOnly
    } else {
        PeerAccess::ReadWrite
    };
    let mut cache = SharedArenaCache::new();
    cache
        .map_arena(fd, access, PeerId::from_index(id as usize).unwrap())
        .unwrap();
    let bufs: Vec<Buffer> = refs.iter().map(|r| cache.get_slot(*r).unwrap()).collect();
    for (k, b) in bufs.iter().enumerate() {
        assert_eq!(b.data(), format!("slot-{k}").as_bytes());
    }
    match role.as_str() {
        "trusted" | "hold" => {
            let clones: Vec<Buffer> = bufs.to_vec();
            sock.write_all(b"C").unwrap();
            for b in &bufs {
                sock.write_all(&b.slot_refcount().unwrap().to_le_bytes())
                    .unwrap();
            }
            // "hold" waits here until it is killed.
            let mut cmd = [0u8];
            sock.read_exact(&mut cmd).unwrap();
            assert_eq!(&cmd, b"D");
            drop((bufs, clones));
            sock.write_all(b"X").unwrap();
        }
        "hostile" => {
            let mut bufs = bufs;
            let mut go = [0u8];
            sock.read_exact(&mut go).unwrap();
            drop(bufs.remove(0)); // a legitimate release of slot 0, through the ring
                                  // Then, through pwrite on the memfd: an out-of-range entry and a second release of
                                  // slot 0 in its release ring, and a zeroed header.
            let rings_at = 128 + 64 * SLOTS as u64;
            let stride = (64 + SLOTS.next_power_of_two() as u64 * 4).next_multiple_of(64);
            let tail_at = rings_at + u64::from(id) * stride;
            let cells_at = tail_at + 64;
            raw.write_all_at(&(9999u32 + 1).to_le_bytes(), cells_at + 4)
                .unwrap();
            raw.write_all_at(&1u32.to_le_bytes(), cells_at + 8).unwrap();
            raw.write_all_at(&3u32.to_le_bytes(), tail_at).unwrap();
            raw.write_all_at(&[0u8; 8], 0).unwrap();
            let truncate_refused = raw.set_len(0).is_err();
            sock.write_all(b"H").unwrap();
            sock.write_all(&u32::from(truncate_refused).to_le_bytes())
                .unwrap();
            // Exits holding slots 1 and 2.
            std::mem::forget(bufs);
        }
        "untrusted" => {
            let len = raw.metadata().unwrap().len() as usize;
            let writable = Mapping::attach(
                raw.try_clone().unwrap().into(),
                len,
                parallax::memory::Access::ReadWrite,
            );
            let pwrite = raw.write_all_at(b"x", 0);
            sock.write_all(b"R").unwrap();
            sock.write_all(&u32::from(writable.is_err()).to_le_bytes())
                .unwrap();
            sock.write_all(&u32::from(pwrite.is_err()).to_le_bytes())
                .unwrap();
            let copy = bufs[0].clone();
            drop(bufs);
            drop(copy);
            let mut back = cache.take_releases();
            assert_eq!(back.len(), refs.len());
            // A second release, and one for a slot never lent.
            back.push(back[0]);
            back.push(IpcRef { slot: 3, ..back[0] });
            sock.write_all(&(back.len() as u32).to_le_bytes()).unwrap();
            for r in back {
                sock.write_all(&r.to_bytes()).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}
