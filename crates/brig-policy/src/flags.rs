//! Command-line flags, merged over an optional manifest, become the [`Plan`].

use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::manifest::{self, EnvValue, FsEntry, Manifest};
use crate::paths;
use crate::plan::{Grant, Limits, Plan, Rights, SyscallChanges};
use crate::units;

/// Which grant flag: the unveil rights it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantFlag {
    Ro,
    Rx,
    Rw,
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

/// The CLI's flags, as unparsed strings.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// (flag, "PATH[:DEST]")
    pub grants: Vec<(GrantFlag, String)>,
    pub tmpfs: Vec<String>,
    pub no_system: bool,
    pub chdir: Option<String>,
    /// "NAME" (pass through if set) or "NAME=VALUE"
    pub env: Vec<String>,
    pub net: Option<String>,
    pub wall: Option<String>,
    pub cpu: Option<String>,
    pub mem: Option<String>,
    pub procs: Option<String>,
    pub fsize: Option<String>,
    pub nofile: Option<String>,
    pub tmp_size: Option<String>,
    pub allow_syscalls: Vec<String>,
    pub deny_syscalls: Vec<String>,
    pub best_effort: bool,
    pub command: Vec<String>,
}

/// The caller's context: working directory (absolute) and environment.
#[derive(Debug, Clone, Default)]
pub struct Host {
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Host {
    fn var(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Variables passed from the host by default, when set.
const DEFAULT_ENV: &[&str] = &["PATH", "HOME", "LANG", "TERM"];
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Builds the plan for `brig run`: the manifest (if any) is the base, flags extend it.
pub fn plan(
    flags: &Flags,
    manifest: Option<(&Path, &str)>,
    host: &Host,
) -> Result<Plan, PolicyError> {
    let mut p = base(manifest, host)?;
    if !flags.command.is_empty() {
        p.command = flags.command.clone();
    }
    if p.command.is_empty() {
        return Err(PolicyError::Plan(
            "no command: give one after `--` or set [program] path in the manifest".into(),
        ));
    }
    apply_flags(&mut p, flags, host)?;
    Ok(p)
}

/// Builds the plan of a manifest for `brig check` (a missing [program] is allowed).
pub fn plan_for_check(manifest: Option<(&Path, &str)>, host: &Host) -> Result<Plan, PolicyError> {
    base(manifest, host)
}

fn base(manifest: Option<(&Path, &str)>, host: &Host) -> Result<Plan, PolicyError> {
    let mut p = Plan {
        command: vec![],
        grants: vec![],
        system: true,
        tmpfs: vec![],
        chdir: None,
        env: vec![],
        limits: Limits::default(),
        syscalls: SyscallChanges::default(),
        best_effort: false,
    };
    for name in DEFAULT_ENV {
        match host.var(name) {
            Some(v) => set_env(&mut p.env, name, v),
            None if *name == "PATH" => set_env(&mut p.env, name, DEFAULT_PATH),
            None => {}
        }
    }
    if let Some((file, text)) = manifest {
        let m = manifest::parse(file, text)?;
        apply_manifest(&mut p, &m, file, text, host)?;
    }
    Ok(p)
}

fn set_env(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    env.retain(|(n, _)| n != k);
    env.push((k.to_string(), v.to_string()));
}

fn apply_manifest(
    p: &mut Plan,
    m: &Manifest,
    file: &Path,
    text: &str,
    host: &Host,
) -> Result<(), PolicyError> {
    let dir = paths::absolute(&host.cwd, file.parent().unwrap_or(Path::new(".")));
    let name = file.display();
    if let Some(prog) = &m.program {
        p.command = std::iter::once(prog.path.clone()).chain(prog.args.iter().cloned()).collect();
        p.chdir = prog.chdir.as_ref().map(|c| c.0.clone());
    }
    for (dest, entry) in &m.fs {
        let line = manifest::line_of(text, entry.span());
        match entry.get_ref() {
            FsEntry::Tmpfs => p.tmpfs.push(dest.0.clone()),
            FsEntry::Grant { from, rights } => {
                let source = match from {
                    Some(f) => paths::absolute(&dir, Path::new(f)),
                    None => dest.0.clone(),
                };
                add_grant(
                    p,
                    Grant {
                        source,
                        dest: dest.0.clone(),
                        rights: *rights,
                        origin: format!("{name}:{line}"),
                    },
                )?;
            }
        }
    }
    for (k, v) in &m.env {
        match v {
            EnvValue::Set(s) => set_env(&mut p.env, &k.0, s),
            EnvValue::PassThrough => {
                if let Some(s) = host.var(&k.0) {
                    set_env(&mut p.env, &k.0, s);
                }
            }
        }
    }
    let l = &m.limits;
    p.limits.wall = l.wall.as_ref().map(|d| d.0).or(p.limits.wall);
    p.limits.cpu = l.cpu.as_ref().map(|d| d.0).or(p.limits.cpu);
    p.limits.mem = l.memory.as_ref().map(|s| s.0).or(p.limits.mem);
    p.limits.fsize = l.fsize.as_ref().map(|s| s.0).or(p.limits.fsize);
    if let Some(c) = &l.processes {
        p.limits.procs = c.0;
    }
    if let Some(c) = &l.nofile {
        p.limits.nofile = c.0;
    }
    if let Some(s) = &l.tmp {
        p.limits.tmp_size = s.0;
    }
    p.system = m.sandbox.system;
    p.best_effort = m.sandbox.best_effort;
    p.syscalls.allow.extend(m.sandbox.allow_syscalls.iter().cloned());
    p.syscalls.deny.extend(m.sandbox.deny_syscalls.iter().cloned());
    Ok(())
}

fn add_grant(p: &mut Plan, g: Grant) -> Result<(), PolicyError> {
    if let Some(other) = p.grants.iter().find(|o| o.dest == g.dest) {
        return Err(PolicyError::Plan(format!(
            "{} is granted twice inside the prison ({} and {}); keep one",
            g.dest.display(),
            other.origin,
            g.origin
        )));
    }
    if p.tmpfs.contains(&g.dest) {
        return Err(PolicyError::Plan(format!(
            "{} is both a tmpfs and a grant ({}); keep one",
            g.dest.display(),
            g.origin
        )));
    }
    p.grants.push(g);
    Ok(())
}

/// Splits "PATH[:DEST]" at the last ':' that is followed by '/'.
fn split_grant(spec: &str) -> (&str, Option<&str>) {
    match spec.rfind(":/") {
        Some(i) if i > 0 => (&spec[..i], Some(&spec[i + 1..])),
        _ => (spec, None),
    }
}

fn apply_flags(p: &mut Plan, f: &Flags, host: &Host) -> Result<(), PolicyError> {
    for (flag, spec) in &f.grants {
        let (src, dest) = split_grant(spec);
        if src.is_empty() || spec.contains('\0') {
            return Err(PolicyError::flag(
                flag.name(),
                spec,
                "give a path, optionally followed by :DEST",
            ));
        }
        let source = paths::absolute(&host.cwd, Path::new(src));
        let dest = match dest {
            Some(d) => paths::inside(d).map_err(|m| PolicyError::flag(flag.name(), spec, m))?,
            None => source.clone(),
        };
        let origin = format!("{} {spec}", flag.name());
        add_grant(p, Grant { source, dest, rights: flag.rights(), origin })?;
    }
    for t in &f.tmpfs {
        let d = paths::inside(t).map_err(|m| PolicyError::flag("--tmpfs", t, m))?;
        if p.grants.iter().any(|g| g.dest == d) {
            return Err(PolicyError::flag("--tmpfs", t, "that path is also granted; keep one"));
        }
        p.tmpfs.push(d);
    }
    p.system &= !f.no_system;
    p.best_effort |= f.best_effort;
    if let Some(c) = &f.chdir {
        p.chdir = Some(paths::inside(c).map_err(|m| PolicyError::flag("--chdir", c, m))?);
    }
    for e in &f.env {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (e.as_str(), None),
        };
        manifest::env_name(k).map_err(|m| PolicyError::flag("--env", e, m))?;
        if v.is_some_and(|v| v.contains('\0')) {
            return Err(PolicyError::flag("--env", e, "values cannot contain NUL"));
        }
        match v.or_else(|| host.var(k)) {
            Some(v) => set_env(&mut p.env, k, v),
            None => p.env.retain(|(n, _)| n != k),
        }
    }
    if let Some(n) = &f.net {
        manifest::net_mode(n).map_err(|m| PolicyError::flag("--net", n, m))?;
    }
    let dur = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| units::duration(s).map_err(|m| PolicyError::flag(flag, s, m)))
            .transpose()
    };
    let size = |flag: &str, v: &Option<String>| {
        v.as_deref().map(|s| units::size(s).map_err(|m| PolicyError::flag(flag, s, m))).transpose()
    };
    let count = |flag: &str, v: &Option<String>| {
        v.as_deref().map(|s| units::count(s).map_err(|m| PolicyError::flag(flag, s, m))).transpose()
    };
    let l = &mut p.limits;
    l.wall = dur("--wall", &f.wall)?.or(l.wall);
    l.cpu = dur("--cpu", &f.cpu)?.or(l.cpu);
    l.mem = size("--mem", &f.mem)?.or(l.mem);
    l.fsize = size("--fsize", &f.fsize)?.or(l.fsize);
    l.tmp_size = size("--tmp-size", &f.tmp_size)?.unwrap_or(l.tmp_size);
    l.procs = count("--procs", &f.procs)?.unwrap_or(l.procs);
    l.nofile = count("--nofile", &f.nofile)?.unwrap_or(l.nofile);
    let names = |v: &Vec<String>| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    p.syscalls.allow.extend(names(&f.allow_syscalls));
    p.syscalls.deny.extend(names(&f.deny_syscalls));
    Ok(())
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

