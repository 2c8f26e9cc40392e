//! A manifest and the equivalent flags produce the same Plan (apart from the grants' origins,
//! which say where each grant came from). Checked on fixed examples and, as an oracle, on random
//! policies rendered both ways.

use std::path::Path;

use brig_policy::{plan, Flags, GrantFlag, Host, Plan};
use proptest::prelude::*;

fn host() -> Host {
    Host {
        cwd: "/home/u/proj".into(),
        env: vec![
            ("PATH".into(), "/bin".into()),
            ("TERM".into(), "xterm".into()),
            ("TOKEN".into(), "t".into()),
        ],
    }
}

fn without_origins(mut p: Plan) -> Plan {
    p.grants.iter_mut().for_each(|g| g.origin.clear());
    p.caps.iter_mut().for_each(|c| c.origin.clear());
    p
}

fn from_manifest(text: &str) -> Plan {
    let p = plan(&Flags::default(), Some((Path::new("/etc/brig/m.toml"), text)), &host());
    without_origins(p.unwrap_or_else(|e| panic!("{e}\n{text}")))
}

fn from_flags(f: &Flags) -> Plan {
    without_origins(plan(f, None, &host()).unwrap_or_else(|e| panic!("{e}\n{f:?}")))
}

#[test]
fn rw_flag_is_an_rwc_fs_entry() {
    let m = from_manifest(
        "[program]\npath = \"make\"\n[fs]\n\"/a\" = { from = \"/a\", rights = \"rwc\" }\n",
    );
    let f = Flags {
        grants: vec![(GrantFlag::Rw, "/a".into())],
        command: vec!["make".into()],
        ..Flags::default()
    };
    assert_eq!(m, from_flags(&f));
    // The short form and the default `from` mean the same.
    assert_eq!(m, from_manifest("[program]\npath = \"make\"\n[fs]\n\"/a\" = \"rwc\"\n"));
}

#[test]
fn everything_at_once() {
    let m = from_manifest(
        "[program]\npath = \"/usr/bin/python3\"\nargs = [\"-m\", \"http.server\"]\nchdir = \"/site\"\n\
         [fs]\n\"/site\" = { from = \"../../home/u/proj/site\", rights = \"r\" }\n\"/tools\" = { from = \"/opt/tools\", rights = \"rx\" }\n\
         \"/data\" = \"rwc\"\n\"/build\" = { from = \"/home/u/proj/build\", rights = \"rwxc\" }\n\"/scratch\" = \"tmpfs\"\n\
         [env]\nLANG = \"C.UTF-8\"\nTERM = true\nMISSING = true\n\
         [limits]\nwall = \"30s\"\ncpu = \"10s\"\nmemory = \"256MiB\"\nprocesses = 32\nfsize = \"1GiB\"\nnofile = 256\ntmp = \"64MiB\"\n\
         [sandbox]\nsystem = false\nbest_effort = true\nallow_syscalls = [\"@debug\"]\ndeny_syscalls = [\"bpf\", \"io_uring_setup\"]\nonly_syscalls = [\"read\", \"write\"]\n\
         [net]\nmode = \"none\"\n",
    );
    let s = |v: &str| Some(v.to_string());
    let f = Flags {
        grants: vec![
            (GrantFlag::Ro, "site:/site".into()),
            (GrantFlag::Rx, "/opt/tools:/tools".into()),
            (GrantFlag::Rw, "/data".into()),
            (GrantFlag::Rwx, "./build/:/build".into()),
        ],
        tmpfs: vec!["/scratch".into()],
        no_system: true,
        chdir: s("/site"),
        env: vec!["LANG=C.UTF-8".into(), "TERM".into(), "MISSING".into()],
        net: s("none"),
        wall: s("30s"),
        cpu: s("10s"),
        mem: s("256MiB"),
        procs: s("32"),
        fsize: s("1GiB"),
        nofile: s("256"),
        tmp_size: s("64MiB"),
        allow_syscalls: vec!["@debug".into()],
        deny_syscalls: vec!["bpf,io_uring_setup".into()],
        only_syscalls: vec!["read,write".into()],
        best_effort: true,
        caps: vec![],
        capability_mode: false,
        pty: Default::default(),
        explain: false,
        egress: vec![],
        ask: false,
        ask_timeout: None,
        workspace: false,
        command: vec!["/usr/bin/python3".into(), "-m".into(), "http.server".into()],
        component: None,
    };
    assert_eq!(m, from_flags(&f));
}

