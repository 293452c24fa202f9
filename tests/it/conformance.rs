//! One conformance suite, run against every kind of source: a mirror directory, the Hugging
//! Face look-alike, an HTTPS mirror, an OCI registry, an OCI image layout and (with the
//! `cloud` feature) S3, GCS and Azure emulators, and a mockall mock.

use std::borrow::Cow;
use std::io::Read;
use std::time::Duration;

use strata_model::download::Resolver;
use strata_model::{
    Config, ErrorKind, FetchRequest, ModelEntry, ModelSource, ModelsDir, RetryPolicy, SourceError,
};

use std::path::Path;

use strata_model::sources::Location;

use crate::support::{gguf_bytes, sha256_hex};

/// The files every subject serves: `conf-Q8_0.gguf` (good), `tampered-Q8_0.gguf` (one byte
/// flipped, but catalogued with the good hash); `absent-Q8_0.gguf` is nowhere.
pub struct Fixture {
    pub bytes: Vec<u8>,
    pub tampered: Vec<u8>,
}

pub const GOOD: &str = "conf-Q8_0.gguf";
pub const TAMPERED: &str = "tampered-Q8_0.gguf";
pub const ABSENT: &str = "absent-Q8_0.gguf";

impl Fixture {
    pub fn new() -> Self {
        let bytes = gguf_bytes("bert", 384, 700_000, 42);
        let mut tampered = bytes.clone();
        tampered[350_000] ^= 0x55;
        Self { bytes, tampered }
    }

    /// The entry of `file`: the good bytes' size and SHA-256, except for the absent file,
    /// whose hash is nobody's (a registry finds blobs by hash, not by name).
    pub fn entry(&self, file: &'static str) -> ModelEntry {
        let mut e = strata_model::catalog::BUILTIN[0].clone();
        e.name = Cow::Borrowed("conformance");
        e.hf_repo = Cow::Borrowed(crate::support::hub::REPO);
        e.revision = Cow::Borrowed(crate::support::hub::REVISION);
        e.hf_filename = Cow::Borrowed(file);
        e.size_bytes = self.bytes.len() as u64;
        e.sha256 = Cow::Owned(if file == ABSENT { sha256_hex(b"absent") } else { sha256_hex(&self.bytes) });
        e
    }
}

fn read_all(source: &dyn ModelSource, entry: &ModelEntry, request: FetchRequest) -> (u64, Vec<u8>) {
    let mut fetch =
        source.fetch(entry, &request).unwrap_or_else(|e| panic!("{source}: fetch {request:?}: {e}"));
    let mut out = Vec::new();
    fetch.body.read_to_end(&mut out).unwrap_or_else(|e| panic!("{source}: read: {e}"));
    if let Some(total) = fetch.total {
        assert_eq!(total, entry.size_bytes, "{source}: reported total");
    }
    (fetch.start, out)
}

/// The contract of `ModelSource`, checked against one source.
pub fn check(source: Box<dyn ModelSource>, fx: &Fixture, display_contains: &str) {
    check_with(source, None, fx, display_contains);
}

/// [`check`], with the tampered file served by `tampered` when the source cannot hold both
/// under one hash (a registry, whose blobs are named by their SHA-256).
pub fn check_with(
    source: Box<dyn ModelSource>,
    tampered_source: Option<Box<dyn ModelSource>>,
    fx: &Fixture,
    display_contains: &str,
) {
    let one = vec![source];
    let source = one[0].as_ref();
    let good = fx.entry(GOOD);
    let len = fx.bytes.len() as u64;

    let (start, whole) = read_all(source, &good, FetchRequest::default());
    assert_eq!(start, 0, "{source}");
    assert!(whole == fx.bytes, "{source}: whole file differs");

    let offset = len / 3;
    let (start, rest) = read_all(source, &good, FetchRequest { offset, ..Default::default() });
    assert_eq!(start, offset, "{source}: the range from {offset} was honoured");
    assert!(rest == fx.bytes[offset as usize..], "{source}: bytes from the offset differ");

    let end = offset + 12_345;
    let (start, range) = read_all(source, &good, FetchRequest { offset, end: Some(end), if_range: None });
    assert_eq!(start, offset, "{source}");
    assert!(range == fx.bytes[offset as usize..end as usize], "{source}: bounded range differs");

    match source.fetch(&fx.entry(ABSENT), &FetchRequest::default()) {
        Err(SourceError::NotFound { .. }) => {}
        other => panic!("{source}: a missing file must be NotFound, got {other:?}"),
    }

    let shown = source.to_string();
    assert!(shown.contains(display_contains), "Display `{shown}` names the source `{display_contains}`");

    // Wrong bytes fail verification, through the resolver, and leave nothing behind.
    let dir = tempfile::tempdir().unwrap();
    let models = ModelsDir::new(dir.path());
    let tampered = fx.entry(TAMPERED);
    let retry = RetryPolicy {
        attempts: 2,
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..Default::default()
    };
    let bad_source = tampered_source.map(|t| vec![t]);
    let err = Resolver::new(&models, bad_source.as_ref().unwrap_or(&one), retry, None)
        .ensure(&tampered, None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{source}: {err}");
    let files = models.files(&tampered);
    assert!(!files.model_path().exists() && !files.partial_path().exists());
    // And the good file goes through the whole resolver.
    let path = Resolver::new(&models, &one, retry, None).ensure(&good, None).unwrap();
    assert!(std::fs::read(path).unwrap() == fx.bytes);
}

#[test]
fn mirror_directory() {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(GOOD), &fx.bytes).unwrap();
    std::fs::write(dir.path().join(TAMPERED), &fx.tampered).unwrap();
    let source = strata_model::sources::MirrorDir::new(dir.path());
    check(Box::new(source), &fx, &dir.path().display().to_string());
}

