//! `strata-model`: the command-line face of the strata-model library. It parses flags, calls
//! the library, renders the results and maps errors to exit codes; nothing else.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;
use strata_model::{Config, CustomModel, ErrorKind, ModelTask, Registry, RegistryError, Status};

/// Exit codes, documented in the README.
mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNKNOWN_MODEL: u8 = 3;
    pub const NOT_DOWNLOADED: u8 = 4;
    pub const NETWORK: u8 = 5;
    pub const INTEGRITY: u8 = 6;
    pub const STORAGE: u8 = 7;
    pub const CONFIG: u8 = 8;
    pub const UNSUPPORTED: u8 = 9;
}

#[derive(Parser)]
#[command(
    name = "strata-model",
    version,
    about = "Turn a friendly model name (minilm) into a verified GGUF file on local disk",
    long_about = "Turn a friendly model name (minilm) into a verified GGUF file on local disk.\n\n\
        Models are stored flat under the models directory (STRATA_MODELS_DIR, else \
        ~/.strata/models). Names are case-insensitive; NAME:QUANT selects a variant \
        (minilm:f16); aliases such as all-minilm work too.",
    after_help = "Environment: STRATA_MODELS_DIR, STRATA_MODELS_CATALOG, STRATA_MODELS_MIRROR, \
        STRATA_OFFLINE, HF_ENDPOINT, HF_TOKEN, NO_COLOR.\n\
        Exit codes: 0 ok, 1 failure, 2 usage, 3 unknown model, 4 not downloaded, 5 network, \
        6 integrity, 7 storage, 8 configuration, 9 unsupported architecture."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    json: bool,
    /// Models directory (overrides STRATA_MODELS_DIR)
    #[arg(long, global = true, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// When to use colour (auto: on a terminal, unless NO_COLOR is set)
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    color: Color,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Show every catalog model and whether it is downloaded
    List,
    /// Download models (verified against the catalog SHA-256) and print their paths
    Download {
        /// Model names, aliases or NAME:QUANT
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Download every catalog model
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// No progress bar or messages on stderr
        #[arg(long, short)]
        quiet: bool,
        /// Connections per file from a network source (default by size: 1 below 32 MiB, 8
        /// below 128 MiB, 16 below 512 MiB, 32 above)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        connections: Option<u16>,
        /// Cap the total download rate, in bytes per second (suffixes k, M, G: 20M)
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        max_rate: Option<u64>,
        /// Do not look for the file in other tools' caches (Hugging Face, llama.cpp, LM Studio)
        #[arg(long)]
        no_reuse: bool,
    },
    /// Re-hash downloaded models in full and report each (all downloaded models by default)
    Verify {
        /// Model names, aliases or NAME:QUANT
        names: Vec<String>,
        /// Verify every downloaded model (the default when no name is given)
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// Remove least-recently-used models until the models directory fits a budget (pinned
    /// and locked models stay); partial downloads untouched for a week go too
    Prune {
        /// The budget, e.g. 10GB, 500MB, 8GiB
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: u64,
        /// Show what would be removed, and remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Pin a model so that prune never removes it
    Pin {
        /// Model name
        name: String,
    },
    /// Unpin a model
    Unpin {
        /// Model name
        name: String,
    },
    /// Manage your own aliases (default-embed -> minilm), stored with the custom catalog
    Alias {
        #[command(subcommand)]
        action: AliasCommand,
    },
    /// Maintainer tools for the catalog
    Catalog {
        #[command(subcommand)]
        action: CatalogCommand,
    },
    /// Seed a mirror from the models directory
    Mirror {
        #[command(subcommand)]
        action: MirrorCommand,
    },
    /// Show the models directory, offline state and each source in order, and whether it
    /// answers
    #[command(alias = "doctor")]
    Sources,
    /// Print the local path of a downloaded model (exit 4 when it is not downloaded)
    Path {
        /// Model name, alias or NAME:QUANT
        name: String,
    },
    /// Show a model's details, and its GGUF header when downloaded
    Info {
        /// Model name, alias or NAME:QUANT
        name: String,
    },
    /// Delete a downloaded model and any partial download of it
    Remove {
        /// Model name, alias or NAME:QUANT
        name: String,
    },
    /// Add a custom model to the custom catalog (STRATA_MODELS_CATALOG, else
    /// <models dir>/catalog.json)
    Register(Box<RegisterArgs>),
    /// Remove a custom model from the custom catalog (its downloaded file stays)
    Unregister {
        /// The custom model's name
        name: String,
    },
}

#[derive(Subcommand)]
enum AliasCommand {
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
enum CatalogCommand {
    /// Compare each pinned entry with what the Hub reports (HEAD on the resolve URL, no
    /// body): size and SHA-256. Exit 6 on a mismatch, 5 when the Hub lacks a file.
    Check {
        /// Hub endpoint (default: HF_ENDPOINT, else https://huggingface.co)
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Entries to check (default: all)
        names: Vec<String>,
    },
}

#[derive(Subcommand)]
enum MirrorCommand {
    /// Copy verified models to a directory or bucket (s3://, gs://, az://); files already
    /// there with the right size are skipped
    Push {
        /// A directory, file:// URL, or s3://bucket/prefix, gs://bucket/prefix, az://container/prefix
        destination: String,
        /// Models to push
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Push every downloaded model
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Print what would be copied, and copy nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args)]
struct RegisterArgs {
    /// Name for the model (letters, digits, '.', '_', '-')
    name: String,
    /// Hugging Face repository, owner/name
    #[arg(long, value_name = "OWNER/NAME")]
    repo: String,
    /// File name in the repository (a plain name ending in .gguf)
    #[arg(long, value_name = "FILE")]
    file: String,
    /// Commit to pin downloads to (40 hex digits)
    #[arg(long, value_name = "COMMIT")]
    revision: String,
    /// SHA-256 of the file (64 hex digits)
    #[arg(long, value_name = "HEX")]
    sha256: String,
    /// Exact size of the file in bytes
    #[arg(long, value_name = "BYTES")]
    size: u64,
    /// GGUF architecture (general.architecture)
    #[arg(long)]
    arch: Option<String>,
    /// Embedding dimension
    #[arg(long, value_name = "N")]
    dim: Option<u32>,
    /// Quantization (default: read from the file name)
    #[arg(long)]
    quant: Option<String>,
    /// Task: embedding or generation
    #[arg(long, value_parser = ["embedding", "generation"])]
    task: Option<String>,
    /// One-line description
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Licence identifier
    #[arg(long)]
    license: Option<String>,
}

/// How output looks.
struct Ui {
    json: bool,
    color_out: bool,
    color_err: bool,
}

impl Ui {
    fn paint(&self, text: &str, code: &str) -> String {
        if self.color_out {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// A failure: a library error, or a message with an exit code.
enum Failure {
    Registry(RegistryError),
    Message(String, u8),
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        Self::Registry(e)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let wants = |tty: bool| match cli.global.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => tty && !no_color,
    };
    let ui = Ui {
        json: cli.global.json,
        color_out: wants(std::io::stdout().is_terminal()),
        color_err: wants(std::io::stderr().is_terminal()),
    };
    match run(&cli, &ui) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            let (message, code) = match failure {
                Failure::Registry(e) => {
                    let code = exit_code(&e);
                    (e.to_string(), code)
                }
                Failure::Message(m, code) => (m, code),
            };
            let prefix =
                if ui.color_err { "\x1b[31mstrata-model: error:\x1b[0m" } else { "strata-model: error:" };
            let _ = writeln!(std::io::stderr(), "{prefix} {message}");
            ExitCode::from(code)
        }
    }
}

fn exit_code(e: &RegistryError) -> u8 {
    match e.kind() {
        ErrorKind::UnknownModel => exit::UNKNOWN_MODEL,
        ErrorKind::NotDownloaded => exit::NOT_DOWNLOADED,
        ErrorKind::Network => exit::NETWORK,
        ErrorKind::Integrity => exit::INTEGRITY,
        ErrorKind::Storage => exit::STORAGE,
        ErrorKind::Config => exit::CONFIG,
        ErrorKind::Unsupported => exit::UNSUPPORTED,
        _ => exit::FAILURE,
    }
}

fn registry(global: &Global) -> Result<Registry, Failure> {
    let mut config = Config::from_env()?;
    if let Some(dir) = &global.models_dir {
        let dir = std::path::absolute(dir)
            .map_err(|e| Failure::Message(format!("--models-dir {}: {e}", dir.display()), exit::USAGE))?;
        config = config.with_models_dir(dir);
    }
    Ok(Registry::new(config)?)
}

fn run(cli: &Cli, ui: &Ui) -> Result<(), Failure> {
    let registry = registry(&cli.global)?;
    match &cli.command {
        Command::List => list(&registry, ui),
        Command::Download { names, all, quiet, connections, max_rate, no_reuse } => {
            let mut registry = registry.with_transfer(connections.map(usize::from), *max_rate);
            if *no_reuse {
                registry = registry.without_reuse();
            }
            download(registry, ui, names, *all, *quiet)
        }
        Command::Verify { names, all } => verify(&registry, ui, names, *all),
        Command::Mirror { action: MirrorCommand::Push { destination, names, all, dry_run } } => {
            let names = if *all { Vec::new() } else { names.clone() };
            let reports = strata_model::mirror::push(&registry, destination, &names, *dry_run)?;
            if ui.json {
                return emit_json(&reports);
            }
            let mut out = String::new();
            for r in &reports {
                let verb = match r.action {
                    strata_model::mirror::PushAction::Copied => "copied   ",
                    strata_model::mirror::PushAction::Skipped => "present  ",
                    strata_model::mirror::PushAction::WouldCopy => "would copy",
                };
                out.push_str(&format!("{verb} {:<20} {:>9}  {}\n", r.name, human_size(r.bytes), r.target));
            }
            if reports.is_empty() {
                out.push_str("no model is downloaded; nothing to push\n");
            }
            emit(&out)
        }
        Command::Sources => sources(&registry, ui),
        Command::Prune { max_size, dry_run } => {
            let r = registry.prune(*max_size, *dry_run)?;
            if ui.json {
                return emit_json(&r);
            }
            let verb = if r.dry_run { "would remove" } else { "removed" };
            let mut out = String::new();
            for (name, bytes) in &r.stale_partials {
                out.push_str(&format!("{verb} stale partial of {name} ({})\n", human_size(*bytes)));
            }
            for (name, bytes) in &r.removed {
                out.push_str(&format!("{verb} {name} ({})\n", human_size(*bytes)));
            }
            for name in &r.pinned {
                out.push_str(&format!("kept {name} (pinned)\n"));
            }
            for name in &r.locked {
                out.push_str(&format!("kept {name} (in use by another process)\n"));
            }
            out.push_str(&format!(
                "{} → {} (budget {}){}\n",
                human_size(r.bytes_before),
                human_size(r.bytes_after),
                human_size(r.max_bytes),
                if r.bytes_after > r.max_bytes { "; still over budget: unpin or raise it" } else { "" }
            ));
            emit(&out)
        }
        Command::Pin { name } | Command::Unpin { name } => {
            let pin = matches!(cli.command, Command::Pin { .. });
            if pin {
                registry.pin(name)?
            } else {
                registry.unpin(name)?
            }
            let entry = registry.resolve(name)?;
            if ui.json {
                return emit_json(&json!({ "name": entry.display_name(), "pinned": pin }));
            }
            emit(&format!("{} {}\n", if pin { "pinned" } else { "unpinned" }, entry.display_name()))
        }
        Command::Alias { action } => match action {
            AliasCommand::Set { alias, target } => {
                let (a, t) = registry.set_alias(alias, target)?;
                if ui.json {
                    return emit_json(&json!({ "alias": a, "target": t }));
                }
                emit(&format!("{a} -> {t}\n"))
            }
            AliasCommand::Remove { alias } => {
                let t = registry.remove_alias(alias)?;
                if ui.json {
                    return emit_json(&json!({ "alias": alias, "removed": t }));
                }
                emit(&format!("removed {alias} (was -> {t})\n"))
            }
            AliasCommand::List => {
                let aliases = registry.catalog().user_aliases();
                if ui.json {
                    let map: serde_json::Map<String, serde_json::Value> =
                        aliases.iter().map(|(a, t)| (a.clone(), t.clone().into())).collect();
                    return emit_json(&map);
                }
                let mut out: String = aliases.iter().map(|(a, t)| format!("{a} -> {t}\n")).collect();
                if out.is_empty() {
                    out = "no aliases; add one with `strata-model alias set NAME MODEL`\n".into();
                }
                emit(&out)
            }
        },
        Command::Catalog { action: CatalogCommand::Check { endpoint, names } } => {
            let rows = registry.check_catalog(endpoint.as_deref(), names)?;
            let bad = |v| rows.iter().filter(|r| r.verdict == v).count();
            let (mismatched, missing) =
                (bad(strata_model::check::Verdict::Mismatch), bad(strata_model::check::Verdict::Missing));
            if ui.json {
                emit_json(&rows)?;
            } else {
                let mut out = format!("  {:<20} {:<8} {}\n", "NAME", "RESULT", "DETAIL");
                for r in &rows {
                    let (word, code) = match r.verdict {
                        strata_model::check::Verdict::Match => ("match", "32"),
                        strata_model::check::Verdict::Mismatch => ("MISMATCH", "31"),
                        strata_model::check::Verdict::Missing => ("missing", "33"),
                    };
                    let detail = match (&r.note, r.hub_size, &r.hub_sha256) {
                        (None, _, _) => format!("{} bytes, sha256 {}", r.size, &r.sha256[..16]),
                        (Some(n), Some(size), sha) => format!(
                            "{n}: catalog {} bytes / {}…, Hub {size} bytes / {}…",
                            r.size,
                            &r.sha256[..16],
                            sha.as_deref().map_or("?", |s| &s[..s.len().min(16)])
                        ),
                        (Some(n), _, _) => n.clone(),
                    };
                    out.push_str(&format!(
                        "  {:<20} {} {detail}\n",
                        r.name,
                        ui.paint(&format!("{word:<8}"), code)
                    ));
                }
                out.push_str(&format!(
                    "{} checked: {} match, {mismatched} mismatch, {missing} missing\n",
                    rows.len(),
                    rows.len() - mismatched - missing
                ));
                emit(&out)?;
            }
            if mismatched > 0 {
                Err(Failure::Message(
                    format!("{mismatched} catalog entries differ from the Hub"),
                    exit::INTEGRITY,
                ))
            } else if missing > 0 {
                Err(Failure::Message(
                    format!("{missing} catalog entries could not be checked"),
                    exit::NETWORK,
                ))
            } else {
                Ok(())
            }
        }
        Command::Path { name } => path(&registry, ui, name),
        Command::Info { name } => info(&registry, ui, name),
        Command::Remove { name } => {
            let entry = registry.resolve(name)?.clone();
            let removed = registry.models_dir().remove(&entry)?;
            let path = registry.models_dir().model_path(&entry);
            if ui.json {
                emit_json(&json!({ "name": entry.display_name(), "removed": removed, "path": path }))
            } else if removed {
                emit(&format!("removed {} ({})\n", entry.display_name(), path.display()))
            } else {
                emit(&format!("{} was not downloaded; nothing to remove\n", entry.display_name()))
            }
        }
        Command::Register(args) => {
            let model = CustomModel {
                name: args.name.clone(),
                hf_repo: args.repo.clone(),
                hf_filename: args.file.clone(),
                revision: args.revision.clone(),
                sha256: args.sha256.clone(),
                size_bytes: args.size,
                arch: args.arch.clone(),
                embedding_dim: args.dim,
                quant: args.quant.clone(),
                task: args.task.as_deref().and_then(ModelTask::parse),
                description: args.description.clone(),
                license: args.license.clone(),
            };
            let entry = registry.register(&model)?;
            let file = registry.config().catalog_file();
            if ui.json {
                emit_json(&registry.info_of(&entry))
            } else {
                emit(&format!(
                    "registered {} ({}, {}) in {}\n",
                    entry.display_name(),
                    entry.hf_filename,
                    human_size(entry.size_bytes),
                    file.display()
                ))
            }
        }
        Command::Unregister { name } => {
            let entry = registry.unregister(name)?;
            let info = registry.info_of(&entry);
            let left = (info.state != Status::NotDownloaded).then_some(&info.path);
            if ui.json {
                return emit_json(
                    &json!({ "name": entry.display_name(), "unregistered": true, "file_left": left }),
                );
            }
            let mut out = format!("unregistered {}\n", entry.display_name());
            if let Some(p) = left {
                out.push_str(&format!(
                    "note: its file was left in place: {} (delete it by hand if unwanted)\n",
                    p.display()
                ));
            }
            emit(&out)
        }
    }
}

/// Shows downloads on stderr: a progress bar on a terminal, and notices (waiting for another
/// process, retries, failed sources) unless `--quiet`.
fn reporter(quiet: bool) -> Option<strata_model::ProgressFn> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use strata_model::Progress;
    if quiet {
        return None;
    }
    let tty = std::io::stderr().is_terminal();
    let bar: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);
    let style = ProgressStyle::with_template(
        "{msg:<20} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    Some(std::sync::Arc::new(move |p: &Progress<'_>| {
        let mut bar = bar.lock().unwrap_or_else(|e| e.into_inner());
        let note = |text: String| match bar.as_ref() {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        };
        match p {
            Progress::WaitingForLock { model, lock } => {
                note(format!("waiting for another process downloading {model} (lock {})", lock.display()))
            }
            Progress::Verifying { model, bytes } => {
                note(format!("verifying the {} file already present for {model}", human_size(*bytes)))
            }
            Progress::Started { model, source, resumed_from, total } => {
                if *resumed_from > 0 {
                    note(format!(
                        "resuming {model} at {} of {} from {source}",
                        human_size(*resumed_from),
                        human_size(*total)
                    ));
                }
                if tty {
                    let b = bar.get_or_insert_with(|| {
                        ProgressBar::with_draw_target(Some(*total), ProgressDrawTarget::stderr())
                            .with_style(style.clone())
                    });
                    b.set_length(*total);
                    b.set_position(*resumed_from);
                    b.set_message(model.to_string());
                }
            }
            Progress::Advanced { done, total, .. } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(*done);
                    if done == total {
                        b.finish_and_clear();
                    }
                }
            }
            Progress::Retrying { model, source, reason, delay } => {
                note(format!("{model}: {source}: {reason}; retrying in {:.1}s", delay.as_secs_f64()))
            }
            Progress::SourceFailed { model, source, reason } => {
                note(format!("{model}: {source} failed: {reason}; trying the next source"))
            }
            _ => {}
        }
        if bar.as_ref().is_some_and(ProgressBar::is_finished) {
            *bar = None;
        }
    }))
}

