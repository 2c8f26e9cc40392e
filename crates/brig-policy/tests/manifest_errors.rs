//! Every manifest error names the file, the line and column of the offending value (or key),
//! the problem, and a fix. One case per validation, with its exact text.

use std::path::Path;

use brig_policy::manifest::{EnvValue, FsEntry, Net};
use brig_policy::{Manifest, PolicyError, Rights};

const RIGHTS: &str = "use letters from r, w, x, c (e.g. \"r\" or \"rwc\")";
const DURATION: &str = "use a number with ms, s, m or h (e.g. 30s, 500ms, 1.5s, 2m)";
const SIZE: &str = "use a number with K, M, G, KiB, MiB or GiB (e.g. 256MiB)";
const COUNT: &str = "use a whole number from 1 to 1073741824 (e.g. 64)";
const TYPE: &str = "write the value as the type expected";
const SPELLING: &str = "remove it or fix the spelling";
const SYNTAX: &str =
    "fix the TOML syntax here (strings in double quotes, tables as [name], one key = value per line)";

fn error(text: &str) -> String {
    match Manifest::parse(Path::new("site.toml"), text) {
        Err(e @ PolicyError::Manifest { .. }) => e.to_string(),
        other => panic!("expected a manifest error for {text:?}, got {other:?}"),
    }
}

#[track_caller]
fn refused(text: &str, at: &str, message: &str, hint: &str) {
    assert_eq!(error(text), format!("site.toml:{at}: {message}; {hint}"), "for {text:?}");
}

#[test]
fn the_example_from_the_design() {
    refused(
        "[program]\npath = \"/bin/true\"\n\n[fs]\n\"/x\" = \"r\"\n\n\"/site\" = { from = \"./s\", rights = \"rq\" }\n",
        "7:36",
        "unknown right `q` in \"rq\"",
        RIGHTS,
    );
}

#[test]
fn rights() {
    let or_tmpfs = format!("{RIGHTS}, or \"tmpfs\" (\"tmpfs:x\" to run programs from it)");
    refused("[fs]\n\"/a\" = \"rq\"\n", "2:8", "unknown right `q` in \"rq\"", &or_tmpfs);
    refused("[fs]\n\"/a\" = \"\"\n", "2:8", "no rights given", &or_tmpfs);
    refused(
        "[fs]\n\"/a\" = \"rr\"\n",
        "2:8",
        "right `r` given twice in \"rr\"",
        "give each letter once (e.g. \"rwc\"), or \"tmpfs\" (\"tmpfs:x\" to run programs from it)",
    );
    refused("[fs]\n\"/a\" = { rights = \"R\" }\n", "2:19", "unknown right `R` in \"R\"", RIGHTS);
    refused("[fs]\n\"/a\" = { from = \"/x\" }\n", "2:8", "missing field `rights`", "add it");
}

#[test]
fn fs_keys_and_sources() {
    let abs = "paths inside the prison start with / (e.g. \"/data\")";
    refused("[fs]\n\"relative\" = \"r\"\n", "2:1", "\"relative\" is not an absolute path", abs);
    refused("[fs]\n\"\" = \"r\"\n", "2:1", "\"\" is not an absolute path", abs);
    refused(
        "[fs]\n  \"/a/../b\" = \"r\"\n",
        "2:3",
        "\"/a/../b\" contains \"..\"",
        "write the path inside the prison without \"..\"",
    );
    refused("[fs]\n\"/a\\u0000\" = \"r\"\n", "2:1", "\"/a\\0\" contains a NUL byte", "remove it");
    refused(
        "[fs]\n\"/a\" = 3\n",
        "2:8",
        "invalid type: integer `3`, expected \"tmpfs\", rights such as \"rwc\", or { from = \"PATH\", rights = \"r\" }",
        TYPE,
    );
    refused(
        "[fs]\n\"/a\" = { from = \"/x\", rights = \"r\", mode = 1 }\n",
        "2:37",
        "unknown field `mode`, expected `from` or `rights`",
        SPELLING,
    );
    refused(
        "[fs]\n\"/a\" = { from = \"~/x\", rights = \"r\" }\n",
        "2:17",
        "\"~/x\" starts with ~, which brig does not expand",
        "write the full path, or a path relative to the manifest's directory",
    );
    refused(
        "[fs]\n\"/a\" = { from = \"\", rights = \"r\" }\n",
        "2:17",
        "the path is empty",
        "give a host path (e.g. ./build)",
    );
    refused(
        "[fs]\n\"/a\" = \"r\"\n\"/b\" = \"tmpfs\"\n\"/a/\" = \"rw\"\n",
        "4:1",
        "\"/a\" is given twice in [fs] (first at line 2)",
        "keep one of the two entries",
    );
    refused("fs = []\n", "1:6", "invalid type: array, expected a table", TYPE);
}

