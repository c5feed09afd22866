//! UDP: `udpsrc` (unicast or multicast), `udpsink` and `multiudpsink`, and the seed's
//! `udpmulticastsrc` / `udpmulticastsink`, which are the same elements insisting on a multicast
//! group. One datagram is one buffer; a datagram longer than `mtu` is cut to `mtu` bytes and
//! counted as truncated (`--stats`), never written past its buffer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::{basesink_props, net_error, port, resolve, Stamper};
use crate::element::prelude::*;

/// gst udpsrc's default `mtu`.
const DEFAULT_MTU: u64 = 1492;
/// Buffers a UDP source may hold at once: datagrams are small, and a burst that arrives while
/// the thread downstream is busy waits here rather than overflowing the kernel's buffer.
const UDP_POOL_SLOTS: usize = 64;

/// Why the socket-passing properties of gst's UDP elements do nothing here.
const NO_SOCKET_OBJECTS: &str = "parallax opens its own sockets; a GSocket cannot be passed in";

/// A new UDP socket for `family`, close-on-exec and non-blocking (tokio drives it).
fn udp_socket(family: AddressFamily) -> std::io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        family,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

fn family_of(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    }
}

/// Interface indices of a comma-separated `multicast-iface` list (`lo`, `eth0,eth1`).
fn interfaces(fd: &OwnedFd, names: Option<&str>) -> Result<Vec<u32>, ElementError> {
    let Some(names) = names.filter(|n| !n.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    names
        .split(',')
        .map(|n| {
            let n = n.trim();
            rustix::net::netdevice::name_to_index(fd, n)
                .map_err(|e| net_error(format!("no network interface `{n}`"), e.into()))
        })
        .collect()
}

// --- udpsrc ------------------------------------------------------------------------------------

macro_rules! udpsrc_props {
    ($address:expr) => {
        &[
            PropSpec::string(
                "address",
                Some($address),
                "Address to receive packets for: a local address, or a multicast group to join",
            ),
            PropSpec::int(
                "port",
                5004,
                0,
                65535,
                "The port to receive the packets from (0 = allocate one and report it)",
            ),
            PropSpec::string(
                "multicast-group",
                Some($address),
                "The address of the multicast group to join (deprecated in gst: use address)",
            ),
            PropSpec::bool(
                "auto-multicast",
                true,
                "Automatically join/leave multicast groups",
            ),
            PropSpec::string(
                "multicast-iface",
                None,
                "Network interfaces to join the multicast group on, comma separated (`lo`, `eth0,eth1`)",
            ),
            PropSpec::bool(
                "loop",
                true,
                "Used for setting the multicast loop parameter",
            ),
            PropSpec::int(
                "buffer-size",
                0,
                0,
                i32::MAX as i64,
                "Size of the kernel receive buffer in bytes (0 = default)",
            ),
            PropSpec::uint(
                "mtu",
                DEFAULT_MTU,
                1,
                i32::MAX as u64,
                "Maximum expected datagram size: longer datagrams are cut to it and counted as truncated",
            ),
            PropSpec::time(
                "timeout",
                0,
                0,
                i64::MAX,
                "Post a message (-m) after this long without a datagram (0 = disabled)",
            ),
            PropSpec::bool("reuse", true, "Enable reuse of the port"),
            PropSpec::int(
                "skip-first-bytes",
                0,
                0,
                i32::MAX as i64,
                "Number of bytes to skip at the start of each datagram",
            ),
            PropSpec::string(
                "uri",
                Some("udp://0.0.0.0:5004"),
                "URI in the form of udp://address:port (sets address and port)",
            ),
            PropSpec::int(
                "num-buffers",
                -1,
                -1,
                i32::MAX as i64,
                "Number of buffers to output before sending EOS (-1 = unlimited)",
            ),
            PropSpec::bool(
                "do-timestamp",
                true,
                "Stamp each buffer with the pipeline's running time at reception",
            ),
            PropSpec::uint(
                "blocksize",
                4096,
                0,
                u32::MAX as u64,
                "Size in bytes to read per buffer",
            )
            .ignored("a datagram is one buffer; its largest size is mtu"),
            PropSpec::string("caps", None, "The caps of the source pad")
                .ignored("put caps after the element in the description instead"),
            PropSpec::bool(
                "close-socket",
                true,
                "Close socket if passed as property on state change",
            )
            .ignored(NO_SOCKET_OBJECTS),
            PropSpec::bool(
                "retrieve-sender-address",
                true,
                "Whether to retrieve the sender address and add it to buffers as meta",
            )
            .ignored("parallax buffer metadata has no sender address"),
            PropSpec::string("socket", None, "Socket to use for UDP reception")
                .ignored(NO_SOCKET_OBJECTS),
            PropSpec::string("used-socket", None, "Socket currently in use for UDP reception")
                .read_only(),
            PropSpec::enumeration(
                "socket-timestamp",
                "disabled",
                &[
                    EnumValue {
                        nick: "disabled",
                        value: 0,
                        doc: "Disable additional timestamps",
                    },
                    EnumValue {
                        nick: "realtime",
                        value: 1,
                        doc: "Timestamp with realtime clock",
                    },
                ],
                "Used for adding alternative timestamp using SO_TIMESTAMP",
            )
            .ignored("do-timestamp stamps the running time at reception"),
            PropSpec::bool(
                "typefind",
                false,
                "Run typefind before negotiating (deprecated in gst, non-functional)",
            )
            .ignored("deprecated and non-functional in gst too"),
        ]
    };
}

pub(crate) static UDPSRC: Factory = Factory {
    name: "udpsrc",
    aliases: &["asyncudpsrc"],
    klass: Klass::Source,
    summary: "Receives UDP datagrams, unicast or multicast",
    doc: "Binds `address`:`port` and makes each datagram a buffer (sequence number, running-time \
          pts with do-timestamp, the MARKER flag). A multicast `address` is joined (on the \
          interfaces of `multicast-iface`, e.g. `lo`, or where the kernel routes it) and the \
          socket is bound to the group, so only its datagrams arrive. Datagrams longer than \
          `mtu` are cut and counted as truncated in --stats. UDP has no end of stream: \
          `num-buffers` or Ctrl-C ends it; `port=0` allocates a port and prints `NAME: port = N`.",
    pads: Pads::SOURCE,
    props: udpsrc_props!("0.0.0.0"),
    hints: Hints::ASYNC_IO,
    build: |p| build_udpsrc(p, false),
};

pub(crate) static UDPMULTICASTSRC: Factory = Factory {
    name: "udpmulticastsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Receives the datagrams of a multicast group",
    doc: "udpsrc for a multicast group (the seed's UdpMulticastSrc): `address` must be a \
          multicast address (224.0.0.0/4, ff00::/8); it is joined on `multicast-iface` \
          (e.g. `lo`) or where the kernel routes it. Everything else is udpsrc's.",
    pads: Pads::SOURCE,
    props: udpsrc_props!("239.255.0.1"),
    hints: Hints::ASYNC_IO,
    build: |p| build_udpsrc(p, true),
};

fn build_udpsrc(p: &Props, multicast_only: bool) -> Result<ElementImpl, ElementError> {
    let mut address = p.string("address")?.unwrap_or("0.0.0.0").to_owned();
    let mut port_no = port(p, "port")?;
    if p.is_set("multicast-group") && !p.is_set("address") {
        address = p.string("multicast-group")?.unwrap_or("0.0.0.0").to_owned();
    }
    if p.is_set("uri") {
        let uri = p.string("uri")?.unwrap_or_default();
        let (host, port_text) = uri
            .strip_prefix("udp://")
            .and_then(|rest| rest.rsplit_once(':'))
            .ok_or_else(|| {
                ElementError::Config(format!("uri `{uri}` is not of the form udp://address:port"))
            })?;
        port_no = port_text.parse().map_err(|_| {
            ElementError::Config(format!("uri `{uri}`: `{port_text}` is not a port"))
        })?;
        address = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
    }
    if multicast_only && !address.parse::<IpAddr>().is_ok_and(|a| a.is_multicast()) {
        return Err(ElementError::Config(format!(
            "address `{address}` is not a multicast group (224.0.0.0/4 or ff00::/8)"
        )));
    }
    let mtu = usize::try_from(p.uint("mtu")?).unwrap_or(usize::MAX);
    let timeout = match p.time("timeout")? {
        0 => None,
        ns => Some(Duration::from_nanos(ns as u64)),
    };
    Ok(ElementImpl::AsyncSource(Box::new(UdpSrc {
        address,
        port: port_no,
        auto_multicast: p.bool("auto-multicast")?,
        ifaces: p.string("multicast-iface")?.map(str::to_owned),
        multicast_loop: p.bool("loop")?,
        buffer_size: usize::try_from(p.int("buffer-size")?).unwrap_or(0),
        reuse: p.bool("reuse")?,
        skip: usize::try_from(p.int("skip-first-bytes")?).unwrap_or(0),
        mtu,
        timeout,
        stamper: Stamper::new(p)?,
        socket: None,
    })))
}

/// A bound (and maybe joined) datagram socket.
struct UdpSrc {
    address: String,
    port: u16,
    auto_multicast: bool,
    ifaces: Option<String>,
    multicast_loop: bool,
    buffer_size: usize,
    reuse: bool,
    skip: usize,
    mtu: usize,
    timeout: Option<Duration>,
    stamper: Stamper,
    socket: Option<UdpSocket>,
}

impl UdpSrc {
    /// Creates, configures, binds and joins the socket.
    fn open(&self, addr: SocketAddr) -> Result<(OwnedFd, SocketAddr), ElementError> {
        let what = |w: &str| format!("{w} for {addr}");
        let fd =
            udp_socket(family_of(&addr)).map_err(|e| net_error(what("creating a socket"), e))?;
        if self.reuse {
            sockopt::set_socket_reuseaddr(&fd, true)
                .map_err(|e| net_error(what("setting reuse"), e.into()))?;
        }
        if self.buffer_size > 0 {
            sockopt::set_socket_recv_buffer_size(&fd, self.buffer_size)
                .map_err(|e| net_error(what("setting buffer-size"), e.into()))?;
        }
        rustix::net::bind(&fd, &addr).map_err(|e| {
            net_error(
                format!("cannot bind address {} port {}", self.address, self.port),
                e.into(),
            )
        })?;
        let local = rustix::net::getsockname(&fd)
            .ok()
            .and_then(|a| SocketAddr::try_from(a).ok())
            .unwrap_or(addr);
        if addr.ip().is_multicast() && self.auto_multicast {
            let ifaces = interfaces(&fd, self.ifaces.as_deref())?;
            let join = |ifindex: u32| match addr.ip() {
                IpAddr::V4(group) => sockopt::set_ip_add_membership_with_ifindex(
                    &fd,
                    &group,
                    &Ipv4Addr::UNSPECIFIED,
                    ifindex,
                ),
                IpAddr::V6(group) => sockopt::set_ipv6_add_membership(&fd, &group, ifindex),
            };
            let joins = if ifaces.is_empty() { vec![0] } else { ifaces };
            for ifindex in joins {
                join(ifindex).map_err(|e| {
                    net_error(
                        format!("cannot join multicast group {}", addr.ip()),
                        e.into(),
                    )
                })?;
            }
            let looped = match addr.ip() {
                IpAddr::V4(_) => sockopt::set_ip_multicast_loop(&fd, self.multicast_loop),
                IpAddr::V6(_) => sockopt::set_ipv6_multicast_loop(&fd, self.multicast_loop),
            };
            looped.map_err(|e| net_error(what("setting loop"), e.into()))?;
        }
        Ok((fd, local))
    }

    /// Waits for the next datagram and reads it into a slot, cut to the mtu.
    async fn receive(&mut self, cx: &mut AsyncCtx) -> Result<Buffer, ElementError> {
        let socket = self.socket.as_ref().expect("start ran");
        let mut slot = cx.loan().await?;
        let cap = slot.capacity().min(self.mtu);
        loop {
            let data = &mut slot.as_mut_slice()[..cap];
            let recv = socket.async_io(Interest::READABLE, || {
                super::recv_datagram_into(socket.as_fd(), &mut *data)
            });
            let got = match self.timeout {
                Some(t) => match tokio::time::timeout(t, recv).await {
                    Ok(r) => r,
                    Err(_) => {
                        cx.message(format_args!(
                            "timeout: no datagram for {}",
                            format_duration(t)
                        ));
                        continue;
                    }
                },
                None => recv.await,
            };
            let (n, real) =
                got.map_err(|e| net_error(format!("receiving on {}", self.address), e))?;
            super::note_truncation(cx, n, real, format_args!("mtu {}", self.mtu));
            if n < self.skip {
                cx.message(format_args!(
                    "a datagram of {n} bytes is shorter than skip-first-bytes={}: dropped",
                    self.skip
                ));
                continue;
            }
            let mut buf = slot.freeze(n);
            if self.skip > 0 {
                buf = buf.slice(self.skip..n).expect("skip <= n");
            }
            buf.meta.flags = BufferFlags::MARKER;
            return Ok(buf);
        }
    }
}

fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl AsyncSource for UdpSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(PoolRequest {
            slot_size: self.mtu,
            slots: UDP_POOL_SLOTS,
        })
    }

    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let addr = resolve(&self.address, self.port).await?[0];
        let (fd, local) = self.open(addr)?;
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(fd))
            .map_err(|e| net_error(format!("registering the socket for {addr}"), e))?;
        if self.port == 0 {
            cx.report_chosen("port", local.port());
        }
        cx.message(format_args!("receiving on {local}"));
        self.socket = Some(socket);
        Ok(())
    }

    async fn produce(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        if self.stamper.done() {
            return Ok(None);
        }
        let buf = self.receive(cx).await?;
        let mut buf = buf;
        self.stamper.stamp(&mut buf, || cx.running_time_ns());
        Ok(Some(buf))
    }
}

