//! The rest of the querier API against the real server: SelectHeatmap,
//! GetProfileStats, AnalyzeQuery, stack trace selectors (call site, Go PGO),
//! `max_nodes` on SelectMergeProfile, exemplars and profile-id selection, and
//! the gRPC / gRPC-Web protocols on the same paths.

use kiln_core::pprof::{Profile, collapsed};
use kiln_proto::querier::v1::{
    ProfileTypesRequest, ProfileTypesResponse, SelectMergeProfileRequest, SelectMergeStacktracesRequest,
    SelectMergeStacktracesResponse,
};
use kiln_tests::Server;
use kiln_tests::fixtures::{decode_pprof, gzip, now_ns, testdata, with_time};
use prost::Message;
use serde_json::{Value, json};

const GO_CPU: &str = "pprof/pyroscope/cpu.pb.gz";
/// Go CPU profile whose samples carry span ids (as `profile_id` labels).
const GO_SPANS: &str = "pprof/pyroscope/cpu-exemplars.pb.gz";
const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const QUERIER: &str = "/querier.v1.QuerierService";

fn now_ms() -> i64 {
    now_ns() / 1_000_000
}

fn hour_range() -> (i64, i64) {
    (now_ms() - 3_600_000, now_ms() + 60_000)
}

/// Pushes a fixture as `service` at `time_ms`; returns the profile pushed.
fn push(server: &Server, fixture: &str, service: &str, time_ms: i64) -> Profile {
    let pprof = with_time(&testdata(fixture), time_ms * 1_000_000);
    server.push_pprof(&[("__name__", "process_cpu"), ("service_name", service)], &pprof);
    decode_pprof(&pprof)
}

/// A Connect JSON call that must succeed.
fn call(server: &Server, method: &str, body: Value) -> Value {
    let (status, reply) = server.connect_json(&format!("{QUERIER}/{method}"), body);
    assert_eq!(status, 200, "{method}: {reply}");
    reply
}

/// SelectMergeProfile in binary protobuf.
fn merge_profile(server: &Server, req: SelectMergeProfileRequest) -> Profile {
    let (status, _, body) =
        server.post(&format!("{QUERIER}/SelectMergeProfile"), "application/proto", req.encode_to_vec(), &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    Profile::decode(&body[..]).unwrap()
}

fn merge_profile_request(service: &str) -> SelectMergeProfileRequest {
    let (start, end) = hour_range();
    SelectMergeProfileRequest {
        profile_type_id: CPU.into(),
        label_selector: format!("{{service_name=\"{service}\"}}"),
        start,
        end,
        ..Default::default()
    }
}

fn flame_total(reply: &Value) -> i64 {
    reply["flamegraph"]["total"].as_str().map_or(0, |t| t.parse().unwrap())
}

fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_i64().unwrap(),
        _ => 0,
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

#[test]
fn call_site_keeps_the_stacks_through_it() {
    let server = Server::start_temp();
    let input = push(&server, GO_CPU, "callsite", now_ms() - 60_000);
    let stacks = collapsed(&input, 1);
    // The heaviest stack's two root-most frames as the call site.
    let heaviest = stacks.iter().max_by_key(|(_, v)| *v).unwrap();
    let site: Vec<&str> = heaviest.0.split(';').take(2).collect();
    assert_eq!(site.len(), 2, "{heaviest:?}");
    let through = |stack: &str| stack.split(';').take(2).eq(site.iter().copied());
    let expected: i64 = stacks.iter().filter(|(s, _)| through(s)).map(|(_, v)| v).sum();
    assert!(expected > 0 && expected < stacks.iter().map(|(_, v)| v).sum::<i64>(), "a selective call site");

    let (start, end) = hour_range();
    let selector = |names: &[&str]| json!({"callSite": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()});
    let flame = |names: &[&str], format: &str| {
        call(
            &server,
            "SelectMergeStacktraces",
            json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end,
                   "format": format, "stackTraceSelector": selector(names)}),
        )
    };
    assert_eq!(flame_total(&flame(&site, "PROFILE_FORMAT_FLAMEGRAPH")), expected);
    let tree = flame(&site, "PROFILE_FORMAT_TREE");
    assert!(!tree["tree"].as_str().unwrap_or_default().is_empty());
    assert_eq!(flame_total(&flame(&["no_such_function"], "PROFILE_FORMAT_FLAMEGRAPH")), 0);

    // The pprof keeps whole stacks (not re-rooted) through the call site.
    let mut req = merge_profile_request("callsite");
    req.stack_trace_selector = Some(kiln_proto::types::v1::StackTraceSelector {
        call_site: site.iter().map(|n| kiln_proto::types::v1::Location { name: (*n).into() }).collect(),
        go_pgo: None,
    });
    let merged = collapsed(&merge_profile(&server, req), 0);
    assert!(merged.iter().all(|(s, _)| through(s)), "{merged:?}");
    let want: Vec<(String, i64)> = stacks.iter().filter(|(s, _)| through(s)).cloned().collect();
    assert_eq!(merged, want);
}

