//! `brig check`: the authority a plan grants, in plain words, with warnings for every loosening
//! and from the risk check ([`risks`]: risky host paths and endpoints, grants and capabilities
//! alike), which `brig run` also prints before the run.
//!
//! The checks are lexical: a grant's source is compared as written (made absolute), before the
//! runner resolves symlinks. A symlink that points at `~/.ssh` is therefore not recognised here;
//! the runner refuses symlink games when it opens grants, but `check` is advice, not enforcement.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::caps::{CapKind, Endpoint, FileMode};
use crate::plan::{Grant, Plan, Rights};
use crate::units::show_size as size;

/// What `brig check` prints: one statement per line, then warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Describes `plan`. `home` is the caller's home directory, to recognise grants of it and of the
/// credentials in it; without it, `/root` and `/home/*` are taken as home directories.
pub fn describe(plan: &Plan, home: Option<&Path>) -> Summary {
    let mut s = Summary::default();
    let l = &plan.limits;
    s.lines.push(match plan.command.is_empty() {
        true => "Program: none set (brig run needs a command after `--`)".into(),
        false => format!("Program: {}", plan.command.join(" ")),
    });
    let dir = plan.chdir.as_deref().or(plan.start_dir.as_deref()).unwrap_or(Path::new("/"));
    s.lines.push(format!("Working directory inside: {}", dir.display()));
    let runtime = "the OS runtime (/usr, /lib*, /bin, /sbin) and some of /etc (below)";
    let sys = |what: &str| if plan.system { Some(what.to_string()) } else { None };
    s.lines.push(format!("It can read: {}", list(plan, sys(runtime), |g| g.rights.read)));
    s.lines.push(format!("It can write files in: {}", list(plan, None, |g| g.rights.write)));
    s.lines.push(format!(
        "It can create, rename and delete entries in: {}",
        list(plan, None, |g| g.rights.create)
    ));
    let exec = sys("programs of the OS runtime");
    s.lines.push(format!("It can execute: {}", list(plan, exec, |g| g.rights.exec)));
    if plan.system {
        use crate::system::{ETC, ETC_OWN};
        let short = |p: &'static str| p.strip_prefix("/etc/").unwrap_or(p);
        let host: Vec<&str> = ETC.iter().map(|(p, _)| short(p)).collect();
        let own: Vec<&str> = ETC_OWN.iter().map(|p| short(p)).collect();
        s.lines.push(format!(
            "From the host's /etc, read only, where present (brig check --verbose gives the \
             reasons): {}; brig's own {}",
            host.join(", "),
            own.join(", ")
        ));
    }
    let mut scratch = format!("its own empty /tmp (up to {})", size(l.tmp_size));
    for t in plan.tmpfs.iter().filter(|t| t.as_path() != Path::new("/tmp")) {
        scratch.push_str(&format!(", {}", t.display()));
    }
    for t in &plan.tmpfs_exec {
        scratch.push_str(&format!(" (programs may run from {})", t.display()));
    }
    s.lines.push(format!("Private scratch space, gone at exit: {scratch}"));
    s.lines.push(
        "Network: loopback only, in a private network namespace (no host network, no host \
         abstract sockets)"
            .into(),
    );
    for e in &plan.egress {
        let how = match e.is_pattern() {
            true => "any name under it, never a local or private address",
            false => "that name only, wherever it resolves",
        };
        s.lines.push(format!(
            "Egress: TCP to {}:{} ({how}), connected by brig from the host's network after \
             checking the name the prison looked up",
            e.host, e.port
        ));
    }
    for c in &plan.caps {
        s.lines.push(format!("Capability {} (fd {}): {}", c.name, c.fd, cap_words(&c.kind)));
    }
    if let Some(fd) = plan.description_fd {
        s.lines.push(format!(
            "The description of its capabilities{} is at fd {fd} (BRIG_CAPS_FD)",
            if plan.app.is_some() { " and its [app] configuration" } else { "" }
        ));
    }
    if plan.capability_mode {
        s.lines.push(
            "Capability mode: from exec on it acts only through the fds it holds (no paths from \
             / or the working directory, no new sockets but socketpairs, no bind or connect, no \
             signals to other processes)"
                .into(),
        );
    }
    let mut lim = vec![];
    if let Some(w) = l.wall {
        lim.push(format!("wall time {w:?}"));
    }
    if let Some(c) = l.cpu {
        lim.push(format!("CPU time {c:?} per process"));
    }
    if let Some(m) = l.mem {
        lim.push(format!("memory {}", size(m)));
    }
    lim.push(format!("{} processes and threads", l.procs));
    lim.push(format!("{} open files per process", l.nofile));
    if let Some(f) = l.fsize {
        lim.push(format!("files up to {}", size(f)));
    }
    s.lines.push(format!("Limits: {}", lim.join(", ")));
    let names: Vec<&str> = plan.env.iter().map(|(k, _)| k.as_str()).collect();
    s.lines.push(match names.is_empty() {
        true => "Environment: empty".into(),
        false => format!("Environment (names only): {}", names.join(", ")),
    });
    let mut sc = "brig's default deny-list".to_string();
    if !plan.syscalls.deny.is_empty() {
        sc.push_str(&format!(", also denying {}", plan.syscalls.deny.join(", ")));
    }
    if !plan.syscalls.allow.is_empty() {
        sc.push_str(&format!(", but allowing {}", plan.syscalls.allow.join(", ")));
    }
    if !plan.syscalls.only.is_empty() {
        sc = format!(
            "only these {} (an allow-list; every other one is refused), and the exec that starts \
             it: {}; within them {sc}",
            plan.syscalls.only.len(),
            plan.syscalls.only.join(", ")
        );
    }
    s.lines.push(format!("System calls: {sc}"));
    s.lines.push(
        match plan.pty {
            crate::Pty::Auto => "Terminal: a pseudo-terminal of the prison's own when stdio is one",
            crate::Pty::Always => "Terminal: always a pseudo-terminal of the prison's own",
            crate::Pty::Never => "Terminal: your own, handed to the program as it is",
        }
        .into(),
    );
    if plan.pty == crate::Pty::Never {
        s.warnings.push(
            "pty = \"never\": run from a terminal, the program holds it and can change its \
             settings and line discipline, which outlive the prison"
                .into(),
        );
    }
    s.lines.push(match plan.best_effort {
        true => "Protection layers: best effort (runs even if one is unavailable)".into(),
        false => {
            "Protection layers: all required (brig refuses to run if one is unavailable)".into()
        }
    });

    if plan.best_effort {
        s.warnings.push(
            "best_effort is on: the program runs even when a protection layer (Landlock, seccomp, \
             a namespace) is unavailable; the launch report says which"
                .into(),
        );
    }
    for a in &plan.syscalls.allow {
        s.warnings.push(format!(
            "seccomp loosened: {a} is taken off the deny-list (kernel attack surface brig refuses \
             by default)"
        ));
    }
    s.warnings.extend(risks(plan, home));
    s
}

