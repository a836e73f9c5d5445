//! Diff: two selections merged side by side into Pyroscope's diff flame graph
//! (7 integers per node: left x delta, total, self; right x delta, total,
//! self; name index).

use kiln_proto::querier::v1::{DiffRequest, DiffResponse, SelectMergeStacktracesRequest};

use super::Context;
use super::merge::{max_nodes, merge};
use crate::error::{Error, Result};
use crate::flamegraph::flamegraph_diff;
use crate::kv::KvStore;

pub fn diff<S: KvStore + ?Sized>(cx: &Context<'_, S>, req: &DiffRequest) -> Result<DiffResponse> {
    let side = |r: &Option<SelectMergeStacktracesRequest>, which: &str| {
        r.clone().ok_or_else(|| Error::invalid(alloc::format!("{which} profile is required")))
    };
    let (left, right) = (side(&req.left, "left")?, side(&req.right, "right")?);
    let limit = max_nodes(left.max_nodes.max(right.max_nodes), cx.limits)?;
    // Any failure of either side is the client's: Pyroscope answers 400.
    let as_invalid = |e: Error| match e {
        Error::Store(_) | Error::Corrupt(_) => e,
        other => Error::InvalidArgument(alloc::format!("{other}")),
    };
    let left = merge(cx, &left).map_err(as_invalid)?;
    let right = merge(cx, &right).map_err(as_invalid)?;
    Ok(DiffResponse { flamegraph: Some(flamegraph_diff(&left, &right, limit)) })
}
