//! Durations ("30s", "500ms", "2m", "1h", "1.5s"; a bare number is seconds) and sizes
//! ("256MiB", "64M", "512k", "1G"; K/M/G and KiB/MiB/GiB are both binary; a bare number is bytes).

use std::time::Duration;

/// Parses a duration; the error says what is accepted.
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "\"{s}\" is not a duration; use a number with ms, s, m or h (e.g. 30s)"
        ));
    }
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        u => {
            return Err(format!(
                "unknown duration unit \"{u}\"; use ms, s, m or h (e.g. 30s, 500ms)"
            ))
        }
    };
    let n: f64 = num.parse().map_err(|_| {
        format!("\"{s}\" is not a duration; use a number with ms, s, m or h (e.g. 30s)")
    })?;
    let secs = n * scale;
    if !(secs.is_finite() && secs > 0.0 && secs <= 365.0 * 86400.0) {
        return Err(format!("duration \"{s}\" must be more than 0 and at most a year"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a size in bytes; the error says what is accepted.
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "\"{s}\" is not a size; use a number with K, M, G, KiB, MiB or GiB (e.g. 256MiB)"
        ));
    }
    let shift = match unit.trim() {
        "" | "B" => 0,
        "k" | "K" | "KiB" | "KB" => 10,
        "m" | "M" | "MiB" | "MB" => 20,
        "g" | "G" | "GiB" | "GB" => 30,
        "t" | "T" | "TiB" | "TB" => 40,
        u => return Err(format!(
            "unknown size unit \"{u}\"; use a number with K, M, G, KiB, MiB or GiB (e.g. 256MiB)"
        )),
    };
    let n: u64 = num.parse().map_err(|_| {
        format!("\"{s}\" is not a size; use a number with K, M, G, KiB, MiB or GiB (e.g. 256MiB)")
    })?;
    let v = n.checked_mul(1u64 << shift).ok_or_else(|| format!("size \"{s}\" is too large"))?;
    if v == 0 {
        return Err(format!("size \"{s}\" must be more than 0"));
    }
    Ok(v)
}

/// Parses a positive count.
pub fn count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err(format!("\"{s}\" must be at least 1")),
        Ok(n) if n > 1 << 30 => Err(format!("\"{s}\" is too large")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("\"{s}\" is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("0s").is_err());
        assert!(duration("ten").unwrap_err().contains("not a duration"));
        assert!(duration("3 weeks").unwrap_err().contains("unknown duration unit"));
        assert!(duration("1e400").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("256MiB"), Ok(256 << 20));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert_eq!(size("512k"), Ok(512 << 10));
        assert_eq!(size("100"), Ok(100));
        assert!(size("12XB").unwrap_err().contains("unknown size unit \"XB\""));
        assert!(size("99999999999999999999T").is_err());
        assert!(size("0").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(count("32"), Ok(32));
        assert!(count("0").is_err());
        assert!(count("-1").is_err());
    }
}
