//! The legacy HTTP read API (spec `query.md` §11): `/pyroscope/render`,
//! `/pyroscope/render-diff` and `/pyroscope/label-values`. Each one reads its
//! URL parameters, calls the Connect query methods as Pyroscope's handlers do
//! and encodes their answers as the OG Pyroscope shapes.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use kiln_proto::querier::v1::{
    DiffRequest, ProfileFormat, ProfileTypesRequest, SelectMergeStacktracesRequest, SelectSeriesRequest,
};
use kiln_proto::types::v1::{LabelValuesRequest, TimeSeriesAggregationType};

use super::timeline::{step_seconds, timeline};
use super::{Context, diff, label_values, profile_types, select_merge_stacktraces, select_series};
use crate::error::{Error, Result};
use crate::flamebearer::{FlameGraphRef, Format, profile_json};
use crate::json;
use crate::kv::KvStore;
use crate::profile_type::ProfileType;
use crate::selector::{self, METRIC_NAME_LABEL};
use crate::time::parse_attime;
use crate::url::QueryString;

const HOUR_MS: i64 = 3_600_000;

/// A response body and its `Content-Type`.
#[derive(Debug)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: String,
}

impl Rendered {
    fn json(body: String) -> Self {
        Self { content_type: "application/json", body }
    }
}

/// `GET /pyroscope/render`: the flame graph with its timeline as
/// `FlamebearerProfile` JSON, or the DOT graph with `format=dot`.
pub fn render<S: KvStore + ?Sized>(cx: &Context<'_, S>, params: &QueryString) -> Result<Rendered> {
    let sel = Selection::parse(cx, params, ["query", "from", "until"])?;
    if params.get("format") == "dot" {
        let req = SelectMergeStacktracesRequest { format: ProfileFormat::Dot as i32, ..sel.request() };
        let dot = select_merge_stacktraces(cx, &req)?.dot;
        // No data: an empty body that Go's sniffing labels plain text.
        let content_type = if dot.is_empty() { "text/plain" } else { "text/plain; charset=utf-8" };
        return Ok(Rendered { content_type, body: dot });
    }

    let flame = select_merge_stacktraces(cx, &sel.request())?.flamegraph.unwrap_or_default();
    let group_by: Vec<String> = params.all("groupBy").map(ToString::to_string).collect();
    let aggregation = match params.get("aggregation") {
        "avg" => TimeSeriesAggregationType::Average,
        _ => TimeSeriesAggregationType::Sum,
    };
    let step = step_seconds(sel.start, sel.end);
    let series = select_series(
        cx,
        &SelectSeriesRequest {
            profile_type_id: sel.profile_type_id.clone(),
            label_selector: sel.label_selector.clone(),
            start: sel.start,
            end: sel.end,
            step: step as f64,
            group_by: group_by.clone(),
            aggregation: Some(aggregation as i32),
            ..Default::default()
        },
    )?
    .series;

    // The top-level timeline is only filled when there is exactly one series.
    let only = if series.len() == 1 { series.first() } else { None };
    let top = timeline(only, sel.start, sel.end, step);
    let groups = group_by.first().map(|first| {
        let mut groups = BTreeMap::new();
        for s in &series {
            let key = s.labels.iter().find(|l| &l.name == first).map_or("*", |l| l.value.as_str());
            groups.insert(key.to_string(), timeline(Some(s), sel.start, sel.end, step));
        }
        groups
    });
    let flame =
        FlameGraphRef { names: &flame.names, levels: &flame.levels, total: flame.total, max_self: flame.max_self };
    Ok(Rendered::json(profile_json(&flame, &sel.profile_type, &Format::Single, Some(&top), groups.as_ref())))
}

/// `GET /pyroscope/render-diff`: two selections as one `double` flame graph.
pub fn render_diff<S: KvStore + ?Sized>(cx: &Context<'_, S>, params: &QueryString) -> Result<Rendered> {
    let left = Selection::parse(cx, params, ["leftQuery", "leftFrom", "leftUntil"])?;
    let right = Selection::parse(cx, params, ["rightQuery", "rightFrom", "rightUntil"])?;
    if left.profile_type_id != right.profile_type_id {
        return Err(Error::invalid("profile types must match"));
    }
    let fg = diff(cx, &DiffRequest { left: Some(left.request()), right: Some(right.request()) })?
        .flamegraph
        .unwrap_or_default();
    let flame = FlameGraphRef { names: &fg.names, levels: &fg.levels, total: fg.total, max_self: fg.max_self };
    let format = Format::Double { left_ticks: fg.left_ticks, right_ticks: fg.right_ticks };
    Ok(Rendered::json(profile_json(&flame, &left.profile_type, &format, None, None)))
}

