//! `ensure_async` in a tokio program: ensures the models named on the command line (default
//! `minilm`) concurrently, on the runtime's blocking pool, while a task on the same runtime
//! ticks every 10 ms and reports its longest gap (the runtime is never blocked). Progress
//! events reach the same callback as with `ensure()`. With `--timeout SECS`, a download still
//! running then is dropped: it stops at its next buffer and keeps a resumable partial.
//!
//! ```sh
//! cargo run --features tokio --example async_ensure -- minilm minilm:f16 --timeout 600
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_model::{Progress, Registry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut names = Vec::new();
    let mut timeout = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--timeout" => timeout = Some(Duration::from_secs(args.next().ok_or("--timeout SECS")?.parse()?)),
            _ => names.push(arg),
        }
    }
    if names.is_empty() {
        names.push("minilm".to_string());
    }

    // The callback runs on the blocking pool's threads: keep it cheap and thread-safe.
    let progress = Arc::new(|p: &Progress<'_>| match p {
        Progress::Started { model, source, resumed_from, total } => {
            eprintln!("{model}: fetching {total} bytes from {source} (from byte {resumed_from})")
        }
        Progress::Finished { model, source, fetched, elapsed, .. } => {
            eprintln!("{model}: {fetched} bytes from {source} in {:.2} s, verified", elapsed.as_secs_f64())
        }
        Progress::Retrying { model, reason, .. } => eprintln!("{model}: retrying: {reason}"),
        _ => {}
    });
    let registry = Registry::from_env()?.with_progress(progress);

    // A task on the same runtime: if anything blocked the runtime, its gaps would show it.
    let done = Arc::new(AtomicBool::new(false));
    let ticker = tokio::spawn({
        let done = done.clone();
        async move {
            let (mut ticks, mut longest, mut last) = (0u32, Duration::ZERO, Instant::now());
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
                longest = longest.max(last.elapsed());
                last = Instant::now();
                ticks += 1;
            }
            (ticks, longest)
        }
    });

    let started = Instant::now();
    let calls = names.iter().map(|name| {
        let call = registry.ensure_async(name);
        async move {
            let result = match timeout {
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(result) => result,
                    // The future was dropped: the download stopped and kept its partial.
                    Err(_) => {
                        return Err(format!("not done after {} s: stopped, partial kept", limit.as_secs()))
                    }
                },
                None => call.await,
            };
            result.map_err(|e| e.report().to_string())
        }
    });
    let results: Vec<Result<std::path::PathBuf, String>> = futures_join_all(calls).await;
    done.store(true, Ordering::Relaxed);
    let (ticks, longest) = ticker.await?;

    let mut failed = false;
    for (name, result) in names.iter().zip(results) {
        match result {
            Ok(path) => println!("{name}: {}", path.display()),
            Err(e) => {
                failed = true;
                println!("{name}: error: {e}");
            }
        }
    }
    println!(
        "{} call(s) in {:.2} s; the runtime ticked {ticks} times, longest gap {} ms",
        names.len(),
        started.elapsed().as_secs_f64(),
        longest.as_millis()
    );
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// Awaits every future concurrently (tokio alone, no `futures` crate): each is spawned on the
/// runtime, results in order.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("the call does not panic"));
    }
    out
}
