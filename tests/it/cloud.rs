//! Bucket mirrors end to end, against real emulators started by `scripts/emulators start`:
//! moto (S3), fake-gcs-server (GCS) and Azurite (Azure).

use std::fs;

use crate::support::emulators::{Emulator, Kind, ALL};
use crate::support::{gguf_bytes, registered_sandbox, Run, Sandbox};

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
        .code(5) // the Hub does not answer: the check fails
        .stdout;
        assert!(
            sources.contains(&format!("1. {}", emu.url(&prefix)))
                && sources.contains("answers (1 object")
                && sources.contains("; has tiny-Q8_0.gguf"),
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
        assert_eq!(r.json()[0]["action"], "present", "already there with the right size");

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
