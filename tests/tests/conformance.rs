//! Issue 3's conformance matrix: every non-JFR profile file listed in
//! testdata/MANIFEST.md goes through `/ingest` and through Push; the status,
//! the profile type IDs and the merged stacks must be the manifest's.
//! Facts the manifest marks [A] (asserted by an upstream test) must hold;
//! [C] facts (read from upstream code) are checked and reported.

use std::collections::BTreeMap;

use kiln_core::pprof::collapsed;
use kiln_proto::google::v1::Profile;
use kiln_tests::Server;
use kiln_tests::fixtures::{append_time, decode_pprof, gunzip_if_needed, now_ns, shared_dir, testdata};
use serde_json::json;

/// A fact with the certainty of its source.
#[derive(Clone, Debug)]
struct Fact<T> {
    value: T,
    certain: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pprof,
    Speedscope,
    Folded,
}

/// One manifest row and what it expects.
#[derive(Debug)]
struct Case {
    path: String,
    kind: Kind,
    ingest_status: Option<Fact<u16>>,
    push_status: Option<Fact<u16>>,
    push_name: Option<String>,
    /// Profile type IDs with the pprof sample type index they come from.
    types: Option<Fact<Vec<(String, Option<usize>)>>>,
    spy_name: Option<String>,
    config: Option<String>,
    /// The Push expectation is for a request without `__name__`.
    unnamed_push: bool,
}

/// Is the fact at byte `pos` of `facts` tagged [A]?
fn certain_at(facts: &str, pos: usize) -> bool {
    let before = &facts[..pos];
    let last = |tag| before.rfind(tag).map_or(-1, |i| i as i64);
    last("[A]") > last("[C]").max(last("[M]"))
}

/// `→ NNN` within the clause starting at `from` (up to `;`).
fn arrow_status(facts: &str, from: usize) -> Option<(u16, usize)> {
    let clause = &facts[from..];
    let clause = &clause[..clause.find(';').unwrap_or(clause.len())];
    let arrow = clause.find("→ ")?;
    let digits = clause.get(arrow + "→ ".len()..arrow + "→ ".len() + 3)?;
    Some((digits.parse().ok()?, from + arrow))
}

/// `NNN on <what>` anywhere.
fn status_on(facts: &str, what: &str) -> Option<(u16, usize)> {
    let i = facts.find(&format!(" on {what}"))?;
    Some((facts.get(i.checked_sub(3)?..i)?.parse().ok()?, i))
}

fn status_after(facts: &str, keyword: &str) -> Option<Fact<u16>> {
    let found = facts
        .match_indices(keyword)
        .find_map(|(i, _)| arrow_status(facts, i + keyword.len()))
        .or_else(|| status_on(facts, keyword))
        .or_else(|| {
            let i = facts.find("accepted on /ingest and Push (")? + "accepted on /ingest and Push (".len();
            Some((facts.get(i..i + 3)?.parse().ok()?, i))
        })?;
    Some(Fact { value: found.0, certain: certain_at(facts, found.1) })
}

/// Backticked profile type IDs, each optionally followed by `←[i]`.
fn type_ids(facts: &str) -> Option<Fact<Vec<(String, Option<usize>)>>> {
    let mut ids: Vec<(String, Option<usize>)> = Vec::new();
    let mut first = None;
    for (i, token) in facts.split('`').enumerate().filter(|(i, _)| i % 2 == 1) {
        let parts: Vec<&str> = token.split(':').collect();
        let valid = parts.len() == 5
            && !parts[0].is_empty()
            && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !valid {
            continue;
        }
        let offset: usize = facts.split('`').take(i + 1).map(|s| s.len() + 1).sum();
        first.get_or_insert(offset);
        let index = facts[offset..].strip_prefix("←[").and_then(|r| r[..r.find(']')?].parse().ok());
        if !ids.iter().any(|(id, _)| id == token) {
            ids.push((token.to_string(), index));
        }
    }
    Some(Fact { value: ids, certain: certain_at(facts, first?) })
}

