//! The offline commands, end to end through the real binary.

use std::fs;

use crate::support::{fixtures, gguf_bytes, register, Run, Sandbox};

/// SPEC.md's catalog table, copied by hand: the binary must agree with it exactly.
/// (name, repo, revision, file, bytes, sha256, arch, dim)
type Row = (&'static str, &'static str, &'static str, &'static str, u64, &'static str, &'static str, u64);

const SPEC_TABLE: &[Row] = &[
    (
        "minilm",
        "leliuga/all-MiniLM-L6-v2-GGUF",
        "ddf2e25d5b8530422e7b14aa39f33a657ff9aec0",
        "all-MiniLM-L6-v2.Q8_0.gguf",
        25008064,
        "e5ec722e8c82dc4ffaf965175ca472f5da3f97b695590b5b0780bdbfa29bcaf3",
        "bert",
        384,
    ),
    (
        "minilm:f16",
        "leliuga/all-MiniLM-L6-v2-GGUF",
        "ddf2e25d5b8530422e7b14aa39f33a657ff9aec0",
        "all-MiniLM-L6-v2.F16.gguf",
        45949216,
        "797b70c4edf85907fe0a49eb85811256f65fa0f7bf52166b147fd16be2be4662",
        "bert",
        384,
    ),
    (
        "embeddinggemma",
        "ggml-org/embeddinggemma-300M-GGUF",
        "0f741b5a6585bd53aeb15cd1372c56f2a0f65e12",
        "embeddinggemma-300M-Q8_0.gguf",
        333590944,
        "b5ce9d77a3fc4b3b39ccb5643c36777911cc4eb46a66962eadfa3f5f60490d63",
        "gemma-embedding",
        768,
    ),
    (
        "nomic-embed",
        "nomic-ai/nomic-embed-text-v1.5-GGUF",
        "0188c9bf409793f810680a5a431e7b899c46104c",
        "nomic-embed-text-v1.5.Q8_0.gguf",
        146146432,
        "3e24342164b3d94991ba9692fdc0dd08e3fd7362e0aacc396a9a5c54a544c3b7",
        "nomic-bert",
        768,
    ),
    (
        "nomic-embed:f16",
        "nomic-ai/nomic-embed-text-v1.5-GGUF",
        "0188c9bf409793f810680a5a431e7b899c46104c",
        "nomic-embed-text-v1.5.f16.gguf",
        274290560,
        "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb",
        "nomic-bert",
        768,
    ),
    (
        "nomic-embed:q4_k_m",
        "nomic-ai/nomic-embed-text-v1.5-GGUF",
        "0188c9bf409793f810680a5a431e7b899c46104c",
        "nomic-embed-text-v1.5.Q4_K_M.gguf",
        84106624,
        "d4e388894e09cf3816e8b0896d81d265b55e7a9fff9ab03fe8bf4ef5e11295ac",
        "nomic-bert",
        768,
    ),
    (
        "bge-m3",
        "gpustack/bge-m3-GGUF",
        "2d48f1737679ad900d5c26c5aad5410e9c70fdca",
        "bge-m3-Q8_0.gguf",
        634553760,
        "950f4a8e5e19477a6d3c26d2f162233c20002c601f75e4b002e3239997821167",
        "bert",
        1024,
    ),
    (
        "qwen3-embed",
        "Qwen/Qwen3-Embedding-8B-GGUF",
        "69d0e58a13e463cd99a9b83e3f5fee7c10265fab",
        "Qwen3-Embedding-8B-Q8_0.gguf",
        8047105824,
        "d20ddc71e8a5c4344f2343481e242233a997dc5eaff442427a945836c97b4deb",
        "qwen3",
        4096,
    ),
    (
        "qwen3-embed-0.6b",
        "Qwen/Qwen3-Embedding-0.6B-GGUF",
        "370f27d7550e0def9b39c1f16d3fbaa13aa67728",
        "Qwen3-Embedding-0.6B-Q8_0.gguf",
        639150592,
        "06507c7b42688469c4e7298b0a1e16deff06caf291cf0a5b278c308249c3e439",
        "qwen3",
        1024,
    ),
];