// --- udpsink, multiudpsink ---------------------------------------------------------------------

macro_rules! udpsink_props {
    ($($own:expr),* $(,)?) => {
        basesink_props![
            $($own,)*
            PropSpec::string("bind-address", None, "Address to bind the socket to"),
            PropSpec::int("bind-port", 0, 0, 65535, "Port to bind the socket to"),
            PropSpec::int("ttl", 64, 0, 255, "Used for setting the unicast TTL parameter"),
            PropSpec::int("ttl-mc", 1, 0, 255, "Used for setting the multicast TTL parameter"),
            PropSpec::bool("loop", true, "Used for setting the multicast loop parameter"),
            PropSpec::string(
                "multicast-iface",
                None,
                "The network interface to send multicast datagrams on (`lo`, `eth0`)"
            ),
            PropSpec::bool(
                "auto-multicast",
                true,
                "Automatically join/leave the multicast groups"
            )
            .ignored("a sending socket needs no group membership: loop decides local delivery"),
            PropSpec::int(
                "buffer-size",
                0,
                0,
                i32::MAX as i64,
                "Size of the kernel send buffer in bytes (0 = default)"
            ),
            PropSpec::int(
                "qos-dscp",
                -1,
                -1,
                63,
                "Quality of Service, differentiated services code point (-1 default)"
            ),
            PropSpec::bool(
                "send-duplicates",
                true,
                "When a destination is listed several times, send each datagram that many times"
            ),
            PropSpec::uint("bytes-served", 0, 0, u64::MAX, "Total number of bytes sent to all clients")
                .read_only(),
            PropSpec::uint("bytes-to-serve", 0, 0, u64::MAX, "Number of bytes received to serve to clients")
                .read_only(),
            PropSpec::bool("close-socket", true, "Close socket if passed as property on state change")
                .ignored(NO_SOCKET_OBJECTS),
            PropSpec::bool("force-ipv4", false, "Forcing the use of an IPv4 socket")
                .ignored("deprecated in gst, no effect there either"),
            PropSpec::string("socket", None, "Socket to use for UDP sending").ignored(NO_SOCKET_OBJECTS),
            PropSpec::string("socket-v6", None, "Socket to use for UDPv6 sending")
                .ignored(NO_SOCKET_OBJECTS),
            PropSpec::string("used-socket", None, "Socket currently in use for UDP sending").read_only(),
            PropSpec::string("used-socket-v6", None, "Socket currently in use for UDPv6 sending")
                .read_only(),
            PropSpec::bool("sync", true, "Sync on the clock").ignored(super::NO_CLOCK),
        ]
    };
}