fn manifest_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(shared_dir().join("testdata/MANIFEST.md")).unwrap();
    let mut cases = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let path = line[3..line[3..].find('`').unwrap() + 3].to_string();
        let facts = line.rsplit(" | ").next().unwrap_or_default().to_string();
        let kind = if path.starts_with("jfr/") || path.starts_with("otlp/") {
            continue;
        } else if path.starts_with("speedscope/") || path.starts_with("malformed/speedscope/") {
            Kind::Speedscope
        } else if path.starts_with("folded/") || path.starts_with("malformed/folded/") {
            Kind::Folded
        } else {
            Kind::Pprof
        };
        let types = type_ids(&facts).filter(|t| !t.value.is_empty());
        let mut ingest_status = status_after(&facts, "/ingest");
        // Listed types imply an accepted upload; otherwise a text reader's
        // failure is worded "fails the upload (NNN)" or "→ NNN".
        if ingest_status.is_none() {
            ingest_status = types.as_ref().map(|t| Fact { value: 200, certain: t.certain }).or_else(|| {
                let i = facts
                    .find("fails the upload (")
                    .map(|i| i + "fails the upload (".len())
                    .or_else(|| (kind == Kind::Folded).then(|| facts.find("→ ").map(|i| i + "→ ".len())).flatten())?;
                Some(Fact { value: facts.get(i..i + 3)?.parse().ok()?, certain: certain_at(&facts, i) })
            });
        }
        let push_status = if kind == Kind::Pprof { status_after(&facts, "Push") } else { None };
        let push_name = facts
            .split("`__name__`=")
            .nth(1)
            .map(|r| r.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>());
        let spy_name =
            facts.split("spyName=").nth(1).map(|r| r.chars().take_while(char::is_ascii_alphanumeric).collect());
        let config = facts.split('`').find(|t| t.ends_with(".st.json")).map(|t| {
            let dir = &path[..path.rfind('/').unwrap() + 1];
            format!("{dir}{t}")
        });
        let unnamed_push = facts.contains("\"invalid metric name\"");
        cases.push(Case { path, kind, ingest_status, push_status, push_name, types, spy_name, config, unnamed_push });
    }
    cases
}

/// One check's outcome.
struct Outcome {
    path: String,
    what: String,
    certain: bool,
    failure: Option<String>,
}

struct Run<'a> {
    server: &'a Server,
    outcomes: Vec<Outcome>,
}

impl Run<'_> {
    fn check(&mut self, path: &str, what: String, certain: bool, failure: Option<String>) {
        self.outcomes.push(Outcome { path: path.into(), what, certain, failure });
    }

    /// Profile types and merged stacks of `service` against the case.
    fn check_stored(&mut self, case: &Case, via: &str, service: &str, oracle: &dyn Fn(usize) -> Vec<(String, i64)>) {
        let Some(types) = &case.types else { return };
        let selector = format!("{{service_name=\"{service}\"}}");
        let mut want: Vec<String> = types.value.iter().map(|(id, _)| id.clone()).collect();
        want.sort();
        let got = self.server.profile_types_of(&selector);
        let failure = (got != want).then(|| format!("types {got:?}, manifest {want:?}"));
        self.check(&case.path, format!("{via} profile types"), types.certain, failure);
        for (id, index) in &types.value {
            let now = now_ns() / 1_000_000;
            let (status, body) = self.server.connect_json(
                "/querier.v1.QuerierService/SelectMergeProfile",
                json!({"profileTypeID": id, "labelSelector": selector, "start": now - 3_600_000, "end": now + 60_000}),
            );
            let failure = if status != 200 {
                Some(format!("SelectMergeProfile {status}: {body}"))
            } else {
                let merged: Profile = serde_json::from_value(body).expect("a pprof");
                let got = collapsed(&merged, 0);
                let want = oracle(index.unwrap_or(0));
                (got != want).then(|| {
                    let diff: Vec<_> = want.iter().filter(|w| !got.contains(w)).take(3).collect();
                    format!("{} stacks vs {} expected; e.g. missing {diff:?}", got.len(), want.len())
                })
            };
            self.check(&case.path, format!("{via} stacks of {id}"), types.certain, failure);
        }
    }
}