fn download(registry: Registry, ui: &Ui, names: &[String], all: bool, quiet: bool) -> Result<(), Failure> {
    let names: Vec<String> =
        if all { registry.list().into_iter().map(|m| m.name).collect() } else { names.to_vec() };
    let registry = match reporter(quiet || ui.json) {
        Some(r) => registry.with_progress(r),
        None => registry,
    };
    let mut results = Vec::new();
    let mut first_error: Option<RegistryError> = None;
    for name in &names {
        match registry.ensure(name) {
            Ok(path) => {
                if !ui.json {
                    emit(&format!("{}\n", path.display()))?;
                }
                results.push(json!({ "name": name, "path": path }));
            }
            Err(e) => {
                results.push(json!({ "name": name, "error": e.to_string() }));
                if names.len() > 1 && !ui.json {
                    eprintln!("strata-model: error: {name}: {e}");
                }
                first_error.get_or_insert(e);
            }
        }
    }
    if ui.json {
        emit_json(&results)?;
    }
    match first_error {
        None => Ok(()),
        Some(e) if names.len() == 1 => Err(e.into()),
        Some(e) => Err(Failure::Message(
            format!(
                "{} of {} downloads failed",
                results.iter().filter(|r| r.get("error").is_some()).count(),
                names.len()
            ),
            exit_code(&e),
        )),
    }
}

