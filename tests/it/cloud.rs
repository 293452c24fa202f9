//! Bucket mirrors end to end, against real emulators started by `scripts/emulators start`:
//! moto (S3), fake-gcs-server (GCS) and Azurite (Azure).

use std::fs;

use strata_model::sources::ObjectStoreSource;
use strata_model::{Config, Secret};

use crate::support::{emulator, gguf_bytes, registered_sandbox, Run, Sandbox};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    S3,
    Gcs,
    Azure,
}

pub const ALL: [Kind; 3] = [Kind::S3, Kind::Gcs, Kind::Azure];

/// One running emulator and the variables that point object_store at it.
pub struct Emulator {
    pub kind: Kind,
    endpoint: String,
    bucket: String,
}

impl Emulator {
    pub fn get(kind: Kind) -> Option<Self> {
        let var = match kind {
            Kind::S3 => "STRATA_TEST_S3",
            Kind::Gcs => "STRATA_TEST_GCS",
            Kind::Azure => "STRATA_TEST_AZURE",
        };
        let endpoint = emulator(var)?;
        let bucket = emulator("STRATA_TEST_BUCKET")?;
        Some(Self { kind, endpoint, bucket })
    }

    /// The standard variables for this emulator.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        match self.kind {
            Kind::S3 => vec![
                ("AWS_ENDPOINT", self.endpoint.clone()),
                ("AWS_ALLOW_HTTP", "true".into()),
                ("AWS_ACCESS_KEY_ID", "testing".into()),
                ("AWS_SECRET_ACCESS_KEY", "testing-secret-key".into()),
                ("AWS_REGION", "us-east-1".into()),
            ],
            Kind::Gcs => vec![
                ("GOOGLE_BASE_URL", self.endpoint.clone()),
                ("GOOGLE_SKIP_SIGNATURE", "true".into()),
                ("GOOGLE_ALLOW_HTTP", "true".into()),
            ],
            Kind::Azure => {
                vec![("AZURE_STORAGE_USE_EMULATOR", "true".into()), ("AZURE_ALLOW_HTTP", "true".into())]
            }
        }
    }

    pub fn config(&self, models: impl Into<std::path::PathBuf>) -> Config {
        Config::new(models)
            .cloud_options(self.vars().into_iter().map(|(k, v)| (k.to_string(), Secret::new(v))).collect())
    }

    pub fn unique_prefix(&self, what: &str) -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        format!("{what}-{}-{n}-{nanos}", std::process::id())
    }

    pub fn url(&self, prefix: &str) -> String {
        let scheme = match self.kind {
            Kind::S3 => "s3",
            Kind::Gcs => "gs",
            Kind::Azure => "az",
        };
        format!("{scheme}://{}/{prefix}", self.bucket)
    }

    /// Puts `bytes` at `prefix/file` (GCS through its JSON upload API: object_store's put
    /// does not work against fake-gcs-server).
    pub fn upload(&self, prefix: &str, file: &str, bytes: &[u8]) {
        if self.kind == Kind::Gcs {
            let url = format!(
                "{}/upload/storage/v1/b/{}/o?uploadType=media&name={prefix}%2F{file}",
                self.endpoint, self.bucket
            );
            ureq::post(&url)
                .header("Content-Type", "application/octet-stream")
                .send(bytes)
                .expect("GCS upload");
            return;
        }
        let source = ObjectStoreSource::from_url(&self.url(prefix), &self.config("/unused")).unwrap();
        source
            .upload(file, &mut &bytes[..], &mut || Ok(()))
            .unwrap_or_else(|e| panic!("{:?} upload: {e}", self.kind));
    }

    /// The binary with this emulator's variables.
    pub fn cmd(&self, sb: &Sandbox) -> std::process::Command {
        let mut c = sb.cmd();
        for (k, v) in self.vars() {
            c.env(k, v);
        }
        c
    }
}

#[test]
fn each_bucket_serves_a_download_when_hugging_face_is_unreachable() {
    let bytes = gguf_bytes("bert", 384, 900_000, 5);
    for kind in ALL {
        let Some(emu) = Emulator::get(kind) else { continue };
        let (sb, file, dead) = registered_sandbox(&bytes);
        let prefix = emu.unique_prefix("e2e");
        emu.upload(&prefix, &file, &bytes);
        let out = Run::of(
            emu.cmd(&sb)
                .env("HF_ENDPOINT", &dead)
                .env("STRATA_MODELS_MIRROR", emu.url(&prefix))
                .args(["download", "tiny", "--quiet"])
                .output()
                .unwrap(),
        )
        .ok();
        assert_eq!(out.stdout.trim_end(), sb.models().join(&file).to_str().unwrap(), "{kind:?}");
        assert!(fs::read(sb.models().join(&file)).unwrap() == bytes, "{kind:?}");
        let sources = Run::of(
            emu.cmd(&sb)
                .env("HF_ENDPOINT", &dead)
                .env("STRATA_MODELS_MIRROR", emu.url(&prefix))
                .arg("sources")
                .output()
                .unwrap(),
        )
        .ok()
        .stdout;
        assert!(
            sources.contains(&format!("1. {}", emu.url(&prefix))) && sources.contains("answers (1 objects"),
            "{sources}"
        );
        assert!(sources.contains("2. Hugging Face") && sources.contains("FAILED"), "{sources}");
    }
}

