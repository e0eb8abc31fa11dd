// hubbub with the official socket.io-client (v4) and a TCP line client in the
// same rooms: WebSocket-only, and HTTP long-polling upgraded to WebSocket.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { io } from 'socket.io-client';
import { EventLog, LineClient, restartServer, sleep, startServer, until } from './helpers.mjs';

const ACK_TIMEOUT = 5000;

const MODES = [
  { name: 'websocket only', opts: { transports: ['websocket'] }, expectFirst: 'websocket' },
  { name: 'polling with upgrade', opts: {}, expectFirst: 'polling' },
];

for (const mode of MODES) {
  describe(`socket.io-client, ${mode.name}`, { timeout: 60000 }, () => {
    let server, tcp, socket, log, tcpAddr, guest, firstTransport, nicknameReadyArgs;
    const ack = (event, ...args) => socket.timeout(ACK_TIMEOUT).emitWithAck(event, ...args);

    before(async () => {
      server = await startServer();
      tcp = await LineClient.connect(server.tcp);
      const you = await tcp.waitFor(/^You are /);
      tcpAddr = you.slice('You are '.length);
      assert.match(tcpAddr, /^127\.0\.0\.1:\d+$/);
      tcp.send('/nick tina');
      await tcp.waitFor(`${tcpAddr} is now known as tina`);
    });

    after(async () => {
      socket?.disconnect();
      tcp?.close();
      await server?.stop();
    });

    it('connects and gets `welcome` first, in the default room', async () => {
      socket = io(server.httpUrl, { ...mode.opts, autoConnect: false, reconnection: false, forceNew: true });
      log = new EventLog(socket);
      socket.io.on('open', () => { firstTransport = socket.io.engine.transport.name; });
      const connected = new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      const since = tcp.mark();
      socket.connect();
      await connected;
      assert.equal(firstTransport, mode.expectFirst);
      const welcome = await log.waitFor('welcome');
      assert.equal(log.events[0].event, 'welcome', 'welcome is the first event');
      assert.equal(welcome.room, 'lobby');
      assert.match(welcome.nick, /^guest-\d+$/);
      guest = welcome.nick;
      await tcp.waitFor(`${guest} has joined us`, { since });
    });

    it('uses the expected transport (upgrades to websocket when polling)', async () => {
      await until(() => socket.io.engine.transport.name === 'websocket', {
        timeout: 10000, what: 'transport to become websocket',
      });
      assert.equal(socket.io.engine.transport.name, 'websocket');
    });

    it('`set nickname` → `nickname ready` and ack {ok:{nick}}; TCP sees the rename', async () => {
      const since = log.mark();
      const tsince = tcp.mark();
      const res = await ack('set nickname', 'sam');
      assert.deepEqual(res, { ok: { nick: 'sam' } });
      await log.waitFor('nickname ready', () => true, { since });
      await tcp.waitFor(`${guest} is now known as sam`, { since: tsince });
      nicknameReadyArgs = log.events.find((e, i) => i >= since && e.event === 'nickname ready').args;
    });

    it('`nickname ready` carries no arguments (PROTOCOL.md, seed compatibility)', () => {
      assert.deepEqual(nicknameReadyArgs, []);
    });

    it('seed `chat` {message} → `notice` {message:"sam:hi"} to the socket, `sam: hi` to TCP', async () => {
      const since = log.mark();
      const tsince = tcp.mark();
      socket.emit('chat', { message: 'hi' });
      const notice = await log.waitFor('notice', (n) => n?.message === 'sam:hi', { since });
      assert.deepEqual(notice, { message: 'sam:hi' });
      const msg = await log.waitFor('message', (m) => m?.text === 'hi', { since });
      assert.equal(msg.from, 'sam');
      assert.equal(msg.room, 'lobby');
      await tcp.waitFor('sam: hi', { since: tsince });
    });

    it("a TCP user's line reaches the socket as `message` and `notice`", async () => {
      const since = log.mark();
      tcp.send('hello from tcp');
      const msg = await log.waitFor('message', (m) => m?.text === 'hello from tcp', { since });
      assert.equal(msg.from, 'tina');
      assert.equal(msg.room, 'lobby');
      assert.equal(typeof msg.id, 'number');
      assert.equal(typeof msg.ts, 'number');
      assert.ok(Math.abs(msg.ts - Date.now()) < 60000, `ts ${msg.ts} is milliseconds since the epoch`);
      const notice = await log.waitFor('notice', (n) => n?.message === 'tina:hello from tcp', { since });
      assert.deepEqual(notice, { message: 'tina:hello from tcp' });
    });

    it('`message` {room, text} with ack → {ok:{id, room, ts}}; ids increase; TCP sees it', async () => {
      const since = log.mark();
      const tsince = tcp.mark();
      const res = await ack('message', { room: 'lobby', text: 'via message' });
      assert.equal(res.ok.room, 'lobby');
      assert.equal(typeof res.ok.id, 'number');
      assert.equal(typeof res.ok.ts, 'number');
      const echo = await log.waitFor('message', (m) => m?.text === 'via message', { since });
      assert.equal(echo.id, res.ok.id);
      assert.equal(echo.from, 'sam');
      const earlier = log.all('message').filter((m) => m.room === 'lobby' && m !== echo);
      assert.ok(earlier.every((m) => m.id < echo.id), 'ids increase within the room');
      await tcp.waitFor('sam: via message', { since: tsince });
    });

    it('`join` with ack returns the members; TCP user sees the join', async () => {
      const tsince = tcp.mark();
      tcp.send('/join games');
      await tcp.waitFor(/^\* you are now in games\b/, { since: tsince });
      const since = log.mark();
      const res = await ack('join', { room: 'games' });
      assert.equal(res.ok.room, 'games');
      assert.deepEqual([...res.ok.members].sort(), ['sam', 'tina']);
      await tcp.waitFor('sam has joined us', { since: tsince });

      const members = await ack('members', { room: 'games' });
      assert.deepEqual([...members.ok.members].sort(), ['sam', 'tina']);
      const rooms = await ack('rooms');
      assert.ok(Array.isArray(rooms.ok));
      assert.deepEqual(rooms.ok.find((r) => r.name === 'games'), { name: 'games', members: 2 });

      // Messages in the new room go both ways.
      const tsince2 = tcp.mark();
      await ack('message', { room: 'games', text: 'in games' });
      await tcp.waitFor('sam: in games', { since: tsince2 });
      tcp.send('tcp in games');
      const m = await log.waitFor('message', (x) => x?.text === 'tcp in games', { since });
      assert.deepEqual([m.room, m.from], ['games', 'tina']);
    });

    it('`private` reaches the TCP user as `*sam* TEXT`, and `/msg` reaches the socket', async () => {
      const tsince = tcp.mark();
      const res = await ack('private', { to: 'tina', text: 'psst, tina' });
      assert.equal(res.ok.to, 'tina');
      assert.equal(typeof res.ok.ts, 'number');
      await tcp.waitFor('*sam* psst, tina', { since: tsince });

      const since = log.mark();
      tcp.send('/msg sam hi back');
      await tcp.waitFor('-> *sam* hi back', { since: tsince });
      const p = await log.waitFor('private', () => true, { since });
      assert.deepEqual([p.from, p.to, p.text], ['tina', 'sam', 'hi back']);
    });

    it('errors: ack {error:{code}} with a callback, `error` event without', async () => {
      let res = await ack('set nickname', 'TINA');
      assert.equal(res.error?.code, 'nick_in_use', JSON.stringify(res));
      assert.equal(typeof res.error.message, 'string');

      const since = log.mark();
      socket.emit('set nickname', 'tina');
      const err = await log.waitFor('error', () => true, { since });
      assert.equal(err.code, 'nick_in_use');

      res = await ack('message', { room: 'nowhere', text: 'x' });
      assert.equal(res.error?.code, 'not_in_room', JSON.stringify(res));
      res = await ack('join', { room: 'bad room!' });
      assert.equal(res.error?.code, 'invalid_room', JSON.stringify(res));
      res = await ack('private', { to: 'nobody-here', text: 'x' });
      assert.equal(res.error?.code, 'no_such_nick', JSON.stringify(res));

      // Nothing changed: same nickname, still connected and in the room.
      const members = await ack('members', 'games');
      assert.deepEqual([...members.ok.members].sort(), ['sam', 'tina']);
    });

    it('`join` of a room the socket is already in makes it current again (seed `chat` goes there)', async () => {
      // Not spelled out in PROTOCOL.md; the hub documents it (Session::enter): only makes it current.
      let res = await ack('join', 'lobby');
      assert.deepEqual(res.ok?.room, 'lobby', JSON.stringify(res));
      const tsince = tcp.mark();
      const since = log.mark();
      socket.emit('chat', { message: 'to lobby' });
      const m1 = await log.waitFor('message', (m) => m?.text === 'to lobby', { since });
      assert.equal(m1.room, 'lobby');
      res = await ack('join', { room: 'games' });
      assert.equal(res.ok?.room, 'games', JSON.stringify(res));
      assert.deepEqual([...res.ok.members].sort(), ['sam', 'tina']);
      socket.emit('chat', { message: 'to games' });
      const m2 = await log.waitFor('message', (m) => m?.text === 'to games', { since });
      assert.equal(m2.room, 'games');
      await tcp.waitFor('sam: to games', { since: tsince });
      assert.ok(!tcp.lines.slice(tsince).includes('sam: to lobby'), 'TCP user (in games) does not get lobby chat');
    });

    it('`leave` with ack; TCP sees `sam has left`; the TCP user leaving is a `left` event', async () => {
      const tsince = tcp.mark();
      const res = await ack('leave', { room: 'games' });
      assert.deepEqual(res, { ok: { room: 'games' } });
      await tcp.waitFor('sam has left', { since: tsince });

      const back = await ack('join', 'games');
      assert.equal(back.ok.room, 'games');
      const since = log.mark();
      tcp.send('/quit gotta go');
      await tcp.waitFor('* bye', { since: tsince });
      const left = await log.waitFor('left', (l) => l?.nick === 'tina', { since });
      assert.equal(left.room, 'games');
    });
  });
}

