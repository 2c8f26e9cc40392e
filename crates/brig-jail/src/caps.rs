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
    /// `dir` and read-only `file` capabilities: pid 1 replaces `fd` with one opened through a
    /// detached copy of its mount, which carries its rights (read-only, noexec, nosuid, nodev:
    /// what Landlock does not cover, chmod, chown, utimes, xattrs, inode flags), and for a
    /// directory makes `..` stop at the capability's root.
    pub remount: Option<Remount>,
    /// A change to the host file made only once everything has opened (`commit`).
    pub commit: Option<Commit>,
}

/// What pid 1 needs to re-open a capability in its own mount namespace.
#[derive(Debug)]
pub struct Remount {
    /// The real path (root's links resolved), re-opened without following symlinks.
    pub path: PathBuf,
    /// The (device, inode) the runner opened; the re-opened path must match.
    pub ident: brig_sys::fs::Ident,
    pub rights: Rights,
}

impl Remount {
    /// The rights of a directory capability (None for a file).
    pub fn dir_rights(&self) -> Option<Rights> {
        self.ident.is_dir.then_some(self.rights)
    }
}

/// A visible change to the host that a `create` or `append` file capability makes, deferred
/// until every grant and capability has opened: a refused run changes nothing.
#[derive(Debug)]
pub enum Commit {
    /// `create` of an existing file: empty it.
    Truncate,
    /// The file does not exist yet: `fd` is its directory; create `name` there.
    Create { name: PathBuf, append: bool },
}

