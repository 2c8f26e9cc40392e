//! The capability phase: the runner opens every named capability with the least rights that
//! serve, binds and connects sockets in the host's network, and writes the description the
//! program reads (`brig_caps::Description`). Everything here happens before clone; the prison
//! only receives the fds.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use brig_caps::{CapInfo, Description, Kind, Mode, VERSION};
use brig_policy::caps::{Cap, CapKind, Endpoint, FileMode};
use brig_policy::{Plan, Rights};
use brig_sys::fdpass;

use crate::error::JailError;
use crate::grants;

/// The largest file a `data` capability copies into memory.
pub const MAX_DATA: u64 = 64 << 20;
/// How long the runner waits for a `connect` capability's server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One opened capability, with the number it must have in the program.
#[derive(Debug)]
pub struct Opened {
    pub fd: OwnedFd,
    pub target: i32,
    /// `dir` capabilities: pid 1 replaces `fd` with a directory of a detached copy of its mount
    /// (so `..` stops at the capability's root, and the mount carries its rights).
    pub dir: Option<DirCap>,
}

/// What pid 1 needs to re-open a directory capability in its own mount namespace.
#[derive(Debug)]
pub struct DirCap {
    /// The real path (root's links resolved), re-opened without following symlinks.
    pub path: PathBuf,
    /// The (device, inode) the runner opened; the re-opened path must match.
    pub ident: brig_sys::fs::Ident,
    pub rights: Rights,
}

/// Unix socket files the runner created for `listen` capabilities, as (directory fd, name);
/// removed when dropped (the run ended, or the launch failed), through the directory fd the
/// runner bound them in, so that no symlink swapped into the path meanwhile can redirect it.
#[derive(Debug, Default)]
pub struct SocketFiles(Vec<(OwnedFd, PathBuf)>);

impl Drop for SocketFiles {
    fn drop(&mut self) {
        for (dir, name) in &self.0 {
            let _ = brig_sys::fs::unlinkat(dir.as_fd(), name);
        }
    }
}

/// Opens every capability of `plan`, then the description (last, at `plan.description_fd`).
/// The description, and `report`, give a TCP listener's address as bound (the port the kernel
/// picked for `:0`).
pub fn open_all(
    plan: &Plan,
    files: &mut SocketFiles,
    report: &mut crate::report::Report,
) -> Result<Vec<Opened>, JailError> {
    let mut out = Vec::with_capacity(plan.caps.len() + 1);
    let mut desc = describe(plan);
    for (c, info) in plan.caps.iter().zip(&mut desc.caps) {
        let (fd, dir) = match &c.kind {
            CapKind::Listen(Endpoint::Tcp { .. }) => {
                let l = TcpListener::from(open(c, files)?.0);
                if let Ok(a) = l.local_addr() {
                    info.address = Some(format!("tcp://{a}"));
                    if matches!(c.kind, CapKind::Listen(Endpoint::Tcp { port: 0, .. })) {
                        // The caller asked the kernel to pick; this is how it learns the port.
                        eprintln!("brig: capability {} listens on tcp://{a}", c.name);
                    }
                }
                (l.into(), None)
            }
            _ => open(c, files)?,
        };
        report.capabilities.push(crate::report::CapReport {
            name: c.name.clone(),
            fd: c.fd,
            kind: c.kind.name(),
            address: info.address.clone(),
        });
        out.push(Opened { fd, target: c.fd, dir });
    }
    if let Some(target) = plan.description_fd {
        let text = serde_json::to_string(&desc).map_err(|e| JailError::Setup {
            step: "capability description",
            source: std::io::Error::other(e),
        })?;
        let fd = fdpass::sealed_memfd("brig-caps", text.as_bytes())
            .map_err(JailError::setup("capability description memfd"))?;
        out.push(Opened { fd, target, dir: None });
    }
    Ok(out)
}

/// The listen capabilities as bound, for the broker: a listen capability may `listen` again
/// only where the runner bound it.
pub fn listeners(
    plan: &Plan,
    opened: &[Opened],
) -> Result<Vec<crate::broker::Listener>, JailError> {
    let step = "listen capability address";
    plan.caps
        .iter()
        .zip(opened)
        .filter(|(c, _)| matches!(c.kind, CapKind::Listen(_)))
        .map(|(_, o)| {
            let ident = brig_sys::fs::ident(o.fd.as_fd()).map_err(JailError::setup(step))?;
            let addr = brig_sys::net::local_addr(o.fd.as_fd()).map_err(JailError::setup(step))?;
            Ok(crate::broker::Listener { ident, addr })
        })
        .collect()
}

