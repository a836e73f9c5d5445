//! Issue 2's acceptance: push through the real server, query it back.

use base64::Engine;
use kiln_proto::push::v1::{PushRequest, RawProfileSeries, RawSample};
use kiln_proto::types::v1::LabelPair;
use kiln_tests::Server;
use kiln_tests::fixtures::{decode_pprof, now_ns, sample_type_sums, testdata, with_time};
use prost::Message;
use serde_json::{Value, json};

const GO_CPU: &str = "pprof/pyroscope/cpu.pb.gz";

fn hour_range() -> (i64, i64) {
    let now = now_ns() / 1_000_000;
    (now - 3_600_000, now + 60_000)
}

fn flame_total(server: &Server, profile_type: &str, selector: &str) -> i64 {
    let (start, end) = hour_range();
    let (status, body) = server.connect_json(
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        json!({"profileTypeID": profile_type, "labelSelector": selector, "start": start, "end": end}),
    );
    assert_eq!(status, 200, "{body}");
    body["flamegraph"]["total"].as_str().map_or(0, |t| t.parse().unwrap())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

#[test]
fn seed_push_json_and_proto_then_query() {
    let server = Server::start_temp();
    let pprof = with_time(&testdata(GO_CPU), now_ns());
    let expected = sample_type_sums(&decode_pprof(&pprof));

    // The seed document's curl example, verbatim apart from the profile.
    let body = json!({"series": [{
        "labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": "my_service"}],
        "samples": [{"ID": "734FD599-6865-419E-9475-932762D8F469",
                     "rawProfile": base64::engine::general_purpose::STANDARD.encode(&pprof)}]
    }]});
    let (status, reply) = server.connect_json("/push.v1.PusherService/Push", body);
    assert_eq!((status, reply), (200, json!({})));

    // The same push in binary protobuf, to a second service.
    let req = PushRequest {
        series: vec![RawProfileSeries {
            labels: vec![
                LabelPair { name: "__name__".into(), value: "process_cpu".into() },
                LabelPair { name: "service_name".into(), value: "proto_service".into() },
            ],
            samples: vec![RawSample { raw_profile: pprof.clone(), id: "x".into() }],
            annotations: vec![],
        }],
    };
    let (status, _, body) = server.post("/push.v1.PusherService/Push", "application/proto", req.encode_to_vec(), &[]);
    assert_eq!(status, 200);
    assert!(body.is_empty(), "empty PushResponse in binary");

    let (start, end) = hour_range();
    let (status, types) =
        server.connect_json("/querier.v1.QuerierService/ProfileTypes", json!({"start": start, "end": end}));
    assert_eq!(status, 200);
    let ids: Vec<String> =
        types["profileTypes"].as_array().unwrap().iter().map(|t| t["ID"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"]);

    for service in ["my_service", "proto_service"] {
        for (sample_type, unit, sum) in &expected {
            let id = format!("process_cpu:{sample_type}:{unit}:cpu:nanoseconds");
            assert_eq!(flame_total(&server, &id, &format!("{{service_name=\"{service}\"}}")), *sum, "{id} {service}");
        }
    }
    // Both pushes together.
    let (st, unit, sum) = &expected[1];
    assert_eq!(flame_total(&server, &format!("process_cpu:{st}:{unit}:cpu:nanoseconds"), "{}"), 2 * sum);

    let (_, values) = server.connect_json(
        "/querier.v1.QuerierService/LabelValues",
        json!({"name": "service_name", "start": start, "end": end}),
    );
    assert_eq!(strings(&values["names"]), ["my_service", "proto_service"]);

    let (_, names) = server.connect_json(
        "/querier.v1.QuerierService/LabelNames",
        json!({"start": start, "end": end, "matchers": ["{service_name=\"my_service\"}"]}),
    );
    assert_eq!(
        strings(&names["names"]),
        [
            "__name__",
            "__period_type__",
            "__period_unit__",
            "__profile_type__",
            "__service_name__",
            "__type__",
            "__unit__",
            "service_name"
        ]
    );

    let (_, series) = server.connect_json(
        "/querier.v1.QuerierService/Series",
        json!({"start": start, "end": end, "labelNames": ["service_name", "__profile_type__"]}),
    );
    let sets: Vec<Value> = series["labelsSet"].as_array().unwrap().clone();
    assert_eq!(sets.len(), 4, "{series}");
    assert_eq!(
        sets[0],
        json!({"labels": [
            {"name": "__profile_type__", "value": "process_cpu:cpu:nanoseconds:cpu:nanoseconds"},
            {"name": "service_name", "value": "my_service"}]})
    );
}

#[test]
fn flame_graph_shape_and_truncation_keep_the_total() {
    let server = Server::start_temp();
    let pprof = with_time(&testdata(GO_CPU), now_ns());
    server.push_pprof(&[("__name__", "process_cpu"), ("service_name", "shape")], &pprof);
    let (start, end) = hour_range();
    let full = server.connect_json(
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        json!({"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{}",
               "start": start, "end": end}),
    );
    let truncated = server.connect_json(
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        json!({"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{}",
               "start": start, "end": end, "maxNodes": 5}),
    );
    let fg = &full.1["flamegraph"];
    let tg = &truncated.1["flamegraph"];
    assert_eq!(fg["names"][0], "total");
    assert_eq!(fg["total"], tg["total"], "truncation keeps the root total");
    assert!(strings(&tg["names"]).contains(&"other".to_string()));
    assert!(tg["names"].as_array().unwrap().len() < fg["names"].as_array().unwrap().len());
    // Level 0 is the root: [0, total, 0, 0].
    assert_eq!(fg["levels"][0]["values"][1], fg["total"]);
}

#[test]
fn select_series_sums_profiles_per_bucket_and_group() {
    let server = Server::start_temp();
    let now = now_ns();
    let pprof = with_time(&testdata(GO_CPU), now - 2_000_000_000);
    let cpu_sum = sample_type_sums(&decode_pprof(&pprof))[1].2;
    for service in ["one", "two"] {
        server.push_pprof(&[("__name__", "process_cpu"), ("service_name", service)], &pprof);
    }
    server.push_pprof(&[("__name__", "process_cpu"), ("service_name", "two")], &pprof);
    let (start, end) = hour_range();
    let (status, body) = server.connect_json(
        "/querier.v1.QuerierService/SelectSeries",
        json!({"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{}",
               "start": start, "end": end, "step": 15.0, "groupBy": ["service_name"]}),
    );
    assert_eq!(status, 200, "{body}");
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{body}");
    // Largest total first: "two" got two profiles in the same bucket.
    assert_eq!(series[0]["labels"], json!([{"name": "service_name", "value": "two"}]));
    assert_eq!(series[0]["points"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(series[0]["points"][0]["value"].as_f64().unwrap(), 2.0 * cpu_sum as f64);
    assert_eq!(series[1]["points"][0]["value"].as_f64().unwrap(), cpu_sum as f64);

    let (status, body) = server.connect_json(
        "/querier.v1.QuerierService/SelectSeries",
        json!({"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{}",
               "start": start, "end": end}),
    );
    assert_eq!((status, body["message"].as_str()), (400, Some("step must be >= 1ms")));
}

#[test]
fn select_merge_profile_returns_the_pushed_stacks() {
    use kiln_proto::google::v1::Profile;
    use kiln_proto::querier::v1::{
        ProfileFormat, SelectMergeProfileRequest, SelectMergeStacktracesRequest, SelectMergeStacktracesResponse,
    };

    let server = Server::start_temp();
    let (start, end) = hour_range();
    for (file, name) in [(GO_CPU, "process_cpu"), ("pprof/pyroscope/heap.pb.gz", "memory")] {
        let pprof = with_time(&testdata(file), now_ns() - 1_000_000_000);
        let input = decode_pprof(&pprof);
        server.push_pprof(&[("__name__", name), ("service_name", "merge-profile")], &pprof);
        let s = |i: i64| input.string_table[i as usize].clone();
        let period = input.period_type.as_ref().map(|p| (s(p.r#type), s(p.unit))).unwrap_or_default();
        for (column, st) in input.sample_type.iter().enumerate() {
            let id = format!("{name}:{}:{}:{}:{}", s(st.r#type), s(st.unit), period.0, period.1);
            let req = SelectMergeProfileRequest {
                profile_type_id: id.clone(),
                label_selector: "{service_name=\"merge-profile\"}".into(),
                start,
                end,
                ..Default::default()
            };
            let (status, _, body) = server.post(
                "/querier.v1.QuerierService/SelectMergeProfile",
                "application/proto",
                req.encode_to_vec(),
                &[],
            );
            assert_eq!(status, 200, "{id}: {}", String::from_utf8_lossy(&body));
            let merged = Profile::decode(&body[..]).unwrap();
            assert_eq!(merged.sample_type.len(), 1, "{id}");
            assert_eq!(
                kiln_core::pprof::collapsed(&merged, 0),
                kiln_core::pprof::collapsed(&input, column),
                "{id}: collapsed stacks differ"
            );

            // The same through SelectMergeStacktraces' pprof format.
            let req = SelectMergeStacktracesRequest {
                profile_type_id: id.clone(),
                label_selector: "{service_name=\"merge-profile\"}".into(),
                start,
                end,
                format: ProfileFormat::Pprof as i32,
                ..Default::default()
            };
            let (status, _, body) = server.post(
                "/querier.v1.QuerierService/SelectMergeStacktraces",
                "application/proto",
                req.encode_to_vec(),
                &[],
            );
            assert_eq!(status, 200, "{id}");
            let reply = SelectMergeStacktracesResponse::decode(&body[..]).unwrap();
            assert_eq!(reply.pprof.and_then(|p| p.profile), Some(merged), "{id}");
        }
    }
}

#[test]
fn span_selector_keeps_only_samples_of_those_spans() {
    let server = Server::start_temp();
    let pprof = with_time(&testdata("pprof/pyroscope/cpu-exemplars.pb.gz"), now_ns() - 1_000_000_000);
    let input = decode_pprof(&pprof);
    server.push_pprof(&[("__name__", "process_cpu"), ("service_name", "spans")], &pprof);

    // Expected: cpu values of the samples labelled with the chosen span id
    // (Go's SDK writes it as `profile_id`, Pyroscope reads it as `span_id`).
    let s = |i: i64| input.string_table[i as usize].as_str();
    let span_of = |sample: &kiln_proto::google::v1::Sample| {
        sample
            .label
            .iter()
            .find(|l| matches!(s(l.key), "span_id" | "profile_id") && s(l.str).len() == 16)
            .map(|l| s(l.str).to_string())
    };
    let span = input.sample.iter().find_map(span_of).expect("fixture has span ids");
    let expected: i64 = input.sample.iter().filter(|x| span_of(x).as_ref() == Some(&span)).map(|x| x.value[1]).sum();
    assert!(expected > 0);

    let (start, end) = hour_range();
    let query = |path: &str, spans: Value| {
        let (status, body) = server.connect_json(
            path,
            json!({"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": "{}",
                   "start": start, "end": end, "spanSelector": spans}),
        );
        assert_eq!(status, 200, "{body}");
        body["flamegraph"]["total"].as_str().map_or(0, |t| t.parse::<i64>().unwrap())
    };
    let upper = span.to_uppercase();
    assert_eq!(query("/querier.v1.QuerierService/SelectMergeStacktraces", json!([span])), expected);
    assert_eq!(query("/querier.v1.QuerierService/SelectMergeSpanProfile", json!([upper])), expected);
    assert_eq!(query("/querier.v1.QuerierService/SelectMergeStacktraces", json!(["00000000000000aa"])), 0);
}

#[test]
fn diff_of_a_range_against_itself_is_equal_on_both_sides() {
    let server = Server::start_temp();
    let pprof = with_time(&testdata(GO_CPU), now_ns() - 1_000_000_000);
    let sum = sample_type_sums(&decode_pprof(&pprof))[1].2;
    server.push_pprof(&[("__name__", "process_cpu"), ("service_name", "diff")], &pprof);
    let (start, end) = hour_range();
    // The seed document's Diff example, pointed at the pushed data.
    let side = json!({"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                      "labelSelector": "{service_name=\"diff\"}", "start": start, "end": end});
    let (status, body) = server.connect_json("/querier.v1.QuerierService/Diff", json!({"left": side, "right": side}));
    assert_eq!(status, 200, "{body}");
    let fg = &body["flamegraph"];
    assert_eq!(fg["leftTicks"].as_str().unwrap().parse::<i64>().unwrap(), sum);
    assert_eq!(fg["rightTicks"], fg["leftTicks"]);
    assert_eq!(fg["names"][0], "total");
    let mut nodes = 0;
    for level in fg["levels"].as_array().unwrap() {
        let values: Vec<i64> =
            level["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().parse().unwrap()).collect();
        for row in values.chunks(7) {
            assert_eq!(row[..3], row[3..6], "left and right differ: {row:?}");
            nodes += 1;
        }
    }
    assert!(nodes > 10, "{nodes} nodes");

    let (status, body) = server.connect_json("/querier.v1.QuerierService/Diff", json!({"left": side}));
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_argument")), "{body}");
}
