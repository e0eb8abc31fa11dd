// The web page in headless Chromium (two browser contexts) plus a TCP client,
// all in one room; history on first load; then a server restart on the same
// ports and data directory, with messages posted while the pages are away.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { LineClient, REPO_ROOT, restartServer, startServer, until } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'target/test-artifacts');
const WAIT = 10000;

// Network errors Chromium logs by itself while the server is down for the restart
// (ERR_FAILED: the test holds the pages' reconnects back for a while).
const EXPECTED_WHILE_DOWN = /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|ERR_FAILED|WebSocket connection to .* failed|Failed to load resource/;
const SOCKET_IO_URL = /\/socket\.io\//;

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

  /** {id, from, text, history} of the chat messages on screen. */
  const shownMessages = (page) => page.$$eval('#messages li.msg[data-kind="message"]',
    (lis) => lis.map((li) => ({
      id: Number(li.dataset.id), from: li.dataset.from, text: li.querySelector('.text').textContent,
      history: li.dataset.history === '1',
    })));

  /** The page shows exactly `texts` as its chat messages: each once, in this order, ids increasing. */
  async function assertShownOnce(page, texts, what) {
    const shown = await shownMessages(page);
    const counts = new Map();
    for (const m of shown) counts.set(m.text, (counts.get(m.text) || 0) + 1);
    const wrong = texts.filter((t) => counts.get(t) !== 1).map((t) => `${t} ×${counts.get(t) || 0}`);
    assert.deepEqual(wrong, [], `${what}: every message exactly once`);
    assert.deepEqual(shown.map((m) => m.text), texts, `${what}: in order, nothing else`);
    for (let i = 1; i < shown.length; i++) {
      assert.ok(shown[i].id > shown[i - 1].id, `${what}: ids increase (${shown[i - 1].id} then ${shown[i].id})`);
    }
    return shown;
  }

  /** Wait until the page shows a chat message with exactly this text. */
  const waitForText = (page, body, timeout = WAIT) => page.waitForFunction(
    (b) => [...document.querySelectorAll('#messages li.msg[data-kind="message"] .text')].some((e) => e.textContent === b),
    body, { timeout });

  const range = (prefix, from, to) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix} ${from + i}`);

  /** A TCP user `nick` in `room` who says each of `lines` and waits for the last to come back. */
  async function tcpSay(nick, room, lines, client) {
    const c = client || await LineClient.connect(server.tcp);
    if (!client) {
      const you = await c.waitFor(/^You are /);
      c.send(`/nick ${nick}`);
      await c.waitFor(`${you.slice(8)} is now known as ${nick}`);
      if (room !== 'lobby') {
        c.send(`/join ${room}`);
        await c.waitFor(new RegExp(`^\\* you are now in ${room}\\b`));
      }
    }
    const since = c.mark();
    for (const line of lines) c.send(line);
    await c.waitFor(`${nick}: ${lines[lines.length - 1]}`, { since });
    return c;
  }

  async function waitForMessage(page, from, body) {
    await page.locator(`#messages li.msg[data-kind="message"][data-from="${from}"]`, { hasText: body }).first().waitFor();
  }

  /** The nickname form is in the account panel, behind the nickname in the top bar. */
  async function openAccount(page) {
    if (!(await page.locator('#nick-input').isVisible())) await page.click('#account-toggle');
  }

  async function setNick(page, nick) {
    await openAccount(page);
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
    const scripts = readdirSync(path.join(REPO_ROOT, 'crates/hubbub/assets/js')).map((f) => `js/${f}`);
    assert.ok(scripts.includes('js/main.js'), 'the page enters at js/main.js');
    for (const [p, type] of [['/', 'text/html'], ...scripts.map((f) => [`/${f}`, 'javascript']),
      ['/style.css', 'text/css'], ['/socket.io.min.js', 'javascript'], ['/healthz', null]]) {
      const res = await fetch(server.httpUrl + p);
      assert.equal(res.status, 200, p);
      if (type) assert.match(res.headers.get('content-type') || '', new RegExp(type), `content-type of ${p}`);
      await res.arrayBuffer();
    }
    // The page is compiled into the binary: make sure it is the one in the work tree.
    for (const [p, file] of [['/', 'index.html'], ['/style.css', 'style.css'], ...scripts.map((f) => [`/${f}`, f])]) {
      const served = await (await fetch(server.httpUrl + p)).text();
      assert.ok(served === readFileSync(path.join(REPO_ROOT, 'crates/hubbub/assets', file), 'utf8'),
        `${p} differs from crates/hubbub/assets/${file}: ${process.env.HUBBUB_BIN || 'the binary'} is older than the page; rebuild it`);
    }
  });

  it('shows the history on first load, and earlier messages on request', async () => {
    // 25 messages in the default room before any page is open; a page gets the last 20.
    const early = range('early', 1, 25);
    const hist = await tcpSay('hist', 'lobby', early);
    const dave = await openPage('dave');
    await waitForText(dave, 'early 25');
    assert.equal(await text(dave, '#current-room'), 'lobby');
    let shown = await assertShownOnce(dave, early.slice(5), 'history on first load');
    assert.ok(shown.every((m) => m.history && m.from === 'hist'), 'marked as history, from hist');
    await dave.locator('#messages li.divider', { hasText: 'earlier messages' }).waitFor();
    const times = await dave.$$eval('#messages li.msg[data-history="1"] .time', (els) => els.map((e) => e.textContent));
    assert.ok(times.every((t) => /^\d\d:\d\d$/.test(t)), `today's history shows HH:MM: ${times}`);

    // Older messages exist: "load earlier messages" fetches them, then goes away.
    await dave.locator('#load-earlier').click();
    await waitForText(dave, 'early 1');
    shown = await assertShownOnce(dave, early, 'after loading earlier messages');
    await dave.locator('#load-earlier').waitFor({ state: 'detached' });

    // Live messages continue after the history, once each.
    await tcpSay('hist', 'lobby', ['live 1'], hist);
    await waitForText(dave, 'live 1');
    await assertShownOnce(dave, [...early, 'live 1'], 'history then live');
    hist.close();
    await dave.context().close();
    delete pages.dave;
    assert.deepEqual(problems, []);
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
    // From the composer: the conversation with carol opens on its own.
    await send(alice, '/msg carol psst carol');
    await tcp.waitFor('*alice* psst carol');
    await waitText(alice, '#current-room', 'carol');
    await alice.locator('#messages li.msg[data-kind="private"][data-dir="out"]', { hasText: 'psst carol' }).waitFor();

    // Bob, in #web, gets an entry for the conversation with carol; it holds the message.
    tcp.send('/msg bob secret for bob');
    await tcp.waitFor('-> *bob* secret for bob');
    await bob.locator('#pm-list li[data-nick="carol"][data-unread="1"]').waitFor();
    assert.equal(await bob.locator('#messages li.msg', { hasText: 'secret for bob' }).count(), 0, 'not mixed into #web');
    await bob.click('#pm-list li[data-nick="carol"] button.entry');
    await bob.locator('#messages li.msg[data-kind="private"][data-from="carol"][data-dir="in"]', { hasText: 'secret for bob' }).waitFor();
    assert.equal(await alice.locator('#messages li.msg', { hasText: 'secret for bob' }).count(), 0);
    for (const page of [alice, bob]) {
      await page.click('#room-list li[data-room="web"] button');
      await waitText(page, '#current-room', 'web');
    }
  });

  it('has no console or page errors, and looks right (screenshot)', async () => {
    const { alice } = pages;
    await alice.waitForTimeout(300);
    assert.deepEqual(problems, []);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'chat.png');
    // (The README's pictures come from webclient.test.mjs.)
    await alice.screenshot({ path: shot });
  });

  it('shows errors to the user (nickname in use)', async () => {
    const { bob } = pages;
    await openAccount(bob);
    await bob.fill('#nick-input', 'Alice');
    await bob.click('#nick-button');
    // Once, beside the form, in plain words (no raw code), with the code for tools.
    await bob.locator('#nick-error[data-code="nick_in_use"]').waitFor({ state: 'visible' });
    const said = await text(bob, '#nick-error');
    assert.match(said, /Alice is already taken/);
    assert.doesNotMatch(said, /nick_in_use/);
    assert.equal(await bob.locator('#messages li.msg[data-kind="error"]').count(), 0, 'not repeated in the log');
    assert.equal(await text(bob, '#my-nick'), 'bob');
    await bob.keyboard.press('Escape');
    assert.deepEqual(problems, []);
  });

  it('reconnects after a server restart with the same nickname and room, missing nothing', async () => {
    const { alice, bob } = pages;
    const initial = ['hello from alice', 'hi from bob', 'hey from carol'];
    const before = range('before restart', 1, 2);
    await tcpSay('carol', 'web', before, tcp);
    await waitForText(alice, 'before restart 2');
    await waitForText(bob, 'before restart 2');
    await assertShownOnce(alice, [...initial, ...before], 'alice before the restart');

    phase = 'restart';
    tcp.close();
    // Hold the pages' reconnects back (their Socket.IO requests fail) until the new
    // server has messages they did not see: more than it sends on a join in both rooms
    // (20 on connect in lobby; web: more than the 100 it keeps in memory).
    for (const page of [alice, bob]) await page.context().route(SOCKET_IO_URL, (route) => route.abort());
    server = await restartServer(server);
    const down = range('while down', 1, 120);
    const lobbyDown = range('lobby while down', 1, 25);
    tcp = await tcpSay('carol', 'web', down);
    const dan = await tcpSay('dan', 'lobby', lobbyDown);
    for (const page of [alice, bob]) {
      assert.equal(await page.locator('#conn-status').getAttribute('data-state'), 'disconnected', 'the page is still away');
      assert.equal(await page.evaluate(() => window.hubbub.state.connects), 1, 'the page has not reconnected yet');
    }
    // Typed while away, in a room that is not the default one: held until
    // the page is back in it, then sent once.
    await send(alice, 'typed while away');
    for (const page of [alice, bob]) await page.context().unroute(SOCKET_IO_URL);
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

    // Everything posted while they were away is there, once, in order.
    for (const page of [alice, bob]) {
      await waitForText(page, 'while down 120', 15000);
      await waitForText(page, 'typed while away', 15000);
      await until(async () => (await shownMessages(page)).length >= initial.length + before.length + down.length + 1,
        { what: 'the missed messages' });
      await assertShownOnce(page, [...initial, ...before, ...down, 'typed while away'], 'web after the restart');
    }

    await until(async () => (await members(alice)).join() === 'alice,bob,carol', { timeout: 15000, what: 'alice to list alice, bob, carol again' });

    // What alice typed while away arrived once, in web, under her name.
    await tcp.waitFor('alice: typed while away');
    await waitForMessage(bob, 'alice', 'typed while away');
    assert.equal(tcp.lines.filter((l) => l === 'alice: typed while away').length, 1, 'sent once');

    // The server really has them back in the room under their names.
    await send(alice, 'back again');
    await tcp.waitFor('alice: back again');
    await waitForMessage(bob, 'alice', 'back again');
    await send(bob, 'me too');
    await tcp.waitFor('bob: me too');
    await waitForMessage(alice, 'bob', 'me too');
    const all = [...initial, ...before, ...down, 'typed while away', 'back again', 'me too'];
    await waitForMessage(bob, 'bob', 'me too');
    for (const page of [alice, bob]) await assertShownOnce(page, all, 'web, live again');

    // The default room too: the 20 bob got on first load, then all 25 posted while away.
    await bob.click('#room-list li[data-room="lobby"]');
    await waitText(bob, '#current-room', 'lobby');
    await waitForText(bob, 'lobby while down 25');
    await assertShownOnce(bob, [...range('early', 7, 25), 'live 1', ...lobbyDown], 'lobby after the restart');
    dan.close();

    phase = 'after';
    await alice.waitForTimeout(300);
    const pageErrors = problems.filter((p) => p.kind === 'pageerror');
    assert.deepEqual(pageErrors, []);
    const unexpected = problems.filter((p) => p.phase !== 'restart' || !EXPECTED_WHILE_DOWN.test(p.text));
    assert.deepEqual(unexpected, []);
  });
});
