//! Pyroscope's legacy `POST /ingest`: the query string picks the format and
//! names the series; every format becomes a pprof that goes through the same
//! pipeline as Push ([`crate::ingest`]).
//!
//! Status rules (spec ingest.md §10.1): a bad `name` and errors of the
//! folded/lines/trie/tree path keep their own kind (400 for validation);
//! parse errors, and any error of the pprof and speedscope paths except
//! limits, are 422.

mod folded;
mod multipart;
mod name;
mod params;
mod pprof_input;
mod speedscope;
mod stacks;
mod tree;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use kiln_proto::types::v1::LabelPair;

use crate::error::{Error, ErrorKind};
use crate::gzip;
use crate::ingest::{self, IngestLimits, PushSummary};
use crate::jfr;
use crate::kv::KvStore;
use crate::labels::Labels;
use crate::pprof::{self, Profile};
use crate::store::{Batch, Storage};

pub use params::Params;
use pprof_input::SampleTypeConfig;
use stacks::{Metric, StackCounts};

/// One `/ingest` request as the adapter received it.
pub struct Upload<'a> {
    /// The raw query string (without `?`).
    pub query: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

/// Why an upload was refused, in the two shapes `/ingest` answers with.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Answered with the status of the error's kind.
    #[error(transparent)]
    Rejected(Error),
    /// 422 Unprocessable Entity (Connect code `unknown`).
    #[error("{0}")]
    Unprocessable(String),
}

/// Largest inflated text body (Pyroscope's `ingestion_body_limit_mb`).
const MAX_TEXT_BODY: usize = 256 * 1024 * 1024;

/// The formats of spec ingest.md §4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Folded,
    Lines,
    Trie,
    Tree,
    Jfr,
    Pprof,
    Speedscope,
    MultipartPprof,
}

impl Format {
    /// The first matching row of Pyroscope's table wins.
    fn select(format: &str, content_type: &str) -> Self {
        let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match format {
            "trie" => Format::Trie,
            _ if media == "binary/octet-stream+trie" => Format::Trie,
            "tree" => Format::Tree,
            _ if media == "binary/octet-stream+tree" => Format::Tree,
            "lines" => Format::Lines,
            "jfr" => Format::Jfr,
            "pprof" => Format::Pprof,
            "speedscope" => Format::Speedscope,
            _ if multipart::is_multipart(content_type) => Format::MultipartPprof,
            _ => Format::Folded,
        }
    }
}

/// Parses, converts and stores one upload.
pub fn ingest<S: KvStore + ?Sized>(
    storage: &Storage<'_, S>,
    upload: &Upload<'_>,
    now_ms: i64,
    new_id: &mut dyn FnMut() -> [u8; 16],
    limits: &IngestLimits,
) -> Result<PushSummary, IngestError> {
    let now_ns = now_ms.saturating_mul(1_000_000);
    let params = Params::parse(upload.query, now_ns).map_err(|e| IngestError::Rejected(Error::invalid(e)))?;
    let mut cx = Context { params: &params, now_ms, new_id, limits };
    let format = Format::select(&params.format, upload.content_type);
    let prepared = match format {
        Format::Folded => cx.stacks(folded::parse_folded(&text_body(upload.body)?))?,
        Format::Lines => cx.stacks(folded::parse_lines(&text_body(upload.body)?))?,
        Format::Trie => cx.stacks(tree::parse_trie(&text_body(upload.body)?))?,
        Format::Tree => cx.stacks(tree::parse_tree(&text_body(upload.body)?))?,
        Format::Speedscope => cx.speedscope(&text_body(upload.body)?)?,
        Format::Pprof => vec![cx.pprof(upload.body, None)?],
        Format::MultipartPprof => vec![cx.multipart_pprof(upload.content_type, upload.body)?],
        Format::Jfr => cx.jfr(upload.content_type, upload.body)?,
    };
    if prepared.is_empty() {
        return Ok(PushSummary::default());
    }
    let text = matches!(format, Format::Folded | Format::Lines | Format::Trie | Format::Tree);
    // A converted JFR profile that fails validation is reported like a pprof.
    ingest::store_all(storage, prepared).map_err(|e| if text { IngestError::Rejected(e) } else { push_error(e) })
}

