//! Fuzzing the manifest parser and the flag merger with proptest: arbitrary text, mutated valid
//! manifests and arbitrary flag values must never panic; every manifest error must name a
//! position and a fix; every plan that comes out must hold the Plan's invariants.
//! Cases: 20 000 arbitrary texts, 20 000 mutated manifests, 10 000 mutated group manifests
//! (each member's plan built as its brig builds it), 5 000 flag sets.

use std::path::{Component, Path};

use brig_policy::{plan, Flags, GrantFlag, Host, Manifest, Plan, PolicyError};
use proptest::prelude::*;

const VALID: &str = "[program]\npath = \"/usr/bin/python3\"\nargs = [\"-m\", \"http.server\"]\nchdir = \"/site\"\n\
[fs]\n\"/site\" = { from = \"./site\", rights = \"r\" }\n\"/data\" = \"rwc\"\n\"/scratch\" = \"tmpfs\"\n\
[env]\nLANG = \"C.UTF-8\"\nTERM = true\n\
[limits]\nwall = \"30s\"\ncpu = \"10s\"\nmemory = \"256MiB\"\nprocesses = 32\nfsize = \"1GiB\"\nnofile = 256\ntmp = \"64MiB\"\n\
[sandbox]\nsystem = true\nbest_effort = false\nallow_syscalls = [\"@debug\"]\ndeny_syscalls = []\n[net]\nmode = \"none\"\n\
[caps.web]\nkind = \"dir\"\npath = \"./site\"\nrights = \"rx\"\nmount = \"/web\"\n\
[caps.http]\nkind = \"listen\"\naddress = \"tcp://127.0.0.1:8080\"\n\
[caps.stdout]\nkind = \"file\"\npath = \"out\"\nmode = \"create\"\n\
[caps.db]\nkind = \"connect\"\naddress = \"unix:db.sock\"\n\
[caps.rules]\nkind = \"data\"\npath = \"rules\"\n\
[app]\nroot = { cap = \"web\" }\nlist = [1, { cap = \"rules\" }]\n[app.t]\nx = \"y\"\n";

const GROUP: &str = "[group]\nmain = \"web\"\n\
[component.db]\nrestart = \"on-failure\"\nrestart_max = 3\nrestart_within = \"10s\"\nrestart_backoff = \"50ms\"\n\
[component.db.program]\npath = \"/usr/bin/db\"\n[component.db.fs]\n\"/data\" = { from = \"./data\", rights = \"rwc\" }\n\
[component.db.caps.log]\nkind = \"file\"\npath = \"log\"\nmode = \"append\"\n\
[component.web]\nafter = [\"db\"]\n[component.web.program]\npath = \"/usr/bin/web\"\nargs = [\"-v\"]\n\
[component.web.limits]\nmemory = \"64M\"\n[component.web.sandbox]\nonly_syscalls = [\"read\", \"write\"]\n\
[[channel]]\nends = [\"web.db\", \"db.clients\"]\n[[channel]]\nends = [\"web.log2\", \"db.x\"]\n";

fn host() -> Host {
    Host {
        cwd: "/w".into(),
        env: vec![("PATH".into(), "/bin".into()), ("TERM".into(), "x".into())],
    }
}

/// What every plan must satisfy, whatever the input.
fn invariants(p: &Plan) {
    let normal = |d: &Path| {
        d.is_absolute()
            && d.components().all(|c| !matches!(c, Component::ParentDir | Component::CurDir))
    };
    assert!(!p.command.is_empty() && !p.command[0].is_empty());
    assert!(p.command.iter().all(|a| !a.contains('\0')));
    for g in &p.grants {
        assert!(normal(&g.source) && normal(&g.dest), "{g:?}");
    }
    assert!(p.tmpfs.iter().all(|t| normal(t)));
    assert!(p.chdir.iter().all(|c| normal(c)));
    let mut dests: Vec<&Path> = p
        .grants
        .iter()
        .map(|g| g.dest.as_path())
        .chain(p.tmpfs.iter().map(|t| t.as_path()))
        .collect();
    for d in &dests {
        assert_eq!(brig_policy::paths::mount_point(d), Ok(()), "a reserved mount point");
    }
    dests.sort();
    assert!(dests.windows(2).all(|w| w[0] != w[1]), "a mount point twice: {dests:?}");
    for (k, v) in &p.env {
        assert!(
            !k.is_empty() && !k.contains('=') && !k.contains('\0') && !v.contains('\0'),
            "{k:?}={v:?}"
        );
    }
    assert_eq!(p.env.iter().filter(|(k, _)| k == "PATH").count(), 1);
    let l = &p.limits;
    assert!(l.procs >= 1 && l.nofile >= 1 && l.tmp_size >= 1);
    assert!(l.mem != Some(0) && l.fsize != Some(0));
    assert!(l.wall.iter().chain(&l.cpu).all(|d| !d.is_zero()));
    let mut fds: Vec<i32> = p.caps.iter().map(|c| c.fd).collect();
    fds.sort();
    assert!(fds.windows(2).all(|w| w[0] != w[1]) && fds.iter().all(|&f| f >= 0), "{fds:?}");
    let mut names: Vec<&str> = p.caps.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert!(names.windows(2).all(|w| w[0] != w[1]), "{names:?}");
    if let Some(d) = p.description_fd {
        assert!(fds.iter().all(|&f| f < d), "description at {d}, caps at {fds:?}");
        assert!(l.nofile >= d as u64 + 2, "nofile {} with the description at {d}", l.nofile);
    }
    assert!(p.app.is_none() || p.description_fd.is_some());
}

