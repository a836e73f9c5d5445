#!/usr/bin/env node
// A tiny static server for a built site (the UI + pkg/), optionally proxying
// the API paths to a running kiln so the UI's server mode can be developed
// without rebuilding the component:
//   node web/dev-server.mjs --site DIR [--kiln http://127.0.0.1:4040] [--port 8080] [--host 127.0.0.1]

import http from "node:http";
import fs from "node:fs";
import path from "node:path";

function args(argv) {
  const out = { site: "", kiln: "", port: 8080, host: "127.0.0.1" };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in out) || i + 1 >= argv.length) {
      console.error(`usage: dev-server.mjs --site DIR [--kiln URL] [--port N] [--host ADDR] (bad argument ${argv[i]})`);
      process.exit(2);
    }
    out[key] = argv[++i];
  }
  if (!out.site) {
    console.error("dev-server.mjs: --site DIR is required");
    process.exit(2);
  }
  out.port = Number(out.port);
  return out;
}

const opts = args(process.argv.slice(2));
const root = path.resolve(opts.site);
const kiln = opts.kiln ? new URL(opts.kiln) : null;

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

// Pyroscope's API surface: Connect services (`/<pkg>.v1.<Service>/<Method>`)
// and the HTTP paths of the legacy and OTLP APIs.
function isApi(method, pathname) {
  if (method !== "GET" && method !== "HEAD") return true;
  return (
    /^\/[a-z]+\.v1[a-z]*\.[A-Za-z]+\//.test(pathname) ||
    /^\/(pyroscope|api|v1development)\//.test(pathname) ||
    ["/ingest", "/render", "/render-diff", "/ready", "/metrics"].includes(pathname)
  );
}

function proxy(req, res) {
  const up = http.request(
    {
      hostname: kiln.hostname,
      port: kiln.port || 80,
      path: req.url,
      method: req.method,
      headers: { ...req.headers, host: kiln.host },
    },
    (r) => {
      res.writeHead(r.statusCode || 502, r.headers);
      r.pipe(res);
    },
  );
  up.on("error", (err) => {
    res.writeHead(502, { "content-type": "text/plain" });
    res.end(`kiln at ${kiln.origin} did not answer: ${err.message}\n`);
  });
  req.pipe(up);
}

function serveFile(req, res, pathname) {
  let rel = decodeURIComponent(pathname);
  if (rel.endsWith("/")) rel += "index.html";
  const file = path.join(root, path.normalize(rel));
  if (!file.startsWith(root + path.sep) && file !== root) {
    res.writeHead(403).end();
    return;
  }
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[path.extname(file)] || "application/octet-stream",
      "content-length": st.size,
      "cache-control": "no-cache",
    });
    if (req.method === "HEAD") res.end();
    else fs.createReadStream(file).pipe(res);
  });
}

http
  .createServer((req, res) => {
    const { pathname } = new URL(req.url, "http://localhost");
    if (kiln && isApi(req.method, pathname)) return proxy(req, res);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    serveFile(req, res, pathname);
  })
  .listen(opts.port, opts.host, () => {
    console.log(`serving ${root} at http://${opts.host}:${opts.port}/${kiln ? ` (API → ${kiln.origin})` : ""}`);
  });
