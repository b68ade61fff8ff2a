// What a reader does to a message: react, reply, edit and delete (the last two their own).
// Each stored message has a "Message actions" button that opens a small panel below it
// (reachable with Tab; Escape closes it); reactions toggle from their chips; a reply's quote
// shows its original; Up in an empty text box edits one's last message. One listener on the
// message list serves every message.

import { formatMessageTime, h, setNote } from './dom.js';
import {
  buildEmojiButtons, MORE_REACTIONS, QUICK_REACTIONS, showWhoOnLongPress,
} from './reactions.js';

/** The "Message actions" button of a stored message (none while it is being sent). */
export function buildActionsButton(message) {
  if (!Number.isInteger(message.id)) return null;
  return h('button', {
    type: 'button',
    className: 'message-actions-button',
    'aria-label': 'Message actions',
    'aria-expanded': 'false',
    title: 'React, reply, edit or delete',
    text: '⋯',
  });
}

/** "(edited)" after an edited message's text, with the time of the edit on hover. */
export function buildEditedMark(message) {
  if (!Number.isInteger(message.edited_at)) return null;
  const when = formatMessageTime(new Date(message.edited_at));
  return h('p', { className: 'edited-mark', title: `Edited ${when}`, text: '(edited)' });
}

function messageElement(node) {
  return node && node.closest ? node.closest('.message') : null;
}

