// Completing "@name" in the composer from the open chat's members (list_members, asked
// once per chat when "@" is first typed there). The text box keeps the focus and stays a
// text box; the suggestions are a listbox it controls, the active one named by
// aria-activedescendant. Up and Down choose, Enter or Tab insert, Escape closes; a tap or
// a click on a name inserts it too.

import { h } from './dom.js';
import { noteUser } from './message_body.js';

const MAX_SHOWN = 8;
const MEMBERS_FRESH_MS = 60 * 1000;
// "@" at the start or after a space or punctuation, then what is typed of a name, right
// before the caret.
const TYPED_NAME = /(?:^|[^\p{L}\p{N}_@.+-])@([A-Za-z0-9_.-]{0,32})$/u;

export class MentionCompleter {
  /**
   * me: {id}; ask(event, payload): a settled Socket.IO request;
   * chatId(): the chat the composer writes to.
   */
  constructor({ root, me, ask, chatId }) {
    this.me = me;
    this.ask = ask;
    this.chatId = chatId;
    this.members = new Map(); // chat id -> {at, list}
    this.options = [];
    this.active = -1;
    this.start = -1;
    this.seq = 0;
    this.input = root.querySelector('#message-input');
    const form = root.querySelector('#composer');
    this.list = h('ul', {
      id: 'mention-list', className: 'mention-list', role: 'listbox', 'aria-label': 'People to mention', hidden: true,
    });
    this.status = h('p', { className: 'visually-hidden', role: 'status' });
    form.append(this.list, this.status);
    this.input.setAttribute('aria-autocomplete', 'list');

    this.input.addEventListener('input', () => this.update());
    this.input.addEventListener('click', () => this.update());
    this.input.addEventListener('blur', () => this.close());
    // Captured on the form, so the composer's own Enter (send) never sees a key used here.
    form.addEventListener('keydown', (event) => this.onKey(event), true);
    // The text box keeps the focus (and a phone its keyboard) when a name is tapped.
    this.list.addEventListener('pointerdown', (event) => event.preventDefault());
    this.list.addEventListener('mousedown', (event) => event.preventDefault());
    this.list.addEventListener('click', (event) => {
      const option = event.target.closest('[role="option"]');
      if (option) this.choose(Number(option.dataset.index));
    });
  }

  get isOpen() {
    return !this.list.hidden;
  }

  onKey(event) {
    if (event.target !== this.input || !this.isOpen || event.isComposing) return;
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves) {
      this.setActive((this.active + moves[event.key] + this.options.length) % this.options.length);
    } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey) {
      this.choose(this.active);
    } else if (event.key === 'Escape') {
      this.close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }

  /** The name being typed before the caret, if any: show the members it starts. */
  async update() {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret);
    const match = this.input.selectionEnd === caret ? TYPED_NAME.exec(before) : null;
    const chatId = this.chatId();
    if (!match || !chatId) {
      this.close();
      return;
    }
    const seq = ++this.seq;
    const members = await this.membersOf(chatId);
    if (seq !== this.seq) return;
    const typed = match[1].toLowerCase();
    const others = members.filter((m) => m.id !== this.me.id);
    const starts = others.filter((m) => m.username.toLowerCase().startsWith(typed));
    const contains = others.filter((m) => !starts.includes(m) && m.username.toLowerCase().includes(typed));
    this.start = caret - match[1].length - 1;
    this.show([...starts, ...contains].slice(0, MAX_SHOWN));
  }

  async membersOf(chatId) {
    const known = this.members.get(chatId);
    if (known && Date.now() - known.at < MEMBERS_FRESH_MS) return known.list;
    const res = await this.ask('list_members', { chat_id: chatId });
    if (!res.ok || !Array.isArray(res.members)) return known ? known.list : [];
    const list = res.members.filter((m) => m && Number.isInteger(m.id) && typeof m.username === 'string');
    for (const member of list) noteUser(member.id, member.username);
    this.members.set(chatId, { at: Date.now(), list });
    return list;
  }

  show(options) {
    this.options = options;
    if (!options.length) {
      this.close();
      return;
    }
    this.list.replaceChildren(...options.map((member, index) => h(
      'li',
      {
        id: `mention-option-${index}`,
        className: 'mention-option',
        role: 'option',
        'aria-selected': 'false',
        dataset: { index: String(index) },
      },
      h('span', { dir: 'auto', text: `@${member.username}` }),
      member.online ? h('span', { className: 'visually-hidden', text: ', ' }) : null,
      member.online ? h('span', { className: 'mention-online', text: 'online' }) : null,
    )));
    const opening = this.list.hidden;
    this.list.hidden = false;
    this.input.setAttribute('aria-controls', this.list.id);
    this.setActive(0);
    const count = options.length === 1 ? '1 person' : `${options.length} people`;
    if (opening || this.status.textContent !== count) {
      this.status.textContent = `${count} to mention. Up and down to choose, Enter to insert.`;
    }
  }

  setActive(index) {
    this.active = index;
    this.list.querySelectorAll('[role="option"]').forEach((option, i) => {
      option.setAttribute('aria-selected', String(i === index));
      if (i === index) {
        this.input.setAttribute('aria-activedescendant', option.id);
        option.scrollIntoView({ block: 'nearest' });
      }
    });
  }

  /** Put "@username " in place of what was typed of it. */
  choose(index) {
    const member = this.options[index];
    if (!member || this.start < 0) return;
    const { value } = this.input;
    const end = this.input.selectionStart;
    const text = `@${member.username} `;
    this.input.value = value.slice(0, this.start) + text + value.slice(end);
    const caret = this.start + text.length;
    this.input.setSelectionRange(caret, caret);
    this.close();
    // The composer resizes and counts as for typed text.
    this.input.dispatchEvent(new Event('input', { bubbles: true }));
    this.input.focus();
  }

  close() {
    this.seq += 1;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.options = [];
    this.active = -1;
    this.input.removeAttribute('aria-activedescendant');
    this.input.removeAttribute('aria-controls');
    this.status.textContent = '';
  }
}
