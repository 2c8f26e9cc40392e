//! brig-vmm (docs/vmm.md) on the real /dev/kvm: brig-guest boots with its devices in their own
//! prisons and in-process, its blk pattern lands in the image, a device process killed mid-run
//! is contained, and each device's prison holds only what it was given. As root and as the test
//! uid (who gets /dev/kvm as an fd, since only root may open it here).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use common::*;

/// brig-guest, built for bare metal into the tests' own target directory.
fn guest() -> &'static Path {
    static GUEST: OnceLock<PathBuf> = OnceLock::new();
    GUEST.get_or_init(|| {
        let target = brig_bin().ancestors().nth(3).expect("target dir").join("guest");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../brig-guest");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--release", "--quiet", "--target-dir"])
            .arg(&target)
            .current_dir(&src)
            .status()
            .expect("run cargo for brig-guest");
        assert!(st.success(), "building brig-guest failed (scripts/deps installs its target)");
        target.join("x86_64-unknown-none/release/brig-guest")
    })
}

/// brig-vmm and the guest copied where `who` (and the device prisons' uid) can read them.
fn install_vmm(s: &Scratch, who: Who) -> (String, String) {
    let src = brig_bin().with_file_name("brig-vmm");
    let bin = s.join("bin/brig-vmm");
    std::fs::create_dir_all(bin.parent().expect("bin")).expect("mkdir bin");
    std::fs::copy(&src, &bin).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    std::fs::copy(guest(), s.join("bin/brig-guest")).expect("copy the guest");
    s.own(who);
    (bin.to_str().expect("utf-8").into(), s.sub("bin/brig-guest"))
}

/// A 1 MiB image of `byte`s, owned by `who`.
fn image(s: &Scratch, who: Who, name: &str, byte: u8) -> String {
    std::fs::write(s.join(name), vec![byte; 1 << 20]).expect("image");
    s.own(who);
    s.sub(name)
}

/// `brig-vmm ARGS` as `who`: root opens /dev/kvm itself; the test uid starts in its delegated
/// cgroup (the device prisons' --mem needs one) with /dev/kvm at fd 3 (`--kvm-fd 3`).
fn vmm(who: Who, bin: &str, args: &[&str]) -> Command {
    let mut c = match who {
        Who::Root => command(Who::Root, Path::new(bin), args),
        Who::User(uid) => {
            let mut script = String::new();
            for d in delegated(who).expect("a delegated cgroup for the test uid (run as root)") {
                script.push_str(&format!("echo $$ > {}/cgroup.procs && ", d.display()));
            }
            script.push_str(&format!(
                "exec setpriv --reuid={uid} --regid={uid} --clear-groups \"$@\" --kvm-fd 3 3</dev/kvm"
            ));
            let mut a = vec!["-c", &script, "sh", bin];
            a.extend_from_slice(args);
            command_outside_cgroup(Who::Root, Path::new("/bin/sh"), &a)
        }
    };
    c.env("BRIG", brig_bin());
    c
}

fn checklist(who: Who, devices: &str) -> (Output, Scratch) {
    let s = Scratch::new(who);
    let (bin, g) = install_vmm(&s, who);
    let (rw, ro) = (image(&s, who, "rw.img", 0), image(&s, who, "ro.img", 0x5a));
    let args = ["--guest", &g, "--rng", "1", "--blk", &rw, "--blk-ro", &ro, "--devices", devices];
    let o = vmm(who, &bin, &args).output().expect("run brig-vmm");
    (o, s)
}

#[track_caller]
fn assert_checklist_passed(o: &Output, s: &Scratch, what: &str) {
    let (out, err) = (stdout(o), stderr(o));
    assert_eq!(code(o), 0, "{what}: exit status\nstdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("BRIG-GUEST-DONE ok=12 failed=0"),
        "{what}: stdout:\n{out}\nstderr:\n{err}"
    );
    for line in ["ok rng0: not all equal", "ok blk0: read it back", "ok blk1: a write is refused"] {
        assert!(out.contains(line), "{what}: no {line:?} in\n{out}");
    }
    // The host sees the guest's pattern in the read-write image, and the read-only one intact.
    let rw = std::fs::read(s.join("rw.img")).expect("rw image");
    for sector in 0..brig_vmm_abi::PATTERN_SECTORS {
        for i in 0..512 {
            let at = sector as usize * 512 + i;
            assert_eq!(rw[at], brig_vmm_abi::pattern_byte(sector, i), "{what}: rw.img byte {at}");
        }
    }
    assert!(rw[(brig_vmm_abi::PATTERN_SECTORS as usize) * 512..].iter().all(|b| *b == 0), "{what}");
    let ro = std::fs::read(s.join("ro.img")).expect("ro image");
    assert!(ro.iter().all(|b| *b == 0x5a), "{what}: the read-only image changed");
    // Every device counted its refusals: the read past the end, the write to the read-only disk.
    assert!(err.contains("blk0: served") && err.contains("(past-end 1)"), "{what}: {err}");
    assert!(err.contains("(past-end 1, read-only 1)"), "{what}: {err}");
}

