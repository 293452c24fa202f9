//! `outdated`: entries added from the Hub look-alike follow `main`; when `main` moves, the
//! model API (asked once per repository) says whether each pinned file is the same there,
//! changed or gone. Nothing is downloaded and no pin changes.

use crate::support::hub::{Hub, REPO, REVISION};
use crate::support::{gguf_bytes, register, Run, Sandbox};

const NEW: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn api_requests(hub: &Hub) -> usize {
    hub.seen().iter().filter(|s| s.path.starts_with("/api/models/")).count()
}

#[test]
fn outdated_says_what_moved_upstream_and_never_downloads_or_repins() {
    let hub = Hub::start();
    let (a, b) = (gguf_bytes("bert", 384, 300_000, 1), gguf_bytes("bert", 384, 200_000, 2));
    hub.add_file("alpha-Q8_0.gguf", a.clone());
    hub.add_file("beta-Q8_0.gguf", b.clone());
    let sb = Sandbox::new();
    let add =
        |file: &str, name: &str| hub.run(&sb, &["add", &format!("hf.co/{REPO}/{file}"), "--name", name]).ok();
    add("alpha-Q8_0.gguf", "alpha");
    add("beta-Q8_0.gguf", "beta");
    let catalog = std::fs::read(sb.models().join("catalog.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&catalog).unwrap();
    assert!(doc["models"].as_array().unwrap().iter().all(|m| m["tracks"] == "main"), "{doc}");
    // One entry registered by hand follows nothing.
    register(&sb, "manual", &gguf_bytes("bert", 384, 1000, 3));
    let catalog = std::fs::read(sb.models().join("catalog.json")).unwrap();

    hub.clear_seen();
    let run = |args: &[&str]| hub.run(&sb, &[&["outdated"], args].concat());
    let doc = run(&["alpha", "beta", "manual", "--json"]).ok().json();
    assert_eq!(api_requests(&hub), 1, "one request for the repository and its ref");
    let states: Vec<&str> = doc.as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["current", "current", "untracked"]);
    assert_eq!(doc[0]["now"], REVISION);

    // `main` moves; the files are the same bytes there.
    hub.move_main(NEW, &[("alpha-Q8_0.gguf", a.clone()), ("beta-Q8_0.gguf", b.clone())]);
    let doc = run(&["alpha", "beta", "--json"]).ok().json();
    assert_eq!((doc[0]["state"].as_str(), doc[0]["now"].as_str()), (Some("moved"), Some(NEW)));
    assert_eq!(doc[0]["pinned"], REVISION);

    // Then alpha's header changes and beta is gone: exit 11, and the text says what changed.
    let mut a2 = a.clone();
    a2.extend_from_slice(b"a new chat template");
    hub.move_main(NEW, &[("alpha-Q8_0.gguf", a2.clone())]);
    hub.clear_seen();
    let text = run(&["alpha", "beta"]).code(11);
    assert_eq!(api_requests(&hub), 1);
    let grew = format!("changed: alpha-Q8_0.gguf {} → {} bytes", a.len(), a2.len());
    assert!(text.stdout.contains(&grew), "{}", text.stdout);
    assert!(text.stdout.contains("beta-Q8_0.gguf is gone"), "{}", text.stdout);
    assert!(text.stderr.contains("2 models changed upstream"), "{}", text.stderr);
    let doc =
        Run::of(hub_cmd(&hub, &sb).args(["outdated", "alpha", "--json"]).output().unwrap()).code(11).json();
    assert_eq!(doc[0]["state"], "changed");
    assert_eq!(doc[0]["files"][0]["now_size_bytes"], a2.len());
    assert_eq!(doc[0]["files"][0]["now_sha256"], crate::support::sha256_hex(&a2));
    assert_eq!(doc[0]["files"][0]["sha256"], crate::support::sha256_hex(&a));

    // Nothing was downloaded and no pin moved.
    assert!(hub.cdn_gets().is_empty());
    assert_eq!(std::fs::read(sb.models().join("catalog.json")).unwrap(), catalog);
    assert!(!sb.models().join("alpha-Q8_0.gguf").exists());

    // Offline: refused, before any request.
    hub.clear_seen();
    let off =
        Run::of(hub_cmd(&hub, &sb).env("STRATA_OFFLINE", "1").args(["outdated", "alpha"]).output().unwrap())
            .code(8);
    assert!(off.stderr.contains("asks the Hub"), "{}", off.stderr);
    assert_eq!(hub.seen().len(), 0);
}

fn hub_cmd(hub: &Hub, sb: &Sandbox) -> std::process::Command {
    let mut c = sb.cmd();
    c.env("HF_ENDPOINT", hub.endpoint()).env("SSL_CERT_FILE", &hub.ca_file);
    c
}

/// Every built-in row, at most one request per repository (the look-alike knows none of
/// them: each is reported as failed, named, and the exit code is the failure's).
#[test]
fn the_builtin_rows_cost_one_request_per_repository() {
    let hub = Hub::start();
    let sb = Sandbox::new();
    let run = Run::of(hub_cmd(&hub, &sb).args(["outdated", "--json"]).output().unwrap());
    assert_ne!(run.code, 0);
    let doc = run.json();
    let rows = doc.as_array().unwrap();
    assert_eq!(rows.len(), strata_model::catalog::BUILTIN.len());
    let repos: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["repo"].as_str().unwrap()).collect();
    let mut asked: Vec<String> = hub
        .seen()
        .iter()
        .filter_map(|s| {
            s.path.strip_prefix("/api/models/").map(|p| p.split("/revision/").next().unwrap().to_string())
        })
        .collect();
    asked.sort();
    let n = asked.len();
    asked.dedup();
    assert_eq!(n, asked.len(), "a repository asked twice: {asked:?}");
    assert_eq!(n, repos.len());
    assert!(rows.iter().all(|r| r["state"] == "failed" && r["tracks"] == "main"), "{doc}");
    assert!(rows[0]["error"].as_str().unwrap().contains(rows[0]["repo"].as_str().unwrap()), "{doc}");
}