export class MessageActions {
  /**
   * conversation: the Conversation (the open chat, its messages and their elements);
   * list: the message list; input: the composer's text box; replyBar: the ReplyBar;
   * ask(event, payload): a settled Socket.IO request; openAt(chatId, messageId): show a
   * message (openChatAt); onChanged(ack, event): the server took a change (the chat list
   * follows); notify(text): show a problem.
   */
  constructor({ conversation, list, input, replyBar, ask, openAt, onChanged, notify }) {
    this.conversation = conversation;
    this.list = list;
    this.input = input;
    this.replyBar = replyBar;
    this.ask = ask;
    this.openAt = openAt;
    this.onChanged = onChanged;
    this.notify = notify;
    this.menu = null; // {el, message element, button}
    this.wasLongPress = showWhoOnLongPress(list);

    list.addEventListener('click', (event) => this.clicked(event));
    list.addEventListener('keydown', (event) => this.keyPressed(event));
    document.addEventListener('pointerdown', (event) => {
      if (this.menu && !this.menu.li.contains(event.target)) this.closeMenu({ focus: false });
    });
    input.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowUp' || input.value !== '' || event.shiftKey || event.altKey
          || event.ctrlKey || event.metaKey || event.isComposing) return;
      const el = this.conversation.lastOwnMessage();
      if (!el) return;
      event.preventDefault();
      this.startEdit(el);
    });
  }

  clicked(event) {
    const target = event.target.closest ? event.target.closest('button') : null;
    const li = messageElement(target);
    if (!target || !li || !li.message || !Number.isInteger(li.message.id)) return;
    const { message } = li;
    const { classList, dataset } = target;
    if (classList.contains('message-actions-button')) {
      if (this.menu && this.menu.li === li) this.closeMenu();
      else this.openMenu(li, target);
    } else if (classList.contains('reaction')) {
      if (!this.wasLongPress()) this.react(message, dataset.emoji);
    } else if (classList.contains('reply-quote')) {
      this.openAt(message.chat_id, Number(dataset.replyTo));
    } else if (classList.contains('menu-emoji')) {
      this.closeMenu();
      this.react(message, dataset.emoji);
    } else if (classList.contains('menu-more')) {
      this.showPicker();
    } else if (classList.contains('menu-reply')) {
      this.closeMenu({ focus: false });
      this.replyBar.start(message.chat_id, message);
    } else if (classList.contains('menu-edit')) {
      this.closeMenu({ focus: false });
      this.startEdit(li);
    } else if (classList.contains('menu-delete')) {
      this.confirmDelete();
    } else if (classList.contains('menu-delete-confirm')) {
      this.closeMenu({ focus: false });
      this.remove(li);
    } else if (classList.contains('menu-close')) {
      this.closeMenu();
    }
  }

  keyPressed(event) {
    if (event.key !== 'Escape') return;
    const li = messageElement(event.target);
    if (!li) return;
    if (this.menu && this.menu.li === li) {
      event.preventDefault(); // on a phone Escape would also go Back to the list
      this.closeMenu();
    } else if (li.querySelector('.edit-form')) {
      event.preventDefault();
      this.endEdit(li, { focus: true });
    }
  }

  // The panel of actions

  openMenu(li, button) {
    this.closeMenu({ focus: false });
    const { message } = li;
    const own = message.sender_id === this.conversation.me.id;
    const actions = [
      h('button', { type: 'button', className: 'button button-small menu-reply', text: 'Reply' }),
    ];
    if (own) {
      actions.push(h('button', { type: 'button', className: 'button button-small menu-edit', text: 'Edit' }));
    }
    if (own || this.conversation.me.isAdmin) {
      actions.push(h('button', { type: 'button', className: 'button button-small menu-delete', text: 'Delete' }));
    }
    const el = h(
      'div',
      { className: 'message-menu', role: 'group', 'aria-label': 'Message actions' },
      h(
        'div',
        { className: 'menu-emojis' },
        ...buildEmojiButtons(QUICK_REACTIONS, 'menu-emoji'),
        h('button', {
          type: 'button',
          className: 'menu-more',
          'aria-label': 'More reactions',
          'aria-expanded': 'false',
          title: 'More reactions',
          text: '+',
        }),
      ),
      h('div', { className: 'menu-actions' }, ...actions),
      h('p', { className: 'menu-confirm', hidden: true }),
    );
    li.append(el);
    button.setAttribute('aria-expanded', 'true');
    li.classList.add('menu-open');
    this.menu = { el, li, button };
    el.scrollIntoView({ block: 'nearest' });
    el.querySelector('button').focus({ preventScroll: true });
  }

  closeMenu({ focus = true } = {}) {
    if (!this.menu) return;
    const { el, li, button } = this.menu;
    this.menu = null;
    el.remove();
    li.classList.remove('menu-open');
    button.setAttribute('aria-expanded', 'false');
    if (focus && button.isConnected) button.focus({ preventScroll: true });
  }

  showPicker() {
    const { el } = this.menu;
    const more = el.querySelector('.menu-more');
    if (el.querySelector('.menu-picker')) return;
    const picker = h(
      'div',
      { className: 'menu-picker', role: 'group', 'aria-label': 'More reactions' },
      ...buildEmojiButtons(MORE_REACTIONS, 'menu-emoji'),
    );
    el.querySelector('.menu-emojis').after(picker);
    more.setAttribute('aria-expanded', 'true');
    picker.firstElementChild.focus({ preventScroll: true });
    el.scrollIntoView({ block: 'nearest' });
  }

  confirmDelete() {
    const { el } = this.menu;
    const confirm = el.querySelector('.menu-confirm');
    confirm.replaceChildren(
      h('span', { text: 'Delete this message for everyone? ' }),
      h('button', {
        type: 'button', className: 'button button-small button-danger menu-delete-confirm', text: 'Delete for everyone',
      }),
      ' ',
      h('button', { type: 'button', className: 'button button-small menu-close', text: 'Cancel' }),
    );
    confirm.hidden = false;
    confirm.querySelector('.menu-delete-confirm').focus({ preventScroll: true });
  }

  // Asking the server

  async react(message, emoji) {
    if (!emoji) return;
    const res = await this.ask('reaction_toggled', { message_id: message.id, emoji });
    if (!res.ok) {
      this.notify(res.error);
      return;
    }
    this.conversation.setReactions(message.chat_id, message.id, res.reactions);
  }

  async remove(li) {
    const { message } = li;
    const res = await this.ask('message_deleted', { message_id: message.id });
    if (!res.ok) {
      this.notify(res.error);
      return;
    }
    // Every socket of the chat hears message_removed, this one too: the list follows there.
    if (li.contains(document.activeElement)) this.conversation.history.focus({ preventScroll: true });
    this.conversation.removeMessage(message.chat_id, message.id);
  }

  // Editing in place

  startEdit(li) {
    const { message } = li;
    if (!message || message.sender_id !== this.conversation.me.id || li.querySelector('.edit-form')) return;
    const input = h('textarea', {
      className: 'edit-input',
      'aria-label': 'Edit message',
      rows: '2',
      enterkeyhint: 'done',
    });
    input.value = message.body || '';
    const error = h('p', { className: 'form-error edit-error', role: 'alert', hidden: true });
    const form = h(
      'form',
      { className: 'edit-form', novalidate: true },
      input,
      error,
      h(
        'p',
        { className: 'edit-buttons' },
        h('button', { type: 'submit', className: 'button button-small button-primary', text: 'Save' }),
        ' ',
        h('button', { type: 'button', className: 'button button-small edit-cancel', text: 'Cancel' }),
        h('span', { className: 'edit-hint', text: ' Enter saves · Escape cancels' }),
      ),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.saveEdit(li, input, error);
    });
    form.querySelector('.edit-cancel').addEventListener('click', () => this.endEdit(li, { focus: true }));
    input.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      this.saveEdit(li, input, error);
    });
    li.classList.add('editing');
    const body = li.querySelector('.message-body');
    if (body) body.hidden = true;
    const reactions = li.querySelector('.reactions');
    li.insertBefore(form, reactions || null);
    input.style.height = `${Math.min(input.scrollHeight + 2, 240)}px`;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    form.scrollIntoView({ block: 'nearest' });
  }

  endEdit(li, { focus = false } = {}) {
    const form = li.querySelector('.edit-form');
    if (form) form.remove();
    li.classList.remove('editing');
    const body = li.querySelector('.message-body');
    if (body) body.hidden = false;
    if (focus) this.input.focus();
  }

  async saveEdit(li, input, error) {
    const { message } = li;
    const body = input.value.trim();
    if (body === (message.body || '').trim()) {
      this.endEdit(li, { focus: true });
      return;
    }
    if (!body && !message.attachment) {
      setNote(error, 'A message cannot be empty. To remove it, delete it.');
      return;
    }
    input.disabled = true;
    const res = await this.ask('message_edited', { message_id: message.id, body });
    input.disabled = false;
    if (!res.ok) {
      setNote(error, res.error);
      input.focus();
      return;
    }
    this.endEdit(li, { focus: true });
    this.conversation.updateMessage(res.message);
    this.onChanged(res.message);
  }
}