#[test]
fn the_guest_passes_its_checklist_with_each_device_in_its_own_prison() {
    for who in everyone() {
        let (o, s) = checklist(who, "process");
        assert_checklist_passed(&o, &s, &format!("{who:?}, devices in prisons"));
    }
}

#[test]
fn the_guest_passes_its_checklist_with_devices_in_process() {
    for who in everyone() {
        let (o, s) = checklist(who, "in-process");
        assert_checklist_passed(&o, &s, &format!("{who:?}, devices in-process"));
    }
}

#[test]
fn entropy_differs_from_boot_to_boot() {
    let who = everyone()[0];
    let draw = || {
        let (o, _s) = checklist(who, "process");
        let out = stdout(&o);
        let line = out.lines().find(|l| l.starts_with("rng0: entropy")).map(str::to_string);
        line.unwrap_or_else(|| panic!("no entropy line:\n{out}\n{}", stderr(&o)))
    };
    assert_ne!(draw(), draw());
}

/// Host pids of `root`'s descendants whose command line has `word`.
fn descendants_with(root: u32, word: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmd).split('\0').any(|a| a == word) {
            continue;
        }
        if is_ancestor(root, pid) {
            found.push(pid);
        }
    }
    found
}

fn is_ancestor(a: u32, mut p: u32) -> bool {
    while p > 1 {
        p = brig_sys::process::parent(p as i32).map(|x| x as u32).unwrap_or(1);
        if p == a {
            return true;
        }
    }
    false
}

/// The host pid of the program inside device `word`'s prison under `vmm` (its brig supervisor
/// has the same words in its command line; the program is below it).
fn device_program(vmm: u32, word: &str) -> u32 {
    let pids = descendants_with(vmm, word);
    let inner = pids.iter().find(|p| pids.iter().any(|a| a != *p && is_ancestor(*a, **p)));
    *inner.unwrap_or_else(|| panic!("no {word} program under brig-vmm among {pids:?}"))
}

/// Starts a soak run (rng0 and blk0, `rounds` rounds) and returns once the guest has begun it.
fn soak(who: Who, s: &Scratch, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let (bin, g) = install_vmm(s, who);
    let rw = image(s, who, "rw.img", 0);
    let err = std::fs::File::create(s.join("stderr")).expect("stderr file");
    let mut all = vec!["--guest", &g, "--rng", "1", "--blk", &rw];
    all.extend_from_slice(args);
    let mut child =
        vmm(who, &bin, &all).stdout(Stdio::piped()).stderr(err).spawn().expect("spawn brig-vmm");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while out.read_line(&mut line).expect("read") > 0 && !line.contains("soak: ") {}
    assert!(line.contains("soak: "), "the guest never began its soak");
    (child, out)
}

