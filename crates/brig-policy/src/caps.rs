//! Named capabilities: resources the runner opens and hands to the program as file descriptors
//! (the `cloudabi-run` model), and the `[app]` configuration rewritten to their fd numbers.
//!
//! Fd numbers are fixed here, before anything is opened, so that they are part of the plan:
//! capabilities named `stdin`, `stdout`, `stderr` replace fds 0, 1, 2; listeners come next from
//! fd 3 (systemd's `SD_LISTEN_FDS_START`, so `LISTEN_FDS` counts them); every other capability
//! follows in the order given (manifest first, then flags); the description comes last.

use std::path::{Path, PathBuf};

use crate::error::Problem;
use crate::paths;
use crate::plan::Rights;

/// One named capability of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    /// `[A-Za-z0-9_-]`, 1 to 64 characters; unique in the plan.
    pub name: String,
    pub kind: CapKind,
    /// The number the program finds it at.
    pub fd: i32,
    /// Where it came from, for messages: `--dir site=./site` or `site.toml:12`.
    pub origin: String,
}

/// What a capability is, with everything the runner needs to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapKind {
    /// A directory fd; Landlock gives `rights` beneath it. With `mount`, it is also visible at
    /// that path inside (a grant with the same rights).
    Dir { path: PathBuf, rights: Rights, mount: Option<PathBuf> },
    /// A file opened according to `mode`.
    File { path: PathBuf, mode: FileMode },
    /// A socket bound and listening in the runner.
    Listen(Endpoint),
    /// A socket connected by the runner (names resolved outside the prison).
    Connect(Endpoint),
    /// A file's bytes in a sealed, read-only memfd.
    Data { path: PathBuf },
    /// One end of a channel (a unix `SOCK_SEQPACKET` socket) that brig's caller made and passed
    /// to brig at fd `fd`: a component's link to the program or group that started it.
    Channel { fd: i32 },
}

impl CapKind {
    /// The kind's name as written in manifests and the description.
    pub fn name(&self) -> &'static str {
        match self {
            CapKind::Dir { .. } => "dir",
            CapKind::File { .. } => "file",
            CapKind::Listen(_) => "listen",
            CapKind::Connect(_) => "connect",
            CapKind::Data { .. } => "data",
            CapKind::Channel { .. } => "channel",
        }
    }
}

/// How a `file` capability is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// An existing file, read-only.
    Read,
    /// An existing file, write-only, from its start, not truncated.
    Write,
    /// Write-only, appending; created (0644) if missing, like `>>`.
    Append,
    /// Write-only; created (0644) if missing, truncated if not, like `>`.
    Create,
}

impl FileMode {
    pub const ALL: [(&'static str, FileMode); 4] = [
        ("read", FileMode::Read),
        ("write", FileMode::Write),
        ("append", FileMode::Append),
        ("create", FileMode::Create),
    ];

    pub fn parse(s: &str) -> Result<FileMode, Problem> {
        FileMode::ALL.iter().find(|(n, _)| *n == s).map(|(_, m)| *m).ok_or_else(|| {
            Problem::new(
                format!("file mode {s:?} does not exist"),
                "use \"read\", \"write\", \"append\" or \"create\"",
            )
        })
    }

    pub fn name(self) -> &'static str {
        FileMode::ALL.iter().find(|(_, m)| *m == self).map_or("read", |(n, _)| n)
    }
}

/// A socket address as written: `tcp://HOST:PORT` or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// HOST is a name or an IP literal (IPv6 in brackets); resolved by the runner.
    Tcp { host: String, port: u16 },
    /// An absolute host path.
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

const ENDPOINT_HINT: &str = "write tcp://HOST:PORT (e.g. tcp://127.0.0.1:8080) or unix:PATH";

impl Endpoint {
    /// Parses an endpoint; a relative unix path is taken relative to `base`, or kept relative
    /// without one.
    pub fn parse(s: &str, base: Option<&Path>) -> Result<Endpoint, Problem> {
        if let Some(rest) = s.strip_prefix("tcp://") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
                Problem::new(format!("{s:?} has no port"), "add :PORT (e.g. tcp://127.0.0.1:8080)")
            })?;
            let port: u16 = port.parse().map_err(|_| {
                Problem::new(format!("{port:?} in {s:?} is not a port"), "use 0 to 65535")
            })?;
            let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            let ok = !bare.is_empty()
                && bare.chars().all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c))
                && (bare.len() == host.len()) != bare.contains(':');
            if !ok {
                return Err(Problem::new(
                    format!("{host:?} in {s:?} is not a host name or IP address"),
                    "write a name or an IP address; IPv6 in brackets (tcp://[::1]:80)",
                ));
            }
            return Ok(Endpoint::Tcp { host: host.to_string(), port });
        }
        if let Some(p) = s.strip_prefix("unix:") {
            let p = paths::host(p)?;
            return Ok(Endpoint::Unix(base.map_or(p.to_path_buf(), |b| paths::absolute(b, p))));
        }
        Err(Problem::new(format!("{s:?} is not a socket address"), ENDPOINT_HINT))
    }
}

