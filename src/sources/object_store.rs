//! S3, GCS and Azure buckets as mirrors, through the `object_store` crate.
//!
//! `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`: the object key of a
//! model is `prefix/<hf_filename>` (a multi-file model's files under their repository paths,
//! `prefix/Q4_K_M/…`), the layout of a mirror directory. Credentials
//! and endpoints come from the variables object_store reads (`AWS_*`, `GOOGLE_*`, `AZURE_*`,
//! custom endpoints included), captured by [`Config::from_env`]. The async runtime is private
//! to this source: the library stays synchronous.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart};

use super::source::{Fetch, FetchRequest, ModelSource};
use crate::catalog::ModelEntry;
use crate::config::{vars, Config};
use crate::error::{ErrorKind, RegistryError, Result, SourceError};

/// A bucket (or container) mirror.
pub struct ObjectStoreSource {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: Arc<tokio::runtime::Runtime>,
    secrets: Vec<String>,
    read_timeout: Duration,
}

impl fmt::Debug for ObjectStoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreSource").field("url", &self.url).finish_non_exhaustive()
    }
}

impl fmt::Display for ObjectStoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

fn config_err(url: &str, reason: impl fmt::Display) -> RegistryError {
    RegistryError::config(vars::MODELS_MIRROR, format!("`{url}`: {reason}"))
}