    fn flags(cmd: &[&str]) -> Flags {
        Flags { command: cmd.iter().map(|s| s.to_string()).collect(), ..Flags::default() }
    }

    #[test]
    fn flags_make_a_plan() {
        let mut f = flags(&["make"]);
        f.grants.push((GrantFlag::Rw, "./build".into()));
        f.grants.push((GrantFlag::Ro, "/etc/x:/cfg".into()));
        f.wall = Some("2s".into());
        f.env.push("SECRET".into());
        f.env.push("A=b=c".into());
        let p = plan(&f, None, &host()).expect("plan");
        assert_eq!(p.grants[0].source, PathBuf::from("/home/u/proj/build"));
        assert_eq!(p.grants[0].dest, PathBuf::from("/home/u/proj/build"));
        assert_eq!(p.grants[0].rights, Rights::RWC);
        assert_eq!(p.grants[1].dest, PathBuf::from("/cfg"));
        assert_eq!(p.limits.wall, Some(std::time::Duration::from_secs(2)));
        assert!(p.env.contains(&("SECRET".into(), "x".into())));
        assert!(p.env.contains(&("A".into(), "b=c".into())));
        assert_eq!(p.env.iter().filter(|(k, _)| k == "PATH").count(), 1);
    }

    #[test]
    fn manifest_and_flags_give_the_same_plan() {
        let m = "[program]\npath = \"make\"\n[fs]\n\"/a\" = { from = \"/a\", rights = \"rwc\" }\n[limits]\nmemory = \"64MiB\"\n";
        let from_manifest =
            plan(&Flags::default(), Some((Path::new("m.toml"), m)), &host()).expect("m");
        let mut f = flags(&["make"]);
        f.grants.push((GrantFlag::Rw, "/a".into()));
        f.mem = Some("64MiB".into());
        let from_flags = plan(&f, None, &host()).expect("f");
        let strip = |mut p: Plan| {
            p.grants.iter_mut().for_each(|g| g.origin.clear());
            p
        };
        assert_eq!(strip(from_manifest), strip(from_flags));
    }