#[test]
fn program() {
    refused(
        "[program]\npath = \"/bin/true\"\nbogus = 1\n",
        "3:1",
        "unknown field `bogus`, expected one of `path`, `args`, `chdir`, `pty`",
        SPELLING,
    );
    refused(
        "[program]\npath = \"/bin/true\"\npty = \"sometimes\"\n",
        "3:7",
        "terminal mode \"sometimes\" does not exist",
        "use \"auto\" (a private terminal when stdio is one), \"always\" or \"never\"",
    );
    refused(
        "[program]\npath = 1\n",
        "2:8",
        "invalid type: integer `1`, expected the program's path",
        TYPE,
    );
    refused(
        "[program]\npath = \"\"\n",
        "2:8",
        "the program path is empty",
        "give one (e.g. \"/bin/sh\")",
    );
    refused(
        "[program]\nargs = [\"a\"]\n",
        "2:8",
        "[program] has args but no path",
        "add path = \"...\" or remove args",
    );
    refused(
        "[program]\npath = \"x\"\nargs = [\"a\", 1]\n",
        "3:14",
        "invalid type: integer `1`, expected a string",
        TYPE,
    );
    refused(
        "[program]\npath = \"x\"\nchdir = \"rel\"\n",
        "3:9",
        "\"rel\" is not an absolute path",
        "paths inside the prison start with / (e.g. \"/data\")",
    );
    refused(
        "program = 3\n",
        "1:11",
        "invalid type: integer `3`, expected a [program] table with path, args and chdir",
        TYPE,
    );
}

#[test]
fn limits() {
    refused(
        "[limits]\nwall = \"ten seconds\"\n",
        "2:8",
        "\"ten seconds\" is not a duration",
        DURATION,
    );
    refused("[limits]\ncpu = \"3w\"\n", "2:7", "unknown duration unit \"w\" in \"3w\"", DURATION);
    refused(
        "[limits]\nwall = 0\n",
        "2:8",
        "\"0\" is zero (or less than a nanosecond)",
        "give a positive duration (e.g. 30s), or leave the limit out for none",
    );
    refused("[limits]\nmemory = \"12XB\"\n", "2:10", "unknown size unit \"XB\"", SIZE);
    refused(
        "[limits]\ntmp = \"0MiB\"\n",
        "2:7",
        "\"0MiB\" is zero bytes",
        "give a positive size (e.g. 256MiB), or leave the limit out for none",
    );
    refused("[limits]\nprocesses = 0\n", "2:13", "\"0\" is zero", COUNT);
    refused("[limits]\nprocesses = -3\n", "2:13", "\"-3\" is negative", COUNT);
    refused("[limits]\nnofile = 1.5\n", "2:10", "\"1.5\" is not a whole number", COUNT);
    refused(
        "[limits]\nnofile = true\n",
        "2:10",
        "invalid type: boolean `true`, expected a whole number such as 64",
        TYPE,
    );
    refused(
        "[limits]\nwalltime = \"1s\"\n",
        "2:1",
        "unknown field `walltime`, expected one of `wall`, `cpu`, `memory`, `processes`, `fsize`, `nofile`, `tmp`",
        SPELLING,
    );
    // Columns count characters, not bytes.
    refused("# ü\n\n   [limits]\n   cpu = \"üü\"\n", "4:10", "\"üü\" is not a duration", DURATION);
}