impl ObjectStoreSource {
    /// The source for `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`,
    /// configured by `config`'s object-store variables and timeouts.
    pub fn from_url(url: &str, config: &Config) -> Result<Self> {
        let url = url.trim_end_matches('/').to_string();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| config_err(&url, "not a bucket URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(config_err(&url, "no bucket name"));
        }
        if let Some(var) = config.cloud_unreadable().first() {
            return Err(RegistryError::config(
                var.as_str(),
                "the value is not valid UTF-8 (it must be text, not raw bytes); a bucket mirror needs it",
            ));
        }
        let secrets: Vec<String> = config
            .cloud_options()
            .iter()
            .filter(|(k, v)| is_secret_name(k) && v.expose().len() >= 4)
            .map(|(_, v)| v.expose().to_string())
            .collect();
        let vars_with =
            |p: &'static str| config.cloud_options().iter().filter(move |(k, _)| k.starts_with(p));
        // Connect timeout first, so that a variable can override it.
        let connect = format!("{}s", config.connect_timeout().as_secs().max(1));
        let retry =
            RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(20), ..Default::default() };
        let scrub = |e: object_store::Error| scrub_secrets(&e.to_string(), &secrets);
        // The same steps for every builder: the connect timeout first (a variable can
        // override it), then the variables with the store's prefix, then the bucket.
        macro_rules! build {
            ($builder:expr, $key:ty, $prefix:literal, $bucket:ident) => {{
                let mut b = $builder;
                if let Ok(k) = "connect_timeout".parse::<$key>() {
                    b = b.with_config(k, &connect);
                }
                for (k, v) in vars_with($prefix) {
                    if let Ok(key) = k.to_ascii_lowercase().parse::<$key>() {
                        b = b.with_config(key, v.expose());
                    }
                }
                Arc::new(b.$bucket(bucket).with_retry(retry).build().map_err(|e| config_err(&url, scrub(e)))?)
            }};
        }
        let store: Arc<dyn ObjectStore> = match scheme.to_ascii_lowercase().as_str() {
            "s3" => build!(AmazonS3Builder::new(), AmazonS3ConfigKey, "AWS_", with_bucket_name),
            "gs" => build!(GoogleCloudStorageBuilder::new(), GoogleConfigKey, "GOOGLE_", with_bucket_name),
            "az" => build!(MicrosoftAzureBuilder::new(), AzureConfigKey, "AZURE_", with_container_name),
            other => return Err(config_err(&url, format!("unknown bucket scheme `{other}://`"))),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| RegistryError::storage("start the object-store runtime for", url.clone(), e))?;
        Ok(Self {
            prefix: ObjectPath::from(prefix.trim_matches('/')),
            url,
            store,
            runtime: Arc::new(runtime),
            secrets,
            read_timeout: config.read_timeout(),
        })
    }

    /// The key of a file at repository path `file` (`Q4_K_M/a.gguf`: one key part a segment).
    fn key(&self, file: &str) -> ObjectPath {
        file.split('/').fold(self.prefix.clone(), |key, part| key.join(part))
    }

    /// What an object-store error means for the download. Its text is kept (with every
    /// secret value scrubbed) rather than the error itself, whose messages can quote
    /// credentials.
    fn describe(&self, e: &object_store::Error) -> SourceError {
        let msg = scrub_secrets(&e.to_string(), &self.secrets);
        match e {
            object_store::Error::NotFound { .. } => {
                SourceError::NotFound { detail: Some(format!("{self}: no such object")) }
            }
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                SourceError::denied(format!(
                    "access denied: {msg}; check the credentials (AWS_*, GOOGLE_* or AZURE_* variables)"
                ))
            }
            _ => SourceError::failed(ErrorKind::Network, msg),
        }
    }

    /// The bucket URL (`s3://bucket/prefix`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The size of `file` in the bucket, or `None` when it is not there.
    pub fn size_of(&self, file: &str) -> Result<Option<u64>, SourceError> {
        match self.runtime.block_on(self.store.head(&self.key(file))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) => match self.describe(&e) {
                e if e.is_not_found() => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The body of `result` as a blocking reader.
    fn reader(&self, result: object_store::GetResult) -> StreamReader {
        StreamReader {
            runtime: self.runtime.clone(),
            stream: result.into_stream(),
            pending: bytes::Bytes::new(),
            timeout: self.read_timeout,
            secrets: self.secrets.clone(),
        }
    }

    /// The SHA-256 of the object at `file` (read whole), or `None` when there is none.
    pub fn sha256_of(&self, file: &str) -> Result<Option<String>, SourceError> {
        let result = match self.runtime.block_on(self.store.get(&self.key(file))) {
            Ok(r) => r,
            Err(e) => {
                return match self.describe(&e) {
                    e if e.is_not_found() => Ok(None),
                    other => Err(other),
                }
            }
        };
        let mut reader = crate::digest::HashingReader::new(self.reader(result));
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| {
            SourceError::failed_by(ErrorKind::Network, format!("reading {}/{file}", self.url), e)
        })?;
        Ok(reader.digest())
    }

    /// Uploads `file` from `reader` (multipart, a few parts in flight). A read error (a
    /// verifying reader that finds the wrong bytes at the end) aborts the upload, so nothing is
    /// left in the bucket.
    pub fn upload(&self, file: &str, reader: &mut dyn Read) -> Result<(), String> {
        let key = self.key(file);
        let scrub = |e: object_store::Error| scrub_secrets(&e.to_string(), &self.secrets);
        self.runtime.block_on(async {
            let upload = self.store.put_multipart(&key).await.map_err(scrub)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 * 1024 * 1024);
            let mut buf = vec![0u8; 1024 * 1024];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(format!("read error: {e}"));
                    }
                };
                if let Err(e) = writer.wait_for_capacity(4).await {
                    let _ = writer.abort().await;
                    return Err(scrub(e));
                }
                writer.write(&buf[..n]);
            }
            writer.finish().await.map(|_| ()).map_err(scrub)
        })
    }
}