// A server restart is not the end: the official client takes a transport
// close as "reconnect", but a Socket.IO DISCONNECT as final, so at shutdown
// hubbub only closes the transport (after `closing`).
for (const mode of MODES) {
  describe(`socket.io-client across a server restart, ${mode.name}`, { timeout: 60000 }, () => {
    let server, socket;

    after(async () => {
      socket?.disconnect();
      await server?.stop();
    });

    it('reconnects by itself and gets a new `welcome`, with `vocabulary` kept', async () => {
      server = await startServer();
      socket = io(server.httpUrl, {
        ...mode.opts,
        forceNew: true,
        auth: { vocabulary: 'hubbub' },
        reconnectionDelay: 100,
        reconnectionDelayMax: 500,
      });
      const log = new EventLog(socket);
      await log.waitFor('welcome');
      const first = await LineClient.connect(server.tcp);
      await first.waitFor(/^You are /);
      first.send('before the restart');
      const seen = await log.waitFor('message', (m) => m?.text === 'before the restart');
      first.close();
      const reasons = [];
      socket.on('disconnect', (reason) => reasons.push(reason));
      const closing = log.waitFor('closing');
      // Slow to come back, so that the new server has a message first.
      socket.io.reconnectionDelay(1500);
      socket.io.reconnectionDelayMax(1500);
      server = await restartServer(server);
      assert.match((await closing).reason, /shutting down/);
      const writer = await LineClient.connect(server.tcp);
      await writer.waitFor(/^You are /);
      writer.send('while you were away');
      await writer.waitFor(/: while you were away$/);
      const since = log.mark();
      await log.waitFor('welcome', () => true, { since, timeout: 15000 });
      assert.ok(socket.connected, 'connected again');
      assert.notEqual(reasons[0], 'io server disconnect', `disconnect reason ${reasons[0]}`);
      // The lobby's recent messages come with the welcome, as on any connect.
      await log.waitFor('history', (h) => h?.room === 'lobby', { since });
      // Resuming from the last id seen brings exactly what was missed.
      const resumed = log.mark();
      const joined = await socket.timeout(5000).emitWithAck('join', { room: 'lobby', since: seen.id });
      assert.equal(joined.ok?.last_id, seen.id + 1, JSON.stringify(joined));
      const history = await log.waitFor('history', (h) => h?.room === 'lobby', { since: resumed });
      assert.deepEqual(history.messages.map((m) => [m.id, m.text]), [[seen.id + 1, 'while you were away']]);
      writer.close();
      // Still one packet per room message after the reconnect.
      const tcp = await LineClient.connect(server.tcp);
      await tcp.waitFor(/^You are /);
      const mark = log.mark();
      tcp.send('after the restart');
      await log.waitFor('message', (m) => m?.text === 'after the restart', { since: mark });
      await sleep(200);
      assert.ok(
        !log.events.slice(mark).some((e) => e.event === 'notice'),
        'the hubbub vocabulary gets no `notice`',
      );
      tcp.close();
    });
  });
}
