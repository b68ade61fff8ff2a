// A message's body as the reader sees it: a safe subset of Markdown (bold, italic,
// strikethrough, inline code, code blocks, quotes, lists, links), @mentions highlighted
// (the reader's own prominently), each block laid out in its own direction (dir="auto"),
// and a long body collapsed behind "Show more".
//
// markdown-it (vendored from npm, raw HTML off) only parses; the elements are built here
// from its tokens with createElement and Text nodes, so no markup from a message ever
// reaches the page. Headings, images, tables, rules and link references are not parsed:
// they stay the text that was typed (an image's address becomes a link).

import markdownit from '../vendor/markdown-it.min.js';
import { h } from './dom.js';
import { linkify, safeHref } from './links.js';

// Deeper than this, quotes and lists stop nesting: markdown-it would drop what follows,
// so such a body is shown as plain text instead (a "> > > ..." bomb stays readable).
const MAX_NESTING = 20;
// Deeper than this, emphasis and links add no further element (their text stays).
const MAX_INLINE_DEPTH = 12;
// A body estimated taller than this many lines collapses behind "Show more"; a line of
// text is counted as about this many characters.
const COLLAPSE_LINES = 25;
const CHARS_PER_LINE = 90;
// What markdown-it's own check lets through; links are checked again with safeHref.
const LINKABLE = /^\s*(?:https?:|mailto:)/i;
// A link found in plain text: only addresses written with their scheme, or from "www.".
const TYPED_LINK = /^(?:https?:\/\/|mailto:|www\.)/i;
// "@name" not glued to what comes before (an e-mail address is no mention); the name as
// usernames are written. mentions.py reads the same.
const MENTION = /(?<![\p{L}\p{N}_@.+-])@([A-Za-z0-9_.-]+)/gu;

const md = markdownit('default', {
  html: false,
  linkify: true,
  breaks: true,
  typographer: false,
  maxNesting: MAX_NESTING,
});
md.disable(['heading', 'lheading', 'image', 'table', 'hr', 'reference']);
md.linkify.set({ fuzzyLink: true, fuzzyEmail: false, fuzzyIP: false });
md.validateLink = (url) => LINKABLE.test(url);

// Lower-case usernames to user ids, learnt from senders and member lists: which "@name"
// of a message is one of its `mentions`.
const knownIds = new Map();

/** Remember who is who (a member list, a sender) to tell which @names are mentions. */
export function noteUser(id, username) {
  if (Number.isInteger(id) && username) knownIds.set(String(username).toLowerCase(), id);
}

const INLINE_TAGS = {
  em_open: 'em', strong_open: 'strong', s_open: 'del',
};
const BLOCK_TAGS = {
  paragraph_open: 'p',
  blockquote_open: 'blockquote',
  bullet_list_open: 'ul',
  ordered_list_open: 'ol',
  list_item_open: 'li',
};

