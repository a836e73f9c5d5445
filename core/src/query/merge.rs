//! SelectMergeStacktraces: merge the selected profiles into one function-name
//! tree and encode it as the client asked.

use alloc::format;
use alloc::string::String;

use kiln_proto::querier::v1::{
    AsyncQueryType, PprofProfile, ProfileFormat, SelectMergeSpanProfileRequest, SelectMergeSpanProfileResponse,
    SelectMergeStacktracesRequest, SelectMergeStacktracesResponse,
};

use super::selection::Selection;
use super::{Context, merge_profile, profile_selector};
use crate::dot::dot;
use crate::error::{Error, Result};
use crate::flamegraph::{flamegraph, tree_bytes};
use crate::kv::KvStore;
use crate::segment::StoredProfile;
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
    let format = ProfileFormat::try_from(req.format).unwrap_or(ProfileFormat::Unspecified);
    if format == ProfileFormat::Dot {
        return Ok(SelectMergeStacktracesResponse { dot: merged_dot(cx, req)?, ..Default::default() });
    }
    if format == ProfileFormat::Pprof {
        return Ok(SelectMergeStacktracesResponse {
            pprof: Some(PprofProfile { profile: Some(merge_profile::pprof(cx, req)?) }),
            ..Default::default()
        });
    }
    let max_nodes = max_nodes(req.max_nodes, cx.limits)?;
    let tree = merge(cx, req)?;
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
    let source = SelectMergeStacktracesRequest { max_nodes: Some(shown.max(DOT_SOURCE_NODES)), ..req.clone() };
    let profile = merge_profile::pprof(cx, &source)?;
    if profile.sample.is_empty() {
        return Ok(String::new());
    }
    Ok(dot(&profile, shown as usize))
}

/// Validates `max_nodes` as Pyroscope does: unset or 0 means the default,
/// negative means no limit, which only a disabled maximum (0) allows. The
/// result is a node count with 0 meaning no truncation.
pub(super) fn max_nodes(requested: Option<i64>, limits: &super::QueryLimits) -> Result<usize> {
    let max = limits.max_nodes_max;
    let n = match requested.unwrap_or(0) {
        0 => limits.max_nodes_default,
        n if max > 0 && n > max => {
            return Err(Error::invalid(format!("max flamegraph nodes limit {n} is greater than allowed {max}")));
        }
        n if max > 0 && n < 0 => {
            return Err(Error::invalid(format!("max flamegraph nodes limit must be set (max allowed {max})")));
        }
        n => n,
    };
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Merges every profile `req` selects (profile type, labels, `[start, end)`,
/// profile ids, span ids, call site) into one tree.
pub(super) fn merge<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &SelectMergeStacktracesRequest,
) -> Result<StackTree> {
    let selection = Selection::of(req)?;
    let selector = profile_selector(&req.profile_type_id, &req.label_selector)?;
    let mut tree = StackTree::new();
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(tree) };
    let series = cx.select(&selector, start, end)?;
    let filter = selection.samples();
    cx.storage.for_each_name_tree(&series, (start, end), selection.detail(), |_, names, profiles| {
        let keep = |p: &StoredProfile| p.timestamp_ms >= start && p.timestamp_ms < end && selection.keeps(p);
        if let Some(values) = names.node_values(profiles, keep, &filter) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::QueryLimits;
    use alloc::string::ToString;

    #[test]
    fn max_nodes_as_pyroscope_validates_it() {
        let limits = QueryLimits { max_nodes_default: 10, max_nodes_max: 20, ..Default::default() };
        assert_eq!(max_nodes(None, &limits).unwrap(), 10);
        assert_eq!(max_nodes(Some(0), &limits).unwrap(), 10);
        assert_eq!(max_nodes(Some(20), &limits).unwrap(), 20);
        assert_eq!(
            max_nodes(Some(21), &limits).unwrap_err().to_string(),
            "max flamegraph nodes limit 21 is greater than allowed 20"
        );
        assert_eq!(
            max_nodes(Some(-1), &limits).unwrap_err().to_string(),
            "max flamegraph nodes limit must be set (max allowed 20)"
        );
        // A disabled maximum allows anything, and -1 means no truncation.
        let open = QueryLimits { max_nodes_default: 0, max_nodes_max: 0, ..Default::default() };
        assert_eq!(max_nodes(Some(5_000_000), &open).unwrap(), 5_000_000);
        assert_eq!(max_nodes(Some(-1), &open).unwrap(), 0);
        assert_eq!(max_nodes(None, &open).unwrap(), 0);
    }
}
