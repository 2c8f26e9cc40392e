//! The TOML manifest.
//!
//! ```toml
//! [program]                 # path is required unless a command is given on the command line
//! path = "/usr/bin/python3"
//! args = ["-m", "http.server"]
//! chdir = "/site"
//! pty = "auto"              # a private terminal when stdio is one; or "always", "never"
//! [fs]                      # keys: absolute paths inside the prison
//! "/site" = { from = "./site", rights = "r" }   # `from`: relative to the manifest's directory
//! "/data" = "rwc"           # host path = the key
//! "/scratch" = "tmpfs"      # a private tmpfs ("tmpfs:x": programs may run from it)
//! [env]
//! LANG = "C.UTF-8"          # set
//! TERM = true               # pass through from the host if set there
//! [limits]
//! wall = "30s"              # also cpu; durations: ms, s, m, h
//! memory = "256MiB"         # also fsize, tmp; sizes: K, M, G (binary units)
//! processes = 32            # also nofile
//! [sandbox]
//! system = true             # mount the OS runtime (default)
//! best_effort = false
//! explain = false           # say each refusal with the flag that grants it (also top level)
//! allow_syscalls = ["@debug"]
//! deny_syscalls = []
//! only_syscalls = []        # if not empty: an allow-list, every other syscall refused
//! mode = "default"          # or "capability": act only through held fds (docs/capabilities.md)
//! [net]
//! mode = "none"             # the only mode today
//! egress = ["api.example.org:443", "*.pypi.org:443"]   # host names the broker connects to
//! [caps.site]               # a capability, handed over as an fd (docs/capabilities.md)
//! kind = "dir"              # dir, file, listen, connect, data
//! path = "./site"           # dir, file, data; relative to the manifest's directory
//! rights = "r"              # dir: r, rw, rwc, rx
//! mount = "/site"           # dir: also visible at this path (optional)
//! [caps.http]
//! kind = "listen"
//! address = "tcp://127.0.0.1:8080"   # listen, connect: tcp://HOST:PORT or unix:PATH
//! [caps.log]
//! kind = "file"
//! path = "./log"
//! mode = "append"           # file: read, write, append, create
//! [app]                     # handed to the program; { cap = "NAME" } becomes the fd number
//! root = { cap = "site" }
//! ```
//!
//! Every value is validated *while* it is deserialized, so that toml attaches the span of the
//! offending value (or key) to the error; [`Manifest::parse`] turns that into
//! `FILE:LINE:COLUMN: problem; fix`. Unknown keys and tables are errors everywhere.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::caps::{self, CapKind, FileMode};
use crate::error::{PolicyError, Pos, Problem};
use crate::plan::{Pty, Rights, SyscallChanges};
use crate::{paths, units};

/// A parsed, validated manifest. Host paths are still as written; [`crate::plan`] makes them
/// absolute against the manifest's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub program: Program,
    /// `[fs]` entries in file order.
    pub fs: Vec<FsItem>,
    /// `[env]` entries in file order.
    pub env: Vec<(String, EnvValue)>,
    pub limits: ManifestLimits,
    /// `[sandbox] system`: mount the OS runtime (default true).
    pub system: bool,
    pub best_effort: bool,
    /// `explain = true` (top level or in [sandbox]).
    pub explain: bool,
    pub syscalls: SyscallChanges,
    pub net: Net,
    /// `[net] egress`.
    pub egress: Vec<crate::egress::Egress>,
    /// `[sandbox] mode = "capability"`.
    pub capability_mode: bool,
    /// `[caps.NAME]` in file order; host paths still as written (relative to the manifest).
    pub caps: Vec<ManifestCap>,
    /// `[app]`, not yet rewritten, and where it starts.
    pub app: Option<(toml::Table, Pos)>,
    /// A group manifest (`[component.NAME]` tables): every field above is then empty, each
    /// member has its own.
    pub group: Option<crate::group::Group>,
}

/// One `[caps.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestCap {
    pub name: String,
    /// Paths relative to the manifest's directory are made absolute by [`crate::plan`].
    pub kind: CapKind,
    pub pos: Pos,
}

/// `[net] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Net {
    /// A private network namespace with only loopback (the default and, today, the only mode).
    #[default]
    None,
}

