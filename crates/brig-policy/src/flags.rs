//! Command-line flags, merged over an optional manifest, become the [`Plan`].
//!
//! The manifest gives the base; flags extend it: grants and tmpfs mounts are appended, `--env`
//! comes after `[env]` (the later NAME wins), limits given as flags replace the manifest's,
//! syscall changes are appended, `--no-system` and `--best-effort` are OR'ed in, and a command
//! after `--` replaces `[program] path` and `args` (not `chdir`). Without a `chdir` anywhere, the
//! program starts in the caller's directory when a grant makes it visible, else in `/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::caps::{self, Cap, CapKind, Endpoint};
use crate::error::{PolicyError, Pos, Problem};
use crate::manifest::{EnvValue, FsEntry, Manifest};
use crate::plan::{Grant, Limits, Plan, Pty, Rights, SyscallChanges};
use crate::{manifest, paths, units};

/// A grant flag and the unveil rights it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantFlag {
    /// `--ro`: read.
    Ro,
    /// `--rx`: read, execute.
    Rx,
    /// `--rw`: read, write, create.
    Rw,
    /// `--rwx`: read, write, execute, create.
    Rwx,
}

impl GrantFlag {
    pub fn rights(self) -> Rights {
        match self {
            GrantFlag::Ro => Rights::R,
            GrantFlag::Rx => Rights::RX,
            GrantFlag::Rw => Rights::RWC,
            GrantFlag::Rwx => Rights::RWXC,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GrantFlag::Ro => "--ro",
            GrantFlag::Rx => "--rx",
            GrantFlag::Rw => "--rw",
            GrantFlag::Rwx => "--rwx",
        }
    }
}

/// The CLI's flags as the user typed them (clap fills it; nothing is parsed yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// (flag, "PATH[:DEST]"). PATH may be relative (to the caller's cwd); DEST, when given, is
    /// absolute. The spec is split at its last ':' only if what follows starts with '/': `a:b`
    /// is the path "a:b", `/x:/y` is PATH /x at DEST /y, and a PATH that itself contains ":/"
    /// needs an explicit DEST (`--ro /x:/y:/dest` grants host "/x:/y" at "/dest").
    pub grants: Vec<(GrantFlag, String)>,
    /// "DEST" or "DEST:x" (programs may be executed from it) of each private tmpfs.
    pub tmpfs: Vec<String>,
    /// `-w`: the current directory read-write-exec (and the start), an exec-capable /tmp.
    pub workspace: bool,
    pub no_system: bool,
    pub chdir: Option<String>,
    /// "NAME" (the host's value, if set there) or "NAME=VALUE".
    pub env: Vec<String>,
    /// Only "none".
    pub net: Option<String>,
    pub wall: Option<String>,
    pub cpu: Option<String>,
    pub mem: Option<String>,
    pub procs: Option<String>,
    pub fsize: Option<String>,
    pub nofile: Option<String>,
    pub tmp_size: Option<String>,
    /// Names or comma-separated lists; the seccomp module validates the names.
    pub allow_syscalls: Vec<String>,
    pub deny_syscalls: Vec<String>,
    /// `--only-syscalls`: an allow-list.
    pub only_syscalls: Vec<String>,
    pub best_effort: bool,
    /// `--explain`.
    pub explain: bool,
    /// `--egress HOST:PORT`, repeatable.
    pub egress: Vec<String>,
    /// `--ask`, and how long to wait for an answer (`--ask-timeout`).
    pub ask: bool,
    pub ask_timeout: Option<String>,
    /// (kind, "NAME=SPEC") for `--dir`, `--file`, `--listen`, `--connect`, `--data`,
    /// `--channel`.
    pub caps: Vec<(&'static str, String)>,
    pub capability_mode: bool,
    /// `auto`, `always` or `never`.
    pub pty: Option<String>,
    /// The program and its arguments (after `--`).
    pub command: Vec<String>,
    /// `--component NAME`: run this member of a group manifest (with its channel ends given
    /// as `--channel`).
    pub component: Option<String>,
}

/// The caller's context, passed in so that this crate reads nothing itself.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// The caller's working directory (absolute).
    pub cwd: PathBuf,
    /// The caller's environment.
    pub env: Vec<(String, String)>,
}

