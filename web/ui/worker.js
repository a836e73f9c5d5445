// The Web Worker that owns kiln's wasm core: files are streamed into it
// chunk by chunk (File.stream()), parsed and merged here so the page never
// blocks. Requests are {id, op, args}; replies {id, ok, result | error};
// long operations also post {id, progress: {phase, done, total}}.

import init, { Input, Workspace, version } from "./pkg/kiln_web.js";

let workspace = null;
const ready = init().then(() => {
  workspace = new Workspace();
});

// One request at a time: a load awaits its file's chunks, and nothing else
// may use the workspace in between.
let queue = Promise.resolve();

self.onmessage = (event) => {
  const { id, op, args } = event.data;
  queue = queue.then(() => handle(id, op, args));
};

async function handle(id, op, args) {
  try {
    await ready;
    const ids = args && args.ids ? Uint32Array.from(args.ids) : null;
    let result;
    const transfer = [];
    switch (op) {
      case "version":
        result = version();
        break;
      case "load":
        result = await load(id, args.file);
        break;
      case "remove":
        workspace.remove(args.id);
        break;
      case "flamegraph":
        result = workspace.flamegraph(ids, args.typeId, args.maxNodes || 0);
        break;
      case "top":
        result = workspace.top(ids, args.typeId, args.limit || 0);
        break;
      case "sandwich":
        result = workspace.sandwich(ids, args.typeId, args.name, args.maxNodes || 0);
        break;
      case "diff":
        result = workspace.diff(Uint32Array.from(args.left), Uint32Array.from(args.right), args.typeId, args.maxNodes || 0);
        break;
      case "exportPprof":
        // A copy of our own to transfer: the returned array must not be a
        // view that shares its buffer with anything else.
        result = workspace.exportPprof(ids, args.typeId).slice();
        transfer.push(result.buffer);
        break;
      default:
        throw new Error(`unknown request ${op}`);
    }
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (err) {
    self.postMessage({ id, ok: false, error: err && err.message ? err.message : String(err) });
  }
}

async function load(id, file) {
  const total = file.size;
  // The size reserves the whole buffer at once (no growth by copying).
  const input = new Input(total);
  let done = 0;
  let last = 0;
  let lastPhase = "";
  const report = (phase, d, t) => {
    const now = performance.now();
    if (phase === lastPhase && now - last < 50 && d < t) return;
    lastPhase = phase;
    last = now;
    self.postMessage({ id, progress: { phase, done: d, total: t } });
  };
  try {
    for await (const chunk of chunks(file)) {
      input.push(chunk);
      done += chunk.byteLength;
      report("read", done, total);
    }
  } catch (err) {
    input.free();
    throw err;
  }
  report("parse", 0, total);
  // Workspace.load consumes the Input.
  return workspace.load(file.name, input, (d, t) => report("parse", d, t));
}

// Chunks of a file through one reused buffer where the browser can (a BYOB
// reader): a chunk a time would otherwise be allocated and only freed by a
// later garbage collection, about the file's size again at the peak.
async function* chunks(file) {
  const CHUNK = 1 << 20;
  let reader;
  try {
    reader = file.stream().getReader({ mode: "byob" });
  } catch {
    reader = null;
  }
  if (!reader) {
    for (let at = 0; at < file.size; at += CHUNK) {
      yield new Uint8Array(await file.slice(at, at + CHUNK).arrayBuffer());
    }
    return;
  }
  let buffer = new ArrayBuffer(CHUNK);
  for (;;) {
    const { done, value } = await reader.read(new Uint8Array(buffer));
    if (done) return;
    yield value;
    buffer = value.buffer;
  }
}