fn verify(registry: &Registry, ui: &Ui, names: &[String], all: bool) -> Result<(), Failure> {
    let names: Vec<String> = if all || names.is_empty() {
        registry.list().into_iter().filter(|m| m.state == Status::Downloaded).map(|m| m.name).collect()
    } else {
        names.to_vec()
    };
    let mut results = Vec::new();
    let mut out = String::new();
    let mut worst: Option<RegistryError> = None;
    for name in &names {
        match registry.verify(name) {
            Ok(path) => {
                out.push_str(&format!("ok      {name}  {}\n", path.display()));
                results.push(json!({ "name": name, "ok": true, "path": path }));
            }
            Err(e) => {
                out.push_str(&format!("FAILED  {name}: {e}\n"));
                results.push(json!({ "name": name, "ok": false, "error": e.to_string() }));
                worst.get_or_insert(e);
            }
        }
    }
    if ui.json {
        emit_json(&results)?;
    } else if names.is_empty() {
        emit("no model is downloaded; nothing to verify\n")?;
    } else {
        emit(&out)?;
    }
    match worst {
        None => Ok(()),
        Some(e) => Err(Failure::Message(
            format!(
                "{} of {} models failed verification",
                results.iter().filter(|r| r["ok"] == false).count(),
                names.len()
            ),
            exit_code(&e),
        )),
    }
}