    #[test]
    fn flag_errors_name_the_flag_and_fix() {
        let mut f = flags(&["x"]);
        f.mem = Some("12XB".into());
        let e = plan(&f, None, &host()).expect_err("bad").to_string();
        assert!(e.starts_with("--mem \"12XB\": unknown size unit"), "{e}");
        let mut f = flags(&["x"]);
        f.grants.push((GrantFlag::Ro, "/a".into()));
        f.grants.push((GrantFlag::Rw, "/b:/a".into()));
        assert!(plan(&f, None, &host()).expect_err("dup").to_string().contains("granted twice"));
        assert!(plan(&Flags::default(), None, &host())
            .expect_err("no cmd")
            .to_string()
            .contains("no command"));
        let mut f = flags(&["x"]);
        f.net = Some("host".into());
        assert!(plan(&f, None, &host()).is_err());
    }

    #[test]
    fn relative_from_is_relative_to_the_manifest() {
        let m = "[program]\npath = \"/bin/true\"\n[fs]\n\"/site\" = { from = \"./site\", rights = \"r\" }\n";
        let p =
            plan(&Flags::default(), Some((Path::new("conf/app.toml"), m)), &host()).expect("plan");
        assert_eq!(p.grants[0].source, PathBuf::from("/home/u/proj/conf/site"));
        assert_eq!(p.grants[0].origin, "conf/app.toml:4");
    }

    #[test]
    fn cli_command_replaces_program() {
        let m = "[program]\npath = \"/bin/true\"\nargs = [\"x\"]\n";
        let p = plan(&flags(&["ls", "-l"]), Some((Path::new("m.toml"), m)), &host()).expect("plan");
        assert_eq!(p.command, vec!["ls", "-l"]);
    }
}
