//! Pyroscope's Connect services, method by method: decode, call the core,
//! encode. No logic of its own beyond choosing the tenant, time and limits.

use kiln_core::ingest::{self, RawProfile};
use kiln_core::query::{self, Context};
use kiln_core::store::Storage;
use kiln_proto::push::v1::{PushRequest, PushResponse};
use kiln_proto::querier::v1::{
    AnalyzeQueryRequest, DiffRequest, ProfileTypesRequest, SelectHeatmapRequest, SelectMergeProfileRequest,
    SelectMergeSpanProfileRequest, SelectMergeStacktracesRequest, SelectSeriesRequest, SeriesRequest,
};
use kiln_proto::types::v1::{GetProfileStatsRequest, LabelNamesRequest, LabelValuesRequest};

use crate::connect::{Call, Code, ConnectError};
use crate::http::{Reply, RequestHead};
use crate::kv::WasiKv;
use crate::{config, tenant};

/// Querier methods kiln serves: all of Pyroscope's.
const SERVED: [&str; 12] = [
    "ProfileTypes",
    "LabelNames",
    "LabelValues",
    "Series",
    "SelectMergeStacktraces",
    "SelectMergeProfile",
    "SelectMergeSpanProfile",
    "SelectSeries",
    "SelectHeatmap",
    "Diff",
    "GetProfileStats",
    "AnalyzeQuery",
];

pub fn is_connect_method(path: &str) -> bool {
    path == "/push.v1.PusherService/Push"
        || path.strip_prefix("/querier.v1.QuerierService/").is_some_and(|m| SERVED.contains(&m))
}

pub fn call(head: &RequestHead, call: &Call, body: &[u8]) -> Reply {
    match dispatch(head, call, body) {
        Ok(reply) => reply,
        Err(e) => call.error(e),
    }
}

fn dispatch(head: &RequestHead, call: &Call, body: &[u8]) -> Result<Reply, ConnectError> {
    let settings = config::load()?;
    let tenant = tenant::of(head, &settings)?;
    let kv = WasiKv::open().map_err(|e| ConnectError::new(Code::Unavailable, e.to_string()))?;
    let storage = Storage::new(&kv, &tenant);
    let now_ms = now_ms();
    let method = head.path.rsplit('/').next().unwrap_or_default();
    if head.path.starts_with("/push.v1.") {
        let req: PushRequest = call.decode(body)?;
        let raws: Vec<RawProfile<'_>> = req
            .series
            .iter()
            .flat_map(|s| s.samples.iter().map(|p| RawProfile { labels: &s.labels, bytes: &p.raw_profile }))
            .collect();
        ingest::push(&storage, &raws, now_ms, &mut new_profile_id, &settings.ingest)?;
        return Ok(call.reply(&PushResponse {}));
    }
    let cx =
        Context { storage, now_ms, limits: &settings.query, allow_utf8_label_names: allows_utf8_label_names(head) };
    Ok(match method {
        "ProfileTypes" => call.reply(&query::profile_types(&cx, &call.decode::<ProfileTypesRequest>(body)?)?),
        "LabelNames" => call.reply(&query::label_names(&cx, &call.decode::<LabelNamesRequest>(body)?)?),
        "LabelValues" => call.reply(&query::label_values(&cx, &call.decode::<LabelValuesRequest>(body)?)?),
        "Series" => call.reply(&query::series(&cx, &call.decode::<SeriesRequest>(body)?)?),
        "SelectMergeStacktraces" => {
            call.reply(&query::select_merge_stacktraces(&cx, &call.decode::<SelectMergeStacktracesRequest>(body)?)?)
        }
        "SelectMergeProfile" => {
            call.reply(&query::select_merge_profile(&cx, &call.decode::<SelectMergeProfileRequest>(body)?)?)
        }
        "SelectMergeSpanProfile" => {
            call.reply(&query::select_merge_span_profile(&cx, &call.decode::<SelectMergeSpanProfileRequest>(body)?)?)
        }
        "Diff" => call.reply(&query::diff(&cx, &call.decode::<DiffRequest>(body)?)?),
        "SelectSeries" => call.reply(&query::select_series(&cx, &call.decode::<SelectSeriesRequest>(body)?)?),
        "SelectHeatmap" => call.reply(&query::select_heatmap(&cx, &call.decode::<SelectHeatmapRequest>(body)?)?),
        "GetProfileStats" => call.reply(&query::get_profile_stats(&cx, &call.decode::<GetProfileStatsRequest>(body)?)?),
        "AnalyzeQuery" => call.reply(&query::analyze_query(&cx, &call.decode::<AnalyzeQueryRequest>(body)?)?),
        other => {
            return Err(ConnectError::new(
                Code::Unimplemented,
                format!("querier.v1.QuerierService.{other} is not implemented"),
            ));
        }
    })
}

/// Grafana asks for UTF-8 label names with an `Accept` media-type parameter.
pub(crate) fn allows_utf8_label_names(head: &RequestHead) -> bool {
    head.header("accept")
        .is_some_and(|a| a.split([';', ',']).any(|p| p.trim().eq_ignore_ascii_case("allow-utf8-labelnames=true")))
}

pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_millis() as i64
}

/// A random (version 4) UUID for each stored profile, as Pyroscope assigns.
pub(crate) fn new_profile_id() -> [u8; 16] {
    let bytes = wasi::random::random::get_random_bytes(16);
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}