#[test]
fn list_json_equals_the_spec_table() {
    let sb = Sandbox::new();
    let doc = sb.run(&["list", "--json"]).ok().json();
    let rows = doc["models"].as_array().expect("an array");
    assert_eq!(rows.len(), SPEC_TABLE.len());
    for (row, (name, repo, rev, file, size, sha, arch, dim)) in rows.iter().zip(SPEC_TABLE) {
        assert_eq!(row["name"], *name);
        assert_eq!(row["hf_repo"], *repo, "{name}");
        assert_eq!(row["revision"], *rev, "{name}");
        assert_eq!(row["hf_filename"], *file, "{name}");
        assert_eq!(row["size_bytes"], *size, "{name}");
        assert_eq!(row["sha256"], *sha, "{name}");
        assert_eq!(row["arch"], *arch, "{name}");
        assert_eq!(row["embedding_dim"], *dim, "{name}");
        assert_eq!(row["quant"], name.split_once(':').map_or("q8_0", |(_, q)| q), "{name}");
        assert_eq!(row["task"], "embedding");
        assert_eq!(row["status"], "not downloaded");
        assert_eq!(row["path"], sb.models().join(file).to_str().unwrap());
    }
}

#[test]
fn list_shows_every_row_with_human_sizes_and_statuses() {
    let sb = Sandbox::new();
    let models = sb.models();
    fs::create_dir_all(models.join(".strata")).unwrap();
    // A complete file (right size) and a partial download of another.
    let f = fs::File::create(models.join("all-MiniLM-L6-v2.Q8_0.gguf")).unwrap();
    f.set_len(25_008_064).unwrap();
    let p = fs::File::create(models.join(".strata/bge-m3-Q8_0.gguf.part")).unwrap();
    p.set_len(634_553_760 / 4).unwrap();
    let out = sb.run(&["list"]).ok().stdout;
    let line = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert!(out.starts_with("Available models:\n"), "{out}");
    assert!(
        out.contains("NAME")
            && out.contains("ARCH")
            && out.contains("DIM")
            && out.contains("SIZE")
            && out.contains("STATUS")
    );
    assert_eq!(line("minilm"), ["minilm", "bert", "384", "25.0", "MB", "downloaded"]);
    assert_eq!(line("minilm:f16"), ["minilm:f16", "bert", "384", "45.9", "MB", "not", "downloaded"]);
    assert_eq!(line("embeddinggemma")[3..5], ["334", "MB"]);
    assert_eq!(line("bge-m3")[3..], ["635", "MB", "partial", "25%"]);
    assert_eq!(line("qwen3-embed")[3..5], ["8.05", "GB"]);
    assert_eq!(out.lines().filter(|l| l.starts_with("  ")).count(), SPEC_TABLE.len() + 1);
    assert!(out.contains(&format!("Models directory: {}", models.display())), "{out}");
    assert!(!out.contains('\x1b'), "no color when stdout is not a terminal");
}

#[test]
fn registered_model_appears_in_list_and_info_reads_its_header() {
    let sb = Sandbox::new();
    let bytes = gguf_bytes("bert", 384, 4096, 1);
    let file = register(&sb, "tiny-embed", &bytes);
    let catalog = sb.models().join("catalog.json");
    assert!(catalog.exists());

    let out = sb.run(&["list"]).ok().stdout;
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("tiny-embed") && l.contains("not downloaded")),
        "{out}"
    );
    assert!(out.contains("Custom catalog:"), "{out}");
    let doc = sb.run(&["list", "--json"]).ok().json();
    let row =
        doc["models"].as_array().unwrap().iter().find(|r| r["name"] == "tiny-embed").expect("custom row");
    assert_eq!(row["origin"], "custom");
    assert_eq!(row["quant"], "q8_0");
    assert_eq!(row["size_bytes"], 4096);

    fs::write(sb.models().join(&file), &bytes).unwrap();
    let out = sb.run(&["path", "TINY-EMBED"]).ok().stdout;
    assert_eq!(out.trim_end(), sb.models().join(&file).to_str().unwrap());
    let info = sb.run(&["info", "tiny-embed"]).ok().stdout;
    assert!(info.contains("version 3, arch bert, embedding length 384, file type Q8_0"), "{info}");
    let info = sb.run(&["info", "tiny-embed", "--json"]).ok().json();
    assert_eq!(info["gguf"]["architecture"], "bert");
    assert_eq!(info["gguf"]["embedding_length"], 384);

    // Same size, but not GGUF: info says so instead of failing.
    let mut html = b"<!DOCTYPE html>".to_vec();
    html.resize(4096, b' ');
    fs::write(sb.models().join(&file), &html).unwrap();
    let info = sb.run(&["info", "tiny-embed"]).ok().stdout;
    assert!(info.contains("unreadable") && info.contains("not a GGUF file"), "{info}");

    let r = sb.run(&["unregister", "tiny-embed"]).ok();
    assert_eq!(r.stdout, "unregistered tiny-embed\n");
    assert!(r.stderr.starts_with("strata-model: note: its file stays, untracked"), "{}", r.stderr);
    sb.run(&["info", "tiny-embed"]).code(3);
    sb.run(&["unregister", "minilm"]).code(3);
}

