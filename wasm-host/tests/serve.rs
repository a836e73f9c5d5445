//! Starts the real server (embedded component) on a loopback port and talks
//! plain HTTP/1.1 to it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use kiln_host::{Config, Server};

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    (status, response)
}

/// Serves `/ready` from a fresh server over `data_dir`, then shuts it down.
fn ready_roundtrip(data_dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = Config::new("127.0.0.1:0".parse().unwrap(), data_dir);
    let server = runtime.block_on(Server::bind(config)).unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.run(async {
        let _ = stopped.await;
    }));

    let (status, response) = get(addr, "/ready");
    assert_eq!(status, 200, "{response}");

    stop.send(()).unwrap();
    runtime.block_on(serving).unwrap().unwrap();
}

#[test]
fn serves_ready_and_restarts_from_the_compiled_cache() {
    let dir = tempfile::tempdir().unwrap();
    ready_roundtrip(dir.path());

    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("component-") && name.ends_with(".cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");

    // Same data dir again: loads the cached artifact and reopens the store.
    ready_roundtrip(dir.path());
}