pub(crate) static UDPSINK: Factory = Factory {
    name: "udpsink",
    aliases: &["asyncudpsink"],
    klass: Klass::Sink,
    summary: "Sends each buffer as a UDP datagram",
    doc: "Sends every buffer as one datagram to `host`:`port` (or to every destination of \
          `clients`, when set). A multicast `host` is sent to on `multicast-iface` with `ttl-mc` \
          and `loop`. A buffer larger than a datagram can carry (65507 bytes over IPv4) is an \
          error that says so: give the source a smaller blocksize.",
    pads: Pads::SINK,
    props: udpsink_props![
        PropSpec::string("host", Some("localhost"), "The host/IP/multicast group to send the packets to"),
        PropSpec::int("port", 5004, 0, 65535, "The port to send the packets to"),
        PropSpec::string(
            "clients",
            Some("localhost:5004"),
            "A comma separated list of host:port pairs with destinations (replaces host and port when set)"
        )
        .role(Role::HostPorts),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| build_udpsink(p, Dests::HostPort, false),
};

pub(crate) static MULTIUDPSINK: Factory = Factory {
    name: "multiudpsink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Sends each buffer as a UDP datagram to every client",
    doc: "udpsink for a list of destinations: every buffer goes as one datagram to each \
          host:port of `clients` (comma separated; `[::1]:5004` for IPv6), in order.",
    pads: Pads::SINK,
    props: udpsink_props![PropSpec::string(
        "clients",
        Some(""),
        "A comma separated list of host:port pairs with destinations"
    )
    .role(Role::HostPorts),],
    hints: Hints::ASYNC_IO,
    build: |p| build_udpsink(p, Dests::Clients, false),
};

pub(crate) static UDPMULTICASTSINK: Factory = Factory {
    name: "udpmulticastsink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Sends each buffer as a datagram to a multicast group",
    doc: "udpsink for a multicast group (the seed's UdpMulticastSink): `host` must be a \
          multicast address (224.0.0.0/4, ff00::/8); datagrams leave on `multicast-iface` \
          (e.g. `lo`) with `ttl-mc` and `loop`. Everything else is udpsink's.",
    pads: Pads::SINK,
    props: udpsink_props![
        PropSpec::string(
            "host",
            Some("239.255.0.1"),
            "The multicast group to send the packets to"
        ),
        PropSpec::int("port", 5004, 0, 65535, "The port to send the packets to"),
        PropSpec::string(
            "clients",
            Some("239.255.0.1:5004"),
            "A comma separated list of group:port pairs (replaces host and port when set)"
        )
        .role(Role::HostPorts),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| build_udpsink(p, Dests::HostPort, true),
};

/// Where a UDP sink's destinations come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dests {
    /// `host` and `port`, unless `clients` is set.
    HostPort,
    /// `clients` only.
    Clients,
}

/// `host:port,host:port` (`[v6]:port` too) into pairs.
fn parse_clients(text: &str) -> Result<Vec<(String, u16)>, ElementError> {
    text.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            let (host, port) = c.rsplit_once(':').ok_or_else(|| {
                ElementError::Config(format!("client `{c}` is not of the form host:port"))
            })?;
            let port = port.parse().map_err(|_| {
                ElementError::Config(format!("client `{c}`: `{port}` is not a port number"))
            })?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok((host.to_owned(), port))
        })
        .collect()
}