#[test]
fn bad_catalog_files_fail_clearly_and_stay_untouched() {
    let dir = fixtures().join("bad-catalogs");
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let original = fs::read(&path).unwrap();
        let sb = Sandbox::new();
        let catalog = sb.tmp.path().join("catalog.json");
        fs::write(&catalog, &original).unwrap();
        let run = |args: &[&str]| {
            crate::support::Run::of(
                sb.cmd().env("STRATA_MODELS_CATALOG", &catalog).args(args).output().unwrap(),
            )
        };
        // Reading commands warn and go on with the built-in models.
        for args in [&["list"][..], &["info", "minilm"], &["path", "minilm"]] {
            let r = run(args);
            assert!(
                r.code == 0 || r.code == 4,
                "{}: {args:?}: exit {}: {}",
                path.display(),
                r.code,
                r.stderr
            );
            assert!(
                r.stderr.starts_with("strata-model: warning: invalid custom catalog"),
                "{}: {}",
                path.display(),
                r.stderr
            );
            assert!(r.stderr.contains(catalog.to_str().unwrap()), "the warning names the file: {}", r.stderr);
            assert!(r.stderr.contains("only the built-in models are available"), "{}", r.stderr);
        }
        // Commands that write the catalog refuse, and write nothing.
        let hash = "a".repeat(64);
        let rev = "0123456789abcdef0123456789abcdef01234567";
        for args in [
            &[
                "register",
                "ok",
                "--repo",
                "o/r",
                "--file",
                "ok.gguf",
                "--revision",
                rev,
                "--sha256",
                &hash,
                "--size",
                "5",
            ][..],
            &["alias", "set", "fav", "minilm"],
        ] {
            let r = run(args).code(8);
            assert!(
                r.stderr.starts_with("strata-model: error: invalid custom catalog"),
                "{}: {}",
                path.display(),
                r.stderr
            );
            assert!(r.stderr.contains(catalog.to_str().unwrap()), "the error names the file: {}", r.stderr);
            assert_eq!(r.stdout, "", "nothing on stdout");
        }
        assert_eq!(fs::read(&catalog).unwrap(), original, "{} was modified", path.display());
        assert!(!sb.models().exists(), "nothing was created for {}", path.display());
        count += 1;
    }
    assert!(count >= 10, "fixtures missing: {count}");
}

