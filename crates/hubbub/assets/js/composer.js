// The message box: text to the conversation on screen, the line protocol's
// slash commands (done with Socket.IO requests), nickname completion on Tab,
// and the lines sent before on Up/Down.
import { MODERATION_HELP, moderationCommand } from './moderation.js';
import { currentConv, isJoined, state } from './state.js';
import { $, same, sentence } from './util.js';

const input = $('message-input');
const errorBox = $('composer-error');
const HISTORY = 100;           // lines kept for Up/Down

// What `/help` lists, in the line protocol's words where the command is the same.
const HELP = [
  ['/join ROOM', 'join ROOM (created if new); you stay in your other rooms'],
  ['/part [ROOM]', 'leave this room (or ROOM); /leave too'],
  ['/nick NAME', 'change your nickname'],
  ['/msg NICK TEXT', 'send TEXT to NICK only, in a conversation of its own'],
  ['/query NICK', 'open a private conversation with NICK'],
  ['/me ACTION', 'tell the room what you are doing'],
  ['/who', 'list who is in this room'],
  ['/rooms', 'list the rooms'],
  ['/whois NICK', 'whether NICK is registered, here and logged in'],
  ['/register PASSWORD', 'register your nickname: nobody else can take it'],
  ['/login [NICK] PASSWORD', 'log in to your registered nickname'],
  ['/logout', 'log out (you keep your nickname until you change it)'],
  ['/password OLD NEW', 'change your password'],
  ['/help', 'this list'],
  ['//TEXT', 'send a line that starts with /'],
];

/** Lines that carry a password: never kept for Up/Down. */
const SECRET = /^\/(login|register|password|unregister|token)\b/i;

let actions = null;
const sent = [];               // lines sent, oldest first
let browsing = -1;             // index into `sent` while going through it with Up/Down
let draft = '';                // what was typed before the first Up
let completion = null;         // {start, end, prefix, matches, index} while Tab cycles

export function showComposerError(err, what) {
  errorBox.textContent = sentence(err, what);
  errorBox.dataset.code = (err && err.code) || '';
  errorBox.hidden = false;
}

export function clearComposerError() {
  errorBox.hidden = true;
  errorBox.textContent = '';
  delete errorBox.dataset.code;
}

function usage(text) { return { code: 'usage', message: 'Usage: ' + text }; }

function remember(line) {
  if (SECRET.test(line)) return;
  if (sent[sent.length - 1] !== line) sent.push(line);
  if (sent.length > HISTORY) sent.shift();
}

/** Runs `promise`; on success clears the box, on failure shows why and keeps the line. */
function settle(line, promise, what) {
  input.value = '';
  return Promise.resolve(promise).then(() => clearComposerError(), (err) => {
    if (!input.value) input.value = line;
    showComposerError(err, what);
  });
}

function command(line) {
  const m = /^\/(\S+)\s*([\s\S]*)$/.exec(line);
  const name = m[1].toLowerCase(), rest = m[2].trim();
  const args = rest ? rest.split(/\s+/) : [];
  const conv = currentConv();
  switch (name) {
    case 'join': case 'j':
      if (args.length !== 1) return showComposerError(usage('/join ROOM'));
      return settle(line, actions.join(args[0]), args[0]);
    case 'part': case 'leave': {
      const room = args[0] || (conv && conv.kind === 'room' ? conv.name : null);
      if (!room) return showComposerError(usage('/part ROOM (this is not a room)'));
      return settle(line, actions.leave(room), room);
    }
    case 'nick':
      if (args.length !== 1) return showComposerError(usage('/nick NAME'));
      return settle(line, actions.setNick(args[0]), args[0]);
    case 'msg': case 'query': {
      const pm = /^(\S+)\s*([\s\S]*)$/.exec(rest);
      if (!pm || (name === 'msg' && !pm[2])) return showComposerError(usage(name === 'msg' ? '/msg NICK TEXT' : '/query NICK'));
      if (!pm[2]) { input.value = ''; actions.openPrivate(pm[1], true); return undefined; }
      return settle(line, actions.sendPrivate(pm[1], pm[2], true), pm[1]);
    }
    case 'me':
      if (!rest) return showComposerError(usage('/me ACTION'));
      if (!conv || conv.kind !== 'room') return showComposerError({ code: 'usage', message: '/me works in rooms only.' });
      return settle(line, actions.sendMessage({ room: conv.name, text: rest, action: true }, line));
    case 'who':
      if (!conv || conv.kind !== 'room') return showComposerError({ code: 'usage', message: '/who works in rooms only.' });
      return settle(line, actions.who(conv));
    case 'rooms':
      return settle(line, actions.listRooms());
    case 'whois':
      if (args.length !== 1) return showComposerError(usage('/whois NICK'));
      return settle(line, actions.whois(args[0]), args[0]);
    case 'login':
      if (args.length < 1 || args.length > 2) return showComposerError(usage('/login [NICK] PASSWORD'));
      return settle(line, actions.login(args.length === 2 ? args[0] : null, args[args.length - 1]), args[0]);
    case 'register':
      if (args.length !== 1) return showComposerError(usage('/register PASSWORD'));
      return settle(line, actions.register(args[0]));
    case 'logout':
      return settle(line, actions.logout());
    case 'password':
      if (args.length !== 2) return showComposerError(usage('/password OLD NEW'));
      return settle(line, actions.changePassword(args[0], args[1]));
    case 'help': case '?':
      input.value = '';
      clearComposerError();
      actions.notice('Commands:');
      HELP.forEach(([c, what]) => actions.notice(c + ' — ' + what));
      actions.notice('Moderation (operators of a room, or of the server):');
      MODERATION_HELP.forEach(([c, what]) => actions.notice(c + ' — ' + what));
      return undefined;
    default: {
      const room = conv && conv.kind === 'room' ? conv.name : null;
      const moderating = moderationCommand(name, rest, room, (text) => actions.notice(text));
      if (moderating) return settle(line, moderating, args[0]);
      return showComposerError({ code: 'unknown_command', message: 'There is no command /' + name + '. Type /help for the list.' });
    }
  }
}

