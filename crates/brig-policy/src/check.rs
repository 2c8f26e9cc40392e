//! `brig check`: the authority a plan grants, in plain words, with warnings for risky grants.

use std::fmt;
use std::path::Path;

use crate::plan::Plan;

/// What `brig check` prints.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        for w in &self.warnings {
            writeln!(f, "WARNING: {w}")?;
        }
        Ok(())
    }
}

fn mib(b: u64) -> String {
    if b % (1 << 20) == 0 {
        format!("{} MiB", b >> 20)
    } else {
        format!("{b} bytes")
    }
}

/// Describes `plan`; `home` is the caller's home directory (for warnings).
pub fn describe(plan: &Plan, home: Option<&Path>) -> Summary {
    let mut s = Summary::default();
    let cmd = if plan.command.is_empty() {
        "(no [program]; give a command on the command line)".into()
    } else {
        plan.command.join(" ")
    };
    s.lines.push(format!("Program: {cmd}"));
    let list = |pred: &dyn Fn(&crate::Grant) -> bool| -> String {
        let v: Vec<String> = plan
            .grants
            .iter()
            .filter(|g| pred(g))
            .map(|g| {
                if g.source == g.dest {
                    g.dest.display().to_string()
                } else {
                    format!("{} (host {})", g.dest.display(), g.source.display())
                }
            })
            .collect();
        if v.is_empty() {
            "nothing".into()
        } else {
            v.join(", ")
        }
    };
    let sys = if plan.system {
        "the OS runtime (/usr, /lib*, /bin, /sbin, a few /etc files), "
    } else {
        ""
    };
    s.lines.push(format!("It can read: {sys}{}", list(&|g| g.rights.read)));
    s.lines.push(format!("It can write: {}", list(&|g| g.rights.write)));
    s.lines.push(format!("It can create and delete in: {}", list(&|g| g.rights.create)));
    let sx = if plan.system { "programs of the OS runtime, " } else { "" };
    s.lines.push(format!("It can execute: {sx}{}", list(&|g| g.rights.exec)));
    let tmps: Vec<String> = plan.tmpfs.iter().map(|t| t.display().to_string()).collect();
    s.lines.push(format!(
        "Private scratch space: /tmp{} ({} each, gone at exit)",
        if tmps.is_empty() { String::new() } else { format!(", {}", tmps.join(", ")) },
        mib(plan.limits.tmp_size)
    ));
    s.lines.push("It can reach: only its own loopback, in a private network namespace (no host network, no host sockets)".into());
    let l = &plan.limits;
    let mut lim = vec![format!("{} processes", l.procs), format!("{} open files", l.nofile)];
    if let Some(w) = l.wall {
        lim.push(format!("wall time {}s", w.as_secs_f64()));
    }
    if let Some(c) = l.cpu {
        lim.push(format!("CPU time {}s", c.as_secs_f64()));
    }
    if let Some(m) = l.mem {
        lim.push(format!("memory {}", mib(m)));
    }
    if let Some(fs) = l.fsize {
        lim.push(format!("file size {}", mib(fs)));
    }
    s.lines.push(format!("Limits: {}", lim.join(", ")));
    let names: Vec<&str> = plan.env.iter().map(|(k, _)| k.as_str()).collect();
    s.lines.push(format!("Environment: {}", names.join(", ")));
    if plan.best_effort {
        s.warnings
            .push("best_effort: brig will run even if a protection layer is unavailable".into());
    }
    for a in &plan.syscalls.allow {
        s.warnings.push(format!("seccomp loosened: {a} is allowed"));
    }
    for g in &plan.grants {
        if let Some(w) = risk(g, home) {
            s.warnings.push(format!("{} ({}): {w}", g.source.display(), g.origin));
        }
    }
    s
}

/// Why a grant is risky, if it is.
fn risk(g: &crate::Grant, home: Option<&Path>) -> Option<String> {
    let src = g.source.as_path();
    let writable = g.rights.write || g.rights.create;
    if let Some(h) = home {
        if h.starts_with(src) {
            return Some("grants your home directory (or a parent of it): everything in it, keys and tokens included".into());
        }
        for secret in [".ssh", ".gnupg", ".aws", ".config", ".kube", ".docker", ".netrc"] {
            let p = h.join(secret);
            if src.starts_with(&p) {
                return Some(format!("grants {}: credentials live there", p.display()));
            }
        }
    }
    for sock in [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/containerd",
        "/var/run/docker",
        "/run/podman",
    ] {
        if Path::new(sock).starts_with(src) {
            return Some(format!(
                "gives access to {sock}: a container runtime socket is root on the host"
            ));
        }
    }
    if Path::new("/run/dbus").starts_with(src)
        || (src.starts_with("/run/user") && (src.ends_with("bus") || src == Path::new("/run/user")))
    {
        return Some(
            "gives access to a D-Bus socket: the program can talk to system or session services"
                .into(),
        );
    }
    if src.starts_with("/run") || src == Path::new("/var") {
        return Some(
            "contains unix sockets of host services: a granted directory grants the sockets in it"
                .into(),
        );
    }
    if writable
        && [
            Path::new("/"),
            Path::new("/etc"),
            Path::new("/usr"),
            Path::new("/bin"),
            Path::new("/lib"),
        ]
        .contains(&src)
    {
        return Some("makes a system directory writable".into());
    }
    if [Path::new("/proc"), Path::new("/sys"), Path::new("/dev")].iter().any(|p| src.starts_with(p))
    {
        return Some("exposes a kernel interface of the host".into());
    }
    if src == Path::new("/") {
        return Some("grants the whole host filesystem".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{flags, Flags, GrantFlag, Host};

    fn plan_with(grants: &[(GrantFlag, &str)]) -> Plan {
        let f = Flags {
            grants: grants.iter().map(|(g, s)| (*g, s.to_string())).collect(),
            command: vec!["x".into()],
            ..Flags::default()
        };
        flags::plan(&f, None, &Host { cwd: "/".into(), env: vec![] }).expect("plan")
    }

    #[test]
    fn plain_words() {
        let s = describe(&plan_with(&[(GrantFlag::Rw, "/srv/data")]), None).to_string();
        assert!(s.contains("It can write: /srv/data"), "{s}");
        assert!(s.contains("loopback"), "{s}");
        assert!(!s.contains("WARNING"), "{s}");
    }

    #[test]
    fn risky_grants_warn() {
        let home = Path::new("/home/ann");
        for (g, p, want) in [
            (GrantFlag::Ro, "/home", "home directory"),
            (GrantFlag::Ro, "/home/ann/.ssh", ".ssh"),
            (GrantFlag::Rw, "/var/run/docker.sock", "container runtime"),
            (GrantFlag::Ro, "/run/dbus", "D-Bus"),
            (GrantFlag::Rw, "/", "home directory"),
            (GrantFlag::Rw, "/etc", "system directory"),
            (GrantFlag::Ro, "/sys", "kernel interface"),
        ] {
            let s = describe(&plan_with(&[(g, p)]), Some(home));
            assert!(s.warnings.iter().any(|w| w.contains(want)), "{p}: {:?}", s.warnings);
        }
    }
}