#[test]
fn env() {
    let name = "use letters, digits and _, not starting with a digit (e.g. MY_VAR)";
    refused(
        "[env]\n\"1BAD\" = \"x\"\n",
        "2:1",
        "\"1BAD\" is not a valid environment variable name",
        name,
    );
    refused(
        "[env]\n\"A=B\" = \"x\"\n",
        "2:1",
        "\"A=B\" is not a valid environment variable name",
        name,
    );
    refused(
        "[env]\nA = false\n",
        "2:5",
        "false is not an environment value",
        "remove the line to leave the variable out, or write a string",
    );
    refused("[env]\nA = \"\\u0000\"\n", "2:5", "\"\\0\" contains a NUL byte", "remove it");
    refused(
        "[env]\nA = [1]\n",
        "2:5",
        "invalid type: array, expected a string, or true to pass the host's value through",
        TYPE,
    );
}

#[test]
fn sandbox_and_net() {
    refused(
        "[net]\nmode = \"host\"\n",
        "2:8",
        "network mode \"host\" does not exist",
        "only \"none\" (a private network namespace with loopback only) exists; reach the outside with egress = [\"HOST:PORT\"] or listen and connect capabilities",
    );
    refused(
        "[net]\nports = 1\n",
        "2:1",
        "unknown field `ports`, expected `mode` or `egress`",
        SPELLING,
    );
    refused(
        "[net]\negress = [\"api.example.org:443\", \"1.2.3.4:80\"]\n",
        "2:34",
        "\"1.2.3.4:80\" is an address, not a host name",
        "name the host (the broker checks the name and pins the address it resolves), or hand over a connection with --connect NAME=tcp://ADDR:PORT",
    );
    refused(
        "[net]\n\"a\\u001fb\" = 1\n",
        "2:1",
        "unknown field `a\\u{1f}b`, expected `mode` or `egress`",
        SPELLING,
    );
    refused(
        "[sandbox]\nsystem = \"yes\"\n",
        "2:10",
        "invalid type: string \"yes\", expected a boolean",
        TYPE,
    );
    refused(
        "[sandbox]\nallow_syscalls = [\"@debug\", \"\"]\n",
        "2:29",
        "\"\" is not a syscall or group name",
        "give one name per string (e.g. \"@debug\" or \"ptrace\")",
    );
    refused(
        "[sandbox]\ndeny_syscalls = \"bpf\"\n",
        "2:17",
        "invalid type: string \"bpf\", expected an array",
        TYPE,
    );
}

#[test]
fn capabilities() {
    refused(
        "[caps.x]\nkind = \"pipe\"\n",
        "2:8",
        "capability kind \"pipe\" does not exist",
        "use \"dir\", \"file\", \"listen\", \"connect\" or \"data\"",
    );
    refused(
        "[caps.\"a b\"]\nkind = \"dir\"\n",
        "1:7",
        "\"a b\" is not a capability name",
        "use 1 to 64 letters, digits, _ and - (e.g. \"site\")",
    );
    refused(
        "[caps.site]\nkind = \"dir\"\n",
        "2:8",
        "a dir capability needs `path`",
        "add path = ... to [caps.site]",
    );
    refused(
        "[caps.h]\nkind = \"listen\"\naddress = \"tcp://x:1\"\nrights = \"r\"\n",
        "4:10",
        "`rights` does not apply to a listen capability",
        "remove it from [caps.h]",
    );
    refused(
        "[caps.h]\nkind = \"connect\"\naddress = \"tcp://x:0\"\n",
        "3:11",
        "\"tcp://x:0\" connects to port 0",
        "give the server's port",
    );
    refused(
        "[caps.h]\nkind = \"connect\"\naddress = \"http://x\"\n",
        "3:11",
        "\"http://x\" is not a socket address",
        "write tcp://HOST:PORT (e.g. tcp://127.0.0.1:8080) or unix:PATH",
    );
    refused(
        "[caps.f]\nkind = \"file\"\npath = \"f\"\nmode = \"rw\"\n",
        "4:8",
        "file mode \"rw\" does not exist",
        "use \"read\", \"write\", \"append\" or \"create\"",
    );
    refused(
        "[caps.stdout]\nkind = \"dir\"\npath = \"d\"\n",
        "1:7",
        "a dir capability cannot be stdout",
        "stdin takes a file (mode read), data or connect capability; stdout and stderr a file \
         (write, append or create) or connect capability",
    );
    refused(
        "[sandbox]\nmode = \"strict\"\n",
        "2:8",
        "sandbox mode \"strict\" does not exist",
        "use \"default\" or \"capability\" (act only through held capabilities)",
    );
}