impl Host {
    fn var(&self, name: &str) -> Option<&str> {
        self.env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Variables copied from the host when set, before `[env]` and `--env`; except HOME, which is
/// [`PRISON_HOME`] unless a grant shows the caller's home (then its place inside).
pub const DEFAULT_ENV: &[&str] = &["PATH", "HOME", "LANG", "TERM"];
/// The home the prison's /etc/passwd names: its private, size-limited, writable /tmp.
pub const PRISON_HOME: &str = "/tmp";
/// PATH inside when the host has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Builds the plan for `brig run`. `manifest` is the manifest's file name as given (for
/// messages, and as the base of its relative `from` paths) and its text.
pub fn plan(
    flags: &Flags,
    manifest: Option<(&Path, &str)>,
    host: &Host,
) -> Result<Plan, PolicyError> {
    let mut b = Builder::new(host);
    if let Some((file, text)) = manifest {
        let m = Manifest::parse(file, text)?;
        b.manifest(member(&m, file, flags)?, file)?;
    } else if flags.component.is_some() {
        return Err(flag_problem("--component needs the group's manifest (-m FILE)"));
    }
    b.flags(flags)?;
    b.finish()?;
    if b.plan.command.is_empty() {
        let where_ =
            manifest.map_or("a manifest (-m FILE)".into(), |(f, _)| f.display().to_string());
        return Err(PolicyError::Plan {
            message: "no command".into(),
            hint: format!("give one after `--` or set [program] path in {where_}"),
        });
    }
    Ok(b.plan)
}

fn flag_problem(message: &str) -> PolicyError {
    PolicyError::Plan {
        message: message.into(),
        hint: "see docs/components.md: brig run -m GROUP.toml runs a whole group".into(),
    }
}

/// The manifest that applies: `m` itself, or the group member `--component` names, whose
/// channel ends must all be given as `--channel` (brig's group supervisor does).
fn member<'m>(m: &'m Manifest, file: &Path, flags: &Flags) -> Result<&'m Manifest, PolicyError> {
    let shown = file.display();
    let (group, name) = match (&m.group, &flags.component) {
        (None, None) => return Ok(m),
        (None, Some(_)) => {
            return Err(flag_problem(&format!("--component: {shown} is not a group of components")))
        }
        (Some(g), None) => {
            return Err(PolicyError::Plan {
                message: format!("{shown} is a group of components ({})", g.names()),
                hint: format!(
                    "run the whole group with `brig run -m {shown}` and no other flags, or one \
                     component with --component NAME"
                ),
            })
        }
        (Some(g), Some(n)) => (g, n),
    };
    let Some(member) = group.member(name) else {
        return Err(PolicyError::Plan {
            message: format!("{shown} has no component {name:?}"),
            hint: format!("use one of: {}", group.names()),
        });
    };
    for (cap, _, _) in group.ends_of(name) {
        let given = flags.caps.iter().any(|(k, spec)| {
            *k == "channel" && spec.split_once('=').is_some_and(|(n, _)| n == cap)
        });
        if !given {
            return Err(PolicyError::Plan {
                message: format!(
                    "component {name} holds the channel end {cap:?}, and none was given"
                ),
                hint: format!(
                    "run the whole group (brig run -m {shown}), or pass it: --channel {cap}=FD"
                ),
            });
        }
    }
    Ok(&member.manifest)
}

/// Builds the plan of a manifest alone, for `brig check` (a missing `[program]` is allowed).
pub fn plan_for_check(manifest: Option<(&Path, &str)>, host: &Host) -> Result<Plan, PolicyError> {
    let mut b = Builder::new(host);
    if let Some((file, text)) = manifest {
        let m = Manifest::parse(file, text)?;
        if let Some(g) = &m.group {
            return Err(PolicyError::Plan {
                message: format!("{} is a group of components ({})", file.display(), g.names()),
                hint: "describe each with brig_policy::group (brig check does)".into(),
            });
        }
        b.manifest(&m, file)?;
    }
    b.finish()?;
    Ok(b.plan)
}

/// The plan being built, and who claimed each mount point (for conflict messages).
struct Builder<'h> {
    plan: Plan,
    host: &'h Host,
    mounts: Vec<(PathBuf, String)>,
    /// `[app]` until every capability is known, with the manifest's name and position.
    app: Option<(toml::Value, PathBuf, Pos)>,
    /// Who set the open-file limit, to name it if the capabilities do not fit under it.
    nofile_from: NofileFrom,
    /// HOME was set by `[env]` or `--env`.
    home_given: bool,
}

/// Where a host directory is inside, if a grant makes it visible (the grant deepest on its path
/// wins): where the program starts (the caller's directory) and its HOME (the caller's home).
fn inside_path(grants: &[Grant], host: &Path) -> Option<PathBuf> {
    grants
        .iter()
        .filter_map(|g| Some((g, host.strip_prefix(&g.source).ok()?)))
        .max_by_key(|(g, _)| g.source.components().count())
        .map(
            |(g, rest)| {
                if rest.as_os_str().is_empty() {
                    g.dest.clone()
                } else {
                    g.dest.join(rest)
                }
            },
        )
}

/// Where the open-file limit came from.
enum NofileFrom {
    Default,
    Manifest(PathBuf, Pos),
    Flag(String),
}

