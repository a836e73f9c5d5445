//! Time formatting the way Pyroscope's messages print it (Go's RFC 3339 and
//! duration strings) and the `attime` time values of the legacy HTTP API. The
//! core never reads a clock: callers pass `now`.

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

const NS_PER_S: i64 = 1_000_000_000;

/// A legacy API time value (`from`, `until`; spec `ingest.md` §3.2) in Unix
/// ns: `YYYYMMDD`, Unix s/ms/µs/ns by digit count, or `now-1h`-style offsets
/// from `now_ns`. Like Pyroscope it never fails: unparsable parts count as 0.
pub fn parse_attime(input: &str, now_ns: i64) -> i64 {
    let s: String = input.trim().chars().filter(|c| !matches!(c, '_' | ',' | ' ')).collect();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if let Some(days) = yyyymmdd(&s) {
            return days * 86_400 * NS_PER_S;
        }
        // Go's Atoi: out of range means 0.
        let v: i64 = s.parse().unwrap_or(0);
        return match s.len() {
            13 => v.saturating_mul(1_000_000),
            16 => v.saturating_mul(1000),
            19 => v,
            _ => v.saturating_mul(NS_PER_S),
        };
    }
    // Whatever precedes the first sign is the reference, which is always now.
    let Some(at) = s.find(['+', '-']) else { return now_ns };
    let (negative, offset) = (s.as_bytes()[at] == b'-', &s[at + 1..]);
    let digits = offset.bytes().take_while(u8::is_ascii_digit).count();
    let n: i64 = offset[..digits].parse().unwrap_or(0);
    // The unit is everything after the number, matched by prefix, so only
    // the first term counts (`now-3h30m` is now-3h).
    let unit = &offset[digits..];
    let seconds = match () {
        _ if unit.starts_with('s') => 1,
        _ if unit.starts_with("mon") || unit.starts_with('M') => 30 * 86_400,
        _ if unit.starts_with('m') => 60,
        _ if unit.starts_with('h') => 3600,
        _ if unit.starts_with('d') => 86_400,
        _ if unit.starts_with('w') => 7 * 86_400,
        _ if unit.starts_with('y') => 365 * 86_400,
        _ => 0,
    };
    let delta = n.saturating_mul(seconds).saturating_mul(NS_PER_S);
    if negative { now_ns.saturating_sub(delta) } else { now_ns.saturating_add(delta) }
}

/// Days since the epoch of an 8-digit `YYYYMMDD` that is a real date after 1900.
fn yyyymmdd(s: &str) -> Option<i64> {
    if s.len() != 8 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (s[..4].parse().ok()?, s[4..6].parse().ok()?, s[6..].parse().ok()?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if y <= 1900 || !(1..=12).contains(&m) || d == 0 || d > month_days[m as usize - 1] {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Proleptic Gregorian (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

    /// [`parse_attime`] at ms resolution, as the tests below read best.
    fn attime_ms(input: &str, now_ms: i64) -> i64 {
        parse_attime(input, now_ms * 1_000_000).div_euclid(1_000_000)
    }

    #[test]
    fn attime_keeps_nanoseconds() {
        let now = 1_795_582_000_123_456_789;
        assert_eq!(parse_attime("1795582472795713814", now), 1_795_582_472_795_713_814);
        assert_eq!(parse_attime("now-10s", now), now - 10_000_000_000);
    }

    #[test]
    fn attime_absolute_forms() {
        let now = 1_700_000_000_123;
        assert_eq!(attime_ms("20231223", now), 1_703_289_600_000);
        assert_eq!(attime_ms("1577836800", now), 1_577_836_800_000);
        assert_eq!(attime_ms("1577836800000", now), 1_577_836_800_000);
        assert_eq!(attime_ms("1577836800000000", now), 1_577_836_800_000);
        assert_eq!(attime_ms("1577836800000000000", now), 1_577_836_800_000);
        assert_eq!(attime_ms(" 1_577_836,800 ", now), 1_577_836_800_000);
        assert_eq!(attime_ms("0", now), 0);
        // Not a date (month 13): Unix seconds.
        assert_eq!(attime_ms("20231323", now), 20_231_323_000);
        assert_eq!(attime_ms("99999999999999999999", now), 0, "out of range");
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2024, 12, 31), (1901, 3, 1)] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
    }

    #[test]
    fn attime_relative_forms() {
        let now = 1_700_000_000_123;
        assert_eq!(attime_ms("now", now), now);
        assert_eq!(attime_ms("", now), now);
        assert_eq!(attime_ms("now-1h", now), now - 3_600_000);
        assert_eq!(attime_ms("now-30m", now), now - 1_800_000);
        assert_eq!(attime_ms("now-30min", now), now - 1_800_000);
        assert_eq!(attime_ms("now-2d", now), now - 2 * 86_400_000);
        assert_eq!(attime_ms("now-1w", now), attime_ms("now-7d", now));
        assert_eq!(attime_ms("now-1M", now), now - 30 * 86_400_000);
        assert_eq!(attime_ms("now-1mon", now), now - 30 * 86_400_000);
        assert_eq!(attime_ms("now-1y", now), now - 365 * 86_400_000);
        assert_eq!(attime_ms("now+10s", now), now + 10_000);
        assert_eq!(attime_ms("-15m", now), now - 900_000);
        assert_eq!(attime_ms("now-3h30m", now), now - 3 * 3_600_000, "one term only");
        assert_eq!(attime_ms("now-5x", now), now, "unknown unit");
    }
}