fn sources(registry: &Registry, ui: &Ui) -> Result<(), Failure> {
    let config = registry.config();
    let sources = strata_model::sources::from_config(config)?;
    let checks: Vec<(String, Result<String, String>)> =
        sources.iter().map(|s| (s.to_string(), s.check())).collect();
    let dir = registry.models_dir().root();
    let custom = registry.catalog().custom_entries().count();
    if ui.json {
        let list: Vec<_> = checks
            .iter()
            .map(|(name, r)| match r {
                Ok(detail) => json!({ "source": name, "ok": true, "detail": detail }),
                Err(detail) => json!({ "source": name, "ok": false, "detail": detail }),
            })
            .collect();
        return emit_json(&json!({
            "models_dir": dir,
            "catalog_file": config.catalog_file(),
            "custom_models": custom,
            "offline": config.is_offline(),
            "sources": list,
        }));
    }
    let mut out = format!("Models directory: {}", dir.display());
    out.push_str(if dir.is_dir() { "\n" } else { " (not created yet)\n" });
    out.push_str(&format!("Custom catalog:   {} ({custom} models)\n", config.catalog_file().display()));
    out.push_str(&format!(
        "Offline:          {}\n\nSources, in order:\n",
        if config.is_offline() { "yes (no network source is used)" } else { "no" }
    ));
    for (i, (name, r)) in checks.iter().enumerate() {
        let status = match r {
            Ok(d) => ui.paint(d, "32"),
            Err(d) => ui.paint(&format!("FAILED: {d}"), "31"),
        };
        out.push_str(&format!("  {}. {name}\n     {status}\n", i + 1));
    }
    if checks.is_empty() {
        out.push_str("  none: offline with no local mirror\n");
    }
    emit(&out)
}

