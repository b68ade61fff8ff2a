// Links in message text: http(s) and mailto addresses become anchors that open in a new tab
// without handing it this page (rel="noopener noreferrer"); everything else stays a Text node.

const CANDIDATE = /\b(?:https?:\/\/|mailto:)[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'"*_~]+$/;
const PAIRS = { ')': '(', ']': '[', '}': '{' };
const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

function count(text, ch) {
  let n = 0;
  for (const c of text) if (c === ch) n += 1;
  return n;
}

/** Drop what ends a sentence rather than the address: "(see https://x.org)." */
function trimEnd(candidate) {
  let text = candidate;
  for (;;) {
    const before = text;
    text = text.replace(TRAILING, '');
    const last = text.slice(-1);
    if (PAIRS[last] && count(text, last) > count(text, PAIRS[last])) text = text.slice(0, -1);
    if (text === before) return text;
  }
}

/** The address `text` points to when it is a link we allow, else null. */
export function safeHref(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (!SAFE_PROTOCOLS.has(url.protocol)) return null;
  if (url.protocol !== 'mailto:' && !url.hostname) return null;
  return url.href;
}

/** Text nodes and <a> elements for `text`, in order; no markup is ever parsed. */
export function linkify(value) {
  const text = String(value ?? '');
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const shown = trimEnd(match[0]);
    const href = shown ? safeHref(shown) : null;
    if (!href) continue;
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    const a = document.createElement('a');
    a.href = href;
    a.textContent = shown;
    if (!href.startsWith('mailto:')) a.target = '_blank';
    a.rel = 'noopener noreferrer';
    nodes.push(a);
    last = match.index + shown.length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}
