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
use crate::error::{Error, Result};
use crate::flamegraph::{flamegraph, tree_bytes};
use crate::ingest::parse_span_id;
use crate::kv::KvStore;
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
    if format == ProfileFormat::Dot {
        return Err(Error::Unimplemented("format PROFILE_FORMAT_DOT is not supported yet".into()));
    }
    if format == ProfileFormat::Pprof {
        if spans.is_some() {
            return Err(Error::Unimplemented("span selectors with the pprof format are not supported yet".into()));
        }
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
    cx.storage.for_each_segment(&series, |_, symbols, profiles| {
        symbols.merge_into(&profiles, &mut tree, |p| p.timestamp_ms >= start && p.timestamp_ms < end, spans);
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
