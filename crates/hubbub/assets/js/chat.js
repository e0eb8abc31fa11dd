// The conversations' logs: adding entries, unread and mention counts, and a
// room's history and resume.
//
// History and resume: the server sends `history` {room, messages, complete}
// after connecting and after a `join` (when the room has messages). Per room
// we keep the ids shown and `lastId`, the highest id up to which nothing is
// missing. After a reconnect every room is joined again with {room, since:
// lastId} (the default room too: the new session is already in it, so that
// join only returns `last_id`) and (lastId, last_id] is filled with `history`
// {before} requests; messages arriving by several paths are merged by id.
import { request } from './net.js';
import { mentions, same } from './util.js';
import { currentConv, isCurrent, roomConv, state } from './state.js';
import { appendEntry, renderLoadEarlier, renderLog, renderRooms, renderTitle } from './view.js';
import { notify } from './notify.js';
import { keepPrivates } from './keep.js';

const MAX_LINES = 500;  // per conversation (more once the user loads earlier messages)
const PAGE = 50;        // messages per "load earlier messages"
const MAX_PAGE = 500;   // the server's most per `history` request

/** Whether the user can see the conversation on screen now. */
export function watching(conv) { return isCurrent(conv) && document.visibilityState === 'visible'; }

/** A message, action or private message from someone else: what unread counts count. */
function countable(e) {
  return (e.kind === 'message' || e.kind === 'action' || e.kind === 'private') && !e.mine;
}

export function messageEntry(m, fromHistory) {
  const e = {
    kind: m.action ? 'action' : 'message', from: m.from, text: m.text, ts: m.ts, id: m.id,
    history: !!fromHistory,
  };
  e.mine = !!state.nick && same(m.from, state.nick);
  e.mention = !e.mine && mentions(m.text, state.nick);
  return e;
}

export function privateEntry(p, dir) {
  return {
    kind: 'private', dir, from: p.from, to: p.to, text: p.text, ts: p.ts || Date.now(),
    mine: dir === 'out', mention: dir === 'in',
  };
}

/** Counts `e` as unread in `conv` unless the user is looking at it; tells the user if it names them. */
function account(conv, e, live) {
  if (!countable(e) || watching(conv)) return;
  conv.unread += 1;
  if (!conv.firstUnread) conv.firstUnread = e;
  if (e.mention) {
    conv.mentions += 1;
    if (live) notify(conv, e);
  }
}

/** The user has seen `conv` (on screen, page visible): the marker goes before what was unread. */
export function markSeen(conv) {
  if (!conv) return;
  conv.marker = conv.unread ? conv.firstUnread : conv.marker;
  conv.unread = 0;
  conv.mentions = 0;
  conv.firstUnread = null;
}

function advance(c) {
  if (c.lastId === null) return;
  while (c.ids.has(c.lastId + 1)) c.lastId += 1;
}

// Where a message with `id` goes: after every message with a smaller id and before
// those with a larger one (entries without an id, such as notices, stay put).
function slotFor(log, id) {
  let pos = log.length;
  for (let i = log.length - 1; i >= 0; i--) {
    if (log[i].id == null) continue;
    if (log[i].id > id) pos = i;
    else break;
  }
  return pos;
}

function oldestId(conv) {
  for (const e of conv.log) if (e.id != null) return e.id;
  return null;
}

// Whether message entry `e` is new to the room. An id already shown for a different
// message means the server lost its history and numbers afresh (e.g. --store memory
// and a restart): the lines on screen stay, without ids, and numbering restarts.
function admit(conv, e) {
  const have = conv.ids.get(e.id);
  if (!have) return true;
  if (have.ts === e.ts && have.from === e.from && have.text === e.text) return false;
  resetIds(conv, 'The server no longer has the earlier history of #' + conv.name + '.');
  return true;
}

function resetIds(conv, why) {
  for (const e of conv.log) if (e.id != null) e.id = null;
  conv.ids = new Map();
  conv.lastId = null;
  conv.older = false;
  conv.epoch += 1;
  addEntry(conv, { kind: 'notice', text: why });
}

// Keeps a conversation's log to conv.cap entries, dropping the oldest.
function trim(conv) {
  let dropped = false;
  while (conv.log.length > conv.cap) {
    const e = conv.log.shift();
    if (e.id != null) { conv.ids.delete(e.id); conv.older = true; }
    if (e === conv.marker) conv.marker = null;
    if (e === conv.firstUnread) conv.firstUnread = null;
    if (e.li && e.li.parentNode) e.li.parentNode.removeChild(e.li);
    dropped = true;
  }
  if (dropped && isCurrent(conv)) renderLoadEarlier(conv);
}

// Drops the messages with an id below `id` (what is left stays without a gap).
function dropBefore(conv, id) {
  conv.log = conv.log.filter((e) => {
    if (e.id == null || e.id >= id) return true;
    conv.ids.delete(e.id);
    return false;
  });
  conv.older = true;
  if (isCurrent(conv)) renderLog();
}

/** Adds `entry` to `conv` (a conversation; the one on screen when null). */
export function addEntry(conv, entry) {
  conv = conv || currentConv() || (state.defaultRoom ? roomConv(state.defaultRoom) : null);
  if (!conv) return false;
  entry.ts = entry.ts || Date.now();
  const log = conv.log;
  let at = log.length;
  if (entry.id != null) {
    if (!admit(conv, entry)) return false;
    at = slotFor(conv.log, entry.id);
    conv.ids.set(entry.id, entry);
    if (conv.lastId === null && !entry.history) conv.lastId = entry.id - 1;
    advance(conv);
  }
  conv.log.splice(at, 0, entry);
  account(conv, entry, !entry.history);
  if (isCurrent(conv)) {
    if (at === conv.log.length - 1) appendEntry(conv, entry);
    else renderLog();
  }
  if (countable(entry) && !watching(conv)) renderRooms();
  trim(conv);
  if (conv.kind === 'private') keepPrivates();
  return true;
}

