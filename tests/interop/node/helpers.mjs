// Shared helpers for the interop tests: start/stop a hubbub server, a TCP line
// client, and an event recorder for Socket.IO clients.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const HUBBUB_BIN = path.resolve(REPO_ROOT, process.env.HUBBUB_BIN || 'target/debug/hubbub');

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const LISTENING = /hubbub listening\b.*\btcp=(\S+).*\bhttp=(\S+)/;
// The TLS listeners, on the same line when a certificate is given (`off` otherwise).
const TLS_TCP = /\btls_tcp=(\S+)/;
const HTTPS = /\bhttps=(\S+)/;

const running = new Set();
function killAll() {
  for (const proc of running) {
    try { proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killAll(); process.exit(130); });
}

function splitAddr(addr) {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}

/** Run `fn` until it returns a truthy value, or throw after `timeout` ms. */
export async function until(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}` + (last instanceof Error ? `: ${last.message}` : ''));
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start `hubbub` on free (or the given) ports and wait for its
 * `hubbub listening tcp=… http=…` line. Returns {tcp, http, httpUrl, dataDir, stop(), log()},
 * and with TLS (`args` with --tls-cert/--tls-key) {tlsTcp, httpsUrl}.
 * `args` are more flags for the server.
 * Without `dataDir` the server gets a fresh temporary one (so a new, empty
 * history), removed by stop(); `ownDataDir: true` makes stop() remove a given one.
 */
export async function startServer({ tcpAddr = '127.0.0.1:0', httpAddr = '127.0.0.1:0', timeout = 15000, dataDir, ownDataDir, args: extra = [] } = {}) {
  ownDataDir = ownDataDir ?? !dataDir;
  dataDir = dataDir || mkdtempSync(path.join(os.tmpdir(), 'hubbub-test-'));
  const args = [
    '--tcp-addr', tcpAddr, '--http-addr', httpAddr, '--admin-addr', '127.0.0.1:0', '--flood-rate', '0',
    '--data-dir', dataDir, '--shutdown-grace', '1', ...extra,
  ];
  const proc = spawn(HUBBUB_BIN, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  running.add(proc);
  let stderr = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    running.delete(proc);
    resolve({ code, signal });
  }));

  const addrs = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`hubbub did not log "hubbub listening tcp=… http=…" within ${timeout} ms; stderr:\n${stderr}`));
    }, timeout);
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${HUBBUB_BIN}: ${e.message}`)); });
    proc.stderr.setEncoding('utf8');
    let buf = '';
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(ANSI, '');
        buf = buf.slice(nl + 1);
        const m = LISTENING.exec(line);
        if (m) {
          clearTimeout(timer);
          const on = (re) => { const a = re.exec(line)?.[1]; return a && a !== 'off' ? a : null; };
          resolve({ tcp: m[1], http: m[2], tlsTcp: on(TLS_TCP), https: on(HTTPS) });
        }
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`hubbub exited (code ${code}, signal ${signal}) before listening; stderr:\n${stderr}`));
    });
  });

  let stopped = null;
  const server = {
    proc,
    tcpAddr: addrs.tcp,
    httpAddr: addrs.http,
    tcp: splitAddr(addrs.tcp),
    httpUrl: `http://${addrs.http}`,
    tlsTcp: addrs.tlsTcp && splitAddr(addrs.tlsTcp),
    httpsUrl: addrs.https && `https://${addrs.https}`,
    dataDir,
    log: () => stderr,
    /** SIGTERM, wait up to `grace` ms, then SIGKILL. `keepData` leaves the data directory. */
    stop(grace = 8000, { keepData = false } = {}) {
      if (stopped) return stopped;
      stopped = (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), grace);
          await exited;
          clearTimeout(t);
        }
        if (ownDataDir && !keepData) rmSync(dataDir, { recursive: true, force: true });
        return exited;
      })();
      return stopped;
    },
  };
  return server;
}

/**
 * Stop `old` and start a server on exactly its addresses (retrying while the
 * ports are released) and with its data directory, so its history survives;
 * the new server takes over removing the directory.
 */
export async function restartServer(old, { attempts = 20 } = {}) {
  await old.stop(undefined, { keepData: true });
  let lastErr;
  for (let i = 0; i < attempts; i++) {
    try {
      return await startServer({ tcpAddr: old.tcpAddr, httpAddr: old.httpAddr, dataDir: old.dataDir, ownDataDir: true });
    } catch (e) {
      lastErr = e;
      await sleep(250);
    }
  }
  throw lastErr;
}

/** A TCP line-protocol client that records every line it receives. */
export class LineClient {
  static connect({ host, port }, { timeout = 5000 } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      const timer = setTimeout(() => { sock.destroy(); reject(new Error('TCP connect timed out')); }, timeout);
      sock.once('connect', () => { clearTimeout(timer); resolve(new LineClient(sock)); });
      sock.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  /** Over TLS, trusting `ca` (PEM). */
  static connectTls({ host, port }, { ca, timeout = 5000 } = {}) {
    return new Promise((resolve, reject) => {
      const sock = tls.connect({ host, port, ca });
      const timer = setTimeout(() => { sock.destroy(); reject(new Error('TLS connect timed out')); }, timeout);
      sock.once('secureConnect', () => { clearTimeout(timer); resolve(new LineClient(sock)); });
      sock.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.lines = [];
    this.closed = false;
    this.waiters = new Set();
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      this.wake();
    });
    sock.on('error', () => {});
    sock.on('close', () => { this.closed = true; this.wake(); });
  }

  wake() { for (const w of this.waiters) w(); }

  send(line) { this.sock.write(line + '\n'); }

  /** Index to pass as `since` so a later wait only looks at newer lines. */
  mark() { return this.lines.length; }

  /** Wait for a line equal to `match` (string), matching it (RegExp) or satisfying it (function). */
  waitFor(match, { since = 0, timeout = 5000 } = {}) {
    const test = typeof match === 'string' ? (l) => l === match
      : match instanceof RegExp ? (l) => match.test(l) : match;
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = since; i < this.lines.length; i++) {
          if (test(this.lines[i])) { done(); resolve(this.lines[i]); return; }
        }
        if (this.closed) { done(); reject(new Error(`TCP connection closed while waiting for ${match}; lines:\n${this.lines.join('\n')}`)); }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`TCP client: no line ${match} within ${timeout} ms; lines so far:\n${this.lines.join('\n')}`));
      }, timeout);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }

  close() { this.sock.destroy(); }
}

/** Records every event a socket.io-client socket receives (attach before connecting). */
export class EventLog {
  constructor(socket) {
    this.events = [];
    this.waiters = new Set();
    socket.onAny((event, ...args) => {
      this.events.push({ event, args });
      for (const w of this.waiters) w();
    });
  }

  mark() { return this.events.length; }

  /** All payloads (first argument) of `event` since `since`. */
  all(event, since = 0) {
    return this.events.slice(since).filter((e) => e.event === event).map((e) => e.args[0]);
  }

  /** Wait for `event` whose first argument satisfies `pred`; resolves to that argument. */
  waitFor(event, pred = () => true, { since = 0, timeout = 5000 } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = since; i < this.events.length; i++) {
          const e = this.events[i];
          if (e.event === event && pred(e.args[0], e.args)) { done(); resolve(e.args[0]); return; }
        }
      };
      const timer = setTimeout(() => {
        done();
        const seen = this.events.map((e) => `${e.event} ${JSON.stringify(e.args)}`).join('\n');
        reject(new Error(`no "${event}" event matching within ${timeout} ms; events so far:\n${seen}`));
      }, timeout);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }
}