fn list(registry: &Registry, ui: &Ui) -> Result<(), Failure> {
    let models = registry.list();
    if ui.json {
        return emit_json(&models);
    }
    let rows: Vec<[String; 5]> = models
        .iter()
        .map(|m| {
            let dim = if m.embedding_dim == 0 { "-".to_string() } else { m.embedding_dim.to_string() };
            // A model reused from another tool's cache says which.
            let from = m.installed_from.as_deref().and_then(|o| {
                ["Hugging Face cache", "llama.cpp cache", "LM Studio"].into_iter().find(|t| o.starts_with(t))
            });
            let status = match from {
                Some(tool) => format!("{} (from {tool})", m.status_label()),
                None => m.status_label(),
            };
            [m.name.clone(), m.arch.clone(), dim, human_size(m.size_bytes), status]
        })
        .collect();
    let header = ["NAME", "ARCH", "DIM", "SIZE", "STATUS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::from("Available models:\n\n");
    let line = |cells: [&str; 5], status: String| {
        format!(
            "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            status,
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    out.push_str(&line(header, header[4].to_string()));
    for (row, m) in rows.iter().zip(&models) {
        let status = match m.state {
            Status::Downloaded => ui.paint(&row[4], "32"),
            Status::Partial { .. } => ui.paint(&row[4], "33"),
            Status::Invalid { .. } => ui.paint(&row[4], "31"),
            Status::NotDownloaded => row[4].clone(),
        };
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]], status));
    }
    out.push_str(&format!("\nModels directory: {}\n", registry.models_dir().root().display()));
    let custom = registry.catalog().custom_entries().count();
    if custom > 0 {
        out.push_str(&format!(
            "Custom catalog: {} ({custom} model{})\n",
            registry.config().catalog_file().display(),
            if custom == 1 { "" } else { "s" }
        ));
    }
    emit(&out)
}

