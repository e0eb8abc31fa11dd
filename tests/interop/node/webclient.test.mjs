// The web page as a user meets it, in headless Chromium at a desktop size
// (1280×800) and a phone size (390×844): unread and mention counts, private
// conversations, notifications, links, composer commands, keyboard use, an
// axe-core audit, accounts (form, session kept across a reload), and a page
// embedded by a host application with a token.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { LineClient, REPO_ROOT, startServer, until } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'target/test-artifacts');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const WAIT = 10000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const SECRET = 'webclient-test-secret';
// The host application's origin: a loopback one too (Chromium keeps public
// sites from framing loopback ones); no server answers there, the test does.
const HOST = 'http://localhost:9';

/** An HS256 JWT for `claims`, signed with the server's --jwt-secret. */
function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(claims);
  return body + '.' + createHmac('sha256', SECRET).update(body).digest('base64url');
}

// Lets a test make the page hidden and see the notifications it shows: the
// real Notification's permission (granted or not in the test's context) and
// requestPermission calls are passed through and counted.
const SPY = () => {
  const Real = window.Notification;
  window.__notes = [];
  window.__asked = 0;
  function Spy(title, options) {
    window.__notes.push({ title, body: options && options.body });
    this.close = () => {};
  }
  Object.defineProperty(Spy, 'permission', { get: () => Real.permission });
  Spy.requestPermission = () => { window.__asked += 1; return Real.requestPermission(); };
  window.Notification = Spy;
  let hidden = false;
  Object.defineProperty(document, 'visibilityState', { get: () => (hidden ? 'hidden' : 'visible'), configurable: true });
  Object.defineProperty(document, 'hidden', { get: () => hidden, configurable: true });
  window.__setHidden = (h) => { hidden = h; document.dispatchEvent(new Event('visibilitychange')); };
};