fn build_udpsink(
    p: &Props,
    from: Dests,
    multicast_only: bool,
) -> Result<ElementImpl, ElementError> {
    let mut clients = if from == Dests::Clients || p.is_set("clients") {
        parse_clients(p.string("clients")?.unwrap_or_default())?
    } else {
        vec![(
            p.string("host")?.unwrap_or("localhost").to_owned(),
            port(p, "port")?,
        )]
    };
    if multicast_only {
        if let Some((host, _)) = clients
            .iter()
            .find(|(h, _)| !h.parse::<IpAddr>().is_ok_and(|a| a.is_multicast()))
        {
            return Err(ElementError::Config(format!(
                "`{host}` is not a multicast group (224.0.0.0/4 or ff00::/8)"
            )));
        }
    }
    if !p.bool("send-duplicates")? {
        let mut seen = std::collections::HashSet::new();
        clients.retain(|c| seen.insert(c.clone()));
    }
    let bind_address = p.string("bind-address")?.map(str::to_owned);
    let bind_port = port(p, "bind-port")?;
    if bind_address.is_none() && bind_port != 0 {
        return Err(ElementError::Config(
            "bind-port needs bind-address (which address to bind it on)".into(),
        ));
    }
    Ok(ElementImpl::AsyncSink(Box::new(UdpSink {
        clients,
        bind: bind_address.map(|a| (a, bind_port)),
        ttl: u32::try_from(p.int("ttl")?).unwrap_or(64),
        ttl_mc: u32::try_from(p.int("ttl-mc")?).unwrap_or(1),
        multicast_loop: p.bool("loop")?,
        iface: p.string("multicast-iface")?.map(str::to_owned),
        buffer_size: usize::try_from(p.int("buffer-size")?).unwrap_or(0),
        dscp: u8::try_from(p.int("qos-dscp")?).ok(),
        v4: None,
        v6: None,
        dests: Vec::new(),
    })))
}

