// Drawing the state: the conversation list, the members, the header, the
// message log (day separators, grouping, the "new messages" marker), the
// title. Reads state.js; changes nothing in it. Text goes in as text only.
import { $, appendLinkified, dayKey, dayLabel, fullTime, hhmm, same } from './util.js';
import { currentConv, isJoined, privateConvs, roomConv, state, totals } from './state.js';

export const el = {
  status: $('conn-status'), myNick: $('my-nick'), accountState: $('account-state'),
  roomList: $('room-list'), pmList: $('pm-list'),
  currentRoom: $('current-room'), currentKind: $('current-kind'), leave: $('leave-button'), topic: $('topic'),
  messages: $('messages'), typing: $('typing'),
  composer: $('composer'), input: $('message-input'), send: $('send-button'),
  memberList: $('member-list'), memberCount: $('member-count'),
  roomsBadge: $('rooms-badge'), membersToggleCount: $('members-toggle-count'),
};

const GROUP_GAP = 5 * 60 * 1000; // consecutive messages closer than this share one header

export function setStatus(s, text) {
  el.status.dataset.state = s;
  el.status.textContent = text;
}

// ---------- conversation list ----------

/**
 * Puts `frag` in place of `list`'s items, keeping the keyboard focus on the
 * same item (the lists are redrawn as counts change, and every few seconds).
 */
function replaceItems(list, frag) {
  const a = document.activeElement;
  const li = a && list.contains(a) ? a.closest('li') : null;
  const key = li && (li.dataset.room || li.dataset.nick);
  const which = !a || a.tagName !== 'BUTTON' ? 'button.entry'
    : a.dataset.mod ? 'button[data-mod="' + a.dataset.mod + '"]' : 'button.' + a.classList[0];
  list.replaceChildren(frag);
  if (!key) return;
  for (const item of list.children) {
    if ((item.dataset.room || item.dataset.nick) === key) {
      const b = item.querySelector(which);
      if (b) b.focus({ preventScroll: true });
      return;
    }
  }
}

function span(className, text) {
  const s = document.createElement('span');
  s.className = className;
  s.textContent = text;
  return s;
}

/**
 * The badges of a conversation's entry: seen, not read out (aria-hidden);
 * a screen reader hears the same counts in words (a visually hidden span).
 */
function badges(li, conv, extra) {
  const unread = span('badge unread-count', conv.unread ? String(conv.unread) : '');
  unread.hidden = !conv.unread;
  unread.setAttribute('aria-hidden', 'true');
  const mention = span('badge mention-count', conv.mentions ? '@' + conv.mentions : '');
  mention.hidden = !conv.mentions;
  mention.setAttribute('aria-hidden', 'true');
  li.dataset.unread = String(conv.unread);
  li.dataset.mentions = String(conv.mentions);
  li.classList.toggle('unread', conv.unread > 0);
  li.classList.toggle('mentioned', conv.mentions > 0);
  const words = [];
  if (extra) words.push(extra);
  if (conv.unread) words.push(conv.unread + ' unread');
  if (conv.mentions) words.push(conv.mentions + (conv.mentions === 1 ? ' mention' : ' mentions'));
  return [span('sr-only', words.length ? ', ' + words.join(', ') : ''), unread, mention];
}