fn check(text: &str) {
    let file = Path::new("f.toml");
    // A group: each member's plan, as its brig builds it (named, with its channel ends).
    if let Ok(Manifest { group: Some(g), .. }) = Manifest::parse(file, text) {
        for m in &g.members {
            plan_checked(&g.member_flags(&m.name), text);
        }
        assert_eq!(g.start_order().len(), g.members.len());
        return;
    }
    plan_checked(&Flags { command: vec!["x".into()], ..Flags::default() }, text);
}

fn plan_checked(flags: &Flags, text: &str) {
    match plan(flags, Some((Path::new("f.toml"), text)), &host()) {
        Ok(p) => invariants(&p),
        Err(e @ PolicyError::Manifest { .. }) => {
            let shown = e.to_string();
            let PolicyError::Manifest { line, column, message, hint, .. } = e else {
                unreachable!()
            };
            assert!(line >= 1 && column >= 1 && !message.is_empty() && !hint.is_empty(), "{shown}");
            assert!(line <= text.split('\n').count(), "line {line} past the end: {shown}");
            assert!(shown.starts_with(&format!("f.toml:{line}:{column}: ")), "{shown}");
        }
        Err(e) => panic!("a manifest problem must come with a position: {e}"),
    }
}

/// Applies mutations to a valid manifest: replace, insert or delete a byte range.
fn mutate(text: &str, edits: &[(usize, usize, &str, u8)]) -> String {
    let mut b = text.as_bytes().to_vec();
    for &(at, len, with, op) in edits {
        let at = at % (b.len() + 1);
        let end = (at + len).min(b.len());
        let tail = match op % 3 {
            0 => b.split_off(end),
            1 => b.split_off(at),
            _ => {
                let t = b.split_off(end);
                b.truncate(at);
                b.extend_from_slice(&t);
                continue;
            }
        };
        b.truncate(at);
        b.extend_from_slice(with.as_bytes());
        b.extend_from_slice(&tail);
    }
    String::from_utf8_lossy(&b).into_owned()
}

const TOKENS: &[&str] = &[
    "",
    "\"",
    "[",
    "]",
    "=",
    "\n",
    "0",
    "-1",
    "1.5",
    "rq",
    "rwxc",
    "..",
    "/",
    "\\u0000",
    "\\",
    "{",
    "}",
    "true",
    "false",
    "99999999999999999999",
    "1e999",
    "nan",
    "\"tmpfs\"",
    "[fs]",
    "[env]",
    "[limits]",
    "[[fs]]",
    "ü",
    "'",
    "'''",
    "\"\"\"",
    "#",
    ",",
    ".",
    "~/",
    "a.b",
    "=\"x\"",
    "\u{1f}",
    "\r\n",
    "\t",
    "\"/a\" = \"r\"\n",
    "\"/a/\" = \"rw\"\n",
    "from = \"..\"",
    "\"/\" = \"r\"\n",
    "mode = \"host\"",
    "0s",
    "12XB",
    "1073741825",
    "[program]\n",
    "args = []\n",
    "2024-01-01T00:00:00Z",
    "[caps.x]\n",
    "[caps.stdin]\n",
    "kind = \"dir\"\n",
    "kind = \"listen\"\n",
    "kind = \"pipe\"\n",
    "address = \"tcp://[::1]:0\"\n",
    "address = \"unix:\"\n",
    "{ cap = \"web\" }",
    "{ cap = \"nope\" }",
    "{ cap = 3 }",
    "[app]\n",
    "mode = \"capability\"\n",
    "mode = \"append\"\n",
    "web=./s:rw",
    "stdin=tcp://h:1",
    "h=tcp://x:0",
    "pty = \"never\"\n",
    "always",
    "[component.a]\n",
    "[component.web.program]\n",
    "after = [\"web\"]\n",
    "after = [\"db\", \"zz\"]\n",
    "restart = \"always\"\n",
    "restart_max = 0\n",
    "[[channel]]\n",
    "ends = [\"db.clients\", \"web.db\"]\n",
    "ends = [\"a.b\"]\n",
    "db.log",
    "[group]\n",
    "main = \"db\"\n",
];

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        // TOML's punctuation and the manifest's words: reaches deeper than random characters.
        "[\\[\\]{}=\"'#.,/a-z0-9_ \n\\\\:@-]{0,200}",
        prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat()),
    ]
}

