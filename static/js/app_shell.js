// The installable app, page side: registers the service worker (/sw.js) where the browser
// allows one (https, or localhost), tells it when this browser logs out so that it empties
// its cache, and passes on its "open this chat" when a notification is clicked. A logout
// forgets the drafts kept in this browser too (the login page is where a session ends).

import { forgetDrafts } from './drafts.js';

const supported = 'serviceWorker' in navigator && window.isSecureContext;

/** The worker's registration, or null: none in this browser, or none allowed here. */
export const registration = supported
  ? navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => null)
  : Promise.resolve(null);

/** The active worker, or null. */
export async function activeWorker() {
  const found = await registration;
  return found ? found.active || found.waiting || found.installing : null;
}

async function loggingOut() {
  const worker = navigator.serviceWorker.controller || (await activeWorker());
  if (worker) worker.postMessage({ type: 'logged-out' });
}

/** `callback(chatId)` when the worker asks this page to open a chat (a notification's click). */
export function onOpenChat(callback) {
  if (!supported) return;
  navigator.serviceWorker.addEventListener('message', (event) => {
    const data = event.data || {};
    if (data.type === 'open-chat' && Number.isInteger(data.chatId) && data.chatId > 0) {
      callback(data.chatId);
    }
  });
  navigator.serviceWorker.startMessages();
}

if (supported) {
  for (const form of document.querySelectorAll('form.logout-form')) {
    // The message is queued at once; the worker finishes its work after the page has gone.
    form.addEventListener('submit', loggingOut);
  }
}

for (const form of document.querySelectorAll('form.logout-form')) {
  form.addEventListener('submit', forgetDrafts);
}
if (window.location.pathname === '/login') forgetDrafts();
