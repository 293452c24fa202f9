//! `strata-model`: the command-line face of the strata-model library. It parses flags
//! (`cli.rs`), calls the library from one module per command (`commands/`), renders the
//! results (`output.rs`, `json.rs`, `progress.rs`), shows its log events when asked
//! (`logging.rs`) and maps errors to exit codes (here).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use strata_model::{Config, Registry};

mod cli;
mod commands;
mod exit;
mod json;
mod logging;
mod output;
mod progress;

use exit::{code, exit_code, Failure};

use cli::{CatalogCommand, Cli, Color, Command, Global, MirrorCommand};
use output::Ui;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { code::USAGE } else { code::OK };
            if e.use_stderr() && std::env::args_os().any(|a| a == "--json") {
                let message = e.render().to_string();
                let first = message.lines().next().unwrap_or_default().trim_start_matches("error: ");
                let _ = output::emit_json(&json::ErrorDoc::new(first, code));
            }
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let no_color = std::env::var_os(strata_model::config::vars::NO_COLOR).is_some_and(|v| !v.is_empty());
    let wants = |tty: bool| match cli.global.color {
        Color::Always => true,
        Color::Never => false,
        // TERM unset or `dumb`: a terminal that takes no escapes.
        Color::Auto => tty && !no_color && !console::is_dumb(),
    };
    let ui = Ui {
        json: cli.global.json,
        color_out: wants(std::io::stdout().is_terminal()),
        color_err: wants(std::io::stderr().is_terminal()),
        quiet: cli.global.quiet,
    };
    match run(&cli, &ui) {
        Ok(()) => ExitCode::from(code::OK),
        Err(failure) => {
            let (message, code) = match failure {
                Failure::Registry(e) => (e.report().to_string(), exit_code(&e)),
                Failure::Message(m, code) => (m, code),
            };
            // With --json, stdout always holds one document: the error's, when the command
            // printed none.
            if ui.json && !output::json_emitted() {
                let _ = output::emit_json(&json::ErrorDoc::new(&message, code));
            }
            let prefix =
                if ui.color_err { "\x1b[31mstrata-model: error:\x1b[0m" } else { "strata-model: error:" };
            let _ = writeln!(std::io::stderr(), "{prefix} {message}");
            ExitCode::from(code)
        }
    }
}

fn registry(global: &Global, writes_catalog: bool) -> Result<Registry, Failure> {
    let mut config = Config::from_env()?;
    if let Some(dir) = &global.models_dir {
        // Not expanded by a shell after `=` (`--models-dir=~/models`): as STRATA_MODELS_DIR is.
        let dir = strata_model::config::expand_home("--models-dir", dir)?;
        let dir = std::path::absolute(&dir)
            .map_err(|e| Failure::Message(format!("--models-dir {}: {e}", dir.display()), code::USAGE))?;
        config = config.with_models_dir(dir);
    }
    if writes_catalog {
        return Ok(Registry::new(config)?);
    }
    // A broken custom catalog must not stop the built-in models: say so, and go on.
    let (registry, problem) = Registry::new_keeping_builtins(config)?;
    if let Some(e) = problem {
        if !global.quiet {
            eprintln!(
                "strata-model: warning: {}; only the built-in models are available until it is fixed",
                e.report()
            );
        }
    }
    Ok(registry)
}

fn run(cli: &Cli, ui: &Ui) -> Result<(), Failure> {
    use commands::*;
    logging::init(
        cli.global.verbose,
        std::env::var_os(strata_model::config::vars::RUST_LOG),
        ui.color_err,
        ui.quiet,
    )?;
    if let Command::Completions { shell } = &cli.command {
        // Needs no configuration: works even where the environment is broken.
        if ui.json {
            // stdout holds one JSON document under --json; a script is not one.
            return Err(Failure::Message(
                "--json: `completions` prints a shell script, not JSON; run it without --json".into(),
                code::USAGE,
            ));
        }
        let mut command = <cli::Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut command, "strata-model", &mut script);
        return output::emit(&script);
    }
    let writes_catalog = matches!(
        cli.command,
        Command::Add(_) | Command::Register(_) | Command::Unregister { .. } | Command::Alias { .. }
    );
    let registry = registry(&cli.global, writes_catalog)?;
    match &cli.command {
        Command::List { downloaded } => list::run(&registry, ui, *downloaded),
        Command::Download { names, all, connections, max_rate, no_reuse, lock_timeout } => {
            let mut registry = registry.with_transfer(connections.map(usize::from), *max_rate);
            if lock_timeout.is_some() {
                registry = registry.with_lock_timeout(*lock_timeout);
            }
            if *no_reuse {
                registry = registry.without_reuse();
            }
            download::run(registry, ui, names, *all, cli.global.quiet)
        }
        Command::Verify { names, all } => verify::run(&registry, ui, names, *all),
        Command::Mirror { action: MirrorCommand::Push { destination, names, all, dry_run, chunk_size } } => {
            let names = if *all { &[][..] } else { &names[..] };
            let registry = match chunk_size {
                Some(bytes) => registry.with_push_chunk_size(*bytes),
                None => registry,
            };
            mirror::push(&registry, ui, destination, names, *dry_run)
        }
        Command::Sources => sources::run(&registry, ui),
        Command::Outdated { names } => outdated::run(&registry, ui, names),
        Command::Update { names, dry_run, max_rate } => {
            let registry = registry.with_transfer(None, *max_rate);
            // Progress of the fetches, a delta's notices among them.
            let registry = match crate::progress::reporter(cli.global.quiet, ui.json) {
                Some(r) => registry.with_progress(r),
                None => registry,
            };
            let result = update::run(&registry, ui, names, *dry_run);
            crate::progress::clear();
            result
        }
        Command::Share { names, all, dry_run } => {
            let names = if *all { &[][..] } else { &names[..] };
            share::run(&registry, ui, names, *dry_run)
        }
        Command::Prune { max_size, dry_run } => prune::run(&registry, ui, *max_size, *dry_run),
        Command::Pin { names } => pin::run(&registry, ui, names, true),
        Command::Unpin { names } => pin::run(&registry, ui, names, false),
        Command::Alias { action } => alias::run(&registry, ui, action),
        Command::Catalog { action: CatalogCommand::Check { endpoint, names } } => {
            catalog::check(&registry, ui, endpoint.as_ref(), names)
        }
        Command::Path { names } => path::run(&registry, ui, names),
        Command::Info { names } => info::run(&registry, ui, names),
        Command::Remove { names } => remove::run(&registry, ui, names),
        Command::Add(args) => add::run(&registry, ui, args),
        Command::Completions { .. } => unreachable!("handled before the registry is built"),
        Command::Register(args) => register::run(&registry, ui, args),
        Command::Unregister { name, remove_file } => unregister::run(&registry, ui, name, *remove_file),
    }
}
