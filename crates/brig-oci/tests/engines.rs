//! Engines driving brig-oci: podman (`--runtime`), rootful and rootless, and containerd (`ctr
//! run --runc-binary`) run containers of an image imported from a busybox rootfs; the container
//! is in brig's prison (rootful: its uid map is brig's range, 0x6FFF0000 + 64K, not runc's
//! identity; rootless: a user namespace of brig's below podman's); exit codes come back; `run
//! -d`, `exec` (with and without `-t`), `pause`/`unpause` and `update` (rootful) and `stop` work; `-t` reaches
//! the container's terminal through the console socket; podman's `--uidmap` gives a writable
//! root, a plain volume is not id-mapped and `:idmap` is; a config brig cannot enforce fails
//! closed with brig's reason in the engine's output.
//! This machine's hard RLIMIT_NOFILE cannot be raised (no CAP_SYS_RESOURCE in the bounding set),
//! which podman's default ulimits ask for with any runtime, so the rootful podman runs set their
//! ulimits.
//!
//! Needs podman and containerd (scripts/deps installs them) and root: the rootless runs are
//! podman as the test uid (BRIG_TEST_UID, default 1000) with a HOME of their own.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BRIG: &str = env!("CARGO_BIN_EXE_brig-oci");
const ULIMITS: [&str; 4] = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

/// A seccomp profile brig cannot enforce: NOTIFY needs a listener, and brig connects none.
const NOTIFY: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["uname"],"action":"SCMP_ACT_NOTIFY"}]}"#;

fn root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let o: Output =
        cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/deps installs it)"));
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.code(), s(&o.stdout), s(&o.stderr))
}

/// podman as root, or as the test uid with a HOME and XDG_RUNTIME_DIR of its own (its store,
/// and the pause process that holds its user namespace, are removed on drop).
struct Podman(Option<PathBuf>);