/// A soak (with `args`) whose blk process is killed with SIGKILL once it has begun, and then
/// each replacement, `kills` times in all: the guest's output after that, the launcher's
/// stderr, its exit status. No process of the run is left afterwards.
fn kill_blk_mid_soak(who: Who, args: &[&str], kills: u32) -> (Option<i32>, String, String) {
    let s = Scratch::new(who);
    let (mut child, mut out) = soak(who, &s, args);
    for k in 0..kills {
        if k > 0 {
            // Wait for replacement k (the VMM notices the death at the guest's next Status read).
            let said = format!("(restart {k})");
            let t = std::time::Instant::now();
            while !std::fs::read_to_string(s.join("stderr")).unwrap_or_default().contains(&said) {
                assert!(t.elapsed() < std::time::Duration::from_secs(20), "{who:?}: no {said}");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let blk = device_program(child.id(), "virtio-blk");
        let _ = Command::new("kill").args(["-KILL", &blk.to_string()]).status();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    let status = child.wait().expect("wait");
    let err = std::fs::read_to_string(s.join("stderr")).unwrap_or_default();
    let ours = s.sub("bin/brig-vmm");
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&ours))
        .collect();
    assert!(left.is_empty(), "{who:?}: processes left behind: {left:?}");
    (status.code(), rest, err)
}

#[test]
fn a_device_process_killed_mid_run_is_contained() {
    for who in everyone() {
        let (status, rest, err) = kill_blk_mid_soak(who, &["--arg", "3000"], 1);
        let what = format!("{who:?}\nstdout:\n{rest}\nstderr:\n{err}");
        assert_eq!(status, Some(0), "{what}");
        assert!(
            rest.contains("soak: blk0 failed at round") && rest.contains("DEVICE_NEEDS_RESET"),
            "{what}"
        );
        assert!(rest.contains("soak: done, 1 rng and 0 blk devices answered to the end"), "{what}");
        assert!(rest.contains("BRIG-GUEST-DONE ok="), "{what}");
        assert!(err.contains("device blk0 failed"), "{what}");
        assert!(
            err.contains("rng0: served 3002,"),
            "rng0 served the checklist and every round: {what}"
        );
    }
}

#[test]
fn a_killed_device_is_replaced_with_its_queue_state() {
    for who in everyone() {
        let (status, rest, err) = kill_blk_mid_soak(who, &["--arg", "3000", "--restart", "1"], 1);
        let what = format!("{who:?}\nstdout:\n{rest}\nstderr:\n{err}");
        assert_eq!(status, Some(0), "{what}");
        // The guest never saw the failure: its request in flight was served by the replacement.
        assert!(!rest.contains("failed at round"), "{what}");
        assert!(rest.contains("soak: done, 1 rng and 1 blk devices answered to the end"), "{what}");
        assert!(
            err.contains("device blk0 failed") && err.contains("replaced, with its queue state"),
            "{what}"
        );
        assert!(err.contains("(restarted 1 times"), "{what}");
    }
}

#[test]
fn a_device_is_replaced_no_more_often_than_allowed() {
    for who in everyone() {
        // --restart 1, two deaths: the launcher grants one replacement, then the device fails.
        let (status, rest, err) = kill_blk_mid_soak(who, &["--arg", "20000", "--restart", "1"], 2);
        let what = format!("{who:?}\nstdout:\n{rest}\nstderr:\n{err}");
        assert_eq!(status, Some(0), "{what}");
        assert!(err.contains("(restart 1)") && !err.contains("(restart 2)"), "{what}");
        assert!(err.contains("the guest sees it as failed"), "{what}");
        assert!(
            rest.contains("soak: blk0 failed at round") && rest.contains("DEVICE_NEEDS_RESET"),
            "{what}"
        );
        assert!(rest.contains("soak: done, 1 rng and 0 blk devices answered to the end"), "{what}");
    }
}

fn status_field(pid: u32, key: &str) -> String {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    st.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_default()
}

fn ns(pid: u32, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap_or_default()
}

/// What each fd of `pid` beyond stdio is (its link target).
fn fds(pid: u32) -> Vec<String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fd dir");
    let mut v: Vec<String> = dir
        .flatten()
        .filter(|e| {
            e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n > 2)
        })
        .map(|e| std::fs::read_link(e.path()).unwrap_or_default().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn each_prison_holds_only_what_it_was_given() {
    // Reading another process's fd table needs root; the launcher runs as root and as the uid.
    if everyone()[0] != Who::Root {
        panic!("this test reads the prisons' /proc entries and must run as root");
    }
    for who in everyone() {
        prison_holds_only_what_it_was_given(who);
    }
}

fn prison_holds_only_what_it_was_given(who: Who) {
    let s = Scratch::new(who);
    let (mut child, mut out) = soak(who, &s, &["--arg", "2000"]);
    let vmm = child.id();
    let (r, b) = (device_program(vmm, "virtio-rng"), device_program(vmm, "virtio-blk"));
    let machine = device_program(vmm, "vmm");
    for (pid, name) in [(r, "rng"), (b, "blk"), (machine, "the VMM")] {
        let uid = status_field(pid, "Uid:");
        assert!(!uid.starts_with("0\t") && !uid.is_empty(), "{name} runs as host uid {uid:?}");
        assert_eq!(status_field(pid, "NoNewPrivs:"), "1", "{name}");
        assert_eq!(status_field(pid, "Seccomp:"), "2", "{name}");
        assert_eq!(status_field(pid, "CapEff:"), "0000000000000000", "{name}");
        for kind in ["user", "mnt", "pid", "net", "ipc"] {
            assert_ne!(ns(pid, kind), ns(vmm, kind), "{name} shares the VMM's {kind} namespace");
        }
    }
    for kind in ["user", "mnt", "pid", "net"] {
        assert_ne!(ns(r, kind), ns(b, kind), "the two devices share a {kind} namespace");
    }
    // Beyond stdio: its channel, guest memory, its ioeventfd; and for blk its image.
    let rng_fds = fds(r);
    let blk_fds = fds(b);
    // The VMM: /dev/kvm and what KVM made from it, guest memory, the ioeventfds, its channels
    // and the guest's ELF, which it read: nothing that names a place in a filesystem but those.
    let vmm_fds = fds(machine);
    for t in &vmm_fds {
        let known = [
            "socket:",
            "anon_inode:kvm-vm",
            "anon_inode:kvm-vcpu",
            "anon_inode:[eventfd]",
            "/dev/kvm",
            "/memfd:brig-vmm guest",
        ];
        assert!(
            known.iter().any(|k| t.starts_with(k)) || t.ends_with("/bin/brig-guest"),
            "the VMM holds {t} (all: {vmm_fds:?})"
        );
    }
    assert!(vmm_fds.iter().any(|t| t.starts_with("anon_inode:kvm-vcpu")), "{vmm_fds:?}");
    let _ = child.kill();
    let _ = child.wait();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let kinds = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|t| match t {
                t if t.starts_with("socket:") => "socket".into(),
                t if t.starts_with("/memfd:brig-vmm guest") => "guest memory".into(),
                t if t.contains("eventfd") => "eventfd".into(),
                t if t.starts_with("/dev/pts") || t.starts_with("pipe:") || t == "/dev/null" => {
                    "stdio".into()
                }
                t => t.clone(),
            })
            .collect()
    };
    let (rk, bk) = (kinds(&rng_fds), kinds(&blk_fds));
    let strange: Vec<&String> = rk
        .iter()
        .filter(|k| !["socket", "guest memory", "eventfd"].contains(&k.as_str()))
        .collect();
    assert!(strange.is_empty(), "rng holds {strange:?} (all: {rng_fds:?})");
    assert!(
        rk.contains(&"guest memory".to_string()) && rk.contains(&"eventfd".to_string()),
        "{rng_fds:?}"
    );
    let strange: Vec<&String> = bk
        .iter()
        .filter(|k| !["socket", "guest memory", "eventfd"].contains(&k.as_str()))
        .collect();
    assert_eq!(strange.len(), 1, "blk holds only its image beyond the rest: {blk_fds:?}");
    assert!(strange[0].ends_with("rw.img"), "{blk_fds:?}");
}

