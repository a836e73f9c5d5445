//! Issue 3's acceptance: every curl and Python example of the seed document
//! (`seed/pyroscope-server-api.txt`) runs as written against the real server
//! and returns 200 with the documented shape.
//!
//! The examples are cut out of the seed at test time, never copied here. They
//! run in a scratch directory holding the files they name (`cpu.pb.gz`,
//! `profile.jfr`, `labels.pb`), with only the substitutions in [`substitute`].
//! Before they run, real profiles are pushed under the labels they query
//! (`namespace="my-namespace"`, `service_name="pyroscope"` and
//! `"my_application_name"`, a `pod`, spans `9a517183f26a089d`), so every
//! query has data to answer with.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use kiln_proto::google::v1::Label;
use kiln_tests::Server;
use kiln_tests::fixtures::{decode_pprof, gzip, now_ns, shared_dir, testdata, with_time};
use prost::Message;
use serde_json::Value;

const SEED_HOST: &str = "http://localhost:4040";

/// What a documented endpoint answers with.
enum Reply {
    /// An empty body (`/ingest`).
    Empty,
    /// The JSON object `{}` (an empty Connect message).
    EmptyJson,
    /// A JSON object whose listed fields (`a.b` for nested ones) are present
    /// and non-empty, so a query that matched nothing fails.
    Fields(&'static [&'static str]),
}

/// Every endpoint the seed's examples call, with its documented reply.
const ENDPOINTS: &[(&str, Reply)] = &[
    ("/push.v1.PusherService/Push", Reply::EmptyJson),
    (
        "/querier.v1.QuerierService/Diff",
        Reply::Fields(&["flamegraph.names", "flamegraph.leftTicks", "flamegraph.rightTicks"]),
    ),
    ("/querier.v1.QuerierService/LabelNames", Reply::Fields(&["names"])),
    ("/querier.v1.QuerierService/LabelValues", Reply::Fields(&["names"])),
    ("/querier.v1.QuerierService/ProfileTypes", Reply::Fields(&["profileTypes"])),
    ("/querier.v1.QuerierService/SelectMergeProfile", Reply::Fields(&["sampleType", "sample", "stringTable"])),
    ("/querier.v1.QuerierService/SelectMergeSpanProfile", Reply::Fields(&["flamegraph.names", "flamegraph.total"])),
    ("/querier.v1.QuerierService/SelectMergeStacktraces", Reply::Fields(&["flamegraph.names", "flamegraph.total"])),
    ("/querier.v1.QuerierService/SelectSeries", Reply::Fields(&["series"])),
    ("/querier.v1.QuerierService/Series", Reply::Fields(&["labelsSet"])),
    ("/ingest", Reply::Empty),
    ("/pyroscope/render", Reply::Fields(&["flamebearer.names", "flamebearer.levels", "metadata", "timeline.samples"])),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Language {
    Curl,
    Python,
}

struct Example {
    language: Language,
    code: String,
}

impl Example {
    /// The endpoint path the example calls (`/querier.v1.QuerierService/Diff`).
    fn endpoint(&self) -> &'static str {
        let at = self.code.find(SEED_HOST).expect("example names the seed host") + SEED_HOST.len();
        let rest = &self.code[at..];
        let path = &rest[..rest.find(['\'', '"', '?', '\n', ' ']).unwrap_or(rest.len())];
        ENDPOINTS
            .iter()
            .map(|(p, _)| *p)
            .find(|p| *p == path)
            .unwrap_or_else(|| panic!("example calls an undocumented endpoint {path:?}:\n{}", self.code))
    }
}

