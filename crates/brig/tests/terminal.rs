//! The prison's own terminal, driven through a real terminal (tmux: send-keys, capture-pane):
//! job control, Ctrl-C, full-screen programs, resize, hang-up, and a program that attacks the
//! terminal it was given. Each runs as root and as the unprivileged uid. Signals without a
//! terminal are tested with plain pipes.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A tmux server of its own (one socket per test) running as `who`; killed on drop.
struct Tmux {
    who: Who,
    sock: String,
}

impl Tmux {
    /// A 100x30 session whose shell is bash with the prompt `outer$ `.
    fn new(who: Who, s: &Scratch) -> Tmux {
        let t = Tmux { who, sock: s.sub("tmux.sock") };
        let ok = t
            .tmux(&["new-session", "-d", "-x", "100", "-y", "30", "env PS1='outer$ ' bash --norc"])
            .status
            .success();
        assert!(ok, "tmux did not start");
        t.wait_for("outer$", |s| s.contains("outer$"));
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        let mut a = vec!["-S", &self.sock];
        a.extend_from_slice(args);
        command(self.who, std::path::Path::new("/usr/bin/tmux"), &a)
            .env("TERM", "xterm")
            .output()
            .expect("run tmux")
    }

    /// Types `text` and presses Enter.
    fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
        self.tmux(&["send-keys", "Enter"]);
    }

    /// Presses keys by tmux name (C-c, C-z, Escape).
    fn key(&self, k: &str) {
        self.tmux(&["send-keys", k]);
    }

    fn screen(&self) -> String {
        stdout(&self.tmux(&["capture-pane", "-p"]))
    }

    fn value(&self, format: &str) -> String {
        stdout(&self.tmux(&["display", "-p", format])).trim().to_string()
    }

    /// Waits up to 10 s for the screen to satisfy `ok`; returns the screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `cmd` in the outer shell on a cleared screen and waits until it prints `want`.
    fn outer(&self, cmd: &str, want: &str) -> String {
        self.line("clear");
        self.wait_for("clear", |s| s.trim() == "outer$");
        self.line(cmd);
        self.wait_for(want, |s| s.contains(want))
    }

    /// Waits until the last non-blank line is the outer shell's prompt.
    fn back_outside(&self) -> String {
        self.wait_for("outer prompt", |s| {
            s.lines().rev().find(|l| !l.trim().is_empty()).is_some_and(|l| l.trim() == "outer$")
        })
    }

    /// The outer shell's terminal is in normal (cooked) mode with echo, on the normal screen.
    fn assert_sane(&self) {
        let s = self.outer("stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo -e isig | sort | tr '\\n' ,; echo ':''end'", ":end");
        assert!(s.contains("echo,icanon,isig,:end"), "terminal left changed:\n{s}");
        assert_eq!(self.value("#{alternate_on}"), "0", "left on the alternate screen");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

fn brig_line(args: &str) -> String {
    format!("{} run {args}", brig_bin().display())
}

/// Processes whose command line contains `needle` (pgrep -f).
fn running(needle: &str) -> bool {
    let o = Command::new("pgrep").args(["-f", needle]).output().expect("pgrep");
    o.status.success()
}

#[test]
fn interactive_bash_has_job_control_ctrl_c_resize_and_exits_cleanly() {
    for who in everyone() {
        let s = Scratch::new(who);
        let t = Tmux::new(who, &s);
        t.line(&brig_line("--env 'PS1=prison$ ' -- bash --norc -i"));
        t.wait_for("prison prompt", |s| s.contains("prison$"));
        t.line("tty; echo $$");
        let scr = t.wait_for("tty", |s| s.contains("/dev/pts/"));
        assert!(scr.contains("/dev/pts/0"), "the prison's own pty: {scr}");
        assert!(!scr.contains("no job control"), "{scr}");
        t.line("sleep 31 &");
        t.wait_for("job 1", |s| s.contains("[1]"));
        t.line("jobs");
        t.wait_for("running job", |s| s.contains("Running"));
        t.line("fg");
        t.wait_for("fg", |s| s.lines().any(|l| l.trim() == "sleep 31"));
        t.key("C-z");
        t.wait_for("stopped job", |s| s.contains("Stopped"));
        t.line("kill %1; clear");
        // Ctrl-C stops the foreground job within a second; the shell survives.
        t.line("sleep 100; echo after");
        std::thread::sleep(Duration::from_millis(300));
        let at = Instant::now();
        t.key("C-c");
        t.line("echo survived");
        let scr = t.wait_for("survived", |s| s.lines().any(|l| l == "survived"));
        assert!(at.elapsed() < Duration::from_secs(2), "{:?}", at.elapsed());
        assert!(!scr.contains("\nafter"), "{scr}");
        // The pty follows the window size.
        t.tmux(&["resize-window", "-x", "77", "-y", "21"]);
        std::thread::sleep(Duration::from_millis(300));
        t.line("stty size");
        t.wait_for("new size", |s| s.contains("21 77"));
        t.line("exit");
        t.back_outside();
        t.assert_sane();
    }
}

#[test]
fn full_screen_programs_work_and_a_wall_kill_leaves_the_terminal_sane() {
    for who in everyone() {
        let s = Scratch::new(who);
        let t = Tmux::new(who, &s);
        // vim edits a granted file.
        t.line(&brig_line(&format!("--rw {}:/w -- vim -u NONE -n /w/note.txt", s.s())));
        t.wait_for("vim", |s| s.contains("[New File]"));
        t.tmux(&["send-keys", "-l", "ihello from vim"]);
        t.key("Escape");
        t.line(":wq");
        t.back_outside();
        let text = std::fs::read_to_string(s.join("note.txt")).expect("vim wrote the file");
        assert_eq!(text, "hello from vim\n");
        t.assert_sane();
        // less reads its keys from /dev/tty (stdin is a pipe): the prison's terminal.
        t.line(&format!("seq 1 500 | {}", brig_line("-- less")));
        t.wait_for("less", |s| s.lines().next() == Some("1") && s.contains("29"));
        t.key("G");
        t.wait_for("end of input", |s| s.contains("500"));
        t.key("q");
        t.back_outside();
        t.assert_sane();
        // Killed at its wall time in the middle of full-screen vim.
        t.line(&brig_line("--wall 2s -- vim -u NONE -n"));
        t.wait_for("vim", |s| s.lines().filter(|l| l.trim() == "~").count() > 5);
        t.wait_for("wall message", |s| s.contains("wall-time limit (2s) reached"));
        t.assert_sane();
    }
}

#[test]
fn ctrl_c_at_the_terminal_ends_a_shell_command_and_make_within_a_second() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("Makefile", "all:\n\tsleep 100\n\techo after\n");
        let t = Tmux::new(who, &s);
        for cmd in
            ["-- sh -c 'sleep 100; echo after'", &format!("--ro {}:/w --chdir /w -- make", s.s())]
        {
            t.outer(&format!("{}; echo \"r\"\"c=$?\"", brig_line(cmd)), "sleep 100");
            std::thread::sleep(Duration::from_millis(500));
            let at = Instant::now();
            t.key("C-c");
            let scr = t.wait_for("brig's exit", |s| s.contains("rc="));
            assert!(at.elapsed() < Duration::from_secs(1), "{cmd}: {:?}", at.elapsed());
            assert!(!scr.lines().any(|l| l == "after"), "{cmd}: {scr}");
            assert!(scr.contains("rc=130") || scr.contains("rc=2"), "{cmd}: {scr}");
        }
        t.assert_sane();
    }
}