fn arbitrary_flags() -> impl Strategy<Value = Flags> {
    let s = || {
        prop_oneof![
            "\\PC{0,12}",
            any::<String>(),
            prop::sample::select(TOKENS).prop_map(String::from)
        ]
    };
    let o = move || prop::option::of(s());
    let v = move || prop::collection::vec(s(), 0..3);
    let kind =
        prop::sample::select(vec![GrantFlag::Ro, GrantFlag::Rx, GrantFlag::Rw, GrantFlag::Rwx]);
    (
        prop::collection::vec((kind, s()), 0..4),
        (v(), v(), v(), v(), v()),
        (o(), o(), o(), o(), o(), o(), o(), o(), o()),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        prop::collection::vec(
            (prop::sample::select(vec!["dir", "file", "listen", "connect", "data"]), s()),
            0..4,
        ),
        o(),
    )
        .prop_map(
            |(
                grants,
                (tmpfs, env, allow, deny, command),
                (chdir, net, wall, cpu, mem, procs, fsize, nofile, tmp_size),
                (no_system, best_effort, capability_mode, workspace),
                caps,
                pty,
            )| Flags {
                grants,
                tmpfs,
                no_system,
                chdir,
                env,
                net,
                wall,
                cpu,
                mem,
                procs,
                fsize,
                nofile,
                tmp_size,
                allow_syscalls: allow,
                deny_syscalls: deny,
                only_syscalls: vec![],
                best_effort,
                explain: false,
                egress: vec![],
                ask: false,
                ask_timeout: None,
                caps,
                capability_mode,
                pty,
                workspace,
                command,
                component: None,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in arbitrary_text()) {
        check(&s);
    }

    #[test]
    fn mutated_manifests_never_panic(
        edits in prop::collection::vec((0usize..2000, 0usize..40, prop::sample::select(TOKENS), 0u8..3), 1..4),
    ) {
        check(&mutate(VALID, &edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_group_manifests_never_panic(
        edits in prop::collection::vec((0usize..1200, 0usize..40, prop::sample::select(TOKENS), 0u8..3), 1..4),
    ) {
        check(&mutate(GROUP, &edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_flags_never_panic(f in arbitrary_flags(), with_manifest in any::<bool>()) {
        let manifest = with_manifest.then_some((Path::new("f.toml"), VALID));
        match plan(&f, manifest, &host()) {
            Ok(p) => invariants(&p),
            Err(e) => {
                let shown = e.to_string();
                assert!(shown.contains("; "), "no fix in {shown}");
                if let PolicyError::Flag { flag, .. } = &e {
                    assert!(flag.starts_with("--") && shown.starts_with(flag.as_str()), "{shown}");
                }
            }
        }
    }
}

#[test]
fn the_valid_group_is_valid() {
    let m = Manifest::parse(Path::new("f.toml"), GROUP).expect("valid");
    let g = m.group.expect("a group");
    let order: Vec<&str> = g.start_order().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(order, ["db", "web"]);
    let web = ["--component", "web", "--pty", "never", "--channel", "db=5", "--channel", "log2=6"];
    assert_eq!(g.member_args("web"), web);
    assert_eq!(
        g.member_flags("web").caps,
        [("channel", "db=5".into()), ("channel", "log2=6".into())]
    );
    for name in ["db", "web"] {
        let flags = g.member_flags(name);
        invariants(&plan(&flags, Some((Path::new("f.toml"), GROUP)), &host()).expect("plan"));
    }
}

#[test]
fn the_valid_manifest_is_valid() {
    let p = plan(&Flags::default(), Some((Path::new("f.toml"), VALID)), &host()).expect("valid");
    invariants(&p);
}