fn path(registry: &Registry, ui: &Ui, name: &str) -> Result<(), Failure> {
    let entry = registry.resolve(name)?;
    let found = registry.path(name)?;
    let path = registry.models_dir().model_path(entry);
    if ui.json {
        emit_json(&json!({ "name": entry.display_name(), "path": path, "downloaded": found.is_some() }))?;
    } else if let Some(p) = &found {
        emit(&format!("{}\n", p.display()))?;
    }
    match found {
        Some(_) => Ok(()),
        None => Err(RegistryError::NotDownloaded { model: entry.display_name(), path }.into()),
    }
}

fn info(registry: &Registry, ui: &Ui, name: &str) -> Result<(), Failure> {
    let m = registry.info(name)?;
    let header = (m.state == Status::Downloaded).then(|| registry.read_header(name));
    if ui.json {
        let mut doc = serde_json::to_value(&m).map_err(|e| Failure::Message(e.to_string(), exit::FAILURE))?;
        let (gguf, err) = match &header {
            Some(Ok(h)) => (serde_json::to_value(h).unwrap_or_default(), None),
            Some(Err(e)) => (serde_json::Value::Null, Some(e.to_string())),
            None => (serde_json::Value::Null, None),
        };
        doc["gguf"] = gguf;
        if let Some(e) = err {
            doc["gguf_error"] = e.into();
        }
        return emit_json(&doc);
    }
    let entry = registry.resolve(name)?;
    let variants: Vec<String> =
        registry.catalog().variants(&entry.name).iter().map(|e| e.display_name()).collect();
    let mut out = format!("{} ({})\n  {}\n\n", m.name, m.quant, m.description);
    let mut field = |k: &str, v: String| out.push_str(&format!("  {k:<14} {v}\n"));
    field("repository", format!("{} @ {}", m.hf_repo, m.revision));
    field("file", m.hf_filename.clone());
    field("size", format!("{} ({} bytes)", human_size(m.size_bytes), m.size_bytes));
    field("sha256", m.sha256.clone());
    field("arch", m.arch.clone());
    field("dim", if m.embedding_dim == 0 { "unknown".into() } else { m.embedding_dim.to_string() });
    field("task", m.task.to_string());
    field("licence", m.license.clone());
    field("variants", variants.join(", "));
    if !m.aliases.is_empty() {
        field("aliases", m.aliases.join(", "));
    }
    field("origin", format!("{:?}", m.origin).to_lowercase());
    field("url", m.url.clone());
    field("status", m.status_label());
    if let Some(from) = &m.installed_from {
        field("installed from", from.clone());
    }
    if m.pinned {
        field("pinned", "yes (prune keeps it)".into());
    }
    field("path", m.path.display().to_string());
    match &header {
        Some(Ok(h)) => {
            field(
                "gguf",
                format!(
                    "version {}, arch {}, embedding length {}, file type {}, {} tensors, {} metadata keys",
                    h.version,
                    h.architecture.as_deref().unwrap_or("?"),
                    h.embedding_length.map_or("?".into(), |d| d.to_string()),
                    h.file_type_name()
                        .map_or_else(|| h.file_type.map_or("?".into(), |t| t.to_string()), str::to_string),
                    h.tensor_count,
                    h.kv_count
                ),
            );
            if h.architecture.as_deref().is_some_and(|a| a != m.arch) {
                field("warning", format!("the file's architecture differs from the catalog's `{}`", m.arch));
            }
        }
        Some(Err(e)) => field("gguf", format!("unreadable: {e}")),
        None => {}
    }
    emit(&out)
}