#[test]
fn closing_the_terminal_ends_the_prison() {
    for (i, who) in everyone().into_iter().enumerate() {
        let s = Scratch::new(who);
        let t = Tmux::new(who, &s);
        // One program dies of the SIGHUP; one ignores it and is killed after the grace.
        let plain = format!("sleep 1{i}41");
        let stubborn = format!("sleep 1{i}42");
        t.line(&format!(
            "{} & {}",
            brig_line(&format!("-- {plain}")),
            brig_line(&format!("-- sh -c 'trap \"\" HUP; {stubborn}'"))
        ));
        std::thread::sleep(Duration::from_millis(800));
        assert!(running(&plain) && running(&stubborn), "{}", t.screen());
        let at = Instant::now();
        drop(t);
        while running(&plain) || running(&stubborn) {
            assert!(at.elapsed() < Duration::from_secs(4), "the prison outlived its terminal");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The probe inside tries to break the terminal it holds: a line discipline that swallows all
/// output (TIOCSETD N_NULL), no echo and no line editing (TCSETS), input injection (TIOCSTI).
const ATTACK: &str = "import fcntl, struct, termios
for fd in (0, 1, 2):
    a = termios.tcgetattr(fd)
    a[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG)
    termios.tcsetattr(fd, termios.TCSANOW, a)
print('attacked', flush=True)
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b'x')
    except OSError:
        pass
    fcntl.ioctl(fd, termios.TIOCSETD, struct.pack('i', 27))
";

#[test]
fn a_program_cannot_change_the_callers_terminal() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("attack.py", ATTACK);
        let t = Tmux::new(who, &s);
        let attack = |pty: &str| {
            t.outer(
                &format!(
                    "{}; echo \"r\"\"c=$?\"",
                    brig_line(&format!("{pty} --ro {}:/w -- python3 /w/attack.py", s.s()))
                ),
                "rc=",
            )
        };
        let scr = attack("");
        assert!(scr.contains("attacked") && scr.contains("rc=0"), "{scr}");
        t.assert_sane();
        let ldisc = t.outer("python3 -c 'import fcntl,termios,struct; print(\"ldisc\", struct.unpack(\"i\", fcntl.ioctl(0, termios.TIOCGETD, b\"0000\"))[0])'", "ldisc ");
        assert!(ldisc.contains("ldisc 0"), "{ldisc}");
        // Control: with the caller's own terminal (--pty never) the same probe breaks it, so
        // this test would see the attack succeed.
        t.line(&format!(
            "{}; echo \"r\"\"c=$?\"",
            brig_line(&format!("--pty never --ro {}:/w -- python3 /w/attack.py", s.s()))
        ));
        std::thread::sleep(Duration::from_millis(1500));
        t.line("echo still-here");
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !t.screen().contains("\nstill-here"),
            "the control attack did not take: {}",
            t.screen()
        );
    }
}

