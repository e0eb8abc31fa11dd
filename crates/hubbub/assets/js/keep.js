// Private conversations kept across reloads of the tab. The server keeps no
// history of private messages, so the page keeps what it saw: in
// sessionStorage (this tab only, gone when it closes), under the nickname
// they belong to, and only given back to that nickname (a reload logged in
// by a session token). Logging out forgets them.
import { privateConvs, privateConv, state } from './state.js';
import { same } from './util.js';

const KEY = 'hubbub.private';
const KEEP = 200;        // messages per conversation

function storage() {
  try { return window.sessionStorage; } catch { return null; }
}

/** Saves the private conversations (at once: a reload may follow right away). */
export function keepPrivates() {
  const s = storage();
  if (!s || !state.nick) return;
  const convs = privateConvs().map((c) => ({
    name: c.name,
    entries: c.log.filter((e) => e.kind === 'private').slice(-KEEP)
      .map(({ dir, from, to, text, ts }) => ({ dir, from, to, text, ts })),
  })).filter((c) => c.entries.length);
  try { s.setItem(KEY, JSON.stringify({ owner: state.nick, convs })); } catch { /* full: not kept */ }
}

export function forgetPrivates() {
  try { storage().removeItem(KEY); } catch { /* nothing kept */ }
}

/** Gives back the conversations kept for `nick`; those of anyone else are dropped. */
export function restorePrivates(nick) {
  let kept = null;
  try { kept = JSON.parse(storage().getItem(KEY)); } catch { kept = null; }
  if (!kept || !Array.isArray(kept.convs)) return;
  if (!same(kept.owner || '', nick)) { forgetPrivates(); return; }
  for (const c of kept.convs) {
    if (!c || typeof c.name !== 'string' || !Array.isArray(c.entries)) continue;
    const conv = privateConv(c.name);
    if (conv.log.length) continue;
    for (const e of c.entries) {
      if (!e || typeof e.text !== 'string') continue;
      const dir = e.dir === 'out' ? 'out' : 'in';
      conv.log.push({ kind: 'private', dir, from: String(e.from), to: String(e.to), text: e.text, ts: Number(e.ts) || Date.now(), mine: dir === 'out', history: true });
    }
  }
}
