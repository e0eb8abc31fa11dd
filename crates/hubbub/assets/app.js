/*
 * hubbub web chat: plain JS on top of socket.io-client (served as /socket.io.min.js).
 * Protocol: docs/PROTOCOL.md, section "Socket.IO".
 *
 * Stable hooks for tests (each element has the id and a data-testid of the same name):
 *   #conn-status    data-state = "connecting" | "connected" | "disconnected"
 *   #my-nick        the nickname the server knows us by
 *   #nick-input, #nick-button         set nickname (`set nickname` with ack)
 *   #room-list      li[data-room=NAME][data-members=N]; classes .joined, .current, .unread;
 *                   clicking a joined room shows it, clicking another joins it
 *   #join-input, #join-button         join or create a room (`join`)
 *   #current-room   name of the room on screen; #leave-button leaves it (`leave`)
 *   #member-list    li[data-nick=NICK] for the current room; #member-count is the count;
 *                   clicking a member fills #pm-to
 *   #messages       li.msg with data-kind = "message" | "action" | "notice" | "private" | "error",
 *                   data-room, data-from (messages/privates); children .time (HH:MM local),
 *                   .from and .text. data-dir = "in" | "out" on privates.
 *   #typing         "X is typing…" for the current room (expires ~3 s after the last start)
 *   #message-input, #send-button      send `message` {room, text}; "/me x" sends an action,
 *                   "/msg NICK text" a private message, "//x" sends "/x"
 *   #pm-to, #pm-text, #pm-button      send `private` {to, text}
 *   #toast          the last error shown to the user (hidden when none)
 *   window.hubbub   {socket, state} for debugging
 */
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    status: $('conn-status'), myNick: $('my-nick'),
    nickForm: $('nick-form'), nickInput: $('nick-input'),
    roomList: $('room-list'), joinForm: $('join-form'), joinInput: $('join-input'),
    currentRoom: $('current-room'), leave: $('leave-button'),
    messages: $('messages'), typing: $('typing'),
    composer: $('composer'), input: $('message-input'),
    memberList: $('member-list'), memberCount: $('member-count'),
    pmForm: $('pm-form'), pmTo: $('pm-to'), pmText: $('pm-text'),
    toast: $('toast')
  };

  var TYPING_TTL = 3000;      // how long a "typing" start is shown without a refresh
  var TYPING_IDLE = 2000;     // we send typing:false after this long without a keystroke
  var TYPING_REFRESH = 1500;  // while typing, repeat typing:true this often
  var REFRESH_EVERY = 5000;   // periodic rooms/members refresh
  var MAX_LINES = 500;        // per room

  var state = {
    nick: null,            // as the server knows us
    chosenNick: null,      // what the user asked for; restored after a reconnect
    defaultRoom: null,     // from the first `welcome`
    joined: [],            // rooms we are in, in join order (restored after a reconnect)
    current: null,         // room on screen
    logs: {},              // room -> [entry]
    unread: {},            // room -> true
    rooms: [],             // [{name, members}] from `rooms`
    members: {},           // room -> [nick]
    typers: {},            // room -> {nick: expiresAt}
    connects: 0
  };

  var socket = io({ reconnectionDelay: 500, reconnectionDelayMax: 3000 });
  window.hubbub = { socket: socket, state: state };

  // ---------- helpers ----------

  function hhmm(ts) {
    var d = ts ? new Date(ts) : new Date();
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  function same(a, b) { return String(a).toLowerCase() === String(b).toLowerCase(); }

  function findRoom(list, name) {
    for (var i = 0; i < list.length; i++) if (same(list[i], name)) return list[i];
    return null;
  }

  function isJoined(room) { return findRoom(state.joined, room) !== null; }

  function errText(err) {
    if (!err) return 'unknown error';
    return (err.message || err.code || String(err)) + (err.code ? ' (' + err.code + ')' : '');
  }

  // Emit with an acknowledgement; resolves to the `ok` value, rejects with the `error` object.
  function request(event, payload) {
    return new Promise(function (resolve, reject) {
      var done = function (timeoutErr, res) {
        if (timeoutErr) reject({ code: 'timeout', message: 'the server did not answer ' + event });
        else if (res && Object.prototype.hasOwnProperty.call(res, 'error')) reject(res.error);
        else resolve(res ? res.ok : undefined);
      };
      var s = socket.timeout(10000);
      if (payload === undefined) s.emit(event, done);
      else s.emit(event, payload, done);
    });
  }

  var toastTimer = null;
  function showError(err, context) {
    var text = (context ? context + ': ' : '') + errText(err);
    el.toast.textContent = text;
    el.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.toast.hidden = true; }, 6000);
    addEntry(state.current, { kind: 'error', text: text, code: err && err.code });
  }

  // ---------- message log ----------

  function addEntry(room, entry) {
    room = room || state.current || state.defaultRoom || '';
    entry.ts = entry.ts || Date.now();
    var log = state.logs[room] || (state.logs[room] = []);
    log.push(entry);
    if (log.length > MAX_LINES) log.shift();
    if (same(room, state.current || '')) {
      el.messages.appendChild(renderEntry(room, entry));
      while (el.messages.children.length > MAX_LINES) el.messages.removeChild(el.messages.firstChild);
      el.messages.scrollTop = el.messages.scrollHeight;
    } else if (entry.kind === 'message' || entry.kind === 'action') {
      state.unread[room] = true;
      renderRooms();
    }
  }

  function span(cls, text) {
    var s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function renderEntry(room, e) {
    var li = document.createElement('li');
    li.className = 'msg ' + e.kind;
    li.dataset.kind = e.kind;
    li.dataset.room = room;
    if (e.from) li.dataset.from = e.from;
    if (e.dir) li.dataset.dir = e.dir;
    if (e.from && same(e.from, state.nick || '')) li.classList.add('mine');
    li.appendChild(span('time', hhmm(e.ts)));
    if (e.kind === 'message') {
      li.appendChild(span('from', e.from));
      li.appendChild(span('text', e.text));
    } else if (e.kind === 'action') {
      li.appendChild(span('text', '* ' + e.from + ' ' + e.text));
    } else if (e.kind === 'private') {
      li.appendChild(span('from', e.dir === 'out' ? '→ ' + e.to : e.from + ' →'));
      li.appendChild(span('text', e.text));
    } else {
      li.appendChild(span('text', e.text));
    }
    return li;
  }

  function renderLog() {
    el.messages.textContent = '';
    var log = state.logs[state.current] || [];
    var frag = document.createDocumentFragment();
    log.forEach(function (e) { frag.appendChild(renderEntry(state.current, e)); });
    el.messages.appendChild(frag);
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  // ---------- rooms, members, typing ----------

  function renderRooms() {
    var byName = {};
    var list = [];
    state.rooms.forEach(function (r) { byName[r.name.toLowerCase()] = r; list.push(r); });
    state.joined.forEach(function (name) {
      if (!byName[name.toLowerCase()]) list.push({ name: name, members: (state.members[name] || []).length || 1 });
    });
    list.sort(function (a, b) { return a.name.localeCompare(b.name); });
    el.roomList.textContent = '';
    list.forEach(function (r) {
      var li = document.createElement('li');
      li.dataset.room = r.name;
      li.dataset.members = r.members;
      li.tabIndex = 0;
      if (isJoined(r.name)) li.classList.add('joined');
      if (same(r.name, state.current || '')) li.classList.add('current');
      if (state.unread[r.name] && !same(r.name, state.current || '')) li.classList.add('unread');
      li.appendChild(span('name', '#' + r.name));
      li.appendChild(span('count', String(r.members)));
      li.title = isJoined(r.name) ? 'show #' + r.name : 'join #' + r.name;
      el.roomList.appendChild(li);
    });
  }

  function renderMembers() {
    var members = state.members[state.current] || [];
    el.memberList.textContent = '';
    members.slice().sort(function (a, b) { return a.localeCompare(b); }).forEach(function (nick) {
      var li = document.createElement('li');
      li.dataset.nick = nick;
      li.tabIndex = 0;
      li.title = 'send a private message to ' + nick;
      li.appendChild(span('name', nick));
      if (same(nick, state.nick || '')) { li.classList.add('me'); li.appendChild(span('you', 'you')); }
      el.memberList.appendChild(li);
    });
    el.memberCount.textContent = members.length ? String(members.length) : '';
  }

  function renderTyping() {
    var now = Date.now();
    var t = state.typers[state.current] || {};
    var nicks = Object.keys(t).filter(function (n) { return t[n] > now; });
    var text = '';
    if (nicks.length === 1) text = nicks[0] + ' is typing…';
    else if (nicks.length === 2) text = nicks[0] + ' and ' + nicks[1] + ' are typing…';
    else if (nicks.length > 2) text = 'several people are typing…';
    if (el.typing.textContent !== text) el.typing.textContent = text;
  }

  function renderHeader() {
    el.myNick.textContent = state.nick || '…';
    el.currentRoom.textContent = state.current || '';
    el.leave.disabled = !state.current || !isJoined(state.current);
    el.input.disabled = !state.current || !isJoined(state.current);
  }

  function renderAll() { renderHeader(); renderRooms(); renderMembers(); renderLog(); renderTyping(); }

  function refreshRooms() {
    if (!socket.connected) return Promise.resolve();
    return request('rooms').then(function (rooms) {
      state.rooms = Array.isArray(rooms) ? rooms : [];
      renderRooms();
    }, function (err) { console.warn('rooms failed', err); });
  }

  function refreshMembers(room) {
    room = room || state.current;
    if (!socket.connected || !room || !isJoined(room)) return Promise.resolve();
    return request('members', { room: room }).then(function (res) {
      state.members[res.room] = res.members || [];
      if (res.room !== room) state.members[room] = res.members || [];
      if (same(room, state.current)) renderMembers();
    }, function (err) { console.warn('members failed', err); });
  }

  function refresh() { refreshRooms(); refreshMembers(); }

  function show(room) {
    stopTyping();
    state.current = room;
    delete state.unread[room];
    renderAll();
    refreshMembers(room);
    el.input.focus();
  }

  function addJoined(room) {
    if (!isJoined(room)) state.joined.push(room);
  }

  function removeJoined(room) {
    state.joined = state.joined.filter(function (r) { return !same(r, room); });
  }

  function join(name) {
    return request('join', { room: name }).then(function (res) {
      addJoined(res.room);
      state.members[res.room] = res.members || [];
      addEntry(res.room, { kind: 'notice', text: 'You joined #' + res.room });
      show(res.room);
      refreshRooms();
      return res;
    });
  }

  // ---------- typing (outgoing) ----------

  var typingRoom = null, typingSentAt = 0, typingIdleTimer = null;

  function sendTyping(room, on) {
    // With an ack so a failure (e.g. racing a leave) is not shown as an `error` event.
    if (socket.connected && room && isJoined(room)) socket.emit('typing', { room: room, typing: on }, function () {});
  }

  function noteTyping() {
    if (!el.input.value || el.input.value.charAt(0) === '/' && el.input.value.charAt(1) !== '/') {
      stopTyping();
      return;
    }
    var now = Date.now();
    if (typingRoom !== state.current || now - typingSentAt > TYPING_REFRESH) {
      if (typingRoom && typingRoom !== state.current) sendTyping(typingRoom, false);
      typingRoom = state.current;
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

  function setStatus(s, text) {
    el.status.dataset.state = s;
    el.status.textContent = text;
  }

  socket.on('connect', function () {
    state.connects += 1;
    setStatus('connected', 'connected');
    if (state.connects > 1) restore();
  });

  var retryTimer = null;
  socket.on('disconnect', function (reason) {
    setStatus('disconnected', 'reconnecting…');
    // socket.io-client does not reconnect by itself when the server closed the
    // session (e.g. while shutting down for a restart); try again shortly.
    if (reason === 'io server disconnect') {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(function () { if (!socket.connected) socket.connect(); }, 1000);
    }
    typingRoom = null;
    state.typers = {};
    renderTyping();
    if (state.current) addEntry(state.current, { kind: 'notice', text: 'Disconnected (' + reason + '); reconnecting…' });
  });

  socket.on('connect_error', function () {
    setStatus('disconnected', 'reconnecting…');
  });

  socket.on('welcome', function (w) {
    state.nick = w.nick;
    if (!state.defaultRoom) state.defaultRoom = w.room;
    if (state.connects <= 1 && state.joined.length === 0) {
      addJoined(w.room);
      state.current = w.room;
      addEntry(w.room, { kind: 'notice', text: 'Welcome! You are ' + w.nick + ' in #' + w.room + '.' });
      renderAll();
    } else {
      renderHeader();
    }
    refresh();
  });

  // After a reconnect the server sees a new session: guest nick, default room only.
  // Restore the chosen nickname and the set of rooms.
  function restore() {
    var rooms = state.joined.slice();
    var steps = [];
    if (state.chosenNick) {
      steps.push(request('set nickname', state.chosenNick).then(function (res) {
        state.nick = res.nick;
        renderHeader();
      }, function (err) { showError(err, 'could not restore nickname ' + state.chosenNick); }));
    }
    rooms.forEach(function (room) {
      if (state.defaultRoom && same(room, state.defaultRoom)) return; // a new session starts there
      steps.push(request('join', { room: room }).then(function (res) {
        state.members[res.room] = res.members || [];
      }, function (err) {
        if (err && err.code === 'already_in_room') return;
        removeJoined(room);
        showError(err, 'could not rejoin #' + room);
      }));
    });
    if (state.defaultRoom && !findRoom(rooms, state.defaultRoom)) {
      steps.push(request('leave', { room: state.defaultRoom }).catch(function () {}));
    }
    Promise.all(steps).then(function () {
      if (state.current) addEntry(state.current, { kind: 'notice', text: 'Reconnected.' });
      renderAll();
      refresh();
    });
  }

  socket.on('message', function (m) {
    if (!m || !m.room) return;
    var t = state.typers[m.room];
    if (t) { delete t[m.from]; renderTyping(); }
    addEntry(m.room, { kind: m.action ? 'action' : 'message', from: m.from, text: m.text, ts: m.ts, id: m.id });
  });

  socket.on('joined', function (e) {
    addEntry(e.room, { kind: 'notice', text: e.nick + ' joined #' + e.room });
    var m = state.members[e.room];
    if (m && !findRoom(m, e.nick)) m.push(e.nick);
    if (same(e.room, state.current || '')) renderMembers();
    refreshRooms();
    refreshMembers(e.room);
  });

  socket.on('left', function (e) {
    addEntry(e.room, { kind: 'notice', text: e.nick + ' left #' + e.room + (e.reason ? ' (' + e.reason + ')' : '') });
    var m = state.members[e.room];
    if (m) state.members[e.room] = m.filter(function (n) { return !same(n, e.nick); });
    var t = state.typers[e.room];
    if (t) delete t[e.nick];
    if (same(e.room, state.current || '')) { renderMembers(); renderTyping(); }
    refreshRooms();
    refreshMembers(e.room);
  });

  socket.on('renamed', function (e) {
    if (state.nick && same(e.old, state.nick)) { state.nick = e.new; renderHeader(); }
    addEntry(e.room, { kind: 'notice', text: e.old + ' is now known as ' + e.new });
    var m = state.members[e.room];
    if (m) state.members[e.room] = m.map(function (n) { return same(n, e.old) ? e.new : n; });
    if (same(e.room, state.current || '')) renderMembers();
    refreshMembers(e.room);
  });

  socket.on('private', function (p) {
    // Our own sends are shown from their ack; only show echoes addressed to us.
    if (state.nick && same(p.from, state.nick) && !same(p.to, state.nick)) return;
    addEntry(state.current, { kind: 'private', dir: 'in', from: p.from, to: p.to, text: p.text, ts: p.ts });
  });

  socket.on('typing', function (e) {
    if (!e || !e.room || (state.nick && same(e.nick, state.nick))) return;
    var t = state.typers[e.room] || (state.typers[e.room] = {});
    if (e.typing) t[e.nick] = Date.now() + TYPING_TTL;
    else delete t[e.nick];
    renderTyping();
  });

  socket.on('error', function (err) { showError(err); });

  socket.on('closing', function (e) {
    addEntry(state.current, { kind: 'notice', text: 'Server: ' + ((e && e.reason) || 'closing') });
  });

  // ---------- user actions ----------

  el.nickForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var nick = el.nickInput.value.trim();
    if (!nick) return;
    request('set nickname', nick).then(function (res) {
      state.nick = res.nick;
      state.chosenNick = res.nick;
      el.nickInput.value = '';
      renderHeader();
      renderMembers();
      refreshMembers();
    }, function (err) { showError(err, 'nickname'); });
  });

  el.joinForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var name = el.joinInput.value.trim();
    if (!name) return;
    var existing = findRoom(state.joined, name.replace(/^#/, ''));
    if (existing) { el.joinInput.value = ''; show(existing); return; }
    join(name).then(function () { el.joinInput.value = ''; }, function (err) { showError(err, 'join'); });
  });

  function roomClicked(li) {
    var room = li && li.dataset.room;
    if (!room) return;
    var existing = findRoom(state.joined, room);
    if (existing) show(existing);
    else join(room).catch(function (err) { showError(err, 'join'); });
  }
  el.roomList.addEventListener('click', function (ev) { roomClicked(ev.target.closest('li')); });
  el.roomList.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter') roomClicked(ev.target.closest('li'));
  });

  el.leave.addEventListener('click', function () {
    var room = state.current;
    if (!room) return;
    stopTyping();
    request('leave', { room: room }).then(function () {
      removeJoined(room);
      delete state.members[room];
      delete state.typers[room];
      addEntry(room, { kind: 'notice', text: 'You left #' + room });
      show(state.joined.length ? state.joined[state.joined.length - 1] : null);
      refreshRooms();
    }, function (err) { showError(err, 'leave'); });
  });

  function memberClicked(li) {
    if (!li || !li.dataset.nick) return;
    el.pmTo.value = li.dataset.nick;
    el.pmText.focus();
  }
  el.memberList.addEventListener('click', function (ev) { memberClicked(ev.target.closest('li')); });
  el.memberList.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter') memberClicked(ev.target.closest('li'));
  });

  function sendPrivate(to, text) {
    return request('private', { to: to, text: text }).then(function (res) {
      addEntry(state.current, { kind: 'private', dir: 'out', from: state.nick, to: (res && res.to) || to, text: text, ts: res && res.ts });
    }, function (err) { showError(err, 'private message to ' + to); throw err; });
  }

  el.pmForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var to = el.pmTo.value.trim(), text = el.pmText.value;
    if (!to || !text) return;
    sendPrivate(to, text).then(function () { el.pmText.value = ''; }, function () {});
  });

  el.composer.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var raw = el.input.value;
    if (!raw.trim() || !state.current) return;
    var room = state.current;
    var m;
    stopTyping();
    if ((m = /^\/msg\s+(\S+)\s+([\s\S]+)$/i.exec(raw))) {
      sendPrivate(m[1], m[2]).then(function () { el.input.value = ''; }, function () {});
      return;
    }
    var payload = { room: room, text: raw };
    if ((m = /^\/me\s+([\s\S]+)$/i.exec(raw))) payload = { room: room, text: m[1], action: true };
    else if (raw.slice(0, 2) === '//') payload.text = raw.slice(1);
    else if (raw.charAt(0) === '/') {
      showError({ code: 'unknown_command', message: 'unknown command ' + raw.split(/\s/)[0] + ' (try /me or /msg)' });
      return;
    }
    el.input.value = '';
    request('message', payload).catch(function (err) {
      if (!el.input.value) el.input.value = raw;
      showError(err, 'message');
    });
  });

  el.input.addEventListener('input', noteTyping);
  el.input.addEventListener('blur', function () { if (!el.input.value) stopTyping(); });

  setInterval(refresh, REFRESH_EVERY);
  setInterval(renderTyping, 500);
  renderAll();
})();