export function renderRooms() {
  const byKey = new Map();
  for (const r of state.rooms) byKey.set(r.name.toLowerCase(), r);
  for (const name of state.joined) {
    if (!byKey.has(name.toLowerCase())) byKey.set(name.toLowerCase(), { name, members: roomConv(name).members.length || 1 });
  }
  const rooms = [...byKey.values()].sort((a, b) => {
    const ja = isJoined(a.name) ? 0 : 1, jb = isJoined(b.name) ? 0 : 1;
    return ja - jb || a.name.localeCompare(b.name);
  });
  const frag = document.createDocumentFragment();
  for (const r of rooms) {
    const conv = roomConv(r.name);
    const joined = isJoined(r.name);
    const li = document.createElement('li');
    li.dataset.room = r.name;
    li.dataset.members = String(r.members);
    if (joined) li.classList.add('joined');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'entry';
    const people = r.members === 1 ? '1 member' : r.members + ' members';
    button.appendChild(span('name', '#' + r.name));
    if (joined) button.append(...badges(li, conv, people));
    else button.append(span('sr-only', ', ' + people + ', '), span('hint', 'join'));
    button.title = r.topic ? people + ' — ' + r.topic : people;
    if (conv.key === state.current) { li.classList.add('current'); button.setAttribute('aria-current', 'true'); }
    li.appendChild(button);
    frag.appendChild(li);
  }
  replaceItems(el.roomList, frag);
  renderPrivates();
  renderTitle();
}

export function renderPrivates() {
  const frag = document.createDocumentFragment();
  for (const conv of privateConvs()) {
    const li = document.createElement('li');
    li.dataset.nick = conv.name;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'entry';
    button.append(span('name', conv.name), ...badges(li, conv, 'private conversation'));
    if (conv.key === state.current) { li.classList.add('current'); button.setAttribute('aria-current', 'true'); }
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'close';
    close.dataset.close = conv.key;
    close.textContent = '×';
    close.setAttribute('aria-label', 'Close the conversation with ' + conv.name);
    li.append(button, close);
    frag.appendChild(li);
  }
  replaceItems(el.pmList, frag);
  $('pm-empty').hidden = privateConvs().length > 0;
}

export function renderTitle() {
  const t = totals();
  const cur = currentConv();
  const where = cur ? (cur.kind === 'room' ? '#' + cur.name : cur.name) + ' · ' : '';
  document.title = (t.unread ? '(' + t.unread + ') ' : '') + where + 'hubbub';
  // On a phone the list is in a drawer: its button tells what waits there.
  let elsewhere = 0, mentioned = 0;
  for (const c of state.convs.values()) {
    if (c.key === state.current) continue;
    elsewhere += c.unread; mentioned += c.mentions;
  }
  el.roomsBadge.textContent = elsewhere ? String(elsewhere) : '';
  el.roomsBadge.hidden = !elsewhere;
  el.roomsBadge.classList.toggle('mention', mentioned > 0);
}

// ---------- members ----------

// What an operator of the room may do to a member, from the member list.
const OPERATOR_ACTIONS = [['kick', 'Remove from the room'], ['ban', 'Ban'], ['mute', 'Mute'],
  ['voice', 'Give voice'], ['op', 'Make operator']];

/** The "⋯" button beside a member and, while open, the actions it discloses. */
function operatorMenu(room, nick) {
  const open = room.modOpen === nick;
  const toggle = document.createElement('button');
  toggle.type = 'button';
  toggle.className = 'mod-toggle';
  toggle.textContent = '⋯';
  toggle.setAttribute('aria-label', 'Moderate ' + nick);
  toggle.setAttribute('aria-expanded', String(open));
  if (!open) return [toggle];
  const actions = document.createElement('div');
  actions.className = 'mod-actions';
  for (const [action, text] of OPERATOR_ACTIONS) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'ghost';
    b.dataset.mod = action;
    b.textContent = text;
    actions.appendChild(b);
  }
  return [toggle, actions];
}

export function renderMembers() {
  const conv = currentConv();
  const room = conv && conv.kind === 'room' ? conv : null;
  const members = room ? room.members.slice().sort((a, b) => a.localeCompare(b)) : [];
  const frag = document.createDocumentFragment();
  for (const nick of members) {
    const li = document.createElement('li');
    li.dataset.nick = nick;
    const mine = state.nick && same(nick, state.nick);
    if (mine) li.classList.add('me');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'entry';
    button.appendChild(span('name', nick));
    const tags = [];
    if (room.loggedIn.some((n) => same(n, nick))) tags.push('logged in');
    if (mine) tags.push('you');
    if (tags.length) button.appendChild(span('tag', tags.join(', ')));
    button.title = mine ? 'You' : 'Send ' + nick + ' a private message';
    li.appendChild(button);
    if (room.amOp && !mine) li.append(...operatorMenu(room, nick));
    frag.appendChild(li);
  }
  replaceItems(el.memberList, frag);
  // A big room's list is its first page; its count says how many in all.
  const count = room && room.partial ? room.count : members.length;
  el.memberCount.textContent = count ? String(count) : '';
  el.membersToggleCount.textContent = count ? String(count) : '';
  $('members-empty').hidden = !!room;
}

