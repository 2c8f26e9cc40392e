//! What of brig and the host reaches the program (issue 7): pid 1's limits, scheduling and
//! command line, and the caller's kernel keys. Real prisons, as root and as an unprivileged uid.

mod common;
use common::*;

const AT_PID1: &str = "prlimit --pid 1 --cpu=1:1 && echo ESCAPED prlimit; \
    renice -n 19 -p 1 >/dev/null && echo ESCAPED renice; \
    taskset -p 1 1 >/dev/null && echo ESCAPED taskset; \
    renice -n 19 -u $(id -u) >/dev/null && echo ESCAPED renice-user; true";

/// Nothing the program does changes pid 1's limits or scheduling. Control: with `@init`
/// allowed the same calls work.
#[test]
fn pid1_is_out_of_reach() {
    for who in everyone() {
        let o = run(who, &["--", "sh", "-c", AT_PID1]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_blocked(&o, "pid 1");
        let o = run(who, &["--allow-syscalls", "@init", "--", "sh", "-c", AT_PID1]);
        assert_escaped(&o, "control: @init allowed");
    }
}

/// If pid 1 dies anyway (here killed from the host once the program runs), brig says the
/// program ran and was killed with it; it never reports a refusal (125).
#[test]
fn pid1_death_after_exec_is_not_a_refusal() {
    for who in everyone() {
        let child = command(who, &brig_bin(), &["run", "--", "sleep", "30"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("brig");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let children = format!("/proc/{0}/task/{0}/children", child.id());
        let pid1 = std::fs::read_to_string(&children).expect("children");
        let pid1: i32 = pid1.split_whitespace().next().expect("pid 1").parse().expect("pid");
        brig_sys::process::kill(pid1, libc::SIGKILL).expect("kill pid 1");
        let o = child.wait_with_output().expect("wait");
        assert_eq!(code(&o), 137, "{}", stderr(&o));
        assert!(stderr(&o).contains("after the program started"), "{}", stderr(&o));
    }
}

/// pid 1's command line (readable by the program) shows none of brig's arguments.
#[test]
fn pid1_command_line_is_blank() {
    for who in everyone() {
        let s = Scratch::new(who);
        let args = ["--env", "MARK=zq7secret", "--ro", s.s(), "--", "cat", "/proc/1/cmdline"];
        let o = run(who, &args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let text = stdout(&o);
        assert!(text.starts_with("brig-init"), "{text:?}");
        assert!(!text.contains("zq7secret") && !text.contains(s.s()), "{text:?}");
    }
}

/// The caller's keys: `/proc/keys` and `/proc/key-users` show nothing, and with seccomp knocked
/// out (`--best-effort`) the caller's session key still cannot be read (a fresh session
/// keyring). Control: the caller reads it on the host.
#[test]
fn host_keys_stay_out() {
    let read = "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); \
        b = ctypes.create_string_buffer(64); \
        n = libc.syscall(250, 11, int(os.environ['KEY']), b, 64); \
        print('ESCAPED', b.value) if n > 0 else print('refused', ctypes.get_errno())";
    let brig = brig_bin();
    let ko = knockout_bin();
    for who in everyone() {
        let script = format!(
            "k=$(keyctl add user brigkey s3cret @s) || exit 9; \
             keyctl print $k | grep -q s3cret && echo control-read; \
             {b} run -- cat /proc/keys /proc/key-users; \
             {ko} 317=38 -- {b} run --best-effort --env KEY=$k -- python3 -c \"{read}\"",
            b = brig.display(),
            ko = ko.display(),
        );
        let o = command(
            who,
            std::path::Path::new("/usr/bin/keyctl"),
            &["session", "-", "sh", "-c", &script],
        )
        .output()
        .expect("keyctl");
        let out = stdout(&o);
        assert!(out.contains("control-read"), "control: {out}\n{}", stderr(&o));
        assert!(!out.contains("brigkey"), "host key listed inside: {out}");
        assert!(out.contains("refused"), "{out}\n{}", stderr(&o));
        assert_blocked(&o, "host keys");
    }
}
