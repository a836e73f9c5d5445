//! Individual points behind time series and heatmaps: one per stored profile
//! (or per span of a profile), merged by identity, which become exemplars.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use kiln_proto::types::v1::{Exemplar, LabelPair};

use super::selection::profile_id_string;
use crate::FastMap;
use crate::labels::Labels;
use crate::store::SeriesRef;

/// What identifies a point: the series cut from one upload share the
/// profile id and timestamp, and such points are one point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PointKey {
    pub timestamp: i64,
    /// 0 = not a span point.
    pub span_id: u64,
    /// 0 = none.
    pub trace_id: u128,
    /// All zero = not a profile point.
    pub profile_id: [u8; 16],
}

#[derive(Debug)]
pub(super) struct Point {
    pub value: i64,
    /// Ids of the series the point was seen in; its labels are what they
    /// have in common.
    series: Vec<u64>,
}

/// The points of one group, with the labels of the series they come from.
#[derive(Debug, Default)]
pub(super) struct Points {
    points: FastMap<PointKey, Point>,
    labels: FastMap<u64, Labels>,
}

impl Points {
    pub(super) fn add(&mut self, series: &SeriesRef, key: PointKey, value: i64) {
        if !self.labels.contains_key(&series.id) {
            self.labels.insert(series.id, series.labels.clone());
        }
        let point = self.points.entry(key).or_insert_with(|| Point { value: 0, series: vec![] });
        point.value += value;
        if !point.series.contains(&series.id) {
            point.series.push(series.id);
        }
    }

    /// Every point, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&PointKey, &Point)> {
        self.points.iter()
    }

    /// The point as an exemplar: its labels are the ones all its series
    /// share, minus the `group_by` labels (which the series already carries).
    pub(super) fn exemplar(&self, key: &PointKey, point: &Point, group_by: &[String]) -> Exemplar {
        let mut sets = point.series.iter().filter_map(|id| self.labels.get(id));
        let first = sets.next();
        let rest: Vec<&Labels> = sets.collect();
        let labels = first
            .into_iter()
            .flat_map(Labels::iter)
            .filter(|(name, value)| {
                !group_by.iter().any(|g| g == name) && rest.iter().all(|other| other.get(name) == Some(value))
            })
            .map(|(name, value)| LabelPair { name: name.into(), value: value.into() })
            .collect();
        Exemplar {
            timestamp: key.timestamp,
            profile_id: if key.profile_id == [0; 16] { String::new() } else { profile_id_string(&key.profile_id) },
            span_id: if key.span_id == 0 { String::new() } else { format!("{:016x}", key.span_id) },
            value: point.value,
            labels,
            trace_id: if key.trace_id == 0 { String::new() } else { format!("{:032x}", key.trace_id) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(id: u64, labels: &[(&str, &str)]) -> SeriesRef {
        SeriesRef { hour: 0, id, labels: Labels::from_pairs(labels.iter().copied()) }
    }

    #[test]
    fn points_of_one_upload_merge_and_share_labels() {
        let a = series(1, &[("service_name", "s"), ("thread", "1")]);
        let b = series(2, &[("service_name", "s"), ("thread", "2")]);
        let key = PointKey { timestamp: 5, span_id: 0, trace_id: 0, profile_id: [7; 16] };
        let mut points = Points::default();
        points.add(&a, key, 10);
        points.add(&b, key, 5);
        points.add(&a, PointKey { span_id: 0xab, ..key }, 1);
        assert_eq!(points.iter().count(), 2);
        let (_, merged) = points.iter().find(|(k, _)| **k == key).unwrap();
        assert_eq!(merged.value, 15);
        let e = points.exemplar(&key, merged, &[]);
        assert_eq!(e.labels, [LabelPair { name: "service_name".into(), value: "s".into() }]);
        assert_eq!(e.profile_id, "07070707-0707-0707-0707-070707070707");
        assert!(points.exemplar(&key, merged, &["service_name".into()]).labels.is_empty());
        let span = PointKey { span_id: 0xab, trace_id: 0xcd, profile_id: [0; 16], ..key };
        points.add(&a, span, 1);
        let (_, p) = points.iter().find(|(k, _)| **k == span).unwrap();
        let e = points.exemplar(&span, p, &[]);
        assert_eq!((e.span_id.as_str(), e.profile_id.as_str()), ("00000000000000ab", ""));
        assert_eq!(e.trace_id, "000000000000000000000000000000cd");
    }
}