/// Every capability kind, in the manifest and as flags; the fds are numbered the same way.
#[test]
fn capabilities_as_flags() {
    let m = from_manifest(
        "[program]\npath = \"srv\"\n[sandbox]\nmode = \"capability\"\n\
         [caps.site]\nkind = \"dir\"\npath = \"/home/u/proj/site\"\nrights = \"rw\"\n\
         [caps.log]\nkind = \"file\"\npath = \"/var/log/x\"\nmode = \"append\"\n\
         [caps.http]\nkind = \"listen\"\naddress = \"tcp://127.0.0.1:8080\"\n\
         [caps.db]\nkind = \"connect\"\naddress = \"unix:/run/db.sock\"\n\
         [caps.stdin]\nkind = \"data\"\npath = \"/home/u/proj/in.txt\"\n",
    );
    let f = Flags {
        caps: vec![
            ("dir", "site=site:rw".into()),
            ("file", "log=/var/log/x:append".into()),
            ("listen", "http=tcp://127.0.0.1:8080".into()),
            ("connect", "db=unix:/run/db.sock".into()),
            ("data", "stdin=in.txt".into()),
        ],
        capability_mode: true,
        command: vec!["srv".into()],
        ..Flags::default()
    };
    assert_eq!(m, from_flags(&f));
    let fds: Vec<(&str, i32)> = m.caps.iter().map(|c| (c.name.as_str(), c.fd)).collect();
    assert_eq!(fds, [("site", 4), ("log", 5), ("http", 3), ("db", 6), ("stdin", 0)]);
    assert_eq!(m.description_fd, Some(7));
    assert!(m.capability_mode);
}

/// Flags extend a manifest: the command replaces [program] path and args (not chdir), --env
/// comes after [env], flag limits win, --best-effort is OR'ed, syscall changes are appended.
#[test]
fn flags_extend_the_manifest() {
    let h = Host {
        cwd: "/home/u/proj".into(),
        env: vec![("PATH".into(), "/bin".into()), ("SECRET".into(), "x".into())],
    };
    let m = "[program]\npath = \"/bin/true\"\nargs = [\"a\"]\nchdir = \"/w\"\n\
             [fs]\n\"/site\" = { from = \"../site\", rights = \"r\" }\n\"/t\" = \"tmpfs\"\n\
             [env]\nSECRET = true\nA = \"1\"\nNOPE = true\n\
             [limits]\nwall = \"1m\"\nmemory = \"1G\"\n\
             [sandbox]\nsystem = false\nallow_syscalls = [\"@debug\"]\n";
    let mut f = Flags { command: vec!["ls".into(), "-l".into()], ..Flags::default() };
    f.wall = Some("5s".into());
    f.env.push("A=2".into());
    f.best_effort = true;
    f.deny_syscalls.push("bpf".into());
    let p = plan(&f, Some((Path::new("conf/app.toml"), m)), &h).expect("plan");
    assert_eq!(p.command, ["ls", "-l"]);
    assert_eq!(p.chdir, Some(std::path::PathBuf::from("/w")));
    assert_eq!(p.grants[0].source, std::path::PathBuf::from("/home/u/proj/site"));
    assert_eq!(p.grants[0].origin, "conf/app.toml:6");
    assert_eq!(p.tmpfs, [std::path::PathBuf::from("/t")]);
    let env: Vec<(&str, &str)> = p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env, [("PATH", "/bin"), ("HOME", "/tmp"), ("SECRET", "x"), ("A", "2")]);
    assert_eq!(p.limits.wall, Some(std::time::Duration::from_secs(5)));
    assert_eq!(p.limits.mem, Some(1 << 30));
    assert!(!p.system && p.best_effort);
    assert_eq!((p.syscalls.allow, p.syscalls.deny), (vec!["@debug".into()], vec!["bpf".into()]));
    let p = plan(&Flags::default(), Some((Path::new("conf/app.toml"), m)), &h).expect("plan");
    assert_eq!(p.command, ["/bin/true", "a"]);
}

/// TOML basic-string escaping.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const KINDS: [(GrantFlag, &str); 4] =
    [(GrantFlag::Ro, "r"), (GrantFlag::Rx, "rx"), (GrantFlag::Rw, "rwc"), (GrantFlag::Rwx, "rwxc")];

const LIMITS: [(&str, &str, &str); 7] = [
    ("wall", "wall", "1s"),
    ("cpu", "cpu", "500ms"),
    ("memory", "mem", "64MiB"),
    ("fsize", "fsize", "1.5G"),
    ("tmp", "tmp_size", "512k"),
    ("processes", "procs", "7"),
    ("nofile", "nofile", "99"),
];