// ---------- header ----------

export function renderHeader() {
  el.myNick.textContent = state.nick || '…';
  el.accountState.dataset.state = state.identity;
  el.accountState.textContent = state.identity === 'guest' ? 'guest' : 'logged in';
  const conv = currentConv();
  el.currentKind.textContent = conv ? (conv.kind === 'room' ? '#' : '@') : '';
  el.currentRoom.textContent = conv ? conv.name : '';
  const topic = conv && conv.kind === 'room' && conv.topic ? conv.topic : '';
  el.topic.hidden = !topic;
  el.topic.textContent = '';
  if (topic) appendLinkified(el.topic, topic);
  const chat = conv && (conv.kind === 'private' || isJoined(conv.name));
  el.leave.hidden = !conv;
  el.leave.disabled = !chat;
  el.leave.textContent = conv && conv.kind === 'private' ? 'Close' : 'Leave';
  el.leave.setAttribute('aria-label', conv ? (conv.kind === 'private' ? 'Close the conversation with ' + conv.name : 'Leave #' + conv.name) : 'Leave');
  el.input.disabled = !chat;
  el.send.disabled = !chat;
  el.input.placeholder = !conv ? 'Join a room to chat' : conv.kind === 'room' ? 'Message #' + conv.name : 'Message ' + conv.name;
  el.messages.setAttribute('aria-label', conv ? 'Messages in ' + (conv.kind === 'room' ? '#' : 'the conversation with ') + conv.name : 'Messages');
  renderTitle();
}

// ---------- the log ----------

function kindText(e) {
  return e.kind === 'message' || e.kind === 'action' || e.kind === 'private';
}

/** Whether `e` continues `prev`'s group (same sender, same kind, close in time). */
function continues(prev, e) {
  return !!prev && prev.kind === e.kind && (e.kind === 'message' || e.kind === 'private')
    && same(prev.from, e.from) && prev.dir === e.dir && e.ts - prev.ts < GROUP_GAP && e.ts >= prev.ts
    && dayKey(prev.ts) === dayKey(e.ts);
}

function separator(className, kind, text) {
  const li = document.createElement('li');
  li.className = className;
  li.dataset.kind = kind;
  const span = document.createElement('span');
  span.textContent = text;
  li.appendChild(span);
  return li;
}

export function renderEntry(conv, e, prev) {
  if (e.kind === 'divider') {
    e.li = separator('divider', 'divider', e.text);
    return e.li;
  }
  const li = document.createElement('li');
  li.className = 'msg ' + e.kind;
  li.dataset.kind = e.kind;
  if (conv.kind === 'room') li.dataset.room = conv.name;
  if (e.from) li.dataset.from = e.from;
  if (e.id != null) li.dataset.id = String(e.id);
  if (e.history) { li.classList.add('history'); li.dataset.history = '1'; }
  if (e.dir) li.dataset.dir = e.dir;
  if (e.code) li.dataset.code = e.code;
  if (e.mine) li.classList.add('mine');
  if (e.mention) li.classList.add('mention');
  if (continues(prev, e)) li.classList.add('cont');

  const time = document.createElement('time');
  time.className = 'time';
  time.dateTime = new Date(e.ts).toISOString();
  time.title = fullTime(e.ts);
  time.textContent = hhmm(e.ts);
  li.appendChild(time);

  if (kindText(e)) {
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = e.kind === 'action' ? '* ' + e.from : e.from;
    li.appendChild(from);
  }
  const text = document.createElement('span');
  text.className = 'text';
  if (kindText(e)) appendLinkified(text, e.text);
  else text.textContent = e.text;
  li.appendChild(text);
  e.li = li;
  return li;
}

