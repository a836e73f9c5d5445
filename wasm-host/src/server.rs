//! The HTTP front: accepts HTTP/1.1 and h2c on one socket, hands every
//! request to the [`Runtime`], and shuts down gracefully.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::runtime::{Limits, Runtime};
use crate::store::Store;

/// The component built from `component/` with this binary.
pub static COMPONENT_WASM: &[u8] = include_bytes!(env!("KILN_COMPONENT_WASM"));

/// File name of the key-value database inside the data dir.
pub const STORE_FILE: &str = "kiln.redb";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Holds the database (and, by default, the compiled component); created
    /// if absent.
    pub data_dir: PathBuf,
    /// Where the compiled component is cached, if not in `data_dir`. Servers
    /// sharing one (e.g. in tests) compile the component only once.
    pub cache_dir: Option<PathBuf>,
    /// Runs this component file instead of the embedded one.
    pub component: Option<PathBuf>,
    /// The component's settings, served to it through `wasi:config`
    /// (`multitenancy_enabled`, limits: Pyroscope's option names).
    pub variables: Vec<(String, String)>,
    pub limits: Limits,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Config {
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            listen,
            data_dir: data_dir.into(),
            cache_dir: None,
            component: None,
            variables: Vec::new(),
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A bound, ready server; [`Server::run`] serves until shutdown.
pub struct Server {
    listener: TcpListener,
    runtime: Arc<Runtime>,
    store: Arc<Store>,
    shutdown_grace: Duration,
}

impl Server {
    /// Binds the listen socket, opens the store and loads the component.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        // Refuse a bad setting now rather than fail every request.
        kiln_core::config::Settings::from_vars(config.variables.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;

        let cache_dir = config.cache_dir.as_ref().unwrap_or(&config.data_dir);
        for dir in [&config.data_dir, cache_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let store_path = config.data_dir.join(STORE_FILE);
        let store = Store::open(&store_path).with_context(|| format!("opening {}", store_path.display()))?;
        let store = Arc::new(store);

        let wasm = match &config.component {
            Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?.into(),
            None => std::borrow::Cow::Borrowed(COMPONENT_WASM),
        };
        let variables = Arc::new(config.variables);
        let runtime = Runtime::new(&wasm, cache_dir, Arc::clone(&store), variables, config.limits)?;
        Ok(Server { listener, runtime: Arc::new(runtime), store, shutdown_grace: config.shutdown_grace })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound TCP listener has an address")
    }

    /// Serves until `shutdown` resolves, then stops accepting, waits (up to
    /// the grace period) for in-flight requests and flushes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Server { listener, runtime, store, shutdown_grace } = self;
        tracing::info!(addr = %listener.local_addr()?, "kiln listening");

        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1().timer(TokioTimer::new());
        http.http2().timer(TokioTimer::new());
        let connections = GracefulShutdown::new();

        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Typically out of file descriptors: back off, don't spin.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Responses are small and latency-bound; don't let Nagle hold them.
            let _ = stream.set_nodelay(true);
            let runtime = Arc::clone(&runtime);
            let service = hyper::service::service_fn(move |req| {
                let runtime = Arc::clone(&runtime);
                async move { Ok::<_, Infallible>(handle(&runtime, req).await) }
            });
            let connection = http.serve_connection(TokioIo::new(stream), service).into_owned();
            let connection = connections.watch(connection);
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
            });
        }

        drop(listener);
        tracing::info!("shutting down: waiting for in-flight requests");
        let deadline = tokio::time::Instant::now() + shutdown_grace;
        let drained = tokio::time::timeout_at(deadline, async {
            connections.shutdown().await;
            runtime.drain().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_secs = shutdown_grace.as_secs(),
                "in-flight requests still running after the grace period; abandoning them"
            );
        }
        store.close();
        tracing::info!("store flushed; bye");
        Ok(())
    }
}

async fn handle(runtime: &Runtime, req: hyper::Request<Incoming>) -> hyper::Response<crate::Body> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = runtime.handle(req).await;
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        duration_us = start.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}

/// Binds per `config` and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    Server::bind(config).await?.run(shutdown_signal()).await
}
