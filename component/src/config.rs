//! The component's settings, read from `wasi:config/store`: Spin serves the
//! component's variables there (declared in spin.toml), the `kiln` host its
//! command-line flags. Missing keys keep Pyroscope's defaults.

use kiln_core::config::Settings;
use spin_sdk::wit::wasi::config::store;

use crate::connect::{Code, ConnectError};

/// This request's settings. A host that cannot serve its configuration, or
/// serves a malformed value, fails the request rather than silently running
/// with defaults (for example single-tenant instead of multi-tenant).
pub fn load() -> Result<Settings, ConnectError> {
    let vars = store::get_all().map_err(|e| {
        let reason = match e {
            store::Error::Upstream(m) | store::Error::Io(m) => m,
        };
        ConnectError::new(Code::Internal, format!("read configuration: {reason}"))
    })?;
    Settings::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ConnectError::new(Code::Internal, format!("configuration: {e}")))
}
