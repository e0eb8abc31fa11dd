// hubbub web chat: the entry point. Wires the socket's events and the user's
// actions to the state (state.js), the logs (chat.js) and the view (view.js).
// Protocol: docs/PROTOCOL.md, section "Socket.IO". No framework, no CDN.
//
// Stable hooks for tests (ids; most have a data-testid of the same name):
//   #conn-status    data-state = "connecting" | "connected" | "disconnected"
//   #account-toggle opens #account-panel: #nick-form (#nick-input, #nick-button, #nick-error),
//                   #login-form (#login-nick, #login-password, #login-button, #register-button,
//                   #login-error), #logged-in (#logout-button), #embedded-note, #notify-button
//   #my-nick        the nickname the server knows us by; #account-state data-state =
//                   "guest" | "account" | "token"
//   #room-list      li[data-room=NAME][data-members=N][data-unread=U][data-mentions=M], classes
//                   .joined, .current, .unread, .mentioned; its button shows the room (joins it
//                   if need be); badges .unread-count and .mention-count
//   #pm-list        li[data-nick=NICK][data-unread][data-mentions]: private conversations;
//                   button.entry shows it, button.close closes it
//   #join-input, #join-button, #join-error     join or create a room (`join`)
//   #current-room   name of the conversation on screen (#current-kind: "#" room, "@" private);
//                   #leave-button leaves the room / closes the conversation
//   #member-list    li[data-nick=NICK] for the current room (button: open a private
//                   conversation); #member-count is the count
//   #messages       li.msg with data-kind = "message" | "action" | "notice" | "private" | "error",
//                   data-room, data-from; children time.time (HH:MM local), .from, .text (links
//                   are a[rel="noopener noreferrer"]). Classes .mine, .mention, .cont (continues
//                   the previous message's group), .history (data-history="1"). data-dir = "in" |
//                   "out" on privates. Room messages carry data-id (increasing, each at most once).
//                   Separators: li.day[data-kind="day"], li.unread-marker[data-kind="marker"]
//                   ("New messages": where you left off), li.divider[data-kind="divider"]
//                   ("earlier messages"); li.load-earlier holds #load-earlier (`history` {before}).
//   #typing         "X is typing…" for the current room
//   #message-input, #send-button, #composer-error   the composer (composer.js: /commands,
//                   Tab completion, Up/Down history)
//   #rooms-toggle, #members-toggle   open the drawers on narrow screens (body[data-drawer])
//   window.hubbub   {socket, state} for debugging
import { askParent, authPayload, changePassword, clearError, embedded, login, logout,
  readToken, refused, register, renderAccount, setupAccount, showError, tokenRooms, welcomed } from './account.js';
import { addEntry, loadEarlier, markSeen, messageEntry, onHistory, privateEntry, seeCurrent, syncRoom } from './chat.js';
import { clearComposerError, setupComposer, showComposerError } from './composer.js';
import { moderationCommand } from './moderation.js';
import { keepPrivates, restorePrivates } from './keep.js';
import { closeDrawers, setupDrawers } from './layout.js';
import { connect, request } from './net.js';
import { setupNotify } from './notify.js';
import { currentConv, findJoined, ignored, isCurrent, isJoined, privateConv, roomConv, roomId, state } from './state.js';
import { $, roomKey, same } from './util.js';
import { el, renderAll, renderHeader, renderMembers, renderRooms, renderTitle, renderTyping, setStatus } from './view.js';

const TYPING_TTL = 3000;      // how long a "typing" start is shown without a refresh
const TYPING_IDLE = 2000;     // we send typing:false after this long without a keystroke
const TYPING_REFRESH = 1500;  // while typing, repeat typing:true this often
const REFRESH_EVERY = 5000;   // periodic rooms/members refresh

readToken();
const socket = connect(authPayload);
window.hubbub = { socket, state };

// ---------- conversations ----------

function show(conv, { focus = true } = {}) {
  stopTyping();
  const prev = currentConv();
  if (prev && prev !== conv) prev.marker = null;
  state.current = conv ? conv.key : null;
  if (conv && document.visibilityState === 'visible') markSeen(conv);
  renderAll();
  if (conv && conv.kind === 'room') { refreshMembers(conv); probeOperator(conv); }
  closeDrawers();
  clearComposerError();
  if (focus && !el.input.disabled && !matchMedia('(pointer: coarse)').matches) el.input.focus();
}