/// Cuts the examples out of the flattened seed text. A curl example runs from
/// the line that starts it (`curl ...` or `printf ... | curl`) to the end of
/// its URL; a Python example from `import requests` through its request call
/// and the `print(...)` lines after it. Code and prose are glued together in
/// the seed (`.../Pushimport requests`), hence the careful ends.
fn extract(seed: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut line_start = 0;
    for line in seed.split_inclusive('\n') {
        if line.starts_with("curl ") || line.contains("| curl ") {
            let end = curl_end(seed, line_start);
            examples.push((line_start, Example { language: Language::Curl, code: seed[line_start..end].into() }));
        }
        line_start += line.len();
    }
    for (start, _) in seed.match_indices("import requests") {
        let end = python_end(seed, start);
        examples.push((start, Example { language: Language::Python, code: seed[start..end].into() }));
    }
    examples.sort_by_key(|(start, _)| *start);
    examples.into_iter().map(|(_, e)| e).collect()
}

/// The end of the curl command starting at `start`: its URL's closing quote,
/// or for an unquoted URL the end of the documented path it names.
fn curl_end(seed: &str, start: usize) -> usize {
    let url = start + seed[start..].find(SEED_HOST).expect("curl example without URL");
    let quote = seed[..url].chars().next_back().filter(|c| *c == '\'' || *c == '"');
    if let Some(quote) = quote {
        return url + seed[url..].find(quote).expect("closing quote") + 1;
    }
    let rest = &seed[url + SEED_HOST.len()..];
    let path = ENDPOINTS
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| rest.starts_with(p))
        .max_by_key(|p| p.len())
        .unwrap_or_else(|| panic!("unquoted URL to an undocumented endpoint: {}", &rest[..40.min(rest.len())]));
    url + SEED_HOST.len() + path.len()
}

/// The end of the Python example starting at `start`.
fn python_end(seed: &str, start: usize) -> usize {
    let call = start + seed[start..].find("requests.post(").or_else(|| seed[start..].find("requests.get(")).unwrap();
    let mut end = call_end(seed, call);
    while seed[end..].starts_with("\nprint(") {
        end = call_end(seed, end + 1);
    }
    end
}

/// The index just past the parenthesis closing the first `(` after `at`.
fn call_end(seed: &str, at: usize) -> usize {
    let mut depth = 0;
    for (i, c) in seed[at..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 1 => return at + i + 1,
            ')' => depth -= 1,
            _ => {}
        }
    }
    panic!("unbalanced call in seed at {at}")
}

/// The only changes made to an example; each must apply somewhere in the
/// seed, so none lingers once the seed changes.
struct Substitutions {
    host: String,
    now_s: i64,
    used: [usize; 5],
}

impl Substitutions {
    fn apply(&mut self, code: &str, endpoint: &str) -> String {
        // 1. The test server instead of localhost:4040.
        let mut code = code.replace(SEED_HOST, &self.host);
        self.used[0] += 1;
        // 2. The /ingest examples' fixed 2021/2022 `from`/`until` move to the
        //    last ten seconds: the ingestion window refuses hour-old data.
        for (param, value) in [("from=", self.now_s - 10), ("until=", self.now_s)] {
            if let Some(replaced) = replace_number_after(&code, param, value) {
                code = replaced;
                self.used[1] += 1;
            }
        }
        // 3. The render example's f-string is a SyntaxError as printed (its
        //    selector braces are not doubled); double them.
        const BROKEN: &str = "nanoseconds{service_name=\"{application_name}\"}'";
        if code.contains(BROKEN) {
            code = code.replace(BROKEN, "nanoseconds{{service_name=\"{application_name}\"}}'");
            self.used[2] += 1;
        }
        // 4. SelectSeries requires a `step` (Pyroscope answers 400 "step must
        //    be >= 1ms" without one), which the seed's examples omit; add the
        //    render API's smallest step, 15 s.
        if endpoint == "/querier.v1.QuerierService/SelectSeries" {
            code = code.replacen("\"labelSelector\"", "\"step\": 15, \"labelSelector\"", 1);
            self.used[3] += 1;
        }
        // 5. Pyroscope takes a text profile's type from the app name's last
        //    dot-suffix and answers 400 "unknown profile type: example" for
        //    `python.example`; name the type the way its docs advise.
        if code.contains("'python.example{") {
            code = code.replace("'python.example{", "'python.example.cpu{");
            self.used[4] += 1;
        }
        code
    }
}

