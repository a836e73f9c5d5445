//! kiln's core exposed to JavaScript. The UI's Web Worker drives it: files
//! are fed in chunks into an [`Input`], parsed into a [`Workspace`], and
//! queried for the same JSON the server's query API answers.

use kiln_core::view::{self, FileType};
use serde_json::json;
use wasm_bindgen::prelude::*;

/// The core's version, shown in the UI's footer.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").into()
}

/// A file's bytes, pushed chunk by chunk (from `File.stream()`), so that the
/// page never holds a whole large file and wasm holds it once.
#[wasm_bindgen]
#[derive(Default)]
pub struct Input {
    bytes: Vec<u8>,
}

#[wasm_bindgen]
impl Input {
    /// `expectedLen` (the file's size, optional) reserves the memory at once,
    /// so the buffer never grows by copying.
    #[wasm_bindgen(constructor)]
    pub fn new(expected_len: Option<f64>) -> Result<Input, JsError> {
        let mut input = Input::default();
        if let Some(len) = expected_len.filter(|&l| l > 0.0) {
            input.bytes.try_reserve_exact(len as usize).map_err(|_| out_of_memory(len as usize))?;
        }
        Ok(input)
    }

    /// Appends a chunk; throws if the memory cannot be reserved.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        if self.bytes.capacity() - self.bytes.len() < chunk.len() {
            // Grow by half (not double): wasm memory never shrinks, so the
            // peak is what counts.
            let want = (self.bytes.capacity() / 2).max(chunk.len());
            if self.bytes.try_reserve_exact(want).is_err() {
                self.bytes.try_reserve_exact(chunk.len()).map_err(|_| out_of_memory(self.bytes.len() + chunk.len()))?;
            }
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Bytes pushed so far.
    pub fn len(&self) -> f64 {
        self.bytes.len() as f64
    }

    #[wasm_bindgen(js_name = isEmpty)]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn out_of_memory(bytes: usize) -> JsError {
    JsError::new(&format!("out of memory: cannot hold {bytes} bytes in this page"))
}

/// The loaded files and the queries over them.
#[wasm_bindgen]
#[derive(Default)]
pub struct Workspace {
    inner: view::Workspace,
}

#[wasm_bindgen]
impl Workspace {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Workspace {
        Workspace::default()
    }

    /// Parses a file (the input is consumed and freed). Returns
    /// `{"id","name","format","types":[{"id","name","sampleType",...,"total","stacks"}]}`.
    pub fn load(&mut self, name: &str, input: Input, on_progress: Option<js_sys::Function>) -> Result<String, JsError> {
        let mut progress = |done: u64, total: u64| {
            if let Some(f) = &on_progress {
                // A throwing callback must not abort the parse.
                let _ = f.call2(&JsValue::NULL, &JsValue::from(done as f64), &JsValue::from(total as f64));
            }
        };
        let file = self.inner.load(name, input.bytes, &mut progress).map_err(error)?;
        let types: Vec<_> = file.loaded.types.iter().map(type_json).collect();
        Ok(json!({"id": file.id, "name": file.name, "format": file.loaded.format.as_str(), "types": types}).to_string())
    }

    pub fn remove(&mut self, id: u32) {
        self.inner.remove(id);
    }

    /// The merged flame graph, as SelectMergeStacktraces' `flamegraph`.
    pub fn flamegraph(&self, ids: &[u32], type_id: &str, max_nodes: u32) -> Result<String, JsError> {
        let fg = self.inner.flamegraph(ids, type_id, max_nodes as usize).map_err(error)?;
        to_json(&fg)
    }

    /// `[{"name","self","total"}]`, by self value.
    pub fn top(&self, ids: &[u32], type_id: &str, limit: u32) -> Result<String, JsError> {
        let rows = self.inner.top(ids, type_id, limit as usize).map_err(error)?;
        let rows: Vec<_> =
            rows.into_iter().map(|r| json!({"name": r.name, "self": r.self_value, "total": r.total})).collect();
        to_json(&rows)
    }

    /// `{"callers": FlameGraph, "callees": FlameGraph}` of function `name`.
    pub fn sandwich(&self, ids: &[u32], type_id: &str, name: &str, max_nodes: u32) -> Result<String, JsError> {
        let (callers, callees) = self.inner.sandwich(ids, type_id, name, max_nodes as usize).map_err(error)?;
        to_json(&json!({"callers": callers, "callees": callees}))
    }

    /// The diff flame graph of two sets, as Diff's `flamegraph`.
    pub fn diff(&self, left: &[u32], right: &[u32], type_id: &str, max_nodes: u32) -> Result<String, JsError> {
        let fg = self.inner.diff(left, right, type_id, max_nodes as usize).map_err(error)?;
        to_json(&fg)
    }

    /// The merge as a gzipped pprof of the chosen sample type.
    #[wasm_bindgen(js_name = exportPprof)]
    pub fn export_pprof(&self, ids: &[u32], type_id: &str) -> Result<Vec<u8>, JsError> {
        self.inner.export_pprof(ids, type_id).map_err(error)
    }
}

fn type_json(t: &FileType) -> serde_json::Value {
    let pt = &t.profile_type;
    json!({
        "id": pt.id(),
        "name": pt.name,
        "sampleType": pt.sample_type,
        "sampleUnit": pt.sample_unit,
        "periodType": pt.period_type,
        "periodUnit": pt.period_unit,
        "total": t.total,
        "stacks": t.stacks,
    })
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))
}

fn error(e: kiln_core::Error) -> JsError {
    JsError::new(&e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_in_the_servers_shapes() {
        let mut ws = view::Workspace::new();
        let file = ws.load("f.txt", b"a;b 2\na;c 1\nd 1\n".to_vec(), &mut |_, _| {}).unwrap();
        let (id, ty) = (file.id, file.loaded.types[0].profile_type.id());
        assert_eq!(
            type_json(&file.loaded.types[0]).to_string(),
            r#"{"id":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","name":"process_cpu","periodType":"cpu","periodUnit":"nanoseconds","sampleType":"cpu","sampleUnit":"nanoseconds","stacks":3,"total":40000000}"#
        );
        let fg = to_json(&ws.flamegraph(&[id], &ty, 0).unwrap()).unwrap();
        assert!(fg.starts_with(r#"{"names":["total","#), "{fg}");
        assert!(fg.contains(r#""levels":[{"values":["0","40000000","0","0"]}"#), "{fg}");
        assert!(fg.ends_with(r#""total":"40000000","maxSelf":"20000000"}"#), "{fg}");
        let diff = to_json(&ws.diff(&[id], &[id], &ty, 0).unwrap()).unwrap();
        assert!(diff.contains(r#""leftTicks":"40000000","rightTicks":"40000000""#), "{diff}");
    }
}
