//! udpsrc, udpsink, multiudpsink, udpmulticastsrc, udpmulticastsink.

use rustix::process::Signal;

use super::*;

/// Datagrams per test: below what a default 208 KiB receive buffer holds (92 of 1000 bytes),
/// so the count is exact even if the receiver did not run while the sender sent.
const COUNT: usize = 64;
const SIZE: usize = 1000;

/// `COUNT` datagrams of `SIZE` bytes from a file, one per buffer.
fn datagrams(seed: u64) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tmp();
    let data = random_bytes(COUNT * SIZE, seed);
    let path = file(dir.path(), "in.bin", &data);
    (dir, path, data)
}

fn receiver(desc: &str) -> Proc {
    Proc::spawn(&["-m", "--stats=json", desc], None)
}

#[test]
fn udpsink_to_udpsrc_delivers_every_datagram_in_order() {
    let (_dir, input, data) = datagrams(71);
    let mut rx = receiver(&format!(
        "udpsrc address=127.0.0.1 port=0 buffer-size=1048576 num-buffers={COUNT} ! fdsink"
    ));
    let port = rx.port();
    send_file(
        &input,
        &format!("blocksize={SIZE} ! udpsink host=127.0.0.1 port={port}"),
    );
    let done = rx.finish().ok();
    done.assert_stdout(&data);
    let stats = done.stats();
    assert_eq!(element(&stats, "udpsrc0")["buffers"], COUNT as u64);
    assert_eq!(element(&stats, "udpsrc0")["truncated"], 0);
}

#[test]
fn datagrams_longer_than_mtu_are_cut_and_counted() {
    let dir = tmp();
    let data = random_bytes(10 * 3000, 72);
    let input = file(dir.path(), "in.bin", &data);
    let mut rx = receiver("udpsrc address=127.0.0.1 port=0 mtu=1200 num-buffers=10 ! fdsink");
    let port = rx.port();
    send_file(
        &input,
        &format!("blocksize=3000 ! udpsink host=127.0.0.1 port={port}"),
    );
    let done = rx.finish().ok();
    let expected: Vec<u8> = data
        .chunks(3000)
        .flat_map(|c| &c[..1200])
        .copied()
        .collect();
    assert!(done.stdout == expected, "{} bytes", done.stdout.len());
    let stats = done.stats();
    assert_eq!(element(&stats, "udpsrc0")["truncated"], 10);
    assert_eq!(element(&stats, "udpsrc0")["bytes"], 12000);
    assert!(done
        .stderr
        .contains("a datagram of 3000 bytes was cut to mtu 1200"));
}

#[test]
fn multiudpsink_sends_every_datagram_to_every_client() {
    let (_dir, input, data) = datagrams(73);
    let desc = format!("udpsrc address=127.0.0.1 port=0 num-buffers={COUNT} ! fdsink");
    let (mut a, mut b) = (receiver(&desc), receiver(&desc));
    let (pa, pb) = (a.port(), b.port());
    send_file(
        &input,
        &format!("blocksize={SIZE} ! multiudpsink clients=127.0.0.1:{pa},127.0.0.1:{pb}"),
    );
    for done in [a.finish().ok(), b.finish().ok()] {
        assert!(
            done.stdout == data,
            "{} of {} bytes",
            done.stdout.len(),
            data.len()
        );
    }
}

#[test]
fn a_buffer_too_large_for_a_datagram_is_a_clear_error() {
    let done = run_args(&[
        "fakesrc num-buffers=1 sizetype=fixed sizemax=100000 ! udpsink host=127.0.0.1 port=9",
    ]);
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("udpsink0: a buffer of 100000 bytes does not fit in one datagram"),
        "{}",
        done.stderr
    );
}

/// Multicast on the loopback interface; `None` (with the reason) when the kernel refuses it.
fn multicast_case(group: &str, src: &str, sink: &str, seed: u64) -> Option<()> {
    let (_dir, input, data) = datagrams(seed);
    let mut rx = receiver(&format!(
        "{src} address={group} port=0 multicast-iface=lo num-buffers={COUNT} ! fdsink"
    ));
    let port = loop {
        // A refused join ends the receiver with its error instead of a port.
        let line = rx.next_line();
        if line.contains("port = ") {
            break line.rsplit(' ').next().unwrap().parse::<u16>().unwrap();
        }
        if line.starts_with("error:") {
            println!("skipped: the kernel refuses multicast on lo: {line}");
            return None;
        }
    };
    let sent = run_args(&[
        "-q",
        &format!(
            "filesrc {} blocksize={SIZE} ! {sink} host={group} port={port} multicast-iface=lo",
            prop("location", &input)
        ),
    ]);
    if sent.code != 0 {
        println!(
            "skipped: the kernel refuses multicast sends on lo: {}",
            sent.stderr
        );
        rx.signal(Signal::INT);
        return None;
    }
    let done = rx.finish().ok();
    done.assert_stdout(&data);
    assert_eq!(
        element(&done.stats(), &format!("{src}0"))["buffers"],
        COUNT as u64
    );
    assert!(
        done.stderr
            .contains(&format!("receiving on {group}:{port}")),
        "{}",
        done.stderr
    );
    Some(())
}

#[test]
fn multicast_on_loopback_delivers_every_datagram() {
    multicast_case("239.255.42.1", "udpsrc", "udpsink", 74);
}

#[test]
fn udpmulticastsrc_and_udpmulticastsink_pair_up() {
    multicast_case("239.255.42.2", "udpmulticastsrc", "udpmulticastsink", 75);
}

#[test]
fn the_multicast_elements_insist_on_a_group() {
    let done = run_args(&["udpmulticastsrc address=127.0.0.1 ! fakesink"]);
    assert_eq!(done.code, 2, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("address `127.0.0.1` is not a multicast group"),
        "{}",
        done.stderr
    );
    let done = run_args(&["fakesrc num-buffers=1 ! udpmulticastsink host=10.0.0.1"]);
    done.fails_with(2, "`10.0.0.1` is not a multicast group");
}

#[test]
fn sigint_wakes_udpsrc_blocked_in_recv_and_timeout_reports() {
    let mut rx = Proc::spawn(
        &[
            "-m",
            "-e",
            "udpsrc address=127.0.0.1 port=0 timeout=20ms ! fakesink",
        ],
        None,
    );
    rx.port();
    // Nothing is sent: the timeout message proves it is waiting in recv.
    rx.wait_for("timeout: no datagram for 20ms");
    rx.signal(Signal::INT);
    let done = rx.finish();
    assert_eq!(done.code, 0, "{}", done.stderr);
}
