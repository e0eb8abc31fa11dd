// What the page knows: who we are, the conversations (rooms and private
// conversations) with their logs, unread counts and members. No DOM here.
import { roomKey, same } from './util.js';

export const state = {
  nick: null,            // as the server knows us
  chosenNick: null,      // what the user asked for; restored after a reconnect
  defaultRoom: null,     // from the first `welcome`
  joined: [],            // room names we are in, in join order (restored after a reconnect)
  current: null,         // key of the conversation on screen
  convs: new Map(),      // key -> conversation (see newConv)
  rooms: [],             // [{name, members}] from `rooms`
  connects: 0,
  // False from a disconnect until the nickname and rooms are restored:
  // what is typed meanwhile waits in `held` (socket.io-client would send
  // it the moment it reconnects, before the page is back in its rooms).
  ready: true,
  held: [],              // [{kind: 'message', payload, raw} | {kind: 'private', to, text}]
  ignore: {},            // room key -> true: events of a room we are leaving again after a reconnect
  // How we are identified: 'guest', 'account' (logged in with a password or
  // a session token) or 'token' (a host application's token, no form).
  identity: 'guest',
  tokenExp: null,        // `exp` of the application token, once refreshed
};

/** Key of a room's conversation. */
export const roomId = (room) => 'r:' + roomKey(room);
/** Key of the private conversation with `nick`. */
export const privateId = (nick) => 'p:' + String(nick).toLowerCase();

function newConv(key, kind, name) {
  return {
    key, kind, name,
    log: [],               // entries, oldest first (see chat.js addEntry)
    unread: 0,             // messages from others not seen yet
    mentions: 0,           // of those, the ones that name us (every private message counts)
    firstUnread: null,     // the oldest unseen entry: the "new messages" marker goes before it
    marker: null,          // the entry the marker is shown before, while on screen
    topic: null,           // rooms: the topic, if any
    amOp: false,           // rooms: we are one of its operators (main.js probeOperator)
    modOpen: null,         // rooms: the member whose operator actions are shown
    members: [],           // rooms: nicknames
    loggedIn: [],          // rooms: members logged in to an account
    typers: {},            // rooms: nick -> expiresAt
    // Rooms, history and resume (chat.js roomSync):
    ids: new Map(), lastId: null, older: false, cap: 500, epoch: 0, loading: false,
  };
}

export function roomConv(room) {
  const key = roomId(room);
  let c = state.convs.get(key);
  if (!c) state.convs.set(key, c = newConv(key, 'room', String(room).replace(/^#/, '')));
  return c;
}

export function privateConv(nick) {
  const key = privateId(nick);
  let c = state.convs.get(key);
  if (!c) state.convs.set(key, c = newConv(key, 'private', nick));
  return c;
}

export function currentConv() { return state.current ? state.convs.get(state.current) || null : null; }

export function isCurrent(conv) { return !!conv && conv.key === state.current; }

export function findJoined(room) {
  for (const r of state.joined) if (same(r, String(room).replace(/^#/, ''))) return r;
  return null;
}

export function isJoined(room) { return findJoined(room) !== null; }

export function ignored(room) { return !!state.ignore[roomKey(room)]; }

/** Private conversations, oldest first. */
export function privateConvs() {
  return [...state.convs.values()].filter((c) => c.kind === 'private');
}

/** Every unread message, and every mention, across conversations. */
export function totals() {
  let unread = 0, mentions = 0;
  for (const c of state.convs.values()) { unread += c.unread; mentions += c.mentions; }
  return { unread, mentions };
}
