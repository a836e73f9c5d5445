// A real kiln server for server-mode tests: the built binary on a loopback
// port with a fresh data directory, and the HTTP calls the tests make to it.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { kilnBin } from './env.mjs';
import { withTime } from './pprof.mjs';
import { repoDir } from './testdata.mjs';

async function freePort() {
  const server = createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/// Starts `kiln serve` and waits until it answers. The compiled component is
/// cached under target/ so later runs start fast.
export async function startKiln() {
  const bin = kilnBin();
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-browser-data-'));
  const cacheDir = resolve(repoDir, process.env.KILN_BROWSER_CACHE ?? 'target/browser-cache');
  mkdirSync(cacheDir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--cache-dir', cacheDir];
  // Pyroscope's default of 16,000 samples per profile refuses the test
  // data's large.cpu (20,430), which the tests push with the other Go files.
  args.push('--max-profile-stacktrace-samples', '100000');
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  let exited = null;
  child.on('exit', (code) => (exited = code));
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (exited !== null) throw new Error(`kiln exited with ${exited}:\n${log}`);
    try {
      const res = await fetch(`${url}/`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`kiln did not answer on ${url} within 300 s:\n${log}`);
    }
    await new Promise((ok) => setTimeout(ok, 250));
  }
  return {
    url,
    log: () => log,
    async stop() {
      if (exited === null) {
        const done = new Promise((ok) => child.on('exit', ok));
        child.kill('SIGTERM');
        await done;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/// Pushes a pprof through /ingest (multipart field `profile`) as if taken
/// at `timeMs`, under service `name`.
export async function ingestPprof(url, name, bytes, timeMs) {
  const body = new FormData();
  body.append('profile', new Blob([withTime(bytes, timeMs * 1e6)]), 'profile.pprof');
  const res = await fetch(`${url}/ingest?name=${encodeURIComponent(name)}&spyName=gospy`, { method: 'POST', body });
  if (!res.ok) throw new Error(`/ingest ${name}: ${res.status} ${await res.text()}`);
}

/// A Connect call with a JSON body; returns the parsed answer.
export async function connect(url, method, message) {
  const res = await fetch(`${url}/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(message),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/// The root total the server's own SelectMergeStacktraces gives.
export async function serverTotal(url, { service, type, start, end }) {
  const answer = await connect(url, 'querier.v1.QuerierService/SelectMergeStacktraces', {
    start,
    end,
    labelSelector: `{service_name="${service}"}`,
    profileTypeID: type,
  });
  return Number(answer.flamegraph?.total ?? 0);
}
