//! Policy errors: every one says where (flag, or file:line:column) and how to fix it.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A manifest error at a position.
    #[error("{}:{line}:{column}: {message}; {hint}", file.display())]
    Manifest { file: PathBuf, line: usize, column: usize, message: String, hint: String },
    /// A flag with a bad value.
    #[error("{flag} {value:?}: {message}")]
    Flag { flag: String, value: String, message: String },
    /// Something about the plan as a whole.
    #[error("{0}")]
    Plan(String),
}

impl PolicyError {
    pub(crate) fn flag(flag: &str, value: &str, message: impl Into<String>) -> PolicyError {
        PolicyError::Flag { flag: flag.into(), value: value.into(), message: message.into() }
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn positions() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\ncd", 99), (2, 3));
    }
}
