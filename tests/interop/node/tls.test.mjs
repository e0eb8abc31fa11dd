// hubbub over TLS with the official socket.io-client (v4): WSS, and HTTPS
// long-polling upgraded to WSS, with a throwaway certificate (openssl) that
// the client is given as `ca`, next to a line client over TLS (node:tls);
// and the chat page served over HTTPS in headless Chromium.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { EventLog, LineClient, startServer, until } from './helpers.mjs';

/** A self-signed certificate for localhost and 127.0.0.1, in a fresh directory. */
function testCertificate() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=hubbub test',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { dir, cert, key, ca: readFileSync(cert) };
}

describe('socket.io-client over TLS', { timeout: 60000 }, () => {
  let pki, server, tcp, tcpName;
  const sockets = [];

  before(async () => {
    pki = testCertificate();
    server = await startServer({
      args: ['--tls-cert', pki.cert, '--tls-key', pki.key, '--tls-tcp-addr', '127.0.0.1:0', '--https-addr', '127.0.0.1:0'],
    });
    assert.ok(server.tlsTcp && server.httpsUrl, 'the TLS listeners are in the listening line');
    tcp = await LineClient.connectTls(server.tlsTcp, { ca: pki.ca });
    const you = await tcp.waitFor(/^You are /);
    tcpName = you.slice('You are '.length);
  });

  after(async () => {
    for (const socket of sockets) socket.disconnect();
    tcp?.close();
    await server?.stop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  /** Connects with `opts`; resolves to {socket, log, welcome, transport}. */
  async function connect(opts) {
    const socket = io(server.httpsUrl, { ca: pki.ca, reconnection: false, forceNew: true, ...opts });
    sockets.push(socket);
    const log = new EventLog(socket);
    let transport;
    socket.io.on('open', () => { transport = socket.io.engine.transport.name; });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const welcome = await log.waitFor('welcome');
    return { socket, log, welcome, transport };
  }

  for (const [name, opts, first] of [
    ['WSS only', { transports: ['websocket'] }, 'websocket'],
    ['HTTPS polling upgraded to WSS', {}, 'polling'],
  ]) {
    it(`${name}: chats with the TLS line client both ways`, async () => {
      const tsince = tcp.mark();
      const { socket, log, welcome, transport } = await connect(opts);
      assert.equal(transport, first);
      await tcp.waitFor(`${welcome.nick} has joined us`, { since: tsince });
      socket.emit('chat', { message: `hi from ${name}` });
      await tcp.waitFor(`${welcome.nick}: hi from ${name}`, { since: tsince });
      const since = log.mark();
      tcp.send(`hello ${welcome.nick}`);
      const msg = await log.waitFor('message', (m) => m?.text === `hello ${welcome.nick}`, { since });
      assert.equal(msg.from, tcpName);
      await until(() => socket.io.engine.transport.name === 'websocket', {
        timeout: 10000, what: 'the transport to be WSS',
      });
    });
  }

  it('a client that does not trust the certificate cannot connect', async () => {
    const socket = io(server.httpsUrl, { transports: ['websocket'], reconnection: false, forceNew: true });
    sockets.push(socket);
    const error = await new Promise((resolve, reject) => {
      socket.once('connect', () => reject(new Error('connected without trusting the certificate')));
      socket.once('connect_error', resolve);
    });
    assert.ok(error instanceof Error);
  });
});

describe('the chat page over HTTPS in Chromium', { timeout: 60000 }, () => {
  const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  let pki, server, browser, tcp;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (run scripts/test-deps.sh)`);
    pki = testCertificate();
    server = await startServer({
      args: ['--tls-cert', pki.cert, '--tls-key', pki.key, '--tls-tcp-addr', '127.0.0.1:0', '--https-addr', '127.0.0.1:0'],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      timeout: 30000,
    });
    tcp = await LineClient.connectTls(server.tlsTcp, { ca: pki.ca });
    await tcp.waitFor(/^You are /);
    tcp.send('/nick tina');
    await tcp.waitFor(/is now known as tina$/);
  });

  after(async () => {
    tcp?.close();
    await browser?.close().catch(() => {});
    await server?.stop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  it('connects over WSS and chats with a TLS line client, without a console error', async () => {
    // The test certificate is not in Chromium's store: this context accepts it.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    const problems = [];
    page.on('console', (msg) => { if (msg.type() === 'error') problems.push(msg.text()); });
    page.on('pageerror', (err) => problems.push(String(err)));
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    const resp = await page.goto(server.httpsUrl + '/');
    assert.equal(resp.status(), 200);
    await page.locator('#conn-status[data-state="connected"]').waitFor();
    await until(() => sockets.some((u) => u.startsWith('wss://')), { what: 'a WSS connection from the page' });
    assert.ok(sockets.every((u) => u.startsWith('wss://')), `only WSS: ${sockets}`);

    const since = tcp.mark();
    await page.fill('#message-input', 'hello from an https page');
    await page.press('#message-input', 'Enter');
    await tcp.waitFor(/: hello from an https page$/, { since });
    tcp.send('hello back over TLS');
    await page.waitForFunction(
      (b) => [...document.querySelectorAll('#messages li.msg[data-kind="message"] .text')].some((e) => e.textContent === b),
      'hello back over TLS',
    );
    assert.deepEqual(problems, []);
    await context.close();
  });
});
