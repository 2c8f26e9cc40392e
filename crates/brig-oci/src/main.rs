//! `brig-oci`, the OCI runtime command line, on the host side of every container's boundary: it
//! reads a bundle's `config.json` (the engine's word, not the container's), turns it into a brig
//! Plan, and runs it through brig-jail's launch sequence. The command line is runc's, as
//! podman's conmon and containerd's runc shim call it (docs/oci.md).

mod config;
mod log;
mod spec;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The OCI runtime specification version this runtime implements.
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, Parser)]
#[command(name = "brig-oci", disable_version_flag = true, about = "brig as an OCI runtime")]
struct Cli {
    /// Where container state lives (default /run/brig-oci, or $XDG_RUNTIME_DIR/brig-oci
    /// unprivileged).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Errors also go to this file, as the shims read them.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// `text` or `json`.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Accepted for runc compatibility; brig-oci logs the same either way.
    #[arg(long, global = true)]
    debug: bool,
    /// Asks for systemd cgroups: refused (this runtime manages cgroupfs itself).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Prints the version and the OCI specification version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Writes a starting config.json into the bundle directory.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// For an unprivileged user: a user namespace with the caller mapped to root, no
        /// network namespace of the host's.
        #[arg(long)]
        rootless: bool,
    },
    /// What this runtime supports, as JSON (the runtime-spec's features document).
    Features,
    /// Creates and starts the container in the foreground and exits with its status (no state
    /// is kept yet: create, start, state, kill and delete are not built).
    Run {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// The container's id.
        id: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let log = log::Log::new(cli.log.clone(), &cli.log_format);
    let status = match run(cli) {
        Ok(status) => status,
        Err(e) => {
            log.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(status);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    if cli.version {
        println!("brig-oci version {}\nspec: {OCI_VERSION}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    anyhow::ensure!(
        !cli.systemd_cgroup,
        "--systemd-cgroup: brig-oci manages cgroups through cgroupfs, not systemd; configure the \
         engine for cgroupfs (podman: cgroup_manager = \"cgroupfs\"; containerd: SystemdCgroup = false)"
    );
    match cli.command {
        None => anyhow::bail!("give a command; see brig-oci --help"),
        Some(Cmd::Spec { bundle, rootless }) => spec::write(&bundle, rootless).map(|()| 0),
        Some(Cmd::Features) => {
            println!("{}", serde_json::to_string_pretty(&spec::features())?);
            Ok(0)
        }
        Some(Cmd::Run { bundle, id }) => run_foreground(&bundle, &id),
    }
}

/// `run`: the container's process in a brig prison on the bundle's root, brig's supervisor
/// in the foreground; the exit status is the program's (125 when brig refused).
fn run_foreground(bundle: &std::path::Path, id: &str) -> anyhow::Result<i32> {
    anyhow::ensure!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "container id {id:?}: use letters, digits, '-', '_' and '.'"
    );
    let bundle = std::path::absolute(bundle)?;
    let spec = config::load(&bundle)?;
    let mut warnings = Vec::new();
    let plan = config::plan(&bundle, &spec, &mut warnings)?;
    for w in &warnings {
        eprintln!("brig-oci: warning: {w}");
    }
    let report = brig_jail::run(&plan);
    for w in &report.warnings {
        eprintln!("brig-oci: warning: {w}");
    }
    if !report.exit.message.is_empty() {
        eprintln!("{}", report.exit.message);
    }
    Ok(report.exit.status)
}
