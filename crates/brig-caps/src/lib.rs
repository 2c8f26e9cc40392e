//! brig-caps: the library a program running under [brig](https://example.invalid/brig) uses to
//! receive its capabilities.
//!
//! brig opens every resource a manifest names (`[caps.NAME]` or `--dir`, `--file`, `--listen`,
//! `--connect`, `--data`) and hands it to the program as a file descriptor, the way CloudABI's
//! `cloudabi-run` did. This crate reads brig's description of those fds, gives them out as typed
//! handles, deserializes the manifest's `[app]` table (where `{ cap = "NAME" }` has become the
//! fd number), and lets the program drop into capability mode once it has initialized.
//!
//! ```no_run
//! use std::io::Write;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { greeting: String }
//!
//! fn main() -> Result<(), brig_caps::Error> {
//!     let mut caps = brig_caps::Caps::load()?;
//!     let site = caps.dir("site")?;                 // cap_std::fs::Dir
//!     let listener = caps.tcp_listener("http")?;    // cap_std::net::TcpListener
//!     let config: Config = caps.app()?;
//!     caps.enter_capability_mode()?;                // from here on: only these handles
//!     for stream in listener.incoming() {
//!         let mut stream = stream.map_err(|e| brig_caps::Error::Io { what: "accept".into(), source: e })?;
//!         let body = site.read_to_string("index.html").unwrap_or_default();
//!         let _ = write!(stream, "{}\n{body}", config.greeting);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! The description is JSON in a sealed memfd whose number is in `BRIG_CAPS_FD`; its format is
//! [`Description`], version [`VERSION`]. Capability fds are numbered from 3 (listeners first, so
//! systemd's `LISTEN_FDS` works too); `stdin`, `stdout` and `stderr` take 0, 1 and 2.

pub mod capmode;

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use serde::{Deserialize, Serialize};

/// The environment variable naming the description's fd.
pub const ENV_FD: &str = "BRIG_CAPS_FD";
/// The description format this crate reads and brig writes.
pub const VERSION: u32 = 1;

/// brig's description of the capabilities it handed over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// [`VERSION`].
    pub version: u32,
    /// Whether brig already put the program in capability mode at exec.
    pub mode: Mode,
    pub caps: Vec<CapInfo>,
    /// The manifest's `[app]` table, every `{ cap = "NAME" }` replaced by NAME's fd number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Default,
    Capability,
}

/// One capability: its name, fd number, kind and what it allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapInfo {
    pub name: String,
    pub fd: i32,
    pub kind: Kind,
    /// `dir`: unveil-style rights (`r`, `rw`, `rwc`, `rx`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rights: Option<String>,
    /// `dir`: where it is also mounted inside, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// `file`: read, write, append or create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `listen`, `connect`: `tcp://HOST:PORT` or `unix:PATH` as the manifest wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dir,
    File,
    Listen,
    Connect,
    Data,
    Channel,
}

