// The Socket.IO connection (socket.io-client, served as /socket.io.min.js)
// and requests with acknowledgements (docs/PROTOCOL.md, "Requests").

/* global io */
export let socket = null;

/**
 * Opens the connection. `auth` is called before every (re)connect, so a
 * session token or an application token obtained meanwhile is used.
 * The page reads room messages as `message` only: one packet per message
 * (docs/PROTOCOL.md, "Vocabularies").
 */
export function connect(auth) {
  socket = io({
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
    auth: (cb) => cb(Object.assign({ vocabulary: 'hubbub' }, auth())),
  });
  return socket;
}

/** Emits `event` with an acknowledgement; resolves to `ok`, rejects with `{code, message}`. */
export function request(event, payload) {
  return new Promise((resolve, reject) => {
    if (!socket || !socket.connected) {
      reject({ code: 'offline', message: 'not connected' });
      return;
    }
    const done = (timeoutErr, res) => {
      if (timeoutErr) reject({ code: 'timeout', message: 'the server did not answer ' + event });
      else if (res && Object.prototype.hasOwnProperty.call(res, 'error')) reject(res.error);
      else resolve(res ? res.ok : undefined);
    };
    const s = socket.timeout(10000);
    if (payload === undefined) s.emit(event, done);
    else s.emit(event, payload, done);
  });
}
