// What the browser tests run against: the built site, the kiln binary,
// Debian's chromium, and where screenshots go. Nothing is built here; a
// missing input fails loudly instead of skipping.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { chromium } from 'playwright-core';

import { repoDir } from './testdata.mjs';

function required(path, what, hint) {
  if (!existsSync(path)) throw new Error(`${what} MISSING: ${path} (${hint})`);
  return path;
}

export function siteDir() {
  const dir = resolve(repoDir, process.env.KILN_SITE ?? 'target/site');
  const hint = 'build it with `cargo run -p kiln-build --release -- target/site` or set KILN_SITE';
  required(join(dir, 'index.html'), 'SITE', hint);
  required(join(dir, 'pkg/kiln_web.js'), 'SITE WASM GLUE', hint);
  required(join(dir, 'pkg/kiln_web_bg.wasm'), 'SITE WASM', hint);
  return dir;
}

export function kilnBin() {
  const bin = resolve(repoDir, process.env.KILN_BIN ?? 'target/release/kiln');
  return required(bin, 'KILN BINARY', 'build it with `cargo build --release` or set KILN_BIN');
}

export function chromiumPath() {
  const path = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';
  return required(path, 'CHROMIUM', 'apt-get install -y chromium, or set KILN_CHROMIUM');
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath(),
    // Root in a container has no user namespaces for chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

export function artifactsDir() {
  const dir = resolve(repoDir, process.env.KILN_ARTIFACTS ?? 'target/browser-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
};

/// Serves `dir` on 127.0.0.1 (ephemeral port), as any static host would.
/// Returns {url, close}.
export async function serveStatic(dir) {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': types[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
    });
    res.end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((ok) => server.close(ok)),
  };
}
