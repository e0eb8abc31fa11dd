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
 *                   .from and .text. data-dir = "in" | "out" on privates. Room messages
 *                   carry data-id (the server's id, increasing within the room) and are
 *                   kept in id order, each id at most once; those that came from history
 *                   have the class .history and data-history="1" (their .time has the
 *                   date too when not today). li.divider[data-kind="divider"] ("earlier
 *                   messages") heads a room's first history; li.load-earlier (first child,
 *                   only while older messages exist) holds #load-earlier, which fetches
 *                   the previous page (`history` {room, before: oldest shown id}).
 *   #typing         "X is typing…" for the current room (expires ~3 s after the last start)
 *   #message-input, #send-button      send `message` {room, text}; "/me x" sends an action,
 *                   "/msg NICK text" a private message, "//x" sends "/x"
 *   #pm-to, #pm-text, #pm-button      send `private` {to, text}
 *   #toast          the last error shown to the user (hidden when none)
 *   window.hubbub   {socket, state} for debugging
 *
 * History and resume: the server sends `history` {room, messages, complete} after
 * connecting and after a `join` (when the room has messages). Per room (state.sync)
 * we keep the ids shown and `lastId`, the highest id up to which nothing is missing.
 * After a reconnect we re-join every room with {room, since: lastId} (the default
 * room too: the new session is already in it, so that join only returns `last_id`)
 * and fill (lastId, last_id] with `history` {before} requests; messages arriving
 * by several paths are merged by id.
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
  var MAX_LINES = 500;        // per room (more once the user loads earlier messages)
  var PAGE = 50;              // messages per "load earlier messages"
  var MAX_PAGE = 500;         // the server's most per `history` request

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
    sync: {},              // room key -> {ids, lastId, older, cap, epoch, loading} (see roomSync)
    ignore: {},            // room key -> true: events of a room we are leaving again after a reconnect
    connects: 0,
    // False from a disconnect until the nickname and rooms are restored:
    // what is typed meanwhile waits in `held` (socket.io-client would send
    // it the moment it reconnects, before the page is back in its rooms).
    ready: true,
    held: []               // [{kind: 'message', payload, raw} | {kind: 'private', to, text}]
  };

  // The page reads room messages as `message` only: one packet per message
  // (docs/PROTOCOL.md, "Vocabularies").
  var socket = io({ reconnectionDelay: 500, reconnectionDelayMax: 3000, auth: { vocabulary: 'hubbub' } });
  window.hubbub = { socket: socket, state: state };

  // ---------- helpers ----------

  function hhmm(ts) {
    var d = ts ? new Date(ts) : new Date();
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  // HH:MM today, otherwise with the date ("Nov 26 15:04", plus the year if not this year).
  function stamp(ts) {
    var d = new Date(ts), now = new Date();
    if (d.toDateString() === now.toDateString()) return hhmm(ts);
    var opts = { month: 'short', day: 'numeric' };
    if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
    return d.toLocaleDateString(undefined, opts) + ' ' + hhmm(ts);
  }

  function roomKey(room) { return String(room || '').replace(/^#/, '').toLowerCase(); }

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

  // Per-room bookkeeping for history and resume (keyed by roomKey):
  //   ids     Map id -> log entry, for the room messages in the log (each id at most once)
  //   lastId  every message of the room up to this id is in the log, or was trimmed
  //           from it (null: not known yet); a reconnect resumes after it
  //   older   messages older than the oldest shown exist ("load earlier messages")
  //   cap     most entries the log keeps (grows as earlier messages are loaded)
  //   epoch   bumped when the server turns out to reuse ids (its history was lost)
  function roomSync(room) {
    var k = roomKey(room);
    return state.sync[k] || (state.sync[k] = {
      ids: new Map(), lastId: null, older: false, cap: MAX_LINES, epoch: 0, loading: false
    });
  }

  function logOf(room) { return state.logs[room] || (state.logs[room] = []); }

  function isCurrent(room) { return same(room, state.current || ''); }

  function ignored(room) { return !!state.ignore[roomKey(room)]; }

  function advance(s) {
    if (s.lastId === null) return;
    while (s.ids.has(s.lastId + 1)) s.lastId += 1;
  }

  function messageEntry(m, fromHistory) {
    return {
      kind: m.action ? 'action' : 'message', from: m.from, text: m.text, ts: m.ts, id: m.id,
      history: !!fromHistory
    };
  }

  // Where a message with `id` goes: after every message with a smaller id and before
  // those with a larger one (entries without an id, such as notices, stay put).
  function slotFor(log, id) {
    var pos = log.length;
    for (var i = log.length - 1; i >= 0; i--) {
      if (log[i].id == null) continue;
      if (log[i].id > id) pos = i;
      else break;
    }
    return pos;
  }

  function oldestId(room) {
    var log = state.logs[room] || [];
    for (var i = 0; i < log.length; i++) if (log[i].id != null) return log[i].id;
    return null;
  }

  // Whether message entry `e` is new to the room. An id already shown for a different
  // message means the server lost its history and numbers afresh (e.g. --store memory
  // and a restart): the lines on screen stay, without ids, and numbering restarts.
  function admit(room, s, e) {
    var have = s.ids.get(e.id);
    if (!have) return true;
    if (have.ts === e.ts && have.from === e.from && have.text === e.text) return false;
    resetIds(room, 'The server no longer has the earlier history of #' + room + '.');
    return true;
  }

  function resetIds(room, why) {
    var s = roomSync(room);
    (state.logs[room] || []).forEach(function (e) { if (e.id != null) e.id = null; });
    s.ids = new Map();
    s.lastId = null;
    s.older = false;
    s.epoch += 1;
    addEntry(room, { kind: 'notice', text: why });
  }

  // Keeps a room's log to s.cap entries, dropping the oldest.
  function trim(room, s, log) {
    var dropped = false;
    while (log.length > s.cap) {
      var e = log.shift();
      if (e.id != null) { s.ids.delete(e.id); s.older = true; }
      if (e.li && e.li.parentNode) e.li.parentNode.removeChild(e.li);
      dropped = true;
    }
    if (dropped && isCurrent(room)) renderLoadEarlier();
  }

  // Drops the messages with an id below `id` (what is left stays without a gap).
  function dropBefore(room, id) {
    var s = roomSync(room);
    var log = logOf(room);
    state.logs[room] = log.filter(function (e) {
      if (e.id == null || e.id >= id) return true;
      s.ids.delete(e.id);
      return false;
    });
    s.older = true;
    if (isCurrent(room)) renderLog();
  }

  function addEntry(room, entry) {
    room = room || state.current || state.defaultRoom || '';
    entry.ts = entry.ts || Date.now();
    var log = logOf(room), s = roomSync(room);
    var at = log.length;
    if (entry.id != null) {
      if (!admit(room, s, entry)) return false;
      log = logOf(room);
      at = slotFor(log, entry.id);
      s.ids.set(entry.id, entry);
      if (s.lastId === null && !entry.history) s.lastId = entry.id - 1;
      advance(s);
    }
    log.splice(at, 0, entry);
    if (isCurrent(room)) {
      if (at === log.length - 1) {
        el.messages.appendChild(renderEntry(room, entry));
        el.messages.scrollTop = el.messages.scrollHeight;
      } else {
        renderLog();
      }
    } else if (entry.kind === 'message' || entry.kind === 'action') {
      state.unread[room] = true;
      renderRooms();
    }
    trim(room, s, log);
    return true;
  }

  // Merges room messages from history (an event or a request's answer) into the log,
  // by id, skipping those shown; renders once. Returns how many were new.
  function mergeHistory(room, messages, opts) {
    opts = opts || {};
    var s = roomSync(room);
    var added = 0;
    messages.forEach(function (m) {
      if (!m || typeof m.id !== 'number') return;
      var e = messageEntry(m, true);
      if (!admit(room, s, e)) return;
      var log = logOf(room);
      log.splice(slotFor(log, e.id), 0, e);
      s.ids.set(e.id, e);
      added += 1;
    });
    advance(s);
    trim(room, s, logOf(room));
    if (isCurrent(room)) {
      if (added) renderLog(opts.keepScroll);
      else renderLoadEarlier();
    } else if (added && opts.unread) {
      state.unread[room] = true;
      renderRooms();
    }
    return added;
  }

  // A `history` event, or a first page fetched like one: the newest messages of a room.
  function onHistory(h) {
    if (!h || !h.room || !Array.isArray(h.messages) || ignored(h.room)) return;
    var s = roomSync(h.room);
    var fresh = s.ids.size === 0, epoch = s.epoch;
    if (fresh && h.messages.length) addEntry(h.room, { kind: 'divider', text: 'earlier messages' });
    mergeHistory(h.room, h.messages, { unread: !fresh });
    if ((fresh || s.epoch !== epoch) && !h.complete && h.messages.length) {
      s.older = true;
      if (isCurrent(h.room)) renderLoadEarlier();
    }
    if (s.lastId === null && h.messages.length) {
      s.lastId = h.messages[h.messages.length - 1].id;
      advance(s);
    }
  }

  // "load earlier messages": the page before the oldest message shown.
  function loadEarlier(room) {
    if (!room) return;
    var s = roomSync(room);
    if (s.loading || !socket.connected) return;
    var before = oldestId(room), epoch = s.epoch;
    var query = { room: room, limit: PAGE };
    if (before !== null) query.before = before;
    s.loading = true;
    if (isCurrent(room)) renderLoadEarlier();
    request('history', query).then(function (res) {
      if (s.epoch !== epoch) return;
      var messages = (res && res.messages) || [];
      s.cap += messages.length;
      s.older = !res.complete && messages.length > 0;
      mergeHistory(room, messages, { keepScroll: true });
    }, function (err) {
      showError(err, 'load earlier messages');
    }).then(function () {
      s.loading = false;
      if (isCurrent(room)) renderLoadEarlier();
    });
  }

  // After a `join` answered {room, last_id}: show every message after `since` (our
  // lastId when we sent it) up to last_id. The join's `history` event brings them,
  // unless the server's memory did not reach back that far (complete: false) or the
  // room is one we were already in (the default room after a reconnect): fetch
  // what is still missing with `history` {before}, newest page first.
  function syncRoom(room, since, epoch, lastId) {
    var s = roomSync(room);
    if (typeof lastId !== 'number') return Promise.resolve();
    if (since === null || s.epoch !== epoch) {
      // A first join: its history event shows the newest messages, "load earlier" the rest.
      if (s.lastId === null || s.lastId < lastId) s.lastId = lastId;
      advance(s);
      return Promise.resolve();
    }
    if (lastId < since) {
      // The server has fewer messages than we saw: its history was lost.
      resetIds(room, 'The server no longer has the earlier history of #' + room + '.');
      return request('history', { room: room, limit: PAGE }).then(function (res) {
        onHistory(res);
        if (s.lastId === null || s.lastId < lastId) s.lastId = lastId;
        advance(s);
      });
    }
    return fill(room, since, lastId, epoch);
  }

  function fill(room, since, upto, epoch) {
    var s = roomSync(room);
    var fetched = 0, lastBefore = Infinity;
    function finish() {
      if (s.epoch !== epoch) return;
      if (s.lastId === null || s.lastId < upto) s.lastId = upto;
      advance(s);
    }
    function step() {
      if (s.epoch !== epoch) return undefined;
      var before = upto + 1;
      while (before - 1 > since && s.ids.has(before - 1)) before -= 1;
      // Done, or no progress (an id the server does not have, e.g. purged).
      if (before - 1 <= since || before >= lastBefore) return finish();
      lastBefore = before;
      var limit = Math.min(MAX_PAGE, before - 1 - since);
      return request('history', { room: room, before: before, limit: limit }).then(function (res) {
        if (s.epoch !== epoch) return undefined;
        var messages = (res && res.messages) || [];
        mergeHistory(room, messages, { unread: true });
        fetched += messages.length;
        if (!messages.length || res.complete) return finish();
        if (fetched >= MAX_LINES) {
          // More was missed than the log keeps: show the newest, without a gap.
          dropBefore(room, messages[0].id);
          return finish();
        }
        return step();
      });
    }
    return Promise.resolve().then(step);
  }

  function span(cls, text) {
    var s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function renderEntry(room, e) {
    var li = document.createElement('li');
    e.li = li;
    li.dataset.kind = e.kind;
    li.dataset.room = room;
    if (e.kind === 'divider') {
      li.className = 'divider';
      li.appendChild(span('text', e.text));
      return li;
    }
    li.className = 'msg ' + e.kind;
    if (e.id != null) li.dataset.id = e.id;
    if (e.history) { li.classList.add('history'); li.dataset.history = '1'; }
    if (e.from) li.dataset.from = e.from;
    if (e.dir) li.dataset.dir = e.dir;
    if (e.from && same(e.from, state.nick || '')) li.classList.add('mine');
    var time = span('time', e.history ? stamp(e.ts) : hhmm(e.ts));
    time.title = new Date(e.ts).toLocaleString();
    li.appendChild(time);
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

  // The "load earlier messages" control, first in the list while the current room has more.
  var loadEarlierItem = null;
  function renderLoadEarlier() {
    var s = state.current ? roomSync(state.current) : null;
    if (!s || !s.older) {
      if (loadEarlierItem && loadEarlierItem.parentNode) loadEarlierItem.parentNode.removeChild(loadEarlierItem);
      return;
    }
    if (!loadEarlierItem) {
      loadEarlierItem = document.createElement('li');
      loadEarlierItem.className = 'load-earlier';
      var button = document.createElement('button');
      button.type = 'button';
      button.id = 'load-earlier';
      button.className = 'ghost';
      button.setAttribute('data-testid', 'load-earlier');
      button.addEventListener('click', function () { loadEarlier(state.current); });
      loadEarlierItem.appendChild(button);
    }
    if (el.messages.firstChild !== loadEarlierItem) el.messages.insertBefore(loadEarlierItem, el.messages.firstChild);
    var b = loadEarlierItem.firstChild;
    b.disabled = s.loading;
    b.textContent = s.loading ? 'loading…' : 'load earlier messages';
  }

  function renderLog(keepScroll) {
    var fromBottom = el.messages.scrollHeight - el.messages.scrollTop;
    el.messages.textContent = '';
    var log = state.logs[state.current] || [];
    var frag = document.createDocumentFragment();
    log.forEach(function (e) { frag.appendChild(renderEntry(state.current, e)); });
    el.messages.appendChild(frag);
    renderLoadEarlier();
    el.messages.scrollTop = keepScroll ? el.messages.scrollHeight - fromBottom : el.messages.scrollHeight;
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

  // `join` {room, since: lastId} when we have seen the room before (after a reconnect,
  // or joining again after leaving it), so that what we missed is shown too.
  function joinRequest(name) {
    var s = state.sync[roomKey(name)];
    var since = s ? s.lastId : null, epoch = s ? s.epoch : 0;
    var payload = { room: name };
    if (since !== null) payload.since = since;
    return request('join', payload).then(function (res) {
      return { res: res, since: since, epoch: epoch };
    });
  }

  function catchUp(j) {
    return syncRoom(j.res.room, j.since, j.epoch, j.res.last_id).catch(function (err) {
      showError(err, 'could not fetch the missed messages of #' + j.res.room);
    });
  }

  function join(name) {
    return joinRequest(name).then(function (j) {
      var res = j.res;
      addJoined(res.room);
      state.members[res.room] = res.members || [];
      addEntry(res.room, { kind: 'notice', text: 'You joined #' + res.room });
      show(res.room);
      refreshRooms();
      catchUp(j);
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
    else state.ready = true;
  });

  var retryTimer = null;
  socket.on('disconnect', function (reason) {
    state.ready = false;
    setStatus('disconnected', 'reconnecting…');
    // A restart closes only the transport, and socket.io-client reconnects
    // by itself. A Socket.IO DISCONNECT (flooding, too slow) is final for
    // it; the page still tries again shortly, as a person would.
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
  // Restore the chosen nickname and the set of rooms, and show what was missed:
  // every room (the default room too, which the new session is already in) is
  // joined with {room, since: lastId}, then syncRoom fills any gap. The server runs
  // a socket's requests in order, so they are sent at once; the current room last,
  // so that it is the server's current room too.
  function restore() {
    var rooms = state.joined.slice().sort(function (a, b) {
      return (isCurrent(a) ? 1 : 0) - (isCurrent(b) ? 1 : 0);
    });
    var steps = [];
    if (state.chosenNick) {
      steps.push(request('set nickname', state.chosenNick).then(function (res) {
        state.nick = res.nick;
        renderHeader();
      }, function (err) { showError(err, 'could not restore nickname ' + state.chosenNick); }));
    }
    rooms.forEach(function (room) {
      steps.push(joinRequest(room).then(function (j) {
        state.members[j.res.room] = j.res.members || [];
        return catchUp(j);
      }, function (err) {
        removeJoined(room);
        showError(err, 'could not rejoin #' + room);
      }));
    });
    if (state.defaultRoom && !findRoom(rooms, state.defaultRoom)) {
      // We had left it: leave it again, ignoring what it sends until then.
      var key = roomKey(state.defaultRoom);
      state.ignore[key] = true;
      steps.push(request('leave', { room: state.defaultRoom }).catch(function () {}).then(function () {
        delete state.ignore[key];
      }));
    }
    Promise.all(steps).then(function () {
      if (state.current) addEntry(state.current, { kind: 'notice', text: 'Reconnected.' });
      renderAll();
      refresh();
      sendHeld();
    });
  }

  // What was typed while away, in the order typed, now that the page is
  // back in its rooms under its name.
  function sendHeld() {
    state.ready = true;
    var held = state.held;
    state.held = [];
    held.forEach(function (h) {
      if (h.kind === 'private') sendPrivate(h.to, h.text).catch(function () {});
      else sendMessage(h.payload, h.raw);
    });
  }

  function sendMessage(payload, raw) {
    if (!state.ready) {
      state.held.push({ kind: 'message', payload: payload, raw: raw });
      addEntry(payload.room, { kind: 'notice', text: 'Not connected: your message will be sent when the connection is back.' });
      return;
    }
    request('message', payload).catch(function (err) {
      if (!el.input.value) el.input.value = raw;
      showError(err, 'message');
    });
  }

  socket.on('message', function (m) {
    if (!m || !m.room || ignored(m.room)) return;
    var t = state.typers[m.room];
    if (t) { delete t[m.from]; renderTyping(); }
    addEntry(m.room, messageEntry(m, false));
  });

  socket.on('history', onHistory);

  socket.on('joined', function (e) {
    if (ignored(e.room)) return;
    addEntry(e.room, { kind: 'notice', text: e.nick + ' joined #' + e.room });
    var m = state.members[e.room];
    if (m && !findRoom(m, e.nick)) m.push(e.nick);
    if (same(e.room, state.current || '')) renderMembers();
    refreshRooms();
    refreshMembers(e.room);
  });

  socket.on('left', function (e) {
    if (ignored(e.room)) return;
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
    if (ignored(e.room)) return;
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
    if (!state.ready) {
      state.held.push({ kind: 'private', to: to, text: text });
      addEntry(state.current, { kind: 'notice', text: 'Not connected: your message to ' + to + ' will be sent when the connection is back.' });
      return Promise.resolve();
    }
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
    sendMessage(payload, raw);
  });

  el.input.addEventListener('input', noteTyping);
  el.input.addEventListener('blur', function () { if (!el.input.value) stopTyping(); });

  setInterval(refresh, REFRESH_EVERY);
  setInterval(renderTyping, 500);
  renderAll();
})();
