//! A black-holed address without a firewall (TESTBED.md): a loopback listener that never
//! accepts and whose accept queue is full, so the kernel drops further SYNs and a connect
//! there hangs, as it does on a configured but dead IPv6 route.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: Socket,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    /// A black hole on `ip` (a loopback address), on a port the system chooses. Panics when
    /// connects there do not hang (the test could not show anything).
    pub fn on(ip: IpAddr) -> Self {
        let listener =
            Socket::new(Domain::for_address(SocketAddr::new(ip, 0)), Type::STREAM, None).expect("socket");
        listener.bind(&SocketAddr::new(ip, 0).into()).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        listener.listen(0).expect("listen");
        let addr = listener.local_addr().ok().and_then(|a| a.as_socket()).expect("local address");
        let mut queued = Vec::new();
        for _ in 0..64 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    return Self { addr, _listener: listener, _queued: queued }
                }
                Err(e) => panic!("filling the accept queue of {addr}: {e}"),
            }
        }
        panic!("the accept queue of {addr} never filled: connects there do not hang on this system")
    }
}

/// The address for "the dead family": `[::1]` where IPv6 works on loopback, else 127.0.0.3
/// (another IPv4 loopback; what the tests need is the order of the addresses, not the family).
pub fn dead_ip() -> IpAddr {
    if TcpListener::bind("[::1]:0").is_ok() {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))
    }
}

/// A port on 127.0.0.1 where nothing listens: a connect there is refused at once.
pub fn refused_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1")
}
