//! Command line: `kiln serve [--listen ADDR:PORT] [--data-dir DIR]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
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