/// The fd numbers stdio capabilities take.
pub const STDIO: [(&str, i32); 3] = [("stdin", 0), ("stdout", 1), ("stderr", 2)];

/// Checks a capability name.
pub fn name(s: &str) -> Result<String, Problem> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        return Ok(s.to_string());
    }
    Err(Problem::new(
        format!("{s:?} is not a capability name"),
        "use 1 to 64 letters, digits, _ and - (e.g. \"site\")",
    ))
}

/// Refuses kinds that cannot stand in for a standard stream.
pub fn check_stdio(name: &str, kind: &CapKind) -> Result<(), Problem> {
    let fits = match (name, kind) {
        ("stdin", CapKind::File { mode, .. }) => *mode == FileMode::Read,
        ("stdin", CapKind::Data { .. } | CapKind::Connect(_)) => true,
        ("stdout" | "stderr", CapKind::File { mode, .. }) => *mode != FileMode::Read,
        ("stdout" | "stderr", CapKind::Connect(_)) => true,
        (n, _) if STDIO.iter().all(|(s, _)| *s != n) => true,
        _ => false,
    };
    if fits {
        return Ok(());
    }
    Err(Problem::new(
        format!("a {} capability cannot be {name}", kind.name()),
        "stdin takes a file (mode read), data or connect capability; stdout and stderr a file \
         (write, append or create) or connect capability",
    ))
}

/// Gives every capability its fd number (see the module comment). Returns the description's.
pub fn assign_fds(caps: &mut [Cap]) -> i32 {
    let mut next = 3;
    for listeners in [true, false] {
        for c in caps.iter_mut() {
            if let Some((_, n)) = STDIO.iter().find(|(s, _)| *s == c.name) {
                c.fd = *n;
            } else if matches!(c.kind, CapKind::Listen(_)) == listeners {
                c.fd = next;
                next += 1;
            }
        }
    }
    next
}