describe('web client in Chromium', { timeout: 170000 }, () => {
  let server, browser;
  const problems = [];
  const clients = [];
  // Pages whose connection a test breaks on purpose: a long-polling request
  // of the broken session may then be answered 400 (its session is gone),
  // which Chromium logs as an error.
  const breaking = new Set();
  const BROKEN_SESSION = /Failed to load resource: the server responded with a status of 400/;

  // `bypassCSP` only to let axe-core's script in (Playwright adds it inline).
  async function openPage(who, { viewport = DESKTOP, grant = true, url = '/', bypassCSP = false, colorScheme = 'light', timezoneId } = {}) {
    const context = await browser.newContext({ viewport, hasTouch: viewport === PHONE, bypassCSP, colorScheme, timezoneId });
    if (grant) await context.grantPermissions(['notifications'], { origin: server.httpUrl });
    await context.addInitScript(SPY);
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('console', (msg) => {
      if (msg.type() !== 'error' || (breaking.has(who) && BROKEN_SESSION.test(msg.text()))) return;
      problems.push(`${who}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`${who}: ${err}`));
    await page.goto(server.httpUrl + url);
    await page.locator('#conn-status[data-state="connected"]').waitFor();
    // Connected comes before the welcome that names the session: wait for
    // the name too, so a test reading it gets the name, not the placeholder.
    await page.waitForFunction(() => document.querySelector('#my-nick')?.textContent !== '…', null, { timeout: WAIT });
    return page;
  }

  const text = (page, sel) => page.locator(sel).textContent();
  const waitText = (page, sel, expected) => page.waitForFunction(
    ([s, e]) => document.querySelector(s)?.textContent === e, [sel, expected], { timeout: WAIT });

  async function tcpUser(nick, room) {
    const c = await LineClient.connect(server.tcp);
    clients.push(c);
    const you = await c.waitFor(/^You are /);
    c.send(`/nick ${nick}`);
    await c.waitFor(`${you.slice(8)} is now known as ${nick}`);
    if (room && room !== 'lobby') {
      c.send(`/join ${room}`);
      await c.waitFor(new RegExp(`^\\* you are now in ${room}\\b`));
    }
    return c;
  }

  async function say(c, nick, line) {
    const since = c.mark();
    c.send(line);
    await c.waitFor(`${nick}: ${line}`, { since });
  }

  async function send(page, line) {
    await page.fill('#message-input', line);
    await page.press('#message-input', 'Enter');
  }

  async function setNick(page, nick) {
    if (!(await page.locator('#nick-input').isVisible())) await page.click('#account-toggle');
    await page.fill('#nick-input', nick);
    await page.click('#nick-button');
    await waitText(page, '#my-nick', nick);
  }

  /** On a phone the room list is in a drawer: open it when it is closed. */
  async function openRooms(page) {
    if (!(await page.locator('#room-list').isVisible())) {
      await page.click('#rooms-toggle');
      await page.locator('#room-list').waitFor({ state: 'visible' });
    }
  }

  async function showRoom(page, room) {
    await openRooms(page);
    await page.click(`#room-list li[data-room="${room}"] button`);
    await waitText(page, '#current-room', room);
  }

  const counts = (page, sel) => page.$eval(sel, (li) => [Number(li.dataset.unread), Number(li.dataset.mentions)]);

  async function audit(page, what) {
    await page.addScriptTag({ path: AXE });
    const violations = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
    });
    const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(bad, [], `${what}: serious or critical accessibility violations`);
  }

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (run scripts/test-deps.sh)`);
    server = await startServer({ args: ['--jwt-secret', SECRET, '--frame-ancestors', HOST] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync',
        // The host page of the embedding test is served by the test itself,
        // so Chromium cannot tell it is on loopback too and would refuse it
        // to frame a loopback page (Local Network Access).
        '--disable-features=LocalNetworkAccessChecks'],
      timeout: 30000,
    });
  });

  after(async () => {
    for (const c of clients) c.close();
    await browser?.close().catch(() => {});
    await server?.stop();
  });

  it('desktop: unread and mention counts move as messages arrive in a background room', async () => {
    const ann = await openPage('ann');
    await setNick(ann, 'ann');
    // /join from the composer, then back to lobby: #games is in the background.
    await send(ann, '/join games');
    await waitText(ann, '#current-room', 'games');
    await showRoom(ann, 'lobby');
    const bob = await tcpUser('bob', 'games');
    const games = '#room-list li[data-room="games"]';

    await say(bob, 'bob', 'hello all');
    await until(async () => (await counts(ann, games)).join() === '1,0', { what: 'games: 1 unread, no mention' });
    assert.equal(await text(ann, `${games} .unread-count`), '1');
    assert.ok(await ann.locator(`${games} .mention-count`).isHidden(), 'no mention badge yet');
    await say(bob, 'bob', 'ann, are you there?');
    await until(async () => (await counts(ann, games)).join() === '2,1', { what: 'games: 2 unread, 1 mention' });
    assert.equal(await text(ann, `${games} .mention-count`), '@1');
    assert.match(await ann.title(), /^\(2\) /, 'the title shows the unread count');
    // A word that only contains the nickname is not a mention.
    await say(bob, 'bob', 'annotations are done');
    await until(async () => (await counts(ann, games)).join() === '3,1', { what: 'games: 3 unread, still 1 mention' });
    assert.equal((await counts(ann, '#room-list li[data-room="lobby"]')).join(), '0,0', 'the room on screen counts nothing');

    // Opening the room: counts go, the marker shows where ann left off, the mention stands out.
    await showRoom(ann, 'games');
    assert.equal((await counts(ann, games)).join(), '0,0');
    assert.doesNotMatch(await ann.title(), /^\(/);
    const afterMarker = await ann.$eval('#messages li.unread-marker', (m) => {
      let n = m.nextElementSibling;
      while (n && !n.matches('li.msg')) n = n.nextElementSibling;
      return n && n.querySelector('.text').textContent;
    });
    assert.equal(afterMarker, 'hello all', 'the "new messages" marker is before the first unread');
    assert.equal(await ann.locator('#messages li.msg.mention').count(), 1);
    await ann.locator('#messages li.msg.mention', { hasText: 'ann, are you there?' }).waitFor();
    // Consecutive messages from bob are one group: only the first has a visible name.
    const groups = await ann.$$eval('#messages li.msg[data-from="bob"]', (lis) => lis.map((li) => li.classList.contains('cont')));
    assert.deepEqual(groups, [false, true, true]);
    await ann.locator('#messages li.day', { hasText: 'Today' }).first().waitFor();
    await ann.context().close();
  });

  it('phone: the conversation fills the screen, rooms and members are drawers, counts show on the drawer button', async () => {
    const cat = await openPage('cat', { viewport: PHONE });
    assert.ok(await cat.locator('#room-list').isHidden(), 'the room list is in a closed drawer');
    assert.ok(await cat.locator('#member-list').isHidden(), 'the member list is in a closed drawer');
    const input = await cat.locator('#message-input').boundingBox();
    assert.ok(input && input.y + input.height <= PHONE.height, 'the composer is on screen');
    const log = await cat.locator('#messages').boundingBox();
    assert.ok(log.height > PHONE.height * 0.6, `the conversation is most of the screen (${log.height}px)`);
    const bar = await cat.locator('.topbar').boundingBox();
    assert.ok(bar.height < PHONE.height * 0.08, `the top bar is one slim row (${bar.height}px)`);
    // The on-screen keyboard takes the bottom of the screen (the page asks the
    // browser to resize the layout for it): the composer moves up above it.
    await cat.click('#message-input');
    await cat.setViewportSize({ width: PHONE.width, height: 500 });
    const above = await cat.locator('#message-input').boundingBox();
    assert.ok(above.y + above.height <= 500 && above.y > 300, `the composer is above the keyboard (${above.y}px)`);
    await cat.setViewportSize(PHONE);

    await setNick(cat, 'cat');
    await openRooms(cat);
    await cat.fill('#join-input', 'phones');
    await cat.click('#join-button');
    await waitText(cat, '#current-room', 'phones');
    await cat.locator('#room-list').waitFor({ state: 'hidden' }); // choosing a room closes the drawer
    await showRoom(cat, 'lobby');
    const dan = await tcpUser('dan', 'phones');
    await say(dan, 'dan', 'cat: ping');
    await waitText(cat, '#rooms-badge', '1');
    assert.ok(await cat.locator('#rooms-badge.mention').isVisible(), 'the drawer button says a mention waits');
    await openRooms(cat);
    assert.equal((await counts(cat, '#room-list li[data-room="phones"]')).join(), '1,1');
    await cat.keyboard.press('Escape');
    await cat.locator('#room-list').waitFor({ state: 'hidden' });

    await cat.click('#members-toggle');
    await cat.locator('#member-list li[data-nick="cat"]').waitFor();
    await cat.keyboard.press('Escape');
    await cat.locator('#member-list').waitFor({ state: 'hidden' });
    await cat.context().close();
  });

  it('a private conversation opens as its own entry, beside the rooms', async () => {
    const eve = await openPage('eve');
    await setNick(eve, 'eve');
    const fred = await tcpUser('fred');
    fred.send('/msg eve psst, eve');
    await fred.waitFor('-> *eve* psst, eve');
    const entry = '#pm-list li[data-nick="fred"]';
    await eve.locator(`${entry}[data-unread="1"][data-mentions="1"]`).waitFor();
    assert.equal(await text(eve, '#current-room'), 'lobby', 'the room stays on screen');
    assert.equal(await eve.locator('#messages li.msg', { hasText: 'psst' }).count(), 0, 'not mixed into the room');

    await eve.click(`${entry} button.entry`);
    await waitText(eve, '#current-room', 'fred');
    await eve.locator('#messages li.msg[data-kind="private"][data-dir="in"][data-from="fred"]', { hasText: 'psst, eve' }).waitFor();
    assert.equal((await counts(eve, entry)).join(), '0,0');
    // Plain text in the conversation goes to fred only.
    await send(eve, 'hi fred');
    await fred.waitFor('*eve* hi fred');
    await eve.locator('#messages li.msg[data-kind="private"][data-dir="out"]', { hasText: 'hi fred' }).waitFor();
    // The conversation keeps its history while another is on screen.
    await showRoom(eve, 'lobby');
    await eve.click(`${entry} button.entry`);
    assert.deepEqual(await eve.$$eval('#messages li.msg[data-kind="private"] .text', (els) => els.map((e) => e.textContent)),
      ['psst, eve', 'hi fred']);
    await eve.context().close();
  });

  it('asks for notifications only on a click, and notifies of mentions and private messages while hidden', async () => {
    // Without permission: nothing is asked until the user presses the button.
    const gil = await openPage('gil', { grant: false });
    assert.equal(await gil.evaluate(() => window.__asked), 0, 'no permission prompt on load');
    await gil.click('#account-toggle');
    await gil.click('#notify-button');
    await until(() => gil.evaluate(() => window.__asked === 1), { what: 'requestPermission after the click' });
    await gil.context().close();

    const hal = await openPage('hal');
    await setNick(hal, 'hal');
    assert.ok(await hal.locator('#notify-button').isHidden(), 'permission granted: no button');
    const ivy = await tcpUser('ivy');
    await hal.evaluate(() => window.__setHidden(true));
    await say(ivy, 'ivy', 'just chatting');
    await say(ivy, 'ivy', 'hal, lunch?');
    await until(() => hal.evaluate(() => window.__notes.length === 1), { what: 'one notification' });
    assert.deepEqual(await hal.evaluate(() => window.__notes[0]), { title: 'ivy in #lobby', body: 'hal, lunch?' });
    assert.match(await hal.title(), /^\(2\) /, 'hidden: the room on screen counts too');
    ivy.send('/msg hal a secret');
    await until(() => hal.evaluate(() => window.__notes.length === 2), { what: 'a notification for the private message' });
    assert.deepEqual(await hal.evaluate(() => window.__notes[1]), { title: 'ivy (private)', body: 'a secret' });

    // Back: the room on screen is read, with the marker where hal left off.
    await hal.evaluate(() => window.__setHidden(false));
    await until(async () => /^\(1\) /.test(await hal.title()), { what: 'only the private message unread' });
    await hal.locator('#messages li.unread-marker').waitFor();
    await say(ivy, 'ivy', 'hal: seen?');
    await hal.locator('#messages li.msg.mention', { hasText: 'hal: seen?' }).waitFor();
    assert.equal(await hal.evaluate(() => window.__notes.length), 2, 'no notification while visible');
    await hal.context().close();
  });

  it('renders links as links and markup as text; local times; a line between days', async () => {
    // A time zone with a half-hour offset, so that UTC times would show wrong.
    const jo = await openPage('jo', { timezoneId: 'Asia/Kolkata' });
    const kim = await tcpUser('kim');
    await say(kim, 'kim', 'see https://example.com/a?b=1&c=2. and <b>x</b> <img src=x onerror=alert(1)>');
    const li = jo.locator('#messages li.msg[data-from="kim"]').last();
    await li.waitFor();
    const link = li.locator('a');
    assert.equal(await link.count(), 1);
    assert.equal(await link.getAttribute('href'), 'https://example.com/a?b=1&c=2');
    assert.equal(await link.textContent(), 'https://example.com/a?b=1&c=2', 'the full stop after it is not the link\'s');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.equal(await li.locator('b, img').count(), 0, 'no markup became elements');
    assert.match(await li.locator('.text').textContent(), /and <b>x<\/b> <img src=x onerror=alert\(1\)>$/);
    const time = await li.locator('time.time').getAttribute('datetime');
    assert.ok(Math.abs(Date.parse(time) - Date.now()) < 60000, 'a machine-readable timestamp');
    const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Kolkata', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
      .format(new Date(Date.parse(time)));
    assert.equal(await li.locator('time.time').textContent(), local, 'shown in the user\'s time zone');

    // Tomorrow, for the page: what was said is yesterday's, what comes now today's.
    await jo.clock.setFixedTime(Date.now() + 24 * 3600 * 1000);
    await send(jo, '/help');
    await jo.locator('#messages li.msg[data-kind="notice"]', { hasText: '/join ROOM' }).waitFor();
    await send(jo, '/join elsewhere');
    await waitText(jo, '#current-room', 'elsewhere');
    await jo.click('#room-list li[data-room="lobby"] button');
    await waitText(jo, '#current-room', 'lobby');
    const days = await jo.$$eval('#messages li.day', (lis) => lis.map((li) => li.textContent));
    assert.deepEqual(days, ['Yesterday', 'Today']);
    const afterYesterday = await jo.$eval('#messages li.day', (d) => d.nextElementSibling.textContent);
    assert.match(afterYesterday, /Welcome!/, 'yesterday\'s line heads what was said then');
    await jo.context().close();
  });

  it('runs commands from the composer, completes nicknames on Tab, recalls lines on Up', async () => {
    const lu = await openPage('lu');
    const max = await tcpUser('maximilian');
    await send(lu, '/nick lu');
    await waitText(lu, '#my-nick', 'lu');
    await max.waitFor(/is now known as lu$/);

    await send(lu, '/me waves');
    await max.waitFor('** lu waves');
    await lu.locator('#messages li.msg[data-kind="action"][data-from="lu"]', { hasText: 'waves' }).waitFor();

    await send(lu, '/who');
    await lu.locator('#messages li.msg[data-kind="notice"] .text', { hasText: /^#lobby \(\d+ members\): .*\blu\b/ }).waitFor();
    await send(lu, '/whois maximilian');
    await lu.locator('#messages li.msg[data-kind="notice"] .text', { hasText: 'maximilian: not registered; here' }).waitFor();

    // Tab completes a member's nickname (at the start of a line with ": ").
    await lu.fill('#message-input', 'maxi');
    await lu.press('#message-input', 'Tab');
    assert.equal(await lu.inputValue('#message-input'), 'maximilian: ');
    await lu.keyboard.type('hello');
    await lu.press('#message-input', 'Enter');
    await max.waitFor('lu: maximilian: hello');

    await send(lu, '/msg maximilian in private');
    await max.waitFor('*lu* in private');
    await waitText(lu, '#current-room', 'maximilian');
    await lu.locator('#pm-list li[data-nick="maximilian"]').waitFor();

    // Up brings back the lines sent, newest first; Down goes forward again.
    await lu.click('#message-input');
    await lu.keyboard.press('ArrowUp');
    assert.equal(await lu.inputValue('#message-input'), '/msg maximilian in private');
    await lu.keyboard.press('ArrowUp');
    assert.equal(await lu.inputValue('#message-input'), 'maximilian: hello');
    await lu.keyboard.press('ArrowDown');
    await lu.keyboard.press('ArrowDown');
    assert.equal(await lu.inputValue('#message-input'), '');

    // Errors: in plain words, once, above the composer; the line stays to fix.
    await send(lu, '/frob');
    await lu.locator('#composer-error[data-code="unknown_command"]', { hasText: 'There is no command /frob' }).waitFor();
    await lu.fill('#message-input', '');
    await send(lu, '/msg nobody-here hi');
    await lu.locator('#composer-error[data-code="no_such_nick"]', { hasText: 'Nobody called nobody-here is here right now.' }).waitFor();
    assert.equal(await lu.inputValue('#message-input'), '/msg nobody-here hi', 'the line is kept');
    assert.equal(await lu.locator('#messages li.msg[data-kind="error"]').count(), 0, 'not repeated in the log');

    await send(lu, '/part');
    // In a private conversation /part has no room: join one, then part it.
    await lu.fill('#message-input', '');
    await send(lu, '/join misc');
    await waitText(lu, '#current-room', 'misc');
    await send(lu, '/part');
    await until(async () => !(await lu.$('#room-list li[data-room="misc"].joined')), { what: 'misc left' });
    await lu.context().close();
  });

  it('moderates from the message box: topic, modes, kick, and refusals in words', async () => {
    const olga = await openPage('olga', { bypassCSP: true });
    await olga.click('#account-toggle');
    await olga.fill('#login-nick', 'olga');
    await olga.fill('#login-password', 'owner of rooms');
    await olga.click('#register-button');
    await olga.locator('#account-state[data-state="account"]').waitFor();
    // A logged-in user who creates a room owns it.
    await send(olga, '/join agora');
    await waitText(olga, '#current-room', 'agora');
    const pia = await openPage('pia');
    await setNick(pia, 'pia');
    await send(pia, '/join agora');
    await waitText(pia, '#current-room', 'agora');
    const rex = await tcpUser('rex', 'agora');

    await send(olga, '/topic Plans for https://example.com/today');
    for (const page of [olga, pia]) {
      await page.locator('#topic', { hasText: 'Plans for https://example.com/today' }).waitFor();
      await page.locator('#messages li.msg[data-kind="notice"]', { hasText: 'olga set the topic: Plans for' }).waitFor();
    }
    assert.equal(await pia.getAttribute('#topic a', 'rel'), 'noopener noreferrer', 'a link in the topic is a link');
    await send(pia, '/topic');
    await pia.locator('#messages li.msg[data-kind="notice"]', { hasText: 'Topic of #agora: Plans for https://example.com/today (set by olga)' }).waitFor();

    // Not an operator: refused, in words, beside the composer.
    await send(pia, '/topic mine now');
    await pia.locator('#composer-error[data-code="not_operator"]', { hasText: 'You are not an operator of agora.' }).waitFor();
    await pia.fill('#message-input', '');

    await send(olga, '/mode +m');
    await pia.locator('#messages li.msg[data-kind="notice"]', { hasText: 'olga set +m on #agora' }).waitFor();
    await send(pia, 'can I speak?');
    await pia.locator('#composer-error[data-code="moderated"]', { hasText: 'moderated' }).waitFor();
    await pia.fill('#message-input', '');
    // The owner's member list offers an operator's actions; nobody else's does.
    await olga.click('#member-list li[data-nick="pia"] button.mod-toggle');
    assert.equal(await olga.getAttribute('#member-list li[data-nick="pia"] button.mod-toggle', 'aria-expanded'), 'true');
    await audit(olga, 'an operator\'s actions open');
    await olga.click('#member-list li[data-nick="pia"] button[data-mod="voice"]');
    await pia.locator('#messages li.msg[data-kind="notice"]', { hasText: 'olga set +v pia on #agora' }).waitFor();
    assert.equal(await pia.locator('#member-list button.mod-toggle').count(), 0, 'pia is no operator: no actions');
    await send(pia, 'now I can');
    await rex.waitFor('pia: now I can');

    await olga.click('#member-list li[data-nick="rex"] button.mod-toggle');
    await olga.click('#member-list li[data-nick="rex"] button[data-mod="kick"]');
    await rex.waitFor((l) => /kick|removed/.test(l) && /olga/.test(l));
    await pia.locator('#messages li.msg[data-kind="notice"]', { hasText: 'rex was removed from #agora by olga' }).waitFor();
    await until(async () => !(await pia.$('#member-list li[data-nick="rex"]')), { what: 'rex gone from the members' });
    await pia.waitForTimeout(200);
    assert.deepEqual(await pia.$$eval('#messages li.msg[data-kind="notice"] .text', (els) => els.map((e) => e.textContent).filter((t) => /^rex /.test(t))),
      ['rex joined #agora', 'rex was removed from #agora by olga'], 'said once');
    await send(olga, '/kick pia');
    await pia.locator('#messages li.msg[data-kind="error"]', { hasText: 'You were removed from #agora by olga.' }).waitFor();
    await until(async () => !(await pia.$('#room-list li.joined[data-room="agora"]')), { what: 'agora no longer joined' });
    assert.ok(await pia.locator('#message-input').isDisabled(), 'no longer able to write there');
    await olga.context().close();
    await pia.context().close();
  });

  it('can be used with the keyboard alone', async () => {
    const ned = await openPage('ned');
    await send(ned, '/join keys');
    await waitText(ned, '#current-room', 'keys');
    await ned.evaluate(() => document.activeElement.blur());
    const reached = [];
    for (let i = 0; i < 30; i++) {
      await ned.keyboard.press('Tab');
      reached.push(await ned.evaluate(() => {
        const a = document.activeElement;
        const li = a.closest('li');
        return a.id || (li && li.parentElement.id + ':' + (li.dataset.room || li.dataset.nick)) || a.tagName;
      }));
    }
    const me = await text(ned, '#my-nick');
    for (const want of ['account-toggle', 'room-list:lobby', 'room-list:keys', 'join-input', 'messages', 'message-input', 'send-button', `member-list:${me}`]) {
      assert.ok(reached.includes(want), `Tab reaches ${want}: ${reached.join(', ')}`);
    }
    assert.ok(reached.indexOf('room-list:lobby') < reached.indexOf('message-input'), 'in reading order');
    // Enter on a room shows it; the composer then has the focus.
    await ned.focus('#room-list li[data-room="lobby"] button');
    await ned.keyboard.press('Enter');
    await waitText(ned, '#current-room', 'lobby');
    assert.equal(await ned.evaluate(() => document.activeElement.id), 'message-input');
    // The account panel opens and closes with the keyboard.
    await ned.focus('#account-toggle');
    await ned.keyboard.press('Enter');
    await ned.locator('#nick-input').waitFor({ state: 'visible' });
    assert.equal(await ned.evaluate(() => document.activeElement.id), 'nick-input');
    await ned.keyboard.press('Escape');
    await ned.locator('#account-panel').waitFor({ state: 'hidden' });
    assert.equal(await ned.evaluate(() => document.activeElement.id), 'account-toggle');
    await ned.context().close();

    // On a phone: the drawer button opens the rooms, focus goes in, Escape brings it back.
    const ola = await openPage('ola', { viewport: PHONE });
    await ola.focus('#rooms-toggle');
    await ola.keyboard.press('Enter');
    await ola.locator('#room-list').waitFor({ state: 'visible' });
    assert.ok(await ola.evaluate(() => document.getElementById('sidebar').contains(document.activeElement)), 'focus is in the drawer');
    assert.equal(await ola.getAttribute('#rooms-toggle', 'aria-expanded'), 'true');
    await ola.keyboard.press('Escape');
    await ola.locator('#room-list').waitFor({ state: 'hidden' });
    assert.equal(await ola.evaluate(() => document.activeElement.id), 'rooms-toggle');
    await ola.context().close();
  });

  it('passes an accessibility audit (axe-core) at both sizes', async () => {
    const pat = await openPage('pat', { bypassCSP: true });
    await setNick(pat, 'pat');
    const quinn = await tcpUser('quinn');
    await say(quinn, 'quinn', 'pat: welcome, see https://example.org');
    quinn.send('/msg pat hi there');
    await pat.locator('#pm-list li[data-nick="quinn"]').waitFor();
    await audit(pat, 'desktop');
    await pat.click('#account-toggle');
    await audit(pat, 'desktop, account panel open');
    await pat.context().close();

    const ray = await openPage('ray', { viewport: PHONE, bypassCSP: true });
    await audit(ray, 'phone');
    await ray.click('#rooms-toggle');
    await ray.locator('#room-list').waitFor({ state: 'visible' });
    await audit(ray, 'phone, rooms drawer open');
    await ray.context().close();

    // The dark colours too (the page follows the system's preference).
    const sue = await openPage('sue', { bypassCSP: true, colorScheme: 'dark' });
    await setNick(sue, 'sue');
    await say(quinn, 'quinn', 'sue: and in the dark, https://example.org');
    await sue.locator('#messages li.msg.mention').waitFor();
    await audit(sue, 'desktop, dark');
    await sue.context().close();
  });

  it('registers, logs out and logs in with the form; a reconnect and a reload keep the login', async () => {
    const sam = await openPage('sam');
    const guest = await text(sam, '#my-nick');
    await sam.click('#account-toggle');
    await sam.fill('#login-nick', 'samantha');
    // Too short: said before anything changes (the nickname is not taken).
    await sam.fill('#login-password', 'short');
    await sam.click('#register-button');
    await sam.locator('#login-error[data-code="bad_password"]', { hasText: '8 characters' }).waitFor();
    assert.equal(await text(sam, '#my-nick'), guest);
    await sam.fill('#login-password', 'correct horse');
    await sam.click('#register-button');
    await waitText(sam, '#my-nick', 'samantha');
    await sam.locator('#account-state[data-state="account"]').waitFor();
    assert.equal(await sam.inputValue('#login-password'), '', 'the password is not kept in the form');
    const stored = await sam.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
    assert.ok(!stored.includes('correct horse'), 'the password is not stored');

    await sam.click('#account-toggle');
    await sam.click('#logout-button');
    await sam.locator('#account-state[data-state="guest"]').waitFor();
    await sam.locator('#login-form').waitFor({ state: 'visible' });
    // A wrong password: said beside the form, in plain words.
    await sam.fill('#login-nick', 'samantha');
    await sam.fill('#login-password', 'wrong horse');
    await sam.click('#login-button');
    await sam.locator('#login-error[data-code="invalid_credentials"]', { hasText: 'Wrong nickname or password.' }).waitFor();
    await sam.fill('#login-password', 'correct horse');
    await sam.click('#login-button');
    await sam.locator('#account-state[data-state="account"]').waitFor();
    await waitText(sam, '#my-nick', 'samantha');

    const session = await sam.evaluate(() => sessionStorage.getItem('hubbub.session'));
    assert.ok(session, 'the login answer carried a session token, kept for the tab');
    assert.ok(!session.includes('correct horse'));
    const tom = await tcpUser('tom');
    tom.send('/msg samantha before the reload');
    await sam.locator('#pm-list li[data-nick="tom"]').waitFor();
    await sam.reload();
    await sam.locator('#conn-status[data-state="connected"]').waitFor();
    await waitText(sam, '#my-nick', 'samantha');
    await sam.locator('#account-state[data-state="account"]').waitFor();
    // The private conversation (the server keeps no history of them) is back too.
    await sam.click('#pm-list li[data-nick="tom"] button.entry');
    await sam.locator('#messages li.msg[data-kind="private"][data-from="tom"]', { hasText: 'before the reload' }).waitFor();
    // A lost connection too: the new one is logged in by the token.
    const connects = await sam.evaluate(() => window.hubbub.state.connects);
    breaking.add('sam');
    await sam.evaluate(() => window.hubbub.socket.io.engine.close());
    await until(() => sam.evaluate((n) => window.hubbub.state.connects > n && window.hubbub.socket.connected, connects),
      { what: 'a reconnect' });
    await sam.locator('#messages li.msg[data-kind="notice"]', { hasText: 'Reconnected.' }).last().waitFor();
    // Said calmly, without the transport's words for why.
    const said = await sam.$$eval('#messages li.msg .text', (els) => els.map((e) => e.textContent).join('\n'));
    assert.match(said, /Connection lost\. Reconnecting…/);
    assert.doesNotMatch(said, /transport|ping timeout|io (server|client) disconnect/i);
    assert.equal(await text(sam, '#my-nick'), 'samantha');
    assert.equal(await sam.getAttribute('#account-state', 'data-state'), 'account');

    // Logging out revokes it: after a reload the page is a guest again.
    await sam.click('#account-toggle');
    await sam.click('#logout-button');
    await sam.locator('#account-state[data-state="guest"]').waitFor();
    assert.equal(await sam.evaluate(() => sessionStorage.getItem('hubbub.session')), null);
    await sam.reload();
    await sam.locator('#conn-status[data-state="connected"]').waitFor();
    assert.match(await text(sam, '#my-nick'), /^guest-\d+$/);
    assert.equal(await sam.locator('#pm-list li').count(), 0, 'logging out forgot the private conversations');

    // A revoked token presented again is refused: dropped, and the form says why.
    await sam.evaluate((s) => sessionStorage.setItem('hubbub.session', s), session);
    await sam.reload();
    await sam.locator('#login-error[data-code="invalid_session"]', { hasText: 'Your login has expired. Log in again.' }).waitFor();
    await sam.locator('#login-form').waitFor({ state: 'visible' });
    await sam.locator('#conn-status[data-state="connected"]').waitFor();
    assert.match(await text(sam, '#my-nick'), /^guest-\d+$/);
    assert.equal(await sam.evaluate(() => sessionStorage.getItem('hubbub.session')), null);
    await sam.context().close();
  });

  it('a page opened with #token= signs in without a form, and forgets the token from the address', async () => {
    const now = Math.floor(Date.now() / 1000);
    const ursula = await tcpUser('ursula', 'news');
    await say(ursula, 'ursula', 'news before tess came');
    const token = jwt({ sub: 'user-42', name: 'tess', rooms: ['news'], exp: now + 600 });
    const tess = await openPage('tess', { url: '/#token=' + token });
    await waitText(tess, '#my-nick', 'tess');
    // The token's rooms, which the server entered at connect, are the page's too.
    await waitText(tess, '#current-room', 'news');
    await tess.locator('#room-list li.joined[data-room="news"]').waitFor();
    await tess.locator('#messages li.msg[data-from="ursula"]', { hasText: 'news before tess came' }).waitFor();
    await ursula.waitFor('tess has joined us');
    await say(ursula, 'ursula', 'welcome tess');
    await tess.locator('#messages li.msg.mention[data-from="ursula"]', { hasText: 'welcome tess' }).waitFor();
    await tess.locator('#account-state[data-state="token"]').waitFor();
    assert.equal(await tess.evaluate(() => location.hash), '', 'the token is gone from the address');
    assert.equal(await tess.evaluate((tail) => location.href.includes(tail), token.slice(-20)), false);
    await tess.click('#account-toggle');
    assert.ok(await tess.locator('#login-form').isHidden(), 'no login form');
    assert.ok(await tess.locator('#nick-form').isHidden(), 'no nickname form');
    await tess.locator('#embedded-note').waitFor({ state: 'visible' });
    await tess.context().close();

    // An expired token: refused by the server, and the page says so in words.
    const expired = jwt({ sub: 'user-43', name: 'old', exp: now - 60 });
    const context = await browser.newContext({ viewport: DESKTOP });
    const late = await context.newPage();
    await late.goto(server.httpUrl + '/#token=' + expired);
    await late.locator('#composer-error[data-code="invalid_token"]', { hasText: 'sign-in from the site you came from was refused' }).waitFor();
    assert.equal(await late.getAttribute('#conn-status', 'data-state'), 'disconnected');
    await context.close();
  });

  it('embedded in a host application\'s frame, renews its token through the parent', async () => {
    const now = Math.floor(Date.now() / 1000);
    // Expires in 20 s: the server warns at once (30 s before), the page asks its parent.
    const short = jwt({ sub: 'user-7', name: 'uma', exp: now + 20 });
    const renewedExp = now + 900;
    const renewed = jwt({ sub: 'user-7', name: 'uma', exp: renewedExp });
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (err) => problems.push(`host: ${err}`));
    await page.route(`${HOST}/**`, (route) => route.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><title>host</title><iframe id="chat" title="chat" width="900" height="600"
        src="${server.httpUrl}/#token=${short}"></iframe><script>
        window.asked = 0;
        window.addEventListener('message', (ev) => {
          const frame = document.getElementById('chat').contentWindow;
          if (ev.source !== frame || !ev.data || ev.data.type !== 'hubbub:token-expiring') return;
          window.asked += 1;
          frame.postMessage({ type: 'hubbub:token', token: ${JSON.stringify(renewed)} }, '*');
        });
      </script>`,
    }));
    await page.goto(`${HOST}/app`);
    const frame = page.frameLocator('#chat');
    await frame.locator('#conn-status[data-state="connected"]').waitFor();
    await frame.locator('#my-nick', { hasText: 'uma' }).waitFor();
    await until(() => page.evaluate(() => window.asked >= 1), { what: 'the frame to ask its parent for a token' });
    const chat = page.frames().find((f) => f.url().startsWith(server.httpUrl));
    await until(() => chat.evaluate((exp) => window.hubbub.state.tokenExp === exp, renewedExp),
      { what: 'the server to accept the renewed token' });
    // A token posted by anyone but the parent (here: the frame itself) is ignored.
    await chat.evaluate(() => window.postMessage({ type: 'hubbub:token', token: 'not-from-the-parent' }, '*'));
    await chat.waitForTimeout(300);
    assert.equal(await chat.evaluate(() => window.hubbub.state.tokenExp), renewedExp);
    await context.close();
  });

  it('looks right at both sizes (screenshots)', async () => {
    const vic = await openPage('vic');
    await vic.click('#account-toggle');
    await vic.fill('#login-nick', 'vic');
    await vic.fill('#login-password', 'a long passphrase');
    await vic.click('#register-button');
    await vic.locator('#account-state[data-state="account"]').waitFor();
    // vic, logged in, creates #design, so owns it and sets its topic.
    await send(vic, '/join design');
    await waitText(vic, '#current-room', 'design');
    await send(vic, '/topic Release 2.0 — checklist at https://example.com/checklist');
    await vic.locator('#topic', { hasText: 'Release 2.0' }).waitFor();
    const wes = await tcpUser('wes', 'design');
    const zoe = await tcpUser('zoe', 'design');
    await vic.locator('#member-list li[data-nick="zoe"] button.mod-toggle').waitFor();
    await say(wes, 'wes', 'Morning! The new drawers work on my phone.');
    await say(wes, 'wes', 'Notes are at https://example.com/notes');
    await say(zoe, 'zoe', 'vic, can you check the contrast?');
    await send(vic, 'On it — the audit is clean.');
    await vic.locator('#messages li.msg.mine').waitFor();
    await send(vic, '/join random');
    await waitText(vic, '#current-room', 'random');
    await showRoom(vic, 'design');
    const xia = await tcpUser('xia', 'random');
    await say(xia, 'xia', 'vic: lunch at noon?');
    wes.send('/msg vic the slides are ready');
    await vic.locator('#pm-list li[data-nick="wes"][data-unread="1"]').waitFor();
    await vic.locator('#room-list li[data-room="random"][data-mentions="1"]').waitFor();
    mkdirSync(ARTIFACTS, { recursive: true });
    const desktop = path.join(ARTIFACTS, 'desktop.png');
    await vic.screenshot({ path: desktop });

    const phone = await openPage('phone', { viewport: PHONE });
    await setNick(phone, 'yan');
    await send(phone, '/join design');
    await waitText(phone, '#current-room', 'design');
    await say(wes, 'wes', 'yan, welcome aboard!');
    await say(zoe, 'zoe', 'Hi yan, the room list is behind ☰ at the top left.');
    await phone.locator('#messages li.msg[data-from="zoe"]', { hasText: 'behind' }).waitFor();
    await phone.evaluate(() => document.activeElement.blur());
    const phoneShot = path.join(ARTIFACTS, 'phone.png');
    await phone.screenshot({ path: phoneShot });
    // The README's pictures are refreshed on request only, so a test run
    // leaves the work tree as it was.
    if (process.env.UPDATE_SCREENSHOT === '1') {
      mkdirSync(path.join(REPO_ROOT, 'docs/screenshots'), { recursive: true });
      copyFileSync(desktop, path.join(REPO_ROOT, 'docs/screenshots/desktop.png'));
      copyFileSync(phoneShot, path.join(REPO_ROOT, 'docs/screenshots/phone.png'));
    }
    await vic.context().close();
    await phone.context().close();
  });

  it('had no console or page errors', () => {
    assert.deepEqual(problems, []);
  });
});
