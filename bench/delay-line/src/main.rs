//! A delay line for benchmarks: a TCP proxy that forwards every chunk it reads `D` ms after it
//! arrived, in both directions, so that a connection through it has a round trip of `2 × D`
//! (the kernel here has no netem). Optionally it caps each connection's downstream (server to
//! client) at `RATE` bytes per second, steadily, as a CDN edge caps a connection.
//!
//!     delay-line LISTEN UPSTREAM DELAY_MS [RATE]
//!     delay-line 127.0.0.2:18448 127.0.0.2:18458 10 20000000
//!
//! Each direction of each connection has a reader thread and a writer thread joined by a
//! bounded channel (so that throughput is not capped by the delay, and a fast upstream is held
//! back rather than buffered whole).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Bytes read per chunk.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight per direction (with CHUNK: 4 MiB).
const IN_FLIGHT: usize = 64;
/// Bytes written at a time when pacing.
const PIECE: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !(4..=5).contains(&args.len()) {
        eprintln!("usage: delay-line LISTEN UPSTREAM DELAY_MS [RATE_BYTES_PER_SECOND]");
        std::process::exit(2);
    }
    let delay = Duration::from_millis(args[3].parse().expect("DELAY_MS is a number"));
    let rate: Option<f64> = args.get(4).map(|r| r.parse().expect("RATE is a number"));
    let listener = TcpListener::bind(&args[1]).expect("bind");
    let upstream = args[2].clone();
    for client in listener.incoming().flatten() {
        let upstream = upstream.clone();
        thread::spawn(move || {
            let Ok(server) = TcpStream::connect(&upstream) else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let up = thread::spawn(move || pipe(client, server, delay, None));
            pipe(s2, c2, delay, rate);
            let _ = up.join();
        });
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read, at most `rate` bytes per second
/// when set. Half-closes `to` at the end.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration, rate: Option<f64>) {
    let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    // Buffers go back to the reader once written: no allocation or copy per chunk.
    let (give_back, take_back) = mpsc::channel::<Vec<u8>>();
    let writer = thread::spawn(move || {
        let mut free_at = Instant::now();
        for (at, chunk) in rx {
            for piece in chunk.chunks(if rate.is_some() { PIECE } else { CHUNK }) {
                let due = (at + delay).max(free_at);
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                if to.write_all(piece).is_err() {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                if let Some(r) = rate {
                    free_at = due.max(free_at) + Duration::from_secs_f64(piece.len() as f64 / r);
                }
            }
            let _ = give_back.send(chunk);
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    loop {
        let mut buf = take_back.try_recv().unwrap_or_default();
        buf.resize(CHUNK, 0);
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.truncate(n);
                if tx.send((Instant::now(), buf)).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = from.shutdown(Shutdown::Read);
}
