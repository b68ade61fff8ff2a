// The offline page (shown by the service worker for a page it could not fetch): the status
// says "Offline", and the page the user asked for loads again once the network is back.

import { ConnectionStatus } from './status.js';

new ConnectionStatus(document.getElementById('status')).offline();

function retry() {
  window.location.reload();
}

document.getElementById('offline-retry').addEventListener('click', retry);
window.addEventListener('online', retry);