/// One capability in plain words.
fn cap_words(k: &CapKind) -> String {
    match k {
        CapKind::Dir { path, rights, mount } => {
            let mut r = vec![];
            if rights.read {
                r.push("list and read files");
            }
            if rights.write {
                r.push("write existing files");
            }
            if rights.create {
                r.push("create, rename and delete entries");
            }
            if rights.exec {
                r.push("execute files");
            }
            let seen = match mount {
                Some(m) => format!("through the fd and at {}", m.display()),
                None => "only through the fd (not in its filesystem view)".into(),
            };
            let rights = if *rights == Rights::default() { "nothing".into() } else { r.join(", ") };
            format!("the directory {}: {rights} beneath it, {seen}", path.display())
        }
        CapKind::File { path, mode } => {
            let how = match mode {
                FileMode::Read => "read",
                FileMode::Write => "write (from the start, not truncated)",
                FileMode::Append => "append to (created if missing)",
                FileMode::Create => "write (created if missing, truncated)",
            };
            format!("the file {}, to {how}", path.display())
        }
        CapKind::Listen(e) => format!(
            "a socket listening on {} in the host's network: it can accept connections there",
            endpoint_words(e)
        ),
        CapKind::Connect(e) => format!(
            "a socket connected to {}: it can talk to that endpoint only",
            endpoint_words(e)
        ),
        CapKind::Data { path } => {
            format!(
                "the bytes of {} as read when it starts (a sealed, read-only copy)",
                path.display()
            )
        }
        CapKind::Channel { fd } => format!(
            "one end of a channel brig's caller made (fd {fd}): it can exchange messages and fds \
             with whoever holds the other end"
        ),
    }
}

