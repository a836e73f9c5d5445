//! Requests captured from real Pyroscope SDKs, replayed byte for byte except
//! for timestamps, which move to "now" to pass the ingestion window.

use std::path::Path;

use kiln_proto::push::v1::PushRequest;
use kiln_tests::Server;
use kiln_tests::fixtures::{
    capture_headers, captures, decode_pprof, gunzip_if_needed, gzip, now_ns, sample_type_sums, shared_dir,
};
use prost::Message;
use serde_json::json;

/// Replays every Push capture of a client folder; returns the expected sum of
/// each (service, profile type) pushed.
fn replay_push_captures(server: &Server, client: &str) -> Vec<(String, String, i64)> {
    let captures = captures(client, "PusherService_Push.body.bin");
    let mut expected = Vec::new();
    for (n, body_path) in captures.iter().enumerate() {
        let head_path = body_path.to_string_lossy().replace(".body.bin", ".headers.txt");
        let headers = capture_headers(Path::new(&head_path));
        let gzipped = headers.iter().any(|(k, v)| k == "content-encoding" && v == "gzip");
        let content_type = headers.iter().find(|(k, _)| k == "content-type").unwrap().1.clone();
        let json = content_type.starts_with("application/json");
        let raw = gunzip_if_needed(&std::fs::read(body_path).unwrap());
        let mut req: PushRequest =
            if json { serde_json::from_slice(&raw).unwrap() } else { PushRequest::decode(&raw[..]).unwrap() };
        // Distinct recent times keep the captures apart from each other.
        let time = now_ns() - (n as i64 + 1) * 1_000_000_000;
        for series in &mut req.series {
            let service = series.labels.iter().find(|l| l.name == "service_name").unwrap().value.clone();
            let name = series.labels.iter().find(|l| l.name == "__name__").unwrap().value.clone();
            for sample in &mut series.samples {
                let mut p = decode_pprof(&sample.raw_profile);
                p.time_nanos = time;
                let period = p
                    .period_type
                    .as_ref()
                    .map(|pt| (p.string_table[pt.r#type as usize].clone(), p.string_table[pt.unit as usize].clone()));
                for (t, u, sum) in sample_type_sums(&p) {
                    let (pt, pu) = period.clone().unwrap_or_default();
                    expected.push((service.clone(), format!("{name}:{t}:{u}:{pt}:{pu}"), sum));
                }
                // Keep the client's choice of plain or gzipped pprof.
                let plain = !sample.raw_profile.starts_with(&[0x1f, 0x8b]);
                sample.raw_profile = if plain { p.encode_to_vec() } else { gzip(&p.encode_to_vec()) };
            }
        }
        let body = if json { serde_json::to_vec(&req).unwrap() } else { req.encode_to_vec() };
        let body = if gzipped { gzip(&body) } else { body };
        let extra: Vec<(&str, &str)> =
            headers.iter().filter(|(k, _)| k != "content-type").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, _, reply) = server.post("/push.v1.PusherService/Push", &content_type, body, &extra);
        assert_eq!(status, 200, "{}: {}", body_path.display(), String::from_utf8_lossy(&reply));
    }
    expected
}

fn assert_queryable(server: &Server, expected: &[(String, String, i64)]) {
    let mut totals: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for (service, id, sum) in expected {
        *totals.entry((service.clone(), id.clone())).or_default() += sum;
    }
    for ((service, id), sum) in totals {
        assert_eq!(server.flame_total(&id, &format!("{{service_name=\"{service}\"}}")), sum, "{service} {id}");
    }
}

#[test]
fn python_pyroscope_io_replays() {
    let server = Server::start_temp();
    let expected = replay_push_captures(&server, "python-pyroscope-io");
    assert_queryable(&server, &expected);
    // Sample labels (thread_name, work, ...) became series labels.
    let now = now_ns() / 1_000_000;
    let (_, values) = server.connect_json(
        "/querier.v1.QuerierService/LabelValues",
        json!({"name": "thread_name", "start": now - 3_600_000, "end": now + 1000}),
    );
    assert_eq!(values["names"], json!(["MainThread"]));
}

#[test]
fn rust_pyroscope_replays() {
    let server = Server::start_temp();
    let expected = replay_push_captures(&server, "rust-pyroscope");
    assert_queryable(&server, &expected);
}

#[test]
fn connect_es_captures_replay() {
    let server = Server::start_temp();
    let expected = replay_push_captures(&server, "connect-grpc-clients");
    assert_queryable(&server, &expected);

    // Its LabelNames call, with the captured headers and a current range.
    let dir = shared_dir().join("testdata/clients/connect-grpc-clients");
    let headers = capture_headers(&dir.join("003-POST-querier.v1.QuerierService_LabelNames.headers.txt"));
    let mut body: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("003-POST-querier.v1.QuerierService_LabelNames.body.bin")).unwrap(),
    )
    .unwrap();
    let now = now_ns() / 1_000_000;
    body["start"] = json!((now - 3_600_000).to_string());
    body["end"] = json!(now.to_string());
    let extra: Vec<(&str, &str)> =
        headers.iter().filter(|(k, _)| k != "content-type").map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, reply_headers, reply) =
        server.post("/querier.v1.QuerierService/LabelNames", "application/json", body.to_string().into_bytes(), &extra);
    assert_eq!(status, 200);
    // connect-es accepts gzip; the reply is in the request's codec.
    assert_eq!(reply_headers.get("content-type").map(String::as_str), Some("application/json"));
    let reply: serde_json::Value = serde_json::from_slice(&kiln_tests::fixtures::gunzip_if_needed(&reply)).unwrap();
    let names = reply["names"].as_array().unwrap();
    for want in ["__name__", "env", "service_name", "work"] {
        assert!(names.contains(&json!(want)), "{want} missing from {reply}");
    }
}