/// `GET /pyroscope/label-values?label=…`: a JSON array of the label's values
/// over the last hour; `__name__` lists profile type IDs.
pub fn legacy_label_values<S: KvStore + ?Sized>(cx: &Context<'_, S>, params: &QueryString) -> Result<Rendered> {
    let label = params.get("label");
    if label.is_empty() {
        return Err(Error::invalid("label parameter is required"));
    }
    let values: Vec<String> = if label == METRIC_NAME_LABEL {
        profile_types(cx, &ProfileTypesRequest::default())?.profile_types.into_iter().map(|t| t.id).collect()
    } else {
        let req =
            LabelValuesRequest { name: label.into(), matchers: Vec::new(), start: cx.now_ms - HOUR_MS, end: cx.now_ms };
        label_values(cx, &req)?.names
    };
    // Go encodes an empty (nil) list as `null`.
    let mut body = String::new();
    if values.is_empty() {
        body.push_str("null");
    } else {
        json::string_array(&mut body, values.iter().map(String::as_str));
    }
    body.push('\n');
    Ok(Rendered::json(body))
}

/// What one `query`/`from`/`until` triple (plus `maxNodes`) selects.
struct Selection {
    /// As the client wrote it (Pyroscope compares diff sides by this text).
    profile_type_id: String,
    profile_type: ProfileType,
    /// The query's matchers without the profile type.
    label_selector: String,
    start: i64,
    end: i64,
    max_nodes: i64,
}

impl Selection {
    fn parse<S: KvStore + ?Sized>(cx: &Context<'_, S>, params: &QueryString, names: [&str; 3]) -> Result<Self> {
        let [query_name, from_name, until_name] = names;
        let query = params.get(query_name);
        if query.is_empty() {
            return Err(Error::invalid(format!("{query_name:?} is required")));
        }
        let parsed =
            selector::parse(query).map_err(|e| Error::invalid(format!("failed to parse {query_name:?}: {e}")))?;
        let (names, rest): (Vec<_>, Vec<_>) = parsed.matchers().iter().partition(|m| m.name == METRIC_NAME_LABEL);
        let Some(name) = names.last() else {
            return Err(Error::invalid(format!("{query_name:?} must contain a profile-type selection")));
        };
        let profile_type =
            ProfileType::parse(&name.value).map_err(|_| Error::invalid(format!("failed to parse {query_name:?}")))?;
        let matchers: Vec<String> = rest.iter().map(|m| m.to_string()).collect();
        let time = |name: &str| match params.get(name) {
            "" => cx.now_ms,
            t => parse_attime(t, cx.now_ms.saturating_mul(1_000_000)).div_euclid(1_000_000),
        };
        // `maxNodes`, else `max-nodes`; unparsable or 0 means the default.
        let max_nodes = ["maxNodes", "max-nodes"]
            .iter()
            .find_map(|n| params.get(n).parse::<i64>().ok().filter(|&v| v != 0))
            .unwrap_or(0);
        Ok(Self {
            profile_type_id: name.value.clone(),
            profile_type,
            label_selector: format!("{{{}}}", matchers.join(",")),
            start: time(from_name),
            end: time(until_name),
            max_nodes,
        })
    }