#[test]
fn redirected_stdio_passes_through_untouched_beside_a_terminal() {
    for who in everyone() {
        let s = Scratch::new(who);
        let t = Tmux::new(who, &s);
        // stdin is the terminal (it becomes the prison's pty); stdout and stderr are files.
        let (out, err) = (s.sub("out.txt"), s.sub("err.txt"));
        let cmd = brig_line("-- sh -c 'tty; echo out; echo err >&2; printf \"a\\nb\"'");
        t.outer(&format!("{cmd} > {out} 2> {err}; echo \"r\"\"c=$?\""), "rc=0");
        assert_eq!(std::fs::read_to_string(&out).expect("out"), "/dev/pts/0\nout\na\nb");
        assert_eq!(std::fs::read_to_string(&err).expect("err"), "err\n");
    }
}

#[test]
fn a_reader_that_stops_does_not_stop_wall_time() {
    for who in everyone() {
        // The program floods its terminal; brig's stdout is a pipe nobody reads.
        let mut child =
            command(who, &brig_bin(), &["run", "--pty", "always", "--wall", "2s", "--", "yes"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
        let at = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            assert!(at.elapsed() < Duration::from_secs(6), "the wall time did not hold");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(124));
    }
}

#[test]
fn the_clipboard_and_terminal_strings_do_not_pass_and_modes_are_reset() {
    for who in everyone() {
        let o = run(
            who,
            &[
                "--pty",
                "always",
                "--",
                "printf",
                "\\033]52;c;Y3VybCBldmls\\007ok\\033Ptmux;x\\033\\\\\\033[?1049h\\033[?25l",
            ],
        );
        let out = stdout(&o);
        assert!(out.starts_with("ok\x1b[?1049h\x1b[?25l"), "{out:?}");
        assert!(!out.contains("]52") && !out.contains("tmux;"), "{out:?}");
        assert!(out.contains("\x1b[?1049l") && out.contains("\x1b[?25h"), "not reset: {out:?}");
        // Written the ways a terminal still reads as a clipboard write: after an ESC that
        // cancels a CSI, as a UTF-8 C1 control, with a leading zero.
        for sneaky in
            ["\\033[\\033]52;c;eA==\\007", "\\302\\23552;c;eA==\\007", "\\033]052;c;eA==\\007"]
        {
            let o = run(who, &["--pty", "always", "--", "printf", &format!("a{sneaky}b")]);
            let out = stdout(&o);
            assert!(
                out.starts_with('a') && out.contains('b') && !out.contains("52;"),
                "{sneaky}: {out:?}"
            );
        }
    }
}

/// Spawns `brig run ARGS` with piped stdio (no terminal) as `who`.
fn spawn(who: Who, args: &[&str]) -> Child {
    let mut a = vec!["run"];
    a.extend_from_slice(args);
    command(who, &brig_bin(), &a)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

#[test]
fn without_a_terminal_signals_reach_the_whole_foreground_group() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("Makefile", "all:\n\tsleep 100\n\techo after\n");
        let dir = format!("{}:/w", s.s());
        let cases: [(&[&str], &str); 4] = [
            (&["--", "sh", "-c", "sleep 100; echo after"], "INT"),
            (&["--", "sh", "-c", "sleep 100; echo after"], "TERM"),
            (&["--", "sh", "-c", "sleep 100; echo after"], "HUP"),
            (&["--ro", &dir, "--chdir", "/w", "--", "make"], "INT"),
        ];
        for (args, sig) in cases {
            let child = spawn(who, args);
            std::thread::sleep(Duration::from_millis(700));
            let at = Instant::now();
            let pid = child.id().to_string();
            assert!(Command::new("kill").args(["-s", sig, &pid]).status().expect("kill").success());
            let o = child.wait_with_output().expect("wait");
            assert!(at.elapsed() < Duration::from_secs(1), "{args:?} {sig}: {:?}", at.elapsed());
            assert!(!stdout(&o).contains("after"), "{args:?} {sig}: {}", stdout(&o));
            assert_ne!(code(&o), 0, "{args:?} {sig}");
        }
    }
}

