//! Durations, sizes and counts as users write them.
//!
//! - Durations: a number with `ms`, `s`, `m` or `h` (`500ms`, `30s`, `1.5s`, `2m`, `1h`); a bare
//!   number is seconds. At most 365 days. `sec`, `min` and `hour` are accepted too.
//! - Sizes: a number with `K`, `M`, `G`, `T` or `KiB`, `MiB`, `GiB`, `TiB` (case does not matter);
//!   a bare number (or `B`) is bytes. **All units are binary**: `K` = `KiB` = 1024 bytes,
//!   `M` = `MiB` = 1024², `G` = `GiB` = 1024³. `KB`/`MB`/`GB` are read the same way (as Docker
//!   does), since a limit is never meant in decimal units. Fractions are allowed with a unit
//!   (`1.5G`) and rounded down to whole bytes.
//! - Counts: a whole number from 1 to 2³⁰.
//!
//! Zero is refused everywhere: a zero limit is almost always a typo, and "no limit" is written by
//! leaving the limit out. Arithmetic is exact (integers, no floats) and checked, so no input can
//! overflow or panic.

use std::time::Duration;

use crate::error::Problem;

const DURATION_HINT: &str = "use a number with ms, s, m or h (e.g. 30s, 500ms, 1.5s, 2m)";
const SIZE_HINT: &str = "use a number with K, M, G, KiB, MiB or GiB (e.g. 256MiB)";
const COUNT_HINT: &str = "use a whole number from 1 to 1073741824 (e.g. 64)";
/// The longest duration accepted: 365 days. Longer is a typo, and the supervisor adds durations
/// to clock readings.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// The largest count accepted (processes, open files).
pub const MAX_COUNT: u64 = 1 << 30;

/// A decimal number split at its point: `1.25` is (1, 25, 2 digits).
struct Decimal {
    int: u128,
    frac: u128,
    frac_digits: u32,
}

impl Decimal {
    /// Parses `digits[.digits]`; None if malformed. Digits beyond the 18th fractional one are
    /// dropped (they are below a nanosecond or a byte for every unit here).
    fn parse(s: &str) -> Option<Decimal> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !ok(int) || !ok(frac) {
            return None;
        }
        let frac = &frac[..frac.len().min(18)];
        // All digits: parsing fails only on overflow, and a saturated value overflows below.
        let int = if int.is_empty() { 0 } else { int.parse::<u128>().unwrap_or(u128::MAX) };
        let frac_val = if frac.is_empty() { 0 } else { frac.parse::<u128>().ok()? };
        Some(Decimal { int, frac: frac_val, frac_digits: frac.len() as u32 })
    }

    /// `self * unit`, rounded down; None on overflow.
    fn times(&self, unit: u128) -> Option<u128> {
        let whole = self.int.checked_mul(unit)?;
        let part = self.frac.checked_mul(unit)? / 10u128.pow(self.frac_digits);
        whole.checked_add(part)
    }

    fn is_whole(&self) -> bool {
        self.frac == 0
    }
}

/// Splits "1.5 GiB" into ("1.5", "GiB").
fn split(s: &str) -> (&str, &str) {
    let t = s.trim();
    let at = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(at);
    (num, unit.trim_start())
}

/// Parses a duration such as `30s`, `500ms`, `1.5s`, `2m`, `1h` or `10` (seconds).
pub fn duration(s: &str) -> Result<Duration, Problem> {
    let (num, unit) = split(s);
    if num.is_empty() {
        return Err(Problem::new(format!("{s:?} is not a duration"), DURATION_HINT));
    }
    let nanos_per: u128 = match unit {
        "ms" => 1_000_000,
        "" | "s" | "sec" | "secs" => 1_000_000_000,
        "m" | "min" | "mins" => 60_000_000_000,
        "h" | "hour" | "hours" => 3_600_000_000_000,
        u => {
            return Err(Problem::new(
                format!("unknown duration unit {u:?} in {s:?}"),
                DURATION_HINT,
            ))
        }
    };
    let Some(n) = Decimal::parse(num) else {
        return Err(Problem::new(format!("{s:?} is not a duration"), DURATION_HINT));
    };
    let max = MAX_DURATION.as_nanos();
    match n.times(nanos_per) {
        Some(0) => Err(Problem::new(
            format!("{s:?} is zero (or less than a nanosecond)"),
            "give a positive duration (e.g. 30s), or leave the limit out for none",
        )),
        Some(ns) if ns <= max => {
            let secs = (ns / 1_000_000_000) as u64; // at most a year: fits
            Ok(Duration::new(secs, (ns % 1_000_000_000) as u32))
        }
        _ => Err(Problem::new(
            format!("{s:?} is longer than a year"),
            "give at most 8760h, or leave the limit out for none",
        )),
    }
}

