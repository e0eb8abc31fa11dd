// The drawers of narrow screens: on a phone the rooms (and on a tablet the
// members) slide in over the conversation from buttons in the top bar. The
// focus goes into an opened drawer and back to its button when it closes
// (Escape, the shade behind it, or choosing a conversation).
import { $ } from './util.js';

const drawers = { rooms: [$('rooms-toggle'), $('sidebar')], members: [$('members-toggle'), $('members-panel')] };

function openDrawer(name) {
  document.body.dataset.drawer = name;
  for (const [n, [toggle]] of Object.entries(drawers)) toggle.setAttribute('aria-expanded', String(n === name));
  $('scrim').hidden = false;
  const first = drawers[name][1].querySelector('button, input');
  if (first) first.focus();
}

export function closeDrawers() {
  const open = document.body.dataset.drawer;
  if (!open) return;
  delete document.body.dataset.drawer;
  for (const [toggle] of Object.values(drawers)) toggle.setAttribute('aria-expanded', 'false');
  $('scrim').hidden = true;
  if (drawers[open][1].contains(document.activeElement)) drawers[open][0].focus();
}

export function setupDrawers() {
  for (const [name, [toggle]] of Object.entries(drawers)) {
    toggle.addEventListener('click', () => {
      if (document.body.dataset.drawer === name) closeDrawers();
      else openDrawer(name);
    });
  }
  $('scrim').addEventListener('click', closeDrawers);
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') closeDrawers(); });
}
