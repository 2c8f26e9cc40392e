//! Shared helpers for the integration tests: every test drives the real `brig` binary, which
//! builds a real prison on the real kernel. As root, each scenario runs twice: as root and as an
//! unprivileged uid (BRIG_TEST_UID, default 1000).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn brig_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_brig"))
}

/// The knockout helper (crates/brig/examples/knockout.rs), built by `cargo test`.
pub fn knockout_bin() -> PathBuf {
    let exe = brig_bin();
    let dir = exe.parent().expect("target dir");
    dir.join("examples/knockout")
}

/// Who runs brig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Root,
    User(u32),
}

pub fn test_uid() -> u32 {
    std::env::var("BRIG_TEST_UID").ok().and_then(|s| s.parse().ok()).unwrap_or(1000)
}

/// Root and an unprivileged uid when the tests run as root; only ourselves otherwise.
pub fn everyone() -> Vec<Who> {
    let me = unsafe_free_uid();
    if me == 0 {
        vec![Who::Root, Who::User(test_uid())]
    } else {
        vec![Who::User(me)]
    }
}

fn unsafe_free_uid() -> u32 {
    brig_sys::process::ids().0
}

/// `program ARGS` as `who`. As root, the unprivileged uid starts in the cgroup delegated to it
/// (see [`delegated`]), as a login session does under systemd.
pub fn command(who: Who, program: &Path, args: &[&str]) -> Command {
    match (who, delegated(who)) {
        (Who::User(_), Some(dirs)) => {
            let mut script = String::new();
            for d in dirs {
                script.push_str(&format!("echo $$ > {}/cgroup.procs && ", d.display()));
            }
            script.push_str("exec \"$@\"");
            let mut a = vec!["-c", &script, "sh", program.to_str().expect("utf-8 path")];
            a.extend_from_slice(args);
            command_outside_cgroup(who, Path::new("/bin/sh"), &a)
        }
        _ => command_outside_cgroup(who, program, args),
    }
}

/// `program ARGS` as `who`, in the test's own cgroup (not delegated to the uid).
pub fn command_outside_cgroup(who: Who, program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args).stdin(Stdio::null()).env_remove("BRIG_SECRET");
    if let Who::User(uid) = who {
        if unsafe_free_uid() == 0 {
            c.uid(uid).gid(uid);
        }
    }
    c.current_dir("/");
    c
}

/// The v1 memory and pids cgroups delegated to `who` (made by root under the tests' own
/// cgroups, owned by the uid, kept for later runs): where an unprivileged brig can make its
/// cgroup. None for root, when the tests do not run as root, or on a host without v1 memory.
pub fn delegated(who: Who) -> Option<Vec<PathBuf>> {
    static DIRS: std::sync::OnceLock<Option<Vec<PathBuf>>> = std::sync::OnceLock::new();
    let Who::User(uid) = who else { return None };
    if unsafe_free_uid() != 0 {
        return None;
    }
    let make = || -> Option<Vec<PathBuf>> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let mut dirs = Vec::new();
        for ctrl in ["memory", "pids"] {
            let rel = own.lines().find_map(|l| {
                let mut it = l.splitn(3, ':').skip(1);
                let ctrls = it.next()?;
                ctrls.split(',').any(|c| c == ctrl).then(|| it.next())?
            })?;
            let dir = Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join(rel.trim_start_matches('/'))
                .join(format!("brig-test-deleg-{uid}"));
            let _ = std::fs::create_dir(&dir);
            for f in ["", "cgroup.procs", "tasks"] {
                std::os::unix::fs::chown(dir.join(f), Some(uid), Some(uid)).ok()?;
            }
            dirs.push(dir);
        }
        Some(dirs)
    };
    DIRS.get_or_init(make).clone()
}

/// Whether `--mem` works for `who` here (root, or a delegated cgroup). Where it cannot (the tests
/// run unprivileged outside one), checks that brig refuses it (125) instead, and says so.
pub fn mem_limit_works(who: Who) -> bool {
    if who == Who::Root || delegated(who).is_some() {
        return true;
    }
    let o = run(who, &["--mem", "64MiB", "--", "true"]);
    if code(&o) == 0 {
        return true;
    }
    assert_eq!(code(&o), 125, "--mem neither works nor is refused: {}", stderr(&o));
    assert!(stderr(&o).contains("--mem needs a memory cgroup"), "{}", stderr(&o));
    eprintln!("{who:?}: no memory cgroup here; checked that --mem is refused");
    false
}