function addJoined(room) { if (!isJoined(room)) state.joined.push(room); }

function removeJoined(room) { state.joined = state.joined.filter((r) => !same(r, room)); }

function notice(text, conv) { addEntry(conv || currentConv(), { kind: 'notice', text }); }

function refreshRooms() {
  if (!socket.connected) return Promise.resolve();
  return request('rooms').then((rooms) => {
    state.rooms = Array.isArray(rooms) ? rooms : [];
    renderRooms();
  }, (err) => console.warn('rooms failed', err));
}

function setMembers(conv, res) {
  conv.members = res.members || [];
  conv.loggedIn = res.logged_in || [];
  // A big room lists its first page only; `count` is everyone.
  conv.count = typeof res.count === 'number' ? res.count : conv.members.length;
  conv.partial = conv.count > conv.members.length;
}

function refreshMembers(conv) {
  conv = conv || currentConv();
  if (!socket.connected || !conv || conv.kind !== 'room' || !isJoined(conv.name)) return Promise.resolve();
  return request('members', { room: conv.name }).then((res) => {
    setMembers(conv, res);
    if (isCurrent(conv)) renderMembers();
  }, (err) => console.warn('members failed', err));
}

function refresh() { refreshRooms(); refreshMembers(); }

// `join` {room, since: lastId} when we have seen the room before (after a reconnect,
// or joining again after leaving it), so that what we missed is shown too.
function joinRequest(name) {
  const known = state.convs.get(roomId(name));
  const since = known ? known.lastId : null, epoch = known ? known.epoch : 0;
  const payload = { room: name };
  if (since !== null) payload.since = since;
  return request('join', payload).then((res) => ({ res, since, epoch }));
}

function catchUp(j) {
  return syncRoom(j.res.room, j.since, j.epoch, j.res.last_id).catch((err) => {
    notice('Could not fetch the messages you missed in #' + j.res.room + '.', roomConv(j.res.room));
    console.warn('catch-up failed', err);
  });
}

function join(name) {
  const existing = findJoined(name);
  if (existing) { show(roomConv(existing)); return Promise.resolve(); }
  return joinRequest(name).then((j) => {
    const conv = roomConv(j.res.room);
    addJoined(j.res.room);
    setMembers(conv, j.res);
    addEntry(conv, { kind: 'notice', text: 'You joined #' + j.res.room });
    show(conv);
    refreshRooms();
    catchUp(j);
    return j.res;
  });
}

function leave(room) {
  const name = findJoined(room);
  if (!name) return Promise.reject({ code: 'not_in_room', message: 'not in ' + room });
  const conv = roomConv(name);
  if (isCurrent(conv)) stopTyping();
  return request('leave', { room: name }).then(() => {
    removeJoined(name);
    conv.members = [];
    conv.typers = {};
    conv.unread = conv.mentions = 0;
    addEntry(conv, { kind: 'notice', text: 'You left #' + name });
    if (isCurrent(conv)) show(state.joined.length ? roomConv(state.joined[state.joined.length - 1]) : null);
    else renderRooms();
    refreshRooms();
  });
}

function openPrivate(nick, focus) {
  const conv = privateConv(nick);
  show(conv, { focus });
  return conv;
}

function closePrivate(key) {
  state.convs.delete(key);
  keepPrivates();
  if (state.current === key) show(state.joined.length ? roomConv(state.joined[state.joined.length - 1]) : null);
  else renderRooms();
}

function setNick(nick) {
  return request('set nickname', nick).then((res) => {
    state.nick = res.nick;
    state.chosenNick = res.nick;
    // Renaming away from one's account logs out of it (docs/PROTOCOL.md).
    if (state.identity === 'account') state.identity = 'guest';
    renderAccount();
    renderMembers();
    refreshMembers();
  });
}

// ---------- sending ----------

function sendMessage(payload, raw) {
  if (!state.ready) {
    state.held.push({ kind: 'message', payload, raw });
    notice('Not connected: your message will be sent when the connection is back.', roomConv(payload.room));
    return Promise.resolve();
  }
  return request('message', payload);
}