/// The description of `plan`'s capabilities, as the program reads it.
pub fn describe(plan: &Plan) -> Description {
    let caps = plan
        .caps
        .iter()
        .map(|c| {
            let mut i = CapInfo {
                name: c.name.clone(),
                fd: c.fd,
                kind: Kind::Data,
                rights: None,
                mount: None,
                mode: None,
                address: None,
            };
            match &c.kind {
                CapKind::Dir { rights, mount, .. } => {
                    i.kind = Kind::Dir;
                    i.rights = Some(rights.to_string());
                    i.mount = mount.as_ref().map(|m| m.display().to_string());
                }
                CapKind::File { mode, .. } => {
                    i.kind = Kind::File;
                    i.mode = Some(mode.name().into());
                }
                CapKind::Listen(e) => {
                    i.kind = Kind::Listen;
                    i.address = Some(e.to_string());
                }
                CapKind::Connect(e) => {
                    i.kind = Kind::Connect;
                    i.address = Some(e.to_string());
                }
                CapKind::Data { .. } => {}
            }
            i
        })
        .collect();
    let app = plan.app.as_deref().and_then(|a| serde_json::from_str(a).ok());
    let mode = if plan.capability_mode { Mode::Capability } else { Mode::Default };
    Description { version: VERSION, mode, caps, app }
}

/// The environment the program gets for its capabilities: `BRIG_CAPS_FD`, and systemd's
/// socket-activation variables when there are listeners (`LISTEN_PID` is set in the program's
/// own process, which alone knows its pid).
pub fn env(plan: &Plan) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(fd) = plan.description_fd {
        env.push((brig_caps::ENV_FD.to_string(), fd.to_string()));
    }
    let listeners: Vec<&Cap> =
        plan.caps.iter().filter(|c| matches!(c.kind, CapKind::Listen(_))).collect();
    if !listeners.is_empty() {
        let names: Vec<&str> = listeners.iter().map(|c| c.name.as_str()).collect();
        env.push(("LISTEN_FDS".into(), listeners.len().to_string()));
        env.push(("LISTEN_FDNAMES".into(), names.join(":")));
    }
    env
}

fn refuse(c: &Cap, message: impl Into<String>, hint: impl Into<String>) -> JailError {
    JailError::Capability {
        name: c.name.clone(),
        origin: c.origin.clone(),
        message: message.into(),
        hint: hint.into(),
    }
}

/// A host path through root's own symlinks only, opened with `flags`; also returns the real path.
fn open_path(c: &Cap, path: &Path, flags: i32) -> Result<(OwnedFd, PathBuf), JailError> {
    let named = |e: JailError| match e {
        JailError::GrantIsSymlink { path, target, .. } => refuse(
            c,
            format!("{} goes through a symlink, which brig refuses", path.display()),
            format!("name the real path ({})", target.display()),
        ),
        JailError::OpenGrant { path, source, .. } => {
            let hint = match source.raw_os_error() {
                Some(libc::ENOENT) => "create it, or fix the path",
                Some(libc::EACCES) => "you cannot open it yourself; brig grants only what you can",
                Some(libc::ENOTDIR) => "a dir capability needs a directory",
                _ => "fix the path",
            };
            refuse(c, format!("cannot open {}: {source}", path.display()), hint)
        }
        other => other,
    };
    let real = grants::through_root_links(path, &c.origin).map_err(named)?;
    // openat2 refuses a mode without O_CREAT.
    let mode = if flags & libc::O_CREAT != 0 { 0o644 } else { 0 };
    // openat2 is strict: O_PATH takes no other open flags.
    let flags = if flags & libc::O_PATH != 0 { flags } else { flags | libc::O_NOCTTY };
    let fd = grants::open_host(&real, flags, mode, &c.origin).map_err(named)?;
    Ok((fd, real))
}