function nearBottom() {
  const m = el.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

/** Adds `e`, the newest entry of the conversation on screen, at the bottom. */
export function appendEntry(conv, e) {
  const log = conv.log;
  const prev = log.length > 1 ? log[log.length - 2] : null;
  const stick = nearBottom() || e.mine;
  if (e.ts && (!prev || !prev.ts || dayKey(prev.ts) !== dayKey(e.ts)) && e.kind !== 'divider') {
    el.messages.appendChild(separator('day', 'day', dayLabel(e.ts)));
  }
  el.messages.appendChild(renderEntry(conv, e, prev && prev.kind !== 'divider' ? prev : null));
  if (stick) el.messages.scrollTop = el.messages.scrollHeight;
}

export function renderLoadEarlier(conv) {
  let holder = el.messages.querySelector('li.load-earlier');
  if (!conv || conv.kind !== 'room' || !conv.older) {
    if (holder) holder.remove();
    return;
  }
  if (!holder) {
    holder = document.createElement('li');
    holder.className = 'load-earlier';
    const b = document.createElement('button');
    b.type = 'button';
    b.id = 'load-earlier';
    b.dataset.testid = 'load-earlier';
    b.className = 'ghost';
    holder.appendChild(b);
  }
  const b = holder.firstChild;
  b.textContent = conv.loading ? 'Loading…' : 'Load earlier messages';
  b.disabled = conv.loading;
  if (el.messages.firstChild !== holder) el.messages.insertBefore(holder, el.messages.firstChild);
}

/** Draws the whole log of the conversation on screen. */
export function renderLog(keepScroll) {
  const conv = currentConv();
  const fromBottom = el.messages.scrollHeight - el.messages.scrollTop;
  const frag = document.createDocumentFragment();
  if (conv) {
    let prev = null, day = null;
    for (const e of conv.log) {
      if (e === conv.marker) {
        frag.appendChild(separator('unread-marker', 'marker', 'New messages'));
        prev = null;
      }
      if (e.kind !== 'divider' && e.ts && dayKey(e.ts) !== day) {
        day = dayKey(e.ts);
        frag.appendChild(separator('day', 'day', dayLabel(e.ts)));
        prev = null;
      }
      frag.appendChild(renderEntry(conv, e, prev));
      prev = e.kind === 'divider' ? null : e;
    }
  }
  // Redrawn, not new: screen readers should not read the whole log out.
  el.messages.setAttribute('aria-live', 'off');
  el.messages.replaceChildren(frag);
  setTimeout(() => el.messages.setAttribute('aria-live', 'polite'), 0);
  renderLoadEarlier(conv);
  if (keepScroll) {
    el.messages.scrollTop = el.messages.scrollHeight - fromBottom;
  } else {
    const marker = el.messages.querySelector('li.unread-marker');
    if (marker) marker.scrollIntoView({ block: 'center' });
    else el.messages.scrollTop = el.messages.scrollHeight;
  }
}

export function renderTyping() {
  const now = Date.now();
  const conv = currentConv();
  const t = (conv && conv.typers) || {};
  const nicks = Object.keys(t).filter((n) => t[n] > now);
  let text = '';
  if (nicks.length === 1) text = nicks[0] + ' is typing…';
  else if (nicks.length === 2) text = nicks[0] + ' and ' + nicks[1] + ' are typing…';
  else if (nicks.length > 2) text = 'several people are typing…';
  if (el.typing.textContent !== text) el.typing.textContent = text;
}

export function renderAll() { renderHeader(); renderRooms(); renderMembers(); renderLog(); renderTyping(); }
