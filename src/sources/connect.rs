//! How the HTTPS client reaches a host: Happy Eyeballs (RFC 8305), a resolver that honours
//! [`Config::with_resolve`](crate::Config::with_resolve), and the one error that names every
//! address tried.
//!
//! ureq 3 tries a host's addresses one after another, giving the first one half of the connect
//! timeout: where IPv6 is configured but black-holed, every new connection waited 7.5 s (of
//! 15 s) before trying IPv4. [`HappyEyeballs`] replaces ureq's `TcpConnector` in the chain
//! (CONNECT proxy → TCP → TLS, as ureq's `DefaultConnector` builds it, so `HTTPS_PROXY` works
//! as before and the proxy itself is reached the same way):
//!
//! - the addresses are ordered with the families interleaved, the first family being the
//!   resolver's first address's (RFC 8305 §4; the system's resolver already sorted them by
//!   RFC 6724);
//! - one attempt starts, the next one [`ATTEMPT_DELAY`] (250 ms, the "Connection Attempt Delay"
//!   of §5 and §8) later or as soon as an attempt fails; earlier attempts keep running (§5);
//! - the first to connect wins; the others are shut down at once (a `shutdown` on a socket
//!   still connecting aborts it on Linux; elsewhere it ends at the deadline) and a late
//!   success is closed (§5: "all other connections attempts that have not yet succeeded
//!   SHOULD be canceled");
//! - each attempt's timeout is what is left of the connect timeout
//!   ([`Config::connect_timeout`](crate::Config::connect_timeout)) when it starts, and the
//!   whole race ends at that deadline. There is no shorter fixed timeout per attempt: attempts
//!   overlap, so a dead family costs the 250 ms stagger whatever it is, and a shorter one would
//!   only cut off a live address whose first SYNs were lost (answered ~1 s or ~3 s later);
//! - when every attempt failed, the error names each address and what happened to it
//!   (`could not connect to localhost:443: [::1]:443 timed out after 5.0 s; 127.0.0.1:443
//!   refused`): an I/O error (kind `TimedOut` when any attempt timed out), which
//!   `agent::classify` reports as transient, as before.
//!
//! The connector cannot print: after [`NOTICE_AFTER`] of waiting it sends
//! [`Progress::Connecting`] to the progress callback that [`reporting_to`] installed on the
//! calling thread. ureq connects on the thread that makes the request, and ureq's connector
//! sees no per-request data, so the callback travels in a thread-local set around each fetch
//! by the transfer engine (each of its connections is a thread of its own).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};

use crate::progress::{Progress, ProgressFn};

/// How long after an attempt starts the next one starts, unless it fails first (RFC 8305 §5).
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// How long a connection may take before [`Progress::Connecting`] is sent…
pub(crate) const NOTICE_AFTER: Duration = Duration::from_secs(3);
/// …and how often it is sent again while the wait goes on.
const NOTICE_EVERY: Duration = Duration::from_secs(10);

thread_local! {
    /// The progress callback of the download this thread works for (see [`reporting_to`]).
    static WATCHER: RefCell<Option<ProgressFn>> = const { RefCell::new(None) };
}

/// Runs `f` with `progress` told about slow connections made on this thread (the previous
/// callback, if any, is back afterwards, even if `f` panics).
pub(crate) fn reporting_to<R>(progress: Option<&ProgressFn>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<ProgressFn>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            WATCHER.with(|w| *w.borrow_mut() = previous);
        }
    }
    let _restore = Restore(WATCHER.with(|w| w.replace(progress.cloned())));
    f()
}

fn notify(host: &str, waited: Duration, addresses: &[SocketAddr]) {
    let event = Progress::Connecting { host, waited, addresses };
    event.trace(); // for operators, with a callback or not
                   // Cloned out, so that the callback runs without the thread-local borrowed.
    if let Some(f) = WATCHER.with(|w| w.borrow().clone()) {
        f(&event);
    }
}

/// The TCP step of the connector chain, by Happy Eyeballs (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct HappyEyeballs;

impl<In: Transport> Connector<In> for HappyEyeballs {
    type Out = Either<In, Connected>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(transport) = chained {
            // A CONNECT proxy's tunnel: nothing to open here.
            return Ok(Some(Either::A(transport)));
        }
        // The host and port only: the URI may carry a signed query or credentials.
        let host = match (details.uri.scheme(), details.uri.authority()) {
            (Some(scheme), Some(authority)) => DefaultResolver::host_and_port(scheme, authority),
            _ => None,
        }
        .unwrap_or_else(|| details.uri.host().unwrap_or("the host").to_string());
        let addrs = interleave(&details.addrs);
        let timeout = details.timeout.not_zero().map(|d| *d);
        let stream = race(&host, &addrs, timeout, &mut |waited| notify(&host, waited, &addrs))
            .map_err(|e| ureq::Error::Io(io::Error::new(e.kind(), e)))?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let stream = Arc::new(stream);
        // ureq's `TcpConnector` does the same: `Agent::shutdown` can then interrupt its I/O.
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        let buffers =
            LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(Connected { stream, buffers, read_timeout: None, write_timeout: None })))
    }
}

