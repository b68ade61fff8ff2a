// The chat's service worker, served at /sw.js so that its scope is the whole site. The
// server puts `const SHELL = {version, offline_url, assets}` before this file (app_shell.py).
//
// It caches the app shell only: the static files the pages load and the offline page, all
// fetched without cookies, so nothing in the cache belongs to anyone. Pages, uploads,
// searches and everything else go to the network and are never stored. Navigations that
// fail show the cached offline page instead of the browser's error page. Logging out (or
// any visit to the login page) empties the cache, which is then filled with the shell again.
//
// It also shows the page's notifications (`showNotification`, the only kind a phone's
// browser allows) and brings the chat forward when one is clicked.

/* global SHELL */

const CACHE_PREFIX = 'chat-shell-';
const CACHE_NAME = `${CACHE_PREFIX}${SHELL.version}`;
const SHELL_PATHS = new Set(SHELL.assets);

/** Fetch every shell file without cookies (a page of nobody's) and store it. */
async function fillShell() {
  const cache = await caches.open(CACHE_NAME);
  await cache.addAll(SHELL.assets.map((url) => new Request(url, { credentials: 'omit', cache: 'no-cache' })));
}

/** Delete every cache of the chat's, including older versions'. */
async function deleteCaches({ keep = null } = {}) {
  const names = await caches.keys();
  await Promise.all(
    names.filter((name) => name.startsWith(CACHE_PREFIX) && name !== keep).map((name) => caches.delete(name)),
  );
}

// One clearing at a time: two tabs logging out together must not interleave.
let clearing = Promise.resolve();

/** After a logout: nothing cached survives; the shell comes back, fetched afresh. */
function clearAndRefill() {
  clearing = clearing.then(() => deleteCaches()).then(fillShell).catch(() => {});
  return clearing;
}

self.addEventListener('install', (event) => {
  event.waitUntil(fillShell().then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(deleteCaches({ keep: CACHE_NAME }).then(() => self.clients.claim()));
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'logged-out') event.waitUntil(clearAndRefill());
});

async function fromNetworkOrOffline(request) {
  try {
    return await fetch(request);
  } catch {
    const offline = await caches.match(SHELL.offline_url);
    return offline || Response.error();
  }
}

async function fromCacheOrNetwork(request) {
  const cache = await caches.open(CACHE_NAME);
  const cached = await cache.match(request, { ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === 'basic') cache.put(request, response.clone());
  return response;
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    // The login page is where a session ends (logout, expiry): what was cached goes.
    if (url.pathname === '/login') event.waitUntil(clearAndRefill());
    event.respondWith(fromNetworkOrOffline(request));
    return;
  }
  // Only the shell's own files, by path; everything else is the browser's business.
  if (SHELL_PATHS.has(url.pathname) && url.pathname !== SHELL.offline_url) {
    event.respondWith(fromCacheOrNetwork(request));
  }
});

// Notifications

/** Bring the chat forward with `chatId` open: a tab of ours if there is one, else a new one. */
async function openChatFromNotification(notification) {
  notification.close();
  const chatId = Number(notification.data && notification.data.chatId);
  const url = Number.isInteger(chatId) && chatId > 0 ? `/chats?chat=${chatId}` : '/chats';
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const chats = windows.find((client) => new URL(client.url).pathname === '/chats');
  if (chats) {
    // The page opens the chat itself: no reload, nothing typed is lost.
    chats.postMessage({ type: 'open-chat', chatId });
    try {
      await chats.focus();
    } catch {
      // Focusing is allowed only while handling a click; the chat is open all the same.
    }
    return chats;
  }
  const other = windows.find((client) => client.frameType === 'top-level');
  if (other) {
    try {
      const moved = await other.navigate(url);
      if (moved) return await moved.focus();
    } catch {
      // Not ours to steer (not controlled yet): a new window instead.
    }
  }
  return self.clients.openWindow(url);
}

self.addEventListener('notificationclick', (event) => {
  event.waitUntil(openChatFromNotification(event.notification));
});