/// The input as kiln stores it: samples with a negative value dropped (as
/// Pyroscope's normalisation does), and `/ingest`'s .NET and spy fixes.
fn pprof_oracle(bytes: &[u8], spy: Option<&str>) -> Profile {
    let mut p = decode_pprof(bytes);
    p.sample.retain(|s| s.value.iter().all(|&v| v >= 0));
    // .NET: function ids 0, one function per location.
    if p.function.iter().all(|f| f.id == 0) && p.function.len() == p.location.len() {
        for (f, l) in p.function.iter_mut().zip(&p.location) {
            f.id = l.id;
        }
    }
    if matches!(spy, Some("pyspy" | "rbspy" | "scripting")) {
        for i in 0..p.function.len() {
            let f = &p.function[i];
            let name = format!("{} {}", p.string_table[f.filename as usize], p.string_table[f.name as usize]);
            p.string_table.push(name);
            p.function[i].name = p.string_table.len() as i64 - 1;
        }
    }
    p
}

/// Folded text at 100 Hz, read independently of the server's reader.
fn folded_oracle(bytes: &[u8]) -> Vec<(String, i64)> {
    let mut stacks: BTreeMap<String, i64> = BTreeMap::new();
    for line in String::from_utf8_lossy(bytes).lines() {
        if let Some((stack, count)) = line.trim_end_matches('\r').rsplit_once(' ') {
            *stacks.entry(stack.to_string()).or_default() += count.parse::<i64>().unwrap() * 10_000_000;
        }
    }
    stacks.into_iter().filter(|(_, v)| *v != 0).collect()
}