/// `[program]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    pub path: Option<String>,
    pub args: Vec<String>,
    pub chdir: Option<PathBuf>,
    /// `pty = "auto" | "always" | "never"`.
    pub pty: Option<crate::plan::Pty>,
}

/// One `[fs]` entry: what appears at `dest` inside the prison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsItem {
    pub dest: PathBuf,
    pub entry: FsEntry,
    /// Where the key is, for messages and grant origins (`site.toml:7`).
    pub pos: Pos,
}

/// What an `[fs]` key maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEntry {
    /// `"/data" = "rwc"` (from = None: the host path is the key) or
    /// `"/site" = { from = "./site", rights = "r" }`.
    Grant { from: Option<String>, rights: Rights },
    /// `"/scratch" = "tmpfs"`; `"tmpfs:x"`: programs may be executed from it.
    Tmpfs { exec: bool },
}

/// An `[env]` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `NAME = "value"` (or a number).
    Set(String),
    /// `NAME = true`: the host's value, if it has one.
    PassThrough,
}

/// `[limits]`; `None` where the manifest does not set the limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestLimits {
    pub wall: Option<Duration>,
    pub cpu: Option<Duration>,
    pub memory: Option<u64>,
    pub processes: Option<u64>,
    pub fsize: Option<u64>,
    pub nofile: Option<u64>,
    /// Where `nofile` is, for the message when the capabilities do not fit under it.
    pub nofile_at: Option<Pos>,
    pub tmp: Option<u64>,
}

impl Manifest {
    /// Parses manifest `text`; `file` names it in messages. Never panics.
    pub fn parse(file: &Path, text: &str) -> Result<Manifest, PolicyError> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let pos = Pos::of(text, e.span().map_or(0, |s| s.start));
            PolicyError::at(file, pos, split_message(e.message()))
        })?;
        if raw.component.0.is_empty() {
            return raw.finish(file, text);
        }
        raw.finish_group(file, text)
    }
}

/// Marks our problems inside serde's one-string errors: `SEP message SEP hint`. serde's and
/// toml's own messages start with words, never with it; ours Debug-quote user text, which
/// escapes it.
const SEP: char = '\u{1f}';

fn problem<E: de::Error>(p: Problem) -> E {
    E::custom(format_args!("{SEP}{}{SEP}{}", p.message, p.hint))
}