/// Replaces every `{ cap = "NAME" }` in `v` with NAME's fd number. `at` is the key path so far,
/// for messages.
pub fn rewrite(v: &mut toml::Value, caps: &[Cap], at: &str) -> Result<(), Problem> {
    match v {
        toml::Value::Table(t) => {
            if let (1, Some(r)) = (t.len(), t.get("cap")) {
                let Some(wanted) = r.as_str() else {
                    return Err(Problem::new(
                        format!("{at}: cap = must name a capability"),
                        "write { cap = \"NAME\" } with a name from [caps]",
                    ));
                };
                let c = caps.iter().find(|c| c.name == wanted).ok_or_else(|| {
                    let names: Vec<&str> = caps.iter().map(|c| c.name.as_str()).collect();
                    Problem::new(
                        format!("{at} refers to capability {wanted:?}, which is not declared"),
                        format!(
                            "declare [caps.{wanted}] or use one of: {}",
                            if names.is_empty() { "(none)".into() } else { names.join(", ") }
                        ),
                    )
                })?;
                *v = toml::Value::Integer(c.fd.into());
                return Ok(());
            }
            for (k, x) in t.iter_mut() {
                rewrite(x, caps, &format!("{at}.{k}"))?;
            }
        }
        toml::Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                rewrite(x, caps, &format!("{at}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Parses a flag's `NAME=SPEC` for `kind`: `dir` takes `PATH[:RIGHTS]`, `file` takes
/// `PATH[:MODE]`, `listen`/`connect` an endpoint, `data` a PATH, `channel` the number of an fd
/// brig inherited. Relative paths are relative to `cwd`.
pub fn from_flag(kind: &str, spec: &str, cwd: &Path) -> Result<(String, CapKind), Problem> {
    let (n, rest) = spec.split_once('=').ok_or_else(|| {
        Problem::new("no NAME= before the value", format!("write NAME=VALUE (e.g. --{kind} x=…)"))
    })?;
    let n = name(n)?;
    let path = |p: &str| paths::host(p).map(|p| paths::absolute(cwd, p));
    let kind = match kind {
        "dir" => match rest.rsplit_once(':').map(|(p, r)| (p, Rights::parse(r))) {
            Some((p, Ok(rights))) => CapKind::Dir { path: path(p)?, rights, mount: None },
            _ => CapKind::Dir { path: path(rest)?, rights: Rights::R, mount: None },
        },
        "file" => match rest.rsplit_once(':').map(|(p, m)| (p, FileMode::parse(m))) {
            Some((p, Ok(mode))) => CapKind::File { path: path(p)?, mode },
            _ => CapKind::File { path: path(rest)?, mode: FileMode::Read },
        },
        "listen" => CapKind::Listen(endpoint(rest, Some(cwd), true)?),
        "connect" => CapKind::Connect(endpoint(rest, Some(cwd), false)?),
        "channel" => CapKind::Channel { fd: inherited_fd(rest)? },
        _ => CapKind::Data { path: path(rest)? },
    };
    check_stdio(&n, &kind)?;
    Ok((n, kind))
}

/// The number of an fd brig inherits for a `channel` capability: 3 or more (0-2 are brig's own
/// standard streams).
fn inherited_fd(s: &str) -> Result<i32, Problem> {
    match s.parse::<i32>() {
        Ok(n) if n >= 3 => Ok(n),
        _ => Err(Problem::new(
            format!("{s:?} is not an fd number of 3 or more"),
            "pass the channel's socket to brig at fd 3 or above and give that number (--channel c=3)",
        )),
    }
}

/// An endpoint for `listen` (port 0 allowed: the kernel picks one) or `connect`.
pub fn endpoint(s: &str, base: Option<&Path>, listen: bool) -> Result<Endpoint, Problem> {
    let e = Endpoint::parse(s, base)?;
    if let (false, Endpoint::Tcp { port: 0, .. }) = (listen, &e) {
        return Err(Problem::new(format!("{s:?} connects to port 0"), "give the server's port"));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(name: &str, kind: CapKind) -> Cap {
        Cap { name: name.into(), kind, fd: -1, origin: String::new() }
    }

    #[test]
    fn fds_put_stdio_and_listeners_first() {
        let d = CapKind::Data { path: "/d".into() };
        let l = CapKind::Listen(Endpoint::Tcp { host: "127.0.0.1".into(), port: 80 });
        let mut caps =
            vec![cap("a", d.clone()), cap("stdin", d.clone()), cap("l", l.clone()), cap("b", d)];
        caps.push(cap("l2", l));
        let desc = assign_fds(&mut caps);
        let fds: Vec<i32> = caps.iter().map(|c| c.fd).collect();
        assert_eq!(fds, [5, 0, 3, 6, 4]);
        assert_eq!(desc, 7);
    }

    #[test]
    fn endpoints() {
        let b = Some(Path::new("/base"));
        assert_eq!(
            Endpoint::parse("tcp://[::1]:80", b),
            Ok(Endpoint::Tcp { host: "[::1]".into(), port: 80 })
        );
        assert_eq!(Endpoint::parse("unix:s.sock", b), Ok(Endpoint::Unix("/base/s.sock".into())));
        for bad in ["tcp://x", "tcp://:80", "tcp://a b:1", "tcp://::1:80", "tcp://x:99999", "x"] {
            assert!(Endpoint::parse(bad, b).is_err(), "{bad}");
        }
        assert!(endpoint("tcp://a:0", b, false).is_err());
        assert!(endpoint("tcp://a:0", b, true).is_ok());
    }

    #[test]
    fn flag_specs() {
        let cwd = Path::new("/w");
        let (n, k) = from_flag("dir", "site=./s:rw", cwd).expect("dir");
        assert_eq!(n, "site");
        assert_eq!(
            k,
            CapKind::Dir {
                path: "/w/s".into(),
                rights: Rights::parse("rw").expect("rw"),
                mount: None
            }
        );
        let (_, k) = from_flag("dir", "a=/x:y", cwd).expect("dir");
        assert_eq!(k, CapKind::Dir { path: "/x:y".into(), rights: Rights::R, mount: None });
        let (_, k) = from_flag("file", "log=/l:append", cwd).expect("file");
        assert_eq!(k, CapKind::File { path: "/l".into(), mode: FileMode::Append });
        assert!(from_flag("dir", "/x", cwd).is_err());
        assert!(from_flag("dir", "a:b=/x", cwd).is_err());
        assert!(from_flag("listen", "stdin=tcp://a:1", cwd).is_err());
        assert!(from_flag("file", "stdout=/x", cwd).is_err());
        assert!(from_flag("file", "stdout=/x:create", cwd).is_ok());
    }

    #[test]
    fn app_rewriting() {
        let caps = vec![Cap { fd: 4, ..cap("db", CapKind::Data { path: "/d".into() }) }];
        let mut v: toml::Value =
            toml::from_str("x = 1\n[db]\nfd = { cap = \"db\" }\nlist = [{ cap = \"db\" }]\n")
                .expect("toml");
        rewrite(&mut v, &caps, "app").expect("rewrite");
        assert_eq!(v["db"]["fd"].as_integer(), Some(4));
        assert_eq!(v["db"]["list"][0].as_integer(), Some(4));
        let mut v: toml::Value = toml::from_str("a = { cap = \"nope\" }").expect("toml");
        let e = rewrite(&mut v, &caps, "app").expect_err("unknown");
        assert!(e.message.contains("app.a refers to capability \"nope\""), "{e}");
        assert!(e.hint.contains("db"), "{e}");
    }
}