impl Kind {
    /// The kind's name, as in manifests and the description.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dir => "dir",
            Kind::File => "file",
            Kind::Listen => "listen",
            Kind::Connect => "connect",
            Kind::Data => "data",
            Kind::Channel => "channel",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a capability could not be had, or capability mode not entered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no capabilities: {ENV_FD} is not set (is this program running under brig with capabilities?)")]
    NotUnderBrig,
    #[error("brig's capability description is unreadable: {0}")]
    BadDescription(String),
    #[error("capability description version {0} is not supported (this brig-caps reads version {VERSION}); use matching brig and brig-caps versions")]
    Version(u32),
    #[error("capability {name:?} was not given (the program has: {have}); add [caps.{name}] to the manifest or pass it as a flag")]
    Missing { name: String, have: String },
    #[error("capability {name:?} is a {actual} capability, not {wanted}; fix its kind in the manifest or ask for it as {actual}")]
    WrongKind { name: String, wanted: &'static str, actual: String },
    #[error(
        "capability {name:?} was already taken; take each capability once and share the handle"
    )]
    Taken { name: String },
    #[error("capability {name:?} is the program's fd {fd} ({}); use it as such", ["stdin", "stdout", "stderr"][(*fd).clamp(0, 2) as usize])]
    Stdio { name: String, fd: i32 },
    #[error("no [app] configuration was given; add an [app] table to the manifest")]
    NoApp,
    #[error("the [app] configuration does not fit: {0}")]
    App(serde_json::Error),
    #[error("capability mode needs a single-threaded process; enter it before starting threads")]
    Threads,
    #[error("capability mode is unavailable: {layer}: {why}")]
    Unavailable { layer: &'static str, why: String },
    #[error("{step}: {source}")]
    Kernel { step: &'static str, source: std::io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// The capabilities this process received. Each one can be taken once, as its typed handle.
#[derive(Debug)]
pub struct Caps {
    desc: Description,
    /// Parallel to `desc.caps`; `None` once taken.
    fds: Vec<Option<OwnedFd>>,
    /// Duplicates of the directory capabilities, kept for the capability-mode Landlock layer.
    dirs: Vec<(OwnedFd, brig_policy::Rights)>,
}

impl Caps {
    /// Reads the description brig left at `$BRIG_CAPS_FD` and takes ownership of every
    /// capability fd it lists. Call once per process.
    pub fn load() -> Result<Caps, Error> {
        let fd = std::env::var(ENV_FD).map_err(|_| Error::NotUnderBrig)?;
        let fd: i32 = fd.parse().map_err(|_| Error::BadDescription(format!("{ENV_FD}={fd}")))?;
        let claim = |n: i32, what: &str| {
            brig_sys::fdpass::claim_inherited(n)
                .map_err(|source| Error::Io { what: format!("{what} (fd {n})"), source })
        };
        let mut text = String::new();
        std::fs::File::from(claim(fd, "the capability description")?)
            .read_to_string(&mut text)
            .map_err(|e| Error::BadDescription(e.to_string()))?;
        let desc = Description::parse(&text)?;
        let mut fds = Vec::with_capacity(desc.caps.len());
        let mut dirs = Vec::new();
        for c in &desc.caps {
            let owned = if c.fd < 3 {
                // stdin/stdout/stderr: they stay where the program's I/O expects them.
                None
            } else {
                Some(claim(c.fd, &format!("capability {:?}", c.name))?)
            };
            if let (Kind::Dir, Some(fd)) = (c.kind, &owned) {
                let rights = brig_policy::Rights::parse(c.rights.as_deref().unwrap_or("r"))
                    .map_err(|p| Error::BadDescription(p.to_string()))?;
                let dup = fd.try_clone().map_err(|source| Error::Io {
                    what: format!("capability {:?}", c.name),
                    source,
                })?;
                dirs.push((dup, rights));
            }
            fds.push(owned);
        }
        Ok(Caps { desc, fds, dirs })
    }

    /// The description as brig wrote it.
    pub fn description(&self) -> &Description {
        &self.desc
    }

    /// The `[app]` configuration, deserialized. Capability references in it are fd numbers.
    pub fn app<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        let v = self.desc.app.clone().ok_or(Error::NoApp)?;
        serde_json::from_value(v).map_err(Error::App)
    }

    /// Takes the fd of capability `name`, which must be of kind `wanted`.
    pub fn take(&mut self, name: &str, wanted: Kind) -> Result<OwnedFd, Error> {
        let Some(i) = self.desc.caps.iter().position(|c| c.name == name) else {
            let have: Vec<&str> = self.desc.caps.iter().map(|c| c.name.as_str()).collect();
            let have = if have.is_empty() { "none".into() } else { have.join(", ") };
            return Err(Error::Missing { name: name.into(), have });
        };
        let c = &self.desc.caps[i];
        if c.fd < 3 {
            return Err(Error::Stdio { name: name.into(), fd: c.fd });
        }
        if c.kind != wanted {
            let (wanted, actual) = (wanted.name(), c.kind.to_string());
            return Err(Error::WrongKind { name: name.into(), wanted, actual });
        }
        self.fds[i].take().ok_or_else(|| Error::Taken { name: name.into() })
    }

    /// Whether capability `name` is a unix socket (`unix:` address) rather than TCP.
    fn is_unix(&self, name: &str) -> bool {
        self.desc
            .caps
            .iter()
            .any(|c| c.name == name && c.address.as_deref().is_some_and(|a| a.starts_with("unix:")))
    }

    fn socket(&mut self, name: &str, kind: Kind, unix: bool) -> Result<OwnedFd, Error> {
        if self.is_unix(name) != unix && self.desc.caps.iter().any(|c| c.name == name) {
            let actual = if unix { "TCP" } else { "unix" };
            let wanted = if unix { "a unix socket" } else { "a TCP socket" };
            return Err(Error::WrongKind { name: name.into(), wanted, actual: actual.into() });
        }
        self.take(name, kind)
    }

    /// A `dir` capability.
    pub fn dir(&mut self, name: &str) -> Result<cap_std::fs::Dir, Error> {
        let fd = self.take(name, Kind::Dir)?;
        Ok(cap_std::fs::Dir::from_std_file(fd.into()))
    }

    /// A `file` capability, opened as its mode says.
    pub fn file(&mut self, name: &str) -> Result<cap_std::fs::File, Error> {
        Ok(cap_std::fs::File::from_std(self.take(name, Kind::File)?.into()))
    }

    /// A `channel` capability: one end of a unix `SOCK_SEQPACKET` socketpair (give it to
    /// `brig_ipc::Channel::new`).
    pub fn channel(&mut self, name: &str) -> Result<OwnedFd, Error> {
        self.take(name, Kind::Channel)
    }

    /// A `data` capability's bytes.
    pub fn data(&mut self, name: &str) -> Result<Vec<u8>, Error> {
        let mut f = std::fs::File::from(self.take(name, Kind::Data)?);
        let mut v = Vec::new();
        f.read_to_end(&mut v)
            .map_err(|source| Error::Io { what: format!("data {name:?}"), source })?;
        Ok(v)
    }

    /// A `listen` capability on `tcp://`.
    pub fn tcp_listener(&mut self, name: &str) -> Result<cap_std::net::TcpListener, Error> {
        let fd = self.socket(name, Kind::Listen, false)?;
        Ok(cap_std::net::TcpListener::from_std(fd.into()))
    }

    /// A `listen` capability on `unix:`.
    pub fn unix_listener(&mut self, name: &str) -> Result<UnixListener, Error> {
        Ok(self.socket(name, Kind::Listen, true)?.into())
    }

    /// A `connect` capability to `tcp://`.
    pub fn tcp_stream(&mut self, name: &str) -> Result<cap_std::net::TcpStream, Error> {
        let fd = self.socket(name, Kind::Connect, false)?;
        Ok(cap_std::net::TcpStream::from_std(fd.into()))
    }

    /// A `connect` capability to `unix:`.
    pub fn unix_stream(&mut self, name: &str) -> Result<UnixStream, Error> {
        Ok(self.socket(name, Kind::Connect, true)?.into())
    }

    /// The program's `cap_enter()`: from now on this process acts only through the fds it holds
    /// (see [`capmode`]). Paths resolve only beneath the directory capabilities, with their
    /// rights. Call it after initialization, while the process is still single-threaded;
    /// threads started afterwards inherit it. It cannot be undone.
    pub fn enter_capability_mode(&mut self) -> Result<(), Error> {
        let dirs: Vec<_> = self.dirs.iter().map(|(fd, r)| (fd.as_fd(), *r)).collect();
        let rs = capmode::ruleset(&dirs, None)?;
        capmode::enter(rs, std::process::id())?;
        self.desc.mode = Mode::Capability;
        Ok(())
    }
}

impl Description {
    /// Parses and checks the version.
    pub fn parse(text: &str) -> Result<Description, Error> {
        #[derive(Deserialize)]
        struct V {
            version: u32,
        }
        let v: V = serde_json::from_str(text).map_err(|e| Error::BadDescription(e.to_string()))?;
        if v.version != VERSION {
            return Err(Error::Version(v.version));
        }
        serde_json::from_str(text).map_err(|e| Error::BadDescription(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_round_trip_and_version() {
        let d = Description {
            version: VERSION,
            mode: Mode::Default,
            caps: vec![CapInfo {
                name: "site".into(),
                fd: 3,
                kind: Kind::Dir,
                rights: Some("r".into()),
                mount: None,
                mode: None,
                address: None,
            }],
            app: Some(serde_json::json!({"root": 3})),
        };
        let text = serde_json::to_string(&d).expect("json");
        assert_eq!(
            text,
            r#"{"version":1,"mode":"default","caps":[{"name":"site","fd":3,"kind":"dir","rights":"r"}],"app":{"root":3}}"#
        );
        assert_eq!(Description::parse(&text).expect("parse"), d);
        assert!(matches!(Description::parse(r#"{"version":2}"#), Err(Error::Version(2))));
        assert!(matches!(Description::parse("{"), Err(Error::BadDescription(_))));
    }
}