/// Bodies may be gzipped without any header saying so.
fn text_body(body: &[u8]) -> Result<alloc::borrow::Cow<'_, [u8]>, IngestError> {
    if !gzip::is_gzip(body) {
        return Ok(body.into());
    }
    gzip::decompress(body, MAX_TEXT_BODY).map(Into::into).map_err(|e| IngestError::Unprocessable(e.to_string()))
}

/// Errors of the pprof and speedscope paths: 422 except for limits and the
/// store, whose status tells the client to retry.
fn push_error(e: Error) -> IngestError {
    match e.kind() {
        ErrorKind::ResourceExhausted | ErrorKind::Unavailable => IngestError::Rejected(e),
        _ => IngestError::Unprocessable(format!("pushing IngestInput-pprof failed: {e}")),
    }
}

struct Context<'a> {
    params: &'a Params,
    now_ms: i64,
    new_id: &'a mut dyn FnMut() -> [u8; 16],
    limits: &'a IngestLimits,
}

impl Context<'_> {
    /// Uploads that carry a `profile_id` label are dropped (Pyroscope
    /// accepts and ignores them).
    fn dropped(&self) -> bool {
        self.params.name.label("profile_id").is_some()
    }

    /// Folded, lines, trie and tree: one profile of the name's metric.
    fn stacks(&mut self, parsed: Result<StackCounts, String>) -> Result<Vec<Result<Batch, Error>>, IngestError> {
        let stacks = parsed.map_err(IngestError::Unprocessable)?;
        let (prefix, suffix) = self.params.name.split_suffix();
        let metric = Metric::for_suffix(suffix).ok_or_else(|| IngestError::Rejected(unknown_suffix(suffix)))?;
        if self.dropped() || stacks.is_empty() {
            return Ok(Vec::new());
        }
        let profile = stacks.into_profile(&metric, self.params.sample_rate, self.params.from_ns);
        let labels = self.text_labels(prefix, &metric, None);
        Ok(vec![self.prepare(&labels, profile)])
    }

    /// Speedscope: one profile per (merged) speedscope profile, named
    /// `<app>.<unit>` when there are several.
    fn speedscope(&mut self, body: &[u8]) -> Result<Vec<Result<Batch, Error>>, IngestError> {
        let profiles = speedscope::parse(body).map_err(IngestError::Unprocessable)?;
        let several = profiles.len() > 1;
        let mut prepared = Vec::new();
        for p in profiles {
            let (prefix, metric, rate) =
                speedscope_metric(&self.params.name.app, several, p.unit, self.params.sample_rate)
                    .map_err(|e| IngestError::Unprocessable(e.to_string()))?;
            if self.dropped() || p.stacks.is_empty() {
                continue;
            }
            let profile = p.stacks.into_profile(&metric, rate, self.params.from_ns);
            let labels = self.text_labels(&prefix, &metric, Some(&p.name));
            prepared.push(self.prepare(&labels, profile));
        }
        Ok(prepared)
    }

    /// A raw pprof body (`format=pprof`).
    fn pprof(&mut self, raw: &[u8], config: Option<&SampleTypeConfig>) -> Result<Result<Batch, Error>, IngestError> {
        let mut profile = pprof::decode(raw, &self.limits.profile)
            .map_err(|e| IngestError::Unprocessable(format!("parsing IngestInput-pprof failed: {e}")))?;
        let metric = pprof_input::prepare(&mut profile, self.params.from_ns, &self.params.spy_name, config);
        let mut labels = self.user_labels();
        labels.set("__name__".into(), metric);
        if labels.get("service_name").is_none() {
            labels.set("service_name".into(), self.params.name.app.clone());
        }
        Ok(self.prepare(&labels, profile))
    }

    /// A multipart form with the file fields `profile`, `prev_profile` and
    /// `sample_type_config`.
    fn multipart_pprof(&mut self, content_type: &str, body: &[u8]) -> Result<Result<Batch, Error>, IngestError> {
        let unprocessable = |e: String| IngestError::Unprocessable(format!("parsing IngestInput-pprof failed: {e}"));
        let parts = multipart::parse(content_type, body).map_err(unprocessable)?;
        // Only non-empty file parts count.
        let file = |name: &str| parts.iter().find(|p| p.name == name && p.filename.is_some() && !p.body.is_empty());
        if file("prev_profile").is_some() {
            return Err(unprocessable(
                "unsupported client version. Please update github.com/grafana/pyroscope-go to the latest version"
                    .into(),
            ));
        }
        let config = match file("sample_type_config") {
            Some(part) => {
                let json = if gzip::is_gzip(part.body) {
                    gzip::decompress(part.body, self.limits.profile.max_profile_size)
                        .map_err(|e| unprocessable(e.to_string()))?
                } else {
                    part.body.to_vec()
                };
                Some(SampleTypeConfig::parse(&json).map_err(unprocessable)?)
            }
            None => None,
        };
        let profile = file("profile").ok_or_else(|| unprocessable("profile field is required".into()))?;
        self.pprof(profile.body, config.as_ref())
    }

    /// A JFR recording (spec ingest.md §7): a raw uncompressed body, or a
    /// multipart form with the file parts `jfr` and optional `labels`. One
    /// profile per profile type the recording yields.
    fn jfr(&mut self, content_type: &str, body: &[u8]) -> Result<Vec<Result<Batch, Error>>, IngestError> {
        let unprocessable = |e: String| IngestError::Unprocessable(e);
        let (recording, labels) = if multipart::is_multipart(content_type) {
            let parts = multipart::parse(content_type, body).map_err(unprocessable)?;
            let file = |name: &str| parts.iter().find(|p| p.name == name && p.filename.is_some()).map(|p| p.body);
            (file("jfr").ok_or_else(|| unprocessable("jfr field is required".into()))?, file("labels"))
        } else if gzip::is_gzip(body) {
            // Pyroscope reads raw bodies as they come: gzip is not a chunk.
            return Err(unprocessable("jfr: invalid chunk magic".into()));
        } else {
            (body, None)
        };
        let options = jfr::Options {
            sample_rate: self.params.sample_rate,
            from_nanos: self.params.from_ns,
            until_nanos: self.params.until_ns,
            max_decompressed_size: self.limits.profile.max_profile_size,
        };
        let converted = jfr::profiles(recording, labels, &options).map_err(|e| unprocessable(e.to_string()))?;
        let mut prepared = Vec::with_capacity(converted.len());
        for jp in converted {
            if self.dropped() {
                continue;
            }
            let mut labels = self.user_labels();
            for (name, value) in jp.labels.iter() {
                labels.set(name.into(), value.into());
            }
            if labels.get("service_name").is_none() {
                labels.set("service_name".into(), self.params.name.app.clone());
            } else if labels.get("app_name").is_none() {
                labels.set("app_name".into(), self.params.name.app.clone());
            }
            prepared.push(self.prepare(&labels, jp.profile));
        }
        Ok(prepared)
    }

    /// The labels of a text-format upload (spec §5.6).
    fn text_labels(&self, app: &str, metric: &Metric, profile_name: Option<&str>) -> Labels {
        let mut labels = self.user_labels();
        labels.set("__name__".into(), metric.name.into());
        if labels.get("service_name").is_none() {
            labels.set("service_name".into(), app.into());
        } else if labels.get("app_name").is_none() {
            labels.set("app_name".into(), app.into());
        }
        if let Some(name) = profile_name.filter(|n| !n.is_empty()) {
            labels.set("profile_name".into(), name.into());
        }
        labels
    }

    /// Labels from `name` (minus reserved `__` ones other than
    /// `__session_id__`), plus the ones every `/ingest` upload gets.
    fn user_labels(&self) -> Labels {
        let user = self.params.name.labels.iter();
        let mut labels = Labels::from_pairs(
            user.filter(|(k, _)| !k.starts_with("__") || k == "__session_id__").map(|(k, v)| (k.as_str(), v.as_str())),
        );
        labels.set("__delta__".into(), "false".into());
        labels.set("pyroscope_spy".into(), self.params.spy_name.clone());
        labels
    }

    fn prepare(&mut self, labels: &Labels, profile: Profile) -> Result<Batch, Error> {
        let pairs: Vec<LabelPair> = labels.iter().map(|(n, v)| LabelPair { name: n.into(), value: v.into() }).collect();
        let labels = ingest::series_labels(&pairs)?;
        ingest::prepare_decoded(labels, profile, self.now_ms, (self.new_id)(), self.limits)
    }
}