#[test]
fn invalid_registrations_name_the_field_and_leave_the_file_as_it_was() {
    let sb = Sandbox::new();
    let bytes = gguf_bytes("bert", 8, 512, 2);
    register(&sb, "first", &bytes);
    let catalog = sb.models().join("catalog.json");
    let before = fs::read(&catalog).unwrap();
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let hash = "c".repeat(64);
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "x",
                "--repo",
                "o/r",
                "--file",
                "../../x.gguf",
                "--revision",
                rev,
                "--sha256",
                &hash,
                "--size",
                "5",
            ],
            "hf_filename",
        ),
        (
            &[
                "x",
                "--repo",
                "o/r",
                "--file",
                "/abs/x.gguf",
                "--revision",
                rev,
                "--sha256",
                &hash,
                "--size",
                "5",
            ],
            "hf_filename",
        ),
        (
            &["x", "--repo", "o/r", "--file", "x.gguf", "--revision", rev, "--sha256", "1234", "--size", "5"],
            "sha256",
        ),
        (
            &[
                "x",
                "--repo",
                "o/r",
                "--file",
                "x.gguf",
                "--revision",
                "main",
                "--sha256",
                &hash,
                "--size",
                "5",
            ],
            "revision",
        ),
        (
            &["x", "--repo", "bad", "--file", "x.gguf", "--revision", rev, "--sha256", &hash, "--size", "5"],
            "hf_repo",
        ),
        (
            &[
                "first",
                "--repo",
                "o/r",
                "--file",
                "y.gguf",
                "--revision",
                rev,
                "--sha256",
                &hash,
                "--size",
                "5",
            ],
            "name",
        ),
        (
            &[
                "bge",
                "--repo",
                "o/r",
                "--file",
                "y.gguf",
                "--revision",
                rev,
                "--sha256",
                &hash,
                "--size",
                "5",
            ],
            "name",
        ),
        (
            &[
                "x",
                "--repo",
                "o/r",
                "--file",
                "first-Q8_0.gguf",
                "--revision",
                rev,
                "--sha256",
                &hash,
                "--size",
                "5",
            ],
            "hf_filename",
        ),
    ];
    // The flag is wrong, not the file: a usage error (exit 2) that names the flag.
    for (args, field) in cases {
        let mut full = vec!["register"];
        full.extend_from_slice(args);
        let r = sb.run(&full).code(2);
        let flag = match *field {
            "hf_filename" => "--file".to_string(),
            "hf_repo" => "--repo".to_string(),
            "name" => "NAME".to_string(),
            other => format!("--{other}"),
        };
        assert!(r.stderr.starts_with(&format!("strata-model: error: {flag}: ")), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("invalid custom catalog"), "{}", r.stderr);
        assert_eq!(fs::read(&catalog).unwrap(), before, "{args:?} changed the catalog");
    }
    let leftovers: Vec<_> = fs::read_dir(sb.models()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only catalog.json and .strata: {leftovers:?}");
}

#[test]
fn path_and_remove_report_state_with_exit_codes() {
    let sb = Sandbox::new();
    let r = sb.run(&["path", "minilm"]).code(4);
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("strata-model download minilm"), "says how to download: {}", r.stderr);
    let r = sb.run(&["path", "minilm", "--json"]).code(4);
    assert_eq!(r.json()["downloaded"], false);

    let bytes = gguf_bytes("bert", 8, 300, 3);
    let file = register(&sb, "pathy", &bytes);
    fs::write(sb.models().join(&file), &bytes).unwrap();
    fs::write(sb.models().join(".strata").join(format!("{file}.part")), b"GGUF").unwrap();
    assert_eq!(sb.run(&["path", "pathy", "--json"]).ok().json()["downloaded"], true);
    let r = sb.run(&["remove", "pathy"]).ok();
    assert!(r.stdout.starts_with("removed pathy"), "{}", r.stdout);
    assert!(!sb.models().join(&file).exists());
    assert!(!sb.models().join(".strata").join(format!("{file}.part")).exists(), "the partial goes too");
    let r = sb.run(&["remove", "pathy", "--json"]).ok();
    assert_eq!(r.json()["removed"], false);
    sb.run(&["path", "pathy"]).code(4);
}