impl<'h> Builder<'h> {
    fn new(host: &'h Host) -> Builder<'h> {
        let mut plan = Plan {
            command: vec![],
            grants: vec![],
            system: true,
            tmpfs: vec![],
            tmpfs_exec: vec![],
            chdir: None,
            env: vec![],
            limits: Limits::default(),
            syscalls: SyscallChanges::default(),
            best_effort: false,
            caps: vec![],
            description_fd: None,
            app: None,
            capability_mode: false,
            pty: Pty::Auto,
            start_dir: None,
            explain: false,
            learn: false,
            ready_fd: None,
            oci: Default::default(),
            no_new_privs: true,
            egress: vec![],
            ask: None,
        };
        for name in DEFAULT_ENV {
            match host.var(name) {
                _ if *name == "HOME" => set_env(&mut plan.env, name, PRISON_HOME),
                Some(v) if !v.contains('\0') => set_env(&mut plan.env, name, v),
                _ if *name == "PATH" => set_env(&mut plan.env, name, DEFAULT_PATH),
                _ => {}
            }
        }
        Builder {
            plan,
            host,
            mounts: vec![],
            app: None,
            nofile_from: NofileFrom::Default,
            home_given: false,
        }
    }

    /// `-w`: the everyday case. The current directory read, write, create and execute at its own
    /// path (the program starts there), and an exec-capable /tmp (the home is /tmp already).
    fn workspace(&mut self) -> Result<(), PolicyError> {
        let cwd = self.host.cwd.clone();
        let home = self.host.var("HOME").map(PathBuf::from);
        if cwd == Path::new("/") || home.as_deref() == Some(cwd.as_path()) {
            return Err(PolicyError::Plan {
                message: format!(
                    "-w grants the current directory, and that is {}",
                    if cwd == Path::new("/") { "the whole host (/)" } else { "your home" }
                ),
                hint: "run it from your project's directory, or grant what the program needs \
                       with --rw/--rwx"
                    .into(),
            });
        }
        let origin = format!("--workspace ({})", cwd.display());
        let shown = cwd.display().to_string();
        let err = |p: Problem| PolicyError::flag("--workspace", &shown, p);
        self.claim(&cwd, &origin).map_err(err)?;
        let rights = GrantFlag::Rwx.rights();
        self.plan.grants.push(Grant { source: cwd.clone(), dest: cwd, rights, origin });
        let tmp = PathBuf::from("/tmp");
        self.claim(&tmp, "--workspace (an exec-capable /tmp)").map_err(err)?;
        self.plan.tmpfs.push(tmp.clone());
        self.plan.tmpfs_exec.push(tmp);
        Ok(())
    }

    /// Claims `dest` for a mount from `origin`; the first claim wins, a second is an error.
    fn claim(&mut self, dest: &Path, origin: &str) -> Result<(), Problem> {
        if let Some((_, first)) = self.mounts.iter().find(|(d, _)| d == dest) {
            return Err(Problem::new(
                format!("{dest:?} is mounted twice: by {first} and by {origin}"),
                "keep one of the two",
            ));
        }
        self.mounts.push((dest.to_path_buf(), origin.to_string()));
        Ok(())
    }

    fn manifest(&mut self, m: &Manifest, file: &Path) -> Result<(), PolicyError> {
        // Relative `from` paths are relative to the manifest's own directory.
        let dir = paths::absolute(&self.host.cwd, file.parent().unwrap_or(Path::new("")));
        if let Some(path) = &m.program.path {
            self.plan.command =
                std::iter::once(path.clone()).chain(m.program.args.clone()).collect();
        }
        self.plan.chdir.clone_from(&m.program.chdir);
        for item in &m.fs {
            let origin = format!("{}:{}", file.display(), item.pos.line);
            self.claim(&item.dest, &origin).map_err(|p| PolicyError::at(file, item.pos, p))?;
            match &item.entry {
                FsEntry::Tmpfs { exec } => {
                    self.plan.tmpfs.push(item.dest.clone());
                    if *exec {
                        self.plan.tmpfs_exec.push(item.dest.clone());
                    }
                }
                FsEntry::Grant { from, rights } => {
                    let source = match from {
                        Some(f) => paths::absolute(&dir, Path::new(f)),
                        None => item.dest.clone(),
                    };
                    let dest = item.dest.clone();
                    self.plan.grants.push(Grant { source, dest, rights: *rights, origin });
                }
            }
        }
        for (name, value) in &m.env {
            self.home_given |= name == "HOME";
            match value {
                EnvValue::Set(v) => set_env(&mut self.plan.env, name, v),
                EnvValue::PassThrough => self.pass_env(name),
            }
        }
        let (l, ml) = (&mut self.plan.limits, &m.limits);
        l.wall = ml.wall.or(l.wall);
        l.cpu = ml.cpu.or(l.cpu);
        l.mem = ml.memory.or(l.mem);
        l.fsize = ml.fsize.or(l.fsize);
        l.procs = ml.processes.unwrap_or(l.procs);
        l.nofile = ml.nofile.unwrap_or(l.nofile);
        if let Some(at) = ml.nofile_at {
            self.nofile_from = NofileFrom::Manifest(file.to_path_buf(), at);
        }
        l.tmp_size = ml.tmp.unwrap_or(l.tmp_size);
        self.plan.system = m.system;
        self.plan.best_effort = m.best_effort;
        self.plan.explain = m.explain;
        self.plan.egress.extend(m.egress.iter().cloned());
        self.plan.syscalls.allow.extend(m.syscalls.allow.iter().cloned());
        self.plan.syscalls.deny.extend(m.syscalls.deny.iter().cloned());
        self.plan.syscalls.only.extend(m.syscalls.only.iter().cloned());
        self.plan.capability_mode = m.capability_mode;
        self.plan.pty = m.program.pty.unwrap_or(self.plan.pty);
        for c in &m.caps {
            let origin = format!("{}:{}", file.display(), c.pos.line);
            let kind = relative_to(&c.kind, &dir);
            self.cap(c.name.clone(), kind, origin).map_err(|p| PolicyError::at(file, c.pos, p))?;
        }
        self.app = m.app.clone().map(|(t, pos)| (toml::Value::Table(t), file.to_path_buf(), pos));
        Ok(())
    }

    /// Adds a capability; a `dir` with `mount` also claims its mount point and adds the grant.
    fn cap(&mut self, name: String, kind: CapKind, origin: String) -> Result<(), Problem> {
        if let Some(first) = self.plan.caps.iter().find(|c| c.name == name) {
            return Err(Problem::new(
                format!(
                    "capability {name:?} is declared twice: by {} and by {origin}",
                    first.origin
                ),
                "rename one of them",
            ));
        }
        if let CapKind::Dir { path, rights, mount: Some(dest) } = &kind {
            self.claim(dest, &origin)?;
            let g = Grant {
                source: path.clone(),
                dest: dest.clone(),
                rights: *rights,
                origin: origin.clone(),
            };
            self.plan.grants.push(g);
        }
        self.plan.caps.push(Cap { name, kind, fd: -1, origin });
        Ok(())
    }

    /// Numbers the capabilities and rewrites `[app]`.
    fn finish(&mut self) -> Result<(), PolicyError> {
        if self.plan.chdir.is_none() {
            self.plan.start_dir = inside_path(&self.plan.grants, &self.host.cwd);
        }
        let home = self.host.var("HOME").map(Path::new);
        if let Some(inside) = home.and_then(|h| inside_path(&self.plan.grants, h)) {
            if let Some((_, v)) = self.plan.env.iter_mut().find(|(k, _)| k == "HOME") {
                if !self.home_given {
                    *v = inside.display().to_string();
                }
            }
        }
        let desc = caps::assign_fds(&mut self.plan.caps);
        if self.plan.caps.is_empty() && self.app.is_none() {
            return Ok(());
        }
        self.plan.description_fd = Some(desc);
        self.fds_fit(desc)?;
        if let Some((mut v, file, pos)) = self.app.take() {
            caps::rewrite(&mut v, &self.plan.caps, "[app]")
                .map_err(|p| PolicyError::at(&file, pos, p))?;
            self.plan.app = Some(serde_json::to_string(&v).map_err(|e| {
                PolicyError::at(
                    &file,
                    pos,
                    Problem::new(
                        format!("[app] cannot be handed over: {e}"),
                        "use strings, numbers, booleans, arrays and tables",
                    ),
                )
            })?);
        }
        Ok(())
    }

    /// The program starts with fds 0 to `highest` open (its capabilities, their description
    /// last): the open-file limit must leave it one more, or it cannot open anything, and a
    /// dynamically linked program dies loading its libraries.
    fn fds_fit(&self, highest: i32) -> Result<(), PolicyError> {
        let needed = u64::try_from(highest).unwrap_or(0) + 2;
        if self.plan.limits.nofile >= needed {
            return Ok(());
        }
        let message = format!(
            "the capabilities and their description take fds up to {highest}, and the program \
             needs one more to open anything (its libraries first)"
        );
        Err(match &self.nofile_from {
            NofileFrom::Flag(v) => PolicyError::flag(
                "--nofile",
                v,
                Problem::new(message, format!("give --nofile {needed} or more")),
            ),
            NofileFrom::Manifest(file, at) => PolicyError::at(
                file,
                *at,
                Problem::new(message, format!("set nofile = {needed} or more")),
            ),
            NofileFrom::Default => PolicyError::Plan {
                message: format!("{message}, over the default open-file limit"),
                hint: format!("give --nofile {needed} or more"),
            },
        })
    }

    fn flags(&mut self, f: &Flags) -> Result<(), PolicyError> {
        if !f.command.is_empty() {
            if let Some(bad) = f.command.iter().find(|a| a.contains('\0')) {
                return Err(PolicyError::flag(
                    "--",
                    bad,
                    Problem::new("NUL byte in the command", "remove it"),
                ));
            }
            if f.command[0].is_empty() {
                return Err(PolicyError::flag(
                    "--",
                    "",
                    Problem::new("the command is empty", "give a program after `--`"),
                ));
            }
            self.plan.command = f.command.clone();
        }
        for (flag, spec) in &f.grants {
            let err = |p: Problem| PolicyError::flag(flag.name(), spec, p);
            let (src, dest) = split_grant(spec).map_err(err)?;
            let source = paths::absolute(&self.host.cwd, paths::host(src).map_err(err)?);
            let dest = match dest {
                Some(d) => paths::inside(d).map_err(err)?,
                None => source.clone(),
            };
            paths::mount_point(&dest).map_err(err)?;
            let origin = format!("{} {spec}", flag.name());
            self.claim(&dest, &origin).map_err(err)?;
            self.plan.grants.push(Grant { source, dest, rights: flag.rights(), origin });
        }
        if f.workspace {
            self.workspace()?;
        }
        for t in &f.tmpfs {
            let err = |p: Problem| PolicyError::flag("--tmpfs", t, p);
            let (spec, exec) = t.strip_suffix(":x").map_or((t.as_str(), false), |s| (s, true));
            let dest = paths::inside(spec).map_err(err)?;
            paths::mount_point(&dest).map_err(err)?;
            self.claim(&dest, &format!("--tmpfs {t}")).map_err(err)?;
            if exec {
                self.plan.tmpfs_exec.push(dest.clone());
            }
            self.plan.tmpfs.push(dest);
        }
        self.plan.system &= !f.no_system;
        self.plan.best_effort |= f.best_effort;
        self.plan.explain |= f.explain;
        if f.ask || f.ask_timeout.is_some() {
            let t = match &f.ask_timeout {
                Some(t) => {
                    units::duration(t).map_err(|p| PolicyError::flag("--ask-timeout", t, p))?
                }
                None => Duration::from_secs(30),
            };
            self.plan.ask = Some(t);
        }
        for e in &f.egress {
            let rule =
                crate::egress::Egress::parse(e).map_err(|p| PolicyError::flag("--egress", e, p))?;
            if !self.plan.egress.contains(&rule) {
                self.plan.egress.push(rule);
            }
        }
        if let Some(c) = &f.chdir {
            self.plan.chdir =
                Some(paths::inside(c).map_err(|p| PolicyError::flag("--chdir", c, p))?);
        }
        for e in &f.env {
            self.home_given |= e == "HOME" || e.starts_with("HOME=");
            let err = |p: Problem| PolicyError::flag("--env", e, p);
            match e.split_once('=') {
                Some((k, v)) => {
                    manifest::env_name(k).map_err(err)?;
                    manifest::text(v).map_err(err)?;
                    set_env(&mut self.plan.env, k, v);
                }
                None => {
                    manifest::env_name(e).map_err(err)?;
                    self.pass_env(e);
                }
            }
        }
        if let Some(n) = &f.net {
            manifest::net_mode(n).map_err(|p| PolicyError::flag("--net", n, p))?;
        }
        let l = &mut self.plan.limits;
        l.wall = parse("--wall", &f.wall, units::duration)?.or(l.wall);
        l.cpu = parse("--cpu", &f.cpu, units::duration)?.or(l.cpu);
        l.mem = parse("--mem", &f.mem, units::size)?.or(l.mem);
        l.fsize = parse("--fsize", &f.fsize, units::size)?.or(l.fsize);
        l.tmp_size = parse("--tmp-size", &f.tmp_size, units::size)?.unwrap_or(l.tmp_size);
        l.procs = parse("--procs", &f.procs, units::count)?.unwrap_or(l.procs);
        l.nofile = parse("--nofile", &f.nofile, units::count)?.unwrap_or(l.nofile);
        if let Some(v) = &f.nofile {
            self.nofile_from = NofileFrom::Flag(v.clone());
        }
        let s = &mut self.plan.syscalls;
        s.allow.extend(syscall_names("--allow-syscalls", &f.allow_syscalls)?);
        s.deny.extend(syscall_names("--deny-syscalls", &f.deny_syscalls)?);
        s.only.extend(syscall_names("--only-syscalls", &f.only_syscalls)?);
        for (kind, spec) in &f.caps {
            let flag = format!("--{kind}");
            let err = |p: Problem| PolicyError::flag(&flag, spec, p);
            let (name, k) = caps::from_flag(kind, spec, &self.host.cwd).map_err(err)?;
            self.cap(name, k, format!("{flag} {spec}")).map_err(err)?;
        }
        self.plan.capability_mode |= f.capability_mode;
        if let Some(t) = &f.pty {
            self.plan.pty = Pty::parse(t).map_err(|p| PolicyError::flag("--pty", t, p))?;
        }
        Ok(())
    }

    /// `NAME` passed through: the host's value if it has one. If it has none, an earlier value
    /// (from the defaults or `[env]`) stays.
    fn pass_env(&mut self, name: &str) {
        if let Some(v) = self.host.var(name).filter(|v| !v.contains('\0')) {
            set_env(&mut self.plan.env, name, v);
        }
    }
}

/// A manifest capability with its relative paths made absolute against `dir`.
fn relative_to(kind: &CapKind, dir: &Path) -> CapKind {
    let abs = |p: &PathBuf| paths::absolute(dir, p);
    match kind {
        CapKind::Dir { path, rights, mount } => {
            CapKind::Dir { path: abs(path), rights: *rights, mount: mount.clone() }
        }
        CapKind::File { path, mode } => CapKind::File { path: abs(path), mode: *mode },
        CapKind::Data { path } => CapKind::Data { path: abs(path) },
        CapKind::Listen(Endpoint::Unix(p)) => CapKind::Listen(Endpoint::Unix(abs(p))),
        CapKind::Connect(Endpoint::Unix(p)) => CapKind::Connect(Endpoint::Unix(abs(p))),
        other => other.clone(),
    }
}

fn parse<T>(
    flag: &str,
    v: &Option<String>,
    f: fn(&str) -> Result<T, Problem>,
) -> Result<Option<T>, PolicyError> {
    v.as_deref().map(|s| f(s).map_err(|p| PolicyError::flag(flag, s, p))).transpose()
}

fn syscall_names(flag: &str, values: &[String]) -> Result<Vec<String>, PolicyError> {
    let mut out = vec![];
    for v in values {
        for name in v.split(',').filter(|n| !n.trim().is_empty()) {
            out.push(manifest::syscall_name(name).map_err(|p| PolicyError::flag(flag, v, p))?);
        }
    }
    Ok(out)
}

/// Sets `k` to `v`, replacing an earlier value (order: first setting's place is dropped, the
/// variable moves to the end).
fn set_env(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    env.retain(|(n, _)| n != k);
    env.push((k.to_string(), v.to_string()));
}

/// Splits "PATH[:DEST]" at the last ':' if what follows it starts with '/'.
fn split_grant(spec: &str) -> Result<(&str, Option<&str>), Problem> {
    match spec.rfind(":/") {
        Some(0) => Err(Problem::new(
            "no PATH before :DEST",
            "write PATH:DEST (e.g. --ro ./site:/site), or just PATH",
        )),
        Some(i) => Ok((&spec[..i], Some(&spec[i + 1..]))),
        None => Ok((spec, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            cwd: "/home/u/proj".into(),
            env: vec![("PATH".into(), "/bin".into()), ("SECRET".into(), "x".into())],
        }
    }

    fn cmd(c: &[&str]) -> Flags {
        Flags { command: c.iter().map(|s| s.to_string()).collect(), ..Flags::default() }
    }

    fn err(f: &Flags) -> String {
        plan(f, None, &host()).expect_err("should be refused").to_string()
    }

    #[test]
    fn grant_specs() {
        assert_eq!(split_grant("a:b"), Ok(("a:b", None)));
        assert_eq!(split_grant("/x:/y"), Ok(("/x", Some("/y"))));
        assert_eq!(split_grant("/x:/y:/dest"), Ok(("/x:/y", Some("/dest"))));
        assert_eq!(split_grant("./b"), Ok(("./b", None)));
        assert!(split_grant(":/x").is_err());
    }

    #[test]
    fn flags_make_a_plan() {
        let mut f = cmd(&["make"]);
        f.grants.push((GrantFlag::Rw, "./build/../out/.".into()));
        f.grants.push((GrantFlag::Ro, "/etc/x:/cfg/".into()));
        f.grants.push((GrantFlag::Rx, "tools".into()));
        f.tmpfs.push("/scratch".into());
        f.wall = Some("2s".into());
        f.env.extend(["SECRET".into(), "A=b=c".into(), "UNSET".into()]);
        f.allow_syscalls.push("@debug, ptrace".into());
        let p = plan(&f, None, &host()).expect("plan");
        let g = &p.grants;
        assert_eq!(
            (g[0].source.to_str(), g[0].dest.to_str()),
            (Some("/home/u/proj/out"), Some("/home/u/proj/out"))
        );
        assert_eq!((g[0].rights, g[0].origin.as_str()), (Rights::RWC, "--rw ./build/../out/."));
        assert_eq!((g[1].source.to_str(), g[1].dest.to_str()), (Some("/etc/x"), Some("/cfg")));
        assert_eq!((g[2].rights, g[2].dest.to_str()), (Rights::RX, Some("/home/u/proj/tools")));
        assert_eq!(p.tmpfs, vec![PathBuf::from("/scratch")]);
        assert_eq!(p.limits.wall, Some(std::time::Duration::from_secs(2)));
        assert_eq!(p.limits.procs, crate::DEFAULT_PROCS);
        assert_eq!(p.syscalls.allow, vec!["@debug", "ptrace"]);
        let env: Vec<(&str, &str)> = p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env, vec![("PATH", "/bin"), ("HOME", "/tmp"), ("SECRET", "x"), ("A", "b=c")]);
    }

    #[test]
    fn default_env() {
        let p = plan(&cmd(&["x"]), None, &Host { cwd: "/".into(), env: vec![] }).expect("plan");
        let home = ("HOME".to_string(), PRISON_HOME.to_string());
        assert_eq!(p.env, vec![("PATH".to_string(), DEFAULT_PATH.to_string()), home.clone()]);
        let h = Host {
            cwd: "/".into(),
            env: ["TERM", "SHELL", "HOME", "LANG", "PATH"]
                .map(|k| (k.into(), k.to_lowercase()))
                .to_vec(),
        };
        let p = plan(&cmd(&["x"]), None, &h).expect("plan");
        let names: Vec<&str> = p.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "HOME", "LANG", "TERM"]);
        assert_eq!(p.env[1], home, "the caller's home is not in the view");
        // A grant that shows the caller's home: HOME is its place inside; --env HOME wins.
        let h = Host { cwd: "/".into(), env: vec![("HOME".into(), "/home/u".into())] };
        let mut f = cmd(&["x"]);
        f.grants.push((GrantFlag::Rw, "/home/u:/h".into()));
        let p = plan(&f, None, &h).expect("plan");
        assert_eq!(p.env[1], ("HOME".to_string(), "/h".to_string()));
        f.env.push("HOME=/elsewhere".into());
        let p = plan(&f, None, &h).expect("plan");
        assert!(p.env.contains(&("HOME".to_string(), "/elsewhere".to_string())), "{:?}", p.env);
    }

    #[test]
    fn flag_errors_name_the_flag_value_and_fix() {
        let mut f = cmd(&["x"]);
        f.mem = Some("12XB".into());
        assert_eq!(
            err(&f),
            "--mem \"12XB\": unknown size unit \"XB\"; use a number with K, M, G, KiB, MiB or GiB (e.g. 256MiB)"
        );
        type Case = (fn(&mut Flags), &'static str);
        let cases: [Case; 12] = [
            (|f| f.wall = Some("0s".into()), "--wall \"0s\": \"0s\" is zero"),
            (|f| f.cpu = Some("1w".into()), "--cpu \"1w\": unknown duration unit"),
            (|f| f.procs = Some("0".into()), "--procs \"0\": \"0\" is zero"),
            (
                |f| f.nofile = Some("many".into()),
                "--nofile \"many\": \"many\" is not a whole number",
            ),
            (|f| f.tmp_size = Some("-1".into()), "--tmp-size \"-1\""),
            (|f| f.fsize = Some("1.5".into()), "--fsize \"1.5\""),
            (|f| f.chdir = Some("rel".into()), "--chdir \"rel\": \"rel\" is not an absolute path"),
            (
                |f| f.tmpfs.push("/a/../b".into()),
                "--tmpfs \"/a/../b\": \"/a/../b\" contains \"..\"",
            ),
            (|f| f.env.push("1X=y".into()), "--env \"1X=y\": \"1X\" is not a valid environment"),
            (
                |f| f.net = Some("host".into()),
                "--net \"host\": network mode \"host\" does not exist",
            ),
            (|f| f.grants.push((GrantFlag::Ro, "/a:/b/../c".into())), "--ro \"/a:/b/../c\""),
            (|f| f.grants.push((GrantFlag::Rwx, String::new())), "--rwx \"\": the path is empty"),
        ];
        for (set, want) in cases {
            let mut f = cmd(&["x"]);
            set(&mut f);
            let e = err(&f);
            assert!(e.starts_with(want) && e.contains("; "), "{e}");
        }
        let mut f = cmd(&["x"]);
        f.net = Some("host".into());
        assert!(err(&f).contains("reach the outside with egress"));
    }

    #[test]
    fn same_dest_twice_names_both_origins() {
        let mut f = cmd(&["x"]);
        f.grants.push((GrantFlag::Ro, "/a".into()));
        f.grants.push((GrantFlag::Rw, "/b:/a/".into()));
        assert_eq!(
            err(&f),
            "--rw \"/b:/a/\": \"/a\" is mounted twice: by --ro /a and by --rw /b:/a/; keep one of the two"
        );
        let mut f = cmd(&["x"]);
        f.tmpfs = vec!["/t".into(), "/t".into()];
        assert!(err(&f).contains("by --tmpfs /t and by --tmpfs /t"));
        let m = "[fs]\n\"/data\" = \"r\"\n";
        let mut f = cmd(&["x"]);
        f.grants.push((GrantFlag::Rw, "/data".into()));
        let e = plan(&f, Some((Path::new("m.toml"), m)), &host()).expect_err("dup").to_string();
        assert!(e.contains("by m.toml:2 and by --rw /data"), "{e}");
    }

    #[test]
    fn reserved_mount_points_name_the_flag() {
        let mut f = cmd(&["x"]);
        f.tmpfs.push("/proc".into());
        assert_eq!(
            err(&f),
            "--tmpfs \"/proc\": /proc is the prison's own procfs, which brig mounts; choose a \
             destination outside /proc"
        );
        for (flag, spec, want) in [
            (GrantFlag::Rw, "/", "--rw \"/\": / is the prison's root"),
            (GrantFlag::Ro, "/srv:/", "--ro \"/srv:/\": / is the prison's root"),
            (GrantFlag::Ro, "/srv:/proc", "--ro \"/srv:/proc\": /proc is the prison's own"),
            (GrantFlag::Ro, "/proc", "--ro \"/proc\": /proc is the prison's own"),
            (GrantFlag::Rw, "/dev", "--rw \"/dev\": /dev is brig's minimal /dev"),
            (GrantFlag::Ro, "/x:/dev/fd/3", "--ro \"/x:/dev/fd/3\": /dev/fd/3 is inside /dev/fd"),
        ] {
            let mut f = cmd(&["x"]);
            f.grants.push((flag, spec.into()));
            let e = err(&f);
            assert!(e.starts_with(want), "{e}");
        }
        let mut f = cmd(&["x"]);
        f.grants.push((GrantFlag::Rw, "/srv:/tmp".into()));
        f.grants.push((GrantFlag::Rw, "/dev/kvm".into()));
        assert!(plan(&f, None, &host()).is_ok());
    }

    #[test]
    fn capabilities_fit_under_nofile() {
        let mut f = cmd(&["x"]);
        f.caps = vec![("data", "a=/a".into()), ("data", "b=/b".into()), ("data", "c=/c".into())];
        f.nofile = Some("7".into());
        assert_eq!(
            err(&f),
            "--nofile \"7\": the capabilities and their description take fds up to 6, and the \
             program needs one more to open anything (its libraries first); give --nofile 8 or \
             more"
        );
        f.nofile = Some("8".into());
        assert!(plan(&f, None, &host()).is_ok());
        // stdio capabilities take no fd above 2: the description is at 3.
        f.caps = vec![("data", "stdin=/a".into())];
        f.nofile = Some("4".into());
        assert!(err(&f).ends_with(
            "take fds up to 3, and the program needs one more to open \
             anything (its libraries first); give --nofile 5 or more"
        ));
        // Without capabilities brig hands over nothing, and --nofile is the user's to choose.
        let mut f = cmd(&["x"]);
        f.nofile = Some("3".into());
        assert!(plan(&f, None, &host()).is_ok());
        // The flag replaces the manifest's limit, and is what the message names.
        let m = "[caps.a]\nkind = \"data\"\npath = \"a\"\n[limits]\nnofile = 100\n";
        let mut f = cmd(&["x"]);
        f.nofile = Some("4".into());
        let e = plan(&f, Some((Path::new("m.toml"), m)), &host()).expect_err("nofile");
        assert!(e.to_string().starts_with("--nofile \"4\": "), "{e}");
    }

    #[test]
    fn no_command() {
        assert_eq!(
            err(&Flags::default()),
            "no command; give one after `--` or set [program] path in a manifest (-m FILE)"
        );
        let e =
            plan(&Flags::default(), Some((Path::new("s.toml"), "")), &host()).expect_err("none");
        assert_eq!(
            e.to_string(),
            "no command; give one after `--` or set [program] path in s.toml"
        );
        assert!(err(&cmd(&[""])).contains("the command is empty"));
        assert!(plan_for_check(Some((Path::new("s.toml"), "")), &host()).is_ok());
    }
}