#[test]
fn pty_modes_and_ptys_inside() {
    for who in everyone() {
        // auto without a terminal: stdio passes through untouched.
        let o = run(who, &["--", "sh", "-c", "tty; echo out; echo err >&2"]);
        assert_eq!(stdout(&o), "not a tty\nout\n", "{}", stderr(&o));
        assert_eq!(stderr(&o), "err\n");
        // always: a terminal even under pipes; stdin is relayed into it.
        let mut c = command(
            who,
            &brig_bin(),
            &["run", "--pty", "always", "--", "sh", "-c", "tty; read x; echo got $x"],
        );
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(b"hello\n").expect("write");
        let o = child.wait_with_output().expect("wait");
        let out = stdout(&o);
        assert!(out.contains("/dev/pts/0") && out.contains("got hello"), "{out}");
        // The prison has its own /dev/pts and /dev/ptmx: script(1) and Python's pty work.
        let o = run(who, &["--", "script", "-qc", "tty", "/dev/null"]);
        assert!(stdout(&o).contains("/dev/pts/"), "{} {}", stdout(&o), stderr(&o));
        let o = run(who, &["--", "python3", "-c", "import os, pty; pid, fd = pty.fork()\nif pid == 0: os.execvp('tty', ['tty'])\nprint(os.read(fd, 100))"]);
        assert!(stdout(&o).contains("/dev/pts/"), "{} {}", stdout(&o), stderr(&o));
        // A bad mode names the flag and the choices.
        let o = run(who, &["--pty", "sometimes", "--", "true"]);
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("--pty") && stderr(&o).contains("\"always\""),
            "{}",
            stderr(&o)
        );
    }
}