#[test]
fn go_pgo_and_max_nodes_on_select_merge_profile() {
    let server = Server::start_temp();
    let input = push(&server, GO_CPU, "pgo", now_ms() - 60_000);
    let total: i64 = collapsed(&input, 1).iter().map(|(_, v)| v).sum();
    let full = merge_profile(&server, merge_profile_request("pgo"));
    assert_eq!(collapsed(&full, 0), collapsed(&input, 1), "no truncation without max_nodes");

    let mut req = merge_profile_request("pgo");
    req.stack_trace_selector = Some(kiln_proto::types::v1::StackTraceSelector {
        call_site: vec![],
        go_pgo: Some(kiln_proto::types::v1::GoPgo { keep_locations: 2, aggregate_callees: true }),
    });
    let pgo = merge_profile(&server, req);
    assert!(pgo.sample.iter().all(|s| (1..=2).contains(&s.location_id.len())), "two leaf-most locations kept");
    assert_eq!(pgo.sample.iter().map(|s| s.value[0]).sum::<i64>(), total);
    for s in &pgo.sample {
        let leaf = pgo.location.iter().find(|l| l.id == s.location_id[0]).unwrap();
        assert_eq!(leaf.line[0].line, 0, "callee line numbers aggregated");
    }
    assert!(pgo.sample.len() < full.sample.len(), "trimmed stacks merged");

    let mut req = merge_profile_request("pgo");
    req.max_nodes = Some(4);
    let truncated = merge_profile(&server, req);
    let stacks = collapsed(&truncated, 0);
    assert_eq!(stacks.iter().map(|(_, v)| v).sum::<i64>(), total, "truncation keeps the total");
    assert!(stacks.iter().any(|(s, _)| s.ends_with(";other") || s == "other"), "{stacks:?}");
    assert!(stacks.iter().all(|(s, _)| !s.contains("other;")), "other is always the leaf");
    assert!(stacks.len() < collapsed(&input, 1).len());
}

#[test]
fn heatmap_profile_stats_and_query_analysis() {
    let server = Server::start_temp();
    let empty = call(&server, "GetProfileStats", json!({}));
    assert_eq!(empty, json!({}));

    let (t1, t2) = (now_ms() - 120_000, now_ms() - 30_000);
    let cpu = push(&server, GO_CPU, "a", t1);
    let spans = push(&server, GO_SPANS, "b", t2);
    let stats = call(&server, "GetProfileStats", json!({}));
    assert_eq!(stats["dataIngested"], json!(true), "{stats}");
    assert_eq!((int(&stats["oldestProfileTime"]), int(&stats["newestProfileTime"])), (t1, t2));

    let (start, end) = hour_range();
    let heatmap = |query_type: &str, exemplars: &str| {
        call(
            &server,
            "SelectHeatmap",
            json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end, "step": 15,
                   "groupBy": ["service_name"], "queryType": query_type, "exemplarType": exemplars}),
        )
    };
    let individual = heatmap("HEATMAP_QUERY_TYPE_INDIVIDUAL", "EXEMPLAR_TYPE_INDIVIDUAL");
    let series = individual["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{individual}");
    for (s, profile) in series.iter().zip([&cpu, &spans]) {
        let slots = s["slots"].as_array().unwrap();
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0]["yMin"].as_array().unwrap().len(), 20);
        let counts: Vec<i64> = slots[0]["counts"].as_array().unwrap().iter().map(int).collect();
        assert_eq!((counts.len(), counts.iter().sum::<i64>()), (20, 1));
        let exemplar = &slots[0]["exemplars"][0];
        assert!(is_uuid(exemplar["profileId"].as_str().unwrap()), "{exemplar}");
        let total: i64 = collapsed(profile, 1).iter().map(|(_, v)| v).sum();
        assert_eq!(int(&exemplar["value"]), total);
    }
    // One point per span id with a cpu value.
    let span_ids: std::collections::BTreeSet<&str> = spans
        .sample
        .iter()
        .filter(|s| s.value[1] > 0)
        .flat_map(|s| &s.label)
        .filter(|l| spans.string_table[l.key as usize] == "profile_id")
        .map(|l| spans.string_table[l.str as usize].as_str())
        .collect();
    let by_span = heatmap("HEATMAP_QUERY_TYPE_SPAN", "EXEMPLAR_TYPE_SPAN");
    let counted: i64 = by_span["series"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|slot| slot["counts"].as_array().unwrap().iter().map(int))
        .sum();
    assert_eq!(counted, span_ids.len() as i64, "{by_span}");
    let (status, bad) = server.connect_json(
        &format!("{QUERIER}/SelectHeatmap"),
        json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end, "step": 0}),
    );
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_argument")), "{bad}");

    let analysis = call(
        &server,
        "AnalyzeQuery",
        json!({"start": start, "end": end, "query": format!("{CPU}{{service_name=\"a\"}}")}),
    );
    let scope = &analysis["queryScopes"][0];
    // a: two sample types; b: its three sample-label groups × two types.
    assert_eq!(int(&scope["seriesCount"]), 8, "{analysis}");
    assert!(int(&scope["profileBytes"]) > 0 && int(&scope["symbolBytes"]) > 0);
    assert_eq!(int(&analysis["queryImpact"]["totalQueriedSeries"]), 1);
}