fn hub_with_fixture(fx: &Fixture) -> crate::support::hub::Hub {
    let hub = crate::support::hub::Hub::start();
    hub.add_file(GOOD, fx.bytes.clone());
    hub.add_file(TAMPERED, fx.tampered.clone());
    hub
}

#[test]
fn hugging_face() {
    let fx = Fixture::new();
    let hub = hub_with_fixture(&fx);
    let config =
        Config::new("/unused").with_hf_endpoint(hub.endpoint_url()).with_ca_file(Some(hub.ca_file.clone()));
    let source = strata_model::sources::HttpSource::hugging_face(&config).unwrap();
    check(Box::new(source), &fx, &format!("Hugging Face {}", hub.endpoint()));
}

#[test]
fn https_mirror() {
    let fx = Fixture::new();
    let hub = hub_with_fixture(&fx);
    let base = format!("https://{}/cdn", hub.cdn);
    let config = Config::new("/unused").with_ca_file(Some(hub.ca_file.clone()));
    let source = strata_model::sources::HttpSource::mirror(&base.parse().unwrap(), &config).unwrap();
    check(Box::new(source), &fx, &format!("HTTPS mirror {base}"));
}

#[cfg(feature = "cloud")]
mod buckets {
    use super::*;
    use crate::support::emulators::{Emulator, ALL};

    #[test]
    fn s3_gcs_and_azure() {
        let fx = Fixture::new();
        for kind in ALL {
            let Some(emu) = Emulator::get(kind) else { continue };
            let prefix = emu.unique_prefix("conformance");
            emu.upload(&prefix, GOOD, &fx.bytes);
            emu.upload(&prefix, TAMPERED, &fx.tampered);
            let url = emu.url(&prefix);
            let source =
                strata_model::sources::ObjectStoreSource::from_url(&url, &emu.config("/unused")).unwrap();
            check(Box::new(source), &fx, &url);
        }
    }
}

/// The CNCF registry: the good file's blob in one, and in another the same blob with its
/// An OCI image layout: the blob named by the good hash; a second layout holds the tampered
/// bytes under it.
#[test]
fn oci_image_layout() {
    let fx = Fixture::new();
    let layout = |bytes: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(dir.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(dir.path().join("index.json"), br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        std::fs::write(blobs.join(sha256_hex(&fx.bytes)), bytes).unwrap();
        dir
    };
    let (good, bad) = (layout(&fx.bytes), layout(&fx.tampered));
    let source = |d: &tempfile::TempDir| Box::new(strata_model::sources::OciLayout::new(d.path()));
    let shown = format!("OCI image layout {}", good.path().display());
    check_with(source(&good), Some(source(&bad)), &fx, &shown);
}

/// bytes changed on the registry's disk.
#[test]
fn oci_registry() {
    use crate::support::oci::{Auth, Registry};
    let fx = Fixture::new();
    let (Some(good), Some(bad)) = (Registry::start(Auth::Open), Registry::start(Auth::Open)) else { return };
    let sha = sha256_hex(&fx.bytes);
    let source = |r: &Registry| {
        let location = strata_model::sources::Location::parse(&r.location("conformance/models")).unwrap();
        let Location::Oci { registry, repository } = location else { panic!("not oci") };
        strata_model::sources::OciSource::new(&registry, &repository, &r.config(Path::new("/unused"), &[]))
            .unwrap()
    };
    for r in [&good, &bad] {
        source(r).upload_blob(&format!("sha256:{sha}"), fx.bytes.len() as u64, &mut &fx.bytes[..]).unwrap();
    }
    std::fs::write(bad.blob_data(&sha), &fx.tampered).unwrap();
    let shown = format!("OCI registry {}/conformance/models", good.addr);
    check_with(Box::new(source(&good)), Some(Box::new(source(&bad))), &fx, &shown);
}

#[test]
fn mock_source() {
    let fx = Fixture::new();
    let mut mock = crate::support::mock::MockSource::new();
    let (good, tampered) = (fx.bytes.clone(), fx.tampered.clone());
    mock.expect_fetch().returning(move |entry, request| {
        let bytes = match &*entry.hf_filename {
            GOOD => good.clone(),
            TAMPERED => tampered.clone(),
            _ => return Err(SourceError::not_found()),
        };
        let end = request.end.unwrap_or(bytes.len() as u64) as usize;
        Ok(strata_model::Fetch {
            body: Box::new(std::io::Cursor::new(bytes[request.offset as usize..end].to_vec())),
            start: request.offset,
            total: Some(bytes.len() as u64),
            validator: None,
            location: "mock".into(),
        })
    });
    mock.expect_is_network().return_const(false);
    mock.expect_fmt().returning(|f| f.write_str("mock source"));
    check(Box::new(mock), &fx, "mock source");
}
