//! Zenoh's own throughput test, without Parallax: what Zenoh's `z_pub_thr`/`z_sub_thr` and
//! `z_pub_shm_thr` examples do, as one program, for `benches/zenoh_throughput.py` to compare
//! zenohsink → zenohsrc against.
//!
//! ```text
//! zenoh_thr sub ENDPOINT COUNT shm|noshm     listens, prints `listening = ENDPOINT`, takes COUNT
//!                                            samples, prints the bytes it got
//! zenoh_thr pub ENDPOINT COUNT SIZE shm|noshm  connects, waits for the subscriber, puts COUNT
//!                                            payloads of SIZE bytes, waits for it to leave
//! ```
//!
//! As in Zenoh's examples, the publisher makes its payload once and puts it again and again:
//! a plain one is a `ZBytes` cloned for each put (Zenoh copies it into its batches), a shared one
//! a chunk of a POSIX shared-memory pool (the subscriber maps it; nothing is copied at all).
//! Both ends run in peer mode with multicast scouting off, congestion control `block`.

// Built only with the zenoh feature (`required-features` in Cargo.toml).
fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use zenoh::qos::CongestionControl;
    use zenoh::Wait as _;

    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: zenoh_thr sub ENDPOINT COUNT shm|noshm | pub ENDPOINT COUNT SIZE shm|noshm";
    let (role, endpoint, count) = match &args[..] {
        [r, e, c, ..] => (
            r.as_str(),
            e.as_str(),
            c.parse::<u64>()
                .map_err(|e| format!("COUNT `{c}`: {e}; {usage}"))?,
        ),
        _ => return Err(usage.into()),
    };
    let shm = args.last().map(String::as_str) == Some("shm");
    let mut config = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, key: &str, value: &str| {
        c.insert_json5(key, value)
            .map_err(|e| format!("{key}: {e}"))
    };
    set(&mut config, "mode", "\"peer\"")?;
    set(&mut config, "scouting/multicast/enabled", "false")?;
    set(
        &mut config,
        "transport/shared_memory/enabled",
        if shm { "true" } else { "false" },
    )?;
    let list = format!("[\"{endpoint}\"]");
    match role {
        "sub" => {
            set(&mut config, "listen/endpoints", &list)?;
            let session = zenoh::open(config).wait()?;
            let subscriber = session.declare_subscriber("bench/thr").wait()?;
            eprintln!("listening = {endpoint}");
            let (mut got, mut bytes, mut in_shm) = (0u64, 0u64, 0u64);
            while got < count {
                let sample = subscriber.recv()?;
                bytes += sample.payload().len() as u64;
                in_shm += u64::from(sample.payload().as_shm().is_some());
                got += 1;
            }
            println!("{bytes} bytes in {got} samples, {in_shm} in shared memory");
            drop(subscriber);
            session.close().wait()?;
        }
        "pub" => {
            let size = args.get(3).ok_or(usage)?;
            let size: usize = size
                .parse()
                .map_err(|e| format!("SIZE `{size}`: {e}; {usage}"))?;
            set(&mut config, "connect/endpoints", &list)?;
            let session = zenoh::open(config).wait()?;
            let publisher = session
                .declare_publisher("bench/thr")
                .congestion_control(CongestionControl::Block)
                .wait()?;
            let matching = || publisher.matching_status().wait().map(|m| m.matching());
            while !matching()? {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // The pool outlives every put of its chunk.
            let provider = if shm {
                Some(zenoh::shm::ShmProviderBuilder::default_backend(size * 4).wait()?)
            } else {
                None
            };
            let payload: zenoh::bytes::ZBytes = match &provider {
                Some(provider) => {
                    let mut chunk = provider.alloc(size).wait().map_err(|e| format!("{e:?}"))?;
                    chunk.fill(1);
                    chunk.into()
                }
                None => vec![1u8; size].into(),
            };
            for _ in 0..count {
                publisher.put(payload.clone()).wait()?;
            }
            // Closing drops what is still queued: wait until the subscriber has it all and left.
            while matching()? {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            drop((publisher, payload));
            session.close().wait()?;
            drop(provider);
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