/// The service name, metric and sample rate of one profile of a speedscope
/// upload named `app`: several profiles are told apart by their unit, which
/// becomes the app name's suffix.
fn speedscope_metric(
    app: &str,
    several: bool,
    unit: speedscope::Unit,
    sample_rate: u32,
) -> Result<(String, Metric, u32), Error> {
    let app = if several { format!("{app}.{}", unit.as_str()) } else { app.to_string() };
    let (prefix, suffix) = app.rsplit_once('.').unwrap_or((&app, "cpu"));
    let metric = Metric::for_suffix(suffix).ok_or_else(|| unknown_suffix(suffix))?;
    let rate = match sample_rate {
        params::DEFAULT_SAMPLE_RATE => unit.sample_rate(),
        rate => rate,
    };
    Ok((prefix.to_string(), metric, rate))
}

/// What `/ingest` makes of a file sent with default parameters under an app
/// name without a suffix, as `(metric, pprof)` pairs: the conversions an
/// offline viewer needs to name profile types exactly as the server does.
pub mod offline {
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    use super::stacks::Metric;
    use super::{folded, params, pprof_input, speedscope, speedscope_metric};
    use crate::pprof::Profile;

    /// The app name an offline file stands under (no dot: no suffix).
    const APP: &str = "offline";