    fn request(&self) -> SelectMergeStacktracesRequest {
        SelectMergeStacktracesRequest {
            profile_type_id: self.profile_type_id.clone(),
            label_selector: self.label_selector.clone(),
            start: self.start,
            end: self.end,
            max_nodes: Some(self.max_nodes),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::QueryLimits;
    use crate::store::{MemoryStore, Storage};
    use serde_json::Value;

    use crate::query::test_data::{NOW, push_sample};
    const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

    fn push(kv: &MemoryStore, service: &str, t: i64) {
        push_sample(kv, service, t, [0; 16]);
    }

    fn call(
        kv: &MemoryStore,
        f: fn(&Context<'_, MemoryStore>, &QueryString) -> Result<Rendered>,
        query: &str,
    ) -> Result<Rendered> {
        let limits = QueryLimits::default();
        let cx =
            Context { storage: Storage::new(kv, "t"), now_ms: NOW, limits: &limits, allow_utf8_label_names: false };
        f(&cx, &QueryString::parse(query)?)
    }

    fn json(r: Rendered) -> Value {
        assert_eq!(r.content_type, "application/json");
        assert!(r.body.ends_with('\n'));
        serde_json::from_str(&r.body).unwrap()
    }

    fn sum(v: &Value) -> u64 {
        v.as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).sum()
    }

    fn kv_with_two_services() -> MemoryStore {
        let kv = MemoryStore::default();
        push(&kv, "api", NOW - 600_000);
        push(&kv, "api", NOW - 300_000);
        push(&kv, "db", NOW - 300_000);
        kv
    }

    #[test]
    fn render_flame_graph_timeline_and_groups() {
        let kv = kv_with_two_services();
        let q = format!("query={CPU}%7Bservice_name%3D%22api%22%7D&from=now-1h&until=now");
        let v = json(call(&kv, render, &q).unwrap());
        assert_eq!(v["version"], 1);
        assert_eq!(v["flamebearer"]["numTicks"], 100);
        assert_eq!(v["flamebearer"]["names"][0], "total");
        assert_eq!(v["flamebearer"]["levels"][0], serde_json::json!([0, 100, 0, 0]));
        assert_eq!(
            v["metadata"],
            serde_json::json!({"format": "single", "spyName": "", "sampleRate": 1_000_000_000u64, "units": "samples", "name": "cpu"})
        );
        let t = &v["timeline"];
        assert_eq!(t["durationDelta"], 15);
        assert_eq!(t["samples"].as_array().unwrap().len(), 240);
        assert_eq!(sum(&t["samples"]), 100);
        assert_eq!(t["startTime"], (NOW - 3_600_000) / 1000 / 15 * 15);
        assert_eq!(v["groups"], Value::Null);
        assert_eq!(v["heatmap"], Value::Null);

        // Grouped: one timeline per service, the top-level one all zeros.
        let v = json(call(&kv, render, &format!("query={CPU}%7B%7D&from=now-1h&groupBy=service_name")).unwrap());
        assert_eq!(v["flamebearer"]["numTicks"], 150);
        assert_eq!(sum(&v["groups"]["api"]["samples"]), 100);
        assert_eq!(sum(&v["groups"]["db"]["samples"]), 50);
        assert_eq!(sum(&v["timeline"]["samples"]), 0);
        let v = json(call(&kv, render, &format!("query={CPU}%7B%7D&from=now-1h&groupBy=zone")).unwrap());
        assert_eq!(sum(&v["groups"]["*"]["samples"]), 150, "profiles without the label: key *");

        // maxNodes=1 keeps main and folds its children into other; absolute times work too.
        let q = format!("query={CPU}%7B%7D&from={}&until={}&maxNodes=1", (NOW - 3_600_000) / 1000, NOW);
        let v = json(call(&kv, render, &q).unwrap());
        assert_eq!(v["flamebearer"]["numTicks"], 150);
        assert_eq!(v["flamebearer"]["names"], serde_json::json!(["total", "main", "other"]), "{v}");
    }

    #[test]
    fn render_errors() {
        let kv = MemoryStore::default();
        let err = |q: &str| call(&kv, render, q).unwrap_err().to_string();
        assert_eq!(err("from=now-1h"), "\"query\" is required");
        assert_eq!(err("query=%7Bservice_name%3D%22x%22%7D"), "\"query\" must contain a profile-type selection");
        assert_eq!(err("query=app_cpu%7B%7D"), "failed to parse \"query\"");
        assert!(err("query=app.cpu%7B%7D").starts_with("failed to parse \"query\": "));
        assert!(err("query=a%7B").starts_with("failed to parse \"query\": "));
        assert_eq!(err(&format!("query={CPU}%7B%7D&from=0")), "missing time range in the query");
        assert_eq!(
            err(&format!("query={CPU}%7B%7D&maxNodes=-1&from=now-1h")),
            "max flamegraph nodes limit must be set (max allowed 1048576)"
        );
        assert!(err("a=%zz").contains("invalid URL escape"));
    }

    #[test]
    fn render_dot() {
        let kv = kv_with_two_services();
        let r = call(&kv, render, &format!("query={CPU}%7B%7D&from=now-1h&format=dot")).unwrap();
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        assert!(r.body.starts_with("digraph "), "{}", r.body);
        assert!(r.body.contains("Showing nodes accounting for"), "{}", r.body);
        let r =
            call(&kv, render, &format!("query={CPU}%7Bservice_name%3D%22none%22%7D&from=now-1h&format=dot")).unwrap();
        assert_eq!((r.content_type, r.body.as_str()), ("text/plain", ""));
    }

    #[test]
    fn render_diff_of_a_range_against_itself() {
        let kv = kv_with_two_services();
        let side = |s: &str| format!("{s}Query={CPU}%7B%7D&{s}From=now-1h&{s}Until=now");
        let v = json(call(&kv, render_diff, &format!("{}&{}", side("left"), side("right"))).unwrap());
        assert_eq!(v["metadata"]["format"], "double");
        assert_eq!((v["leftTicks"].as_i64(), v["rightTicks"].as_i64()), (Some(150), Some(150)));
        assert_eq!(v["flamebearer"]["numTicks"], 300);
        assert_eq!((&v["timeline"], &v["groups"]), (&Value::Null, &Value::Null));
        for level in v["flamebearer"]["levels"].as_array().unwrap() {
            for row in level.as_array().unwrap().chunks(7) {
                assert_eq!(row[..3], row[3..6]);
            }
        }
        let other = format!("{}&rightQuery=memory:alloc_space:bytes:space:bytes%7B%7D", side("left"));
        assert_eq!(call(&kv, render_diff, &other).unwrap_err().to_string(), "profile types must match");
        assert_eq!(call(&kv, render_diff, &side("left")).unwrap_err().to_string(), "\"rightQuery\" is required");
    }

    #[test]
    fn label_values_of_the_last_hour() {
        let kv = kv_with_two_services();
        let body = |q: &str| call(&kv, legacy_label_values, q).unwrap().body;
        assert_eq!(body("label=service_name"), "[\"api\",\"db\"]\n");
        assert_eq!(
            body("label=__name__"),
            "[\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\",\"process_cpu:samples:count:cpu:nanoseconds\"]\n"
        );
        assert_eq!(body("label=zone"), "null\n");
        assert_eq!(call(&kv, legacy_label_values, "").unwrap_err().to_string(), "label parameter is required");
    }
}
