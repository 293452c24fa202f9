//! [`Setup`]: the Hugging Face look-alike serving one GGUF-shaped file, registered as the
//! custom model `tiny` in a sandbox, with a library configuration and the binary pointed at
//! it.

use std::path::PathBuf;
use std::time::Duration;

use strata_model::{Config, Registry, RetryPolicy};

use super::hub::Hub;
use super::{gguf_bytes, Run, Sandbox};

pub struct Setup {
    pub hub: Hub,
    pub sb: Sandbox,
    pub bytes: Vec<u8>,
    pub file: String,
}

/// A Hub serving one GGUF-shaped file, registered as custom model `tiny` in a sandbox.
pub fn setup(size: usize) -> Setup {
    let hub = Hub::start();
    let bytes = gguf_bytes("bert", 384, size, 9);
    let (sb, file, _) = super::registered_sandbox(&bytes);
    hub.add_file(&file, bytes.clone());
    Setup { hub, sb, bytes, file }
}

impl Setup {
    pub fn config(&self) -> Config {
        Config::new(self.sb.models())
            .with_hf_endpoint(self.hub.endpoint_url())
            .with_ca_file(Some(self.hub.ca_file.clone()))
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_secs(2))
            .with_retry(RetryPolicy {
                attempts: 4,
                base: Duration::from_millis(20),
                max_delay: Duration::from_secs(2),
                rate_limit_wait: Duration::from_secs(5),
            })
    }

    pub fn registry(&self, config: Config) -> Registry {
        Registry::new(config).expect("registry")
    }

    pub fn model_path(&self) -> PathBuf {
        self.sb.models().join(&self.file)
    }

    pub fn partial_path(&self) -> PathBuf {
        self.sb.models().join(".strata").join(format!("{}.part", self.file))
    }

    /// The binary, configured for this Hub.
    pub fn cmd(&self) -> std::process::Command {
        let mut c = self.sb.cmd();
        c.env("HF_ENDPOINT", self.hub.endpoint()).env("SSL_CERT_FILE", &self.hub.ca_file);
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().args(args).output().unwrap())
    }
}