/// A toml/serde message into a problem and a fix.
fn split_message(message: &str) -> Problem {
    if let Some((m, h)) = message.strip_prefix(SEP).and_then(|rest| rest.rsplit_once(SEP)) {
        return Problem::new(m, h);
    }
    // TOML's words for what serde calls sequences and maps.
    let mut m = message.trim().replace('\n', " ").replace(SEP, "\\u{1f}");
    for (serde, toml) in [
        ("type: sequence", "type: array"),
        ("type: map", "type: table"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        m = m.replace(serde, toml);
    }
    let hint = if m.starts_with("unknown field") {
        "remove it or fix the spelling"
    } else if m.starts_with("missing field") {
        "add it"
    } else if m.starts_with("invalid type") {
        "write the value as the type expected"
    } else if m.starts_with("duplicate key") {
        "keep only one of them"
    } else {
        "fix the TOML syntax here (strings in double quotes, tables as [name], one key = value per line)"
    };
    Problem::new(m, hint)
}

/// A newtype whose `Deserialize` checks a string with `$parse`. With `numbers: true`, TOML
/// integers and floats are accepted too, as their decimal text (`processes = 32`, `wall = 1.5`).
macro_rules! validated {
    ($name:ident($inner:ty), $expect:literal, numbers: $numbers:literal, $parse:expr) => {
        #[derive(Debug)]
        struct $name($inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        let parse: fn(&str) -> Result<$inner, Problem> = $parse;
                        parse(s).map($name).map_err(problem)
                    }
                    fn visit_i64<E: de::Error>(self, n: i64) -> Result<$name, E> {
                        if !$numbers {
                            return Err(E::invalid_type(de::Unexpected::Signed(n), &self));
                        }
                        self.visit_str(&n.to_string())
                    }
                    fn visit_f64<E: de::Error>(self, n: f64) -> Result<$name, E> {
                        if !$numbers {
                            return Err(E::invalid_type(de::Unexpected::Float(n), &self));
                        }
                        self.visit_str(&n.to_string())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

validated!(Dur(Duration), "a duration such as \"30s\"", numbers: true, units::duration);
validated!(Size(u64), "a size such as \"256MiB\"", numbers: true, units::size);
validated!(Count(u64), "a whole number such as 64", numbers: true, units::count);
validated!(InsidePath(PathBuf), "an absolute path inside the prison", numbers: false, paths::inside);
validated!(MountPoint(PathBuf), "a place to mount inside the prison", numbers: false, mount_point);
validated!(EnvName(String), "an environment variable name", numbers: false, env_name);
validated!(NetMode(Net), "\"none\"", numbers: false, net_mode);
validated!(RightsValue(Rights), "rights such as \"r\" or \"rwc\"", numbers: false, Rights::parse);
validated!(HostPath(String), "a host path such as \"./site\"", numbers: false, host_path);
validated!(Text(String), "a string", numbers: false, text);
validated!(CommandPath(String), "the program's path", numbers: false, command_path);
validated!(SyscallName(String), "a syscall or @group name", numbers: false, syscall_name);
validated!(CapName(String), "a capability name", numbers: false, caps::name);
validated!(CapKindName(String), "a capability kind", numbers: false, cap_kind);
validated!(PtyValue(Pty), "\"auto\", \"always\" or \"never\"", numbers: false, Pty::parse);
validated!(Mode(bool), "\"default\" or \"capability\"", numbers: false, sandbox_mode);
validated!(FileModeValue(FileMode), "a file mode", numbers: false, FileMode::parse);
validated!(EgressRule(crate::egress::Egress), "a host name and port such as \"api.example.org:443\"", numbers: false, crate::egress::Egress::parse);
validated!(RestartValue(crate::group::RestartWhen), "\"never\", \"on-failure\" or \"always\"", numbers: false, crate::group::RestartWhen::parse);
validated!(EndName((String, String)), "COMPONENT.CAPABILITY", numbers: false, crate::group::end_name);
validated!(Address(String), "tcp://HOST:PORT or unix:PATH", numbers: false, address);

fn cap_kind(s: &str) -> Result<String, Problem> {
    if ["dir", "file", "listen", "connect", "data"].contains(&s) {
        return Ok(s.to_string());
    }
    Err(Problem::new(
        format!("capability kind {s:?} does not exist"),
        "use \"dir\", \"file\", \"listen\", \"connect\" or \"data\"",
    ))
}

/// `mode = "capability"` is true.
fn sandbox_mode(s: &str) -> Result<bool, Problem> {
    match s {
        "default" => Ok(false),
        "capability" => Ok(true),
        _ => Err(Problem::new(
            format!("sandbox mode {s:?} does not exist"),
            "use \"default\" or \"capability\" (act only through held capabilities)",
        )),
    }
}

/// An `[fs]` key or a capability's `mount`: inside the prison, and not one of brig's own places.
fn mount_point(s: &str) -> Result<PathBuf, Problem> {
    let p = paths::inside(s)?;
    paths::mount_point(&p)?;
    Ok(p)
}

/// Checked for syntax now; a relative unix path is resolved by [`crate::plan`].
fn address(s: &str) -> Result<String, Problem> {
    caps::Endpoint::parse(s, None).map(|_| s.to_string())
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what every shell can pass on.
pub(crate) fn env_name(s: &str) -> Result<String, Problem> {
    let mut cs = s.chars();
    let ok = cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(Problem::new(
            format!("{s:?} is not a valid environment variable name"),
            "use letters, digits and _, not starting with a digit (e.g. MY_VAR)",
        ))
    }
}

/// Only "none" exists today.
pub(crate) fn net_mode(s: &str) -> Result<Net, Problem> {
    if s == "none" {
        return Ok(Net::None);
    }
    Err(Problem::new(
        format!("network mode {s:?} does not exist"),
        "only \"none\" (a private network namespace with loopback only) exists; \
         reach the outside with egress = [\"HOST:PORT\"] or listen and connect capabilities",
    ))
}

fn host_path(s: &str) -> Result<String, Problem> {
    paths::host(s)?;
    if s == "~" || s.starts_with("~/") {
        return Err(Problem::new(
            format!("{s:?} starts with ~, which brig does not expand"),
            "write the full path, or a path relative to the manifest's directory",
        ));
    }
    Ok(s.to_string())
}

pub(crate) fn text(s: &str) -> Result<String, Problem> {
    if s.contains('\0') {
        return Err(Problem::new(format!("{s:?} contains a NUL byte"), "remove it"));
    }
    Ok(s.to_string())
}

pub(crate) fn command_path(s: &str) -> Result<String, Problem> {
    if s.is_empty() {
        return Err(Problem::new("the program path is empty", "give one (e.g. \"/bin/sh\")"));
    }
    text(s)
}

pub(crate) fn syscall_name(s: &str) -> Result<String, Problem> {
    let t = s.trim();
    if t.is_empty() || t.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',') {
        return Err(Problem::new(
            format!("{s:?} is not a syscall or group name"),
            "give one name per string (e.g. \"@debug\" or \"ptrace\")",
        ));
    }
    Ok(t.to_string())
}

/// A table read as entries in file order, each key with its span.
struct Entries<K, V>(Vec<(Spanned<K>, V)>);

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Vis<K, V> {
            type Value = Entries<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<K>>()? {
                    let v = m.next_value()?;
                    out.push((k, v));
                }
                // toml hands keys over sorted; the file's order is the one users expect.
                out.sort_by_key(|(k, _)| k.span().start);
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a { from = \"PATH\", rights = \"r\" } table")]
struct FsTable {
    from: Option<HostPath>,
    rights: RightsValue,
}

impl<'de> Deserialize<'de> for FsEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FsEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"tmpfs\", rights such as \"rwc\", or { from = \"PATH\", rights = \"r\" }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FsEntry, E> {
                if s == "tmpfs" || s == "tmpfs:x" {
                    return Ok(FsEntry::Tmpfs { exec: s == "tmpfs:x" });
                }
                match Rights::parse(s) {
                    Ok(rights) => Ok(FsEntry::Grant { from: None, rights }),
                    Err(mut p) => {
                        p.hint.push_str(", or \"tmpfs\" (\"tmpfs:x\" to run programs from it)");
                        Err(problem(p))
                    }
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<FsEntry, A::Error> {
                let t = FsTable::deserialize(de::value::MapAccessDeserializer::new(m))?;
                Ok(FsEntry::Grant { from: t.from.map(|f| f.0), rights: t.rights.0 })
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, or true to pass the host's value through")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<EnvValue, E> {
                text(s).map(EnvValue::Set).map_err(problem)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<EnvValue, E> {
                Ok(EnvValue::Set(n.to_string()))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<EnvValue, E> {
                if b {
                    return Ok(EnvValue::PassThrough);
                }
                Err(problem(Problem::new(
                    "false is not an environment value",
                    "remove the line to leave the variable out, or write a string",
                )))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of manifest sections")]
struct Raw {
    #[serde(default)]
    program: RawProgram,
    #[serde(default)]
    fs: Entries<MountPoint, FsEntry>,
    #[serde(default)]
    env: Entries<EnvName, EnvValue>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    net: RawNet,
    #[serde(default)]
    caps: Entries<CapName, Spanned<RawCap>>,
    app: Option<Spanned<toml::Table>>,
    explain: Option<bool>,
    /// `[component.NAME]`: a group manifest (the top level then holds only these,
    /// `[[channel]]` and `[group]`).
    #[serde(default)]
    component: Entries<CapName, Spanned<Raw>>,
    #[serde(default)]
    channel: Vec<Spanned<RawChannel>>,
    group: Option<Spanned<RawGroup>>,
    // Only in `[component.NAME]` (docs/components.md).
    after: Option<Vec<Spanned<CapName>>>,
    restart: Option<Spanned<RestartValue>>,
    restart_max: Option<Spanned<Count>>,
    restart_within: Option<Spanned<Dur>>,
    restart_backoff: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a capability table with kind = \"...\"")]
struct RawCap {
    kind: Spanned<CapKindName>,
    path: Option<Spanned<HostPath>>,
    rights: Option<Spanned<RightsValue>>,
    mount: Option<Spanned<MountPoint>>,
    mode: Option<Spanned<FileModeValue>>,
    address: Option<Spanned<Address>>,
}

impl RawCap {
    /// The kind with its fields, refusing fields that belong to another kind.
    fn kind(self, name: &str) -> Result<CapKind, (usize, Problem)> {
        let kind = self.kind.get_ref().0.as_str();
        let start = self.kind.span().start;
        let extra = |field: &str, span: std::ops::Range<usize>| {
            (
                span.start,
                Problem::new(
                    format!("`{field}` does not apply to a {kind} capability"),
                    format!("remove it from [caps.{name}]"),
                ),
            )
        };
        let need = |field: &str| {
            (
                start,
                Problem::new(
                    format!("a {kind} capability needs `{field}`"),
                    format!("add {field} = ... to [caps.{name}]"),
                ),
            )
        };
        let (path, addr) = (self.path, self.address);
        let mut unused: Vec<(&str, std::ops::Range<usize>)> = vec![];
        if kind != "dir" {
            unused.extend(self.rights.as_ref().map(|r| ("rights", r.span())));
            unused.extend(self.mount.as_ref().map(|r| ("mount", r.span())));
        }
        if kind != "file" {
            unused.extend(self.mode.as_ref().map(|r| ("mode", r.span())));
        }
        let net = kind == "listen" || kind == "connect";
        if net {
            unused.extend(path.as_ref().map(|r| ("path", r.span())));
        } else {
            unused.extend(addr.as_ref().map(|r| ("address", r.span())));
        }
        if let Some((f, span)) = unused.into_iter().next() {
            return Err(extra(f, span));
        }
        if net {
            let a = addr.ok_or_else(|| need("address"))?;
            let e = caps::endpoint(&a.get_ref().0, None, kind == "listen")
                .map_err(|p| (a.span().start, p))?;
            return Ok(if kind == "listen" { CapKind::Listen(e) } else { CapKind::Connect(e) });
        }
        let path = PathBuf::from(path.ok_or_else(|| need("path"))?.into_inner().0);
        Ok(match kind {
            "dir" => CapKind::Dir {
                path,
                rights: self.rights.map_or(Rights::R, |r| r.into_inner().0),
                mount: self.mount.map(|m| m.into_inner().0),
            },
            "file" => {
                CapKind::File { path, mode: self.mode.map_or(FileMode::Read, |m| m.into_inner().0) }
            }
            _ => CapKind::Data { path },
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a [program] table with path, args and chdir")]
struct RawProgram {
    path: Option<CommandPath>,
    args: Option<Spanned<Vec<Text>>>,
    chdir: Option<InsidePath>,
    pty: Option<PtyValue>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a [limits] table")]
struct RawLimits {
    wall: Option<Dur>,
    cpu: Option<Dur>,
    memory: Option<Size>,
    processes: Option<Count>,
    fsize: Option<Size>,
    nofile: Option<Spanned<Count>>,
    tmp: Option<Size>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a [sandbox] table")]
struct RawSandbox {
    mode: Option<Mode>,
    system: Option<bool>,
    best_effort: Option<bool>,
    explain: Option<bool>,
    #[serde(default)]
    allow_syscalls: Vec<SyscallName>,
    #[serde(default)]
    deny_syscalls: Vec<SyscallName>,
    #[serde(default)]
    only_syscalls: Vec<SyscallName>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a [net] table")]
struct RawNet {
    mode: Option<NetMode>,
    #[serde(default)]
    egress: Vec<EgressRule>,
}

impl Raw {
    /// Checks that need more than one value, and drops the wrappers.
    fn finish_one(self, file: &Path, text: &str) -> Result<Manifest, PolicyError> {
        let p = self.program;
        if let (None, Some(args)) = (&p.path, &p.args) {
            return Err(PolicyError::at(
                file,
                Pos::of(text, args.span().start),
                Problem::new("[program] has args but no path", "add path = \"...\" or remove args"),
            ));
        }
        let mut fs: Vec<FsItem> = Vec::with_capacity(self.fs.0.len());
        for (key, entry) in self.fs.0 {
            let pos = Pos::of(text, key.span().start);
            let dest = key.into_inner().0;
            if let Some(first) = fs.iter().find(|f| f.dest == dest) {
                return Err(PolicyError::at(
                    file,
                    pos,
                    Problem::new(
                        format!(
                            "{dest:?} is given twice in [fs] (first at line {})",
                            first.pos.line
                        ),
                        "keep one of the two entries",
                    ),
                ));
            }
            fs.push(FsItem { dest, entry, pos });
        }
        let mut caps_out: Vec<ManifestCap> = Vec::new();
        for (key, raw) in self.caps.0 {
            let pos = Pos::of(text, key.span().start);
            let name = key.into_inner().0;
            let table_start = raw.span().start;
            let kind = raw.into_inner().kind(&name).map_err(|(at, p)| {
                PolicyError::at(file, Pos::of(text, if at == 0 { table_start } else { at }), p)
            })?;
            caps::check_stdio(&name, &kind).map_err(|p| PolicyError::at(file, pos, p))?;
            caps_out.push(ManifestCap { name, kind, pos });
        }
        let app = self.app.map(|a| (Pos::of(text, a.span().start), a.into_inner()));
        let l = self.limits;
        let s = self.sandbox;
        Ok(Manifest {
            program: Program {
                path: p.path.map(|c| c.0),
                args: p
                    .args
                    .map(|a| a.into_inner().into_iter().map(|t| t.0).collect())
                    .unwrap_or_default(),
                chdir: p.chdir.map(|c| c.0),
                pty: p.pty.map(|t| t.0),
            },
            fs,
            env: self.env.0.into_iter().map(|(k, v)| (k.into_inner().0, v)).collect(),
            limits: ManifestLimits {
                wall: l.wall.map(|d| d.0),
                cpu: l.cpu.map(|d| d.0),
                memory: l.memory.map(|s| s.0),
                processes: l.processes.map(|c| c.0),
                fsize: l.fsize.map(|s| s.0),
                nofile_at: l.nofile.as_ref().map(|c| Pos::of(text, c.span().start)),
                nofile: l.nofile.map(|c| c.into_inner().0),
                tmp: l.tmp.map(|s| s.0),
            },
            system: s.system.unwrap_or(true),
            best_effort: s.best_effort.unwrap_or(false),
            explain: self.explain.or(s.explain).unwrap_or(false),
            syscalls: SyscallChanges {
                allow: s.allow_syscalls.into_iter().map(|n| n.0).collect(),
                deny: s.deny_syscalls.into_iter().map(|n| n.0).collect(),
                only: s.only_syscalls.into_iter().map(|n| n.0).collect(),
            },
            net: self.net.mode.map_or(Net::None, |m| m.0),
            egress: self.net.egress.into_iter().map(|e| e.0).collect(),
            capability_mode: s.mode.is_some_and(|m| m.0),
            caps: caps_out,
            app: app.map(|(pos, t)| (t, pos)),
            group: None,
        })
    }

    /// Where a key that belongs to a group (or to a member of one) was written outside it.
    fn stray_group_key(&self) -> Option<(usize, &'static str)> {
        let m = [
            ("after", self.after.as_ref().and_then(|a| a.first()).map(|a| a.span().start)),
            ("restart", self.restart.as_ref().map(|r| r.span().start)),
            ("restart_max", self.restart_max.as_ref().map(|r| r.span().start)),
            ("restart_within", self.restart_within.as_ref().map(|r| r.span().start)),
            ("restart_backoff", self.restart_backoff.as_ref().map(|r| r.span().start)),
            ("[[channel]]", self.channel.first().map(|c| c.span().start)),
            ("[group]", self.group.as_ref().map(|g| g.span().start)),
            ("[component.NAME]", self.component.0.first().map(|(k, _)| k.span().start)),
        ];
        m.into_iter().find_map(|(key, at)| Some((at?, key)))
    }

    /// A single prison's manifest: refuses what only a group or its members may say.
    fn finish(self, file: &Path, text: &str) -> Result<Manifest, PolicyError> {
        if let Some((at, key)) = self.stray_group_key() {
            return Err(PolicyError::at(
                file,
                Pos::of(text, at),
                Problem::new(
                    format!("{key} belongs to a group of components, and this manifest has none"),
                    "put it in a [component.NAME] table (docs/components.md), or remove it",
                ),
            ));
        }
        self.finish_one(file, text)
    }

    /// A group: `[component.NAME]` tables, `[[channel]]`s joining them, `[group]`.
    fn finish_group(mut self, file: &Path, text: &str) -> Result<Manifest, PolicyError> {
        let at = |offset: usize, p: Problem| PolicyError::at(file, Pos::of(text, offset), p);
        // The top level holds nothing for any one component: every key there is refused.
        let keys: Entries<String, de::IgnoredAny> = toml::from_str(text)
            .map_err(|e| at(e.span().map_or(0, |s| s.start), split_message(e.message())))?;
        for (k, _) in &keys.0 {
            if !["component", "channel", "group"].contains(&k.get_ref().as_str()) {
                return Err(at(
                    k.span().start,
                    Problem::new(
                        format!(
                            "`{}` at the top level of a group applies to no component",
                            k.get_ref()
                        ),
                        "move it into the [component.NAME] it is for: each component has only \
                         what its own table gives it",
                    ),
                ));
            }
        }
        let mut members = Vec::new();
        for (key, raw) in std::mem::take(&mut self.component.0) {
            let name = key.get_ref().0.clone();
            let pos = Pos::of(text, key.span().start);
            let table_at = raw.span().start;
            let mut raw = raw.into_inner();
            let nested = [
                raw.component.0.first().map(|(k, _)| k.span().start),
                raw.channel.first().map(|c| c.span().start),
                raw.group.as_ref().map(|g| g.span().start),
            ];
            if let Some(offset) = nested.into_iter().flatten().next() {
                return Err(at(
                    offset,
                    Problem::new(
                        format!("[component.{name}] holds a group's table"),
                        "write [component.NAME], [[channel]] and [group] at the top level",
                    ),
                ));
            }
            let after = raw
                .after
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.get_ref().0.clone(), Pos::of(text, a.span().start)))
                .collect();
            let restart = crate::group::Restart::of(
                raw.restart.take().map(|r| (r.get_ref().0, r.span().start)),
                raw.restart_max.take().map(|r| (r.get_ref().0, r.span().start)),
                raw.restart_within.take().map(|r| (r.get_ref().0, r.span().start)),
                raw.restart_backoff.take().map(|r| (r.get_ref().0, r.span().start)),
            )
            .map_err(|(offset, p)| at(offset, p))?;
            let manifest = raw.finish_one(file, text)?;
            if manifest.program.path.is_none() {
                return Err(at(
                    table_at.max(key.span().start),
                    Problem::new(
                        format!("[component.{name}] has no program"),
                        format!("add [component.{name}.program] with path = \"...\""),
                    ),
                ));
            }
            members.push(crate::group::Member { name, manifest, after, restart, pos });
        }
        let mut channels = Vec::new();
        for c in std::mem::take(&mut self.channel) {
            let offset = c.span().start;
            let ends = c.into_inner().ends;
            let ends_at = ends.span().start;
            let ends: Vec<crate::group::End> = ends
                .into_inner()
                .into_iter()
                .map(|e| crate::group::End {
                    component: e.get_ref().0 .0.clone(),
                    cap: e.get_ref().0 .1.clone(),
                    pos: Pos::of(text, e.span().start),
                })
                .collect();
            let Ok(ends) = <[crate::group::End; 2]>::try_from(ends) else {
                return Err(at(
                    ends_at,
                    Problem::new(
                        "a channel has exactly two ends",
                        "write ends = [\"a.NAME\", \"b.NAME\"]: component a holds it as \
                         capability NAME, and so does b",
                    ),
                ));
            };
            channels.push(crate::group::ChannelDef { ends, pos: Pos::of(text, offset) });
        }
        let main = self.group.take().and_then(|g| g.into_inner().main);
        let group = crate::group::Group {
            members,
            channels,
            main: main.map(|m| (m.get_ref().0.clone(), Pos::of(text, m.span().start))),
        };
        group.validate(file)?;
        Ok(Manifest {
            program: Program::default(),
            fs: vec![],
            env: vec![],
            limits: ManifestLimits::default(),
            system: true,
            best_effort: false,
            explain: false,
            syscalls: SyscallChanges::default(),
            net: Net::None,
            egress: vec![],
            capability_mode: false,
            caps: vec![],
            app: None,
            group: Some(group),
        })
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a [[channel]] table with ends = [\"a.NAME\", \"b.NAME\"]"
)]
struct RawChannel {
    ends: Spanned<Vec<Spanned<EndName>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [group] table")]
struct RawGroup {
    main: Option<Spanned<CapName>>,
}
