//! Command line: `kiln serve [--listen ADDR:PORT] [--data-dir DIR]
//! [--multitenancy-enabled] [limits]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::server::{self, Config};

#[derive(Debug, Parser)]
#[command(name = "kiln", version, about = "Continuous-profiling server (Pyroscope API)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Pyroscope-compatible HTTP API.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (HTTP/1.1 and h2c).
    #[arg(long, env = "KILN_LISTEN", default_value = "0.0.0.0:4040")]
    pub listen: SocketAddr,
    /// Directory for the database and the compiled component.
    #[arg(long, env = "KILN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Directory for the compiled-component cache [default: the data dir].
    #[arg(long, env = "KILN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Per-request time limit in seconds.
    #[arg(long, env = "KILN_REQUEST_TIMEOUT", default_value_t = 120)]
    pub request_timeout: u64,
    /// Run this component file instead of the embedded one (for testing).
    #[arg(long, env = "KILN_COMPONENT", hide = true)]
    pub component: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
}

/// The component's settings, handed to it through `wasi:config` under
/// Pyroscope's option names (the Spin variables of spin.toml). Unset ones
/// keep Pyroscope's defaults, shown in brackets.
#[derive(Debug, Args)]
pub struct Settings {
    /// Require `X-Scope-OrgID` on every request and keep tenants apart;
    /// otherwise every request runs as tenant `anonymous`.
    #[arg(long, env = "KILN_MULTITENANCY_ENABLED", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub multitenancy_enabled: bool,
    /// How far back queries may reach; older parts of a range are cut off [7d].
    #[arg(long, env = "KILN_MAX_QUERY_LOOKBACK", value_name = "DURATION")]
    pub max_query_lookback: Option<String>,
    /// Longest query range, `0` for none [24h].
    #[arg(long, env = "KILN_MAX_QUERY_LENGTH", value_name = "DURATION")]
    pub max_query_length: Option<String>,
    /// Flame graph nodes when a query sets no `max_nodes`, `0` for all [8192].
    #[arg(long, env = "KILN_MAX_FLAMEGRAPH_NODES_DEFAULT", value_name = "N")]
    pub max_flamegraph_nodes_default: Option<String>,
    /// Largest `max_nodes` a query may ask for, `0` for any [1048576].
    #[arg(long, env = "KILN_MAX_FLAMEGRAPH_NODES_MAX", value_name = "N")]
    pub max_flamegraph_nodes_max: Option<String>,
    /// Labels per series [30].
    #[arg(long, env = "KILN_MAX_LABEL_NAMES_PER_SERIES", value_name = "N")]
    pub max_label_names_per_series: Option<String>,
    /// Bytes per label name [1024].
    #[arg(long, env = "KILN_MAX_LABEL_NAME_LENGTH", value_name = "N")]
    pub max_label_name_length: Option<String>,
    /// Bytes per label value, `__name__` included [2048].
    #[arg(long, env = "KILN_MAX_LABEL_VALUE_LENGTH", value_name = "N")]
    pub max_label_value_length: Option<String>,
    /// Uncompressed bytes per profile, `0` for no limit [4194304].
    #[arg(long, env = "KILN_MAX_PROFILE_SIZE_BYTES", value_name = "N")]
    pub max_profile_size_bytes: Option<String>,
    /// Samples per profile, `0` for no limit [16000].
    #[arg(long, env = "KILN_MAX_PROFILE_STACKTRACE_SAMPLES", value_name = "N")]
    pub max_profile_stacktrace_samples: Option<String>,
    /// Labels per sample, `0` for no limit [100].
    #[arg(long, env = "KILN_MAX_PROFILE_STACKTRACE_SAMPLE_LABELS", value_name = "N")]
    pub max_profile_stacktrace_sample_labels: Option<String>,
    /// Deeper stacks keep their root-most frames, `0` for no limit [1000].
    #[arg(long, env = "KILN_MAX_PROFILE_STACKTRACE_DEPTH", value_name = "N")]
    pub max_profile_stacktrace_depth: Option<String>,
    /// Longer symbols keep their last bytes, `0` for no limit [65535].
    #[arg(long, env = "KILN_MAX_PROFILE_SYMBOL_VALUE_LENGTH", value_name = "N")]
    pub max_profile_symbol_value_length: Option<String>,
    /// Refuse profiles older than this, `0` for no limit [1h].
    #[arg(long, env = "KILN_REJECT_OLDER_THAN", value_name = "DURATION")]
    pub reject_older_than: Option<String>,
    /// Refuse profiles further in the future than this, `0` for no limit [10m].
    #[arg(long, env = "KILN_REJECT_NEWER_THAN", value_name = "DURATION")]
    pub reject_newer_than: Option<String>,
}

impl Settings {
    /// The settings given, as `wasi:config` key/values.
    pub fn variables(&self) -> Vec<(String, String)> {
        let given = [
            ("max_query_lookback", &self.max_query_lookback),
            ("max_query_length", &self.max_query_length),
            ("max_flamegraph_nodes_default", &self.max_flamegraph_nodes_default),
            ("max_flamegraph_nodes_max", &self.max_flamegraph_nodes_max),
            ("max_label_names_per_series", &self.max_label_names_per_series),
            ("max_label_name_length", &self.max_label_name_length),
            ("max_label_value_length", &self.max_label_value_length),
            ("max_profile_size_bytes", &self.max_profile_size_bytes),
            ("max_profile_stacktrace_samples", &self.max_profile_stacktrace_samples),
            ("max_profile_stacktrace_sample_labels", &self.max_profile_stacktrace_sample_labels),
            ("max_profile_stacktrace_depth", &self.max_profile_stacktrace_depth),
            ("max_profile_symbol_value_length", &self.max_profile_symbol_value_length),
            ("reject_older_than", &self.reject_older_than),
            ("reject_newer_than", &self.reject_newer_than),
        ];
        let multitenancy = ("multitenancy_enabled".to_owned(), self.multitenancy_enabled.to_string());
        let limits = given.into_iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())));
        std::iter::once(multitenancy).chain(limits).collect()
    }
}

/// Parses the command line, sets up logging and runs the command.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => {
            let mut config = Config::new(args.listen, args.data_dir);
            config.cache_dir = args.cache_dir;
            config.component = args.component;
            config.variables = args.settings.variables();
            config.limits.request_timeout = Duration::from_secs(args.request_timeout);
            runtime.block_on(server::serve(config))
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