/// `code` with the digits after `param` replaced by `value`, if there are any.
fn replace_number_after(code: &str, param: &str, value: i64) -> Option<String> {
    let at = code.find(param)? + param.len();
    let digits = code[at..].bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0).then(|| format!("{}{value}{}", &code[..at], &code[at + digits..]))
}

/// Runs every command line a curl example issues through a `curl` wrapper
/// that records each reply: its status as a line on stdout, its body in
/// `$KILN_REPLY.<n>`.
const CURL_PRELUDE: &str = "set -eo pipefail
curl() { command curl --silent --show-error --output \"$KILN_REPLY.$((n += 1))\" --write-out '%{http_code}\\n' \"$@\"; }
";

/// Records every response `requests` receives and writes them, as JSON, to
/// `$KILN_REPLY` when the example exits.
const PYTHON_PRELUDE: &str = "import atexit, base64, json, os, requests
_replies = []
_send = requests.sessions.Session.send
def _recording_send(self, request, **kwargs):
    reply = _send(self, request, **kwargs)
    _replies.append({'status': reply.status_code, 'body': base64.b64encode(reply.content).decode()})
    return reply
requests.sessions.Session.send = _recording_send
def _write_replies():
    with open(os.environ['KILN_REPLY'], 'w') as out:
        json.dump(_replies, out)
atexit.register(_write_replies)
";

/// Runs one example in `dir`; returns the (status, body) of each request it
/// made.
fn run(example: &Example, code: &str, dir: &Path) -> Vec<(u16, Vec<u8>)> {
    let reply = dir.join("reply");
    // No reply of an earlier example may pass for this one's.
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("reply") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let output = match example.language {
        Language::Curl => Command::new("bash")
            .arg("-c")
            .arg(format!("{CURL_PRELUDE}{code}"))
            .env("KILN_REPLY", &reply)
            .current_dir(dir)
            .output(),
        Language::Python => {
            let script = dir.join("example.py");
            std::fs::write(&script, format!("{PYTHON_PRELUDE}{code}\n")).unwrap();
            Command::new("python3").arg(&script).env("KILN_REPLY", &reply).current_dir(dir).output()
        }
    }
    .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", example.language));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{:?} example failed ({}):\n{code}\n--- stdout\n{stdout}\n--- stderr\n{}",
        example.language,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    match example.language {
        Language::Curl => stdout
            .lines()
            .enumerate()
            .map(|(i, status)| {
                let body = dir.join(format!("reply.{}", i + 1));
                (status.parse().unwrap(), std::fs::read(&body).unwrap_or_default())
            })
            .collect(),
        Language::Python => {
            let replies: Value = serde_json::from_slice(&std::fs::read(&reply).unwrap()).unwrap();
            replies
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let body = base64::engine::general_purpose::STANDARD.decode(r["body"].as_str().unwrap()).unwrap();
                    (r["status"].as_u64().unwrap() as u16, body)
                })
                .collect()
        }
    }
}

/// Checks a reply against the endpoint's documented shape.
fn check_shape(endpoint: &str, body: &[u8]) -> Result<(), String> {
    let (_, shape) = ENDPOINTS.iter().find(|(p, _)| *p == endpoint).unwrap();
    let json = || serde_json::from_slice::<Value>(body).map_err(|e| format!("not JSON: {e}"));
    match shape {
        Reply::Empty if body.is_empty() => Ok(()),
        Reply::Empty => Err("expected an empty body".into()),
        Reply::EmptyJson if json()? == serde_json::json!({}) => Ok(()),
        Reply::EmptyJson => Err("expected {}".into()),
        Reply::Fields(fields) => {
            let value = json()?;
            for field in *fields {
                let found = field.split('.').fold(&value, |v, key| &v[key]);
                let present = match found {
                    Value::Object(o) => !o.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    // Connect JSON omits zeros, but a 64-bit zero may come as "0".
                    Value::String(s) => !s.is_empty() && s != "0",
                    Value::Number(_) | Value::Bool(_) => true,
                    Value::Null => false,
                };
                if !present {
                    return Err(format!("field {field:?} missing or empty"));
                }
            }
            Ok(())
        }
    }
}