fn endpoint_words(e: &Endpoint) -> String {
    match e {
        Endpoint::Tcp { .. } => format!("TCP {}", e.to_string().trim_start_matches("tcp://")),
        Endpoint::Unix(p) => format!("the unix socket {}", p.display()),
    }
}

/// "/a, /b (host /c)" for the grants matching `pred`, after `first`; "nothing" if none.
fn list(plan: &Plan, first: Option<String>, pred: impl Fn(&Grant) -> bool) -> String {
    let grants = plan.grants.iter().filter(|g| pred(g)).map(|g| match g.source == g.dest {
        true => g.dest.display().to_string(),
        false => format!("{} (host {})", g.dest.display(), g.source.display()),
    });
    let v: Vec<String> = first.into_iter().chain(grants).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// Files a shell runs at start.
const SHELL_RC: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
];

/// Credentials and tokens that live in a home directory.
const SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".config",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".password-store",
    ".local/share/keyrings",
];

/// Host sockets (or their directories) that hand out authority, and what they are. `/run/user/*`
/// entries are matched with any uid.
const SOCKETS: &[(&str, &str)] = &[
    ("/run/docker.sock", "the Docker socket (root on the host)"),
    ("/run/containerd", "containerd's sockets (root on the host)"),
    ("/run/podman", "Podman's socket"),
    ("/run/dbus", "the D-Bus system bus"),
    ("/run/user/*/bus", "the D-Bus session bus"),
    ("/run/user/*/docker.sock", "a rootless Docker socket"),
    ("/run/user/*/podman", "a rootless Podman socket"),
];

const SYSTEM: &[&str] = &["/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot"];
const KERNEL: &[&str] = &["/proc", "/sys", "/dev"];

/// The risk check: every host path and endpoint the plan hands over, grants and capabilities
/// alike, that gives away more than it seems to (credentials, a home directory, a socket that is
/// root on the host, system files, the host's kernel interfaces, a file emptied at start, a port
/// open to other machines). `brig check` lists these among its warnings; `brig run` prints them
/// before the run, which they do not stop. `home` is as for [`describe`].
pub fn risks(plan: &Plan, home: Option<&Path>) -> Vec<String> {
    let mut out = vec![];
    for g in &plan.grants {
        let r = path_risks(&g.source, g.rights.write || g.rights.create, home);
        if !r.is_empty() {
            let (src, origin, rights) = (g.source.display(), &g.origin, g.rights);
            out.push(format!("{src} ({origin}, rights {rights}): {}", r.join("; ")));
        }
    }
    for c in &plan.caps {
        let r = cap_risks(&c.kind, home);
        // A mounted directory capability is also a grant of the same path, warned about above.
        let granted = matches!(&c.kind, CapKind::Dir { path, .. }
            if plan.grants.iter().any(|g| g.source == *path));
        if !r.is_empty() && !granted {
            out.push(format!("capability {} ({}): {}", c.name, c.origin, r.join("; ")));
        }
    }
    out
}

/// Why one capability is risky; empty if it is not.
fn cap_risks(kind: &CapKind, home: Option<&Path>) -> Vec<String> {
    match kind {
        CapKind::Dir { path, rights, .. } => path_risks(path, rights.write || rights.create, home),
        CapKind::File { path, mode } => {
            let mut r = path_risks(path, *mode != FileMode::Read, home);
            if *mode == FileMode::Create {
                r.push(format!(
                    "mode create empties {} at every start if it exists (append keeps it)",
                    path.display()
                ));
            }
            r
        }
        CapKind::Data { path } => path_risks(path, false, home),
        CapKind::Channel { .. } => Vec::new(),
        // The socket file is created in the host's filesystem.
        CapKind::Listen(Endpoint::Unix(path)) => path_risks(path, true, home),
        CapKind::Connect(Endpoint::Unix(path)) => path_risks(path, false, home),
        CapKind::Listen(Endpoint::Tcp { host, .. }) => {
            let any = ["0.0.0.0", "[::]"].contains(&host.as_str());
            let words = "it listens on every address of the host: other machines can connect \
                         (listen on 127.0.0.1 or [::1] to stay local)";
            any.then(|| words.to_string()).into_iter().collect()
        }
        CapKind::Connect(Endpoint::Tcp { host, port }) => {
            let mut r = vec![];
            if METADATA.contains(&host.as_str()) {
                r.push(
                    "it reaches the cloud's instance metadata service (the host's cloud \
                        credentials)"
                        .to_string(),
                );
            }
            if [2375, 2376].contains(port) {
                r.push(format!("port {port} is the Docker API's (root on the host)"));
            }
            r
        }
    }
}