function submit(ev) {
  ev.preventDefault();
  const line = input.value;
  if (!line.trim()) return;
  const conv = currentConv();
  actions.stopTyping();
  remember(line);
  browsing = -1;
  if (line.charAt(0) === '/' && line.charAt(1) !== '/') { command(line); return; }
  const text = line.charAt(0) === '/' ? line.slice(1) : line;
  if (!conv) return;
  if (conv.kind === 'private') { settle(line, actions.sendPrivate(conv.name, text, false), conv.name); return; }
  if (!isJoined(conv.name)) return;
  settle(line, actions.sendMessage({ room: conv.name, text }, line));
}

/** Nicknames that complete `prefix`: the room's members, or the conversation's peer. */
function candidates(prefix) {
  const conv = currentConv();
  if (!conv) return [];
  const names = conv.kind === 'room' ? conv.members.slice() : [conv.name];
  const p = prefix.toLowerCase();
  return names.filter((n) => n.toLowerCase().startsWith(p) && !(state.nick && same(n, state.nick)))
    .sort((a, b) => a.localeCompare(b));
}

function complete(ev) {
  if (completion && input.value.slice(completion.start, completion.end) === completion.matches[completion.index] + completion.suffix) {
    completion.index = (completion.index + (ev.shiftKey ? completion.matches.length - 1 : 1)) % completion.matches.length;
  } else {
    const caret = input.selectionStart;
    const before = input.value.slice(0, caret);
    const m = /([^\s]+)$/.exec(before);
    if (!m) return false;
    const matches = candidates(m[1]);
    if (!matches.length) return false;
    const start = caret - m[1].length;
    completion = { start, end: caret, matches, index: 0, suffix: start === 0 ? ': ' : ' ' };
  }
  const c = completion;
  const word = c.matches[c.index] + c.suffix;
  input.value = input.value.slice(0, c.start) + word + input.value.slice(c.end);
  c.end = c.start + word.length;
  input.setSelectionRange(c.end, c.end);
  return true;
}

function keydown(ev) {
  if (ev.key === 'Tab' && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
    // Only when there is a name to complete: otherwise Tab moves on, as everywhere.
    if (input.value && complete(ev)) ev.preventDefault();
    else completion = null;
    return;
  }
  completion = null;
  if (ev.key === 'ArrowUp' && sent.length && (browsing !== -1 || !input.value.includes('\n'))) {
    if (browsing === -1) { draft = input.value; browsing = sent.length; }
    if (browsing > 0) browsing -= 1;
    input.value = sent[browsing];
    ev.preventDefault();
  } else if (ev.key === 'ArrowDown' && browsing !== -1) {
    browsing += 1;
    if (browsing >= sent.length) { browsing = -1; input.value = draft; } else input.value = sent[browsing];
    ev.preventDefault();
  }
}

export function setupComposer(a) {
  actions = a;
  $('composer').addEventListener('submit', submit);
  input.addEventListener('keydown', keydown);
  input.addEventListener('input', () => { if (!errorBox.hidden) clearComposerError(); });
}