#[derive(Debug, Clone)]
struct Policy {
    /// (kind, dest, source relative to the cwd or None for "same as dest")
    grants: Vec<(usize, String, Option<String>)>,
    tmpfs: Vec<String>,
    env: Vec<(String, Option<String>)>,
    /// (manifest key, flag, value)
    limits: Vec<(&'static str, &'static str, &'static str)>,
    allow: Vec<String>,
    no_system: bool,
    best_effort: bool,
    command: Vec<String>,
}

fn policy() -> impl Strategy<Value = Policy> {
    // brig's own places (/dev, /proc...) are refused by both forms alike (manifest_errors.rs).
    let dest = "(/[a-z]{1,3}){1,3}".prop_filter("a reserved mount point", |d| {
        brig_policy::paths::mount_point(Path::new(d)).is_ok()
    });
    let dests = prop::collection::btree_set(dest, 0..8);
    let env =
        prop::collection::btree_map("[A-Z_][A-Z0-9_]{0,4}", prop::option::of("[^\0]{0,8}"), 0..5);
    let limits = prop::sample::subsequence(LIMITS.to_vec(), 0..=LIMITS.len());
    (
        dests,
        prop::collection::vec(
            (0..4usize, prop::option::of("[a-z]{1,3}(/[a-z]{1,3})?"), any::<bool>()),
            8,
        ),
        env,
        limits,
        prop::collection::vec("@?[a-z_]{1,8}", 0..3),
        (any::<bool>(), any::<bool>()),
        prop::collection::vec("[^\0]{1,6}", 1..4),
    )
        .prop_map(|(dests, kinds, env, limits, allow, (no_system, best_effort), command)| {
            let mut grants = vec![];
            let mut tmpfs = vec![];
            for (d, (kind, src, is_tmpfs)) in dests.into_iter().zip(kinds) {
                if is_tmpfs && kind == 0 {
                    tmpfs.push(d);
                } else {
                    grants.push((kind, d, src));
                }
            }
            Policy {
                grants,
                tmpfs,
                env: env.into_iter().collect(),
                limits,
                allow,
                no_system,
                best_effort,
                command,
            }
        })
}

fn as_manifest(p: &Policy) -> String {
    let mut t = format!("[program]\npath = {}\nargs = [", quote(&p.command[0]));
    t += &p.command[1..].iter().map(|a| quote(a)).collect::<Vec<_>>().join(", ");
    t += "]\n[fs]\n";
    for (kind, dest, src) in &p.grants {
        let rights = KINDS[*kind].1;
        match src {
            // The manifest lives in /etc/brig: reach the cwd from there.
            Some(s) => {
                t += &format!(
                    "{} = {{ from = \"../../home/u/proj/{s}\", rights = \"{rights}\" }}\n",
                    quote(dest)
                )
            }
            None => t += &format!("{} = \"{rights}\"\n", quote(dest)),
        }
    }
    for d in &p.tmpfs {
        t += &format!("{} = \"tmpfs\"\n", quote(d));
    }
    t += "[env]\n";
    for (k, v) in &p.env {
        t += &format!("{k} = {}\n", v.as_deref().map_or("true".into(), quote));
    }
    t += "[limits]\n";
    for (key, _, v) in &p.limits {
        t += &format!("{key} = {}\n", quote(v));
    }
    let allow: Vec<String> = p.allow.iter().map(|a| quote(a)).collect();
    t += &format!("[sandbox]\nsystem = {}\nbest_effort = {}\n", !p.no_system, p.best_effort);
    t += &format!("allow_syscalls = [{}]\n", allow.join(", "));
    t
}

fn as_flags(p: &Policy) -> Flags {
    let mut f = Flags { command: p.command.clone(), ..Flags::default() };
    for (kind, dest, src) in &p.grants {
        let spec = match src {
            Some(s) => format!("{s}:{dest}"),
            None => dest.clone(),
        };
        f.grants.push((KINDS[*kind].0, spec));
    }
    f.tmpfs = p.tmpfs.clone();
    f.env =
        p.env.iter().map(|(k, v)| v.as_ref().map_or(k.clone(), |v| format!("{k}={v}"))).collect();
    for (_, flag, v) in &p.limits {
        let slot = match *flag {
            "wall" => &mut f.wall,
            "cpu" => &mut f.cpu,
            "mem" => &mut f.mem,
            "fsize" => &mut f.fsize,
            "tmp_size" => &mut f.tmp_size,
            "procs" => &mut f.procs,
            _ => &mut f.nofile,
        };
        *slot = Some(v.to_string());
    }
    f.allow_syscalls = p.allow.clone();
    f.no_system = p.no_system;
    f.best_effort = p.best_effort;
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn manifest_and_flags_agree(p in policy()) {
        prop_assert_eq!(from_manifest(&as_manifest(&p)), from_flags(&as_flags(&p)));
    }
}

#[test]
fn an_exec_capable_tmpfs_from_either_side() {
    let m = from_manifest(
        "[program]\npath = \"/bin/true\"\n[fs]\n\"/tmp\" = \"tmpfs:x\"\n\"/s\" = \"tmpfs\"\n",
    );
    let f = Flags {
        tmpfs: vec!["/tmp:x".into(), "/s".into()],
        command: vec!["/bin/true".into()],
        ..Flags::default()
    };
    assert_eq!(m, from_flags(&f));
    assert_eq!(m.tmpfs_exec, [std::path::PathBuf::from("/tmp")]);
}
