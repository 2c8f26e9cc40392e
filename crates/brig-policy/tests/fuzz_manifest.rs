//! Fuzzing the manifest parser and the flag merger with proptest: arbitrary text and mutated
//! valid manifests must never panic, and every error must name a position and a fix.
//! Cases: FUZZ_CASES (default 20000) per strategy.

use std::path::Path;

use brig_policy::{plan, Flags, Host, PolicyError};
use proptest::prelude::*;

const VALID: &str = "[program]\npath = \"/usr/bin/python3\"\nargs = [\"-m\", \"http.server\"]\nchdir = \"/site\"\n\
[fs]\n\"/site\" = { from = \"./site\", rights = \"r\" }\n\"/data\" = \"rwc\"\n\"/scratch\" = \"tmpfs\"\n\
[env]\nLANG = \"C.UTF-8\"\nTERM = true\n\
[limits]\nwall = \"30s\"\ncpu = \"10s\"\nmemory = \"256MiB\"\nprocesses = 32\nfsize = \"1GiB\"\nnofile = 256\ntmp = \"64MiB\"\n\
[sandbox]\nsystem = true\nbest_effort = false\nallow_syscalls = [\"@debug\"]\n[net]\nmode = \"none\"\n";

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000)
}

fn host() -> Host {
    Host { cwd: "/w".into(), env: vec![("PATH".into(), "/bin".into())] }
}

fn check(text: &str) {
    match plan(
        &Flags { command: vec!["x".into()], ..Flags::default() },
        Some((Path::new("f.toml"), text)),
        &host(),
    ) {
        Ok(_) => {}
        Err(PolicyError::Manifest { line, column, message, hint, .. }) => {
            assert!(line >= 1 && column >= 1 && !message.is_empty() && !hint.is_empty());
            assert!(line <= text.lines().count().max(1) + 1, "line {line} past the end");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// One mutation of a valid manifest: replace, insert or delete a byte range.
fn mutate(text: &str, at: usize, len: usize, with: &str, op: u8) -> String {
    let b = text.as_bytes();
    let at = at % (b.len() + 1);
    let end = (at + len).min(b.len());
    let mut out = Vec::from(&b[..at]);
    match op % 3 {
        0 => {
            out.extend_from_slice(with.as_bytes());
            out.extend_from_slice(&b[end..]);
        }
        1 => {
            out.extend_from_slice(with.as_bytes());
            out.extend_from_slice(&b[at..]);
        }
        _ => out.extend_from_slice(&b[end..]),
    }
    String::from_utf8_lossy(&out).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC*") {
        check(&s);
    }

    #[test]
    fn mutated_manifests_never_panic(
        at in 0usize..2000, len in 0usize..40, op in 0u8..3,
        with in prop::sample::select(vec!["", "\"", "[", "]", "=", "\n", "0", "-1", "rq", "..", "/", "\0",
            "{", "}", "true", "99999999999999999999", "1e999", "\"tmpfs\"", "[fs]", "ü", "'", "#", "\\u0000"]),
    ) {
        check(&mutate(VALID, at, len, with, op));
    }
}

#[test]
fn the_valid_manifest_is_valid() {
    plan(&Flags::default(), Some((Path::new("f.toml"), VALID)), &host()).expect("valid");
}
