//! SelectMergeStacktraces: merge the selected profiles into one function-name
//! tree and encode it as the client asked.

use alloc::format;
use alloc::string::String;

use kiln_proto::querier::v1::{
    AsyncQueryType, PprofProfile, ProfileFormat, SelectMergeProfileRequest, SelectMergeSpanProfileRequest,
    SelectMergeSpanProfileResponse, SelectMergeStacktracesRequest, SelectMergeStacktracesResponse,
};

use super::{Context, profile_selector, select_merge_profile};
use crate::FastSet;
use crate::dot::dot;
use crate::error::{Error, Result};
use crate::flamegraph::{flamegraph, tree_bytes};
use crate::ingest::parse_span_id;
use crate::kv::KvStore;
use crate::segment::{StoredProfile, node_values};
use crate::store::Detail;
use crate::tree::StackTree;

pub fn select_merge_stacktraces<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &SelectMergeStacktracesRequest,
) -> Result<SelectMergeStacktracesResponse> {
    if !req.span_selector.is_empty() && !req.trace_id_selector.is_empty() {
        return Err(Error::invalid("span_selector and trace_id_selector cannot be used together"));
    }
    if req.r#async.as_ref().is_some_and(|a| a.r#type == AsyncQueryType::Force as i32) {
        return Err(Error::Unimplemented("async queries are not enabled".into()));
    }
    let spans = sample_filter(req)?;
    let format = ProfileFormat::try_from(req.format).unwrap_or(ProfileFormat::Unspecified);
    if matches!(format, ProfileFormat::Pprof | ProfileFormat::Dot) && spans.is_some() {
        return Err(Error::Unimplemented("span selectors with the pprof and dot formats are not supported yet".into()));
    }
    if format == ProfileFormat::Dot {
        return Ok(SelectMergeStacktracesResponse { dot: merged_dot(cx, req)?, ..Default::default() });
    }
    if format == ProfileFormat::Pprof {
        let profile = select_merge_profile(
            cx,
            &SelectMergeProfileRequest {
                profile_type_id: req.profile_type_id.clone(),
                label_selector: req.label_selector.clone(),
                start: req.start,
                end: req.end,
                ..Default::default()
            },
        )?;
        return Ok(SelectMergeStacktracesResponse {
            pprof: Some(PprofProfile { profile: Some(profile) }),
            ..Default::default()
        });
    }
    let max_nodes = max_nodes(req.max_nodes, cx.limits)?;
    let tree = merge(cx, req, spans.as_ref())?;
    Ok(match format {
        ProfileFormat::Tree => {
            SelectMergeStacktracesResponse { tree: tree_bytes(&tree, max_nodes), ..Default::default() }
        }
        _ => SelectMergeStacktracesResponse { flamegraph: Some(flamegraph(&tree, max_nodes)), ..Default::default() },
    })
}

/// Nodes a DOT graph shows unless `max_nodes` says otherwise.
const DOT_NODES: i64 = 100;
/// The fewest nodes the merged profile behind a DOT graph is cut to.
const DOT_SOURCE_NODES: i64 = 512;

/// The DOT graph of the selected profiles merged into one pprof, or "" when
/// nothing was selected.
fn merged_dot<S: KvStore + ?Sized>(cx: &Context<'_, S>, req: &SelectMergeStacktracesRequest) -> Result<String> {
    let shown = req.max_nodes.filter(|&n| n > 0).unwrap_or(DOT_NODES);
    let profile = select_merge_profile(
        cx,
        &SelectMergeProfileRequest {
            profile_type_id: req.profile_type_id.clone(),
            label_selector: req.label_selector.clone(),
            start: req.start,
            end: req.end,
            max_nodes: Some(shown.max(DOT_SOURCE_NODES)),
            ..Default::default()
        },
    )?;
    if profile.sample.is_empty() {
        return Ok(String::new());
    }
    Ok(dot(&profile, shown as usize))
}

