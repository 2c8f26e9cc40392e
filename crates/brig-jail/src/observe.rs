//! The syscalls the broker observes: it reads their path or address from the asker's memory to
//! explain a refusal, then lets the kernel run them as asked (`continue`), so Landlock, the
//! view and the network namespace still decide. Supervisor side, trusted; what it reads chooses
//! only the words of a message. Reviewed data: one line per syscall.
//!
//! exec is observed in every run (a refused exec is a common, silent failure worth a hint);
//! the rest only with `--explain`, whose cost is in docs/benchmarks.md.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use brig_sys::notify::{self, Notif};

use crate::explain::{Access, Refusal, View};

/// What one argument of an observed syscall is.
#[derive(Debug, Clone, Copy)]
enum Arg {
    /// A path at args[path], relative to the directory fd at args[dirfd] (None: the cwd),
    /// asked for `how`.
    Path { dirfd: Option<usize>, path: usize, how: How },
    /// A socket address at args[1], args[2] bytes long, of the socket at args[0].
    Sock(Access),
}

#[derive(Debug, Clone, Copy)]
enum How {
    Is(Access),
    /// open's flags at args[i]: read, write, or create when O_CREAT names a new file.
    Open(usize),
}

/// One observed syscall.
#[derive(Debug)]
pub struct Observed {
    pub nr: i64,
    pub name: &'static str,
    /// Observed in every run, not only with `--explain`.
    pub always: bool,
    args: &'static [Arg],
}

const fn at(dirfd: usize, path: usize, a: Access) -> Arg {
    Arg::Path { dirfd: Some(dirfd), path, how: How::Is(a) }
}
const fn cwd(path: usize, a: Access) -> Arg {
    Arg::Path { dirfd: None, path, how: How::Is(a) }
}
const fn obs(nr: i64, name: &'static str, args: &'static [Arg]) -> Observed {
    Observed { nr, name, always: false, args }
}

use Access::{Create, Exec, Lookup, Remove, Write};

#[rustfmt::skip]
pub static OBSERVED: &[Observed] = &[
    Observed { nr: libc::SYS_execve, name: "execve", always: true, args: &[cwd(0, Exec)] },
    Observed { nr: libc::SYS_execveat, name: "execveat", always: true, args: &[at(0, 1, Exec)] },
    obs(libc::SYS_open, "open", &[Arg::Path { dirfd: None, path: 0, how: How::Open(1) }]),
    obs(libc::SYS_openat, "openat", &[Arg::Path { dirfd: Some(0), path: 1, how: How::Open(2) }]),
    obs(libc::SYS_creat, "creat", &[cwd(0, Create)]),
    obs(libc::SYS_truncate, "truncate", &[cwd(0, Write)]),
    obs(libc::SYS_mkdir, "mkdir", &[cwd(0, Create)]),
    obs(libc::SYS_mkdirat, "mkdirat", &[at(0, 1, Create)]),
    obs(libc::SYS_mknod, "mknod", &[cwd(0, Create)]),
    obs(libc::SYS_mknodat, "mknodat", &[at(0, 1, Create)]),
    obs(libc::SYS_unlink, "unlink", &[cwd(0, Remove)]),
    obs(libc::SYS_unlinkat, "unlinkat", &[at(0, 1, Remove)]),
    obs(libc::SYS_rmdir, "rmdir", &[cwd(0, Remove)]),
    obs(libc::SYS_rename, "rename", &[cwd(0, Remove), cwd(1, Create)]),
    obs(libc::SYS_renameat, "renameat", &[at(0, 1, Remove), at(2, 3, Create)]),
    obs(libc::SYS_renameat2, "renameat2", &[at(0, 1, Remove), at(2, 3, Create)]),
    obs(libc::SYS_link, "link", &[cwd(0, Lookup), cwd(1, Create)]),
    obs(libc::SYS_linkat, "linkat", &[at(0, 1, Lookup), at(2, 3, Create)]),
    obs(libc::SYS_symlink, "symlink", &[cwd(1, Create)]),
    obs(libc::SYS_symlinkat, "symlinkat", &[at(1, 2, Create)]),
    obs(libc::SYS_stat, "stat", &[cwd(0, Lookup)]),
    obs(libc::SYS_lstat, "lstat", &[cwd(0, Lookup)]),
    obs(libc::SYS_newfstatat, "newfstatat", &[at(0, 1, Lookup)]),
    obs(libc::SYS_statx, "statx", &[at(0, 1, Lookup)]),
    obs(libc::SYS_access, "access", &[cwd(0, Lookup)]),
    obs(libc::SYS_faccessat, "faccessat", &[at(0, 1, Lookup)]),
    obs(libc::SYS_faccessat2, "faccessat2", &[at(0, 1, Lookup)]),
    obs(libc::SYS_readlink, "readlink", &[cwd(0, Lookup)]),
    obs(libc::SYS_readlinkat, "readlinkat", &[at(0, 1, Lookup)]),
    obs(libc::SYS_chdir, "chdir", &[cwd(0, Lookup)]),
    obs(libc::SYS_connect, "connect", &[Arg::Sock(Access::Connect)]),
    obs(libc::SYS_bind, "bind", &[Arg::Sock(Access::Bind)]),
];

