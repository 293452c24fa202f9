//! The object-store emulators started by `scripts/emulators start` (moto for S3,
//! fake-gcs-server for GCS, Azurite for Azure): where they are, and the variables that point
//! object_store at them.

use strata_model::sources::ObjectStoreSource;
use strata_model::{Config, Secret};

use super::Sandbox;

/// An emulator's address (see [`super::test_env`]).
pub fn emulator(var: &str) -> Option<String> {
    super::test_env(var, "the object-store tests")
}

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
        Config::new(models).with_cloud_options(
            self.vars().into_iter().map(|(k, v)| (k.to_string(), Secret::new(v))).collect(),
        )
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
        source.upload(file, &mut &bytes[..]).unwrap_or_else(|e| panic!("{:?} upload: {e}", self.kind));
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