/// One socket per address family in use, and the resolved destinations.
struct UdpSink {
    clients: Vec<(String, u16)>,
    bind: Option<(String, u16)>,
    ttl: u32,
    ttl_mc: u32,
    multicast_loop: bool,
    iface: Option<String>,
    buffer_size: usize,
    dscp: Option<u8>,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    dests: Vec<SocketAddr>,
}

impl UdpSink {
    /// A sending socket for `family`, bound where asked, with TTLs, loop and interface set.
    async fn open(&self, family: AddressFamily) -> Result<UdpSocket, ElementError> {
        let v6 = family == AddressFamily::INET6;
        let what = |w: &str| format!("{w} (udp {})", if v6 { "ipv6" } else { "ipv4" });
        let fd = udp_socket(family).map_err(|e| net_error(what("creating a socket"), e))?;
        let local = match &self.bind {
            Some((host, port)) => {
                let candidates = resolve(host, *port).await?;
                Some(
                    candidates
                        .into_iter()
                        .find(|a| family_of(a) == family)
                        .ok_or_else(|| {
                            ElementError::Failed(format!(
                                "bind-address `{host}` has no address of the destinations' family"
                            ))
                        })?,
                )
            }
            None => None,
        };
        if let Some(local) = local {
            rustix::net::bind(&fd, &local)
                .map_err(|e| net_error(format!("cannot bind to {local}"), e.into()))?;
        }
        let set = |r: rustix::io::Result<()>, name: &str| {
            r.map_err(|e| net_error(what(&format!("setting {name}")), e.into()))
        };
        if v6 {
            set(
                sockopt::set_ipv6_unicast_hops(&fd, Some(self.ttl as u8)),
                "ttl",
            )?;
            set(sockopt::set_ipv6_multicast_hops(&fd, self.ttl_mc), "ttl-mc")?;
            set(
                sockopt::set_ipv6_multicast_loop(&fd, self.multicast_loop),
                "loop",
            )?;
        } else {
            set(sockopt::set_ip_ttl(&fd, self.ttl), "ttl")?;
            set(sockopt::set_ip_multicast_ttl(&fd, self.ttl_mc), "ttl-mc")?;
            set(
                sockopt::set_ip_multicast_loop(&fd, self.multicast_loop),
                "loop",
            )?;
            if let Some(dscp) = self.dscp {
                set(sockopt::set_ip_tos(&fd, dscp << 2), "qos-dscp")?;
            }
        }
        if let Some(&ifindex) = interfaces(&fd, self.iface.as_deref())?.first() {
            if v6 {
                set(
                    sockopt::set_ipv6_multicast_if(&fd, ifindex),
                    "multicast-iface",
                )?;
            } else {
                set(
                    sockopt::set_ip_multicast_if_with_ifindex(
                        &fd,
                        &Ipv4Addr::UNSPECIFIED,
                        &Ipv4Addr::UNSPECIFIED,
                        ifindex,
                    ),
                    "multicast-iface",
                )?;
            }
        }
        if self.buffer_size > 0 {
            set(
                sockopt::set_socket_send_buffer_size(&fd, self.buffer_size),
                "buffer-size",
            )?;
        }
        UdpSocket::from_std(std::net::UdpSocket::from(fd))
            .map_err(|e| net_error(what("registering the socket"), e))
    }
}

