// The web page in headless Chromium (two browser contexts) plus a TCP client,
// all in one room; then a server restart on the same ports.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { LineClient, REPO_ROOT, restartServer, startServer, until } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'target/test-artifacts');
const WAIT = 10000;

// Network errors Chromium logs by itself while the server is down for the restart.
const EXPECTED_WHILE_DOWN = /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed|Failed to load resource/;

describe('web chat in Chromium', { timeout: 120000 }, () => {
  let server, browser, tcp;
  const pages = {};
  const problems = []; // {who, kind, text, phase}
  let phase = 'chat';

  async function openPage(who) {
    const context = await browser.newContext({ viewport: { width: 1180, height: 720 } });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push({ who, kind: 'console', text: msg.text(), phase });
    });
    page.on('pageerror', (err) => problems.push({ who, kind: 'pageerror', text: String(err), phase }));
    page.on('requestfailed', (req) => {
      // net::ERR_ABORTED is the page cancelling a request itself (not a failure).
      if (phase === 'chat' && !/ERR_ABORTED/.test(req.failure()?.errorText || '')) problems.push({ who, kind: 'requestfailed', text: `${req.url()} ${req.failure()?.errorText}`, phase });
    });
    const resp = await page.goto(server.httpUrl + '/');
    assert.equal(resp.status(), 200);
    await page.locator('#conn-status[data-state="connected"]').waitFor();
    pages[who] = page;
    return page;
  }

  const text = (page, sel) => page.locator(sel).textContent();
  const waitText = (page, sel, expected) => page.waitForFunction(
    ([s, e]) => document.querySelector(s)?.textContent === e, [sel, expected], { timeout: WAIT });

  /** [from, text] of the chat messages on screen. */
  const chatLines = (page) => page.$$eval('#messages li.msg[data-kind="message"]',
    (lis) => lis.map((li) => [li.dataset.from, li.querySelector('.text').textContent]));

  async function waitForMessage(page, from, body) {
    await page.locator(`#messages li.msg[data-kind="message"][data-from="${from}"]`, { hasText: body }).first().waitFor();
  }

  async function setNick(page, nick) {
    await page.fill('#nick-input', nick);
    await page.click('#nick-button');
    await waitText(page, '#my-nick', nick);
  }

  async function joinRoom(page, room) {
    await page.fill('#join-input', room);
    await page.click('#join-button');
    await waitText(page, '#current-room', room);
  }

  async function send(page, body) {
    await page.fill('#message-input', body);
    await page.press('#message-input', 'Enter');
  }

  async function members(page) {
    return page.$$eval('#member-list li', (lis) => lis.map((li) => li.dataset.nick).sort());
  }

  async function connectTcp() {
    const c = await LineClient.connect(server.tcp);
    const you = await c.waitFor(/^You are /);
    c.send('/nick carol');
    await c.waitFor(`${you.slice(8)} is now known as carol`);
    c.send('/join web');
    await c.waitFor(/^\* you are now in web\b/);
    return c;
  }

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (run scripts/test-deps.sh)`);
    server = await startServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      timeout: 30000,
    });
  });

  after(async () => {
    tcp?.close();
    await browser?.close().catch(() => {});
    await server?.stop();
  });

  it('serves the page and its assets', async () => {
    for (const [p, type] of [['/', 'text/html'], ['/app.js', 'javascript'], ['/style.css', 'text/css'],
      ['/socket.io.min.js', 'javascript'], ['/healthz', null]]) {
      const res = await fetch(server.httpUrl + p);
      assert.equal(res.status, 200, p);
      if (type) assert.match(res.headers.get('content-type') || '', new RegExp(type), `content-type of ${p}`);
      await res.arrayBuffer();
    }
  });

  it('two browsers and a TCP user chat in one room', async () => {
    const alice = await openPage('alice');
    const bob = await openPage('bob');
    assert.match(await text(alice, '#my-nick'), /^guest-\d+$/);
    await setNick(alice, 'alice');
    await setNick(bob, 'bob');

    tcp = await connectTcp();
    await joinRoom(alice, 'web');
    await until(async () => (await members(alice)).join() === 'alice,carol', { what: 'alice to see members alice, carol' });
    await joinRoom(bob, 'web');
    await tcp.waitFor('bob has joined us');
    // alice sees bob join (notice) and the member list / room list update
    await alice.locator('#messages li.msg[data-kind="notice"]', { hasText: 'bob joined' }).waitFor();
    await until(async () => (await members(alice)).join() === 'alice,bob,carol', { what: 'alice to list 3 members' });
    await until(async () => (await members(bob)).join() === 'alice,bob,carol', { what: 'bob to list 3 members' });
    await alice.locator('#room-list li[data-room="web"][data-members="3"]').waitFor();

    // typing indicator: alice types, bob sees it; it goes away once she sends
    await alice.click('#message-input');
    await alice.keyboard.type('hello from alice');
    await waitText(bob, '#typing', 'alice is typing…');
    await alice.press('#message-input', 'Enter');
    await waitText(bob, '#typing', '');

    await waitForMessage(alice, 'alice', 'hello from alice');
    await waitForMessage(bob, 'alice', 'hello from alice');
    await tcp.waitFor('alice: hello from alice');

    await send(bob, 'hi from bob');
    await waitForMessage(alice, 'bob', 'hi from bob');
    await waitForMessage(bob, 'bob', 'hi from bob');
    await tcp.waitFor('bob: hi from bob');

    tcp.send('hey from carol');
    await tcp.waitFor('carol: hey from carol');
    await waitForMessage(alice, 'carol', 'hey from carol');
    await waitForMessage(bob, 'carol', 'hey from carol');

    const expected = [['alice', 'hello from alice'], ['bob', 'hi from bob'], ['carol', 'hey from carol']];
    assert.deepEqual(await chatLines(alice), expected);
    assert.deepEqual(await chatLines(bob), expected);
    const tcpChat = tcp.lines.filter((l) => /^(alice|bob|carol): /.test(l));
    assert.deepEqual(tcpChat, expected.map(([f, t]) => `${f}: ${t}`));

    const times = await alice.$$eval('#messages li.msg .time', (els) => els.map((e) => e.textContent));
    assert.ok(times.length >= 3 && times.every((t) => /^\d\d:\d\d$/.test(t)), `HH:MM timestamps: ${times}`);
  });

  it('private messages both ways, shown distinctly', async () => {
    const { alice, bob } = pages;
    await alice.fill('#pm-to', 'carol');
    await alice.fill('#pm-text', 'psst carol');
    await alice.click('#pm-button');
    await tcp.waitFor('*alice* psst carol');
    await alice.locator('#messages li.msg[data-kind="private"][data-dir="out"]', { hasText: 'psst carol' }).waitFor();

    tcp.send('/msg bob secret for bob');
    await tcp.waitFor('-> *bob* secret for bob');
    await bob.locator('#messages li.msg[data-kind="private"][data-from="carol"][data-dir="in"]', { hasText: 'secret for bob' }).waitFor();
    assert.equal(await alice.locator('#messages li.msg', { hasText: 'secret for bob' }).count(), 0);
  });

  it('has no console or page errors, and looks right (screenshot)', async () => {
    const { alice } = pages;
    await alice.waitForTimeout(300);
    assert.deepEqual(problems, []);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'chat.png');
    await alice.screenshot({ path: shot });
    // The README's picture is refreshed on request only, so a test run
    // leaves the work tree as it was.
    if (process.env.UPDATE_SCREENSHOT === '1') {
      mkdirSync(path.join(REPO_ROOT, 'docs'), { recursive: true });
      copyFileSync(shot, path.join(REPO_ROOT, 'docs/screenshot.png'));
    }
  });

  it('shows errors to the user (nickname in use)', async () => {
    const { bob } = pages;
    await bob.fill('#nick-input', 'Alice');
    await bob.click('#nick-button');
    await bob.locator('#toast').waitFor({ state: 'visible' });
    assert.match(await text(bob, '#toast'), /nick_in_use/);
    await bob.locator('#messages li.msg[data-kind="error"]', { hasText: 'nick_in_use' }).waitFor();
    assert.equal(await text(bob, '#my-nick'), 'bob');
    assert.deepEqual(problems, []);
  });

  it('reconnects after a server restart with the same nickname and room', async () => {
    const { alice, bob } = pages;
    phase = 'restart';
    tcp.close();
    server = await restartServer(server);
    for (const page of [alice, bob]) {
      await page.locator('#conn-status[data-state="connected"]').waitFor({ timeout: 20000 });
    }
    for (const page of [alice, bob]) {
      assert.ok(await page.evaluate(() => window.hubbub.state.connects) >= 2, 'the page reconnected');
    }
    await waitText(alice, '#my-nick', 'alice');
    await waitText(bob, '#my-nick', 'bob');
    assert.equal(await text(alice, '#current-room'), 'web');
    assert.equal(await text(bob, '#current-room'), 'web');

    tcp = await connectTcp();
    await until(async () => (await members(alice)).join() === 'alice,bob,carol', { timeout: 15000, what: 'alice to list alice, bob, carol again' });

    // The server really has them back in the room under their names.
    await send(alice, 'back again');
    await tcp.waitFor('alice: back again');
    await waitForMessage(bob, 'alice', 'back again');
    await send(bob, 'me too');
    await tcp.waitFor('bob: me too');
    await waitForMessage(alice, 'bob', 'me too');

    phase = 'after';
    await alice.waitForTimeout(300);
    const pageErrors = problems.filter((p) => p.kind === 'pageerror');
    assert.deepEqual(pageErrors, []);
    const unexpected = problems.filter((p) => p.phase !== 'restart' || !EXPECTED_WHILE_DOWN.test(p.text));
    assert.deepEqual(unexpected, []);
  });
});
