//! Acknowledged data survives restarts and concurrent writers.

use kiln_proto::google::v1::{Function, Line, Location, Profile, Sample, ValueType};
use kiln_tests::Server;
use kiln_tests::fixtures::{now_ns, testdata, with_time};
use prost::Message;
use serde_json::{Value, json};

fn queries(now_ms: i64) -> Vec<(&'static str, Value)> {
    let range = |extra: Value| {
        let mut v = json!({"start": now_ms - 3_600_000, "end": now_ms + 60_000});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    vec![
        ("ProfileTypes", range(json!({}))),
        ("LabelNames", range(json!({}))),
        ("LabelValues", range(json!({"name": "service_name"}))),
        ("Series", range(json!({"matchers": ["{}"]}))),
        (
            "SelectMergeStacktraces",
            range(json!({"profileTypeID": "memory:alloc_space:bytes:space:bytes", "labelSelector": "{}"})),
        ),
    ]
}

#[test]
fn restart_keeps_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let now_ms = now_ns() / 1_000_000;
    let server = Server::start(dir.path());
    let heap = with_time(&testdata("pprof/pyroscope/heap.pb.gz"), now_ns());
    server.push_pprof(&[("__name__", "memory"), ("service_name", "restart")], &heap);
    let before: Vec<Value> = queries(now_ms)
        .into_iter()
        .map(|(m, q)| server.connect_json(&format!("/querier.v1.QuerierService/{m}"), q).1)
        .collect();
    assert_ne!(before[4]["flamegraph"]["total"], Value::Null);
    server.stop();

    let server = Server::start(dir.path());
    let after: Vec<Value> = queries(now_ms)
        .into_iter()
        .map(|(m, q)| server.connect_json(&format!("/querier.v1.QuerierService/{m}"), q).1)
        .collect();
    assert_eq!(before, after);
}

/// A one-sample profile: stack `client;c<client>` with `count` = 1 and
/// `weight` = a value unique to (client, i).
fn tiny_profile(client: usize, i: usize, time_ns: i64) -> Vec<u8> {
    let strings = ["", "count", "count", "weight", "bytes", "client", &format!("c{client}")];
    Profile {
        sample_type: vec![ValueType { r#type: 1, unit: 2 }, ValueType { r#type: 3, unit: 4 }],
        sample: vec![Sample { location_id: vec![2, 1], value: vec![1, (client * 1000 + i + 1) as i64], label: vec![] }],
        location: (1..=2)
            .map(|id| Location { id, line: vec![Line { function_id: id, line: 0 }], ..Default::default() })
            .collect(),
        function: (1..=2).map(|id| Function { id, name: 4 + id as i64, ..Default::default() }).collect(),
        string_table: strings.iter().map(|s| s.to_string()).collect(),
        time_nanos: time_ns,
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn concurrent_pushes_are_exact() {
    const CLIENTS: usize = 8;
    const PER_CLIENT: usize = 200;
    let server = Server::start_temp();
    let start_ns = now_ns();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let server = &server;
            s.spawn(move || {
                for i in 0..PER_CLIENT {
                    let p = tiny_profile(c, i, start_ns + (i as i64) * 1_000_000);
                    server.push_pprof(&[("__name__", "concurrency"), ("service_name", "conc")], &p);
                }
            });
        }
    });
    let now_ms = now_ns() / 1_000_000;
    let total = |id: &str| {
        let (status, body) = server.connect_json(
            "/querier.v1.QuerierService/SelectMergeStacktraces",
            json!({"profileTypeID": id, "labelSelector": "{service_name=\"conc\"}",
                   "start": now_ms - 3_600_000, "end": now_ms + 60_000}),
        );
        assert_eq!(status, 200, "{body}");
        body["flamegraph"]["total"].as_str().unwrap().parse::<i64>().unwrap()
    };
    assert_eq!(total("concurrency:count:count::"), (CLIENTS * PER_CLIENT) as i64, "profile count");
    let expected: i64 = (0..CLIENTS).flat_map(|c| (0..PER_CLIENT).map(move |i| (c * 1000 + i + 1) as i64)).sum();
    assert_eq!(total("concurrency:weight:bytes::"), expected, "sum of values");
}