function sendPrivate(to, text, open) {
  if (!state.ready) {
    state.held.push({ kind: 'private', to, text });
    notice('Not connected: your message to ' + to + ' will be sent when the connection is back.', privateConv(to));
    return Promise.resolve();
  }
  return request('private', { to, text }).then((res) => {
    const conv = privateConv((res && res.to) || to);
    addEntry(conv, privateEntry({ from: state.nick, to: conv.name, text, ts: res && res.ts }, 'out'));
    if (open && !isCurrent(conv)) show(conv);
    else renderRooms();
  });
}

// What was typed while away, in the order typed, now that the page is
// back in its rooms under its name.
function sendHeld() {
  state.ready = true;
  const held = state.held;
  state.held = [];
  for (const h of held) {
    const sent = h.kind === 'private' ? sendPrivate(h.to, h.text, false) : sendMessage(h.payload, h.raw);
    sent.catch((err) => showComposerError(err, h.to));
  }
}

// ---------- typing (outgoing) ----------

let typingRoom = null, typingSentAt = 0, typingIdleTimer = null;

function sendTyping(room, on) {
  // With an ack so a failure (e.g. racing a leave) is not shown as an `error` event.
  if (socket.connected && room && isJoined(room)) socket.emit('typing', { room, typing: on }, () => {});
}

function noteTyping() {
  const conv = currentConv();
  const v = el.input.value;
  if (!conv || conv.kind !== 'room' || !v || (v.charAt(0) === '/' && v.charAt(1) !== '/')) { stopTyping(); return; }
  const now = Date.now();
  if (typingRoom !== conv.name || now - typingSentAt > TYPING_REFRESH) {
    if (typingRoom && typingRoom !== conv.name) sendTyping(typingRoom, false);
    typingRoom = conv.name;
    typingSentAt = now;
    sendTyping(typingRoom, true);
  }
  clearTimeout(typingIdleTimer);
  typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE);
}

function stopTyping() {
  clearTimeout(typingIdleTimer);
  if (typingRoom) sendTyping(typingRoom, false);
  typingRoom = null;
  typingSentAt = 0;
}

// ---------- socket events ----------

socket.on('connect', () => {
  state.connects += 1;
  setStatus('connected', 'Connected');
  if (state.connects === 1) state.ready = true;
});

let retryTimer = null;
function retrySoon(ms) {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => { if (!socket.connected && !socket.active) socket.connect(); }, ms);
}

socket.on('disconnect', (reason) => {
  state.ready = false;
  setStatus('disconnected', 'Reconnecting…');
  // A restart closes only the transport, and socket.io-client reconnects
  // by itself. A Socket.IO DISCONNECT (flooding, too slow) is final for
  // it; the page still tries again shortly, as a person would.
  if (reason === 'io server disconnect') retrySoon(1000);
  typingRoom = null;
  for (const c of state.convs.values()) c.typers = {};
  renderTyping();
  if (state.current) notice('Connection lost. Reconnecting…');
});

socket.on('connect_error', (err) => {
  setStatus('disconnected', 'Reconnecting…');
  // socket.io-client retries transport failures by itself; a refusal by the
  // server (`socket.active` false) it does not.
  if (socket.active) return;
  if (refused(err)) {
    if (embedded()) {
      // The parent was asked for a new token; until it answers, say why nothing works.
      setStatus('disconnected', 'Waiting for the site to sign you in…');
      showComposerError({ code: (err.data && err.data.code) || 'invalid_token' });
    }
    return;
  }
  retrySoon(3000);
});

socket.on('welcome', (w) => {
  state.nick = w.nick;
  welcomed(w.nick);
  if (!state.defaultRoom) state.defaultRoom = w.room;
  if (state.connects <= 1 && state.joined.length === 0) {
    restorePrivates(w.nick);
    addJoined(w.room);
    state.current = roomId(w.room);
    addEntry(roomConv(w.room), { kind: 'notice', text: 'Welcome! You are ' + w.nick + ' in #' + w.room + '. Type /help for commands.' });
    renderAll();
    enterTokenRooms();
  } else if (state.connects > 1) {
    restore();
  } else {
    renderHeader();
  }
  refresh();
});

// The rooms of an application's token, which the server entered at connect:
// shown like rooms joined here, with their recent messages.
function enterTokenRooms() {
  for (const room of tokenRooms()) {
    joinRequest(room).then((j) => {
      const conv = roomConv(j.res.room);
      addJoined(j.res.room);
      setMembers(conv, j.res);
      if (state.current === roomId(state.defaultRoom)) show(conv, { focus: false });
      return request('history', { room: j.res.room, limit: 20 }).then((h) => {
        onHistory(h);
        return syncRoom(j.res.room, null, conv.epoch, j.res.last_id);
      });
    }).then(refreshRooms, (err) => console.warn('could not enter #' + room, err));
  }
}

