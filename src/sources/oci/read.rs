//! Reading a manifest from a registry (`add oci://…`): `GET /v2/<repository>/manifests/<tag
//! or digest>` asking for an OCI image manifest, an OCI image index or a Docker v2 manifest
//! (and list), at most [`MAX_MANIFEST`] bytes. The body's SHA-256 is its digest: checked
//! against the digest asked for, and against `Docker-Content-Digest` when the registry sends
//! one. An index names several manifests: the only one is read; several are refused with a
//! list of their platforms or artifact types.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use ureq::http::StatusCode;

use super::{Access, OciSource};
use crate::error::{ErrorKind, SourceError};
use crate::shown::{bounded_list, printable};
use crate::sources::http::{header, read_said, redirect_target, saying, MAX_REDIRECTS};
use crate::sources::location::redact;

/// The largest manifest read: manifests are a few kilobytes.
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// OCI image manifest (image-spec `manifest.md`).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (image-spec `image-index.md`).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A content descriptor (image-spec `descriptor.md`): what a manifest says of a blob.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// `sha256:<hex>` (other algorithms are kept as given).
    pub digest: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// Annotations (`org.opencontainers.image.title`, `org.cncf.model.filepath`).
    pub annotations: BTreeMap<String, String>,
    /// In an index: the artifact type of the manifest it names.
    pub artifact_type: Option<String>,
    /// In an index: the platform of the manifest it names.
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// The SHA-256 the digest names (lower case), when it is `sha256:<64 hex>`.
    pub fn sha256(&self) -> Option<String> {
        let hex = self.digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
    }
}

/// A platform of an index's entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Platform {
    /// `linux`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v8`, …
    pub variant: Option<String>,
}

/// The fields of a manifest or an index that `add` reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Document {
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Vec<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
    annotations: BTreeMap<String, String>,
}

/// An image manifest as read from a registry.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest's SHA-256 (its digest, `sha256:` left out).
    pub digest: String,
    /// Its media type (from the body, else the `Content-Type`).
    pub media_type: String,
    /// Its `artifactType`, when it has one.
    pub artifact_type: Option<String>,
    /// Its config blob.
    pub config: Descriptor,
    /// Its layers, in order.
    pub layers: Vec<Descriptor>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// The index it was found through (its digest), when the reference named an index.
    pub via_index: Option<String>,
}

impl OciSource {
    /// Reads the image manifest `reference` (a tag, or `sha256:<hex>`) names; through an
    /// index that names exactly one manifest, that one.
    pub fn manifest(&self, reference: &str) -> Result<Manifest, SourceError> {
        let (body, content_type, digest) = self.manifest_bytes(reference)?;
        let doc = parse(&body, &self.manifest_here(reference))?;
        let media_type = doc.media_type.clone().or(content_type).unwrap_or_default();
        let Some(manifests) = doc.manifests.as_ref().filter(|_| doc.config.is_none()) else {
            return to_manifest(doc, media_type, digest, None, &self.manifest_here(reference));
        };
        let one = match manifests.as_slice() {
            [one] => one,
            [] => {
                return Err(SourceError::failed(
                    ErrorKind::UnknownModel,
                    format!("{}: an index that names no manifest", self.manifest_here(reference)),
                ))
            }
            several => {
                let listed = bounded_list(several.iter().map(describe), "; ");
                return Err(SourceError::failed(
                    ErrorKind::UnknownModel,
                    format!(
                        "{}: an index of {} manifests ({}); add one of them by its digest (oci://{}/{}@sha256:…)",
                        self.manifest_here(reference),
                        several.len(),
                        listed,
                        self.host(),
                        self.repository
                    ),
                ));
            }
        };
        let Some(hex) = one.sha256() else {
            return Err(SourceError::failed(
                ErrorKind::Unsupported,
                format!(
                    "{}: the index names a manifest by `{}`, not by SHA-256",
                    self.manifest_here(reference),
                    printable(&one.digest)
                ),
            ));
        };
        let inner = format!("sha256:{hex}");
        let (body, content_type, inner_digest) = self.manifest_bytes(&inner)?;
        let inner_doc = parse(&body, &self.manifest_here(&inner))?;
        if inner_doc.manifests.is_some() && inner_doc.config.is_none() {
            return Err(SourceError::failed(
                ErrorKind::Unsupported,
                format!(
                    "{}: an index inside an index; add the manifest by its digest",
                    self.manifest_here(&inner)
                ),
            ));
        }
        let media_type = inner_doc.media_type.clone().or(content_type).unwrap_or_default();
        to_manifest(inner_doc, media_type, inner_digest, Some(digest), &self.manifest_here(&inner))
    }

