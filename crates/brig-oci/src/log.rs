//! Errors as the engines read them: on stderr, and appended to `--log` (one JSON object per
//! line with `--log-format json`: `{"level":"error","msg":…,"time":…}`, which conmon and the
//! containerd shim show to the user).

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct Log {
    file: Option<PathBuf>,
    json: bool,
    /// Warnings on stderr too. Not for `create`, whose stderr is the container's (the spec
    /// wants it untouched): its warnings go to `--log` and the container's report.
    warn_stderr: bool,
}

impl Log {
    pub fn new(file: Option<PathBuf>, format: &str, warn_stderr: bool) -> Log {
        Log { file, json: format == "json", warn_stderr }
    }

    pub fn error(&self, msg: &str) {
        self.put("error", msg);
    }

    pub fn warn(&self, msg: &str) {
        self.put("warning", msg);
    }

    fn put(&self, level: &str, msg: &str) {
        let prefix = if level == "error" { "" } else { "warning: " };
        if level == "error" || self.warn_stderr {
            let _ = writeln!(std::io::stderr(), "brig-oci: {prefix}{msg}");
        }
        let Some(path) = &self.file else { return };
        let line = match self.json {
            true => serde_json::json!({ "level": level, "msg": msg, "time": now() }).to_string(),
            false => format!("time=\"{}\" level={level} msg={:?}", now(), msg),
        };
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Ok(mut f) = f {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The time now as RFC 3339 in UTC, e.g. `2026-12-07T05:59:01.123456789Z`.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, secs) = ((d.as_secs() / 86400) as i64, d.as_secs() % 86400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(at(1_796_621_815), "2026-12-07T05:36:55.000000000Z");
    }
}