// After a reconnect the server sees a new session: guest nick (or the account's, when a
// session token logged us in), default room only. Restore the chosen nickname and the
// set of rooms, and show what was missed: every room (the default room too, which the
// new session is already in) is joined with {room, since: lastId}, then syncRoom fills
// any gap. The server runs a socket's requests in order, so they are sent at once; the
// current room last, so that it is the server's current room too.
function restore() {
  const rooms = state.joined.slice().sort((a, b) =>
    (isCurrent(roomConv(a)) ? 1 : 0) - (isCurrent(roomConv(b)) ? 1 : 0));
  const steps = [];
  if (state.chosenNick && !same(state.chosenNick, state.nick || '')) {
    const wanted = state.chosenNick;
    steps.push(request('set nickname', wanted).then((res) => {
      state.nick = res.nick;
      renderHeader();
    }, (err) => {
      if (state.identity === 'account') { state.identity = 'guest'; renderAccount(); }
      notice('Could not take your nickname ' + wanted + ' back: ' + (err && err.code === 'nick_registered'
        ? 'it belongs to an account; log in to use it.' : 'it is taken.'));
    }));
  }
  for (const room of rooms) {
    steps.push(joinRequest(room).then((j) => {
      setMembers(roomConv(j.res.room), j.res);
      return catchUp(j);
    }, () => {
      removeJoined(room);
      notice('Could not join #' + room + ' again.', roomConv(room));
    }));
  }
  if (state.defaultRoom && !findJoined(state.defaultRoom)) {
    // We had left it: leave it again, ignoring what it sends until then.
    const key = roomKey(state.defaultRoom);
    state.ignore[key] = true;
    steps.push(request('leave', { room: state.defaultRoom }).catch(() => {}).then(() => { delete state.ignore[key]; }));
  }
  Promise.all(steps).then(() => {
    if (state.current) notice('Reconnected.');
    probeOperator(currentConv());
    renderAll();
    refresh();
    sendHeld();
  });
}

socket.on('message', (m) => {
  if (!m || !m.room || ignored(m.room)) return;
  const conv = roomConv(m.room);
  if (conv.typers[m.from]) { delete conv.typers[m.from]; renderTyping(); }
  addEntry(conv, messageEntry(m, false));
});

socket.on('history', onHistory);

socket.on('joined', (e) => {
  if (ignored(e.room)) return;
  const conv = roomConv(e.room);
  addEntry(conv, { kind: 'notice', text: e.nick + ' joined #' + e.room });
  if (!conv.members.some((n) => same(n, e.nick))) conv.members.push(e.nick);
  if (isCurrent(conv)) renderMembers();
  refreshRooms();
  refreshMembers(conv);
});

socket.on('left', (e) => {
  if (ignored(e.room)) return;
  const conv = roomConv(e.room);
  addEntry(conv, { kind: 'notice', text: e.nick + ' left #' + e.room + (e.reason ? ' (' + e.reason + ')' : '') });
  conv.members = conv.members.filter((n) => !same(n, e.nick));
  delete conv.typers[e.nick];
  if (isCurrent(conv)) { renderMembers(); renderTyping(); }
  refreshRooms();
  refreshMembers(conv);
});

// A big room's joins, leaves and renames come as one summary every few
// seconds. They update the member count only (a notice every 2 s would push
// the conversation out of the log, as Slack and Discord do not show joins
// in big channels either); the member list is fetched again later, at a
// random moment within 10 s, so that thousands of tabs do not all ask at once.
socket.on('presence', (e) => {
  if (ignored(e.room)) return;
  const conv = roomConv(e.room);
  conv.count = e.members;
  conv.partial = true;
  if (isCurrent(conv)) renderMembers();
  if (!conv.membersDue) {
    conv.membersDue = setTimeout(() => { conv.membersDue = null; refreshMembers(conv); }, Math.random() * 10000);
  }
});