#[test]
fn exemplars_name_profiles_the_profile_id_selector_finds() {
    let server = Server::start_temp();
    let input = push(&server, GO_CPU, "ids", now_ms() - 90_000);
    push(&server, GO_CPU, "ids", now_ms() - 30_000);
    let total: i64 = collapsed(&input, 1).iter().map(|(_, v)| v).sum();
    let (start, end) = hour_range();
    let series = call(
        &server,
        "SelectSeries",
        json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end, "step": 3600,
               "exemplarType": "EXEMPLAR_TYPE_INDIVIDUAL"}),
    );
    let point = &series["series"][0]["points"][0];
    let exemplar = &point["exemplars"][0];
    assert_eq!(int(&exemplar["value"]), total, "{series}");
    let id = exemplar["profileId"].as_str().unwrap();
    assert!(is_uuid(id));
    assert!(exemplar["labels"].as_array().unwrap().iter().any(|l| l["name"] == "service_name"));

    let select = |ids: Value| {
        server.connect_json(
            &format!("{QUERIER}/SelectMergeStacktraces"),
            json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end, "profileIdSelector": ids}),
        )
    };
    let (status, both) = select(json!([]));
    assert_eq!((status, flame_total(&both)), (200, 2 * total));
    let (status, one) = select(json!([id]));
    assert_eq!((status, flame_total(&one)), (200, total));
    let (status, none) = select(json!(["00000000-0000-4000-8000-000000000000"]));
    assert_eq!((status, flame_total(&none)), (200, 0));
    let (status, bad) = select(json!(["not-a-uuid"]));
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_argument")), "{bad}");
}

/// Splits a gRPC-Web body into (flags, payload) envelopes.
fn envelopes(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    out
}

fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn grpc_web_round_trip() {
    let server = Server::start_temp();
    push(&server, GO_CPU, "web", now_ms() - 60_000);
    let (start, end) = hour_range();
    let request = ProfileTypesRequest { start, end }.encode_to_vec();
    let path = format!("{QUERIER}/ProfileTypes");

    let (status, headers, body) = server.post(&path, "application/grpc-web+proto", envelope(0, &request), &[]);
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/grpc-web+proto");
    let frames = envelopes(&body);
    assert_eq!(frames.len(), 2, "message, then trailers");
    assert_eq!(frames[0].0, 0);
    let reply = ProfileTypesResponse::decode(&frames[0].1[..]).unwrap();
    assert!(reply.profile_types.iter().any(|t| t.id == CPU), "{reply:?}");
    assert_eq!(frames[1].0, 0x80);
    assert_eq!(String::from_utf8(frames[1].1.clone()).unwrap(), "grpc-status: 0\r\n");

    // Compressed both ways.
    let (status, headers, body) = server.post(
        &path,
        "application/grpc-web",
        envelope(1, &gzip(&request)),
        &[("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")],
    );
    assert_eq!((status, headers["grpc-encoding"].as_str()), (200, "gzip"));
    let frames = envelopes(&body);
    assert_eq!(frames[0].0, 1);
    let inflated = kiln_tests::fixtures::gunzip_if_needed(&frames[0].1);
    assert_eq!(ProfileTypesResponse::decode(&inflated[..]).unwrap(), reply);

    // Errors come back "trailers-only": status in the headers, no body.
    let bad = SelectMergeStacktracesRequest {
        profile_type_id: CPU.into(),
        label_selector: "{}".into(),
        ..Default::default()
    };
    let (status, headers, body) = server.post(
        &format!("{QUERIER}/SelectMergeStacktraces"),
        "application/grpc-web+proto",
        envelope(0, &bad.encode_to_vec()),
        &[],
    );
    assert_eq!((status, headers["grpc-status"].as_str()), (200, "3"));
    assert_eq!(headers["grpc-message"], "missing time range in the query");
    assert!(body.is_empty());
    let (status, headers, _) = server.post(&path, "application/grpc-web+proto", b"\0\0".to_vec(), &[]);
    assert_eq!((status, headers["grpc-status"].as_str()), (200, "3"), "truncated envelope");
}