    /// The `__name__` /ingest gives a pprof without a sample type config.
    pub fn pprof_metric(profile: &Profile) -> String {
        pprof_input::metric_name(profile, None)
    }

    /// Folded stacks as `name=<app>` (suffix `cpu`, 100 Hz) stores them.
    pub fn folded(body: &[u8]) -> Result<(String, Profile), String> {
        let metric = Metric::for_suffix("cpu").expect("cpu is a known suffix");
        let profile = folded::parse_folded(body)?.into_profile(&metric, params::DEFAULT_SAMPLE_RATE, 0);
        Ok((metric.name.to_string(), profile))
    }

    /// A speedscope file as `name=<app>&format=speedscope` stores it.
    pub fn speedscope(body: &[u8]) -> Result<Vec<(String, Profile)>, String> {
        let profiles = speedscope::parse(body)?;
        let several = profiles.len() > 1;
        let mut out = Vec::with_capacity(profiles.len());
        for p in profiles {
            let (_, metric, rate) =
                speedscope_metric(APP, several, p.unit, params::DEFAULT_SAMPLE_RATE).map_err(|e| e.to_string())?;
            if !p.stacks.is_empty() {
                out.push((metric.name.to_string(), p.stacks.into_profile(&metric, rate, 0)));
            }
        }
        Ok(out)
    }
}