socket.on('renamed', (e) => {
  if (ignored(e.room)) return;
  if (state.nick && same(e.old, state.nick)) { state.nick = e.new; renderAccount(); }
  const conv = roomConv(e.room);
  addEntry(conv, { kind: 'notice', text: e.old + ' is now known as ' + e.new });
  conv.members = conv.members.map((n) => (same(n, e.old) ? e.new : n));
  // A private conversation follows its peer to the new name.
  const pm = state.convs.get('p:' + e.old.toLowerCase());
  if (pm && !state.convs.has('p:' + e.new.toLowerCase())) {
    state.convs.delete(pm.key);
    pm.key = 'p:' + e.new.toLowerCase();
    pm.name = e.new;
    state.convs.set(pm.key, pm);
    if (state.current === 'p:' + e.old.toLowerCase()) state.current = pm.key;
    addEntry(pm, { kind: 'notice', text: e.old + ' is now known as ' + e.new });
    renderHeader();
  }
  if (isCurrent(conv)) renderMembers();
  renderRooms();
  refreshMembers(conv);
});

socket.on('private', (p) => {
  if (!p || !p.from) return;
  // This session's own sends are shown from their ack, and the server does
  // not echo them here; one from our nickname to someone else was sent from
  // another device logged in to the same account: ours too, in that conversation.
  const fromUs = state.nick && same(p.from, state.nick) && !same(p.to, state.nick);
  const conv = privateConv(fromUs ? p.to : p.from);
  addEntry(conv, privateEntry(p, fromUs ? 'out' : 'in'));
  renderRooms();
});

// Moderation (docs/PROTOCOL.md): a room's topic, someone removed, modes changed.
socket.on('topic', (e) => {
  if (!e || !e.room || ignored(e.room)) return;
  const conv = roomConv(e.room);
  conv.topic = e.topic || null;
  if (e.changed) notice(e.topic ? e.by + ' set the topic: ' + e.topic : e.by + ' cleared the topic', conv);
  if (isCurrent(conv)) renderHeader();
});

socket.on('kicked', (e) => {
  if (!e || !e.room || ignored(e.room)) return;
  const conv = roomConv(e.room);
  const why = (e.banned ? ' and banned' : '') + ' by ' + e.by + (e.reason ? ': ' + e.reason : '');
  conv.members = conv.members.filter((n) => !same(n, e.nick));
  if (state.nick && same(e.nick, state.nick)) {
    removeJoined(e.room);
    conv.typers = {};
    addEntry(conv, { kind: 'error', text: 'You were removed from #' + e.room + why + '.' });
    if (isCurrent(conv)) { renderHeader(); renderMembers(); }
    renderRooms();
    refreshRooms();
    return;
  }
  addEntry(conv, { kind: 'notice', text: e.nick + ' was removed from #' + e.room + why });
  if (isCurrent(conv)) renderMembers();
  refreshRooms();
});

socket.on('mode', (e) => {
  if (!e || !e.room || ignored(e.room)) return;
  const conv = roomConv(e.room);
  notice(e.by + ' set ' + e.change + ' on #' + e.room, conv);
  if (/^[+-]o /.test(e.change)) probeOperator(conv);
});

socket.on('typing', (e) => {
  if (!e || !e.room || (state.nick && same(e.nick, state.nick))) return;
  const conv = roomConv(e.room);
  if (e.typing) conv.typers[e.nick] = Date.now() + TYPING_TTL;
  else delete conv.typers[e.nick];
  renderTyping();
});

socket.on('error', (err) => {
  if (err && err.code === 'token_expiring') { askParent(); return; }
  showComposerError(err);
});

socket.on('info', (e) => { if (e && e.text) notice(e.text); });

socket.on('closing', (e) => {
  notice('The server closed the connection' + (e && e.reason ? ': ' + e.reason + '.' : '.'));
});

// ---------- the user's actions ----------

