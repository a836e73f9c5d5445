//! The text formats: folded stacks (`a;b;c 12` per line, Pyroscope's default
//! "groups" format) and lines (`a;b;c` per sample).

use alloc::format;
use alloc::string::String;

use super::stacks::StackCounts;

/// Pyroscope reads lines with a 64 KiB scanner buffer.
const MAX_LINE: usize = 64 * 1024;

/// Folded stacks: each line splits at its last space into stack and count.
/// Lines without a space are skipped; a line longer than 64 KiB silently ends
/// the input (as Pyroscope's scanner does); a bad count fails the upload.
pub fn parse_folded(body: &[u8]) -> Result<StackCounts, String> {
    let mut stacks = StackCounts::default();
    for line in lines(body) {
        if line.len() > MAX_LINE {
            break;
        }
        let Some(space) = line.iter().rposition(|&b| b == b' ') else { continue };
        let (stack, count) = (&line[..space], &line[space + 1..]);
        let count = parse_count(count)?;
        let stack = String::from_utf8_lossy(stack);
        stacks.add(stack.split(';'), count);
    }
    Ok(stacks)
}

/// Lines: every line is one sample of its stack.
pub fn parse_lines(body: &[u8]) -> Result<StackCounts, String> {
    let mut stacks = StackCounts::default();
    for line in lines(body) {
        if line.len() > MAX_LINE {
            return Err("bufio.Scanner: token too long".into());
        }
        if line.is_empty() {
            continue;
        }
        stacks.add(String::from_utf8_lossy(line).split(';'), 1);
    }
    Ok(stacks)
}

/// Lines without their `\n` or `\r\n`, the last one unterminated or not.
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|_| !body.is_empty())
}

/// Go's `strconv.Atoi`: optional sign, decimal digits, 64 bits.
fn parse_count(text: &[u8]) -> Result<i64, String> {
    core::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("strconv.Atoi: parsing {:?}: invalid syntax", String::from_utf8_lossy(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::stacks::Metric;
    use crate::pprof::collapsed;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    fn folded(body: &str) -> Vec<(String, i64)> {
        let metric = Metric::for_suffix("alloc_objects").unwrap();
        collapsed(&parse_folded(body.as_bytes()).unwrap().into_profile(&metric, 100, 0), 0)
    }

    #[test]
    fn count_after_the_last_space() {
        let body = "main;std::vec::Vec<T>::push {closure#0} 3\nmain;<&dyn Fn() = i32>::call 2\r\nno-space\n\nmain 1";
        let want = [("main", 1), ("main;<&dyn Fn() = i32>::call", 2), ("main;std::vec::Vec<T>::push {closure#0}", 3)];
        assert_eq!(folded(body), want.map(|(s, v)| (s.to_string(), v)));
        assert_eq!(folded("a;;b 1\na;;b 2\n"), [("a;;b".to_string(), 3)]);
        assert_eq!(folded(""), []);
    }

    #[test]
    fn bad_counts_and_long_lines() {
        let err = parse_folded(b"a;b 1\n# a comment\n").err().unwrap();
        assert_eq!(err, "strconv.Atoi: parsing \"comment\": invalid syntax");
        assert!(parse_folded(b"a 1x").is_err());
        let long = alloc::format!("a 1\n{} 1\nb 1\n", "x".repeat(MAX_LINE + 1));
        assert_eq!(folded(&long), [("a".to_string(), 1)]);
    }

    #[test]
    fn lines_count_repeats() {
        let metric = Metric::for_suffix("alloc_objects").unwrap();
        let p = parse_lines(b"a;b\n\na;b\r\na;c").unwrap().into_profile(&metric, 100, 0);
        assert_eq!(collapsed(&p, 0), [("a;b".to_string(), 2), ("a;c".to_string(), 1)]);
        assert!(parse_lines(alloc::format!("{}\n", "x".repeat(MAX_LINE + 1)).as_bytes()).is_err());
    }
}
