// The offline page (shown by the service worker for a page it could not fetch): the status
// says "Offline", and the page the user asked for loads again once the server answers.

import { ConnectionStatus } from './status.js';

// How often to ask the server whether it is back (the browser's `online` event tells of
// the network, not of the server, and may come before the network carries anything).
const PROBE_EVERY_MS = 5000;

new ConnectionStatus(document.getElementById('status')).offline();

let probing = false;

/** Reload the page the user asked for if the server answers (the worker passes it on). */
async function reloadIfBack() {
  if (probing) return;
  probing = true;
  try {
    const response = await fetch('/offline', { method: 'HEAD', cache: 'no-store', credentials: 'omit' });
    if (response.ok) window.location.reload();
  } catch {
    // Still offline: the next probe tries again.
  } finally {
    probing = false;
  }
}

document.getElementById('offline-retry').addEventListener('click', () => window.location.reload());
window.addEventListener('online', reloadIfBack);
setInterval(reloadIfBack, PROBE_EVERY_MS);
