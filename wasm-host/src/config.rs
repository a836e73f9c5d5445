//! Host side of `wasi:config/store@0.2.0-draft-2024-09-27`: the component's
//! settings (`multitenancy_enabled`, limits) as `kiln serve` was given them,
//! the same keys Spin serves from its variables.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/config",
        world: "wasi:config/imports",
        imports: { default: trappable },
    });
}

use bindings::wasi::config::store;

/// Key/value settings, fixed for the life of the server.
pub type Variables = Arc<Vec<(String, String)>>;

/// What the config host functions see of the per-request state.
pub struct ConfigCtx<'a> {
    pub variables: &'a [(String, String)],
}

struct Config;

impl HasData for Config {
    type Data<'a> = ConfigCtx<'a>;
}

/// Adds `wasi:config/store` to `linker`, reaching the variables via `get`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> ConfigCtx<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, Config>(linker, get)
}

impl store::Host for ConfigCtx<'_> {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        Ok(Ok(self.variables.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        Ok(Ok(self.variables.to_vec()))
    }
}
