//! Time formatting the way Pyroscope's messages print it (Go's RFC 3339 and
//! duration strings). The core never reads a clock: callers pass `now`.

use alloc::format;
use alloc::string::String;

/// `2024-02-29T13:05:09.123Z` for Unix milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Go's `time.Duration.String()` for whole seconds and up: `48h0m0s`, `1m30s`.
pub fn go_duration_ms(ms: i64) -> String {
    let secs = ms / 1000;
    let frac = ms % 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = if frac == 0 { format!("{s}s") } else { format!("{s}.{:03}s", frac).replace("0s", "s") };
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_709_211_909_123), "2024-02-29T13:05:09.123Z");
        assert_eq!(go_duration_ms(48 * 3_600_000), "48h0m0s");
        assert_eq!(go_duration_ms(90_000), "1m30s");
        assert_eq!(go_duration_ms(5_000), "5s");
    }
}
