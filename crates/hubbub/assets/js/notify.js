// Desktop notifications for mentions and private messages while the page is
// hidden (the Notification API). Permission is asked for only when the user
// presses the "Notify me" button, as browsers require (and users expect).
import { $ } from './util.js';

const button = $('notify-button');
const note = $('notify-state');

function supported() { return typeof window.Notification === 'function'; }

export function renderNotify() {
  if (!supported()) {
    button.hidden = true;
    note.textContent = 'This browser cannot show notifications.';
    return;
  }
  const p = Notification.permission;
  button.hidden = p !== 'default';
  note.textContent = p === 'granted' ? 'Notifications are on for mentions and private messages.'
    : p === 'denied' ? 'Notifications are blocked in this browser’s site settings.' : '';
}

export function setupNotify() {
  renderNotify();
  button.addEventListener('click', () => {
    if (!supported()) return;
    Promise.resolve(Notification.requestPermission()).then(renderNotify, renderNotify);
  });
}

/** Shows a notification for entry `e` of conversation `conv`, if the page is hidden and allowed. */
export function notify(conv, e) {
  if (document.visibilityState === 'visible' || !supported() || Notification.permission !== 'granted') return;
  const title = conv.kind === 'room' ? e.from + ' in #' + conv.name : e.from + ' (private)';
  try {
    const n = new Notification(title, { body: e.text, tag: 'hubbub-' + conv.key });
    n.onclick = () => {
      window.focus();
      window.dispatchEvent(new CustomEvent('hubbub:open', { detail: conv.key }));
      n.close();
    };
  } catch (err) {
    // Some browsers (Android Chrome) only notify from a service worker: nothing to show then.
  }
}