#[test]
fn a_tampered_bucket_is_rejected_and_the_next_source_serves() {
    let bytes = gguf_bytes("bert", 384, 400_000, 6);
    let mut bad = bytes.clone();
    bad[123_456] ^= 1;
    for kind in ALL {
        let Some(emu) = Emulator::get(kind) else { continue };
        let (sb, file, dead) = registered_sandbox(&bytes);
        let (tampered, good) = (emu.unique_prefix("tampered"), emu.unique_prefix("good"));
        emu.upload(&tampered, &file, &bad);
        emu.upload(&good, &file, &bytes);
        let r = Run::of(
            emu.cmd(&sb)
                .env("HF_ENDPOINT", &dead)
                .env("STRATA_MODELS_MIRROR", format!("{},{}", emu.url(&tampered), emu.url(&good)))
                .args(["download", "tiny"])
                .output()
                .unwrap(),
        )
        .ok();
        assert!(
            r.stderr.contains(&emu.url(&tampered)) && r.stderr.contains("checksum mismatch"),
            "{kind:?}: {}",
            r.stderr
        );
        assert!(fs::read(sb.models().join(&file)).unwrap() == bytes);
    }
}

#[test]
fn mirror_push_to_a_bucket_then_download_from_it_round_trips() {
    let bytes = gguf_bytes("bert", 384, 9_500_000, 7); // more than one 8 MiB upload part
    for kind in [Kind::S3, Kind::Azure] {
        let Some(emu) = Emulator::get(kind) else { continue };
        let (sb, file, dead) = registered_sandbox(&bytes);
        // Seed the models directory from a local mirror, then push it to the bucket.
        let local = sb.tmp.path().join("local");
        fs::create_dir_all(&local).unwrap();
        fs::write(local.join(&file), &bytes).unwrap();
        Run::of(
            emu.cmd(&sb)
                .env("STRATA_MODELS_MIRROR", &local)
                .env("STRATA_OFFLINE", "1")
                .args(["download", "tiny"])
                .output()
                .unwrap(),
        )
        .ok();
        let url = emu.url(&emu.unique_prefix("push"));
        let r =
            Run::of(emu.cmd(&sb).args(["mirror", "push", &url, "--dry-run", "--all"]).output().unwrap()).ok();
        assert!(r.stdout.starts_with("would copy tiny"), "{}", r.stdout);
        let r = Run::of(emu.cmd(&sb).args(["mirror", "push", &url, "tiny"]).output().unwrap()).ok();
        assert!(r.stdout.starts_with("copied"), "{kind:?}: {}", r.stdout);
        let r = Run::of(emu.cmd(&sb).args(["mirror", "push", &url, "tiny", "--json"]).output().unwrap()).ok();
        assert_eq!(r.json()[0]["action"], "skipped", "already there with the right size");

        // A clean models directory, Hugging Face unreachable: the bucket serves.
        let clean = Sandbox::new();
        fs::create_dir_all(clean.models()).unwrap();
        fs::copy(sb.models().join("catalog.json"), clean.models().join("catalog.json")).unwrap();
        Run::of(
            emu.cmd(&clean)
                .env("HF_ENDPOINT", &dead)
                .env("STRATA_MODELS_MIRROR", &url)
                .args(["download", "tiny", "--quiet"])
                .output()
                .unwrap(),
        )
        .ok();
        assert!(fs::read(clean.models().join(&file)).unwrap() == bytes, "{kind:?}");
    }
}

#[test]
fn bad_credentials_name_the_source_but_never_the_secret() {
    let Some(emu) = Emulator::get(Kind::Azure) else { return };
    let bytes = gguf_bytes("bert", 384, 50_000, 8);
    let (sb, file, dead) = registered_sandbox(&bytes);
    let prefix = emu.unique_prefix("creds");
    emu.upload(&prefix, &file, &bytes);
    let secret = "bm90LXRoZS1yZWFsLWtleS1ub3QtdGhlLXJlYWwta2V5LW5vdC10aGUtcmVhbC1rZXk=";
    let r = Run::of(
        emu.cmd(&sb)
            .env("HF_ENDPOINT", &dead)
            .env("AZURE_STORAGE_ACCOUNT_KEY", secret)
            .env("STRATA_MODELS_MIRROR", emu.url(&prefix))
            .args(["download", "tiny"])
            .output()
            .unwrap(),
    )
    .code(5);
    assert!(r.stderr.contains(&emu.url(&prefix)), "names the source: {}", r.stderr);
    assert!(r.stderr.contains("access denied") || r.stderr.contains("403"), "{}", r.stderr);
    assert!(!r.stderr.contains(secret) && !r.stdout.contains(secret), "the secret leaked: {}", r.stderr);
    assert!(!sb.models().join(&file).exists());
}