/// Cloud instance metadata services, which hand out the host's credentials.
const METADATA: &[&str] = &["169.254.169.254", "[fd00:ec2::254]", "metadata.google.internal"];

/// Why handing over the host path `src` (`writable`: to change it) is risky; empty if it is not.
pub fn path_risks(src: &Path, writable: bool, home: Option<&Path>) -> Vec<String> {
    if src == Path::new("/") {
        let mut w = "the whole host filesystem: home directories, credentials, host sockets, \
                     /proc and /sys"
            .to_string();
        if writable {
            w.push_str(", and it can change system files");
        }
        return vec![w];
    }
    let mut out = vec![];
    let homes: Vec<PathBuf> = match home {
        Some(h) => vec![h.to_path_buf()],
        None => guessed_home(src).into_iter().collect(),
    };
    for h in &homes {
        if h.starts_with(src) {
            out.push(match h.as_path() == src {
                true => "your home directory: every file in it, keys and tokens included".into(),
                false => format!(
                    "a parent of the home directory {}: keys and tokens included",
                    h.display()
                ),
            });
        }
        for secret in SECRETS {
            let p = h.join(secret);
            if src.starts_with(&p) {
                out.push(format!("{} holds credentials", p.display()));
            }
        }
    }
    if home.is_none() && src == Path::new("/home") {
        out.push("every user's home directory: keys and tokens included".into());
    }
    let reached: Vec<&str> =
        SOCKETS.iter().filter(|(p, _)| reaches(src, p)).map(|(_, what)| *what).collect();
    if !reached.is_empty() {
        out.push(format!("it reaches {}", reached.join(", ")));
    }
    if writable && SYSTEM.iter().any(|p| src.starts_with(p)) {
        out.push("it can change host system files".into());
    }
    let name = src.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if writable && (src.ends_with(".git") || src.ends_with(".git/hooks")) {
        out.push("git runs the hooks in .git/hooks outside the prison".into());
    }
    if writable && SHELL_RC.contains(&name) {
        out.push("your shell runs this file outside the prison".into());
    }
    if name.ends_with(".pem") || name.ends_with(".key") || name.starts_with("id_") {
        out.push("it looks like a private key".into());
    }
    if let Some(k) = KERNEL.iter().find(|p| src.starts_with(p)) {
        out.push(format!(
            "the host's {k}: kernel interfaces and other processes (the prison has its own /proc \
             and a minimal /dev already)"
        ));
    }
    out
}

/// `/root` or `/home/NAME` if `src` is in (or is) one.
fn guessed_home(src: &Path) -> Option<PathBuf> {
    let c: Vec<Component> = src.components().take(3).collect();
    match c.as_slice() {
        [Component::RootDir, Component::Normal(r), ..] if *r == "root" => Some("/root".into()),
        [Component::RootDir, Component::Normal(h), Component::Normal(n)] if *h == "home" => {
            Some(Path::new("/home").join(n))
        }
        _ => None,
    }
}