/// `brig ARGS...` as `who`.
pub fn brig(who: Who, args: &[&str]) -> Output {
    command(who, &brig_bin(), args).output().expect("spawn brig")
}

/// `brig run ARGS...` as `who`.
pub fn run(who: Who, args: &[&str]) -> Output {
    let mut a = vec!["run"];
    a.extend_from_slice(args);
    brig(who, &a)
}

/// `knockout RULES -- brig run --best-effort ARGS...` as `who`: brig on a kernel without a layer.
pub fn run_knocked_out(who: Who, rules: &[&str], args: &[&str]) -> Output {
    let mut a: Vec<&str> = rules.to_vec();
    let b = brig_bin();
    a.push("--");
    a.push(b.to_str().expect("utf-8 path"));
    a.push("run");
    a.push("--best-effort");
    a.extend_from_slice(args);
    command(who, &knockout_bin(), &a).output().expect("spawn knockout")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A scratch directory on the host, writable by `who`, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(who: Who) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("brig-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("scratch");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let s = Scratch { path };
        s.own(who);
        s
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    pub fn s(&self) -> &str {
        self.path.to_str().expect("utf-8 scratch path")
    }

    pub fn sub(&self, p: &str) -> String {
        self.join(p).to_str().expect("utf-8").to_string()
    }

    /// Gives the tree to `who` (as root, for the unprivileged runs; to nobody for root's runs,
    /// since a root-run prison is uid 65534 on the host).
    pub fn own(&self, who: Who) {
        let uid = match who {
            Who::Root => 65534,
            Who::User(u) => u,
        };
        if unsafe_free_uid() == 0 {
            let _ = Command::new("chown").args(["-R", &format!("{uid}:{uid}"), self.s()]).status();
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Asserts the probe did not escape, with the whole output on failure.
#[track_caller]
pub fn assert_blocked(o: &Output, what: &str) {
    let out = stdout(o);
    assert!(
        !out.contains("ESCAPED"),
        "{what}: the probe escaped\nstatus {:?}\nstdout:\n{out}\nstderr:\n{}",
        o.status,
        stderr(o)
    );
}

/// Asserts the probe escaped: used for the control runs with a layer switched off, to show the
/// negative test can fail.
#[track_caller]
pub fn assert_escaped(o: &Output, what: &str) {
    let out = stdout(o);
    assert!(
        out.contains("ESCAPED"),
        "{what}: the control run did not escape, so the negative test proves nothing\nstatus {:?}\nstdout:\n{out}\nstderr:\n{}",
        o.status,
        stderr(o)
    );
}

// Capability probes (crates/brig-caps/examples/capprobe.rs) in real prisons.

pub const EACCES: i32 = libc::EACCES;
pub const EPERM: i32 = libc::EPERM;

/// Copies an example binary (built by `cargo test`) into the scratch tree, where `who` can
/// execute it, and returns its path.
pub fn install(s: &Scratch, who: Who, name: &str) -> String {
    let src = brig_bin().parent().expect("target dir").join("examples").join(name);
    let dest = s.join(&format!("bin/{name}"));
    std::fs::create_dir_all(dest.parent().expect("bin")).expect("mkdir bin");
    std::fs::copy(&src, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    s.own(who);
    dest.to_str().expect("utf-8").to_string()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Runs capprobe in a prison with `args` (capability flags) and `steps`; returns its lines.
pub fn probe(who: Who, s: &Scratch, args: &[&str], enter: bool, steps: &[&str]) -> Vec<String> {
    let bin = install(s, who, "capprobe");
    let mut a: Vec<&str> = vec!["--rx", &bin];
    a.extend_from_slice(args);
    a.extend(["--", &bin]);
    if enter {
        a.push("--enter");
    }
    a.extend_from_slice(steps);
    let o = run(who, &a);
    assert_eq!(code(&o), 0, "capprobe failed\n{}\n{}", stdout(&o), stderr(&o));
    stdout(&o).lines().map(String::from).collect()
}

/// The result of `step` in capprobe's output: "ok..." or "errno N".
pub fn result<'a>(lines: &'a [String], step: &str) -> &'a str {
    let prefix = format!("{step} => ");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no result for {step} in {lines:#?}"))
}

#[track_caller]
pub fn refused(lines: &[String], step: &str, errno: i32) {
    assert_eq!(result(lines, step), format!("errno {errno}"), "{step}\n{lines:#?}");
}

#[track_caller]
pub fn allowed(lines: &[String], step: &str) {
    assert!(result(lines, step).starts_with("ok"), "{step} should work\n{lines:#?}");
}