    /// `https://host/v2/<repository>/manifests/<reference>`, for messages.
    fn manifest_here(&self, reference: &str) -> String {
        redact(&self.api_url(&["manifests", reference]))
    }

    /// The bytes of manifest `reference`, its `Content-Type` and their SHA-256 (checked
    /// against the digest asked for, and the one the registry says).
    fn manifest_bytes(&self, reference: &str) -> Result<(Vec<u8>, Option<String>, String), SourceError> {
        let mut url = self.api_url(&["manifests", reference]);
        let accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");
        for _ in 0..=MAX_REDIRECTS {
            let here = redact(&url);
            let target = url.clone();
            let mut make = |authorization: Option<&str>| {
                let mut req = self.agent.get(target.as_str()).header("Accept", &accept);
                if let Some(a) = authorization {
                    req = req.header("Authorization", a);
                }
                req.call()
            };
            let resp = self.call_at(&url, Access::Pull, &here, &mut make)?;
            let status = resp.status();
            if status.is_redirection() {
                url = redirect_target(resp, &url, &here)?;
                continue;
            }
            if !status.is_success() {
                let (parts, body) = resp.into_parts();
                let said = read_said(&parts.headers, body, &[]);
                return Err(if status == StatusCode::NOT_FOUND {
                    SourceError::failed(
                        ErrorKind::UnknownModel,
                        format!(
                            "{here}: HTTP 404: {}/{} has no manifest `{reference}`{}",
                            self.host(),
                            self.repository,
                            saying(said.as_deref())
                        ),
                    )
                } else {
                    self.failure(status, &parts.headers, &here, said.as_deref())
                });
            }
            let content_type = header(resp.headers(), "content-type")
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
            let said_digest = header(resp.headers(), "docker-content-digest").map(str::to_string);
            let mut body = Vec::new();
            let read = resp
                .into_body()
                .into_reader()
                .take(MAX_MANIFEST + 1)
                .read_to_end(&mut body)
                .map_err(|e| SourceError::transient_by(format!("{here}: reading the manifest"), e));
            read?;
            if body.len() as u64 > MAX_MANIFEST {
                return Err(SourceError::failed(
                    ErrorKind::Unsupported,
                    format!(
                        "{here}: the manifest is larger than {MAX_MANIFEST} bytes; not a model's manifest"
                    ),
                ));
            }
            let digest = format!("{:x}", Sha256::digest(&body));
            if let Some(asked) = reference.strip_prefix("sha256:") {
                if !asked.eq_ignore_ascii_case(&digest) {
                    return Err(SourceError::failed(
                        ErrorKind::Integrity,
                        format!(
                            "{here}: the manifest served hashes to sha256:{digest}, not the digest asked for"
                        ),
                    ));
                }
            }
            if let Some(said) = said_digest.as_deref().and_then(|d| d.trim().strip_prefix("sha256:")) {
                if !said.eq_ignore_ascii_case(&digest) {
                    return Err(SourceError::failed(
                        ErrorKind::Integrity,
                        format!(
                            "{here}: the registry says the manifest is sha256:{said} (Docker-Content-Digest), but its bytes hash to sha256:{digest}"
                        ),
                    ));
                }
            }
            return Ok((body, content_type, digest));
        }
        Err(SourceError::failed(
            ErrorKind::Network,
            format!("more than {MAX_REDIRECTS} redirects from {}", self.manifest_here(reference)),
        ))
    }
}

fn parse(body: &[u8], here: &str) -> Result<Document, SourceError> {
    serde_json::from_slice(body).map_err(|e| {
        SourceError::failed(
            ErrorKind::Unsupported,
            format!("{here}: not a manifest strata-model can read (JSON: {e})"),
        )
    })
}

fn to_manifest(
    doc: Document,
    media_type: String,
    digest: String,
    via_index: Option<String>,
    here: &str,
) -> Result<Manifest, SourceError> {
    let Some(config) = doc.config else {
        return Err(SourceError::failed(
            ErrorKind::Unsupported,
            format!(
                "{here}: a manifest of type `{}` with no config; expected an image manifest",
                printable(&media_type)
            ),
        ));
    };
    Ok(Manifest {
        digest,
        media_type,
        artifact_type: doc.artifact_type,
        config,
        layers: doc.layers,
        annotations: doc.annotations,
        via_index,
    })
}

/// One entry of an index, for a list: its platform or artifact type, and its digest (as they
/// may be shown: see [`printable`]).
fn describe(d: &Descriptor) -> String {
    let what = match (&d.platform, &d.artifact_type) {
        (Some(p), _) => match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        },
        (None, Some(a)) => a.clone(),
        (None, None) => d.media_type.clone(),
    };
    printable(&format!("{what} {}", d.digest))
}