/// The syscall numbers the filter sends to the broker to observe.
pub fn numbers(explain: bool) -> Vec<u32> {
    OBSERVED.iter().filter(|o| explain || o.always).map(|o| o.nr as u32).collect()
}

pub fn find(nr: i32) -> Option<&'static Observed> {
    OBSERVED.iter().find(|o| o.nr == nr as i64)
}

/// The refusals the view predicts for this call; empty when it will pass, or when what the
/// asker gave cannot be read (then the kernel fails it as it would anyway). `seen` gets each
/// path the call names, with what it asks (for `brig learn`).
pub fn judge(
    o: &Observed,
    n: &Notif,
    view: &View,
    seen: &mut dyn FnMut(&Path, Access),
) -> Vec<Refusal> {
    let mut out = Vec::new();
    for arg in o.args {
        let found = match *arg {
            Arg::Path { dirfd, path, how } => path_of(n, dirfd, path).and_then(|p| {
                let access = match how {
                    How::Is(a) => a,
                    How::Open(i) => open_access(n.args[i] as i32, || view.exists(&p)),
                };
                seen(&p, access);
                view.judge(o.name, &p, access, n.pid)
            }),
            Arg::Sock(access) => sock(o.name, n, access, view),
        };
        out.extend(found);
    }
    out
}

/// What `open` with these flags asks of its path.
fn open_access(flags: i32, exists: impl FnOnce() -> bool) -> Access {
    if flags & libc::O_PATH != 0 {
        return Lookup;
    }
    if flags & libc::O_CREAT != 0 && !exists() {
        return Create;
    }
    match flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
        true => Write,
        false => Access::Read,
    }
}

/// The absolute path (inside the prison) that args[path] names, if it can be read whole.
fn path_of(n: &Notif, dirfd: Option<usize>, path: usize) -> Option<PathBuf> {
    let raw = notify::read_cstr(n.pid, n.args[path], libc::PATH_MAX as usize - 1).ok()??;
    let p = PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(raw));
    if p.is_absolute() {
        return Some(p);
    }
    if p.as_os_str().is_empty() {
        return None; // AT_EMPTY_PATH: the fd itself, already open
    }
    // A relative path starts at the asker's cwd or directory fd, as the kernel shows them in
    // the prison's own namespace.
    let fd = dirfd.map_or(libc::AT_FDCWD, |i| n.args[i] as i32);
    let base = match fd {
        libc::AT_FDCWD => std::fs::read_link(format!("/proc/{}/cwd", n.pid)),
        fd => std::fs::read_link(format!("/proc/{}/fd/{fd}", n.pid)),
    }
    .ok()?;
    base.is_absolute().then(|| base.join(p))
}

