//! The TOML manifest. Every value is validated while it is deserialized, so that each error
//! carries the span of the offending value and comes out as `FILE:LINE:COLUMN: problem; fix`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{line_col, PolicyError};
use crate::plan::Rights;
use crate::{paths, units};

/// A parsed, validated manifest (paths still as written; `flags::plan` resolves them).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub program: Option<Program>,
    #[serde(default)]
    pub fs: BTreeMap<InsidePath, Spanned<FsEntry>>,
    #[serde(default)]
    pub env: BTreeMap<EnvName, EnvValue>,
    #[serde(default)]
    pub limits: ManifestLimits,
    #[serde(default)]
    pub sandbox: Sandbox,
    pub net: Option<Net>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    pub chdir: Option<InsidePath>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    pub wall: Option<Dur>,
    pub cpu: Option<Dur>,
    pub memory: Option<Size>,
    pub processes: Option<Count>,
    pub fsize: Option<Size>,
    pub nofile: Option<Count>,
    pub tmp: Option<Size>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    #[serde(default = "yes")]
    pub system: bool,
    #[serde(default)]
    pub best_effort: bool,
    #[serde(default)]
    pub allow_syscalls: Vec<String>,
    #[serde(default)]
    pub deny_syscalls: Vec<String>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox { system: true, best_effort: false, allow_syscalls: vec![], deny_syscalls: vec![] }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Net {
    pub mode: NetMode,
}

/// What a `[fs]` key maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEntry {
    /// `"/data" = "rwc"` or `{ from = "./data", rights = "rwc" }`
    Grant { from: Option<String>, rights: Rights },
    /// `"/scratch" = "tmpfs"`
    Tmpfs,
}

/// Implements `Deserialize` for a newtype by validating a string (or integer) with `$parse`.
macro_rules! validated {
    ($name:ident, $inner:ty, $expect:literal, $parse:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        let parse: fn(&str) -> Result<$inner, String> = $parse;
                        parse(s).map($name).map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, n: i64) -> Result<$name, E> {
                        self.visit_str(&n.to_string())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

validated!(Dur, Duration, "a duration such as \"30s\"", units::duration);
validated!(Size, u64, "a size such as \"256MiB\"", units::size);
validated!(Count, u64, "a whole number such as 64", units::count);
validated!(InsidePath, PathBuf, "an absolute path inside the prison", paths::inside);
validated!(EnvName, String, "an environment variable name", env_name);
validated!(NetMode, String, "\"none\"", net_mode);
validated!(RightsValue, Rights, "rights letters such as \"r\" or \"rwc\"", Rights::parse);

pub(crate) fn env_name(s: &str) -> Result<String, String> {
    let mut cs = s.chars();
    let ok = cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("\"{s}\" is not a valid environment variable name; use letters, digits and _ (not starting with a digit)"))
    }
}

pub(crate) fn net_mode(s: &str) -> Result<String, String> {
    if s == "none" {
        Ok(s.into())
    } else {
        Err(format!("network mode \"{s}\" does not exist; only \"none\" (a private namespace with loopback) is available; named listeners and connections come in a later version"))
    }
}