/// True if granting `src` reaches `pattern` (`*` matches one component): `src` is it, is in it,
/// or is a directory above it. `/var/run` is taken as `/run`.
fn reaches(src: &Path, pattern: &str) -> bool {
    let src = match src.strip_prefix("/var/run") {
        Ok(rest) => Path::new("/run").join(rest),
        Err(_) if src == Path::new("/var") => PathBuf::from("/"),
        Err(_) => src.to_path_buf(),
    };
    let want: Vec<Component> = Path::new(pattern).components().collect();
    let have: Vec<Component> = src.components().collect();
    have.iter().zip(&want).all(|(h, w)| w.as_os_str() == "*" || h == w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{plan, Flags, GrantFlag, Host};

    fn plan_with(grants: &[(GrantFlag, &str)]) -> Plan {
        let f = Flags {
            grants: grants.iter().map(|(g, s)| (*g, s.to_string())).collect(),
            command: vec!["x".into()],
            ..Flags::default()
        };
        plan(&f, None, &Host { cwd: "/".into(), env: vec![] }).expect("plan")
    }

    #[test]
    fn plain_words() {
        let mut p = plan_with(&[(GrantFlag::Rw, "/srv/data"), (GrantFlag::Ro, "/srv/site:/site")]);
        p.limits.mem = Some(256 << 20);
        p.limits.wall = Some(std::time::Duration::from_millis(1500));
        let s = describe(&p, None).to_string();
        for want in [
            "Program: x\n",
            "It can read: the OS runtime (/usr, /lib*, /bin, /sbin) and some of /etc (below), /srv/data, /site (host /srv/site)\n",
            "From the host's /etc, read only, where present (brig check --verbose gives the reasons): alternatives, ld.so.cache,",
            "java-17-openjdk, ",
            "It can write files in: /srv/data\n",
            "It can create, rename and delete entries in: /srv/data\n",
            "It can execute: programs of the OS runtime\n",
            "its own empty /tmp (up to 256 MiB)",
            "Network: loopback only, in a private network namespace",
            "Limits: wall time 1.5s, memory 256 MiB, 4096 processes and threads, 1024 open files per process\n",
            "Environment (names only): PATH, HOME\n",
            "System calls: brig's default deny-list\n",
            "all required",
        ] {
            assert!(s.contains(want), "{want:?} not in\n{s}");
        }
        assert!(!s.contains("warning"), "{s}");
        p.system = false;
        assert!(describe(&p, None).to_string().contains("It can execute: nothing\n"));
    }

    #[test]
    fn risky_grants_warn() {
        let home = Some(Path::new("/home/ann"));
        for (g, p, home, want) in [
            (GrantFlag::Ro, "/home", home, "a parent of the home directory /home/ann"),
            (GrantFlag::Ro, "/home/ann", home, "your home directory"),
            (GrantFlag::Ro, "/home", None, "every user's home directory"),
            (GrantFlag::Ro, "/home/bob", None, "your home directory"),
            (GrantFlag::Ro, "/home/ann/.ssh/id_ed25519", home, "/home/ann/.ssh holds credentials"),
            (GrantFlag::Ro, "/home/ann/.gnupg", home, ".gnupg holds credentials"),
            (GrantFlag::Ro, "/home/ann/.aws", home, ".aws holds credentials"),
            (GrantFlag::Rw, "/home/ann/.config/gh", home, ".config holds credentials"),
            (GrantFlag::Ro, "/root/.ssh", None, "/root/.ssh holds credentials"),
            (GrantFlag::Rw, "/var/run/docker.sock", home, "the Docker socket"),
            (GrantFlag::Rw, "/run/docker.sock", home, "the Docker socket"),
            (GrantFlag::Ro, "/run/containerd/containerd.sock", home, "containerd"),
            (GrantFlag::Ro, "/run/dbus", home, "the D-Bus system bus"),
            (GrantFlag::Ro, "/run/user/1000/bus", home, "the D-Bus session bus"),
            (GrantFlag::Ro, "/run/user/1000", home, "the D-Bus session bus"),
            (GrantFlag::Ro, "/run", home, "the Docker socket (root on the host), containerd"),
            (GrantFlag::Ro, "/var", home, "the Docker socket"),
            (GrantFlag::Ro, "/:/host", home, "the whole host filesystem"),
            (GrantFlag::Rw, "/:/host", home, "it can change system files"),
            (GrantFlag::Rw, "/etc", home, "it can change host system files"),
            (GrantFlag::Rwx, "/usr/local/bin", home, "it can change host system files"),
            (GrantFlag::Ro, "/proc:/host/proc", home, "the host's /proc"),
            (GrantFlag::Ro, "/sys/fs/cgroup", home, "the host's /sys"),
            (GrantFlag::Ro, "/dev/kvm", home, "the host's /dev"),
        ] {
            let s = describe(&plan_with(&[(g, p)]), home);
            assert!(s.warnings.iter().any(|w| w.contains(want)), "{p}: {:?}", s.warnings);
        }
    }

    fn plan_with_caps(caps: &[(&'static str, &str)]) -> Plan {
        let f = Flags {
            caps: caps.iter().map(|(k, s)| (*k, s.to_string())).collect(),
            command: vec!["x".into()],
            ..Flags::default()
        };
        plan(&f, None, &Host { cwd: "/".into(), env: vec![] }).expect("plan")
    }

    #[test]
    fn risky_capabilities_warn() {
        let home = Some(Path::new("/home/ann"));
        for (kind, spec, want) in [
            ("data", "k=/home/ann/.ssh/id_rsa", "/home/ann/.ssh holds credentials"),
            ("file", "k=/home/ann/.aws/credentials", "/home/ann/.aws holds credentials"),
            ("file", "k=/etc/hosts:write", "it can change host system files"),
            ("file", "k=/srv/out.log:create", "mode create empties /srv/out.log at every start"),
            ("connect", "k=unix:/run/docker.sock", "it reaches the Docker socket"),
            ("connect", "k=unix:/var/run/docker.sock", "it reaches the Docker socket"),
            ("connect", "k=unix:/run/user/1000/bus", "the D-Bus session bus"),
            ("listen", "k=unix:/home/ann/.ssh/agent.sock", "/home/ann/.ssh holds credentials"),
            ("dir", "k=/", "the whole host filesystem"),
            ("dir", "k=/home/ann", "your home directory"),
            ("listen", "k=tcp://0.0.0.0:8080", "other machines can connect"),
            ("listen", "k=tcp://[::]:8080", "other machines can connect"),
            ("connect", "k=tcp://169.254.169.254:80", "instance metadata service"),
            ("connect", "k=tcp://127.0.0.1:2375", "the Docker API"),
        ] {
            let r = risks(&plan_with_caps(&[(kind, spec)]), home);
            let named = format!("capability k (--{kind} {spec}): ");
            assert!(r.iter().any(|w| w.starts_with(&named) && w.contains(want)), "{spec}: {r:?}");
            // brig check shows the same warnings.
            let s = describe(&plan_with_caps(&[(kind, spec)]), home);
            assert!(r.iter().all(|w| s.warnings.contains(w)), "{spec}: {s}");
        }
    }

    #[test]
    fn harmless_capabilities_do_not_warn() {
        let home = Some(Path::new("/home/ann"));
        for (kind, spec) in [
            ("data", "k=/srv/rules.txt"),
            ("file", "k=/srv/log:append"),
            ("file", "k=/etc/hosts"),
            ("dir", "k=/srv/site:rwc"),
            ("listen", "k=tcp://127.0.0.1:8080"),
            ("listen", "k=unix:/srv/app.sock"),
            ("connect", "k=unix:/srv/db.sock"),
            ("connect", "k=tcp://db.example:5432"),
        ] {
            let r = risks(&plan_with_caps(&[(kind, spec)]), home);
            assert!(r.is_empty(), "{spec}: {r:?}");
        }
    }

    #[test]
    fn harmless_grants_do_not_warn() {
        let home = Some(Path::new("/home/ann"));
        for p in [
            "/home/ann/src/proj",
            "/srv/www",
            "/etc/ssl/certs",
            "/usr/share/dict",
            "/run/x",
            "/tmp/job",
        ] {
            let s = describe(&plan_with(&[(GrantFlag::Ro, p)]), home);
            assert!(s.warnings.is_empty(), "{p}: {:?}", s.warnings);
        }
        let s = describe(&plan_with(&[(GrantFlag::Rw, "/home/ann/.configure")]), home);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn loosenings_warn() {
        let mut p = plan_with(&[]);
        p.syscalls.allow.push("@debug".into());
        p.best_effort = true;
        let s = describe(&p, None);
        assert!(s.warnings.iter().any(|w| w.contains("seccomp loosened: @debug")), "{s}");
        assert!(s.warnings.iter().any(|w| w.contains("best_effort")), "{s}");
        assert!(s.to_string().contains("\nwarning: seccomp loosened"), "{s}");
    }
}