#[test]
fn unknown_names_and_usage_errors_have_distinct_exit_codes() {
    let sb = Sandbox::new();
    let r = sb.run(&["path", "minilmm"]).code(3);
    assert!(r.stderr.starts_with("strata-model: error: unknown model `minilmm`"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `minilm`"), "{}", r.stderr);
    let r = sb.run(&["info", "minilm:q2_k"]).code(3);
    assert!(r.stderr.contains("minilm:f16"), "lists the variants: {}", r.stderr);
    sb.run(&["frobnicate"]).code(2);
    sb.run(&["path"]).code(2);
    sb.run(&["register", "x", "--repo", "o/r"]).code(2);
    let r = sb.run(&["--help"]).ok();
    assert!(r.stdout.contains("Exit codes") && r.stdout.contains("STRATA_MODELS_DIR"), "{}", r.stdout);
    let r = Sandbox::new().cmd().env("STRATA_OFFLINE", "perhaps").arg("list").output().unwrap();
    let r = crate::support::Run::of(r).code(8);
    assert!(r.stderr.contains("STRATA_OFFLINE"), "{}", r.stderr);
}

#[test]
fn models_dir_flag_overrides_the_environment() {
    let sb = Sandbox::new();
    let other = sb.tmp.path().join("other");
    let doc = sb.run(&["list", "--json", "--models-dir", other.to_str().unwrap()]).ok().json();
    assert_eq!(doc["models"][0]["path"], other.join("all-MiniLM-L6-v2.Q8_0.gguf").to_str().unwrap());
}

/// Color only on a terminal, and never with NO_COLOR: run under `script` for a real tty.
#[test]
fn color_follows_the_terminal_and_no_color() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.models()).unwrap();
    fs::File::create(sb.models().join("all-MiniLM-L6-v2.Q8_0.gguf")).unwrap().set_len(25_008_064).unwrap();
    let bin = env!("CARGO_BIN_EXE_strata-model");
    let run_in_tty = |term: Option<&str>, no_color: bool| {
        let mut c = std::process::Command::new("script");
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", sb.tmp.path())
            .env("STRATA_MODELS_DIR", sb.models());
        if let Some(term) = term {
            c.env("TERM", term);
        }
        if no_color {
            c.env("NO_COLOR", "1");
        }
        crate::support::Run::of(c.args(["-qec", &format!("{bin} list"), "/dev/null"]).output().unwrap())
            .ok()
            .stdout
    };
    let colored = run_in_tty(Some("xterm"), false);
    assert!(colored.contains("\x1b[32mdownloaded\x1b[0m"), "{colored:?}");
    // NO_COLOR, and a terminal that takes no escapes (TERM unset or dumb, as cargo reads it).
    for (term, no_color) in [(Some("xterm"), true), (None, false), (Some("dumb"), false)] {
        let plain = run_in_tty(term, no_color);
        assert!(plain.contains("downloaded") && !plain.contains('\x1b'), "{term:?} {no_color}: {plain:?}");
    }
    assert!(sb.run(&["list", "--color", "always"]).ok().stdout.contains('\x1b'));
}

/// Offline means no connection for every command: `catalog check` says so instead of asking.
#[test]
fn catalog_check_offline_refuses_without_a_connection() {
    let sb = Sandbox::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("https://{}", listener.local_addr().unwrap());
    let r = Run::of(
        sb.cmd()
            .env("STRATA_OFFLINE", "1")
            .env("HF_ENDPOINT", &endpoint)
            .args(["catalog", "check"])
            .output()
            .unwrap(),
    )
    .code(8);
    assert!(r.stderr.contains("network access is off") && r.stderr.contains("catalog check"), "{}", r.stderr);
    assert!(listener.accept().is_err(), "no connection was made");
}

/// `completions` prints a script for each shell, with every command in it, and needs no
/// working configuration.
#[test]
fn completions_cover_every_command_in_every_shell() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = Run::of(
            sb.cmd().env("STRATA_MODELS_DIR", "relative/dir").args(["completions", shell]).output().unwrap(),
        )
        .ok();
        for command in ["download", "add", "mirror", "completions", "share"] {
            assert!(r.stdout.contains(command), "{shell}: {command}");
        }
    }
    Run::of(sb.cmd().args(["completions", "tcsh"]).output().unwrap()).code(2);
}