/// A TCP connection [`HappyEyeballs`] made, as ureq's own `TcpTransport` (not public in ureq
/// 3) carries one: buffered, with the read and write timeouts ureq asks for.
#[derive(Debug)]
pub(crate) struct Connected {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// The timeouts set on the socket, to set them only when they change.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// The time left before `timeout`, or the timeout error when none is (as ureq's transports).
fn time_left(timeout: NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|d| *d))
}

/// An I/O error of a transfer: a timeout is ureq's timeout error (`WouldBlock` is how Unix
/// reports a socket timeout).
fn transfer_error(e: io::Error, timeout: NextTimeout) -> ureq::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ureq::Error::Timeout(timeout.reason),
        _ => ureq::Error::Io(e),
    }
}

impl Transport for Connected {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let left = time_left(timeout)?;
        if left != self.write_timeout {
            self.stream.set_write_timeout(left)?;
            self.write_timeout = left;
        }
        let output = &self.buffers.output()[..amount];
        (&*self.stream).write_all(output).map_err(|e| transfer_error(e, timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let left = time_left(timeout)?;
        if left != self.read_timeout {
            self.stream.set_read_timeout(left)?;
            self.read_timeout = left;
        }
        let input = self.buffers.input_append_buf();
        let read = loop {
            match (&*self.stream).read(input) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let amount = read.map_err(|e| transfer_error(e, timeout))?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// Whether a pooled connection can be used again: nothing to read (bytes the server sent
    /// unasked, or its close, mean it cannot).
    fn is_open(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let open =
            matches!((&*self.stream).read(&mut [0u8]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && open
    }
}

/// `addrs` with the families interleaved (RFC 8305 §4): the first address's family first, then
/// the other, alternating while both last; each family keeps the resolver's order.
pub(crate) fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else { return Vec::new() };
    let (same, other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv4() == first.is_ipv4());
    let mut out = Vec::with_capacity(addrs.len());
    for i in 0..same.len().max(other.len()) {
        out.extend(same.get(i).into_iter().chain(other.get(i)));
    }
    out
}

/// What happened to one address.
#[derive(Debug)]
enum Failure {
    Refused,
    TimedOut(Duration),
    Other(io::Error),
}

/// Every attempt to reach a host failed, or the connect timeout ended them.
#[derive(Debug)]
pub(crate) struct ConnectError {
    host: String,
    tried: Vec<(SocketAddr, Failure)>,
    /// Addresses not tried before the deadline.
    untried: usize,
}

impl ConnectError {
    /// `TimedOut` when any attempt timed out, `ConnectionRefused` when all were refused, else
    /// the last attempt's.
    fn kind(&self) -> io::ErrorKind {
        if self.untried > 0 || self.tried.iter().any(|(_, f)| matches!(f, Failure::TimedOut(_))) {
            return io::ErrorKind::TimedOut;
        }
        match self.tried.last() {
            Some((_, Failure::Other(e))) => e.kind(),
            _ => io::ErrorKind::ConnectionRefused,
        }
    }
}

impl ConnectError {
    /// Whether the race lasted the whole connect timeout: an address timed out, or was never
    /// tried before the deadline (a black hole: no route, a firewall that drops; the others may
    /// have refused). Retrying costs that timeout again each time.
    fn cost_the_timeout(&self) -> bool {
        self.untried > 0 || self.tried.iter().any(|(_, f)| matches!(f, Failure::TimedOut(_)))
    }
}

/// Whether `error` is a connection none of whose addresses accepted and that took the whole
/// connect timeout (see [`ConnectError`]): retrying it costs that timeout each time.
pub(crate) fn unreachable(error: &crate::error::SourceError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(c) = cause {
        let inner = c
            .downcast_ref::<io::Error>()
            .and_then(|e| e.get_ref())
            .map(|e| e as &(dyn std::error::Error + 'static));
        if let Some(ce) =
            inner.and_then(|e| e.downcast_ref::<ConnectError>()).or_else(|| c.downcast_ref::<ConnectError>())
        {
            return ce.cost_the_timeout();
        }
        cause = c.source();
    }
    false
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not connect to {}: ", self.host)?;
        if self.tried.is_empty() {
            return f.write_str("no address to try");
        }
        for (i, (addr, failure)) in self.tried.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            match failure {
                Failure::Refused => write!(f, "{sep}{addr} refused")?,
                Failure::TimedOut(after) => {
                    write!(f, "{sep}{addr} timed out after {:.1} s", after.as_secs_f64())?
                }
                Failure::Other(e) => write!(f, "{sep}{addr} {e}")?,
            }
        }
        if self.untried > 0 {
            write!(f, "; {} more address(es) not tried before the connect timeout", self.untried)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectError {}

/// One attempt: its address, when it started, a handle to abort it while it runs.
struct Attempt {
    addr: SocketAddr,
    started: Instant,
    running: Option<Socket>,
    failure: Option<Failure>,
}

/// Starts connecting to `addr` on a thread of its own, which sends the outcome as `(i, …)`;
/// `timeout`: until the race's deadline.
fn start(
    i: usize,
    addr: SocketAddr,
    timeout: Option<Duration>,
    tx: mpsc::Sender<(usize, io::Result<Socket>)>,
) -> Attempt {
    let started = Instant::now();
    let spawned =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).and_then(|socket| {
            let handle = socket.try_clone()?;
            // Named after the port: the tests look for threads left behind.
            std::thread::Builder::new().name(format!("connect:{}", addr.port())).spawn(move || {
                let outcome = match timeout {
                    Some(t) => socket.connect_timeout(&addr.into(), t),
                    None => socket.connect(&addr.into()),
                };
                // After the race ended, nobody listens: the socket closes here.
                let _ = tx.send((i, outcome.map(|()| socket)));
            })?;
            Ok(handle)
        });
    match spawned {
        Ok(handle) => Attempt { addr, started, running: Some(handle), failure: None },
        Err(e) => Attempt { addr, started, running: None, failure: Some(Failure::Other(e)) },
    }
}

/// Races connections to `addrs` (already ordered) as the module's documentation says;
/// `notify(waited)` is called while the wait is long. `timeout`: for the whole race.
pub(crate) fn race(
    host: &str,
    addrs: &[SocketAddr],
    timeout: Option<Duration>,
    notify: &mut dyn FnMut(Duration),
) -> Result<TcpStream, ConnectError> {
    let begin = Instant::now();
    let deadline = timeout.and_then(|t| begin.checked_add(t));
    let (tx, rx) = mpsc::channel();
    let mut attempts: Vec<Attempt> = Vec::with_capacity(addrs.len());
    let (mut next_at, mut notice_at) = (begin, begin + NOTICE_AFTER);
    let fail = |mut attempts: Vec<Attempt>, now: Instant| {
        let untried = addrs.len() - attempts.len();
        let tried = attempts
            .iter_mut()
            .map(|a| {
                if let Some(socket) = a.running.take() {
                    let _ = socket.shutdown(Shutdown::Both);
                }
                let failure = a.failure.take().unwrap_or(Failure::TimedOut(now - a.started));
                (a.addr, failure)
            })
            .collect();
        ConnectError { host: host.to_string(), tried, untried }
    };
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(fail(attempts, now));
        }
        if attempts.len() < addrs.len() && now >= next_at {
            let i = attempts.len();
            let attempt = start(i, addrs[i], deadline.map(|d| d - now), tx.clone());
            next_at = if attempt.failure.is_some() { now } else { now + ATTEMPT_DELAY };
            attempts.push(attempt);
            continue;
        }
        if attempts.len() == addrs.len() && attempts.iter().all(|a| a.running.is_none()) {
            return Err(fail(attempts, now));
        }
        if now >= notice_at {
            notify(now - begin);
            notice_at = now + NOTICE_EVERY;
        }
        let mut wake = notice_at;
        if attempts.len() < addrs.len() {
            wake = wake.min(next_at);
        }
        if let Some(d) = deadline {
            wake = wake.min(d);
        }
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok((i, Ok(socket))) => {
                attempts[i].running = None;
                for other in attempts.iter().filter_map(|a| a.running.as_ref()) {
                    let _ = other.shutdown(Shutdown::Both);
                }
                return Ok(TcpStream::from(socket));
            }
            Ok((i, Err(e))) => {
                let a = &mut attempts[i];
                a.running = None;
                a.failure = Some(match e.kind() {
                    io::ErrorKind::ConnectionRefused => Failure::Refused,
                    io::ErrorKind::TimedOut => Failure::TimedOut(a.started.elapsed()),
                    _ => Failure::Other(e),
                });
                next_at = Instant::now(); // a failure starts the next attempt at once
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port)
    }

    fn v6(last: u16, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)), port)
    }

    #[test]
    fn families_alternate_starting_with_the_resolvers_first() {
        let (a6, b6, c6) = (v6(1, 443), v6(2, 443), v6(3, 443));
        let (a4, b4) = (v4(1, 443), v4(2, 443));
        assert_eq!(interleave(&[a6, b6, c6, a4, b4]), [a6, a4, b6, b4, c6]);
        assert_eq!(interleave(&[a4, b4, a6, b6, c6]), [a4, a6, b4, b6, c6]);
        assert_eq!(interleave(&[a4, a6, b4, b6]), [a4, a6, b4, b6], "already interleaved");
        assert_eq!(interleave(&[a6, a4, b4]), [a6, a4, b4], "one IPv6, then the IPv4s");
        assert_eq!(interleave(&[a4, b4]), [a4, b4], "one family keeps its order");
        assert_eq!(interleave(&[]), Vec::<SocketAddr>::new());
    }

    #[test]
    fn the_error_names_every_address_and_what_happened() {
        let e = ConnectError {
            host: "localhost:443".into(),
            tried: vec![
                (v6(1, 443), Failure::TimedOut(Duration::from_millis(5000))),
                (v4(1, 443), Failure::Refused),
                (v4(2, 443), Failure::Other(io::Error::new(io::ErrorKind::NetworkUnreachable, "no route"))),
            ],
            untried: 2,
        };
        assert_eq!(
            e.to_string(),
            "could not connect to localhost:443: [2001:db8::1]:443 timed out after 5.0 s; \
             192.0.2.1:443 refused; 192.0.2.2:443 no route; \
             2 more address(es) not tried before the connect timeout"
        );
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let refused =
            ConnectError { host: "h:1".into(), tried: vec![(v4(1, 1), Failure::Refused)], untried: 0 };
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    /// A port on 127.0.0.1 where nothing listens.
    fn refused() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1")
    }

    /// A listener that never accepts, whose queue is full: connects there hang.
    fn black_hole() -> (Socket, Vec<TcpStream>, SocketAddr) {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        listener.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
        listener.listen(0).expect("listen");
        let addr = listener.local_addr().ok().and_then(|a| a.as_socket()).expect("address");
        let mut fill = Vec::new();
        for _ in 0..32 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => fill.push(s),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return (listener, fill, addr),
                Err(e) => panic!("filling the queue of {addr}: {e}"),
            }
        }
        panic!("the accept queue of {addr} never filled")
    }

    #[test]
    fn a_refused_address_hands_over_at_once_and_the_live_one_wins() {
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let live_addr = live.local_addr().unwrap();
        let began = Instant::now();
        let stream =
            race("h:1", &[refused(), live_addr], Some(Duration::from_secs(10)), &mut |_| {}).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), live_addr);
        assert!(began.elapsed() < ATTEMPT_DELAY, "no stagger after a failure: {:?}", began.elapsed());
    }

    #[test]
    fn a_hanging_address_costs_the_stagger_and_its_attempt_is_dropped() {
        let (_listener, _fill, dead) = black_hole();
        let live = TcpListener::bind("127.0.0.1:0").unwrap();
        let began = Instant::now();
        let stream =
            race("h:1", &[dead, live.local_addr().unwrap()], Some(Duration::from_secs(30)), &mut |_| {})
                .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), live.local_addr().unwrap());
        assert!(began.elapsed() >= ATTEMPT_DELAY && began.elapsed() < Duration::from_secs(10));
        // The losing attempt's thread ends soon (its socket shut down), not at the deadline.
        #[cfg(target_os = "linux")]
        {
            let name = format!("connect:{}", dead.port());
            let lingering = || {
                std::fs::read_dir("/proc/self/task")
                    .unwrap()
                    .flatten()
                    .any(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
            };
            let until = Instant::now() + Duration::from_secs(5);
            while lingering() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(!lingering(), "the attempt to {dead} still runs");
        }
    }

    #[test]
    fn every_address_dead_ends_at_the_deadline_with_a_notice_before() {
        let (_listener, _fill, dead) = black_hole();
        let refused = refused();
        let mut notices = Vec::new();
        let began = Instant::now();
        let err = race("h:1", &[dead, refused], Some(NOTICE_AFTER + Duration::from_millis(500)), &mut |w| {
            notices.push(w)
        })
        .unwrap_err();
        let took = began.elapsed();
        // Ends at the deadline (3.5 s), not never; the upper bound is generous for a loaded
        // machine, where threads may be scheduled late.
        assert!(
            took >= NOTICE_AFTER + Duration::from_millis(500) && took < Duration::from_secs(20),
            "{took:?}"
        );
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0] >= NOTICE_AFTER);
        let text = err.to_string();
        assert!(text.starts_with(&format!("could not connect to h:1: {dead} timed out after ")), "{text}");
        assert!(text.ends_with(&format!("; {refused} refused")), "{text}");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn the_callback_is_scoped_to_the_call() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let f: ProgressFn = Arc::new(move |p| {
            if let Progress::Connecting { host, .. } = p {
                s.lock().unwrap().push(host.to_string());
            }
        });
        reporting_to(Some(&f), || notify("a:1", Duration::from_secs(3), &[]));
        notify("b:1", Duration::from_secs(3), &[]);
        assert_eq!(*seen.lock().unwrap(), ["a:1"]);
    }
}
