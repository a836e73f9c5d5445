//! ProfileTypes, LabelNames, LabelValues and Series: answered from the series
//! logs alone, never from segment data.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use kiln_proto::querier::v1::{ProfileTypesRequest, ProfileTypesResponse, SeriesRequest, SeriesResponse};
use kiln_proto::types::v1::{
    LabelNamesRequest, LabelNamesResponse, LabelPair, LabelValuesRequest, LabelValuesResponse, Labels as LabelsMsg,
};

use super::{Context, is_legacy_label_name, parse_matchers};
use crate::error::{Error, Result};
use crate::kv::KvStore;
use crate::profile_type::ProfileType;

const HOUR_MS: i64 = 3_600_000;

pub fn profile_types<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &ProfileTypesRequest,
) -> Result<ProfileTypesResponse> {
    // Both bounds unset means "the last hour".
    let (start, end) =
        if req.start == 0 && req.end == 0 { (cx.now_ms - HOUR_MS, cx.now_ms) } else { (req.start, req.end) };
    let Some((start, end)) = cx.range(start, end)? else { return Ok(ProfileTypesResponse::default()) };
    let mut ids = BTreeSet::new();
    for s in cx.storage.series(start, end)? {
        if let Some(id) = s.labels.get("__profile_type__") {
            ids.insert(id.to_string());
        }
    }
    let profile_types = ids.iter().filter_map(|id| ProfileType::parse(id).ok()).map(|t| t.to_proto()).collect();
    Ok(ProfileTypesResponse { profile_types })
}

pub fn label_names<S: KvStore + ?Sized>(cx: &Context<'_, S>, req: &LabelNamesRequest) -> Result<LabelNamesResponse> {
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(LabelNamesResponse::default()) };
    let selector = parse_matchers(&req.matchers)?;
    let mut names = BTreeSet::new();
    for s in cx.select(&selector, start, end)? {
        for (name, _) in s.labels.iter() {
            if cx.allow_utf8_label_names || is_legacy_label_name(name) {
                names.insert(name.to_string());
            }
        }
    }
    Ok(LabelNamesResponse { names: names.into_iter().collect() })
}

pub fn label_values<S: KvStore + ?Sized>(cx: &Context<'_, S>, req: &LabelValuesRequest) -> Result<LabelValuesResponse> {
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(LabelValuesResponse::default()) };
    if req.name.is_empty() {
        return Err(Error::invalid("name is required"));
    }
    let selector = parse_matchers(&req.matchers)?;
    let mut values = BTreeSet::new();
    for s in cx.select(&selector, start, end)? {
        if let Some(v) = s.labels.get(&req.name) {
            values.insert(v.to_string());
        }
    }
    Ok(LabelValuesResponse { names: values.into_iter().collect() })
}

pub fn series<S: KvStore + ?Sized>(cx: &Context<'_, S>, req: &SeriesRequest) -> Result<SeriesResponse> {
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(SeriesResponse::default()) };
    let selector = parse_matchers(&req.matchers)?;
    // Keyed by the projected pairs: sorts sets and collapses duplicates.
    let mut sets: BTreeMap<Vec<(String, String)>, ()> = BTreeMap::new();
    for s in cx.select(&selector, start, end)? {
        let projected: Vec<(String, String)> = s
            .labels
            .iter()
            .filter(|(n, _)| {
                if req.label_names.is_empty() {
                    cx.allow_utf8_label_names || is_legacy_label_name(n)
                } else {
                    req.label_names.iter().any(|want| want == n)
                }
            })
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        sets.insert(projected, ());
    }
    let labels_set = sets
        .into_keys()
        .map(|pairs| LabelsMsg { labels: pairs.into_iter().map(|(name, value)| LabelPair { name, value }).collect() })
        .collect();
    Ok(SeriesResponse { labels_set })
}