/// The span ids `req` restricts samples to, if any. Selectors kiln cannot
/// apply yet are refused: answering without them would be a wrong answer.
pub(super) fn sample_filter(req: &SelectMergeStacktracesRequest) -> Result<Option<FastSet<u64>>> {
    let call_site = req.stack_trace_selector.as_ref().is_some_and(|s| !s.call_site.is_empty());
    if !req.trace_id_selector.is_empty() || !req.profile_id_selector.is_empty() || call_site {
        return Err(Error::Unimplemented("trace, profile id and call site selectors are not supported yet".into()));
    }
    span_set(&req.span_selector)
}

/// The span ids to keep, if any were asked for: 16 hex digits each, matched
/// by value (so case does not matter).
fn span_set(selector: &[String]) -> Result<Option<FastSet<u64>>> {
    if selector.is_empty() {
        return Ok(None);
    }
    selector
        .iter()
        .map(|s| match parse_span_id(s) {
            0 if s.len() != 16 || u64::from_str_radix(s, 16).is_err() => {
                Err(Error::invalid(format!("invalid span id {s:?}: want 16 hex digits")))
            }
            id => Ok(id),
        })
        .collect::<Result<FastSet<u64>>>()
        .map(Some)
}

/// Validates `max_nodes` as Pyroscope does; unset or 0 means the default.
pub(super) fn max_nodes(requested: Option<i64>, limits: &super::QueryLimits) -> Result<usize> {
    let n = match requested.unwrap_or(0) {
        0 => limits.max_nodes_default,
        n if n < 0 => {
            return Err(Error::invalid(format!(
                "max flamegraph nodes limit must be set (max allowed {})",
                limits.max_nodes_max
            )));
        }
        n if n > limits.max_nodes_max => {
            return Err(Error::invalid(format!(
                "max flamegraph nodes limit {n} is greater than allowed {}",
                limits.max_nodes_max
            )));
        }
        n => n,
    };
    Ok(n as usize)
}

/// Merges every profile `req` selects (profile type, labels, `[start, end)`,
/// optionally span ids) into one tree.
pub(super) fn merge<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &SelectMergeStacktracesRequest,
    spans: Option<&FastSet<u64>>,
) -> Result<StackTree> {
    let selector = profile_selector(&req.profile_type_id, &req.label_selector)?;
    let mut tree = StackTree::new();
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(tree) };
    let series = cx.select(&selector, start, end)?;
    let detail = if spans.is_some() { Detail::Profiles } else { Detail::Merged };
    cx.storage.for_each_name_tree(&series, (start, end), detail, |_, names, profiles| {
        let keep = |p: &StoredProfile| p.timestamp_ms >= start && p.timestamp_ms < end;
        if let Some(values) = node_values(names.stack_nodes.len(), profiles, keep, spans) {
            names.merge_into(&values, &mut tree);
        }
        Ok(())
    })?;
    Ok(tree)
}

/// SelectMergeSpanProfile (deprecated in Pyroscope): SelectMergeStacktraces
/// restricted to `span_selector`, answering a tree or a flame graph.
pub fn select_merge_span_profile<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &SelectMergeSpanProfileRequest,
) -> Result<SelectMergeSpanProfileResponse> {
    let tree = req.format == ProfileFormat::Tree as i32;
    let merged = select_merge_stacktraces(
        cx,
        &SelectMergeStacktracesRequest {
            profile_type_id: req.profile_type_id.clone(),
            label_selector: req.label_selector.clone(),
            start: req.start,
            end: req.end,
            max_nodes: req.max_nodes,
            format: if tree { ProfileFormat::Tree } else { ProfileFormat::Flamegraph } as i32,
            span_selector: req.span_selector.clone(),
            ..Default::default()
        },
    )?;
    Ok(SelectMergeSpanProfileResponse { flamegraph: merged.flamegraph, tree: merged.tree })
}