/// One way to do each thing: `remove`, `pin`, `unpin`, `path` and `info` take several names
/// like `download`; pin and unpin say when nothing changed; `alias set` says what it replaced;
/// `prune --max-size` wants a unit.
#[test]
fn commands_take_several_names_and_say_what_changed() {
    let sb = Sandbox::new();
    let a = gguf_bytes("bert", 384, 20_000, 1);
    let b = gguf_bytes("bert", 384, 30_000, 2);
    register(&sb, "aaa", &a);
    register(&sb, "bbb", &b);
    fs::create_dir_all(sb.models()).unwrap();
    fs::write(sb.models().join("aaa-Q8_0.gguf"), &a).unwrap();
    fs::write(sb.models().join("bbb-Q8_0.gguf"), &b).unwrap();

    let r = sb.run(&["path", "aaa", "bbb"]).ok();
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    let docs = sb.run(&["info", "aaa", "bbb", "--json"]).ok().json();
    assert_eq!(docs.as_array().map(Vec::len), Some(2));
    assert!(sb.run(&["info", "aaa"]).ok().stdout.contains("aaa (q8_0)"));

    assert_eq!(sb.run(&["pin", "aaa", "bbb"]).ok().stdout, "pinned aaa\npinned bbb\n");
    assert_eq!(sb.run(&["pin", "aaa"]).ok().stdout, "aaa was already pinned\n");
    let doc = sb.run(&["unpin", "aaa", "--json"]).ok().json();
    assert_eq!((&doc["pinned"], &doc["changed"]), (&false.into(), &true.into()));
    assert_eq!(sb.run(&["unpin", "aaa"]).ok().stdout, "aaa was not pinned\n");

    // One unknown name among several: the others are done, the command fails.
    let r = sb.run(&["remove", "aaa", "nope", "bbb"]).code(3);
    assert!(r.stdout.contains("removed aaa") && r.stdout.contains("removed bbb"), "{}", r.stdout);
    assert!(r.stderr.contains("nope") && r.stderr.contains("1 of 3"), "{}", r.stderr);
    let r = sb.run(&["path", "aaa", "bbb"]).code(4);
    assert!(r.stderr.contains("2 of 2 models are not downloaded"), "{}", r.stderr);

    assert_eq!(sb.run(&["alias", "set", "fav", "aaa"]).ok().stdout, "fav -> aaa\n");
    assert_eq!(sb.run(&["alias", "set", "fav", "bbb"]).ok().stdout, "fav -> bbb (was -> aaa)\n");

    let r = sb.run(&["prune", "--max-size", "100"]).code(2);
    assert!(r.stderr.contains("`100` has no unit"), "{}", r.stderr);
    sb.run(&["prune", "--max-size", "0", "--dry-run"]).ok();
}

/// With `--json`, a failure is one JSON document on stdout too, usage errors included.
#[test]
fn json_errors_are_documents_with_kind_message_and_exit_code() {
    let sb = Sandbox::new();
    for (args, kind, code) in [
        (&["path", "nope", "--json"][..], "unknown_model", 3),
        (&["path", "minilm", "--json"], "", 4),
        (&["download", "--json", "--bogus"], "usage", 2),
        (&["prune", "--max-size", "7", "--json"], "usage", 2),
        (&["completions", "bash", "--json"], "usage", 2),
    ] {
        let r = sb.run(args).code(code);
        let doc = r.json();
        if kind.is_empty() {
            assert_eq!(doc["downloaded"], false, "path prints its own document: {doc}");
            continue;
        }
        assert_eq!(doc["error"]["kind"], kind, "{args:?}: {doc}");
        assert_eq!(doc["error"]["exit_code"], code);
        assert!(!doc["error"]["message"].as_str().unwrap().is_empty());
    }
}