fn multipart(fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in fields {
        body.extend(format!("--kilnboundary\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend(bytes);
        body.extend(b"\r\n");
    }
    body.extend(b"--kilnboundary--\r\n");
    body
}

#[test]
fn manifest_files_through_ingest_and_push() {
    let server = Server::start_temp();
    let mut run = Run { server: &server, outcomes: Vec::new() };
    let cases = manifest_cases();
    let mut without_expectation = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        if case.ingest_status.is_none() && case.push_status.is_none() {
            without_expectation.push(case.path.clone());
            continue;
        }
        let bytes = testdata(&case.path);
        let recent = now_ns() - 60_000_000_000;
        if let Some(expected) = &case.ingest_status {
            let service = format!("ingest{n}");
            let spy = case.spy_name.as_deref().unwrap_or_default();
            let (target, content_type, body) = match case.kind {
                Kind::Pprof => {
                    let profile = if expected.value == 200 { append_time(&bytes, recent) } else { bytes.clone() };
                    let mut fields = vec![("profile", profile)];
                    if let Some(config) = &case.config {
                        fields.push(("sample_type_config", testdata(config)));
                    }
                    let ct = "multipart/form-data; boundary=kilnboundary";
                    (format!("/ingest?name={service}&spyName={spy}"), ct, multipart(&fields))
                }
                Kind::Speedscope => {
                    (format!("/ingest?name={service}&format=speedscope"), "application/json", bytes.clone())
                }
                Kind::Folded => (format!("/ingest?name={service}.cpu"), "text/plain", bytes.clone()),
            };
            let (status, _, reply) = server.post(&target, content_type, body, &[]);
            let failure = (status != expected.value)
                .then(|| format!("status {status}, manifest {}: {}", expected.value, String::from_utf8_lossy(&reply)));
            run.check(&case.path, "/ingest status".into(), expected.certain, failure);
            if status == 200 {
                match case.kind {
                    Kind::Pprof => {
                        let p = pprof_oracle(&bytes, case.spy_name.as_deref());
                        run.check_stored(case, "/ingest", &service, &|i| collapsed(&p, i));
                    }
                    Kind::Folded => run.check_stored(case, "/ingest", &service, &|_| folded_oracle(&bytes)),
                    Kind::Speedscope => run.check_stored(case, "/ingest", &service, &|_| speedscope_oracle(&bytes)),
                }
            }
        }
        if let Some(expected) = &case.push_status {
            let service = format!("push{n}");
            let first_type =
                case.types.as_ref().and_then(|t| t.value.first()).map(|(id, _)| id.split(':').next().unwrap());
            let name = case.push_name.as_deref().or(first_type).unwrap_or("process_cpu");
            let profile = if expected.value == 200 { append_time(&bytes, recent) } else { bytes.clone() };
            let mut labels = vec![("__name__", name), ("__delta__", "false"), ("service_name", service.as_str())];
            // The manifest's expectation for a Push that names no metric.
            if case.unnamed_push {
                labels.remove(0);
            }
            let (status, reply) = server.push_pprof_status(&labels, &profile);
            let failure = (status != expected.value)
                .then(|| format!("status {status}, manifest {}: {}", expected.value, String::from_utf8_lossy(&reply)));
            run.check(&case.path, "Push status".into(), expected.certain, failure);
            if status == 200 {
                let p = pprof_oracle(&bytes, None);
                run.check_stored(case, "Push", &service, &|i| collapsed(&p, i));
            }
        }
    }

    let (passed, failed): (Vec<_>, Vec<_>) = run.outcomes.iter().partition(|o| o.failure.is_none());
    let certain_failures: Vec<_> = failed.iter().filter(|o| o.certain).collect();
    eprintln!(
        "conformance: {} files with expectations, {} without ({:?}); {} checks: {} passed, {} failed ({} of them [A])",
        cases.len() - without_expectation.len(),
        without_expectation.len(),
        without_expectation,
        run.outcomes.len(),
        passed.len(),
        failed.len(),
        certain_failures.len()
    );
    for o in &failed {
        let tag = if o.certain { "[A]" } else { "[C]" };
        eprintln!("  {tag} {} {}: {}", o.path, o.what, o.failure.as_deref().unwrap_or_default());
    }
    assert!(certain_failures.is_empty(), "{} checks the manifest marks [A] failed (see above)", certain_failures.len());
}

/// Speedscope at the default sample rate, read independently of the
/// server's reader: weights ×100 (×1 for bytes) at the unit's period.
fn speedscope_oracle(bytes: &[u8]) -> Vec<(String, i64)> {
    let file: serde_json::Value = serde_json::from_slice(&gunzip_if_needed(bytes)).unwrap();
    let frames: Vec<&str> =
        file["shared"]["frames"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    let mut stacks: BTreeMap<String, i64> = BTreeMap::new();
    for p in file["profiles"].as_array().unwrap() {
        let unit = p["unit"].as_str().unwrap();
        let (precision, period) = match unit {
            "bytes" => (1.0, 1.0),
            "seconds" => (100.0, 1e7),
            "milliseconds" => (100.0, 1e4),
            "microseconds" => (100.0, 10.0),
            "none" => (100.0, 1e5),
            _ => (100.0, 0.0),
        };
        let mut add = |names: &[&str], value: f64| {
            if !names.is_empty() {
                *stacks.entry(names.join(";")).or_default() += (value as i64) * period as i64;
            }
        };
        if p["type"] == "sampled" {
            for (sample, weight) in p["samples"].as_array().unwrap().iter().zip(p["weights"].as_array().unwrap()) {
                let names: Vec<&str> =
                    sample.as_array().unwrap().iter().map(|i| frames[i.as_u64().unwrap() as usize]).collect();
                add(&names, weight.as_f64().unwrap() * precision);
            }
        } else {
            let mut open: Vec<&str> = Vec::new();
            let mut last = p["startValue"].as_f64().unwrap_or(0.0);
            for e in p["events"].as_array().unwrap() {
                let at = e["at"].as_f64().unwrap();
                let frame = frames[e["frame"].as_u64().unwrap() as usize];
                if e["type"] == "O" {
                    add(&open, at - last);
                    open.push(frame);
                } else {
                    add(&open, (at - last) * precision);
                    open.pop();
                }
                last = at;
            }
        }
    }
    stacks.into_iter().filter(|(_, v)| *v != 0).collect()
}
