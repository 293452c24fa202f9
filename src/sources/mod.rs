//! Sources: places that serve the bytes of catalog files.
//!
//! A source is small: it opens a file's bytes from an offset (optionally up to an end) and
//! says plainly when it does not have the file. The [resolver](crate::download::Resolver)
//! owns everything else — order, locking, the partial file, resume, hashing, verification,
//! retries and the atomic rename — so every source gets those for free. One file per kind:
//! [`MirrorDir`] (a directory), [`HttpSource`] (Hugging Face and HTTPS mirrors),
//! [`OciSource`] (OCI registries), [`OciLayout`] (OCI image layout directories), `ObjectStoreSource` (buckets, `cloud` feature); [`Location`] parses every location string.

use crate::config::{vars, Config};
use crate::error::{RegistryError, Result};

mod agent;
mod connect;
mod dns;
mod http;
mod location;
mod logged;
mod mirror_dir;
#[cfg(feature = "cloud")]
mod object_store;
mod oci;
mod source;
mod tls;

pub use crate::error::SourceError;
pub(crate) use connect::reporting_to as reporting_connects_to;
pub(crate) use connect::unreachable;
pub(crate) use http::xet;
pub use http::{HttpSource, LfsInfo, Linked, RepoInfo, Sibling};
pub use location::{redact, Location, LocationError};
pub use mirror_dir::MirrorDir;
#[cfg(feature = "cloud")]
pub use object_store::ObjectStoreSource;
pub(crate) use oci::manifest as oci_manifest;
pub use oci::{Descriptor, Manifest, OciLayout, OciSource, Pushed, UploadJournal};
pub use source::{Fetch, FetchRequest, ModelSource};

/// The sources a configuration names, in order: each `STRATA_MODELS_MIRROR` entry, then
/// Hugging Face. In offline mode the network sources are left out.
pub fn from_config(config: &Config) -> Result<Vec<Box<dyn ModelSource>>> {
    let mut sources: Vec<Box<dyn ModelSource>> = Vec::new();
    for raw in config.mirrors() {
        if raw.is_empty() || raw.to_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let location = match Location::parse_os(raw) {
            Ok(Location::Dir(path)) => Location::Dir(crate::config::expand_home(vars::MODELS_MIRROR, &path)?),
            Ok(Location::OciLayout(path)) => {
                Location::OciLayout(crate::config::expand_home(vars::MODELS_MIRROR, &path)?)
            }
            Ok(other) => other,
            Err(e) => return Err(RegistryError::config(vars::MODELS_MIRROR, e.to_string())),
        };
        let source = for_location(&location, config)?;
        if !(config.offline() && source.is_network()) {
            sources.push(source);
        }
    }
    if !config.offline() {
        sources.push(Box::new(HttpSource::hugging_face(config)?));
    }
    Ok(sources)
}

/// The source of `entry`'s own, tried after those the configuration names: for a model
/// adopted from an OCI registry (`add oci://…`), that registry (with its credentials); none
/// for the others, and none offline.
pub fn own_source(
    entry: &crate::catalog::ModelEntry,
    config: &Config,
) -> Result<Option<Box<dyn ModelSource>>> {
    match &entry.oci {
        Some(r) if !config.offline() => {
            Ok(Some(Box::new(OciSource::new(&r.registry, &r.repository, config)?)))
        }
        _ => Ok(None),
    }
}

/// The source that reads `location`: a [`MirrorDir`], an HTTPS mirror, an OCI registry, an
/// [`OciLayout`], or
/// (with the `cloud` feature) a bucket.
pub fn for_location(location: &Location, config: &Config) -> Result<Box<dyn ModelSource>> {
    match location {
        Location::Dir(path) => Ok(Box::new(MirrorDir::new(path))),
        Location::OciLayout(path) => Ok(Box::new(OciLayout::new(path))),
        Location::Https(url) => Ok(Box::new(HttpSource::mirror(url, config)?)),
        Location::Oci { registry, repository } => Ok(Box::new(OciSource::new(registry, repository, config)?)),
        #[cfg(feature = "cloud")]
        Location::Bucket(url) => Ok(Box::new(ObjectStoreSource::from_url(url.as_str(), config)?)),
        #[cfg(not(feature = "cloud"))]
        Location::Bucket(url) => Err(RegistryError::config(
            vars::MODELS_MIRROR,
            format!(
                "`{location}` needs the `cloud` feature; build strata-model with --features cloud",
                location = redact(url)
            ),
        )),
    }
}

/// `source` as the Hugging Face Hub source, when it is that: what only the Hub can do (a
/// Xet delta, `download/delta.rs`).
pub(crate) fn hub(source: &dyn ModelSource) -> Option<&HttpSource> {
    source.as_any()?.downcast_ref::<HttpSource>().filter(|h| h.is_hub())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mirror: &str, offline: bool) -> Config {
        Config::new("/tmp/m")
            .with_mirrors(mirror.split(',').map(|s| s.trim().to_string()))
            .with_offline(offline)
    }

    #[test]
    fn mirror_entries_come_first_and_offline_drops_the_hub() {
        let names = |c: &Config| from_config(c).unwrap().iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&config("/a, file:///b%20c,, https://m.internal/x/", false)),
            [
                "mirror directory /a",
                "mirror directory /b c",
                "HTTPS mirror https://m.internal/x",
                "Hugging Face https://huggingface.co"
            ]
        );
        assert_eq!(names(&config("/a, https://m.internal/x", true)), ["mirror directory /a"]);
        assert!(names(&config("", true)).is_empty());
    }

    #[test]
    fn unknown_schemes_and_relative_file_urls_are_configuration_errors() {
        for bad in ["ftp://x/y", "s3x://b", "file://relative/path", "gopher://h", "http://plain/x", "oci://h"]
        {
            let err = from_config(&config(bad, false)).unwrap_err();
            assert!(err.to_string().contains("STRATA_MODELS_MIRROR"), "{bad}: {err}");
        }
    }
}