impl ModelSource for ObjectStoreSource {
    fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError> {
        let range = match (request.offset, request.end) {
            (start, Some(end)) => Some(GetRange::Bounded(start..end)),
            (0, None) => None,
            (start, None) => Some(GetRange::Offset(start)),
        };
        // The repository path, else (a multi-file model) the models directory's own layout.
        let files = entry.mirror_paths();
        let mut found = None;
        for (i, file) in files.iter().enumerate() {
            let options = GetOptions { range: range.clone(), ..Default::default() };
            match self.runtime.block_on(self.store.get_opts(&self.key(file), options)) {
                Ok(result) => {
                    found = Some((result, file));
                    break;
                }
                Err(e) => match self.describe(&e) {
                    e if e.is_not_found() && i + 1 < files.len() => continue,
                    e => return Err(e),
                },
            }
        }
        let Some((result, file)) = found else { return Err(SourceError::NotFound { detail: None }) };
        let validator = result.meta.e_tag.clone();
        let total = Some(result.meta.size);
        let start = result.range.start;
        Ok(Fetch {
            body: Box::new(self.reader(result)),
            start,
            total,
            validator,
            location: format!("{}/{file}", self.url),
        })
    }

    fn is_network(&self) -> bool {
        true
    }

    fn check(&self) -> Result<String, String> {
        let started = std::time::Instant::now();
        let listing = self.runtime.block_on(self.store.list_with_delimiter(Some(&self.prefix)));
        match listing {
            Ok(list) => {
                let n = list.objects.len();
                Ok(format!(
                    "answers ({n} object{}, {} ms)",
                    if n == 1 { "" } else { "s" },
                    started.elapsed().as_millis()
                ))
            }
            Err(e) => Err(crate::error::Report::new(&self.describe(&e)).to_string()),
        }
    }
}

/// The body of a GET as a blocking reader: each read drives the private runtime until the
/// next chunk arrives, or fails after the read timeout (a stalled transfer).
struct StreamReader {
    runtime: Arc<tokio::runtime::Runtime>,
    stream: BoxStream<'static, object_store::Result<bytes::Bytes>>,
    pending: bytes::Bytes,
    timeout: Duration,
    secrets: Vec<String>,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            let next =
                self.runtime.block_on(async { tokio::time::timeout(self.timeout, self.stream.next()).await });
            match next {
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "the transfer stalled")),
                Ok(None) => return Ok(0),
                Ok(Some(Ok(chunk))) => self.pending = chunk,
                Ok(Some(Err(e))) => {
                    return Err(io::Error::other(scrub_secrets(&e.to_string(), &self.secrets)))
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending = self.pending.slice(n..);
        Ok(n)
    }
}

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["SECRET", "KEY", "TOKEN", "SAS", "PASSWORD", "CREDENTIAL", "SIGNATURE"].iter().any(|w| upper.contains(w))
}

/// Replaces every secret value in `text` with `<redacted>`.
fn scrub_secrets(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s.as_str(), "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn urls_parse_and_secrets_stay_out_of_errors() {
        let config = Config::new("/m").with_cloud_options(vec![
            ("AWS_ACCESS_KEY_ID".into(), Secret::new("AKIDEXAMPLE")),
            ("AWS_SECRET_ACCESS_KEY".into(), Secret::new("very-secret-value")),
            ("AWS_REGION".into(), Secret::new("us-east-1")),
        ]);
        let s = ObjectStoreSource::from_url("s3://bucket/some/prefix/", &config).unwrap();
        assert_eq!(s.to_string(), "s3://bucket/some/prefix");
        assert_eq!(s.key("f.gguf").as_ref(), "some/prefix/f.gguf");
        assert!(!format!("{s:?}").contains("very-secret-value"));
        assert_eq!(scrub_secrets("sig very-secret-value end", &s.secrets), "sig <redacted> end");
        assert!(ObjectStoreSource::from_url("s3://", &config).is_err());
        let az = ObjectStoreSource::from_url(
            "az://container",
            &Config::new("/m")
                .with_cloud_options(vec![("AZURE_STORAGE_USE_EMULATOR".into(), Secret::new("true"))]),
        )
        .unwrap();
        assert_eq!(az.key("f.gguf").as_ref(), "f.gguf");
    }
}