/// Parses a size in bytes such as `256MiB`, `64M`, `512k`, `1.5G` or `4096` (bytes).
/// A size in the largest binary unit that divides it: "256 MiB".
pub fn show_size(b: u64) -> String {
    match b.trailing_zeros() {
        30.. => format!("{} GiB", b >> 30),
        20.. => format!("{} MiB", b >> 20),
        10.. => format!("{} KiB", b >> 10),
        _ => format!("{b} bytes"),
    }
}

pub fn size(s: &str) -> Result<u64, Problem> {
    let (num, unit) = split(s);
    if num.is_empty() {
        return Err(Problem::new(format!("{s:?} is not a size"), SIZE_HINT));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(Problem::new(format!("unknown size unit {unit:?}"), SIZE_HINT)),
    };
    let Some(n) = Decimal::parse(num) else {
        return Err(Problem::new(format!("{s:?} is not a size"), SIZE_HINT));
    };
    if shift == 0 && !n.is_whole() {
        return Err(Problem::new(format!("{s:?} is not a whole number of bytes"), SIZE_HINT));
    }
    match n.times(1u128 << shift).map(u64::try_from) {
        Some(Ok(0)) => Err(Problem::new(
            format!("{s:?} is zero bytes"),
            "give a positive size (e.g. 256MiB), or leave the limit out for none",
        )),
        Some(Ok(v)) => Ok(v),
        _ => Err(Problem::new(format!("{s:?} is too large"), "give at most 16383PiB (2^64 bytes)")),
    }
}

/// Parses a count such as the number of processes or open files: a whole number, at least 1.
pub fn count(s: &str) -> Result<u64, Problem> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        let what = if t.starts_with('-') { "is negative" } else { "is not a whole number" };
        return Err(Problem::new(format!("{s:?} {what}"), COUNT_HINT));
    }
    match t.parse::<u64>() {
        Ok(0) => Err(Problem::new(format!("{s:?} is zero"), COUNT_HINT)),
        Ok(n) if n <= MAX_COUNT => Ok(n),
        _ => Err(Problem::new(format!("{s:?} is too large"), COUNT_HINT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T, Problem>) -> String {
        r.expect_err("should be refused").to_string()
    }

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration(" 10 "), Ok(Duration::from_secs(10)));
        assert_eq!(duration("0.5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(duration(".25s"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("8760h"), Ok(MAX_DURATION));
    }

    #[test]
    fn duration_errors() {
        assert_eq!(err(duration("ten")), format!("\"ten\" is not a duration; {DURATION_HINT}"));
        assert_eq!(
            err(duration("3 weeks")),
            format!("unknown duration unit \"weeks\" in \"3 weeks\"; {DURATION_HINT}")
        );
        assert!(err(duration("0s")).contains("is zero"));
        assert!(err(duration("0.0000000001s")).contains("is zero"));
        assert!(err(duration("8761h")).contains("longer than a year"));
        assert!(err(duration("99999999999999999999999999999999999999999999h")).contains("year"));
        for bad in ["", "s", ".", "1.2.3s", "-1s", "1e3", "+5s", "1,5s", "NaN", "inf"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("256MiB"), Ok(256 << 20));
        assert_eq!(size("64M"), Ok(64 << 20));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("512k"), Ok(512 << 10));
        assert_eq!(size("512 KiB"), Ok(512 << 10));
        assert_eq!(size("2mb"), Ok(2 << 20));
        assert_eq!(size("1.5G"), Ok(3 << 29));
        assert_eq!(size("100"), Ok(100));
        assert_eq!(size("100B"), Ok(100));
        assert_eq!(size("16777215T"), Ok(16_777_215 << 40));
    }

    #[test]
    fn size_errors() {
        assert_eq!(err(size("12XB")), format!("unknown size unit \"XB\"; {SIZE_HINT}"));
        assert!(err(size("0")).contains("zero bytes"));
        assert!(err(size("0.0000001K")).contains("zero bytes"));
        assert!(err(size("1.5")).contains("whole number of bytes"));
        assert!(err(size("16777216T")).contains("too large"));
        assert!(err(size("99999999999999999999999999999999999999999999T")).contains("large"));
        for bad in ["", "M", ".", "-1M", "1..2M", "1e9", "²M"] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts() {
        assert_eq!(count("32"), Ok(32));
        assert_eq!(count("1073741824"), Ok(MAX_COUNT));
        assert_eq!(err(count("0")), format!("\"0\" is zero; {COUNT_HINT}"));
        assert!(err(count("-1")).contains("negative"));
        assert!(err(count("1.5")).contains("not a whole number"));
        assert!(err(count("1073741825")).contains("too large"));
        assert!(err(count("99999999999999999999999")).contains("too large"));
        assert!(count("").is_err());
    }
}
