//! `from`/`until` values (Pyroscope's `attime`): Unix time in s, ms, µs or
//! ns told apart by digit count, `YYYYMMDD`, or `now`-relative offsets.

const NS_PER_S: i64 = 1_000_000_000;

/// Parses `value` to Unix nanoseconds; anything unreadable means `now_ns`.
pub fn parse(value: &str, now_ns: i64) -> i64 {
    let s: alloc::string::String = value.chars().filter(|c| !matches!(c, '_' | ',' | ' ')).collect();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return absolute(&s).unwrap_or(now_ns);
    }
    match s.find(['+', '-']) {
        Some(i) => now_ns.saturating_add(relative(&s[i..])),
        None => now_ns,
    }
}

fn absolute(digits: &str) -> Option<i64> {
    let n: i64 = digits.parse().ok()?;
    if digits.len() == 8
        && let Some(ns) = date(n)
    {
        return Some(ns);
    }
    match digits.len() {
        13 => n.checked_mul(1_000_000),
        16 => n.checked_mul(1_000),
        19 => Some(n),
        _ => n.checked_mul(NS_PER_S),
    }
}

/// `YYYYMMDD` as UTC midnight, if it is a real date.
fn date(n: i64) -> Option<i64> {
    let (y, m, d) = (n / 10_000, n / 100 % 100, n % 100);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[m as usize - 1] {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 * NS_PER_S)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `[+-]<n><unit>`: only the first term counts (`-3h30m` is −3h).
fn relative(term: &str) -> i64 {
    let sign = if term.starts_with('-') { -1 } else { 1 };
    let rest = &term[1..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let n: i64 = rest[..digits].parse().unwrap_or(0);
    let unit = &rest[digits..];
    let seconds = if unit.starts_with('s') {
        1
    } else if unit.starts_with("mon") || unit.starts_with('M') {
        30 * 86_400
    } else if unit.starts_with('m') {
        60
    } else if unit.starts_with('h') {
        3_600
    } else if unit.starts_with('d') {
        86_400
    } else if unit.starts_with('w') {
        7 * 86_400
    } else if unit.starts_with('y') {
        365 * 86_400
    } else {
        0
    };
    sign * n.saturating_mul(seconds).saturating_mul(NS_PER_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_582_000_123_456_789;

    #[test]
    fn absolute_units_by_length() {
        assert_eq!(parse("1795582180", NOW), 1_795_582_180 * NS_PER_S);
        assert_eq!(parse("1795582180123", NOW), 1_795_582_180_123_000_000);
        assert_eq!(parse("1795582180123456", NOW), 1_795_582_180_123_456_000);
        assert_eq!(parse("1795582472795713814", NOW), 1_795_582_472_795_713_814);
        assert_eq!(parse("1_795_582_180", NOW), 1_795_582_180 * NS_PER_S);
        assert_eq!(parse("20261125", NOW), 1_795_564_800 * NS_PER_S);
        // Eight digits that are no date are seconds.
        assert_eq!(parse("20261399", NOW), 20_261_399 * NS_PER_S);
        assert_eq!(parse("99999999999999999999999", NOW), NOW);
    }

    #[test]
    fn relative_forms() {
        assert_eq!(parse("now", NOW), NOW);
        assert_eq!(parse("", NOW), NOW);
        assert_eq!(parse("now-1h", NOW), NOW - 3_600 * NS_PER_S);
        assert_eq!(parse("-30m", NOW), NOW - 1_800 * NS_PER_S);
        assert_eq!(parse("now-3h30m", NOW), NOW - 3 * 3_600 * NS_PER_S);
        assert_eq!(parse("now+2d", NOW), NOW + 2 * 86_400 * NS_PER_S);
        assert_eq!(parse("now-1mon", NOW), NOW - 30 * 86_400 * NS_PER_S);
        assert_eq!(parse("now-1M", NOW), NOW - 30 * 86_400 * NS_PER_S);
        assert_eq!(parse("now-2w", NOW), NOW - 14 * 86_400 * NS_PER_S);
        assert_eq!(parse("now-1y", NOW), NOW - 365 * 86_400 * NS_PER_S);
        assert_eq!(parse("now-10s", NOW), NOW - 10 * NS_PER_S);
        assert_eq!(parse("now-5x", NOW), NOW);
    }
}
