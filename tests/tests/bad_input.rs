//! The spec's bad-input matrix (`ingest.md` §10.2, `query.md` §1/§12,
//! `wire.md` §2) as one table per kind of input: every row is a request and
//! the status, Connect code and message Pyroscope answers it with. The
//! server stays up and stores nothing from a rejected request.

use base64::Engine;
use kiln_proto::google::v1::{Profile, Sample, ValueType};
use kiln_proto::push::v1::{PushRequest, RawProfileSeries, RawSample};
use kiln_proto::types::v1::LabelPair;
use kiln_tests::Server;
use kiln_tests::fixtures::{now_ns, testdata, with_time};
use prost::Message;
use serde_json::{Value, json};

const PUSH: &str = "/push.v1.PusherService/Push";
const Q: &str = "/querier.v1.QuerierService/";
const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/// One request of the matrix.
struct Row {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// What Pyroscope answers.
enum Expected {
    /// Only a status: connect-go's bodiless 405/415, a 404, a success.
    Status(u16),
    /// A Connect error: status, code and a part of the message.
    Error(u16, &'static str, String),
}

impl Row {
    fn post(what: &'static str, path: &str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Row {
        Row { what, method: "POST", path: path.into(), content_type, headers: vec![], body: body.into() }
    }

    fn json(what: &'static str, path: &str, body: Value) -> Row {
        Row::post(what, path, "application/json", body.to_string())
    }

    fn query(what: &'static str, method: &str, body: Value) -> Row {
        Row::json(what, &format!("{Q}{method}"), body)
    }