#[test]
fn grpc_over_h2c_with_a_real_client() {
    let server = Server::start_temp();
    let input = push(&server, GO_CPU, "grpc", now_ms() - 60_000);
    let total: i64 = collapsed(&input, 1).iter().map(|(_, v)| v).sum();
    let (start, end) = hour_range();
    let url = server.url("");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let channel = tonic::transport::Channel::from_shared(url).unwrap().connect().await.expect("h2c connection");
        let mut grpc = tonic::client::Grpc::new(channel);
        let path = |m: &str| format!("{QUERIER}/{m}").parse::<tonic::codegen::http::uri::PathAndQuery>().unwrap();

        grpc.ready().await.unwrap();
        let types: ProfileTypesResponse = grpc
            .unary(tonic::Request::new(ProfileTypesRequest { start, end }), path("ProfileTypes"), codec())
            .await
            .expect("ProfileTypes over gRPC")
            .into_inner();
        assert!(types.profile_types.iter().any(|t| t.id == CPU), "{types:?}");

        let req = SelectMergeStacktracesRequest {
            profile_type_id: CPU.into(),
            label_selector: "{service_name=\"grpc\"}".into(),
            start,
            end,
            ..Default::default()
        };
        grpc.ready().await.unwrap();
        let merged: SelectMergeStacktracesResponse = grpc
            .unary(tonic::Request::new(req.clone()), path("SelectMergeStacktraces"), codec())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(merged.flamegraph.unwrap().total, total);

        grpc.ready().await.unwrap();
        let bad = SelectMergeStacktracesRequest { start: 0, ..req };
        let status = grpc
            .unary::<_, SelectMergeStacktracesResponse, _>(
                tonic::Request::new(bad),
                path("SelectMergeStacktraces"),
                codec(),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "missing time range in the query");
    });
}

fn codec<Req: Message + Send + 'static, Resp: Message + Default + Send + 'static>() -> tonic_prost::ProstCodec<Req, Resp>
{
    tonic_prost::ProstCodec::default()
}

#[test]
fn trace_id_selector_keeps_the_samples_of_a_trace() {
    let server = Server::start_temp();
    let mut profile = decode_pprof(&with_time(&testdata(GO_CPU), (now_ms() - 60_000) * 1_000_000));
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    profile.string_table.extend(["trace_id".into(), trace.into()]);
    let n = profile.string_table.len() as i64;
    profile.sample[0].label.push(kiln_proto::google::v1::Label { key: n - 2, str: n - 1, ..Default::default() });
    let in_trace = profile.sample[0].value[1];
    server.push_pprof(&[("__name__", "process_cpu"), ("service_name", "traced")], &profile.encode_to_vec());

    let (start, end) = hour_range();
    let select = |ids: Value| {
        call(
            &server,
            "SelectMergeStacktraces",
            json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end, "traceIdSelector": ids}),
        )
    };
    assert_eq!(flame_total(&select(json!([trace.to_uppercase()]))), in_trace);
    assert_eq!(flame_total(&select(json!(["00000000000000000000000000000001"]))), 0);
    let mut req = merge_profile_request("traced");
    req.trace_id_selector = vec![trace.into()];
    let merged = merge_profile(&server, req);
    assert_eq!(merged.sample.iter().map(|s| s.value[0]).sum::<i64>(), in_trace);
}
