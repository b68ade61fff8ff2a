// Times written by the server as milliseconds since the epoch (UTC), shown in the reader's
// own time: every <time class="local-time" datetime="ms"> of the page.

for (const el of document.querySelectorAll('time.local-time')) {
  const ms = Number(el.getAttribute('datetime'));
  if (!Number.isFinite(ms)) continue;
  const date = new Date(ms);
  el.setAttribute('datetime', date.toISOString());
  el.textContent = date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