/// The Go CPU fixture at `now`, every sample tagged with the span the span
/// example selects.
fn go_cpu_with_span(time_ns: i64) -> Vec<u8> {
    let mut profile = decode_pprof(&with_time(&testdata("pprof/pyroscope/cpu.pb.gz"), time_ns));
    let key = profile.string_table.len() as i64;
    profile.string_table.extend(["span_id".into(), "9a517183f26a089d".into()]);
    for sample in &mut profile.sample {
        sample.label.push(Label { key, str: key + 1, ..Default::default() });
    }
    gzip(&profile.encode_to_vec())
}

#[test]
fn every_seed_example_runs_and_answers_as_documented() {
    let seed = std::fs::read_to_string(shared_dir().join("seed/pyroscope-server-api.txt")).unwrap();
    let examples = extract(&seed);
    let count = |language| examples.iter().filter(|e| e.language == language).count();
    // Each example names the seed host exactly once, so together they must
    // account for every mention of it: none is skipped, none cut twice.
    assert_eq!(examples.len(), seed.matches(SEED_HOST).count(), "an example escaped extraction");
    assert!(examples.iter().all(|e| e.code.matches(SEED_HOST).count() == 1));
    assert_eq!((count(Language::Curl), count(Language::Python)), (14, 12), "the seed's examples changed");

    let server = Server::start_temp();
    // A minute old: the examples' `end` is `$(date +%s)000`, the current
    // second rounded down, which would miss a profile stamped this second.
    let pprof = go_cpu_with_span(now_ns() - 60_000_000_000);
    for (service, pod) in [("pyroscope", "pod-a"), ("my_application_name", "pod-b")] {
        server.push_pprof(
            &[("__name__", "process_cpu"), ("service_name", service), ("namespace", "my-namespace"), ("pod", pod)],
            &pprof,
        );
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cpu.pb.gz"), &pprof).unwrap();
    std::fs::write(
        dir.path().join("profile.jfr"),
        std::fs::read(shared_dir().join("testdata/clients/java-jfr/001-POST-ingest.body.bin")).unwrap(),
    )
    .unwrap();
    // An empty LabelsSnapshot: the recording's events carry no contexts.
    std::fs::write(dir.path().join("labels.pb"), b"").unwrap();

    let mut substitutions = Substitutions { host: server.url(""), now_s: now_ns() / 1_000_000_000, used: [0; 5] };
    let mut passed = 0;
    for example in &examples {
        let endpoint = example.endpoint();
        let code = substitutions.apply(&example.code, endpoint);
        let replies = run(example, &code, dir.path());
        assert_eq!(replies.len(), 1, "{:?} example made {} requests:\n{code}", example.language, replies.len());
        let (status, body) = &replies[0];
        let body_text = String::from_utf8_lossy(body);
        assert_eq!(*status, 200, "{:?} example to {endpoint} answered {status}: {body_text}\n{code}", example.language);
        if let Err(why) = check_shape(endpoint, body) {
            panic!("{:?} example to {endpoint}: {why}: {body_text}\n{code}", example.language);
        }
        passed += 1;
    }
    assert_eq!(passed, examples.len());
    assert!(substitutions.used.iter().all(|n| *n > 0), "a substitution no longer applies: {:?}", substitutions.used);

    // The ingest examples really stored their profiles.
    let now = now_ns() / 1_000_000;
    let (status, values) = server.connect_json(
        "/querier.v1.QuerierService/LabelValues",
        serde_json::json!({"name": "service_name", "start": now - 3_600_000, "end": now + 60_000}),
    );
    assert_eq!(status, 200);
    for service in ["my_service", "curl-test-app", "python.example"] {
        assert!(values["names"].as_array().unwrap().iter().any(|v| v == service), "{service} missing: {values}");
    }
}
