//! A real kiln server (the same `kiln_host::Server` the binary runs: wasmtime,
//! the component, the redb store) on a loopback port, plus a small client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use kiln_proto::push::v1::{PushRequest, RawProfileSeries, RawSample};
use kiln_proto::types::v1::LabelPair;
use prost::Message;
use serde_json::Value;

pub struct Server {
    pub addr: SocketAddr,
    client: reqwest::blocking::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server over a fresh temporary data directory.
    pub fn start_temp() -> Server {
        Server::start_temp_with(&[])
    }

    /// Like [`Server::start_temp`] with settings (`kiln serve` flags, Spin
    /// variables), e.g. `[("multitenancy_enabled", "true")]`.
    pub fn start_temp_with(variables: &[(&str, &str)]) -> Server {
        let temp = tempfile::tempdir().unwrap();
        let mut server = Server::start_with(temp.path(), variables);
        server._temp = Some(temp);
        server
    }

    /// Starts a server over `data_dir` on an ephemeral loopback port.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, variables: &[(&str, &str)]) -> Server {
        let data_dir: PathBuf = data_dir.to_path_buf();
        let variables: Vec<(String, String)> = variables.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut config = kiln_host::Config::new("127.0.0.1:0".parse().unwrap(), data_dir);
                // Compile the component once for all test servers.
                config.cache_dir = Some(std::env::temp_dir().join("kiln-tests-component-cache"));
                config.variables = variables;
                let server = kiln_host::Server::bind(config).await.expect("server starts");
                addr_tx.send(server.local_addr()).unwrap();
                server
                    .run(async {
                        stop_rx.await.ok();
                    })
                    .await
                    .expect("server runs");
            });
        });
        let addr = addr_rx.recv().expect("server reported its address");
        let client = reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(120)).build().unwrap();
        Server { addr, client, stop: Some(stop_tx), thread: Some(thread), _temp: None }
    }

    /// Graceful shutdown; returns once the store is closed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, HashMap<String, String>, Vec<u8>) {
        let mut req = self.client.post(self.url(path)).header("content-type", content_type).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        response(req.send().expect("request sent"))
    }

    pub fn get(&self, path: &str) -> (u16, HashMap<String, String>, Vec<u8>) {
        self.request("GET", path, &[])
    }

    /// A request with any method and extra headers.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, HashMap<String, String>, Vec<u8>) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut req = self.client.request(method, self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        response(req.send().expect("request sent"))
    }

    /// A Connect unary call with a JSON body; returns status and JSON reply.
    pub fn connect_json(&self, path: &str, body: Value) -> (u16, Value) {
        self.connect_json_with(path, body, &[])
    }

    /// [`Server::connect_json`] with extra request headers.
    pub fn connect_json_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let (status, _, reply) = self.post(path, "application/json", body.to_string().into_bytes(), headers);
        let value = serde_json::from_slice(&reply)
            .unwrap_or_else(|_| panic!("{path}: not JSON ({status}): {}", String::from_utf8_lossy(&reply)));
        (status, value)
    }

    /// The flame graph total of `profile_type` for `selector` over the last
    /// hour.
    pub fn flame_total(&self, profile_type: &str, selector: &str) -> i64 {
        let now = now_ms();
        let (status, body) = self.connect_json(
            "/querier.v1.QuerierService/SelectMergeStacktraces",
            serde_json::json!({"profileTypeID": profile_type, "labelSelector": selector,
                               "start": now - 3_600_000, "end": now + 60_000}),
        );
        assert_eq!(status, 200, "{body}");
        body["flamegraph"]["total"].as_str().map_or(0, |t| t.parse().unwrap())
    }

    /// The `__profile_type__` values of the series matching `selector` over
    /// the last hour, sorted.
    pub fn profile_types_of(&self, selector: &str) -> Vec<String> {
        let now = now_ms();
        let (status, body) = self.connect_json(
            "/querier.v1.QuerierService/Series",
            serde_json::json!({"matchers": [selector], "labelNames": ["__profile_type__"],
                               "start": now - 3_600_000, "end": now + 60_000}),
        );
        assert_eq!(status, 200, "{body}");
        let mut types: Vec<String> = body["labelsSet"]
            .as_array()
            .map(|sets| {
                sets.iter()
                    .flat_map(|s| s["labels"].as_array().cloned().unwrap_or_default())
                    .filter(|l| l["name"] == "__profile_type__")
                    .map(|l| l["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        types.sort();
        types.dedup();
        types
    }

    /// Pushes one pprof (binary protobuf) and asserts it was accepted.
    pub fn push_pprof(&self, labels: &[(&str, &str)], pprof: &[u8]) {
        let (status, body) = self.push_pprof_status(labels, pprof);
        assert_eq!(status, 200, "push failed: {}", String::from_utf8_lossy(&body));
    }

    /// Pushes one pprof; true when the server accepted it.
    pub fn try_push_pprof(&self, labels: &[(&str, &str)], pprof: &[u8]) -> bool {
        self.push_pprof_status(labels, pprof).0 == 200
    }

    /// Pushes one pprof; returns the status and body.
    pub fn push_pprof_status(&self, labels: &[(&str, &str)], pprof: &[u8]) -> (u16, Vec<u8>) {
        let req = PushRequest {
            series: vec![RawProfileSeries {
                labels: labels.iter().map(|(n, v)| LabelPair { name: (*n).into(), value: (*v).into() }).collect(),
                samples: vec![RawSample { raw_profile: pprof.to_vec(), id: String::new() }],
                annotations: vec![],
            }],
        };
        let (status, _, body) = self.post("/push.v1.PusherService/Push", "application/proto", req.encode_to_vec(), &[]);
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn response(resp: reqwest::blocking::Response) -> (u16, HashMap<String, String>, Vec<u8>) {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    (status, headers, resp.bytes().expect("response body").to_vec())
}

fn now_ms() -> i64 {
    crate::fixtures::now_ns() / 1_000_000
}