/// brig's own places in the view (the root, /proc, /dev and what brig makes there) cannot be
/// mount points: refused at the key, or at a capability's `mount`.
#[test]
fn reserved_mount_points() {
    refused(
        "[fs]\n\"/\" = { from = \"/srv\", rights = \"r\" }\n",
        "2:1",
        "/ is the prison's root, which brig builds (a fresh tmpfs)",
        "grant only the directories the program needs, each at its own place below / (e.g. /data)",
    );
    refused(
        "[fs]\n\"/x\" = \"r\"\n\"/proc\" = \"tmpfs\"\n",
        "3:1",
        "/proc is the prison's own procfs, which brig mounts",
        "choose a destination outside /proc",
    );
    refused(
        "[fs]\n\"/proc/sys\" = \"r\"\n",
        "2:1",
        "/proc/sys is inside /proc, the prison's own procfs, which brig mounts",
        "choose a destination outside /proc",
    );
    refused(
        "[fs]\n\"/dev/\" = \"rw\"\n",
        "2:1",
        "/dev is brig's minimal /dev",
        "choose a destination outside /dev, or mount single entries at /dev/NAME",
    );
    refused(
        "[fs]\n\"/dev/null\" = { from = \"f\", rights = \"r\" }\n",
        "2:1",
        "/dev/null is a device brig gives every prison",
        "choose another destination",
    );
    refused(
        "[caps.s]\nkind = \"dir\"\npath = \"s\"\nmount = \"/dev/shm\"\n",
        "4:9",
        "/dev/shm is brig's link to /tmp (shared memory lives in the prison's /tmp)",
        "mount at /tmp instead, or size the prison's /tmp (--tmp-size, [limits] tmp)",
    );
    // Places the user may take: brig's /tmp is a default, and /dev/NAME that brig does not make.
    let ok = "[fs]\n\"/tmp\" = \"rwc\"\n\"/dev/kvm\" = \"rw\"\n\"/proc2\" = \"tmpfs\"\n";
    assert!(Manifest::parse(Path::new("m.toml"), ok).is_ok());
}

/// More capabilities than `nofile` allows: refused at `nofile`, naming the number needed.
#[test]
fn capabilities_fit_under_nofile() {
    let caps = "[caps.a]\nkind = \"data\"\npath = \"a\"\n[caps.b]\nkind = \"data\"\npath = \"b\"\n";
    let text = format!("{caps}[limits]\nnofile = 6\n");
    let e = brig_policy::plan_for_check(Some((Path::new("m.toml"), &text)), &Default::default())
        .expect_err("too few fds");
    assert_eq!(
        e.to_string(),
        "m.toml:8:10: the capabilities and their description take fds up to 5, and the program \
         needs one more to open anything (its libraries first); set nofile = 7 or more"
    );
    let text = format!("{caps}[limits]\nnofile = 7\n");
    assert!(brig_policy::plan_for_check(Some((Path::new("m.toml"), &text)), &Default::default())
        .is_ok());
}

/// `[app]` refers to capabilities by name; a name that is not declared is refused with the
/// table's position and the names there are.
#[test]
fn app_refers_to_declared_capabilities() {
    let text = "[caps.site]\nkind = \"dir\"\npath = \"s\"\n[app]\nroot = { cap = \"sight\" }\n";
    let e = brig_policy::plan_for_check(Some((Path::new("m.toml"), text)), &Default::default())
        .expect_err("unknown cap");
    assert_eq!(
        e.to_string(),
        "m.toml:4:1: [app].root refers to capability \"sight\", which is not declared; \
         declare [caps.sight] or use one of: site"
    );
}