/// An `[env]` value: a string to set, or `true` to pass the host's value through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Set(String),
    PassThrough,
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string value, or true to pass the host's value through")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<EnvValue, E> {
                if s.contains('\0') {
                    return Err(E::custom("environment values cannot contain NUL"));
                }
                Ok(EnvValue::Set(s.into()))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<EnvValue, E> {
                if b {
                    Ok(EnvValue::PassThrough)
                } else {
                    Err(E::custom("false is not a value; remove the line to not pass the variable"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FsTable {
    from: Option<String>,
    rights: RightsValue,
}

impl<'de> Deserialize<'de> for FsEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FsEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"tmpfs\", rights such as \"rwc\", or { from = \"PATH\", rights = \"r\" }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FsEntry, E> {
                if s == "tmpfs" {
                    return Ok(FsEntry::Tmpfs);
                }
                Rights::parse(s)
                    .map(|rights| FsEntry::Grant { from: None, rights })
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<FsEntry, A::Error> {
                let t = FsTable::deserialize(de::value::MapAccessDeserializer::new(m))?;
                if let Some(f) = &t.from {
                    if f.is_empty() || f.contains('\0') {
                        return Err(de::Error::custom("`from` must be a non-empty path"));
                    }
                }
                Ok(FsEntry::Grant { from: t.from, rights: t.rights.0 })
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses manifest `text` (named `file` in messages).
pub fn parse(file: &std::path::Path, text: &str) -> Result<Manifest, PolicyError> {
    toml::from_str::<Manifest>(text).map_err(|e| {
        let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
        let message = e.message().trim().replace('\n', " ");
        let hint = hint_for(&message);
        PolicyError::Manifest { file: file.to_path_buf(), line, column, message, hint }
    })
}

fn hint_for(message: &str) -> String {
    if message.contains("unknown field") {
        "remove it or fix the spelling (docs/manifest.md lists every key)".into()
    } else if message.contains("missing field") {
        "add it (docs/manifest.md shows an example)".into()
    } else if message.contains("invalid type") {
        "see docs/manifest.md for the expected type".into()
    } else if message.contains(" use ") || message.contains("; ") {
        "fix the value as suggested".into()
    } else {
        "see docs/manifest.md".into()
    }
}

/// Line number (1-based) of a spanned value, for grant origins like `app.toml:7`.
pub(crate) fn line_of(text: &str, span: std::ops::Range<usize>) -> usize {
    line_col(text, span.start).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn err(text: &str) -> (usize, usize, String) {
        match parse(Path::new("m.toml"), text) {
            Err(PolicyError::Manifest { line, column, message, .. }) => (line, column, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn full_manifest_parses() {
        let m = parse(
            Path::new("m.toml"),
            "[program]\npath = \"/usr/bin/python3\"\nargs = [\"-V\"]\nchdir = \"/site\"\n\
             [fs]\n\"/site\" = { from = \"./site\", rights = \"r\" }\n\"/data\" = \"rwc\"\n\"/scratch\" = \"tmpfs\"\n\
             [env]\nLANG = \"C.UTF-8\"\nTERM = true\n\
             [limits]\nwall = \"30s\"\nmemory = \"256MiB\"\nprocesses = 32\n\
             [sandbox]\nallow_syscalls = [\"@debug\"]\n[net]\nmode = \"none\"\n",
        )
        .expect("parses");
        assert_eq!(m.fs.len(), 3);
        assert_eq!(m.limits.processes, Some(Count(32)));
        assert_eq!(m.env.get(&EnvName("TERM".into())), Some(&EnvValue::PassThrough));
    }

    #[test]
    fn errors_point_at_the_value() {
        let (l, c, m) = err("[fs]\n\"/a\" = { from = \"/x\", rights = \"rq\" }\n");
        assert_eq!((l, c), (2, 32), "{m}");
        assert!(m.contains("unknown right `q`"), "{m}");
        let (l, _, m) = err("[program]\npath = \"/bin/true\"\nbogus = 1\n");
        assert_eq!(l, 3);
        assert!(m.contains("unknown field `bogus`"), "{m}");
        let (l, c, m) = err("[limits]\nwall = \"ten seconds\"\n");
        assert_eq!((l, c), (2, 8));
        assert!(m.contains("duration"), "{m}");
        let (l, _, m) = err("[fs]\n\"relative\" = \"r\"\n");
        assert_eq!(l, 2);
        assert!(m.contains("absolute"), "{m}");
        let (l, _, m) = err("[env]\n\"1BAD\" = \"x\"\n");
        assert_eq!(l, 2);
        assert!(m.contains("environment variable name"), "{m}");
        let (_, _, m) = err("[net]\nmode = \"host\"\n");
        assert!(m.contains("only \"none\""), "{m}");
        let (l, _, _) = err("[program\n");
        assert_eq!(l, 1);
        let (_, _, m) = err("[limits]\nprocesses = 0\n");
        assert!(m.contains("at least 1"), "{m}");
    }

    #[test]
    fn display_has_file_line_column_and_hint() {
        let e = parse(Path::new("site.toml"), "[program]\nbogus = 1\n").expect_err("error");
        let s = e.to_string();
        assert!(s.starts_with("site.toml:2:1: "), "{s}");
        assert!(s.contains("remove it or fix the spelling"), "{s}");
    }
}
