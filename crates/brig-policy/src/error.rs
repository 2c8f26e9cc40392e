//! Policy errors: every one says where (a flag and its value, or file:line:column) and how to
//! fix it.

use std::fmt;
use std::path::PathBuf;

/// Why a value was refused, and how to write it instead. Parsers of single values (units, rights,
/// paths) return this; [`PolicyError`] adds where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, naming the value (`unknown size unit "XB"`).
    pub message: String,
    /// How to fix it (`use a number with K, M, G, KiB, MiB or GiB (e.g. 256MiB)`).
    pub hint: String,
}

impl Problem {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Problem {
        Problem { message: message.into(), hint: hint.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.message, self.hint)
    }
}

impl std::error::Error for Problem {}

/// Everything that can stop flags and a manifest from becoming a [`crate::Plan`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A manifest value (or the manifest's syntax) is wrong at a position. Line and column are
    /// 1-based; the column counts characters, not bytes.
    #[error("{}:{line}:{column}: {message}; {hint}", file.display())]
    Manifest { file: PathBuf, line: usize, column: usize, message: String, hint: String },
    /// A command-line flag has a bad value (`--mem "12XB": ...`).
    #[error("{flag} {value:?}: {message}; {hint}")]
    Flag { flag: String, value: String, message: String, hint: String },
    /// Something about the whole plan (no command at all).
    #[error("{message}; {hint}")]
    Plan { message: String, hint: String },
}

impl PolicyError {
    pub(crate) fn flag(flag: &str, value: &str, p: Problem) -> PolicyError {
        PolicyError::Flag {
            flag: flag.into(),
            value: value.into(),
            message: p.message,
            hint: p.hint,
        }
    }

    pub(crate) fn at(file: &std::path::Path, pos: Pos, p: Problem) -> PolicyError {
        PolicyError::Manifest {
            file: file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: p.message,
            hint: p.hint,
        }
    }
}

/// A 1-based line and column (in characters) in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The position of byte `offset` in `text` (clamped to the text, never panics).
    pub fn of(text: &str, offset: usize) -> Pos {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        assert_eq!(Pos::of("ab\ncd", 0), Pos { line: 1, column: 1 });
        assert_eq!(Pos::of("ab\ncd", 4), Pos { line: 2, column: 2 });
        assert_eq!(Pos::of("ab\ncd", 99), Pos { line: 2, column: 3 });
        // Inside a multi-byte character: the character's own column.
        assert_eq!(Pos::of("\"ü\"", 2), Pos { line: 1, column: 2 });
        assert_eq!(Pos::of("üx", 2), Pos { line: 1, column: 2 });
    }

    #[test]
    fn display_forms() {
        let p = Problem::new("unknown size unit \"XB\"", "use K, M or G");
        assert_eq!(
            PolicyError::flag("--mem", "12XB", p.clone()).to_string(),
            "--mem \"12XB\": unknown size unit \"XB\"; use K, M or G"
        );
        let e = PolicyError::at(std::path::Path::new("a.toml"), Pos { line: 7, column: 12 }, p);
        assert_eq!(e.to_string(), "a.toml:7:12: unknown size unit \"XB\"; use K, M or G");
    }
}