function mentionNodes(text, mentions, me) {
  if (!text.includes('@') || !mentions.length) return [document.createTextNode(text)];
  const unresolved = mentions.some((id) => ![...knownIds.values()].includes(id));
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    const name = match[1].replace(/[.-]+$/, '');
    const id = knownIds.get(name.toLowerCase());
    const mine = id === me.id && mentions.includes(me.id);
    const isMention = id === undefined ? unresolved && name.length >= 3 : mentions.includes(id);
    if (!isMention) continue;
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    // Left to right on its own, so "@name" stays whole inside right-to-left text.
    nodes.push(h(mine ? 'mark' : 'span', {
      className: mine ? 'mention mention-me' : 'mention',
      dir: 'ltr',
      text: `@${name}`,
    }));
    last = match.index + name.length + 1;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

/** The link a link token opens, or null when it should stay text. */
function linkTarget(token, next) {
  const href = safeHref(token.attrGet('href') || '');
  if (!href) return null;
  // A bare "app.py" or "example.org" stays text; "www.example.org" becomes a link.
  if (token.markup === 'linkify' && !TYPED_LINK.test(next ? next.content : '')) return null;
  return href;
}

function buildLink(href) {
  const a = h('a', { href, rel: 'noopener noreferrer' });
  if (!href.startsWith('mailto:')) a.target = '_blank';
  return a;
}

function buildInline(parent, tokens, context) {
  const stack = [parent];
  const top = () => stack[stack.length - 1];
  // Elements opened as links, counted so text inside one is never read for mentions.
  const links = [];
  tokens.forEach((token, i) => {
    const tag = INLINE_TAGS[token.type];
    if (tag || token.type === 'link_open') {
      let el = null;
      if (stack.length <= MAX_INLINE_DEPTH) {
        if (tag) el = h(tag);
        else {
          const href = linkTarget(token, tokens[i + 1]);
          if (href) el = buildLink(href);
        }
      }
      if (el) top().append(el);
      stack.push(el || top());
      links.push(token.type === 'link_open');
      return;
    }
    if (token.type.endsWith('_close')) {
      if (stack.length > 1) {
        stack.pop();
        links.pop();
      }
      return;
    }
    if (token.type === 'code_inline') top().append(h('code', { text: token.content }));
    else if (token.type === 'softbreak' || token.type === 'hardbreak') top().append(h('br'));
    else if (token.type === 'text' || token.type === 'text_special') {
      if (links.includes(true)) top().append(token.content);
      else top().append(...mentionNodes(token.content, context.mentions, context.me));
    }
  });
}

function buildBlocks(container, tokens, context) {
  const stack = [container];
  const top = () => stack[stack.length - 1];
  for (const token of tokens) {
    const tag = BLOCK_TAGS[token.type];
    if (tag) {
      // A tight list's paragraphs are hidden: their text goes straight into the item.
      if (token.hidden) {
        stack.push(top());
        continue;
      }
      const el = h(tag, { dir: 'auto' });
      const start = tag === 'ol' ? token.attrGet('start') : null;
      if (start !== null && /^\d{1,9}$/.test(start)) el.setAttribute('start', start);
      top().append(el);
      stack.push(el);
    } else if (token.type.endsWith('_close')) {
      if (stack.length > 1) stack.pop();
    } else if (token.type === 'inline') {
      buildInline(top(), token.children || [], context);
    } else if (token.type === 'fence' || token.type === 'code_block') {
      top().append(h('pre', { dir: 'ltr' }, h('code', { text: token.content.replace(/\n$/, '') })));
    }
  }
}

function plainBody(container, text, context) {
  const p = h('p', { dir: 'auto' });
  for (const node of linkify(text)) {
    if (node.nodeType === Node.TEXT_NODE) p.append(...mentionNodes(node.data, context.mentions, context.me));
    else p.append(node);
  }
  container.append(p);
}

function estimatedLines(text) {
  let lines = 0;
  for (const line of text.split('\n')) lines += Math.max(1, Math.ceil(line.length / CHARS_PER_LINE));
  return lines;
}

/** Expand or collapse a long body in place: the message's top stays where it is. */
function toggle(body, button) {
  const message = body.closest('.message') || body;
  const scroller = body.closest('.history');
  const before = message.getBoundingClientRect().top;
  const expand = body.classList.contains('collapsed');
  body.classList.toggle('collapsed', !expand);
  button.setAttribute('aria-expanded', String(expand));
  button.textContent = expand ? 'Show less' : 'Show more';
  if (scroller) scroller.scrollTop += message.getBoundingClientRect().top - before;
}

/**
 * The body of `message` as nodes to put in its element: the formatted text, and a
 * "Show more" button after it when it is long. `me` ({id}) is the reader.
 */
export function renderBody(message, me) {
  const text = String(message.body || '');
  const mentions = Array.isArray(message.mentions) ? message.mentions : [];
  noteUser(message.sender_id, message.sender_name);
  noteUser(me.id, me.username);
  const context = { mentions, me };
  const body = h('div', { className: 'message-body', dir: 'auto' });
  const tokens = md.parse(text, {});
  if (tokens.some((token) => token.level >= MAX_NESTING - 1)) plainBody(body, text, context);
  else buildBlocks(body, tokens, context);
  if (mentions.includes(me.id)) body.classList.add('mentions-me');
  if (estimatedLines(text) <= COLLAPSE_LINES) return [body];
  body.id = `body-${message.id ?? message.client_id}`;
  body.classList.add('collapsed');
  const button = h('button', {
    type: 'button',
    className: 'show-more',
    'aria-expanded': 'false',
    'aria-controls': body.id,
    text: 'Show more',
  });
  button.addEventListener('click', () => toggle(body, button));
  return [body, button];
}