/// Parses a size such as `10GB`, `500MB`, `8GiB` or `1000000` (bytes).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => return Err(format!("unknown unit `{other}`: use B, kB, MB, GB, TB or KiB, MiB, GiB, TiB")),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("`{s}` is not a size such as 10GB"))?;
    if n.is_nan() || n < 0.0 || !n.is_finite() {
        return Err(format!("`{s}` is not a size"));
    }
    Ok((n * mult as f64) as u64)
}

/// Parses a rate such as `20M`, `500k` or `1000000` (bytes per second; decimal units).
fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_lowercase() {
                'k' => 1_000,
                'm' => 1_000_000,
                'g' => 1_000_000_000,
                _ => return Err(format!("unknown unit `{c}`: use k, M or G")),
            };
            (&t[..i], mult)
        }
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("`{s}` is not a rate such as 20M"))?;
    if n.is_nan() || n <= 0.0 || !n.is_finite() {
        return Err(format!("`{s}` must be more than 0"));
    }
    Ok((n * mult as f64) as u64)
}

/// Sizes in decimal units with three significant digits (25.0 MB, 335 MB, 8.05 GB).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 999.5 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let text = if value >= 99.95 {
        format!("{value:.0}")
    } else if value >= 9.995 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    format!("{text} {}", UNITS[unit])
}

