// Message search: a dialog opened by a "Search messages" button (above the chat list, and
// in the conversation's header on a phone), "/" or Ctrl+K (⌘K),
// asking `search_messages` as the reader types, showing each result's chat, sender, time
// and text with the matching words marked, 20 at a time ("More results" asks for the page
// before the last one shown). Choosing a result opens its chat at that message.

import { chatDisplayName, h, setNote, timeElement } from './dom.js';

const TYPING_PAUSE_MS = 250;
const EXCERPT_CHARS = 180;
const EXCERPT_BEFORE = 50;
// The server's rules (search.py): a word is a run of letters and digits; the last word is
// a prefix from 2 characters on, unless it closes a "quoted phrase".
const WORD = /[\p{L}\p{N}\p{M}]+/gu;
const MIN_PREFIX_LENGTH = 2;

/** A word as the search compares it: lower case, without accents. */
export function fold(word) {
  return word.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/** The words of a query to mark in the results: {whole: Set, prefix: string|null}. */
export function queryTerms(query) {
  const pieces = query.split('"');
  const words = [];
  let prefix = null;
  pieces.forEach((piece, index) => {
    const found = (piece.match(WORD) || []).map(fold).filter(Boolean);
    if (!found.length) return;
    words.push(...found);
    const quoted = index % 2 === 1 && index < pieces.length - 1;
    const last = found[found.length - 1];
    prefix = !quoted && last.length >= MIN_PREFIX_LENGTH ? last : null;
  });
  return { whole: new Set(words), prefix };
}

function matches(word, terms) {
  const folded = fold(word);
  return terms.whole.has(folded) || (terms.prefix !== null && folded.startsWith(terms.prefix));
}

/** Where the excerpt of a long text starts: at the match whose window holds the most
 * different matching words (every word of the query, if they are close together). */
function bestWindow(text, spans) {
  let best = spans[0][0];
  let bestCount = 0;
  for (const [from] of spans) {
    const words = new Set();
    for (const [start, end] of spans) {
      if (start >= from && end <= from + EXCERPT_CHARS - EXCERPT_BEFORE) {
        words.add(fold(text.slice(start, end)));
      }
    }
    if (words.size > bestCount) {
      best = from;
      bestCount = words.size;
    }
  }
  return best;
}

/**
 * `text` as nodes with each matching word in a <mark>; a long text is cut to an excerpt
 * around its first match.
 */
export function highlighted(text, terms) {
  const spans = [];
  for (const found of text.matchAll(WORD)) {
    if (matches(found[0], terms)) spans.push([found.index, found.index + found[0].length]);
  }
  let start = 0;
  let end = text.length;
  if (text.length > EXCERPT_CHARS) {
    start = spans.length ? Math.max(0, bestWindow(text, spans) - EXCERPT_BEFORE) : 0;
    // From the start of a word, when one begins shortly before.
    const space = start > 0 ? text.lastIndexOf(' ', start) : -1;
    if (space >= 0 && start - space < 20) start = space + 1;
    end = Math.min(text.length, start + EXCERPT_CHARS);
  }
  const nodes = [];
  if (start > 0) nodes.push('…');
  let at = start;
  for (const [from, to] of spans) {
    if (to <= start || from >= end) continue;
    if (from > at) nodes.push(text.slice(at, from));
    nodes.push(h('mark', { text: text.slice(Math.max(from, at), Math.min(to, end)) }));
    at = Math.min(to, end);
  }
  if (at < end) nodes.push(text.slice(at, end));
  if (end < text.length) nodes.push('…');
  return nodes;
}

function resultText(message) {
  if (message.body) return message.body;
  return message.attachment ? message.attachment.name : '';
}

export class MessageSearch {
  /**
   * ask(event, payload): a settled Socket.IO request; me: {id, username};
   * onOpen(chatId, messageId): open the chat at a result.
   */
  constructor({ ask, me, onOpen }) {
    this.ask = ask;
    this.me = me;
    this.onOpen = onOpen;
    this.dialog = document.getElementById('search-dialog');
    this.input = this.dialog.querySelector('#search-input');
    this.list = this.dialog.querySelector('#search-results');
    this.status = this.dialog.querySelector('#search-status');
    this.error = this.dialog.querySelector('#search-error');
    this.more = this.dialog.querySelector('#search-more');
    this.seq = 0;
    this.timer = null;
    this.query = '';
    this.lastId = null;
    this.opener = null;

    for (const button of document.querySelectorAll('.search-open')) {
      button.addEventListener('click', () => this.show());
    }
    this.dialog.querySelector('#search-close').addEventListener('click', () => this.hide());
    this.dialog.querySelector('form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.search();
    });
    this.input.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(), TYPING_PAUSE_MS);
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'ArrowDown') {
        const first = this.list.querySelector('button');
        if (first) {
          event.preventDefault();
          first.focus();
        }
      }
    });
    this.list.addEventListener('keydown', (event) => this.moveFocus(event));
    this.dialog.addEventListener('keydown', (event) => {
      // A search box would only clear itself on the first Escape.
      if (event.key !== 'Escape') return;
      event.preventDefault();
      this.hide();
    });
    this.more.addEventListener('click', () => this.search({ more: true }));
    this.dialog.addEventListener('click', (event) => {
      // A click on the backdrop (outside the dialog's box) closes it.
      if (event.target === this.dialog) this.hide();
    });
    this.dialog.addEventListener('close', () => {
      if (this.opener && this.opener.isConnected) this.opener.focus();
      this.opener = null;
    });
    document.addEventListener('keydown', (event) => this.shortcut(event));
  }

  /** "/" (outside a text field) or Ctrl+K / ⌘K opens the search from anywhere. */
  shortcut(event) {
    if (this.dialog.open || event.defaultPrevented || event.altKey) return;
    const target = event.target;
    const typing = target instanceof HTMLElement
      && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    const slash = event.key === '/' && !typing && !event.ctrlKey && !event.metaKey;
    const ctrlK = (event.key === 'k' || event.key === 'K') && (event.ctrlKey || event.metaKey);
    if (!slash && !ctrlK) return;
    event.preventDefault();
    this.show();
  }

  show() {
    if (this.dialog.open) return;
    this.opener = document.activeElement;
    this.dialog.showModal();
    this.input.focus();
    this.input.select();
  }

  hide() {
    clearTimeout(this.timer);
    if (this.dialog.open) this.dialog.close();
  }

  /** Up and down arrows walk the results; Home and End jump to either end. */
  moveFocus(event) {
    const buttons = Array.from(this.list.querySelectorAll('button'));
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === 'ArrowDown') next = buttons[index + 1] || (this.more.hidden ? null : this.more);
    else if (event.key === 'ArrowUp') next = index === 0 ? this.input : buttons[index - 1];
    else if (event.key === 'Home') next = buttons[0];
    else if (event.key === 'End') next = buttons[buttons.length - 1];
    if (!next) return;
    event.preventDefault();
    next.focus();
  }

  async search({ more = false } = {}) {
    clearTimeout(this.timer);
    const query = more ? this.query : this.input.value.trim();
    if (!more && !query) {
      this.clear();
      return;
    }
    const mine = ++this.seq;
    const payload = { query };
    if (more && this.lastId !== null) payload.before_id = this.lastId;
    this.dialog.setAttribute('aria-busy', 'true');
    this.more.disabled = true;
    const res = await this.ask('search_messages', payload);
    if (mine !== this.seq) return; // a newer search was asked meanwhile
    this.dialog.removeAttribute('aria-busy');
    this.more.disabled = false;
    if (!res.ok) {
      if (!more) this.clear();
      setNote(this.error, res.error);
      return;
    }
    setNote(this.error, '');
    if (!more) {
      this.list.replaceChildren();
      this.query = query;
    }
    const terms = queryTerms(query);
    const results = Array.isArray(res.results) ? res.results : [];
    const firstNew = this.list.children.length;
    for (const result of results) this.list.append(this.buildResult(result, terms));
    if (results.length) this.lastId = results[results.length - 1].message.id;
    this.more.hidden = !res.has_more;
    const shown = this.list.children.length;
    let words;
    if (!shown) words = 'No messages found.';
    else words = `${shown}${res.has_more ? '+' : ''} message${shown === 1 ? '' : 's'} found.`;
    this.status.textContent = words;
    if (more) {
      const first = this.list.children[firstNew];
      if (first) first.querySelector('button').focus();
    }
  }

  clear() {
    this.list.replaceChildren();
    this.more.hidden = true;
    this.lastId = null;
    this.status.textContent = '';
    setNote(this.error, '');
  }

  buildResult({ message, chat }, terms) {
    const self = chat.kind === 'direct' && chat.name === this.me.username;
    const chatName = chatDisplayName({ ...chat, partner_id: self ? this.me.id : null }, this.me.id);
    const button = h(
      'button',
      { type: 'button', className: 'search-result', dataset: { chatId: chat.id, messageId: message.id } },
      h(
        'span',
        { className: 'search-result-meta' },
        h('span', { className: 'search-result-chat', text: chatName }),
        h('span', { className: 'search-result-sender', text: message.sender_name }),
        timeElement(message.created_at, undefined, 'search-result-time'),
      ),
      h('span', { className: 'search-result-text' }, ...highlighted(resultText(message), terms)),
    );
    button.addEventListener('click', () => {
      this.opener = null; // the focus goes to the message opened, not back to the button
      this.hide();
      this.onOpen(chat.id, message.id);
    });
    return h('li', {}, button);
  }
}
