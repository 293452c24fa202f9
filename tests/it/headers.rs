//! Real GGUF headers (issue 19, item 8): llama.cpp's quantizer writes `general.file_type`
//! last, after the tokenizer's arrays. A header rebuilt in that order with ggml-org's own
//! writer (PyPI `gguf`, `GGUFWriter`) is read by `info` and `verify` as ggml-org's reader
//! (`GGUFReader`) reads it, while `add` still reads only a prefix of the file. (The real
//! Gemma file, fetched by `scripts/fetch-gemma`, was checked by hand: see the README.)

use std::fs;
use std::process::Command;

use crate::support::hub::{Hub, REPO};
use crate::support::{register_with, test_env, Run, Sandbox};

/// The first range `add` asks for (256 KiB).
const FIRST_READ: u64 = 256 * 1024;

/// Tokens in the rebuilt vocabulary: a usual size (GPT-NeoX, Phi: 50–65 k; Gemma 3: 262 k).
const TOKENS: usize = 65_536;

/// The emulators' Python (`scripts/emulators` installs `gguf` into it), when it has `gguf`.
/// Missing under `CI=true`: a failure.
fn python_with_gguf() -> Option<String> {
    let python = test_env("STRATA_TEST_PYTHON", "the GGUF header tests")?;
    let has = Command::new(&python).args(["-c", "import gguf"]).output().is_ok_and(|o| o.status.success());
    if has {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{python} has no `gguf` package: CI must run scripts/emulators install");
    }
    eprintln!("skipping: {python} has no `gguf` package (run scripts/emulators install)");
    None
}

/// Writes a Gemma-3-like header in llama.cpp's order with `GGUFWriter`, reads it back with
/// `GGUFReader`, and prints `general.file_type` then the keys in file order.
const SCRIPT: &str = r#"
import sys
from gguf import GGUFWriter, GGUFReader
path, n = sys.argv[1], int(sys.argv[2])
w = GGUFWriter(path, "gemma3")
w.add_string("general.type", "model")
w.add_name("Gemma 3 270m")
w.add_uint32("gemma3.context_length", 32768)
w.add_embedding_length(640)
w.add_block_count(18)
w.add_uint32("gemma3.attention.head_count", 4)
w.add_tokenizer_model("llama")
w.add_tokenizer_pre("default")
w.add_token_list([("\u2581piece%d" % i).encode() for i in range(n)])
w.add_token_scores([-float(i) for i in range(n)])
w.add_token_types([1] * n)
w.add_bos_token_id(2)
w.add_eos_token_id(1)
w.add_add_bos_token(True)
# llama-quantize sets these last: gguf_set_val moves an existing key to the end.
w.add_uint32("general.quantization_version", 2)
w.add_file_type(15)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
r = GGUFReader(path)
print(r.fields["general.file_type"].contents())
print(" ".join(r.fields.keys()))
"#;

#[test]
fn a_file_type_after_the_tokenizer_is_read_as_ggml_orgs_reader_reads_it() {
    let Some(python) = python_with_gguf() else { return };
    let sb = Sandbox::new();
    let file = "gemma-3-270m-q4_k_m.gguf";
    let built = sb.tmp.path().join(file);
    let out = Run::of(
        Command::new(&python).arg("-c").arg(SCRIPT).arg(&built).arg(TOKENS.to_string()).output().unwrap(),
    )
    .ok();
    let mut lines = out.stdout.lines();
    let python_file_type: u64 = lines.next().unwrap().trim().parse().unwrap();
    assert_eq!(python_file_type, 15, "GGUFReader reads Q4_K_M");
    let keys: Vec<&str> = lines.next().unwrap().split(' ').collect();
    let at = |k: &str| keys.iter().position(|x| *x == k).unwrap_or_else(|| panic!("{k} in {keys:?}"));
    assert!(at("gemma3.embedding_length") < at("tokenizer.ggml.tokens"), "{keys:?}");
    assert!(at("tokenizer.ggml.token_type") < at("general.file_type"), "llama.cpp's order: {keys:?}");
    assert_eq!(keys.last(), Some(&"general.file_type"));
    let bytes = fs::read(&built).unwrap();
    assert!(bytes.len() as u64 > 4 * FIRST_READ, "the tokenizer makes the header MBs: {}", bytes.len());

    // `info` and `verify` read the whole key-value section of the local file.
    register_with(&sb, "gemma", file, &bytes, &[]).ok();
    fs::rename(&built, sb.models().join(file)).unwrap();
    let info = sb.run(&["info", "gemma", "--json"]).ok().json();
    assert_eq!(info["gguf"]["file_type"], python_file_type, "{info}");
    assert_eq!(
        (&info["gguf"]["architecture"], &info["gguf"]["embedding_length"]),
        (&"gemma3".into(), &640.into())
    );
    let text = sb.run(&["info", "gemma"]).ok();
    assert!(text.stdout.contains("file type Q4_K_M"), "{}", text.stdout);
    let verified = sb.run(&["verify", "gemma"]).ok();
    assert!(verified.stdout.starts_with("ok "), "{}", verified.stdout);

    // `add` keeps its ranged economy: the model's keys come first, one range of 256 KiB.
    let hub = Hub::start();
    hub.add_file(file, bytes.clone());
    let other = Sandbox::new();
    let added = Run::of(
        other
            .cmd()
            .env("HF_ENDPOINT", hub.endpoint())
            .env("SSL_CERT_FILE", &hub.ca_file)
            .args(["add", REPO, "--name", "gemma", "--dry-run", "--json"])
            .output()
            .unwrap(),
    )
    .ok()
    .json();
    assert_eq!(
        (&added["model"]["arch"], &added["arch_from"]),
        (&"gemma3".into(), &"header".into()),
        "{added}"
    );
    assert_eq!(added["model"]["embedding_dim"], 640);
    assert_eq!(added["fetched_bytes"], FIRST_READ, "{added}");
    let gets = hub.cdn_gets();
    assert_eq!(gets.len(), 1, "{gets:#?}");
    assert_eq!(gets[0].headers["range"], format!("bytes=0-{}", FIRST_READ - 1));
}