#[test]
fn tables_and_syntax() {
    refused(
        "[bogus]\n",
        "1:2",
        "unknown field `bogus`, expected one of `program`, `fs`, `env`, `limits`, `sandbox`, `net`, `caps`, `app`, `explain`, `component`, `channel`, `group`, `after`, `restart`, `restart_max`, `restart_within`, `restart_backoff`",
        SPELLING,
    );
    refused("[program\n", "1:9", "unclosed table, expected `]`", SYNTAX);
    refused("x = \n", "1:5", "string values must be quoted, expected literal string", SYNTAX);
    refused(
        "[program]\npath = \"a\"\n[program]\n",
        "3:2",
        "duplicate key",
        "keep only one of them",
    );
    refused("[env]\nA = \"1\"\nA = \"2\"\n", "3:1", "duplicate key", "keep only one of them");
    // Deep nesting is refused by toml's recursion limit, not by a stack overflow.
    for deep in [format!("a = {}", "[".repeat(100_000)), format!("a = {}", "{b=".repeat(100_000))] {
        let e = error(&deep);
        assert!(
            e.starts_with("site.toml:1:") && e.contains("recursion") && e.contains(SYNTAX),
            "{e}"
        );
    }
}

#[test]
fn a_full_manifest_parses() {
    let m = Manifest::parse(
        Path::new("m.toml"),
        "[program]\npath = \"/usr/bin/python3\"\nargs = [\"-m\", \"http.server\"]\nchdir = \"/site\"\n\
         [fs]\n\"/site\" = { from = \"./site\", rights = \"r\" }\n\"/data\" = \"rwc\"\n\"/scratch\" = \"tmpfs\"\n\
         [fs.\"/opt\"]\nrights = \"rx\"\n\
         [env]\nLANG = \"C.UTF-8\"\nTERM = true\nPORT = 8080\n\
         [limits]\nwall = \"30s\"\ncpu = 10\nmemory = \"256MiB\"\nprocesses = 32\nfsize = \"1GiB\"\nnofile = 256\ntmp = \"64MiB\"\n\
         [sandbox]\nsystem = false\nbest_effort = true\nallow_syscalls = [\"@debug\"]\ndeny_syscalls = []\n\
         [net]\nmode = \"none\"\n",
    )
    .expect("parses");
    assert_eq!(m.program.path.as_deref(), Some("/usr/bin/python3"));
    assert_eq!(m.program.args, ["-m", "http.server"]);
    let fs: Vec<(&str, &FsEntry, usize)> =
        m.fs.iter().map(|f| (f.dest.to_str().unwrap_or(""), &f.entry, f.pos.line)).collect();
    let r = |s| Rights::parse(s).expect("rights");
    assert_eq!(
        fs,
        [
            ("/site", &FsEntry::Grant { from: Some("./site".into()), rights: r("r") }, 6),
            ("/data", &FsEntry::Grant { from: None, rights: r("rwc") }, 7),
            ("/scratch", &FsEntry::Tmpfs { exec: false }, 8),
            ("/opt", &FsEntry::Grant { from: None, rights: r("rx") }, 9),
        ]
    );
    assert_eq!(
        m.env,
        [
            ("LANG".into(), EnvValue::Set("C.UTF-8".into())),
            ("TERM".into(), EnvValue::PassThrough),
            ("PORT".into(), EnvValue::Set("8080".into())),
        ]
    );
    assert_eq!(m.limits.cpu, Some(std::time::Duration::from_secs(10)));
    assert_eq!((m.limits.processes, m.limits.tmp), (Some(32), Some(64 << 20)));
    assert!(!m.system && m.best_effort);
    assert_eq!(m.syscalls.allow, ["@debug"]);
    assert_eq!(m.net, Net::None);
    let empty = Manifest::parse(Path::new("e.toml"), "").expect("empty is fine");
    assert!(empty.system && empty.fs.is_empty() && empty.program.path.is_none());
}