/// Makes the deferred changes of `caps` (see [`Commit`]): creations first (they can fail),
/// then truncations.
pub fn commit(caps: &mut [Opened]) -> Result<(), JailError> {
    for c in caps.iter_mut() {
        if let Some(Commit::Create { name, append }) = &c.commit {
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_NOCTTY | libc::O_CLOEXEC;
            let flags = if *append { flags | libc::O_APPEND } else { flags };
            let how = brig_sys::fs::resolve::NO_SYMLINKS | brig_sys::fs::resolve::NO_MAGICLINKS;
            c.fd = brig_sys::fs::openat2(Some(c.fd.as_fd()), name, flags, 0o644, how)
                .map_err(|source| JailError::Setup { step: "create file capability", source })?;
            c.commit = None;
        }
    }
    for c in caps.iter_mut().filter(|c| matches!(c.commit, Some(Commit::Truncate))) {
        let f = std::fs::File::from(c.fd.try_clone().map_err(JailError::setup("truncate"))?);
        f.set_len(0).map_err(JailError::setup("truncate file capability"))?;
        c.commit = None;
    }
    Ok(())
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
        let (fd, remount, commit) = match &c.kind {
            CapKind::Listen(Endpoint::Tcp { .. }) => {
                let l = TcpListener::from(open(c, files)?.0);
                if let Ok(a) = l.local_addr() {
                    info.address = Some(format!("tcp://{a}"));
                    if matches!(c.kind, CapKind::Listen(Endpoint::Tcp { port: 0, .. })) {
                        // The caller asked the kernel to pick; this is how it learns the port.
                        // A full or closed stderr must not stop the run: the error is dropped.
                        let line = format!("brig: capability {} listens on tcp://{a}\n", c.name);
                        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                    }
                }
                (l.into(), None, None)
            }
            _ => open(c, files)?,
        };
        report.capabilities.push(crate::report::CapReport {
            name: c.name.clone(),
            fd: c.fd,
            kind: c.kind.name(),
            address: info.address.clone(),
        });
        out.push(Opened { fd, target: c.fd, remount, commit });
    }
    if let Some(target) = plan.description_fd {
        let text = serde_json::to_string(&desc).map_err(|e| JailError::Setup {
            step: "capability description",
            source: std::io::Error::other(e),
        })?;
        let fd = fdpass::sealed_memfd("brig-caps", text.as_bytes())
            .map_err(JailError::setup("capability description memfd"))?;
        out.push(Opened { fd, target, remount: None, commit: None });
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
                CapKind::Channel { .. } => i.kind = Kind::Channel,
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

type Opening = (OwnedFd, Option<Remount>, Option<Commit>);

/// Opens one capability; a `dir` or a read-only `file` also gives what pid 1 needs to re-open
/// it, a `create` or `append` file what is left to do once everything has opened.
fn open(c: &Cap, files: &mut SocketFiles) -> Result<Opening, JailError> {
    let fd = match &c.kind {
        CapKind::Dir { path, rights, .. } => {
            let (fd, path) = open_path(c, path, libc::O_RDONLY | libc::O_DIRECTORY)?;
            let ident = brig_sys::fs::ident(fd.as_fd())
                .map_err(|e| refuse(c, format!("{}: {e}", path.display()), "fix the path"))?;
            return Ok((fd, Some(Remount { path, ident, rights: *rights }), None));
        }
        CapKind::File { path, mode } => return open_file(c, path, *mode),
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
        CapKind::Channel { fd } => channel(c, *fd),
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
                    Ok(s) => return Ok((s.into(), None, None)),
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
    Ok((fd, None, None))
}

/// A `channel` capability: fd `n`, which brig inherited, must be a unix `SOCK_SEQPACKET`
/// socket. brig takes it over (a close-on-exec copy; the inherited number is closed).
fn channel(c: &Cap, n: i32) -> Result<OwnedFd, JailError> {
    let fix = "pass one end of a seqpacket socketpair at that number";
    let fd = fdpass::claim_inherited(n)
        .map_err(|e| refuse(c, format!("fd {n} is not open in brig: {e}"), fix))?;
    let opt = |name| brig_sys::net::getsockopt_int(fd.as_fd(), libc::SOL_SOCKET, name);
    match (opt(libc::SO_DOMAIN), opt(libc::SO_TYPE)) {
        (Ok(libc::AF_UNIX), Ok(libc::SOCK_SEQPACKET)) => {}
        _ => return Err(refuse(c, format!("fd {n} is not a unix seqpacket socket"), fix)),
    }
    fdpass::dup_at_least(fd.as_fd(), 3).map_err(|e| refuse(c, format!("fd {n}: {e}"), fix))
}

/// A `file` capability. The file is opened as it is (never created or truncated here: see
/// [`Commit`]); a missing file that the mode may create gives its directory instead.
fn open_file(c: &Cap, path: &Path, mode: FileMode) -> Result<Opening, JailError> {
    let flags = match mode {
        FileMode::Read => libc::O_RDONLY,
        FileMode::Write | FileMode::Create => libc::O_WRONLY,
        FileMode::Append => libc::O_WRONLY | libc::O_APPEND,
    };
    let creates = matches!(mode, FileMode::Create | FileMode::Append);
    let io = |e: std::io::Error| refuse(c, format!("{}: {e}", path.display()), "fix the path");
    // O_NONBLOCK: a FIFO without a peer must not hang the runner.
    let (fd, real) = if creates {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(refuse(c, format!("{} is not a file path", path.display()), "fix it"));
        };
        let (dir, real) = open_path(c, parent, libc::O_PATH | libc::O_DIRECTORY)?;
        let how = brig_sys::fs::resolve::NO_SYMLINKS | brig_sys::fs::resolve::NO_MAGICLINKS;
        let flags = flags | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        match brig_sys::fs::openat2(Some(dir.as_fd()), Path::new(name), flags, 0, how) {
            Ok(fd) => (fd, real.join(name)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let append = mode == FileMode::Append;
                return Ok((dir, None, Some(Commit::Create { name: name.into(), append })));
            }
            Err(e) => {
                let hint = match e.raw_os_error() {
                    Some(libc::ELOOP) => "it is a symlink, which brig refuses: name the real path",
                    _ => "fix the path",
                };
                return Err(refuse(c, format!("cannot open {}: {e}", path.display()), hint));
            }
        }
    } else {
        open_path(c, path, flags | libc::O_NONBLOCK)?
    };
    let ident = brig_sys::fs::ident(fd.as_fd()).map_err(io)?;
    if ident.is_dir {
        return Err(refuse(
            c,
            format!("{} is a directory", path.display()),
            "use kind = \"dir\" (--dir)",
        ));
    }
    fdpass::set_nonblocking(fd.as_fd(), false).map_err(io)?;
    let remount =
        (mode == FileMode::Read).then_some(Remount { path: real, ident, rights: Rights::R });
    let commit = (mode == FileMode::Create).then_some(Commit::Truncate);
    Ok((fd, remount, commit))
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