#[test]
fn bad_input_is_refused_with_the_step_and_operand() {
    let who = everyone()[0];
    let s = Scratch::new(who);
    let (bin, g) = install_vmm(&s, who);
    let not_elf = s.write("not-elf", "#!/bin/sh\n");
    s.own(who);
    let missing = s.sub("missing.img");
    for (args, says) in [
        (vec!["--guest", s.sub("nope").as_str()], "open the guest"),
        (vec!["--guest", not_elf.to_str().unwrap()], "cannot load the guest ELF"),
        (vec!["--guest", &g, "--blk", &missing], "open the image"),
    ] {
        let o = vmm(who, &bin, &args).output().expect("run");
        assert_eq!(code(&o), 125, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

/// `kind count` pairs from a stats line's parenthesis: `(loop 1, overlap 2)`.
fn refusals(stats: &str) -> std::collections::BTreeMap<String, u64> {
    let inner = stats.split_once('(').map(|(_, r)| r.trim_end_matches(')')).unwrap_or("");
    inner
        .split(", ")
        .filter_map(|kv| kv.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse().expect("a count")))
        .collect()
}

#[test]
fn a_hostile_guest_is_refused_and_counted_and_every_device_lives() {
    for who in everyone() {
        for devices in ["process", "in-process"] {
            let s = Scratch::new(who);
            let (bin, g) = install_vmm(&s, who);
            let (rw, ro) = (image(&s, who, "rw.img", 0), image(&s, who, "ro.img", 0x5a));
            let args =
                ["--guest", &g, "--rng", "1", "--blk", &rw, "--blk-ro", &ro, "--mode", "hostile"];
            let mut c = vmm(who, &bin, &args);
            let o = c.args(["--devices", devices]).output().expect("run brig-vmm");
            let (out, err) = (stdout(&o), stderr(&o));
            let what = format!("{who:?}, {devices}\nstdout:\n{out}\nstderr:\n{err}");
            assert_eq!(code(&o), 0, "{what}");
            assert!(out.contains(" failed=0") && out.contains("BRIG-GUEST-DONE"), "{what}");
            for name in ["rng0", "blk0", "blk1"] {
                // What the guest says it did to this device, by the refusal each attack expects.
                let mut want = std::collections::BTreeMap::<String, u64>::new();
                let prefix = format!("hostile: {name}: ");
                let attacks: Vec<&str> =
                    out.lines().filter_map(|l| l.strip_prefix(&prefix)).collect();
                for kind in attacks.iter().filter_map(|l| l.rsplit_once(" -> ")).map(|(_, k)| k) {
                    if kind != "none" {
                        *want.entry(kind.to_string()).or_default() += 1;
                    }
                }
                assert!(want.values().sum::<u64>() >= 25, "{name}: too few attacks: {what}");
                let line =
                    err.lines().find(|l| l.starts_with(&format!("brig-vmm: {name}: served")));
                let got = refusals(line.unwrap_or_else(|| panic!("no stats for {name}: {what}")));
                assert_eq!(got, want, "{name}: what the device counted vs what was done: {what}");
                assert!(out.contains(&format!("{name}: alive after")), "{name} untouched: {what}");
            }
            assert!(std::fs::read(s.join("ro.img")).expect("ro").iter().all(|b| *b == 0x5a));
        }
    }
}

#[test]
fn a_compromised_device_or_vmm_is_refused_by_its_prison() {
    for who in everyone() {
        for target in ["blk0", "rng0", "vmm"] {
            let s = Scratch::new(who);
            let (bin, g) = install_vmm(&s, who);
            let rw = image(&s, who, "rw.img", 0);
            let args = ["--guest", &g, "--rng", "1", "--blk", &rw, "--compromised", target];
            let o = vmm(who, &bin, &args).output().expect("run brig-vmm");
            let (out, err) = (stdout(&o), stderr(&o));
            let what = format!("{who:?}, {target}\nstdout:\n{out}\nstderr:\n{err}");
            let probes: Vec<&str> =
                err.lines().filter(|l| l.starts_with("compromised: ")).collect();
            let (control, probes): (Vec<&str>, Vec<&str>) =
                probes.into_iter().partition(|l| l.contains(": control: "));
            // The VMM also tries KVM beyond running its vCPU: another VM.
            let n = if target == "vmm" { 14 } else { 13 };
            assert_eq!(probes.len(), n, "every probe ran: {what}");
            assert!(probes.iter().all(|p| p.contains(": refused (")), "{what}");
            for p in ["open /etc/passwd", "connect to", "kill -1", "map guest memory a second"] {
                assert!(probes.iter().any(|l| l.contains(p)), "no {p:?} probe: {what}");
            }
            // The control: the process's own kind of mapping still works under the same filters.
            assert_eq!(control.len(), 1, "{what}");
            assert!(control[0].ends_with(": allowed"), "{what}");
            // It still serves: the hook ran in the device or VMM, not instead of it.
            assert_eq!(code(&o), 0, "{what}");
            assert!(out.contains("BRIG-GUEST-DONE ok=8 failed=0"), "{what}");
        }
    }
}

#[test]
fn each_prison_has_an_allow_list_of_at_most_30_syscalls_without_open() {
    let s = Scratch::new(Who::Root);
    let (bin, _) = install_vmm(&s, Who::Root);
    let o = Command::new(&bin).arg("--print-policy").output().expect("run brig-vmm");
    let out = stdout(&o);
    for prison in ["the VMM", "virtio-rng", "virtio-blk"] {
        let line = out.lines().find(|l| l.starts_with(prison)).unwrap_or_else(|| panic!("{out}"));
        let (head, list) = line.split_once("): ").expect("a list");
        let n: usize = head
            .rsplit_once('(')
            .expect("a count")
            .1
            .trim_end_matches(" syscalls")
            .parse()
            .expect("n");
        let names: Vec<&str> = list.split(' ').collect();
        assert_eq!(names.len(), n, "{line}");
        assert!(n <= 30, "{prison}: {n} syscalls");
        assert!(
            !names.iter().any(|s| s.contains("open") || *s == "socket" || *s == "kill"),
            "{line}"
        );
    }
    assert!(out.contains("MAP_SHARED or PROT_EXEC"), "{out}");
}
