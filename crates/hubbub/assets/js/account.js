// Who the user is: a guest, logged in to an account, or signed in by a host
// application that embeds the page with a token.
//
// - Log in / register: `login {nick, password}`, or `set nickname` then
//   `register {password}`. Their answer may carry `session`, a short-lived
//   token from the server: it is kept in sessionStorage (never the password)
//   and given as CONNECT `auth: {session}`, so a reconnect or a reload stays
//   logged in. A refused one (`connect_error` with `data.code`
//   "invalid_session") is dropped and the form shown again. `logout` revokes it.
// - Embedded: the host opens `/#token=JWT`. The token is taken from the
//   fragment (which never reaches a server's logs) and removed from the
//   address bar, then given as `auth: {token}`; no form. Before it expires
//   the server sends `error {code: "token_expiring"}`: the page asks its
//   parent window (`postMessage({type: 'hubbub:token-expiring'})`) and sends
//   the `{type: 'hubbub:token', token}` it answers with as `refresh {token}`.
import { forgetPrivates } from './keep.js';
import { request, socket } from './net.js';
import { state } from './state.js';
import { $, same, sentence } from './util.js';
import { renderHeader } from './view.js';

const SESSION_KEY = 'hubbub.session';

const el = {
  toggle: $('account-toggle'), panel: $('account-panel'),
  nickForm: $('nick-form'), nickInput: $('nick-input'),
  loginForm: $('login-form'), loginNick: $('login-nick'), loginPassword: $('login-password'),
  loggedIn: $('logged-in'), loggedInAs: $('logged-in-as'), logout: $('logout-button'),
  embedded: $('embedded-note'),
};

let appToken = null;      // the host application's token, embedded pages only
let sentSession = null;   // the session token the last CONNECT carried

function storage() {
  try { return window.sessionStorage; } catch { return null; }
}

function savedSession() {
  try { return JSON.parse(storage().getItem(SESSION_KEY)); } catch { return null; }
}

function saveSession(nick, session) {
  try {
    if (session) storage().setItem(SESSION_KEY, JSON.stringify({ nick, session }));
    else storage().removeItem(SESSION_KEY);
  } catch { /* storage unavailable (privacy mode): a reload then needs the form */ }
}

/** Takes an application token from the address (`#token=JWT`) and clears it from there. */
export function readToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return;
  appToken = decodeURIComponent(m[1]);
  state.identity = 'token';
  history.replaceState(null, '', location.pathname + location.search);
}

export function embedded() { return appToken !== null; }

/**
 * The rooms the application's token names (its `rooms` claim): the server
 * puts the session in them at connect without telling, so the page asks for
 * them itself. Read only, not verified: the server verified the token.
 */
export function tokenRooms() {
  if (!appToken) return [];
  try {
    const part = appToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return Array.isArray(claims.rooms) ? claims.rooms.filter((r) => typeof r === 'string') : [];
  } catch {
    return [];
  }
}

/** What the next CONNECT's `auth` carries besides the vocabulary. */
export function authPayload() {
  if (appToken) { sentSession = null; return { token: appToken }; }
  const saved = savedSession();
  sentSession = saved && saved.session ? saved : null;
  return sentSession ? { session: sentSession.session } : {};
}

/** After `welcome`: whether the session token logged us in. */
export function welcomed(nick) {
  if (appToken) {
    state.identity = 'token';
  } else if (sentSession) {
    // A server that does not know session tokens ignores them: we are a guest then.
    if (same(nick, sentSession.nick)) {
      state.identity = 'account';
      state.chosenNick = nick;
    } else {
      saveSession(null, null);
      state.identity = 'guest';
    }
  }
  renderAccount();
}

/** A refused CONNECT: a stale session is dropped, an embedded page asks for a new token. Returns whether handled. */
export function refused(err) {
  const code = err && err.data && err.data.code;
  if (sentSession && (code === 'invalid_session' || /session/i.test((err && err.message) || ''))) {
    saveSession(null, null);
    forgetPrivates();
    sentSession = null;
    state.identity = 'guest';
    state.chosenNick = null;
    renderAccount();
    showError('login-error', { code: 'invalid_session' });
    openPanel(true);
    socket.connect();
    return true;
  }
  if (appToken) {
    askParent();
    return true;
  }
  return false;
}

export function askParent() {
  if (window.parent !== window) window.parent.postMessage({ type: 'hubbub:token-expiring' }, '*');
}