/// A refusal of `connect` or `bind` on the socket args[0] to the address at args[1].
fn sock(name: &'static str, n: &Notif, access: Access, view: &View) -> Option<Refusal> {
    let (buf, got) = sockaddr(n)?;
    let addr = &buf[..got];
    let family = u16::from_ne_bytes([*addr.first()?, *addr.get(1)?]) as i32;
    if family == libc::AF_UNIX {
        let path = &addr[2..];
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        if end == 0 {
            return None; // abstract or unnamed: scoped by Landlock, nothing to grant
        }
        let p =
            Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&path[..end]));
        let a = if access == Access::Bind { Create } else { Lookup };
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::fs::read_link(format!("/proc/{}/cwd", n.pid)).ok()?.join(p)
        };
        return view.judge(name, &abs, a, n.pid);
    }
    let (ip, port) = inet(family, addr)?;
    let pidfd = notify::pidfd_open(n.pid).ok()?;
    let fd = notify::pidfd_getfd(pidfd.as_fd(), n.args[0] as u32 as i32).ok()?;
    let ty = brig_sys::net::getsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TYPE).ok()?;
    let target = match family {
        libc::AF_INET6 => format!("[{ip}]:{port}"),
        _ => format!("{ip}:{port}"),
    };
    let (layer, reason, fix) = match (ty, access) {
        (libc::SOCK_STREAM, Access::Bind) => (
            "landlock",
            "the prison may bind no TCP port".to_string(),
            format!("give it a listening socket with --listen NAME=tcp://{target}"),
        ),
        (libc::SOCK_STREAM, _) => (
            "landlock",
            "the prison may open no TCP connection itself".to_string(),
            format!("give it a connection with --connect NAME=tcp://{target}"),
        ),
        // libc's resolver: connect a datagram socket to the name server of /etc/resolv.conf
        // (127.0.0.1:53 when there is none).
        (libc::SOCK_DGRAM, Access::Connect) if port == 53 && !view.resolver => (
            "network",
            "the prison has no name server: no name resolves without --egress".to_string(),
            "let it reach a host by name with --egress HOST:PORT".to_string(),
        ),
        (_, Access::Connect) if !ip.is_loopback() && !ip.is_unspecified() => (
            "network",
            "the prison's network has only loopback".to_string(),
            "no flag sends UDP out of the prison".to_string(),
        ),
        _ => return None,
    };
    Some(Refusal { syscall: name, access, target, layer, reason, fix, count: 1 })
}

/// The socket address of `connect`/`bind(fd, addr, len)` (args[1], args[2]) as far as it can
/// be read, at most 128 bytes (a `sockaddr_storage`): the buffer and how much of it was read.
fn sockaddr(n: &Notif) -> Option<([u8; 128], usize)> {
    let mut addr = [0u8; 128];
    let len = (n.args[2] as u32 as usize).min(addr.len());
    let got = notify::read_mem(n.pid, n.args[1], &mut addr[..len]).ok()?;
    Some((addr, got))
}

/// The inet address `connect(fd, addr, len)` names, if it can be read.
pub fn inet_addr(n: &Notif) -> Option<std::net::SocketAddr> {
    let (addr, got) = sockaddr(n)?;
    let family = u16::from_ne_bytes([addr[0], addr[1]]) as i32;
    inet(family, &addr[..got]).map(|(ip, port)| std::net::SocketAddr::new(ip, port))
}

/// The address and port of a `sockaddr_in` or `sockaddr_in6`.
fn inet(family: i32, a: &[u8]) -> Option<(std::net::IpAddr, u16)> {
    let port = u16::from_be_bytes([*a.get(2)?, *a.get(3)?]);
    let ip = match family {
        libc::AF_INET => std::net::IpAddr::from(<[u8; 4]>::try_from(a.get(4..8)?).ok()?),
        libc::AF_INET6 => std::net::IpAddr::from(<[u8; 16]>::try_from(a.get(8..24)?).ok()?),
        _ => return None,
    };
    Some((ip, port))
}
