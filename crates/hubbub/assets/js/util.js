// Small helpers shared by the page's modules: names, times, links, and the
// sentences shown for the server's error codes. Nothing here touches the socket.

export const $ = (id) => document.getElementById(id);

/** A room's key: case-insensitive, without a leading '#'. */
export function roomKey(room) { return String(room || '').replace(/^#/, '').toLowerCase(); }

export function same(a, b) { return String(a).toLowerCase() === String(b).toLowerCase(); }

export function findName(list, name) {
  for (const item of list) if (same(item, name)) return item;
  return null;
}

export function hhmm(ts) {
  const d = ts ? new Date(ts) : new Date();
  return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
}

/** The local day of `ts`, as a key ("2026-11-30"). */
export function dayKey(ts) {
  const d = new Date(ts);
  return d.getFullYear() + '-' + (d.getMonth() + 1) + '-' + d.getDate();
}

/** "Today", "Yesterday", or the date in the user's locale. */
export function dayLabel(ts) {
  const d = new Date(ts), now = new Date();
  if (dayKey(d) === dayKey(now)) return 'Today';
  const y = new Date(now); y.setDate(now.getDate() - 1);
  if (dayKey(d) === dayKey(y)) return 'Yesterday';
  const opts = { weekday: 'long', month: 'long', day: 'numeric' };
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString(undefined, opts);
}

/** The full local date and time, for a timestamp's tooltip. */
export function fullTime(ts) { return new Date(ts).toLocaleString(); }

// http(s) URLs, and www. ones; what ends them is whitespace, and trailing
// punctuation that is more likely the sentence's than the link's.
const LINK = /\b(?:https?:\/\/|www\.)[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]}>]+$/;

/**
 * Appends `text` to `parent` as text nodes, with links as <a> elements: never
 * as HTML. Links open in a new tab without giving it this page (noopener) or
 * where the user came from (noreferrer).
 */
export function appendLinkified(parent, text) {
  let last = 0;
  for (const m of text.matchAll(LINK)) {
    let raw = m[0];
    const trail = TRAILING.exec(raw);
    if (trail) {
      // Keep a closing parenthesis that has its opening one in the link.
      let cut = trail[0];
      if (cut.startsWith(')') && raw.split('(').length > raw.split(')').length - 1) cut = cut.slice(1);
      raw = raw.slice(0, raw.length - cut.length);
    }
    let url;
    try { url = new URL(/^www\./i.test(raw) ? 'https://' + raw : raw); } catch { continue; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement('a');
    a.href = url.href;
    a.textContent = raw;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    parent.appendChild(a);
    last = m.index + raw.length;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

/** Whether `text` mentions `nick` as a word of its own. */
export function mentions(text, nick) {
  if (!nick || !text) return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp('(^|[^\\p{L}\\p{N}_-])' + escaped + '($|[^\\p{L}\\p{N}_-])', 'iu').test(text);
}

// The server's error codes (docs/PROTOCOL.md, "Error codes") in plain words.
// `what` is the name the request was about, when there is one.
const SENTENCES = {
  invalid_nick: (e) => 'That nickname cannot be used: ' + detail(e, 'use letters, digits, _ and -, up to 32.'),
  nick_in_use: (e, what) => (what ? 'The nickname ' + what : 'That nickname') + ' is already taken. Choose another one.',
  nick_registered: (e, what) => (what ? 'The nickname ' + what : 'That nickname') + ' belongs to an account. Log in to use it.',
  invalid_room: () => 'That room name cannot be used: use letters, digits, _ and -, up to 32.',
  not_in_room: () => 'You are not in that room. Join it first.',
  no_such_nick: (e, what) => (what ? 'Nobody called ' + what + ' is here' : 'Nobody by that name is here') + ' right now.',
  no_such_room: () => 'There is no such room.',
  empty_message: () => 'There is nothing to send.',
  too_large: () => 'That message is too long. Split it into shorter ones.',
  invalid_text: () => 'That message contains characters that cannot be sent (such as line breaks).',
  flood: () => 'You are sending too fast. Wait a moment and try again.',
  store_unavailable: () => 'The message was not sent: the server cannot store messages right now. Try again soon.',
  cluster_unavailable: () => 'The message was not sent: the server cannot reach that person right now. Try again soon.',
  too_many_rooms: () => 'The server has too many rooms to open another one.',
  too_many_joined: () => 'You are in too many rooms. Leave one first.',
  invalid_credentials: () => 'Wrong nickname or password.',
  rate_limited: () => 'Too many attempts. Wait a minute and try again.',
  already_registered: () => 'This nickname is registered already. Log in instead.',
  not_logged_in: () => 'You are not logged in.',
  insecure_connection: () => 'This server only accepts passwords over an encrypted connection.',
  bad_password: (e) => 'That password cannot be used: ' + detail(e, 'use at least 8 characters.'),
  accounts_unavailable: () => 'Accounts are unavailable right now. Try again soon.',
  invalid_token: () => 'The sign-in from the site you came from was refused. Reload that site and try again.',
  tokens_disabled: () => 'This server does not accept sign-ins from other sites.',
  invalid_session: () => 'Your login has expired. Log in again.',
  // Moderation: the server's own words name the room first, lower-case; these read better.
  invite_only: () => 'That room is invite-only: ask one of its operators for an invitation.',
  registered_only: () => 'That room is for registered users: log in first.',
  room_full: () => 'That room is full.',
  moderated: () => 'This room is moderated: only its operators and voiced members may speak.',
  policy_full: () => 'That room holds too many entries of that kind already.',
  timeout: () => 'The server did not answer. Check your connection and try again.',
  offline: () => 'You are offline. Try again once the connection is back.',
  unknown_command: (e) => e.message,
  usage: (e) => e.message,
  not_supported: (e) => e.message,
};

/** The server's message after its first ':' (the detail), or `fallback`. */
function detail(e, fallback) {
  const m = /:\s*(.+)$/.exec((e && e.message) || '');
  return m ? m[1].replace(/\.?$/, '.') : fallback;
}

/** One sentence for an error `{code, message}` from the server or the page. */
export function sentence(err, what) {
  if (!err) return 'Something went wrong.';
  const f = SENTENCES[err.code];
  if (f) return f(err, what);
  const text = err.message || String(err);
  return text.charAt(0).toUpperCase() + text.slice(1).replace(/\.?$/, '.');
}