/// Every object of a kind has the same keys, sizes are `size_bytes`, and what a custom entry
/// does not say (arch, dim, license, description, a quantization the file name does not
/// show) is `null`, never a placeholder string.
#[test]
fn json_keys_are_the_same_for_every_object_and_unknowns_are_null() {
    let sb = Sandbox::new();
    let bytes = gguf_bytes("bert", 8, 4096, 3);
    crate::support::register_with(&sb, "bare", "bare.gguf", &bytes, &[]).ok();
    let doc = sb.run(&["list", "--json"]).ok().json();
    let rows = doc["models"].as_array().unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert!(rows.iter().all(|r| keys(r) == keys(&rows[0])), "one set of keys: {doc}");
    for key in ["partial_bytes", "installed_from", "reused_from", "size_bytes"] {
        assert!(rows[0].get(key).is_some(), "{key} always present: {}", rows[0]);
    }
    let bare = rows.iter().find(|r| r["name"] == "bare").unwrap();
    for key in ["arch", "embedding_dim", "license", "description", "quant", "partial_bytes", "installed_from"]
    {
        assert!(bare[key].is_null(), "{key} is null: {bare}");
    }
    assert_eq!((bare["task"].as_str(), bare["size_bytes"].as_u64()), (Some("embedding"), Some(4096)));
    let text = sb.run(&["info", "bare"]).ok().stdout;
    assert!(text.starts_with("bare (unknown)\n  custom model\n"), "text keeps its words: {text}");
    assert!(text.contains("  license        unknown\n"), "{text}");

    // Results of several names: the same keys for success and failure.
    fs::create_dir_all(sb.models()).unwrap();
    fs::write(sb.models().join("bare.gguf"), &bytes).unwrap();
    let verify = sb.run(&["verify", "bare", "minilm", "--json"]).code(4).json();
    let (ok, missing) = (&verify[0], &verify[1]);
    assert_eq!(keys(ok), keys(missing));
    assert_eq!((ok["ok"].as_bool(), ok["error"].is_null()), (Some(true), true), "{verify}");
    assert_eq!((missing["ok"].as_bool(), missing["path"].is_null()), (Some(false), true), "{verify}");
    let download =
        sb.cmd().env("STRATA_OFFLINE", "1").args(["download", "bare", "minilm", "--json"]).output().unwrap();
    let download: serde_json::Value = serde_json::from_slice(&download.stdout).unwrap();
    assert_eq!(keys(&download[0]), keys(&download[1]), "{download}");
    assert_eq!((download[0]["ok"].as_bool(), download[1]["ok"].as_bool()), (Some(true), Some(false)));
    let info = sb.run(&["info", "minilm", "--json"]).ok().json();
    assert!(info["gguf"].is_null() && info["gguf_error"].is_null(), "{info}");
}

/// A file of the wrong size at a model's path is "invalid" for every command, which says
/// what is there and what to run; `download` replaces it.
#[test]
fn a_wrong_size_file_is_invalid_for_every_command() {
    let sb = Sandbox::new();
    let bytes = gguf_bytes("bert", 384, 4096, 5);
    let file = register(&sb, "tiny", &bytes);
    fs::create_dir_all(sb.models()).unwrap();
    fs::write(sb.models().join(&file), &bytes[..1000]).unwrap();
    let said = format!(
        "model `tiny` is not downloaded: the file at {} is invalid (1000 bytes, the catalog says 4096); \
         run `strata-model download tiny` to replace it",
        sb.models().join(&file).display()
    );
    for args in [&["path", "tiny"][..], &["verify", "tiny"], &["mirror", "push", "/tmp/x", "tiny"]] {
        let r = sb.run(args).code(4);
        assert!(r.stderr.contains(&said) || r.stdout.contains(&said), "{args:?}: {}{}", r.stdout, r.stderr);
    }
    let list = sb.run(&["list"]).ok().stdout;
    assert!(list.lines().any(|l| l.trim_start().starts_with("tiny ") && l.contains("invalid")), "{list}");
    assert!(sb.run(&["info", "tiny"]).ok().stdout.contains("status         invalid"));
    assert_eq!(sb.run(&["path", "tiny", "--json"]).code(4).json()["downloaded"], false);
}

/// Names are case-insensitive and kept in lower case: a name typed otherwise is said to be
/// lowered, not silently (and -q keeps stderr for errors).
#[test]
fn a_name_typed_in_upper_case_is_said_to_be_lowered() {
    let sb = Sandbox::new();
    let bytes = gguf_bytes("bert", 384, 4096, 6);
    let r = crate::support::register_with(&sb, "Tiny-Embed", "t.gguf", &bytes, &[]).ok();
    assert!(r.stdout.starts_with("registered tiny-embed "), "{}", r.stdout);
    assert_eq!(
        r.stderr,
        "strata-model: note: model names are case-insensitive and kept in lower case: `Tiny-Embed` is `tiny-embed`\n"
    );
    let r = sb.run(&["alias", "set", "My-Embed", "TINY-EMBED"]).ok();
    assert!(r
        .stderr
        .contains("alias names are case-insensitive and kept in lower case: `My-Embed` is `my-embed`"));
    assert_eq!(r.stdout, "my-embed -> tiny-embed\n");
    assert_eq!(sb.run(&["alias", "set", "Other", "minilm", "-q"]).ok().stderr, "");
    assert_eq!(sb.run(&["alias", "set", "lower", "minilm"]).ok().stderr, "", "nothing to say");
}
