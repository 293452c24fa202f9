//! The command line's definition (clap): commands, their arguments and help texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use strata_model::ByteSize;
use url::Url;

#[derive(Parser)]
#[command(
    name = "strata-model",
    version,
    about = "Turn a friendly model name (minilm) into a verified GGUF file on local disk",
    long_about = "Turn a friendly model name (minilm) into a verified GGUF file on local disk.\n\n\
        Models are stored flat under the models directory (STRATA_MODELS_DIR, else \
        ~/.strata/models). Names are case-insensitive; NAME:QUANT selects a variant \
        (minilm:f16); aliases such as all-minilm work too.",
    after_help = "Environment (empty values count as unset):\n  \
        STRATA_MODELS_DIR, STRATA_MODELS_CATALOG, STRATA_MODELS_MIRROR (directories, https://, \
        oci://, oci-layout:DIR, s3://, gs://, az://)\n  \
        STRATA_OFFLINE, HF_HUB_OFFLINE: no network\n  \
        HF_ENDPOINT, HF_TOKEN (else the file in HF_TOKEN_PATH, else $HF_HOME/token)\n  \
        SSL_CERT_FILE (extra trusted CAs), HTTPS_PROXY, ALL_PROXY, NO_PROXY\n  \
        STRATA_LOCK_TIMEOUT (how long to wait for another process downloading a model)\n  \
        STRATA_REUSE_CACHES, STRATA_SHARE_HF_CACHE; other tools' caches: HF_HUB_CACHE, \
        HUGGINGFACE_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, LLAMA_CACHE, OLLAMA_MODELS, XDG_DATA_HOME, \
        LMSTUDIO_HOME\n  \
        REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, DOCKER_CONFIG: oci:// credentials\n  \
        AWS_*, GOOGLE_*, AZURE_*: bucket mirrors (cloud builds)\n  \
        NO_COLOR; RUST_LOG (log events on stderr, as -v does: strata_model=debug)\n\
        Exit codes: 0 ok, 1 failure, 2 usage, 3 unknown model, 4 not downloaded, 5 network, \
        6 integrity, 7 storage, 8 configuration, 9 unsupported (architecture, or a file `add` \
        cannot pin), 10 busy (another process holds the model: --lock-timeout ran out, or a removal \
        during its download)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct Global {
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// No progress, notices or success lines on stderr (errors still go there)
    #[arg(long, short, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Log events on stderr: -v info (fetched, reused, retries, fallbacks), -vv debug (each
    /// HTTP request), -vvv trace; RUST_LOG, when set, filters instead (strata_model=debug)
    #[arg(long, short, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Models directory (overrides STRATA_MODELS_DIR)
    #[arg(long, global = true, help_heading = "Global options", value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// When to use color (auto: on a terminal, unless NO_COLOR is set or TERM is dumb)
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    pub color: Color,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
pub enum Command {
    /// Show every catalog model and whether it is downloaded, untracked .gguf files, and a total
    #[command(display_order = 2)]
    List {
        /// Only the downloaded models
        #[arg(long)]
        downloaded: bool,
    },
    /// Download models (verified against the catalog SHA-256) and print their paths
    #[command(display_order = 1)]
    Download {
        /// Model names, aliases or NAME:QUANT
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Download every catalog model
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Connections per file from a network source (default: one per 2 MiB of the file,
        /// at most 32)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        connections: Option<u16>,
        /// Cap the total download rate, per second (20M, 20MB, 1.5G, 500MiB)
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        max_rate: Option<u64>,
        /// Do not look for the file in other tools' caches (Hugging Face, llama.cpp, Ollama,
        /// RamaLama, LM Studio)
        #[arg(long)]
        no_reuse: bool,
        /// How long to wait for another process that is downloading the same model before
        /// giving up (exit 10): seconds, or 500ms, 30s, 10m, 2h (default: as long as it takes,
        /// with a notice every 30 s; overrides STRATA_LOCK_TIMEOUT)
        #[arg(long, value_name = "DURATION", value_parser = parse_lock_timeout)]
        lock_timeout: Option<std::time::Duration>,
    },
    /// Re-hash downloaded models in full and report each (all downloaded models by default)
    #[command(display_order = 5)]
    Verify {
        /// Model names, aliases or NAME:QUANT
        names: Vec<String>,
        /// Verify every downloaded model (the default when no name is given)
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// Remove least-recently-used models until the models directory fits a budget (pinned
    /// and locked models and untracked files stay); partial downloads untouched for a week go
    /// too
    #[command(display_order = 13)]
    Prune {
        /// The budget, with a unit: 10GB, 500MB, 8GiB (0 removes every unpinned model)
        #[arg(long, value_name = "SIZE", value_parser = parse_budget)]
        max_size: u64,
        /// Show what would be removed, and remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Pin models so that prune never removes them
    #[command(display_order = 11)]
    Pin {
        /// Model names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Unpin models
    #[command(display_order = 12)]
    Unpin {
        /// Model names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Manage your own aliases (default-embed -> minilm), stored with the custom catalog
    #[command(display_order = 10)]
    Alias {
        #[command(subcommand)]
        action: AliasCommand,
    },
    /// Maintainer tools for the catalog
    #[command(display_order = 17)]
    Catalog {
        #[command(subcommand)]
        action: CatalogCommand,
    },
    /// Seed a mirror from the models directory
    #[command(display_order = 16)]
    Mirror {
        #[command(subcommand)]
        action: MirrorCommand,
    },
    /// Make downloaded models visible in the Hugging Face hub cache (huggingface_hub,
    /// transformers and llama.cpp then find them without downloading): a hard link of each
    /// file as its blob, and a snapshot entry at the pinned revision
    #[command(display_order = 15)]
    Share {
        /// Models to share
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Share every downloaded model
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Print what would be shared, and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Ask the Hub whether the branch each model was pinned from has moved and whether its
    /// files changed there (one request per repository; downloads nothing, changes no pin).
    /// Exit 11 when a model's file changed or is gone upstream
    #[command(display_order = 15)]
    Outdated {
        /// Model names, aliases or NAME:QUANT (default: every catalog model)
        names: Vec<String>,
    },
    /// Re-pin custom models to the commit their branch points to now and fetch the files that
    /// changed; the old files keep serving until the new ones are verified, and stay if
    /// anything fails. Built-in models are not re-pinned (add pins another version)
    #[command(display_order = 15)]
    Update {
        /// Custom model names or NAME:QUANT
        #[arg(required = true)]
        names: Vec<String>,
        /// Check everything (the Hub's answer, the new header) and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Cap the total rate of what is fetched, per second (20M, 20MB, 1.5G, 500MiB)
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        max_rate: Option<u64>,
    },
    /// Show the models directory, offline state, the Hub token's origin, each source in order
    /// and whether it answers, and every other tool's cache looked in before a download
    #[command(alias = "doctor")]
    #[command(display_order = 14)]
    Sources,
    /// Print the local paths of downloaded models (exit 4 when one is not downloaded)
    #[command(display_order = 3)]
    Path {
        /// Model names, aliases or NAME:QUANT
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show models' details, and their GGUF header when downloaded
    #[command(display_order = 4)]
    Info {
        /// Model names, aliases or NAME:QUANT
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Delete downloaded models and any partial download of them
    #[command(display_order = 6)]
    Remove {
        /// Model names, aliases or NAME:QUANT
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Add a GGUF from the Hub or an OCI registry by reference, pinned for you
    ///
    /// From the Hub, the entry pins the commit the revision points to now and the file's size
    /// and SHA-256 (from the Hub's API). From a registry, it pins the manifest's digest and each
    /// GGUF layer's digest and size (ModelPack weight layers, Docker Model Runner's GGUF and
    /// projector layers, layers titled *.gguf), and downloads from that registry. Either way
    /// arch, dimension and task come from the GGUF header (the first bytes only), and the entry
    /// is written to the custom catalog as `register` writes it.
    #[command(after_help = "References: hf.co/OWNER/REPO, huggingface.co/OWNER/REPO, hf://OWNER/REPO or \
        OWNER/REPO, each with :QUANT (any case: Q8_0, q4_k_m) or /FILE.gguf, and @REVISION; \
        oci://HOST[:PORT]/REPOSITORY:TAG or oci://HOST[:PORT]/REPOSITORY@sha256:DIGEST.\n\
        Examples: strata-model add hf.co/my-org/my-embed-GGUF:Q8_0\n          \
        strata-model add oci://registry.internal:5000/ml/embed:q8_0")]
    #[command(display_order = 7)]
    Add(Box<AddArgs>),
    /// Add a custom model to the custom catalog (STRATA_MODELS_CATALOG, else
    /// <models dir>/catalog.json)
    #[command(display_order = 8)]
    Register(Box<RegisterArgs>),
    /// Print a shell completion script: strata-model completions bash > /etc/bash_completion.d/strata-model
    #[command(display_order = 18)]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Remove a custom model from the custom catalog (its file stays, untracked, unless
    /// --remove-file)
    #[command(display_order = 9)]
    Unregister {
        /// The custom model's name (NAME:QUANT for one of several quantizations)
        name: String,
        /// Delete its downloaded file too (else the file stays, listed as untracked)
        #[arg(long)]
        remove_file: bool,
    },
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Point ALIAS at a model (NAME or NAME:QUANT)
    Set {
        /// The alias
        alias: String,
        /// The model it stands for
        target: String,
    },
    /// Remove an alias
    Remove {
        /// The alias
        alias: String,
    },
    /// List your aliases
    List,
}

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Compare each pinned entry with what the Hub reports (HEAD on the resolve URL, no
    /// body): size and SHA-256. Exit 6 on a mismatch, 5 when the Hub lacks a file.
    Check {
        /// Hub endpoint (default: HF_ENDPOINT, else https://huggingface.co)
        #[arg(long, value_name = "URL")]
        endpoint: Option<Url>,
        /// Entries to check (default: all)
        names: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum MirrorCommand {
    /// Copy verified models to a directory, an OCI registry (oci://HOST/REPOSITORY: a blob and
    /// a ModelPack manifest tagged with the model's name), an OCI image layout (oci-layout:DIR,
    /// the same artifact on disk, as skopeo and oras read it) or a bucket (s3://, gs://, az://);
    /// files already there with the right size are skipped
    Push {
        /// A directory, file:// URL, oci://host[:port]/repository, oci-layout:DIR, or
        /// s3://bucket/prefix, gs://bucket/prefix, az://container/prefix
        destination: std::ffi::OsString,
        /// Models to push
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Push every downloaded model
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Print what would be copied, and copy nothing
        #[arg(long)]
        dry_run: bool,
        /// To a registry: push blobs larger than this in chunks of this size (PATCH requests),
        /// halved while a proxy answers 413; an interrupted chunked push resumes where the
        /// registry stands on the next run (default 64MiB, at least 1MiB; 8MiB, 16MB, 1G)
        #[arg(long, value_name = "SIZE", value_parser = parse_chunk_size)]
        chunk_size: Option<u64>,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// The reference: hf.co/OWNER/REPO[:QUANT | /FILE.gguf][@REVISION], or
    /// oci://HOST[:PORT]/REPOSITORY:TAG (or @sha256:DIGEST)
    pub reference: String,
    /// Name for the model (default: the repository's name, lowercased, without -GGUF; from a
    /// registry, its repository's last component)
    #[arg(long)]
    pub name: Option<String>,
    /// Branch, tag or commit to look up (default: main); the entry pins the commit
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// The GGUF file in the repository (instead of :QUANT)
    #[arg(long, value_name = "FILE")]
    pub file: Option<String>,
    /// GGUF architecture (default: general.architecture from the header)
    #[arg(long)]
    pub arch: Option<String>,
    /// Embedding dimension (default: from the header)
    #[arg(long, value_name = "N")]
    pub dim: Option<u32>,
    /// Task, when the header does not say (an embedding model's header names its pooling)
    #[arg(long, value_parser = ["embedding", "generation"])]
    pub task: Option<String>,
    /// The projector (mmproj) to add beside the weights, a path in the repository or a file
    /// name (default: the one llama.cpp would load, when the repository has one)
    #[arg(long, value_name = "FILE", conflicts_with = "no_mmproj")]
    pub mmproj: Option<String>,
    /// Add no projector, even when the repository has one
    #[arg(long)]
    pub no_mmproj: bool,
    /// Print the entry and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args)]
pub struct RegisterArgs {
    /// Name for the model (letters, digits, '.', '_', '-')
    pub name: String,
    /// Hugging Face repository, owner/name
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: String,
    /// File name in the repository (a plain name ending in .gguf)
    #[arg(long, value_name = "FILE")]
    pub file: String,
    /// Commit to pin downloads to (40 hex digits)
    #[arg(long, value_name = "COMMIT")]
    pub revision: String,
    /// SHA-256 of the file (64 hex digits)
    #[arg(long, value_name = "HEX")]
    pub sha256: String,
    /// Exact size of the file in bytes (units are exact too: 25.008064MB)
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub size: u64,
    /// GGUF architecture (general.architecture)
    #[arg(long)]
    pub arch: Option<String>,
    /// Embedding dimension
    #[arg(long, value_name = "N")]
    pub dim: Option<u32>,
    /// Quantization (default: read from the file name)
    #[arg(long)]
    pub quant: Option<String>,
    /// Task: embedding or generation
    #[arg(long, value_parser = ["embedding", "generation"])]
    pub task: Option<String>,
    /// One-line description
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// License identifier
    #[arg(long)]
    pub license: Option<String>,
    /// The branch or tag the revision was taken from (main), which `outdated` follows
    #[arg(long, value_name = "REF")]
    pub tracks: Option<String>,
}

/// Parses a size (`10GB`, `500MB`, `8GiB`, `1000000`): the one size syntax of every option.
fn parse_size(s: &str) -> Result<u64, String> {
    s.parse::<ByteSize>().map(|b| b.0).map_err(|e| e.to_string())
}

/// Parses a chunk size: a size (`8MiB`, `16MB`) of at least 1 MiB.
fn parse_chunk_size(s: &str) -> Result<u64, String> {
    let bytes = parse_size(s)?;
    if bytes < strata_model::config::MIN_PUSH_CHUNK_SIZE {
        return Err(format!("{s} is less than the smallest chunk, 1MiB (1048576 bytes)"));
    }
    Ok(bytes)
}

/// Parses a budget: a size with a unit (`10GB`), or `0`. A bare number is refused: `100`
/// would be 100 bytes, and prune would delete every unpinned model.
fn parse_budget(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t != "0" && !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "`{t}` has no unit; write {t}GB, {t}MB or {t}GiB (a plain number would be bytes, and prune would \
             remove every unpinned model; 0 does that on purpose)"
        ));
    }
    parse_size(t)
}

/// Parses a rate (`20M`, `20MB`, `20 MB/s`): a size per second, more than 0.
fn parse_lock_timeout(s: &str) -> Result<std::time::Duration, String> {
    strata_model::config::parse_lock_timeout("--lock-timeout", s).map_err(|e| match e {
        strata_model::RegistryError::InvalidConfig { reason, .. } => reason,
        other => other.to_string(),
    })
}

fn parse_rate(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err(format!("`{s}` must be more than 0")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_option_takes_every_spelling() {
        for s in ["20M", "20MB", "20 MB", "20 MB/s", "1.5G", "500MiB"] {
            assert!(parse_rate(s).is_ok() && parse_size(s).is_ok(), "{s}");
        }
        assert_eq!(parse_rate("20MB"), Ok(20_000_000));
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_rate("0").is_err() && parse_rate("fast").is_err() && parse_size("5XB").is_err());
    }

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