impl Podman {
    fn rootless() -> Podman {
        let home = std::env::temp_dir().join(format!("brig-oci-rootless-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(home.join("run")).expect("mkdir");
        common::chown(&home, common::test_uid());
        Podman(Some(home))
    }

    fn cmd(&self) -> Command {
        let Some(home) = &self.0 else { return Command::new("podman") };
        let u = common::test_uid();
        let mut c = Command::new("setpriv");
        c.args([format!("--reuid={u}"), format!("--regid={u}"), "--clear-groups".into()]);
        c.env("HOME", home).env("XDG_RUNTIME_DIR", home.join("run")).arg("podman");
        c
    }

    /// `podman --runtime brig-oci ARGS`.
    fn brig(&self, args: &[&str]) -> (Option<i32>, String, String) {
        run(self.cmd().args(["--runtime", BRIG]).args(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let Some(home) = &self.0 else { return };
        let pause = home.join("run/libpod/tmp/pause.pid");
        if let Some(pid) =
            std::fs::read_to_string(pause).ok().and_then(|p| p.trim().parse::<i32>().ok())
        {
            let _ = Command::new("kill").args(["-KILL", &format!("{pid}")]).status();
        }
        let _ = std::fs::remove_dir_all(home);
    }
}

/// A busybox image in podman's store, removed on drop.
struct Image<'a>(String, PathBuf, &'a Podman);

impl<'a> Image<'a> {
    fn new(podman: &'a Podman, name: &str) -> Image<'a> {
        let dir = std::env::temp_dir().join(format!("brig-oci-img-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["bin", "proc", "dev", "sys", "tmp", "etc", "run"] {
            std::fs::create_dir_all(dir.join("rootfs").join(sub)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", dir.join("rootfs/bin/busybox")).expect("busybox-static");
        for applet in ["sh", "echo", "cat", "id", "touch", "sleep", "true"] {
            std::os::unix::fs::symlink("busybox", dir.join("rootfs/bin").join(applet)).expect("ln");
        }
        let tag = format!("localhost/brig-oci-test-{}-{name}:latest", std::process::id());
        let tar = dir.join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(dir.join("rootfs"))
            .args(["-cf"])
            .arg(&tar)
            .arg(".")
            .status();
        assert!(ok.expect("tar").success());
        let (code, _, e) = run(podman.cmd().arg("import").arg(&tar).arg(&tag));
        assert_eq!(code, Some(0), "podman import: {e}");
        Image(tag, dir, podman)
    }
}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        let _ = self.2.cmd().args(["rmi", "-f", &self.0]).output();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn podman(args: &[&str]) -> (Option<i32>, String, String) {
    let mut c = Command::new("podman");
    c.args(["--runtime", BRIG, "run", "--rm", "--network", "none"]).args(ULIMITS).args(args);
    run(&mut c)
}

#[test]
fn podman_runs_containers_in_brig() {
    if !root() {
        return;
    }
    let rootful = Podman(None);
    let img = Image::new(&rootful, "podman");
    let i = img.0.as_str();
    let (code, out, err) = podman(&[i, "sh", "-c", "echo hello; id -u; cat /proc/self/uid_map"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines, [vec!["hello"], vec!["0"], vec!["0", "1878982656", "65536"]], "{err}");
    let (code, ..) = podman(&[i, "sh", "-c", "exit 7"]);
    assert_eq!(code, Some(7), "the program's exit status");
    // -t: the terminal's master reaches conmon through the console socket.
    let (code, out, err) = podman(&["-t", i, "sh", "-c", "tty; echo on-the-pty"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("/dev/pts/0\r\non-the-pty"), "{out:?}\n{err}");
    // Without a user-namespace range the image (root's, on overlayfs, which cannot be
    // id-mapped) is not writable by the container's uid (host 65534); with --uidmap it is.
    let (_, out, _) = podman(&[i, "sh", "-c", "touch /x && echo WROTE"]);
    assert!(!out.contains("WROTE"), "root's overlay written as uid 65534: {out}");
    let map = ["--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536"];
    let mut args: Vec<&str> = map.to_vec();
    args.extend([i, "sh", "-c", "touch /x && echo WROTE; cat /proc/self/uid_map"]);
    let (code, out, err) = podman(&args);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("WROTE"), "{out}\n{err}");
    let line: Vec<&str> = out.lines().last().unwrap_or("").split_whitespace().collect();
    assert_eq!(line, ["0", "300000", "65536"], "{out}");
    // A volume: a plain one is not id-mapped (the container's root is not host root there and
    // cannot write a root-owned directory); `:idmap` is, and what it writes is host root's.
    let vol = img.1.join("vol");
    std::fs::create_dir(&vol).expect("mkdir"); // root's, 0755
    for (opt, wrote) in [("", false), (":idmap", true)] {
        let v = format!("{}:/data{opt}", vol.display());
        let (_, out, err) = podman(&["-v", &v, i, "sh", "-c", "touch /data/f && echo WROTE"]);
        assert_eq!(out.contains("WROTE"), wrote, "-v {v}: {out}\n{err}");
    }
    let owner = std::fs::metadata(vol.join("f")).expect("written through :idmap");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&owner), 0, "host root's");
    // run -d, exec (plain and -t), stop: the detached container gets TERM from stop.
    let name = format!("brig-oci-test-{}", std::process::id());
    let mut c = Command::new("podman");
    c.args(["--runtime", BRIG, "run", "-d", "--name", &name, "--network", "none"]).args(ULIMITS);
    c.args([i, "sh", "-c", "trap 'echo got-TERM; exit 0' TERM; sleep 60 & wait"]);
    let (code, _, err) = run(&mut c);
    assert_eq!(code, Some(0), "run -d: {err}");
    let exec = |extra: &[&str]| {
        let mut c = Command::new("podman");
        c.args(["--runtime", BRIG, "exec"]).args(extra).arg(&name).args([
            "sh",
            "-c",
            "tty; echo pid=$$",
        ]);
        run(&mut c)
    };
    let (code, out, err) = exec(&[]);
    assert_eq!(code, Some(0), "exec: {out}\n{err}");
    assert!(out.contains("not a tty") && out.contains("pid="), "{out}\n{err}");
    let (code, out, err) = exec(&["-t"]);
    assert_eq!(code, Some(0), "exec -t: {out}\n{err}");
    assert!(out.contains("/dev/pts/"), "{out:?}\n{err}");
    for verb in ["pause", "unpause"] {
        let (code, _, err) = run(Command::new("podman").args(["--runtime", BRIG, verb, &name]));
        assert_eq!(code, Some(0), "{verb}: {err}");
    }
    // update: podman's new memory limit lands in the container's cgroup.
    let (code, _, err) =
        run(Command::new("podman").args(["--runtime", BRIG, "update", "--memory", "64m", &name]));
    assert_eq!(code, Some(0), "update: {err}");
    let (_, pid, _) = run(Command::new("podman").args(["inspect", "-f", "{{.State.Pid}}", &name]));
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap_or_default();
    let mem = cg.lines().find_map(|l| l.split_once(":memory:").map(|x| x.1));
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{}/memory.limit_in_bytes",
        mem.unwrap_or("/-")
    ));
    assert_eq!(limit.unwrap_or_default().trim(), "67108864", "{cg}");
    let (code, _, err) =
        run(Command::new("podman").args(["--runtime", BRIG, "stop", "-t", "5", &name]));
    assert_eq!(code, Some(0), "stop: {err}");
    let (_, logs, _) = run(Command::new("podman").args(["--runtime", BRIG, "logs", &name]));
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();
    assert!(logs.contains("got-TERM"), "stop did not reach the program: {logs}");
    // Fail closed: a seccomp profile with NOTIFY (brig connects no listener) is refused, and
    // podman shows brig's reason.
    let profile = img.1.join("notify.json");
    std::fs::write(&profile, NOTIFY).expect("profile");
    let opt = format!("seccomp={}", profile.display());
    let (code, out, err) = podman(&["--security-opt", &opt, i, "echo", "RAN"]);
    assert!(code != Some(0) && !out.contains("RAN"), "{out}\n{err}");
    assert!(err.contains("SCMP_ACT_NOTIFY needs a listener"), "{err}");
}

#[test]
fn rootless_podman_runs_containers_in_brig() {
    if !root() {
        return;
    }
    let podman = Podman::rootless();
    let img = Image::new(&podman, "rootless");
    let i = img.0.as_str();
    let none = ["run", "--rm", "--network", "none"];
    let run_in = |args: &[&str]| podman.brig(&[&none[..], args].concat());
    // The container's root is podman's (the test uid on the host), in a user namespace of
    // brig's below podman's own.
    let probe = "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user";
    let (code, out, err) = run_in(&[i, "sh", "-c", probe]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (_, engine_ns, _) = run(podman.cmd().args(["unshare", "readlink", "/proc/self/ns/user"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"0"), "{out}\n{err}");
    assert_eq!(lines.get(1).map(|l| l.split_whitespace().collect()), Some(vec!["0", "0", "1"]));
    assert!(engine_ns.starts_with("user:["), "podman unshare: {engine_ns}");
    assert_ne!(lines.get(2).copied(), Some(engine_ns.trim()), "no user namespace of brig's");
    let (code, ..) = run_in(&[i, "sh", "-c", "exit 7"]);
    assert_eq!(code, Some(7), "the program's exit status");
    let (code, out, err) = run_in(&["-t", i, "sh", "-c", "tty; echo on-the-pty"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("/dev/pts/0\r\non-the-pty"), "{out:?}\n{err}");
    // run -d, exec (plain and -t), stop.
    let name = format!("brig-oci-rootless-{}", std::process::id());
    let script = "trap 'echo got-TERM; exit 0' TERM; sleep 60 & wait";
    let (code, _, err) =
        podman.brig(&["run", "-d", "--name", &name, "--network", "none", i, "sh", "-c", script]);
    assert_eq!(code, Some(0), "run -d: {err}");
    let (code, out, err) = podman.brig(&["exec", &name, "sh", "-c", "tty; echo pid=$$"]);
    assert_eq!(code, Some(0), "exec: {out}\n{err}");
    assert!(out.contains("not a tty") && out.contains("pid="), "{out}\n{err}");
    let (code, out, err) = podman.brig(&["exec", "-t", &name, "sh", "-c", "tty"]);
    assert_eq!(code, Some(0), "exec -t: {out}\n{err}");
    assert!(out.contains("/dev/pts/"), "{out:?}\n{err}");
    let (code, _, err) = podman.brig(&["stop", "-t", "5", &name]);
    assert_eq!(code, Some(0), "stop: {err}");
    let (_, logs, _) = podman.brig(&["logs", &name]);
    let _ = podman.brig(&["rm", "-f", &name]);
    assert!(logs.contains("got-TERM"), "stop did not reach the program: {logs}");
    // Fail closed, with brig's reason in podman's output.
    let profile = img.1.join("notify.json");
    std::fs::write(&profile, NOTIFY).expect("profile");
    common::chown(&profile, common::test_uid());
    let opt = format!("seccomp={}", profile.display());
    let (code, out, err) = run_in(&["--security-opt", &opt, i, "echo", "RAN"]);
    assert!(code != Some(0) && !out.contains("RAN"), "{out}\n{err}");
    assert!(err.contains("SCMP_ACT_NOTIFY needs a listener"), "{err}");
}

/// A private containerd, stopped on drop.
struct Containerd(std::process::Child, PathBuf);

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn ctr(sock: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    run(Command::new("ctr").arg("-a").arg(sock).args(args))
}

#[test]
fn containerd_runs_containers_in_brig() {
    if !root() {
        return;
    }
    let podman = Podman(None);
    let img = Image::new(&podman, "ctr");
    let dir = std::env::temp_dir().join(format!("brig-oci-ctrd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let sock = dir.join("sock");
    let child = Command::new("containerd")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--state")
        .arg(dir.join("state"))
        .arg("--address")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("containerd (scripts/deps installs it)");
    let _d = Containerd(child, dir.clone());
    let up = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        ctr(&sock, &["version"]).0 == Some(0)
    });
    assert!(up, "containerd did not come up");
    let archive = dir.join("image.tar");
    let (code, _, e) = run(Command::new("podman")
        .args(["save", "--format", "oci-archive", "-o"])
        .arg(&archive)
        .arg(&img.0));
    assert_eq!(code, Some(0), "podman save: {e}");
    let base = img.0.trim_end_matches(":latest");
    let (code, _, e) =
        ctr(&sock, &["image", "import", "--base-name", base, archive.to_str().unwrap()]);
    assert_eq!(code, Some(0), "ctr import: {e}");
    let script = "echo hello; cat /proc/self/uid_map";
    let (code, out, err) =
        ctr(&sock, &["run", "--rm", "--runc-binary", BRIG, &img.0, "c1", "sh", "-c", script]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines, [vec!["hello"], vec!["0", "1878982656", "65536"]], "{err}");
    let (code, ..) =
        ctr(&sock, &["run", "--rm", "--runc-binary", BRIG, &img.0, "c2", "sh", "-c", "exit 5"]);
    assert_eq!(code, Some(5), "the program's exit status");
}