const actions = {
  join, leave, setNick, sendMessage, stopTyping, notice,
  sendPrivate,
  openPrivate,
  who: (conv) => request('members', { room: conv.name }).then((res) => {
    setMembers(conv, res);
    const names = (res.members || []).map((n) => ((res.logged_in || []).some((l) => same(l, n)) ? n + ' (logged in)' : n));
    const count = typeof res.count === 'number' ? res.count : names.length;
    const more = res.next ? ', ' + names.length + ' listed' : '';
    notice('#' + res.room + ' (' + count + (count === 1 ? ' member' : ' members') + more + '): ' + names.join(', '));
    renderMembers();
  }),
  listRooms: () => request('rooms').then((rooms) => {
    state.rooms = rooms || [];
    renderRooms();
    notice(rooms.length + (rooms.length === 1 ? ' room: ' : ' rooms: ') + rooms.map((r) => '#' + r.name + ' (' + r.members + ')').join(', '));
  }),
  whois: (nick) => request('whois', { nick }).then((w) => {
    notice(w.nick + ': ' + (w.registered ? 'registered' : 'not registered') + '; ' + (w.here ? 'here' : 'not here') + (w.logged_in ? ', logged in' : ''));
  }),
  login: (nick, password) => login(nick, password).then((res) => { notice('You are logged in as ' + res.nick + '.'); refresh(); }),
  register: (password) => register(null, password).then((res) => { notice('You registered ' + res.nick + ' and are logged in.'); refresh(); }),
  logout: () => logout().then(() => {
    notice('You are logged out. You are ' + state.nick + ' until you change it.');
    probeOperator(currentConv());
  }),
  changePassword: (old, password) => changePassword(old, password).then(() => notice('Your password is changed; your other devices must log in again.')),
  loggedIn: () => { refresh(); renderMembers(); probeOperator(currentConv()); },
};

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('join-input').value.trim();
  if (!name) return;
  join(name).then(() => { $('join-input').value = ''; clearError('join-error'); },
    (err) => showError('join-error', err, name));
});
$('join-input').addEventListener('input', () => clearError('join-error'));

el.roomList.addEventListener('click', (ev) => {
  const li = ev.target.closest('li[data-room]');
  if (!li) return;
  const joined = findJoined(li.dataset.room);
  if (joined) show(roomConv(joined));
  else join(li.dataset.room).catch((err) => showError('join-error', err, li.dataset.room));
});

el.pmList.addEventListener('click', (ev) => {
  const close = ev.target.closest('button.close');
  if (close) { closePrivate(close.dataset.close); return; }
  const li = ev.target.closest('li[data-nick]');
  if (li) openPrivate(li.dataset.nick, true);
});

el.memberList.addEventListener('click', (ev) => {
  const li = ev.target.closest('li[data-nick]');
  if (!li || (state.nick && same(li.dataset.nick, state.nick))) return;
  const conv = currentConv();
  const nick = li.dataset.nick;
  if (ev.target.closest('button.mod-toggle')) {
    conv.modOpen = conv.modOpen === nick ? null : nick;
    renderMembers();
    return;
  }
  const action = ev.target.closest('button[data-mod]');
  if (action) {
    conv.modOpen = null;
    clearError('members-error');
    const run = moderationCommand(action.dataset.mod, nick, conv.name, (text) => notice(text, conv));
    run.then(renderMembers, (err) => { renderMembers(); showError('members-error', err, nick); });
    return;
  }
  if (ev.target.closest('button.entry')) openPrivate(nick, true);
});

// Whether we are an operator of `conv`: `bans` answers operators only, and
// changes nothing. The member list then offers their actions.
function probeOperator(conv) {
  if (!conv || conv.kind !== 'room' || !isJoined(conv.name) || !socket.connected) return;
  request('bans', { room: conv.name }).then(() => true, () => false).then((op) => {
    if (conv.amOp === op) return;
    conv.amOp = op;
    if (!op) conv.modOpen = null;
    if (isCurrent(conv)) renderMembers();
  });
}

el.leave.addEventListener('click', () => {
  const conv = currentConv();
  if (!conv) return;
  if (conv.kind === 'private') { closePrivate(conv.key); return; }
  leave(conv.name).catch((err) => showComposerError(err, conv.name));
});

el.messages.addEventListener('click', (ev) => {
  if (ev.target.closest('#load-earlier')) {
    loadEarlier(currentConv(), (err) => showComposerError(err));
  }
});

el.input.addEventListener('input', noteTyping);
el.input.addEventListener('blur', () => { if (!el.input.value) stopTyping(); });

// ---------- visibility ----------

document.addEventListener('visibilitychange', () => {
  seeCurrent();
  renderTitle();
});
window.addEventListener('hubbub:open', (ev) => {
  const conv = state.convs.get(ev.detail);
  if (conv) show(conv);
});

setupDrawers();
setupAccount(actions);
setupComposer(actions);
setupNotify();
setInterval(refresh, REFRESH_EVERY);
setInterval(renderTyping, 500);
renderAll();
renderAccount();