// Merges room messages from history (an event or a request's answer) into the log,
// by id, skipping those shown; renders once. Returns how many were new.
export function mergeHistory(conv, messages, opts = {}) {
  let added = 0;
  for (const m of messages) {
    if (!m || typeof m.id !== 'number') continue;
    const e = messageEntry(m, true);
    if (!admit(conv, e)) continue;
    conv.log.splice(slotFor(conv.log, e.id), 0, e);
    conv.ids.set(e.id, e);
    if (opts.unread) account(conv, e, false);
    added += 1;
  }
  advance(conv);
  trim(conv);
  if (isCurrent(conv)) {
    if (added) renderLog(opts.keepScroll);
    else renderLoadEarlier(conv);
  }
  if (added && opts.unread) renderRooms();
  return added;
}

// A `history` event, or a first page fetched like one: the newest messages of a room.
export function onHistory(h) {
  if (!h || !h.room || !Array.isArray(h.messages) || state.ignore[String(h.room).toLowerCase()]) return;
  const conv = roomConv(h.room);
  const fresh = conv.ids.size === 0, epoch = conv.epoch;
  if (fresh && h.messages.length) addEntry(conv, { kind: 'divider', text: 'earlier messages' });
  mergeHistory(conv, h.messages, { unread: !fresh });
  if ((fresh || conv.epoch !== epoch) && !h.complete && h.messages.length) {
    conv.older = true;
    if (isCurrent(conv)) renderLoadEarlier(conv);
  }
  if (conv.lastId === null && h.messages.length) {
    conv.lastId = h.messages[h.messages.length - 1].id;
    advance(conv);
  }
}

/** "Load earlier messages": the page before the oldest message shown. */
export function loadEarlier(conv, onError) {
  if (!conv || conv.kind !== 'room' || conv.loading) return;
  const before = oldestId(conv), epoch = conv.epoch;
  const query = { room: conv.name, limit: PAGE };
  if (before !== null) query.before = before;
  conv.loading = true;
  if (isCurrent(conv)) renderLoadEarlier(conv);
  request('history', query).then((res) => {
    if (conv.epoch !== epoch) return;
    const messages = (res && res.messages) || [];
    conv.cap += messages.length;
    conv.older = !res.complete && messages.length > 0;
    mergeHistory(conv, messages, { keepScroll: true });
  }, onError).then(() => {
    conv.loading = false;
    if (isCurrent(conv)) renderLoadEarlier(conv);
  });
}

// After a `join` answered {room, last_id}: show every message after `since` (our
// lastId when we sent it) up to last_id. The join's `history` event brings them,
// unless the server's memory did not reach back that far (complete: false) or the
// room is one we were already in (the default room after a reconnect): fetch
// what is still missing with `history` {before}, newest page first.
export function syncRoom(room, since, epoch, lastId) {
  const conv = roomConv(room);
  if (typeof lastId !== 'number') return Promise.resolve();
  if (since === null || conv.epoch !== epoch) {
    // A first join: its history event shows the newest messages, "load earlier" the rest.
    if (conv.lastId === null || conv.lastId < lastId) conv.lastId = lastId;
    advance(conv);
    return Promise.resolve();
  }
  if (lastId < since) {
    // The server has fewer messages than we saw: its history was lost.
    resetIds(conv, 'The server no longer has the earlier history of #' + conv.name + '.');
    return request('history', { room: conv.name, limit: PAGE }).then((res) => {
      onHistory(res);
      if (conv.lastId === null || conv.lastId < lastId) conv.lastId = lastId;
      advance(conv);
    });
  }
  return fill(conv, since, lastId, epoch);
}

function fill(conv, since, upto, epoch) {
  let fetched = 0, lastBefore = Infinity;
  const finish = () => {
    if (conv.epoch !== epoch) return;
    if (conv.lastId === null || conv.lastId < upto) conv.lastId = upto;
    advance(conv);
  };
  const step = () => {
    if (conv.epoch !== epoch) return undefined;
    let before = upto + 1;
    while (before - 1 > since && conv.ids.has(before - 1)) before -= 1;
    // Done, or no progress (an id the server does not have, e.g. purged).
    if (before - 1 <= since || before >= lastBefore) return finish();
    lastBefore = before;
    const limit = Math.min(MAX_PAGE, before - 1 - since);
    return request('history', { room: conv.name, before, limit }).then((res) => {
      if (conv.epoch !== epoch) return undefined;
      const messages = (res && res.messages) || [];
      mergeHistory(conv, messages, { unread: true });
      fetched += messages.length;
      if (!messages.length || res.complete) return finish();
      if (fetched >= MAX_LINES) {
        // More was missed than the log keeps: show the newest, without a gap.
        dropBefore(conv, messages[0].id);
        return finish();
      }
      return step();
    });
  };
  return Promise.resolve().then(step);
}

/** The page became visible again, or the user switched conversation: what is on screen is read. */
export function seeCurrent() {
  const conv = currentConv();
  if (!conv || document.visibilityState !== 'visible') return;
  const had = conv.unread;
  markSeen(conv);
  if (had) { renderLog(); renderRooms(); } else renderTitle();
}

