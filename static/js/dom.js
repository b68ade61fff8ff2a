// Small DOM and formatting helpers shared by the chat modules.
// Every piece of user data reaches the page as a Text node (never as markup).

/**
 * Create an element. `props` sets attributes, except `className`, `text` (textContent)
 * and `dataset`; children are nodes or strings (strings become Text nodes).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'className') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/** Show `text` in an element that is hidden while empty. */
export function setNote(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

function isSameDay(a, b) {
  return a.getFullYear() === b.getFullYear()
    && a.getMonth() === b.getMonth()
    && a.getDate() === b.getDate();
}

// Each toLocale*String call builds a formatter anew; a chat opened on 500 messages formats
// a thousand times, so the formatters are made once (in the reader's locale and zone).
const formatters = new Map();

function formatWith(options, date) {
  const key = JSON.stringify(options);
  let formatter = formatters.get(key);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat([], options);
    formatters.set(key, formatter);
  }
  return formatter.format(date);
}

function formatDate(date, now) {
  const options = { day: 'numeric', month: 'short' };
  if (date.getFullYear() !== now.getFullYear()) options.year = 'numeric';
  return formatWith(options, date);
}

/** The time of day in the reader's zone and locale: "14:05", "2:05 PM". */
export function formatClockTime(date) {
  return formatWith({ timeStyle: 'short' }, date);
}

/** Time of a message in the reader's zone: "14:05", or "3 Mar, 14:05" when not today. */
export function formatMessageTime(date, now = new Date()) {
  const time = formatClockTime(date);
  return isSameDay(date, now) ? time : `${formatDate(date, now)}, ${time}`;
}

/** The local calendar day of a timestamp in ms, as "2024-3-7" (for comparing days). */
export function dayKey(ms) {
  const date = new Date(Number(ms));
  if (Number.isNaN(date.getTime())) return '';
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

/** A day separator's words: "Today", "Yesterday", else "Monday 3 March" (and the year). */
export function formatDay(date, now = new Date()) {
  if (isSameDay(date, now)) return 'Today';
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (isSameDay(date, yesterday)) return 'Yesterday';
  const options = { weekday: 'long', day: 'numeric', month: 'long' };
  if (date.getFullYear() !== now.getFullYear()) options.year = 'numeric';
  return formatWith(options, date);
}

/** Short time for the chat list: the time today, else the date. */
export function formatListTime(date, now = new Date()) {
  return isSameDay(date, now) ? formatClockTime(date) : formatDate(date, now);
}

/** A <time> element for a timestamp in ms since the epoch (UTC). */
export function timeElement(ms, format = formatMessageTime, className = null) {
  const date = new Date(Number(ms));
  if (Number.isNaN(date.getTime())) return h('time', { className });
  return h('time', {
    className,
    datetime: date.toISOString(),
    title: formatWith({ dateStyle: 'full', timeStyle: 'short' }, date),
    text: format(date),
  });
}

/**
 * 32 hex characters for a message's client_id.
 * crypto.randomUUID is missing on plain-http LAN addresses; getRandomValues is not.
 */
export function newClientId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Call `fn` once `waitMs` has passed without another call. */
export function debounce(fn, waitMs) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, waitMs);
  };
  debounced.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return debounced;
}

/** Length as the server counts it: code points, not UTF-16 units. */
export function textLength(text) {
  return Array.from(text).length;
}

/** The name a chat is shown under; notes to self get " (you)". */
export function chatDisplayName(chat, myId) {
  const name = chat && (chat.display_name || chat.name) ? String(chat.display_name || chat.name) : 'Unnamed chat';
  if (chat && chat.kind === 'direct' && chat.partner_id === myId) return `${name} (you)`;
  return name;
}

// Characters that show nothing or reorder the text around them: controls, format characters
// (zero-width spaces and joiners, bidi marks, overrides and isolates, the byte-order mark),
// lone surrogates, blank letters and marks, variation selectors. The server removes them
// from file names (helpers.is_hidden_at); names stored before are cleaned here too.
const HIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\uffa0\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/u;
const VARIATION_SELECTOR = /[\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/u;
// Inside an emoji sequence (👩‍💻, 🏳️‍🌈) a joiner or variation selector is part of the picture.
const EMOJI = /[\p{Extended_Pictographic}\u{1f3fb}-\u{1f3ff}\ufe0f]/u;

/** `text` without the characters that show nothing or reorder the text around them. */
export function withoutHiddenCharacters(text) {
  const chars = Array.from(String(text));
  return chars.filter((ch, i) => {
    if (!HIDDEN.test(ch)) return true;
    const before = chars[i - 1] || '';
    const after = chars[i + 1] || '';
    if (ch === '\u200d') return EMOJI.test(before) && /\p{Extended_Pictographic}/u.test(after);
    if (VARIATION_SELECTOR.test(ch)) return EMOJI.test(before) || after === '\u20e3';
    return false;
  }).join('');
}

/** A file's name as shown: without hidden characters, never empty. */
export function shownFileName(name) {
  return withoutHiddenCharacters(name || '').trim() || 'file';
}

/** One line of a message for previews. */
export function previewText(message, myId, kind) {
  if (!message) return 'No messages yet';
  let body = String(message.body || '').replace(/\s+/g, ' ').trim();
  if (message.attachment) body = `📎 ${body || shownFileName(message.attachment.name)}`;
  if (body.length > 120) body = `${body.slice(0, 120)}…`;
  if (message.sender_id === myId) return `You: ${body}`;
  if (kind === 'channel') return `${message.sender_display_name || message.sender_name}: ${body}`;
  return body;
}

/** A size people read: "820 bytes", "12 KB", "1.4 MB" (1 KB = 1024 bytes, as the limit). */
export function formatSize(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1024) return n === 1 ? '1 byte' : `${n} bytes`;
  const kb = Math.round(n / 1024);
  if (kb < 1024) return `${kb} KB`;
  const mb = n / (1024 * 1024);
  return `${mb < 10 ? mb.toFixed(1).replace(/\.0$/, '') : Math.round(mb)} MB`;
}

/** True when a phone-sized layout shows one panel at a time. */
export function isNarrow() {
  return window.matchMedia('(max-width: 600px)').matches;
}