fn emit_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| Failure::Message(e.to_string(), exit::FAILURE))?;
    text.push('\n');
    emit(&text)
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly.
fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::Message(format!("cannot write to stdout: {e}"), exit::FAILURE)),
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(super::parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(super::parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(super::parse_size("0"), Ok(0));
        assert_eq!(super::parse_size("1.5 MB"), Ok(1_500_000));
        assert!(super::parse_size("ten").is_err() && super::parse_size("5XB").is_err());
    }

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(super::parse_rate("20M"), Ok(20_000_000));
        assert_eq!(super::parse_rate("1.5k"), Ok(1_500));
        assert_eq!(super::parse_rate("123"), Ok(123));
        assert!(
            super::parse_rate("0").is_err()
                && super::parse_rate("fast").is_err()
                && super::parse_rate("5x").is_err()
        );
    }

    #[test]
    fn sizes_have_three_significant_digits() {
        assert_eq!(human_size(25_008_064), "25.0 MB");
        assert_eq!(human_size(45_949_216), "45.9 MB");
        assert_eq!(human_size(333_590_944), "334 MB");
        assert_eq!(human_size(8_047_105_824), "8.05 GB");
        assert_eq!(human_size(999_999), "1.00 MB");
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1_500), "1.50 kB");
    }
}
