// Room moderation and server operators' commands from the message box: the
// line protocol's `/topic`, `/kick`, `/ban`… done with the Socket.IO requests
// of the same names (docs/PROTOCOL.md). The server decides who may: anyone
// else gets its refusal, in words, beside the message box.
import { request } from './net.js';

// `/ban MASK [DURATION] [REASON]`: a duration is a number and s, m, h or d.
const DURATION = /^\d+[smhd]$/i;

export const MODERATION_HELP = [
  ['/topic [TEXT|-]', 'show, set or (with -) clear this room\'s topic'],
  ['/mode [CHANGE [ARG]]', 'show or change the modes: +i invite-only, +m moderated, +R registered only, -t anyone sets the topic, +l N'],
  ['/kick NICK [REASON]', 'remove NICK from this room'],
  ['/ban MASK [DURATION] [REASON]', 'ban NICK, account:NAME, nick:PATTERN or ip:ADDRESS; DURATION like 10m, 2h, 7d'],
  ['/unban MASK', 'lift a ban'],
  ['/mute MASK [DURATION] [REASON]', 'may stay, may not speak'],
  ['/unmute MASK', 'lift a mute'],
  ['/bans', 'list this room\'s bans and mutes'],
  ['/op NICK, /deop NICK', 'give or take operator status (the owner)'],
  ['/voice NICK, /devoice NICK', 'let NICK speak in a moderated room, or not'],
  ['/invite NICK', 'let NICK into this invite-only room'],
  ['/modlog [N]', 'the last N moderation actions (operators)'],
  ['/kline MASK [DURATION] [REASON]', 'ban from the server (server operators)'],
  ['/unkline MASK, /klines', 'lift or list server bans (server operators)'],
  ['/kill NICK [REASON]', 'disconnect NICK everywhere (server operators)'],
  ['/wall TEXT', 'a notice to everyone (server operators)'],
];

function usage(text) { return Promise.reject({ code: 'usage', message: 'Usage: ' + text }); }

function banLine(b) {
  let line = String(b.mask) + ' (by ' + b.by;
  if (b.until) line += ', until ' + new Date(b.until).toLocaleString();
  line += ')';
  return b.reason ? line + ': ' + b.reason : line;
}

/** `MASK [DURATION] [REASON]` as a payload. */
function banArgs(args, rest) {
  const payload = { mask: args[0] };
  let skip = 1;
  if (args[1] && DURATION.test(args[1])) { payload.duration = args[1]; skip = 2; }
  const reason = rest.split(/\s+/).slice(skip).join(' ');
  if (reason) payload.reason = reason;
  return payload;
}

/**
 * Runs moderation command `name` (without its '/') with arguments `rest` in
 * room `room` (null outside a room); `notice` shows a line in the
 * conversation. Returns a promise, or null when `name` is not one of these.
 */
export function moderationCommand(name, rest, room, notice) {
  const args = rest ? rest.split(/\s+/) : [];
  const inRoom = (payload) => (room ? Object.assign({ room }, payload) : payload);
  const needRoom = () => Promise.reject({ code: 'usage', message: '/' + name + ' works in rooms only.' });
  const done = (what) => () => notice(what);
  switch (name) {
    case 'topic': {
      if (!room) return needRoom();
      if (!rest) {
        return request('topic', { room }).then((t) => notice(t && t.topic
          ? 'Topic of #' + t.room + ': ' + t.topic + ' (set by ' + t.by + ')' : '#' + (t ? t.room : room) + ' has no topic.'));
      }
      return request('topic', { room, topic: rest === '-' ? null : rest });
    }
    case 'mode':
      if (!room) return needRoom();
      return request('mode', args.length ? { room, change: args[0], arg: args[1] } : { room })
        .then((m) => notice('Modes of #' + m.room + ': ' + (m.modes || 'none')));
    case 'kick':
      if (!room) return needRoom();
      if (!args.length) return usage('/kick NICK [REASON]');
      return request('kick', { room, nick: args[0], reason: args.slice(1).join(' ') || undefined });
    case 'ban': case 'mute':
      if (!room) return needRoom();
      if (!args.length) return usage('/' + name + ' MASK [DURATION] [REASON]');
      return request(name, inRoom(banArgs(args, rest))).then(done((name === 'ban' ? 'Banned ' : 'Muted ') + args[0] + '.'));
    case 'unban': case 'unmute':
      if (!room) return needRoom();
      if (args.length !== 1) return usage('/' + name + ' MASK');
      return request(name, { room, mask: args[0] }).then(done((name === 'unban' ? 'Unbanned ' : 'Unmuted ') + args[0] + '.'));
    case 'bans':
      if (!room) return needRoom();
      return request('bans', { room }).then((b) => {
        notice('Bans of #' + b.room + ' (' + b.bans.length + ')' + (b.bans.length ? ': ' + b.bans.map(banLine).join('; ') : '.'));
        notice('Mutes of #' + b.room + ' (' + b.mutes.length + ')' + (b.mutes.length ? ': ' + b.mutes.map(banLine).join('; ') : '.'));
      });
    case 'op': case 'deop': case 'voice': case 'devoice': case 'invite':
      if (!room) return needRoom();
      if (args.length !== 1) return usage('/' + name + ' NICK');
      return request(name, { room, nick: args[0] }).then(name === 'invite' ? done('Invited ' + args[0] + ' to #' + room + '.') : undefined);
    case 'modlog': {
      if (!room) return needRoom();
      const limit = Number(args[0]) || 20;
      return request('modlog', { room, limit }).then((l) => {
        notice('Moderation log of #' + l.room + ' (' + l.entries.length + ')' + (l.entries.length ? ':' : '.'));
        for (const e of l.entries) {
          notice(new Date(e.ms).toLocaleString() + ' — ' + e.actor + ' ' + e.action + (e.target ? ' ' + e.target : '') + (e.reason ? ' (' + e.reason + ')' : ''));
        }
      });
    }
    case 'kline':
      if (!args.length) return usage('/kline MASK [DURATION] [REASON]');
      return request('kline', banArgs(args, rest)).then(done('Banned ' + args[0] + ' from the server.'));
    case 'unkline':
      if (args.length !== 1) return usage('/unkline MASK');
      return request('unkline', { mask: args[0] }).then(done('Lifted the server ban on ' + args[0] + '.'));
    case 'klines':
      return request('klines', {}).then((b) => {
        const list = (b && b.bans) || [];
        notice('Server bans (' + list.length + ')' + (list.length ? ': ' + list.map(banLine).join('; ') : '.'));
      });
    case 'kill':
      if (!args.length) return usage('/kill NICK [REASON]');
      return request('kill', { nick: args[0], reason: args.slice(1).join(' ') || undefined }).then(done('Disconnected ' + args[0] + '.'));
    case 'wall':
      if (!rest) return usage('/wall TEXT');
      return request('wall', { text: rest });
    default:
      return null;
  }
}
