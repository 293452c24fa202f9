//! Snapshot tests (insta) of what the command line prints: the help of every command, `list`,
//! `info`, `verify` and `sources` as text and JSON, the progress lines off a terminal, and the
//! main errors. The machine's temporary directory becomes `[TMP]` and durations `[T]`, so a
//! snapshot reads the same everywhere. Under CI=true a missing or different snapshot fails.
//!
//! After a deliberate change of output: `INSTA_UPDATE=always cargo test --features cli --test it
//! snapshots`, then read the diff of `tests/it/snapshots/` before committing it.

use std::fs;

use crate::support::{gguf_bytes, register, Run, Sandbox};

/// A models directory with something of everything: a custom model downloaded from a mirror,
/// pinned and aliased; a partial download; an untracked file.
struct Scene {
    sb: Sandbox,
}

impl Scene {
    fn new() -> Self {
        let sb = Sandbox::new();
        let bytes = gguf_bytes("bert", 384, 1_000_000, 7);
        let file = register(&sb, "tiny", &bytes);
        fs::create_dir_all(sb.tmp.path().join("mirror")).unwrap();
        fs::write(sb.tmp.path().join("mirror").join(&file), &bytes).unwrap();
        let scene = Self { sb };
        scene.run(&["download", "tiny", "-q"]).ok();
        scene.run(&["pin", "tiny"]).ok();
        scene.run(&["alias", "set", "default-embed", "tiny"]).ok();
        let state = scene.sb.models().join(".strata");
        fs::write(state.join("bge-m3-Q8_0.gguf.part"), vec![0u8; 160_000_000]).unwrap();
        fs::write(scene.sb.models().join("hand-copied.gguf"), vec![1u8; 2_000]).unwrap();
        scene
    }

    /// The binary offline, with the mirror as its only source.
    fn run(&self, args: &[&str]) -> Run {
        Run::of(
            self.sb
                .cmd()
                .env("STRATA_OFFLINE", "1")
                .env("STRATA_MODELS_MIRROR", self.sb.tmp.path().join("mirror"))
                .args(args)
                .output()
                .unwrap(),
        )
    }

    /// `args` run, as one text: the exit code, stdout and stderr, normalized.
    fn shot(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        let text = format!(
            "$ strata-model {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            r.code,
            r.stdout,
            r.stderr
        );
        normalize(&text, self.sb.tmp.path().to_str().unwrap())
    }
}

/// The temporary directory → `[TMP]`; the seconds of a success line → `[T]`; a progress
/// line's percentage, bytes, rate and time left → `[N]` (they depend on the machine), and
/// the progress lines that are then alike → one.
fn normalize(text: &str, tmp: &str) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for line in text.replace(tmp, "[TMP]").lines() {
        let line = match (line.find(", SHA-256 verified, "), line.find("% (")) {
            (Some(i), _) => format!("{}, SHA-256 verified, [T]", &line[..i]),
            (None, Some(i)) if line.ends_with(" left") => {
                let model = line[..i].split_once(':').unwrap().0;
                let of = line.find(" of ").unwrap();
                let end = line[of..].find(')').unwrap() + of;
                format!("{model}: [N]% ([N]{}), [N]/s, [N] left", &line[of..end])
            }
            _ => line.to_string(),
        };
        if line != last || !line.ends_with(" left") {
            out.push_str(&line);
            out.push('\n');
        }
        last = line;
    }
    out
}

/// The commands a `--help` text lists under "Commands:" (without `help`).
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn help_of_every_command() {
    let sb = Sandbox::new();
    let help = |path: &[String]| {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let r = sb.run(&args).ok();
        assert!(r.stderr.is_empty(), "{}", r.stderr);
        r.stdout
    };
    let top = help(&[]);
    insta::assert_snapshot!("help", top);
    let mut seen = 0;
    let mut todo: Vec<Vec<String>> = commands_in(&top).into_iter().map(|c| vec![c]).collect();
    assert!(todo.len() >= 15, "{top}");
    while let Some(path) = todo.pop() {
        let text = help(&path);
        insta::assert_snapshot!(format!("help-{}", path.join("-")), text);
        seen += 1;
        for sub in commands_in(&text) {
            todo.push([path.clone(), vec![sub]].concat());
        }
    }
    assert!(seen >= 22, "every command and subcommand: {seen}");
}

#[test]
fn list_info_verify_and_sources_as_text_and_json() {
    let scene = Scene::new();
    for (name, args) in [
        ("list", &["list"][..]),
        ("list-downloaded", &["list", "--downloaded"]),
        ("list-json", &["list", "--json"]),
        ("info-custom", &["info", "tiny"]),
        ("info-builtin", &["info", "minilm"]),
        ("info-json", &["info", "default-embed", "--json"]),
        ("verify", &["verify", "tiny"]),
        ("verify-json", &["verify", "tiny", "--json"]),
        ("sources", &["sources"]),
        ("sources-json", &["sources", "--json"]),
        ("prune-dry-run", &["prune", "--max-size", "100MB", "--dry-run"]),
    ] {
        insta::assert_snapshot!(name, scene.shot(args));
    }
}

/// Off a terminal: a start line, a progress line at most every 10 % (or 10 s) and never two
/// within a second, the success line. A quick download is its start and success lines.
#[test]
fn progress_lines_off_a_terminal() {
    let scene = Scene::new();
    scene.run(&["remove", "tiny"]).ok();
    insta::assert_snapshot!("download-quick", scene.shot(&["download", "tiny"]));
    scene.run(&["remove", "tiny"]).ok();
    let slow = scene.shot(&["download", "tiny", "--max-rate", "400kB/s"]);
    insta::assert_snapshot!("download-progress", slow);
}

#[test]
fn main_errors() {
    let scene = Scene::new();
    for (name, args) in [
        ("error-unknown-model", &["path", "nomic-embd"][..]),
        ("error-unknown-quant", &["path", "minilm:q2_k"]),
        ("error-not-downloaded", &["path", "bge-m3"]),
        ("error-offline", &["download", "minilm"]),
        ("error-offline-json", &["download", "minilm", "--json"]),
        ("error-usage", &["lisst"]),
        ("error-usage-json", &["prune", "--max-size", "100", "--json"]),
        ("error-flag", &["alias", "set", "x", "no-such-model"]),
        ("error-not-custom", &["unregister", "minilm"]),
    ] {
        insta::assert_snapshot!(name, scene.shot(args));
    }
}