function onParentMessage(ev) {
  if (window.parent === window || ev.source !== window.parent) return;
  const d = ev.data;
  if (!d || d.type !== 'hubbub:token' || typeof d.token !== 'string' || !d.token) return;
  appToken = d.token;
  state.identity = 'token';
  if (!socket.connected) { socket.connect(); return; }
  request('refresh', { token: appToken }).then((res) => {
    state.tokenExp = res && res.exp;
  }, (err) => console.warn('token refresh refused:', err && err.message));
}

// ---------- errors beside the form they belong to ----------

export function showError(id, err, what) {
  const p = $(id);
  p.textContent = sentence(err, what);
  p.dataset.code = (err && err.code) || '';
  p.hidden = false;
}

export function clearError(id) {
  const p = $(id);
  p.textContent = '';
  p.hidden = true;
  delete p.dataset.code;
}

// ---------- the panel ----------

export function openPanel(open) {
  el.panel.hidden = !open;
  el.toggle.setAttribute('aria-expanded', String(open));
  if (open) {
    const first = state.identity === 'guest' ? el.nickInput : el.logout;
    if (first && !first.closest('[hidden]')) first.focus();
  }
}

export function renderAccount() {
  const guest = state.identity === 'guest';
  el.loginForm.hidden = !guest || embedded();
  el.loggedIn.hidden = state.identity !== 'account';
  el.embedded.hidden = !embedded();
  el.nickForm.hidden = embedded() || state.identity === 'account';
  el.loggedInAs.textContent = state.nick || '';
  if (guest && !el.loginNick.value && state.chosenNick) el.loginNick.value = state.chosenNick;
  renderHeader();
}

/** Logged in as `nick` (by `login` or `register`, from the form or the composer). */
export function loggedIn(res) {
  state.nick = res.nick;
  state.chosenNick = res.nick;
  state.identity = 'account';
  if (res.session) saveSession(res.nick, res.session);
  renderAccount();
}

export function login(nick, password) {
  const payload = { password };
  if (nick) payload.nick = nick;
  return request('login', payload).then((res) => { loggedIn(res); return res; });
}

/** Registers `nick` (taking it first if it is not ours yet). */
export function register(nick, password) {
  // Said before the nickname is taken, rather than after (the server's rule).
  if ([...password].length < 8) return Promise.reject({ code: 'bad_password', message: 'a password has 8 characters or more' });
  const take = nick && !same(nick, state.nick || '')
    ? request('set nickname', nick).then((res) => { state.nick = res.nick; state.chosenNick = res.nick; })
    : Promise.resolve();
  return take.then(() => request('register', { password })).then((res) => { loggedIn(res); return res; });
}

/** Logs out; the server revokes the session token. The answer's `nick` is the
 * one kept, or a guest name when other devices hold the account's. */
export function logout() {
  return request('logout').then((res) => {
    saveSession(null, null);
    forgetPrivates();
    state.identity = 'guest';
    if (res && res.nick) { state.nick = res.nick; state.chosenNick = res.nick; }
    renderAccount();
    return res;
  });
}

/** Changes the password; the server ends the account's other session tokens and sends this client a new one. */
export function changePassword(old, password) {
  return request('password', { old, new: password }).then((res) => {
    if (res && res.session) saveSession(state.nick, res.session);
    return res;
  });
}

export function setupAccount(actions) {
  window.addEventListener('message', onParentMessage);
  el.toggle.addEventListener('click', () => openPanel(el.panel.hidden));
  el.panel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { openPanel(false); el.toggle.focus(); }
  });
  // A click elsewhere closes it, as a menu would.
  document.addEventListener('pointerdown', (ev) => {
    if (!el.panel.hidden && !el.panel.contains(ev.target) && !el.toggle.contains(ev.target)) openPanel(false);
  });

  el.nickForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const nick = el.nickInput.value.trim();
    if (!nick) return;
    actions.setNick(nick).then(() => {
      el.nickInput.value = '';
      clearError('nick-error');
      openPanel(false);
    }, (err) => showError('nick-error', err, nick));
  });
  el.nickInput.addEventListener('input', () => clearError('nick-error'));

  el.loginForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const nick = el.loginNick.value.trim(), password = el.loginPassword.value;
    if (!nick || !password) return;
    const registering = ev.submitter && ev.submitter.id === 'register-button';
    (registering ? register(nick, password) : login(nick, password)).then(() => {
      el.loginPassword.value = '';
      clearError('login-error');
      actions.loggedIn();
      openPanel(false);
    }, (err) => showError('login-error', err, nick));
  });
  el.loginPassword.addEventListener('input', () => clearError('login-error'));

  el.logout.addEventListener('click', () => {
    logout().then(() => clearError('logout-error'), (err) => showError('logout-error', err));
  });
  renderAccount();
}
