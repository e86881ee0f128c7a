//! The command line. Each subcommand is its own module; this one parses and
//! dispatches. Reports go to stdout, logs to stderr.

mod access;
mod access_view;
mod adapters;
mod audit;
mod audit_view;
mod doctor;
mod inspect;
mod new_cmd;
mod record;
mod relay;
mod serve;
mod sessions;
mod sessions_view;
mod try_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::home::AirlockHome;
use crate::host::Host;

/// airlock: chat platforms into Claude Code, through a WebAssembly sandbox.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The MCP channel server Claude Code launches over stdio.
    Serve {
        /// Read this config instead of `$AIRLOCK_HOME/airlock.toml`.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// This session's name (default: the directory's name, with -2, -3… if taken).
        #[arg(long, value_name = "NAME")]
        session: Option<String>,
    },
    /// Try airlock in this terminal: fakechat (or --adapter), events shown as the session sees them.
    Try {
        /// An adapter under development: its crate's folder (built first), or
        /// `FILE.wasm` with `FILE.toml` beside it.
        #[arg(long)]
        adapter: Option<std::path::PathBuf>,
    },
    /// Start a new component: `airlock new adapter NAME` writes a Rust adapter crate.
    New {
        #[command(subcommand)]
        what: New,
    },
    /// Who may reach the session: invite, allow, role, revoke, list, status, lockdown, unlock.
    Access {
        #[command(subcommand)]
        action: access::Action,
    },
    /// The permission relay's time-boxed rules: allow, rules, revoke.
    Relay {
        #[command(subcommand)]
        action: relay::Action,
    },
    /// The audit trail: verify, search, tail, show, export, status.
    Audit {
        #[command(subcommand)]
        action: audit::Action,
    },
    /// The sessions on this state directory (live or away, what waits, who holds each
    /// connection, which chat goes where); route and unroute bind a chat to one.
    #[command(args_conflicts_with_subcommands = true)]
    Sessions {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<sessions::Action>,
    },
    /// Show what a component imports, asks for, would be granted, and whether it would load.
    Inspect {
        /// A component file (`.wasm`), or the name of a bundled component.
        target: String,
        /// The manifest, if it is not the `.toml` beside the file.
        #[arg(long)]
        manifest: Option<std::path::PathBuf>,
    },
    /// Manage components: list, approve or remove third-party drop-ins.
    Adapters {
        #[command(subcommand)]
        action: Option<adapters::Action>,
    },
    /// Check the set-up (state directory, config, components, secrets, ports) and say how to connect Claude Code.
    Doctor,
}

/// What `airlock new` makes.
#[derive(Debug, Subcommand)]
enum New {
    /// A Rust adapter crate: the adapter, its manifest, a test and a README.
    Adapter {
        /// The adapter's name (lowercase letters, digits, '-'); also the folder's.
        name: String,
        /// Where to put the folder.
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// The guest SDK to build against (default: the one this airlock was built from).
        #[arg(long)]
        sdk: Option<std::path::PathBuf>,
    },
}

/// Run the CLI; returns the process exit code.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Doctor opens the pieces itself: `Host::open` stops at the first problem
    // doctor should report.
    let host =
        || -> anyhow::Result<Host> { Host::open(AirlockHome::open(AirlockHome::default_path())?) };
    match cli.command {
        Command::Doctor => Ok(doctor::run()),
        Command::Serve { config, session } => {
            let mut host = host()?;
            let path = match config {
                Some(path) => {
                    if !path.exists() {
                        anyhow::bail!("no config file at {}", path.display());
                    }
                    host.config = crate::home::load_config(&path)?;
                    path
                }
                None => host.home.path().join("airlock.toml"),
            };
            serve::run(host, &path, session.as_deref())
        }
        Command::Access { action } => {
            access::run(AirlockHome::open(AirlockHome::default_path())?, action)
        }
        Command::Relay { action } => relay::run(&host()?, action),
        Command::Audit { action } => audit::run(&host()?, action),
        Command::Sessions { json, action } => sessions::run(&host()?, action, json),
        Command::Try { adapter } => try_cmd::run(host()?, adapter.as_deref()),
        Command::New {
            what: New::Adapter { name, dir, sdk },
        } => new_cmd::run(&name, &dir, sdk.as_deref()),
        Command::Inspect { target, manifest } => inspect::run(
            &host()?,
            inspect::Subject::find(&target, manifest.as_deref())?,
        ),
        Command::Adapters { action } => {
            adapters::run(&host()?, action.unwrap_or(adapters::Action::List))
        }
    }
}

fn init_logging() {
    crate::logging::init();
}
