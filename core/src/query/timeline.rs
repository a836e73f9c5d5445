//! The timeline of `/pyroscope/render`: the step Pyroscope derives from the
//! query range, and one `SelectSeries` series laid out as zero-filled
//! buckets (spec `query.md` §11.1).

use alloc::vec;

use kiln_proto::types::v1::Series;

use crate::flamebearer::Timeline;

/// Points a timeline aims for over its range.
const RESOLUTION: i64 = 1500;
/// Pyroscope's code uses 15 s (its docs say 10 s).
const MIN_STEP_MS: i64 = 15_000;

/// The timeline step in whole seconds for `[start_ms, end_ms]`: the range
/// over 1500 points, rounded onto Grafana's fixed intervals, at least 15 s.
pub fn step_seconds(start_ms: i64, end_ms: i64) -> i64 {
    let raw = end_ms.saturating_sub(start_ms) / RESOLUTION;
    if raw < MIN_STEP_MS {
        return MIN_STEP_MS / 1000;
    }
    const S: i64 = 1000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;
    const D: i64 = 24 * H;
    // (largest raw interval, step); raw ≥ 15 s here, so the finer rows of
    // Grafana's table can never match and are left out.
    const STEPS: [(i64, i64); 17] = [
        (17_500, 15 * S),
        (25 * S, 20 * S),
        (45 * S, 30 * S),
        (90 * S, M),
        (210 * S, 2 * M),
        (450 * S, 5 * M),
        (750 * S, 10 * M),
        (1050 * S, 15 * M),
        (1500 * S, 20 * M),
        (2700 * S, 30 * M),
        (5400 * S, H),
        (9000 * S, 2 * H),
        (16_200 * S, 3 * H),
        (9 * H, 6 * H),
        (D, 12 * H),
        (2 * D, D),
        (7 * D, D),
    ];
    let step = match STEPS.iter().find(|(max, _)| raw <= *max) {
        Some((_, step)) => *step,
        None if raw <= 21 * D => 7 * D,
        None if raw < 42 * D => 30 * D,
        None => 365 * D,
    };
    step / 1000
}

/// Lays `series` (time-ordered points) over `[start_ms, end_ms)` snapped down
/// to whole steps: one sample per step, zero where there is no point.
pub fn timeline(series: Option<&Series>, start_ms: i64, end_ms: i64, step_s: i64) -> Timeline {
    let step_ms = step_s * 1000;
    let (start, end) = ((start_ms / step_ms) * step_ms, (end_ms / step_ms) * step_ms);
    let start_s = start / 1000;
    let mut t = Timeline { start_time: start_s, samples: vec![], duration_delta: step_s };
    if start >= end {
        return t;
    }
    t.samples = vec![0; ((end / 1000 - start_s) / step_s) as usize];
    for p in series.map_or(&[][..], |s| &s.points) {
        if p.timestamp < start || p.timestamp >= end {
            continue;
        }
        let i = ((p.timestamp / 1000 - start_s) / step_s) as usize;
        if let Some(slot) = t.samples.get_mut(i) {
            // Go's float-to-uint64 conversion of the bucket value.
            *slot = p.value as u64;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_proto::types::v1::Point;

    #[test]
    fn steps_follow_the_range() {
        let h = 3_600_000;
        assert_eq!(step_seconds(0, 0), 15);
        assert_eq!(step_seconds(0, h), 15, "2.4 s raw: the minimum");
        assert_eq!(step_seconds(0, 6 * h), 15, "14.4 s raw");
        assert_eq!(step_seconds(0, 7 * h), 15, "16.8 s raw");
        assert_eq!(step_seconds(0, 24 * h), 60, "57.6 s raw");
        assert_eq!(step_seconds(0, 7 * 24 * h), 300, "403 s raw");
        assert_eq!(step_seconds(0, 365 * 24 * h), 6 * 3600);
        assert_eq!(step_seconds(0, 15_000 * 24 * h), 7 * 86_400);
        assert_eq!(step_seconds(0, 100_000 * 24 * h), 365 * 86_400);
    }

    #[test]
    fn points_land_in_zero_filled_buckets() {
        let series = Series {
            labels: vec![],
            points: [(999_000, 7.0), (1_020_000, 3.0), (1_065_000, 5.0), (1_080_000, 9.0)]
                .into_iter()
                .map(|(timestamp, value)| Point { timestamp, value, ..Default::default() })
                .collect(),
        };
        // Start 1_005_000 snaps to 1_005_000 (a multiple of 15 s); end 1_080_500 to 1_080_000.
        let t = timeline(Some(&series), 1_005_000, 1_080_500, 15);
        assert_eq!(t.start_time, 1005);
        assert_eq!(t.duration_delta, 15);
        assert_eq!(t.samples, [0, 3, 0, 0, 5], "before start and at end: left out");
        assert_eq!(timeline(None, 1_005_000, 1_080_500, 15).samples, [0; 5]);
        assert!(timeline(Some(&series), 1_000_000, 1_000_000, 15).samples.is_empty());
    }
}
