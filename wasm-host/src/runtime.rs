//! Runs the kiln component: one wasmtime engine and pre-linked component for
//! the process, a fresh store and instance per HTTP request.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::{Semaphore, oneshot};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::config::{self, ConfigCtx, Variables};
use crate::keyvalue::{self, KeyValueCtx};
use crate::store::Store;

/// Response body type: streamed from the guest, or a host-made error.
pub type Body = HyperOutgoingBody;

/// Resource bounds for guest requests.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock budget of one request, guest CPU time and waiting included.
    pub request_timeout: Duration,
    /// Largest linear memory one instance may grow to, in bytes.
    pub max_memory: usize,
    /// Instances alive at once; further requests wait for a free slot.
    pub max_concurrent: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { request_timeout: Duration::from_secs(120), max_memory: 2 << 30, max_concurrent: 128 }
    }
}

/// How often the engine's epoch advances; a running guest yields to other
/// tasks (and checks its deadline) once per tick.
const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct Runtime {
    pre: ProxyPre<RequestState>,
    store: Arc<Store>,
    variables: Variables,
    slots: Arc<Semaphore>,
    limits: Limits,
}

impl Runtime {
    /// Builds the engine, loads `wasm` (compiled once, cached in
    /// `cache_dir`) and links it against WASI, wasi:http, `store` (as
    /// wasi:keyvalue) and `variables` (as wasi:config).
    pub fn new(
        wasm: &[u8],
        cache_dir: &Path,
        store: Arc<Store>,
        variables: Variables,
        limits: Limits,
    ) -> anyhow::Result<Runtime> {
        let engine = Engine::new(&engine_config(&limits))
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;
        start_epoch_ticker(&engine)?;
        let component = crate::cache::load_component(&engine, wasm, cache_dir)?;

        let mut linker = Linker::<RequestState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        keyvalue::add_to_linker(&mut linker, |s| KeyValueCtx { table: &mut s.table, store: &s.store })
            .map_err(anyhow::Error::from)?;
        config::add_to_linker(&mut linker, |s| ConfigCtx { variables: &s.variables }).map_err(anyhow::Error::from)?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ProxyPre::new)
            .map_err(anyhow::Error::from)
            .context("linking the component")?;

        Ok(Runtime { pre, store, variables, slots: Arc::new(Semaphore::new(limits.max_concurrent as usize)), limits })
    }

    /// Waits until no guest instance is running, then refuses new requests
    /// (they get a 503).
    pub async fn drain(&self) {
        if let Ok(all) = self.slots.acquire_many(self.limits.max_concurrent).await {
            all.forget();
        }
        self.slots.close();
    }

    /// Serves one request in a fresh instance. Guest failures (traps, time
    /// limit, no response) become a 500 with a JSON error body.
    pub async fn handle(&self, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
        let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
            return error_response(503, "unavailable", "the server is shutting down");
        };
        let deadline = Instant::now() + self.limits.request_timeout;
        let mut store = self.new_store(deadline);
        let (tx, rx) = oneshot::channel();
        let mut http = store.data_mut().http();
        let handles =
            http.new_incoming_request(Scheme::Http, req).and_then(|req| Ok((req, http.new_response_outparam(tx)?)));
        let (req, out) = match handles {
            Ok(handles) => handles,
            Err(err) => return error_response(400, "invalid_argument", &err.to_string()),
        };

        // The guest runs in its own task: it keeps streaming the body after
        // the response head has been handed to hyper.
        let pre = self.pre.clone();
        let timeout = self.limits.request_timeout;
        let guest = tokio::spawn(async move {
            let _slot = slot;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
            };
            let result = match tokio::time::timeout_at(deadline.into(), run).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime::format_err!("{}", time_limit_message(timeout))),
            };
            if let Err(err) = &result {
                // Debug format: the trap plus the guest's wasm backtrace.
                tracing::warn!(error = ?err, "component request failed");
            }
            result
        });

        match rx.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => {
                let message = format!("the component failed the request: {code:?}");
                error_response(500, "internal", &message)
            }
            // The guest ended without setting a response.
            Err(_) => {
                let message = match guest.await {
                    Ok(Ok(())) => "the component returned without a response".to_owned(),
                    Ok(Err(err)) => err.root_cause().to_string(),
                    Err(err) => format!("the component task failed: {err}"),
                };
                error_response(500, "internal", &message)
            }
        }
    }

    fn new_store(&self, deadline: Instant) -> wasmtime::Store<RequestState> {
        let state = RequestState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingHttp,
            store: Arc::clone(&self.store),
            variables: Arc::clone(&self.variables),
        };
        let mut store = wasmtime::Store::new(self.pre.engine(), state);
        let timeout = self.limits.request_timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                wasmtime::bail!("{}", time_limit_message(timeout));
            }
            // tokio's own yield lets the worker poll its I/O and timer driver
            // before resuming the guest; a bare self-wake may not.
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        });
        store
    }
}

fn engine_config(limits: &Limits) -> Config {
    let instances = limits.max_concurrent;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_memories(instances)
        .max_memory_size(limits.max_memory)
        // A Rust component holds a few core instances and tables (main module,
        // adapter shims) besides its one memory.
        .total_core_instances(instances * 8)
        .total_tables(instances * 8)
        .total_stacks(instances);
    let mut config = Config::new();
    config.epoch_interruption(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the epoch from a plain thread, not a tokio timer: a guest that
/// never yields must still be interrupted even when it occupies the very
/// worker that would have to run the timer. Ends when the engine is dropped.
fn start_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("kiln-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("starting the epoch thread")?;
    Ok(())
}

fn time_limit_message(timeout: Duration) -> String {
    format!("request exceeded the {}s time limit", timeout.as_secs())
}

/// A host-made error response in the Connect protocol's JSON error shape.
pub fn error_response(status: u16, code: &str, message: &str) -> hyper::Response<Body> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    hyper::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(full(body.into()))
        .expect("a static status and header are valid")
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// Per-request state of a guest instance.
struct RequestState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoingHttp,
    store: Arc<Store>,
    variables: Variables,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// kiln's component makes no outgoing HTTP requests; refuse them all.
struct NoOutgoingHttp;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