/// Opens one capability; a `dir` also gives what pid 1 needs to re-open it.
fn open(c: &Cap, files: &mut SocketFiles) -> Result<(OwnedFd, Option<DirCap>), JailError> {
    let fd = match &c.kind {
        CapKind::Dir { path, rights, .. } => {
            let (fd, path) = open_path(c, path, libc::O_RDONLY | libc::O_DIRECTORY)?;
            let ident = brig_sys::fs::ident(fd.as_fd())
                .map_err(|e| refuse(c, format!("{}: {e}", path.display()), "fix the path"))?;
            return Ok((fd, Some(DirCap { path, ident, rights: *rights })));
        }
        CapKind::File { path, mode } => {
            let flags = match mode {
                FileMode::Read => libc::O_RDONLY,
                FileMode::Write => libc::O_WRONLY,
                FileMode::Append => libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
                FileMode::Create => libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            };
            // O_NONBLOCK: a FIFO without a peer must not hang the runner.
            let (fd, _) = open_path(c, path, flags | libc::O_NONBLOCK)?;
            let io =
                |e: std::io::Error| refuse(c, format!("{}: {e}", path.display()), "fix the path");
            if brig_sys::fs::ident(fd.as_fd()).map_err(io)?.is_dir {
                return Err(refuse(
                    c,
                    format!("{} is a directory", path.display()),
                    "use kind = \"dir\" (--dir)",
                ));
            }
            fdpass::set_blocking(fd.as_fd()).map_err(io)?;
            Ok(fd)
        }
        CapKind::Data { path } => {
            let (fd, _) = open_path(c, path, libc::O_RDONLY | libc::O_NONBLOCK)?;
            let mut bytes = Vec::new();
            let io = |e: std::io::Error| {
                refuse(c, format!("reading {}: {e}", path.display()), "give a regular file")
            };
            std::fs::File::from(fd).take(MAX_DATA + 1).read_to_end(&mut bytes).map_err(io)?;
            if bytes.len() as u64 > MAX_DATA {
                return Err(refuse(
                    c,
                    format!("{} is larger than 64 MiB", path.display()),
                    "use a file capability for large files",
                ));
            }
            fdpass::sealed_memfd(&format!("brig-data:{}", c.name), &bytes).map_err(io)
        }
        CapKind::Listen(Endpoint::Tcp { host, port }) => {
            let addr = resolve(c, host, *port)?;
            let l = TcpListener::bind(&addr[..]).map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(libc::EADDRINUSE) => {
                        "something already listens there: stop it or choose another port"
                    }
                    Some(libc::EACCES) => {
                        "ports below 1024 need privilege: choose a port from 1024 up"
                    }
                    Some(libc::EADDRNOTAVAIL) => {
                        "this host has no such address: use one of its own (e.g. 127.0.0.1)"
                    }
                    _ => "check the address",
                };
                refuse(c, format!("cannot listen on {host}:{port}: {e}"), hint)
            })?;
            Ok(l.into())
        }
        CapKind::Listen(Endpoint::Unix(path)) => {
            // Bind through the directory's fd (opened like any host path), so the socket lands
            // where the plan says and can be removed from the same directory afterwards.
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(refuse(
                    c,
                    format!("{} is not a file path", path.display()),
                    "give a path like unix:./app.sock",
                ));
            };
            let (dir, _) = open_path(c, parent, libc::O_PATH | libc::O_DIRECTORY)?;
            let at = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
            let l = UnixListener::bind(&at).map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(libc::EADDRINUSE) => "a file is already there: remove it if it is a stale socket, or choose another path",
                    _ => "check that the directory exists and is writable",
                };
                refuse(c, format!("cannot listen on {}: {e}", path.display()), hint)
            })?;
            files.0.push((dir, PathBuf::from(name)));
            Ok(l.into())
        }
        CapKind::Connect(Endpoint::Tcp { host, port }) => {
            let mut last = None;
            for a in resolve(c, host, *port)? {
                match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                    Ok(s) => return Ok((s.into(), None)),
                    Err(e) => last = Some(e),
                }
            }
            let e = last.map_or_else(|| "no address".to_string(), |e| e.to_string());
            Err(refuse(
                c,
                format!("cannot connect to {host}:{port}: {e}"),
                "start the server first, or fix the address",
            ))
        }
        CapKind::Connect(Endpoint::Unix(path)) => {
            UnixStream::connect(path).map(OwnedFd::from).map_err(|e| {
                refuse(
                    c,
                    format!("cannot connect to {}: {e}", path.display()),
                    "start the server first, or fix the path",
                )
            })
        }
    }?;
    Ok((fd, None))
}

/// Resolves HOST:PORT in the runner (the prison has no resolver and no network).
fn resolve(c: &Cap, host: &str, port: u16) -> Result<Vec<SocketAddr>, JailError> {
    let v: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .or_else(|_| format!("{host}:{port}").to_socket_addrs())
        .map_err(|e| {
            refuse(
                c,
                format!("cannot resolve {host:?}: {e}"),
                "check the host name, or give an IP address",
            )
        })?
        .collect();
    if v.is_empty() {
        return Err(refuse(
            c,
            format!("{host:?} has no address"),
            "check the host name, or give an IP address",
        ));
    }
    Ok(v)
}
