//! `brig-oci`, the OCI runtime command line, on the host side of every container's boundary: it
//! reads a bundle's `config.json` (the engine's word, not the container's), turns it into a brig
//! Plan, and runs it through brig-jail's launch sequence. The command line is runc's, as
//! podman's conmon and containerd's runc shim call it (docs/oci.md).

mod caller;
mod config;
mod devices;
mod hooks;
mod lifecycle;
mod log;
mod spec;
mod state;
mod translate;

use std::path::PathBuf;

use anyhow::Context;
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
    /// Creates the container: its pid 1 set up in its namespaces, waiting for `start`.
    Create {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Where the container's pid 1 is written (decimal, no newline).
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        /// Where a terminal's master would be sent; only with `process.terminal`.
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        /// Accepted: brig always pivots onto the container's root.
        #[arg(long = "no-pivot")]
        no_pivot: bool,
        /// Accepted: brig always gives the container a new session keyring.
        #[arg(long = "no-new-keyring")]
        no_new_keyring: bool,
        /// Extra fds passed to the container: none are supported (0 only).
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        id: String,
    },
    /// Starts a created container's program.
    Start { id: String },
    /// The container's state, as JSON.
    State { id: String },
    /// Sends a signal (TERM by default) to the container.
    Kill {
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
        /// Accepted for runc compatibility: pid 1 forwards to the program, and SIGKILL ends the
        /// whole pid namespace.
        #[arg(short, long)]
        all: bool,
    },
    /// Freezes every process of the container (its freezer cgroup).
    Pause { id: String },
    /// Thaws a paused container.
    Resume { id: String },
    /// The container's processes (host pids).
    Ps {
        /// `table` or `json`.
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// ps(1) options, as runc takes them: not supported (only the pids are shown).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Removes a stopped (or created) container; `--force` kills a running one first.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Runs a new process in a running container, under the same layers (runc's exec).
    Exec {
        /// The process as a JSON file (the config's `process` object); else the container's
        /// own process with the arguments and options below.
        #[arg(short, long)]
        process: Option<PathBuf>,
        /// Returns once the process runs (it stays the caller's child).
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        /// A terminal for the process; its master goes to --console-socket.
        #[arg(short, long)]
        tty: bool,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// KEY=VALUE, added to the environment.
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// UID[:GID] inside the container.
        #[arg(short, long)]
        user: Option<String>,
        /// Extra fds passed to the process: none are supported (0 only).
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
        id: String,
        /// The command and its arguments (without --process).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Writes new resource limits into a running container's cgroups (runc's update).
    Update {
        /// `linux.resources` as a JSON file, or `-` for stdin.
        #[arg(short, long, default_value = "-")]
        resources: PathBuf,
        id: String,
    },
    /// Creates and starts the container in the foreground and exits with its status.
    Run {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// The container's id.
        id: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let create = matches!(cli.command, Some(Cmd::Create { .. }));
    let log = log::Log::new(cli.log.clone(), &cli.log_format, !create);
    let status = match run(cli, &log) {
        Ok(status) => status,
        Err(e) => {
            log.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(status);
}

fn run(cli: Cli, log: &log::Log) -> anyhow::Result<i32> {
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
        Some(Cmd::Exec {
            process,
            detach,
            pid_file,
            tty,
            console_socket,
            cwd,
            env,
            user,
            preserve_fds,
            id,
            args,
        }) => {
            anyhow::ensure!(
                preserve_fds == 0,
                "--preserve-fds {preserve_fds}: not supported by brig-oci"
            );
            let root = state::root_dir(cli.root.as_deref());
            let process = match process {
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .with_context(|| format!("read {}", p.display()))?;
                    serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                }
                None => lifecycle::process_with(&root, &id, args, tty, cwd, env, user.as_deref())?,
            };
            lifecycle::exec(
                &root,
                &id,
                process,
                detach,
                pid_file.as_deref(),
                console_socket.as_deref(),
            )
        }
        Some(cmd) => {
            let root = state::root_dir(cli.root.as_deref());
            lifecycle(cmd, &root, log).map(|()| 0)
        }
    }
}

/// The commands that keep state under `root`.
fn lifecycle(cmd: Cmd, root: &std::path::Path, log: &log::Log) -> anyhow::Result<()> {
    match cmd {
        Cmd::Create { bundle, pid_file, console_socket, preserve_fds, id, .. } => {
            anyhow::ensure!(
                preserve_fds == 0,
                "--preserve-fds {preserve_fds}: passing extra fds into a container is not \
                 supported by brig-oci"
            );
            lifecycle::create(
                root,
                &bundle,
                &id,
                pid_file.as_deref(),
                console_socket.as_deref(),
                log,
            )
        }
        Cmd::Start { id } => lifecycle::start(root, &id, log),
        Cmd::State { id } => lifecycle::show(root, &id),
        Cmd::Kill { id, signal, all: _ } => lifecycle::kill(root, &id, &signal),
        Cmd::Delete { force, id } => lifecycle::delete(root, &id, force, log),
        Cmd::Pause { id } => lifecycle::freeze(root, &id, true),
        Cmd::Resume { id } => lifecycle::freeze(root, &id, false),
        Cmd::Update { resources, id } => lifecycle::update(root, &id, &resources),
        Cmd::Ps { format, id, ps_args } => {
            anyhow::ensure!(
                ps_args.is_empty(),
                "ps: options for ps(1) are not supported; brig-oci lists the container's pids"
            );
            anyhow::ensure!(
                format == "json" || format == "table",
                "ps --format {format:?}: use table or json"
            );
            lifecycle::ps(root, &id, format == "json")
        }
        Cmd::Spec { .. } | Cmd::Features | Cmd::Run { .. } | Cmd::Exec { .. } => {
            anyhow::bail!("internal: {cmd:?} keeps no state")
        }
    }
}

/// `run`: the container's process in a brig prison on the bundle's root, brig's supervisor
/// in the foreground; the exit status is the program's (125 when brig refused).
fn run_foreground(bundle: &std::path::Path, id: &str) -> anyhow::Result<i32> {
    state::check_id(id)?;
    let bundle = std::path::absolute(bundle)?;
    let spec = config::load(&bundle)?;
    use hooks::When;
    let phases = [When::CreateRuntime, When::Prestart, When::Poststart, When::Poststop];
    let hooked = phases.into_iter().any(|w| !hooks::of(spec.hooks().as_ref(), w).is_empty());
    anyhow::ensure!(
        !hooked,
        "hooks: `run` does not run them (they need the container's state between the \
         lifecycle's steps); use create, start and delete"
    );
    let mut warnings = Vec::new();
    let mut plan = config::plan(&bundle, &spec, id, &mut warnings)?;
    let dev_dir = std::env::temp_dir().join(format!("brig-oci-dev-{}", std::process::id()));
    let made = devices::add(&mut plan, &spec, &dev_dir);
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&dev_dir);
    }
    made?;
    for w in &warnings {
        eprintln!("brig-oci: warning: {w}");
    }
    let report = brig_jail::run(&plan);
    let _ = std::fs::remove_dir_all(&dev_dir);
    for w in &report.warnings {
        eprintln!("brig-oci: warning: {w}");
    }
    if !report.exit.message.is_empty() {
        eprintln!("{}", report.exit.message);
    }
    Ok(report.exit.status)
}
