// Replies: the quote above a reply (its original's sender and first words; a press shows
// the original in the history), and the bar above the text box while one is being written.

import { h } from './dom.js';

const EXCERPT_LENGTH = 120;

/** The first words of a message, on one line, as a reply quotes them. */
export function excerptOf(message) {
  let text = String(message.body || '').split(/\s+/).filter(Boolean).join(' ');
  if (!text && message.attachment && message.attachment.name) text = String(message.attachment.name);
  return text.length > EXCERPT_LENGTH ? `${text.slice(0, EXCERPT_LENGTH - 1).trimEnd()}…` : text;
}

/**
 * The quote above a reply (null for a message that answers none): a button that shows the
 * original (`data-reply-to` holds its id; message_actions.js handles the press), or a note
 * when the original was deleted.
 */
export function buildReplyQuote(message) {
  const quoted = message.reply_to;
  if (!quoted || !Number.isInteger(quoted.id)) return null;
  if (quoted.deleted) {
    return h('p', { className: 'reply-quote deleted', text: 'Replying to a deleted message' });
  }
  const sender = String(quoted.sender_name || '');
  return h(
    'button',
    {
      type: 'button',
      className: 'reply-quote',
      dataset: { replyTo: String(quoted.id) },
      title: 'Show the original message',
    },
    h('span', { className: 'visually-hidden', text: 'In reply to ' }),
    h('span', { className: 'reply-quote-sender', text: sender }),
    h('span', { className: 'visually-hidden', text: ': ' }),
    h('span', { className: 'reply-quote-excerpt', text: String(quoted.excerpt || '') }),
  );
}

export class ReplyBar {
  /** composer: the form holding the text box; input: the text box. */
  constructor({ composer, input }) {
    this.input = input;
    this.target = null; // {chatId, message}
    this.text = h('span', { className: 'reply-bar-text', id: 'reply-bar-text' });
    this.cancelButton = h('button', {
      type: 'button',
      className: 'reply-bar-cancel',
      'aria-label': 'Cancel the reply',
      title: 'Cancel the reply (Escape)',
      text: '×',
    });
    this.el = h('div', { className: 'reply-bar', hidden: true }, this.text, this.cancelButton);
    composer.prepend(this.el);
    this.cancelButton.addEventListener('click', () => {
      this.cancel();
      this.input.focus();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || !this.target) return;
      event.preventDefault(); // the phone's panels take Escape as Back otherwise
      this.cancel();
    });
  }

  /** Start a reply to `message` of the chat `chatId`: the bar shows it, the text box waits. */
  start(chatId, message) {
    this.target = { chatId, message };
    const sender = String(message.sender_name || '');
    this.text.replaceChildren(
      'Replying to ',
      h('strong', { text: sender }),
      h('span', { className: 'reply-bar-excerpt', text: ` ${excerptOf(message)}` }),
    );
    this.el.hidden = false;
    this.describe(true);
    this.input.focus();
  }

  cancel() {
    this.target = null;
    this.el.hidden = true;
    this.describe(false);
  }

  /** The text box is described by the bar too while a reply is being written. */
  describe(on) {
    const ids = (this.input.getAttribute('aria-describedby') || '').split(/\s+/)
      .filter((id) => id && id !== this.text.id);
    if (on) ids.push(this.text.id);
    this.input.setAttribute('aria-describedby', ids.join(' '));
  }

  /** The chat changed: a reply belongs to the chat it was started in. */
  chatOpened(chatId) {
    if (this.target && this.target.chatId !== chatId) this.cancel();
  }

  /** The reply being written in `chatId`, as a message's `reply_to` (then the bar closes). */
  take(chatId) {
    if (!this.target || this.target.chatId !== chatId) return null;
    const { message } = this.target;
    this.cancel();
    return { id: message.id, sender_name: message.sender_name, excerpt: excerptOf(message) };
  }

  /** A message was deleted: no reply to it. */
  removed(messageId) {
    if (this.target && this.target.message.id === messageId) this.cancel();
  }
}
