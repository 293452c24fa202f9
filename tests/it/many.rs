//! Many models at once (issue 22, item 5): `download a b c…` and `Registry::ensure_many` fetch
//! every model concurrently under one connection budget, each verified and reported on its
//! own; a failure does not stop the others.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_model::{Config, Progress, ProgressFn, Registry, RetryPolicy};

use crate::support::hub::{Faults, Hub};
use crate::support::{gguf_bytes, register_file, Sandbox};

const MODELS: usize = 8;

/// Eight 600 kB models on the Hub look-alike, registered as `m0`…`m7`.
fn eight() -> (Hub, Sandbox, Vec<Vec<u8>>) {
    let hub = Hub::start();
    let sb = Sandbox::new();
    let mut all = Vec::new();
    for i in 0..MODELS {
        let bytes = gguf_bytes("bert", 384, 600_000, 70 + i as u8);
        let file = register_file(&sb, &format!("m{i}"), &format!("m{i}-Q8_0.gguf"), &bytes);
        hub.add_file(&file, bytes.clone());
        all.push(bytes);
    }
    (hub, sb, all)
}

fn config(hub: &Hub, sb: &Sandbox) -> Config {
    Config::new(sb.models())
        .with_hf_endpoint(hub.endpoint_url())
        .with_ca_file(Some(hub.ca_file.clone()))
        .with_connect_timeout(Duration::from_secs(5))
        .with_read_timeout(Duration::from_secs(5))
        .with_retry(RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(20),
            max_delay: Duration::from_secs(1),
            rate_limit_wait: Duration::from_secs(2),
        })
}

/// How many models were in flight at most (started and not yet finished or failed).
fn most_in_flight(events: &[(&'static str, String)]) -> usize {
    let mut now: Vec<&str> = Vec::new();
    let mut most = 0;
    for (what, model) in events {
        match *what {
            "started" if !now.contains(&model.as_str()) => now.push(model),
            "finished" | "failed" => now.retain(|m| *m != model),
            _ => {}
        }
        most = most.max(now.len());
    }
    most
}

/// What happened to which model, in order.
type Events = Arc<Mutex<Vec<(&'static str, String)>>>;

fn recorder() -> (ProgressFn, Events) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let progress: ProgressFn = Arc::new(move |p: &Progress<'_>| {
        let event = match p {
            Progress::Started { model, .. } => ("started", model.to_string()),
            Progress::Finished { model, .. } => ("finished", model.to_string()),
            Progress::SourceFailed { model, .. } => ("failed", model.to_string()),
            _ => return,
        };
        sink.lock().unwrap().push(event);
    });
    (progress, seen)
}

#[test]
fn eight_models_are_fetched_at_once_within_the_budget_and_each_is_verified() {
    let (hub, sb, all) = eight();
    // Each response is slowed, so that a model fetched after another would show.
    hub.set_faults(Faults { rate: Some(1_000_000), ..Default::default() });
    let (progress, seen) = recorder();
    let registry =
        Registry::new(config(&hub, &sb).with_connections(Some(4))).unwrap().with_progress(progress);
    let mut names: Vec<String> = (0..MODELS).map(|i| format!("m{i}")).collect();
    names.push("m0".into()); // named twice: fetched once, never waiting on itself
    let results = registry.ensure_many(&names.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(results.len(), MODELS + 1);
    for (i, r) in results.iter().enumerate() {
        let path = r.as_ref().unwrap_or_else(|e| panic!("{}: {}", names[i], e.report()));
        assert_eq!(std::fs::read(path).unwrap(), all[i % MODELS], "{}", names[i]);
    }
    let events = seen.lock().unwrap().clone();
    let most = most_in_flight(&events);
    assert_eq!(most, 4, "four models in flight at once, never more than the 4 connections: {events:?}");
    assert!(hub.connections("cdn") <= 4 + 1, "{} CDN connections", hub.connections("cdn"));
}

#[test]
fn download_of_several_names_reports_each_and_a_failure_stops_no_other() {
    let (hub, sb, all) = eight();
    hub.add_file("m3-Q8_0.gguf", b"GGUF but not the pinned bytes".repeat(25_000)[..600_000].to_vec());
    let run = |args: &[&str]| hub.run(&sb, args);
    let names: Vec<String> = (0..MODELS).map(|i| format!("m{i}")).collect();
    let mut args = vec!["download"];
    args.extend(names.iter().map(String::as_str));
    let out = run(&args);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("1 of 8 downloads failed"), "{}", out.stderr);
    assert!(out.stderr.contains("m3"), "{}", out.stderr);
    let paths: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(paths.len(), 7, "a path for each model that verified, in order: {}", out.stdout);
    for (i, bytes) in all.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert_eq!(&std::fs::read(sb.models().join(format!("m{i}-Q8_0.gguf"))).unwrap(), bytes);
    }
    assert!(!sb.models().join("m3-Q8_0.gguf").exists(), "never unverified bytes");
}
