//! Pyroscope's JFR integration goldens through the real server: each JFR
//! input of the test data is uploaded to `/ingest` as the Java agent sends it
//! (multipart `jfr`, plus `labels` where the manifest pairs one), then every
//! golden (one per profile type and label set, MANIFEST.md "File names") is
//! compared with what SelectMergeProfile returns for that type and label set:
//! the same collapsed stacks (function names, root first) and values.

use std::collections::BTreeMap;

use kiln_core::pprof::collapsed;
use kiln_proto::google::v1::Profile;
use kiln_tests::Server;
use kiln_tests::fixtures::{decode_pprof, now_ns, shared_dir, testdata};
use serde_json::json;

/// The inputs sent with a `labels` part (MANIFEST.md).
fn labels_for(input: &str) -> Option<&'static str> {
    match input {
        "dump1.jfr.gz" => Some("dump1.labels.pb.gz"),
        "dump2.jfr.gz" => Some("dump2.labels.pb.gz"),
        _ => None,
    }
}

/// The label selector behind a golden's label hash (MANIFEST.md).
fn selector_for(hash: &str) -> &'static str {
    match hash {
        "17241709254077376921" => "",
        "2539015855607244867" => ", thread_name=\"pool-2-thread-1\"",
        "6511396920643364271" => ", thread_name=\"pool-2-thread-2\"",
        "5571933481434853072" => ", thread_name=\"pool-2-thread-3\"",
        "10784330302778997279" => ", thread_name=\"pool-2-thread-4\"",
        "16370823494798218517" => ", thread_name=\"pool-2-thread-5\"",
        "14685508092873724845" => ", thread_name=\"pool-2-thread-6\"",
        "15666661103234080825" => ", thread_name=\"pool-2-thread-7\"",
        "302387572117411911" => ", thread_name=\"pool-2-thread-8\"",
        other => panic!("unknown label hash {other}"),
    }
}

fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!("--B\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--B--\r\n");
    body
}

fn type_of(p: &Profile) -> String {
    let s = |i: i64| p.string_table[i as usize].as_str();
    let (st, pt) = (&p.sample_type[0], p.period_type.as_ref().unwrap());
    format!("{}:{}:{}:{}", s(st.r#type), s(st.unit), s(pt.r#type), s(pt.unit))
}

#[test]
fn pyroscope_jfr_goldens_after_ingest() {
    let server = Server::start_temp();
    let dir = shared_dir().join("testdata/jfr/expected");
    let mut goldens: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pb.gz"))
        .collect();
    goldens.sort();
    assert!(goldens.len() >= 50, "expected Pyroscope's goldens in {}", dir.display());

    // Upload each input once, under its own service name.
    let mut services: BTreeMap<String, String> = BTreeMap::new();
    for golden in &goldens {
        let input = format!("{}.jfr.gz", golden.split_once(".jfr.gz.").unwrap().0);
        if services.contains_key(&input) {
            continue;
        }
        let service = format!("jfr-{}", services.len());
        let jfr = testdata(&format!("jfr/{input}"));
        let labels = labels_for(&input).map(|l| testdata(&format!("jfr/{l}")));
        let mut parts: Vec<(&str, &[u8])> = vec![("jfr", &jfr)];
        if let Some(labels) = &labels {
            parts.push(("labels", labels));
        }
        let now_s = now_ns() / 1_000_000_000;
        let target = format!("/ingest?name={service}&format=jfr&spyName=javaspy&from={}&until={now_s}", now_s - 10);
        let (status, _, reply) = server.post(&target, "multipart/form-data; boundary=B", multipart(&parts), &[]);
        assert_eq!(status, 200, "{input}: {}", String::from_utf8_lossy(&reply));
        services.insert(input, service);
    }

    let now = now_ns() / 1_000_000;
    for golden in &goldens {
        let (input, rest) = golden.split_once(".jfr.gz.").unwrap();
        let service = &services[&format!("{input}.jfr.gz")];
        let hash = rest.trim_end_matches(".pb.gz").rsplit('.').next().unwrap();
        let expected = decode_pprof(&testdata(&format!("jfr/expected/{golden}")));
        // The golden names its type with ':' as '_'; the metric is the part
        // before the type that the golden's own sample and period types give.
        let suffix = type_of(&expected);
        let id = server
            .profile_types_of(&format!("{{service_name=\"{service}\"}}"))
            .into_iter()
            .find(|id| id.ends_with(&format!(":{suffix}")) && rest.starts_with(&id.replace(':', "_")))
            .unwrap_or_else(|| panic!("{golden}: no stored profile type ending in {suffix}"));
        let selector = format!("{{service_name=\"{service}\"{}}}", selector_for(hash));
        let (status, body) = server.connect_json(
            "/querier.v1.QuerierService/SelectMergeProfile",
            json!({"profileTypeID": id, "labelSelector": selector, "start": now - 3_600_000, "end": now + 60_000}),
        );
        assert_eq!(status, 200, "{golden}: {body}");
        let merged: Profile = serde_json::from_value(body).expect("a pprof");
        let (got, want) = (collapsed(&merged, 0), collapsed(&expected, 0));
        assert_eq!(got.len(), want.len(), "{golden}: stack count");
        assert_eq!(got, want, "{golden}");
    }
}