impl AsyncSink for UdpSink {
    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        for (host, port) in &self.clients {
            self.dests.push(resolve(host, *port).await?[0]);
        }
        if self.dests.iter().any(|d| d.is_ipv4()) {
            self.v4 = Some(self.open(AddressFamily::INET).await?);
        }
        if self.dests.iter().any(|d| d.is_ipv6()) {
            self.v6 = Some(self.open(AddressFamily::INET6).await?);
        }
        if self.dests.is_empty() {
            cx.message("no clients: nothing will be sent");
        } else {
            let list: Vec<String> = self.dests.iter().map(ToString::to_string).collect();
            cx.message(format_args!("sending to {}", list.join(", ")));
        }
        Ok(())
    }

    async fn render(&mut self, buf: Buffer, _cx: &mut AsyncCtx) -> Result<SinkFlow, ElementError> {
        for dest in &self.dests {
            let socket = if dest.is_ipv4() { &self.v4 } else { &self.v6 };
            let socket = socket.as_ref().expect("a socket per family in use");
            match socket.send_to(buf.data(), dest).await {
                Ok(_) => {}
                // A port unreachable reported for an earlier datagram: UDP does not care.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) => {
                    return Err(ElementError::Failed(format!(
                        "a buffer of {} bytes does not fit in one datagram to {dest}; give the \
                         source a smaller blocksize (at most 65507 bytes over IPv4)",
                        buf.len()
                    )))
                }
                Err(e) => return Err(net_error(format!("sending to {dest}"), e)),
            }
        }
        Ok(SinkFlow::Continue)
    }
}
