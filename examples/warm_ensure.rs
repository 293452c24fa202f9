//! Times warm `ensure()` calls in one process: the model must already be downloaded and
//! verified. Prints the median and the 99th percentile of N calls.
//!
//! ```sh
//! cargo run --release --features registry --example warm_ensure -- minilm 1000
//! ```

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "minilm".into());
    let n: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    let registry = strata_model::Registry::from_env()?;
    registry.ensure(&name)?; // the first call may verify; the timed ones must be warm
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(registry.ensure(&name)?);
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[n / 2];
    let p99 = times[(n * 99 / 100).min(n - 1)];
    println!(
        "warm ensure({name}): median {:.1} µs, p99 {:.1} µs over {n} calls",
        micros(median),
        micros(p99)
    );
    Ok(())
}

fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