    fn header(mut self, name: &'static str, value: &str) -> Row {
        self.headers.push((name, value.into()));
        self
    }
}

fn error(status: u16, code: &'static str, message: impl Into<String>) -> Expected {
    Expected::Error(status, code, message.into())
}

fn check(server: &Server, table: Vec<(Row, Expected)>) {
    let client = reqwest::blocking::Client::new();
    for (row, expected) in table {
        let method = reqwest::Method::from_bytes(row.method.as_bytes()).unwrap();
        let mut req = client.request(method, server.url(&row.path)).body(row.body);
        if !row.content_type.is_empty() {
            req = req.header("content-type", row.content_type);
        }
        for (name, value) in &row.headers {
            req = req.header(*name, value);
        }
        let resp = req.send().expect("request sent");
        let got = resp.status().as_u16();
        let body = resp.bytes().unwrap();
        let what = row.what;
        match expected {
            Expected::Status(status) => assert_eq!(got, status, "{what}: {}", String::from_utf8_lossy(&body)),
            Expected::Error(status, code, needle) => {
                assert_eq!(got, status, "{what}: {}", String::from_utf8_lossy(&body));
                let body: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| panic!("{what}: not JSON: {}", String::from_utf8_lossy(&body)));
                assert_eq!(body["code"], code, "{what}: {body}");
                let message = body["message"].as_str().unwrap_or_default();
                assert!(message.contains(&needle), "{what}: {message:?} lacks {needle:?}");
            }
        }
    }
}

fn push(labels: &[(&str, &str)], raw: Vec<u8>) -> Vec<u8> {
    PushRequest {
        series: vec![RawProfileSeries {
            labels: labels.iter().map(|(n, v)| LabelPair { name: (*n).into(), value: (*v).into() }).collect(),
            samples: vec![RawSample { raw_profile: raw, id: String::new() }],
            annotations: vec![],
        }],
    }
    .encode_to_vec()
}

fn push_row(what: &'static str, labels: &[(&str, &str)], raw: Vec<u8>) -> Row {
    Row::post(what, PUSH, "application/proto", push(labels, raw))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A minimal valid profile at `time_ns` whose first sample type is `kind`.
fn tiny_profile(kind: &str, time_ns: i64) -> Profile {
    Profile {
        sample_type: vec![ValueType { r#type: 1, unit: 2 }],
        sample: vec![Sample { location_id: vec![], value: vec![1], label: vec![] }],
        string_table: vec![String::new(), kind.into(), "count".into()],
        time_nanos: time_ns,
        ..Default::default()
    }
}

#[test]
fn protocol() {
    let server = Server::start_temp();
    let get = Row { method: "GET", ..Row::json("GET", PUSH, json!({})) };
    let put = Row { method: "PUT", ..Row::query("PUT", "LabelNames", json!({})) };
    check(
        &server,
        vec![
            (get, Expected::Status(405)),
            (put, Expected::Status(405)),
            (Row::post("text/plain", PUSH, "text/plain", "x"), Expected::Status(415)),
            (Row::post("no content type", &format!("{Q}Series"), "", "{}"), Expected::Status(415)),
            (
                Row::post("empty JSON", PUSH, "application/json", ""),
                error(400, "invalid_argument", "zero-length payload"),
            ),
            (
                Row::post("broken JSON", PUSH, "application/json", "{\"series\": [ {"),
                error(400, "invalid_argument", ""),
            ),
            (
                Row::query("string where a number belongs", "LabelNames", json!({"start": "now-1h", "end": 1})),
                error(400, "invalid_argument", ""),
            ),
            (
                Row::post("broken protobuf", PUSH, "application/proto", b"\xff\xff\xff\xff".to_vec()),
                error(400, "invalid_argument", ""),
            ),
            (
                Row::json("unknown compression", PUSH, json!({})).header("content-encoding", "br"),
                error(501, "unimplemented", "unknown compression"),
            ),
            (
                Row::json("gzip that is not", PUSH, json!({})).header("content-encoding", "gzip"),
                error(400, "invalid_argument", ""),
            ),
            (
                Row::json("protocol version 2", PUSH, json!({})).header("connect-protocol-version", "2"),
                error(400, "invalid_argument", "connect-protocol-version must be \"1\""),
            ),
            (Row::query("unknown method", "NoSuchMethod", json!({})), Expected::Status(404)),
            (Row::query("unknown JSON field", "ProfileTypes", json!({"noSuchField": 1})), Expected::Status(200)),
            (
                Row::post("empty binary body", &format!("{Q}ProfileTypes"), "application/proto", vec![]),
                Expected::Status(200),
            ),
        ],
    );
}

#[test]
fn push_payloads() {
    let server = Server::start_temp();
    let now = now_ns();
    let cpu = [("__name__", "process_cpu")];
    let good = with_time(&testdata("pprof/pyroscope/cpu.pb.gz"), now);
    let json_push = |raw: &str| json!({"series": [{"labels": [{"name": "__name__", "value": "process_cpu"}], "samples": [{"rawProfile": raw}]}]});
    let mut bad_string = tiny_profile("cpu", now);
    bad_string.sample_type[0].r#type = 7;
    let mut no_types = tiny_profile("cpu", now);
    no_types.sample_type.clear();
    let mut bad_utf8 = tiny_profile("cpu", now).encode_to_vec();
    // The string table's last entry is "count": make it invalid UTF-8.
    let at = bad_utf8.windows(5).position(|w| w == b"count").unwrap();
    bad_utf8[at] = 0xff;
    let mut value_mismatch = tiny_profile("cpu", now);
    value_mismatch.sample[0].value = vec![1, 2];
    let mut zero_location = tiny_profile("cpu", now);
    zero_location.location.push(Default::default());
    let mut string0 = tiny_profile("cpu", now);
    string0.string_table[0] = "x".into();
    let labels_31: Vec<(String, String)> = (0..30).map(|i| (format!("l{i}"), "v".into())).collect();
    let mut many: Vec<(&str, &str)> = labels_31.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    many.push(("__name__", "process_cpu"));
    let long_name = "n".repeat(1025);
    let long_value = "v".repeat(2049);
    check(
        &server,
        vec![
            (Row::json("rawProfile not base64", PUSH, json_push("%%%")), error(400, "invalid_argument", "")),
            (
                Row::json("rawProfile not a pprof", PUSH, json_push(&b64(b"definitely not a pprof"))),
                error(400, "invalid_argument", "failed to parse profile"),
            ),
            (
                push_row("truncated gzip", &cpu, good[..good.len() / 2].to_vec()),
                error(400, "invalid_argument", "failed to decompress profile"),
            ),
            (
                push_row("string index out of range", &cpu, bad_string.encode_to_vec()),
                error(400, "invalid_argument", "sample type type string index out of range"),
            ),
            (
                push_row("no sample types", &cpu, no_types.encode_to_vec()),
                error(400, "invalid_argument", "empty profile"),
            ),
            (
                push_row("sample type with '-'", &cpu, tiny_profile("cpu-time", now).encode_to_vec()),
                error(400, "invalid_argument", "sample type contains -"),
            ),
            (push_row("invalid UTF-8 string", &cpu, bad_utf8), error(400, "invalid_argument", "")),
            (
                push_row("values per sample != sample types", &cpu, value_mismatch.encode_to_vec()),
                error(400, "invalid_argument", "sample value length mismatch"),
            ),
            (
                push_row("location id 0", &cpu, zero_location.encode_to_vec()),
                error(400, "invalid_argument", "location id is 0"),
            ),
            (
                push_row("string 0 not empty", &cpu, string0.encode_to_vec()),
                error(400, "invalid_argument", "string 0 should be empty string"),
            ),
            (
                Row::post("no profiles", PUSH, "application/proto", PushRequest::default().encode_to_vec()),
                error(400, "invalid_argument", "no profiles received"),
            ),
            (
                push_row("50 MB profile", &cpu, vec![0u8; 50 * 1024 * 1024]),
                error(400, "invalid_argument", "uncompressed profile payload size exceeds limit of 4.2 MB"),
            ),
            (
                push_row("no __name__", &[("service_name", "x")], good.clone()),
                error(400, "invalid_argument", "with error: invalid metric name"),
            ),
            (push_row("31 labels", &many, good.clone()), error(400, "invalid_argument", "label names; limit 30")),
            (
                push_row("label name of 1025 bytes", &[("__name__", "process_cpu"), (&long_name, "v")], good.clone()),
                error(400, "invalid_argument", format!("has label name too long: '{long_name}'")),
            ),
            (
                push_row("label value of 2049 bytes", &[("__name__", "process_cpu"), ("k", &long_value)], good.clone()),
                error(400, "invalid_argument", format!("has label value too long: '{long_value}'")),
            ),
            (
                push_row("duplicate label", &[("__name__", "process_cpu"), ("a", "1"), ("a", "2")], good.clone()),
                error(400, "invalid_argument", "has duplicate label name: 'a'"),
            ),
            (
                push_row("two hours old", &cpu, tiny_profile("cpu", now - 2 * 3_600_000_000_000).encode_to_vec()),
                error(400, "invalid_argument", "is outside of ingestion window"),
            ),
            (
                push_row("an hour ahead", &cpu, tiny_profile("cpu", now + 3_600_000_000_000).encode_to_vec()),
                error(400, "invalid_argument", "is outside of ingestion window"),
            ),
        ],
    );
    // Nothing of the above was stored, and the server still serves.
    let end = now / 1_000_000 + 1000;
    let (status, types) =
        server.connect_json(&format!("{Q}ProfileTypes"), json!({"start": end - 3_600_000, "end": end}));
    assert_eq!((status, types), (200, json!({})));
}

#[test]
fn queries() {
    let server = Server::start_temp();
    let end = now_ns() / 1_000_000;
    let start = end - 3_600_000;
    let select = |extra: Value| {
        let mut body = json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let bad_type = "profile-type selection must be of the form <name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>(:delta)";
    let mut table = Vec::new();
    for method in
        ["LabelNames", "LabelValues", "Series", "SelectMergeStacktraces", "SelectMergeProfile", "SelectSeries"]
    {
        let body = |range: Value| {
            let mut b = select(json!({"name": "service_name", "step": 15.0}));
            b.as_object_mut().unwrap().extend(range.as_object().unwrap().clone());
            b
        };
        table.push((
            Row::query("no time range", method, body(json!({"start": 0, "end": 0}))),
            error(400, "invalid_argument", "missing time range in the query"),
        ));
        table.push((
            Row::query("start after end", method, body(json!({"start": end, "end": start}))),
            error(400, "invalid_argument", "query start time is after end time"),
        ));
        table.push((
            Row::query("48 hours", method, body(json!({"start": end - 48 * 3_600_000, "end": end}))),
            error(
                400,
                "invalid_argument",
                "the query time range exceeds the limit (max_query_length, actual: 48h0m0s, limit: 1d)",
            ),
        ));
        // Entirely before the 7-day lookback: empty, not an error.
        table.push((
            Row::query(
                "before the lookback",
                method,
                body(json!({"start": end - 9 * 86_400_000, "end": end - 8 * 86_400_000})),
            ),
            Expected::Status(200),
        ));
    }
    table.extend([
        (Row::query("ProfileTypes without a range", "ProfileTypes", json!({})), Expected::Status(200)),
        (
            Row::query("ProfileTypes from before the lookback", "ProfileTypes", json!({"start": -1, "end": end})),
            error(400, "invalid_argument", "the query time range exceeds the limit (max_query_length"),
        ),
        (
            Row::query("profile type of 3 parts", "SelectMergeStacktraces", select(json!({"profileTypeID": "a:b:c"}))),
            error(400, "invalid_argument", format!("{bad_type}, got(3): \"a:b:c\"")),
        ),
        (
            Row::query("no profile type", "SelectMergeStacktraces", select(json!({"profileTypeID": ""}))),
            error(400, "invalid_argument", bad_type),
        ),
        (Row::query("broken selector", "SelectMergeStacktraces", select(json!({"labelSelector": "{x=~\"(\"}"}))), error(400, "invalid_argument", "")),
        (Row::query("no selector", "SelectMergeProfile", select(json!({"labelSelector": ""}))), error(400, "invalid_argument", "")),
        (Row::query("broken matcher", "LabelNames", select(json!({"matchers": ["{x=}"]}))), error(400, "invalid_argument", "")),
        (Row::query("broken matcher", "Series", select(json!({"matchers": ["not a selector"]}))), error(400, "invalid_argument", "")),
        (Row::query("no label name", "LabelValues", select(json!({}))), error(400, "invalid_argument", "name is required")),
        (
            Row::query("max_nodes over the maximum", "SelectMergeStacktraces", select(json!({"maxNodes": 2_000_000}))),
            error(400, "invalid_argument", "max flamegraph nodes limit 2000000 is greater than allowed 1048576"),
        ),
        (
            Row::query("negative max_nodes", "SelectMergeStacktraces", select(json!({"maxNodes": -1}))),
            error(400, "invalid_argument", "max flamegraph nodes limit must be set (max allowed 1048576)"),
        ),
        (Row::query("no step", "SelectSeries", select(json!({}))), error(400, "invalid_argument", "step must be >= 1ms")),
        (
            Row::query(
                "span and trace selectors",
                "SelectMergeStacktraces",
                select(json!({"spanSelector": ["0123456789abcdef"], "traceIdSelector": ["0123456789abcdef0123456789abcdef"]})),
            ),
            error(400, "invalid_argument", "span_selector and trace_id_selector cannot be used together"),
        ),
        (
            Row::query("span id not 16 hex digits", "SelectMergeStacktraces", select(json!({"spanSelector": ["not-a-span"]}))),
            error(400, "invalid_argument", "invalid span id"),
        ),
        (Row::query("Diff without right", "Diff", json!({"left": select(json!({}))})), error(400, "invalid_argument", "right profile is required")),
    ]);
    check(&server, table);
}

#[test]
fn tenants_in_multi_tenant_mode() {
    let server = Server::start_temp_with(&[("multitenancy_enabled", "true")]);
    let end = now_ns() / 1_000_000;
    let range = json!({"start": end - 3_600_000, "end": end});
    let mut table = Vec::new();
    for path in [PUSH.to_string(), format!("{Q}LabelNames"), format!("{Q}SelectMergeStacktraces")] {
        let row = |what| Row::json(what, &path, range.clone());
        table.extend([
            (row("no X-Scope-OrgID"), error(401, "unauthenticated", "no org id")),
            (row("empty X-Scope-OrgID").header("X-Scope-OrgID", ""), error(401, "unauthenticated", "no org id")),
            (
                row("tenant with '/'").header("x-scope-orgid", "a/b"),
                error(401, "unauthenticated", "tenant ID 'a/b' contains unsupported character '/'"),
            ),
            (
                row("tenant '..'").header("X-Scope-OrgID", ".."),
                error(401, "unauthenticated", "tenant ID is '.' or '..'"),
            ),
            (
                row("151-byte tenant").header("X-Scope-OrgID", &"t".repeat(151)),
                error(401, "unauthenticated", "tenant ID is too long: max 150 characters"),
            ),
            (
                row("two tenants").header("X-Scope-OrgID", "a|b"),
                error(401, "unauthenticated", "multiple org IDs present"),
            ),
        ]);
    }
    // Protocol errors come first, as connect-go answers them before the
    // tenant is looked at.
    table.push((Row::post("text/plain without tenant", PUSH, "text/plain", "x"), Expected::Status(415)));
    check(&server, table);
}

#[test]
fn configured_limits() {
    let server = Server::start_temp_with(&[
        ("max_query_length", "1h"),
        ("max_query_lookback", "0"),
        ("max_flamegraph_nodes_max", "10"),
        ("max_label_names_per_series", "3"),
        ("max_label_value_length", "16"),
        ("max_profile_size_bytes", "1000"),
        ("reject_older_than", "0"),
        ("reject_newer_than", "1m"),
    ]);
    let now = now_ns();
    let end = now / 1_000_000;
    let cpu = [("__name__", "process_cpu")];
    let select = |start: i64, extra: Value| {
        let mut body = json!({"profileTypeID": CPU, "labelSelector": "{}", "start": start, "end": end});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let old = tiny_profile("cpu", now - 30 * 86_400_000_000_000).encode_to_vec();
    check(
        &server,
        vec![
            (
                Row::query("2 hours, 1h allowed", "SelectMergeStacktraces", select(end - 7_200_000, json!({}))),
                error(
                    400,
                    "invalid_argument",
                    "the query time range exceeds the limit (max_query_length, actual: 2h0m0s, limit: 1h)",
                ),
            ),
            (
                Row::query("an hour", "SelectMergeStacktraces", select(end - 3_600_000, json!({}))),
                Expected::Status(200),
            ),
            (
                Row::query(
                    "max_nodes 11, 10 allowed",
                    "SelectMergeStacktraces",
                    select(end - 60_000, json!({"maxNodes": 11})),
                ),
                error(400, "invalid_argument", "max flamegraph nodes limit 11 is greater than allowed 10"),
            ),
            (push_row("a month old, no lower bound", &cpu, old), Expected::Status(200)),
            (
                push_row("two minutes ahead", &cpu, tiny_profile("cpu", now + 120_000_000_000).encode_to_vec()),
                error(400, "invalid_argument", "the ingestion window ends at"),
            ),
            (
                push_row(
                    "4 labels, 3 allowed",
                    &[("__name__", "process_cpu"), ("a", "1"), ("b", "2"), ("c", "3")],
                    tiny_profile("cpu", now).encode_to_vec(),
                ),
                error(400, "invalid_argument", "label names; limit 3"),
            ),
            (
                push_row(
                    "17-byte value, 16 allowed",
                    &[("__name__", "process_cpu"), ("a", "12345678901234567")],
                    tiny_profile("cpu", now).encode_to_vec(),
                ),
                error(400, "invalid_argument", "has label value too long: '12345678901234567'"),
            ),
            (
                push_row("real profile over 1000 bytes", &cpu, with_time(&testdata("pprof/pyroscope/cpu.pb.gz"), now)),
                error(400, "invalid_argument", "uncompressed profile payload size exceeds limit of 1.0 kB"),
            ),
        ],
    );
}