fn unknown_suffix(suffix: &str) -> Error {
    Error::invalid(format!("pyroscopeIngesterAdapter failed to convert metadata: unknown profile type: {suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::tests::sample_profile;
    use crate::store::MemoryStore;
    use prost::Message;

    const NOW_MS: i64 = 1_795_582_000_000;

    /// Ingests into a fresh store; returns the result and the stored
    /// series labels as `{k="v", ...}` strings.
    fn run(query: &str, content_type: &str, body: &[u8]) -> (Result<PushSummary, IngestError>, Vec<String>) {
        let kv = MemoryStore::default();
        let storage = Storage::new(&kv, "t");
        let upload = Upload { query, content_type, body };
        let result = ingest(&storage, &upload, NOW_MS, &mut || [1; 16], &IngestLimits::default());
        let series = storage.series(NOW_MS - 3_600_000, NOW_MS + 60_000).unwrap();
        (result, series.into_iter().map(|s| s.labels.to_string()).collect())
    }

    fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
        let start = series.find(&format!("{name}=\""))? + name.len() + 2;
        Some(&series[start..start + series[start..].find('"')?])
    }

    #[test]
    fn folded_with_name_labels() {
        let (r, series) = run("name=app.cpu%7Benv%3Dprod%2C__session_id__%3Dx%7D&spyName=rbspy", "", b"a;b 2\na;c 1");
        assert_eq!(r.unwrap().series, 1);
        let s = &series[0];
        assert_eq!(label(s, "__profile_type__"), Some("process_cpu:cpu:nanoseconds:cpu:nanoseconds"));
        assert_eq!(label(s, "service_name"), Some("app"));
        assert_eq!(label(s, "env"), Some("prod"));
        assert_eq!(label(s, "pyroscope_spy"), Some("rbspy"));
        assert_eq!(label(s, "__session_id__"), None);
        // The user's service_name wins; the app becomes app_name.
        let (_, series) = run("name=app.wall%7Bservice_name%3Dsvc%7D&sampleRate=0", "", b"a 1");
        assert_eq!(label(&series[0], "service_name"), Some("svc"));
        assert_eq!(label(&series[0], "app_name"), Some("app"));
        assert_eq!(label(&series[0], "__profile_type__"), Some("wall:samples:count::"));
    }

    #[test]
    fn format_selection() {
        assert_eq!(Format::select("", "binary/octet-stream+trie"), Format::Trie);
        assert_eq!(Format::select("lines", "binary/octet-stream+tree"), Format::Tree);
        assert_eq!(Format::select("pprof", "multipart/form-data; boundary=x"), Format::Pprof);
        assert_eq!(Format::select("", "multipart/form-data; boundary=x"), Format::MultipartPprof);
        assert_eq!(Format::select("collapsed", "application/x-www-form-urlencoded"), Format::Folded);
        assert_eq!(Format::select("jfr", ""), Format::Jfr);
    }

    #[test]
    fn statuses_of_failures() {
        let rejected = |r: Result<PushSummary, IngestError>| match r {
            Err(IngestError::Rejected(e)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        let unprocessable = |r: Result<PushSummary, IngestError>| match r {
            Err(IngestError::Unprocessable(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(rejected(run("name=", "", b"a 1").0), "name: service name is required");
        assert!(rejected(run("name=com.example.app", "", b"a 1").0).ends_with("unknown profile type: app"));
        assert!(unprocessable(run("name=app", "", b"a x").0).starts_with("strconv.Atoi"));
        assert!(unprocessable(run("name=app&format=pprof", "", b"junk").0).starts_with("parsing IngestInput-pprof"));
        // Outside the ingestion window: 400 for text, 422 for pprof.
        assert!(rejected(run("name=app&from=now-2h", "", b"a 1").0).contains("outside of ingestion window"));
        let mut p = sample_profile();
        p.time_nanos = (NOW_MS - 7_200_000) * 1_000_000;
        let pushing = unprocessable(run("name=app&format=pprof", "", &p.encode_to_vec()).0);
        assert!(pushing.starts_with("pushing IngestInput-pprof failed"), "{pushing}");
        assert!(matches!(run("name=app&format=jfr", "", b"garbage").0, Err(IngestError::Unprocessable(_))));
        // Uploads with a profile_id label are accepted and dropped.
        let (r, series) = run("name=app%7Bprofile_id%3D1%7D", "", b"a 1");
        assert_eq!((r.unwrap().series, series.len()), (0, 0));
    }

    #[test]
    fn multipart_pprof_with_config() {
        let mut p = sample_profile();
        p.time_nanos = 1_000; // 1970: replaced by `from`.
        p.string_table[1] = "contentions".into();
        let form = |fields: &[(&str, &[u8])]| {
            let mut body = Vec::new();
            for (name, bytes) in fields {
                body.extend(format!("--B\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
                body.extend(*bytes);
                body.extend(b"\r\n");
            }
            body.extend(b"--B--\r\n");
            body
        };
        let profile = p.encode_to_vec();
        let config = br#"{"contentions":{"display-name":"block_count"}}"#;
        let body = form(&[("profile", &profile), ("sample_type_config", config)]);
        let (r, series) = run("name=go.app%7Bk%3Dv%7D&from=now-1m", "multipart/form-data; boundary=B", &body);
        r.unwrap();
        let types: Vec<_> = series.iter().map(|s| label(s, "__profile_type__").unwrap()).collect();
        assert_eq!(types, ["block:contentions:count:cpu:nanoseconds", "block:cpu:nanoseconds:cpu:nanoseconds"]);
        assert_eq!(label(&series[0], "service_name"), Some("go.app"));
        assert_eq!(label(&series[0], "app_name"), None);
        let body = form(&[("profile", &profile), ("prev_profile", &profile)]);
        let err = run("name=app", "multipart/form-data; boundary=B", &body).0.unwrap_err().to_string();
        assert!(err.contains("unsupported client version"), "{err}");
    }
}
