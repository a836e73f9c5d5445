//! Bad input gets Pyroscope's error shape and status, and the server stays up.

use base64::Engine;
use kiln_proto::google::v1::{Profile, ValueType};
use kiln_proto::push::v1::{PushRequest, RawProfileSeries, RawSample};
use kiln_proto::types::v1::LabelPair;
use kiln_tests::Server;
use kiln_tests::fixtures::{now_ns, testdata, with_time};
use prost::Message;
use serde_json::{Value, json};

const PUSH: &str = "/push.v1.PusherService/Push";

fn push_json(raw: &str) -> Value {
    json!({"series": [{"labels": [{"name": "__name__", "value": "process_cpu"}],
                       "samples": [{"rawProfile": raw}]}]})
}

fn push_proto(raw: Vec<u8>) -> Vec<u8> {
    PushRequest {
        series: vec![RawProfileSeries {
            labels: vec![LabelPair { name: "__name__".into(), value: "process_cpu".into() }],
            samples: vec![RawSample { raw_profile: raw, id: String::new() }],
            annotations: vec![],
        }],
    }
    .encode_to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Asserts a Connect error: status, JSON body with `code`, and a message
/// containing `needle`.
fn assert_error(reply: (u16, Vec<u8>), status: u16, code: &str, needle: &str) {
    let body: Value =
        serde_json::from_slice(&reply.1).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&reply.1)));
    assert_eq!(reply.0, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().unwrap().contains(needle), "{body} lacks {needle:?}");
}

#[test]
fn bad_inputs_get_pyroscope_errors() {
    let server = Server::start_temp();
    let json = |body: &[u8]| {
        let (s, _, b) = server.post(PUSH, "application/json", body.to_vec(), &[]);
        (s, b)
    };
    let proto = |body: Vec<u8>| {
        let (s, _, b) = server.post(PUSH, "application/proto", body, &[]);
        (s, b)
    };

    assert_error(json(b"{\"series\": [ {"), 400, "invalid_argument", "unmarshal");
    assert_error(json(b""), 400, "invalid_argument", "zero-length payload");
    assert_error(json(push_json("%%%not base64%%%").to_string().as_bytes()), 400, "invalid_argument", "");
    assert_error(
        json(push_json(&b64(b"definitely not a pprof")).to_string().as_bytes()),
        400,
        "invalid_argument",
        "profile",
    );

    let good = with_time(&testdata("pprof/pyroscope/cpu.pb.gz"), now_ns());
    assert_error(proto(push_proto(good[..good.len() / 2].to_vec())), 400, "invalid_argument", "decompress");

    let mut bad_strings = Profile {
        sample_type: vec![ValueType { r#type: 7, unit: 1 }],
        string_table: vec![String::new(), "count".into()],
        ..Default::default()
    };
    assert_error(
        proto(push_proto(bad_strings.encode_to_vec())),
        400,
        "invalid_argument",
        "sample type type string index out of range",
    );
    bad_strings.sample_type.clear();
    assert_error(proto(push_proto(bad_strings.encode_to_vec())), 400, "invalid_argument", "empty profile");

    assert_error(proto(b"\xff\xff\xff\xff".to_vec()), 400, "invalid_argument", "");
    assert_error(proto(PushRequest::default().encode_to_vec()), 400, "invalid_argument", "no profiles received");

    // 50 MB of profile in a well-formed request: over the 4 MiB profile limit.
    let big = vec![0u8; 50 * 1024 * 1024];
    assert_error(proto(push_proto(big)), 400, "invalid_argument", "exceeds limit");

    // Protocol errors as connect-go answers them.
    let (s, h, b) = server.get(PUSH);
    assert_eq!((s, b.is_empty()), (405, true));
    assert_eq!(h.get("allow").map(String::as_str), Some("POST"));
    let (s, _, _) = server.post(PUSH, "text/plain", b"x".to_vec(), &[]);
    assert_eq!(s, 415);
    let (s, _, b) = server.post(PUSH, "application/json", b"{}".to_vec(), &[("content-encoding", "br")]);
    assert_error((s, b), 501, "unimplemented", "unknown compression");

    // Unknown methods and paths.
    let (s, _, _) = server.post("/querier.v1.QuerierService/NoSuchMethod", "application/json", b"{}".to_vec(), &[]);
    assert_eq!(s, 404);

    // Query validation.
    let (s, b) = server.connect_json("/querier.v1.QuerierService/LabelNames", json!({}));
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_argument")), "{b}");
    let now = now_ns() / 1_000_000;
    let (s, b) = server.connect_json(
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        json!({"profileTypeID": "bad", "labelSelector": "{}", "start": now - 1000, "end": now}),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b["message"].as_str().unwrap().contains("profile-type selection"), "{b}");
    let (s, b) = server.connect_json(
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        json!({"profileTypeID": "a:b:c:d:e", "labelSelector": "{x=~\"(\"}", "start": now - 1000, "end": now}),
    );
    assert_eq!(s, 400, "{b}");

    // Malformed selectors are the client's error.
    let (s, b) = server.connect_json(
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        json!({"profileTypeID": "a:b:c:d:e", "labelSelector": "{}", "start": now - 1000, "end": now,
               "traceIdSelector": ["0123456789abcdef"]}),
    );
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_argument")), "{b}");
    let (s, b) = server.connect_json(
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        json!({"profileTypeID": "a:b:c:d:e", "labelSelector": "{}", "start": now - 1000, "end": now,
               "spanSelector": ["not-a-span"]}),
    );
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_argument")), "{b}");

    // Still serving, and nothing bad was stored.
    let (s, _, _) = server.get("/ready");
    assert_eq!(s, 200);
    let (_, types) =
        server.connect_json("/querier.v1.QuerierService/ProfileTypes", json!({"start": now - 3_600_000, "end": now}));
    assert_eq!(types, json!({}));
}
