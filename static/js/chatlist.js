// The left panel: the user's chats (newest activity first) with previews, unread badges
// and who is online, and the channels the user can join.
//
// The order is the server's (list_chats): a chat's newest activity is its last message or
// the user's joining it, whichever came later, compared by message ids. Here a new
// message or a chat just created, joined or opened is the newest activity there is, so it
// moves to the top, and the list stays the one the server would answer.

import {
  chatDisplayName, formatListTime, h, previewText, setNote, timeElement,
} from './dom.js';
import { mentionsMe } from './notify_rules.js';

const AVATAR_HUES = 6;
const CLIP = '📎';

function avatarHue(name) {
  let sum = 0;
  for (const ch of name) sum = (sum * 31 + ch.codePointAt(0)) % 9973;
  return sum % AVATAR_HUES;
}

export class ChatList {
  /**
   * root: the #chat-app element; me: {id, username};
   * onOpen(chatId): the user picked a chat; onJoin(chatId, button): the user pressed Join;
   * onChange(): the chats or their unread counts changed.
   */
  constructor({ root, me, onOpen, onJoin, onChange = () => {} }) {
    this.me = me;
    this.onChange = onChange;
    // False while this page is not connected: nobody's presence is known then.
    this.presenceKnown = true;
    this.onOpen = onOpen;
    this.onJoin = onJoin;
    this.chats = new Map();
    this.items = new Map();
    this.channels = new Map();
    this.online = new Set();
    this.activeId = null;
    this.listEl = root.querySelector('#chat-list');
    this.emptyEl = root.querySelector('#chat-list-empty');
    this.errorEl = root.querySelector('#chat-list-error');
    this.joinableEl = root.querySelector('#joinable-list');
    this.joinableEmptyEl = root.querySelector('#joinable-empty');
    this.joinableErrorEl = root.querySelector('#joinable-error');

    this.listEl.addEventListener('click', (event) => {
      const link = event.target.closest('a.chat-item');
      if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      this.onOpen(Number(link.dataset.chatId));
    });
    this.joinableEl.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-chat-id]');
      if (button && !button.disabled) this.onJoin(Number(button.dataset.chatId), button);
    });
  }

  has(chatId) {
    return this.chats.has(chatId);
  }

  get(chatId) {
    return this.chats.get(chatId) || null;
  }

  /** Id of the chat at the top of the list, or null. */
  firstId() {
    const first = this.listEl.querySelector('a.chat-item');
    return first ? Number(first.dataset.chatId) : null;
  }

  /** Replace both lists with the server's view (list_chats). */
  setAll(chats, channels) {
    const focusedId = this.focusedChatId();
    this.chats.clear();
    this.items.clear();
    this.listEl.replaceChildren();
    for (const chat of chats) {
      if (!chat || !Number.isInteger(chat.id) || this.chats.has(chat.id)) continue;
      if (Number.isInteger(chat.partner_id) && typeof chat.partner_online === 'boolean') {
        if (chat.partner_online) this.online.add(chat.partner_id);
        else this.online.delete(chat.partner_id);
      }
      this.chats.set(chat.id, { ...chat });
      const item = this.buildItem(chat.id);
      this.listEl.append(item.li);
      this.render(chat.id);
    }
    this.listEl.setAttribute('aria-busy', 'false');
    this.channels.clear();
    for (const channel of channels) {
      if (channel && Number.isInteger(channel.id) && !this.chats.has(channel.id)) {
        this.channels.set(channel.id, { id: channel.id, name: String(channel.name) });
      }
    }
    this.renderJoinable();
    this.setActive(this.activeId);
    this.afterChange();
    if (focusedId !== null) this.focusItem(focusedId);
  }

  /** Add a chat or refresh it from a newer server copy; `toTop` moves it first. */
  upsert(chat, { toTop = false } = {}) {
    if (!chat || !Number.isInteger(chat.id)) return;
    const known = this.chats.get(chat.id);
    this.chats.set(chat.id, known ? { ...known, ...chat } : { ...chat });
    if (!this.items.has(chat.id)) {
      this.buildItem(chat.id);
      this.place(chat.id, true);
    } else if (toTop) {
      this.place(chat.id, true);
    }
    this.render(chat.id);
    this.removeJoinable(chat.id);
    this.afterChange();
  }

  /** A message reached one of the user's chats: new preview, chat to the top. */
  noteMessage(chatId, message, { countUnread }) {
    const chat = this.chats.get(chatId);
    if (!chat || !message) return;
    const isNewer = chat.last_message_id === null || chat.last_message_id === undefined
      || message.id > chat.last_message_id;
    if (!isNewer) return;
    chat.last_message = message;
    chat.last_message_id = message.id;
    const unread = message.sender_id !== this.me.id
      && message.id > (chat.last_read_id || 0);
    if (countUnread && unread) chat.unread_count = (chat.unread_count || 0) + 1;
    if (countUnread && unread && mentionsMe(message, this.me)) {
      chat.mention_count = (chat.mention_count || 0) + 1;
    }
    this.place(chatId, true);
    this.render(chatId);
    this.afterChange();
  }

  /** A message was edited: the preview follows when it is the chat's last. */
  noteEdit(chatId, message) {
    const chat = this.chats.get(chatId);
    if (!chat || !message || chat.last_message_id !== message.id) return;
    chat.last_message = message;
    this.render(chatId);
  }

  /**
   * A message was deleted: the preview falls back on the chat's newest message now
   * (`lastMessage`, null for none), and it no longer counts unread, nor as a mention of
   * the reader when it named them (`mentions`: the user ids it mentioned).
   */
  noteRemoval(chatId, messageId, senderId, lastMessage, mentions = []) {
    const chat = this.chats.get(chatId);
    if (!chat) return;
    const unread = senderId !== this.me.id && messageId > (chat.last_read_id || 0);
    if (unread && chat.unread_count > 0) chat.unread_count -= 1;
    if (unread && mentions.includes(this.me.id) && chat.mention_count > 0) chat.mention_count -= 1;
    if (chat.last_message_id === messageId || (lastMessage && lastMessage.id !== chat.last_message_id)) {
      chat.last_message = lastMessage;
      chat.last_message_id = lastMessage ? lastMessage.id : null;
    }
    this.render(chatId);
    this.afterChange();
  }

  setUnread(chatId, count, lastReadId = null, mentionCount = null) {
    const chat = this.chats.get(chatId);
    if (!chat || !Number.isInteger(count) || count < 0) return;
    chat.unread_count = count;
    if (Number.isInteger(mentionCount) && mentionCount >= 0) chat.mention_count = mentionCount;
    if (Number.isInteger(lastReadId) && lastReadId > (chat.last_read_id || 0)) {
      chat.last_read_id = lastReadId;
    }
    this.render(chatId);
    this.afterChange();
  }

  /** presence_updated: a person came online or went offline. */
  setPresence(userId, online) {
    if (!Number.isInteger(userId)) return;
    if (online) this.online.add(userId);
    else this.online.delete(userId);
    for (const [chatId, chat] of this.chats) {
      if (chat.kind === 'direct' && chat.partner_id === userId) this.render(chatId);
    }
  }

  /** Connected (known) or not: while not, every partner's dot shows grey, as unknown. */
  setPresenceKnown(known) {
    if (this.presenceKnown === known) return;
    this.presenceKnown = known;
    for (const [chatId, chat] of this.chats) {
      if (chat.kind === 'direct') this.render(chatId);
    }
  }

  setActive(chatId) {
    this.activeId = chatId;
    for (const [id, item] of this.items) {
      if (id === chatId) item.link.setAttribute('aria-current', 'true');
      else item.link.removeAttribute('aria-current');
    }
  }

  focusActive() {
    if (this.activeId !== null) this.focusItem(this.activeId);
  }

  totalUnread() {
    let total = 0;
    for (const chat of this.chats.values()) total += Number(chat.unread_count) || 0;
    return total;
  }

  showError(text) {
    setNote(this.errorEl, text);
  }

  addJoinable(channel) {
    if (!channel || !Number.isInteger(channel.id) || this.chats.has(channel.id)) return;
    this.channels.set(channel.id, { id: channel.id, name: String(channel.name) });
    this.renderJoinable();
  }

  removeJoinable(chatId) {
    if (this.channels.delete(chatId)) this.renderJoinable();
  }

  showJoinError(text) {
    setNote(this.joinableErrorEl, text);
  }

  // Internals

  buildItem(chatId) {
    const parts = {
      icon: h('span', { className: 'chat-icon', 'aria-hidden': 'true' }),
      dot: h('span', { className: 'presence-dot', 'aria-hidden': 'true', hidden: true }),
      kind: h('span', { className: 'visually-hidden' }),
      name: h('span', { className: 'chat-name' }),
      presence: h('span', { className: 'visually-hidden' }),
      time: h('span', { className: 'chat-time' }),
      preview: h('span', { className: 'chat-preview' }),
      badge: h('span', { className: 'badge', 'aria-hidden': 'true', hidden: true }),
      unread: h('span', { className: 'visually-hidden' }),
      mentions: h('span', { className: 'mention-badge', 'aria-hidden': 'true', hidden: true }),
      mentioned: h('span', { className: 'visually-hidden' }),
    };
    parts.link = h(
      'a',
      { className: 'chat-item', href: `/chats?chat=${chatId}`, dataset: { chatId: String(chatId) } },
      h('span', { className: 'chat-avatar' }, parts.icon, parts.dot),
      h(
        'span',
        { className: 'chat-text' },
        h('span', { className: 'chat-top' }, parts.kind, parts.name, parts.presence, parts.time),
        parts.preview,
      ),
      parts.mentions,
      parts.mentioned,
      parts.badge,
      parts.unread,
    );
    parts.li = h('li', {}, parts.link);
    this.items.set(chatId, parts);
    return parts;
  }

  render(chatId) {
    const chat = this.chats.get(chatId);
    const parts = this.items.get(chatId);
    if (!chat || !parts) return;
    const isChannel = chat.kind === 'channel';
    const isSelf = !isChannel && chat.partner_id === this.me.id;
    const name = chatDisplayName(chat, this.me.id);
    parts.link.classList.toggle('is-channel', isChannel);
    parts.link.classList.toggle('is-direct', !isChannel);
    parts.icon.className = isChannel ? 'chat-icon' : `chat-icon avatar hue-${avatarHue(String(chat.name || ''))}`;
    parts.icon.textContent = isChannel ? '#' : (Array.from(String(name || '?'))[0] || '?').toUpperCase();
    if (isChannel && chat.private) {
      parts.icon.textContent = '';
      parts.icon.classList.add('chat-private');
    }
    if (!isChannel && chat.avatar_url) {
      parts.icon.className = 'chat-icon chat-picture';
      parts.icon.replaceChildren(h('img', { src: chat.avatar_url, alt: '' }));
    }
    if (isChannel) parts.kind.textContent = chat.private ? 'Private channel ' : 'Channel ';
    else parts.kind.textContent = isSelf ? 'Notes to self: ' : 'Direct chat with ';
    parts.name.textContent = name;
    parts.name.dir = 'auto';
    parts.name.title = name;
    const unknown = !isChannel && !isSelf && !this.presenceKnown;
    const online = !unknown && !isChannel && !isSelf && this.online.has(chat.partner_id);
    parts.dot.hidden = !online && !unknown;
    parts.dot.classList.toggle('unknown', unknown);
    if (unknown) parts.presence.textContent = ', not known whether online';
    else parts.presence.textContent = online ? ', online' : '';
    parts.link.classList.toggle('is-online', online);
    const message = chat.last_message || null;
    parts.time.replaceChildren(message ? timeElement(message.created_at, formatListTime) : '');
    const preview = previewText(message, this.me.id, chat.kind);
    const clip = message && message.attachment ? preview.indexOf(CLIP) : -1;
    if (clip < 0) {
      parts.preview.textContent = preview;
    } else {
      // The same paperclip on every system (an emoji font may be missing); the text keeps
      // the emoji for screen readers and for copying.
      parts.preview.replaceChildren(
        preview.slice(0, clip),
        h('span', { className: 'preview-clip', text: CLIP }),
        preview.slice(clip + CLIP.length),
      );
    }
    const count = Number(chat.unread_count) || 0;
    parts.badge.hidden = count <= 0;
    parts.badge.textContent = count > 99 ? '99+' : String(count);
    parts.unread.textContent = count > 0 ? `, ${count} unread` : '';
    parts.link.classList.toggle('has-unread', count > 0);
    const mentions = Number(chat.mention_count) || 0;
    parts.mentions.hidden = mentions <= 0;
    parts.mentions.textContent = `@${mentions > 99 ? '99+' : mentions}`;
    parts.mentioned.textContent = mentions > 0 ? `, ${mentions === 1 ? '1 mention' : `${mentions} mentions`} of you` : '';
  }

  /** Move a chat's item to the top, keeping keyboard focus on it. */
  place(chatId, toTop) {
    const parts = this.items.get(chatId);
    if (!parts) return;
    if (toTop && this.listEl.firstElementChild === parts.li) return;
    const hadFocus = parts.li.contains(document.activeElement);
    if (toTop) this.listEl.prepend(parts.li);
    else this.listEl.append(parts.li);
    if (hadFocus) parts.link.focus();
  }

  focusedChatId() {
    const link = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest('#chat-list a.chat-item')
      : null;
    return link ? Number(link.dataset.chatId) : null;
  }

  focusItem(chatId) {
    const parts = this.items.get(chatId);
    if (parts) parts.link.focus();
  }

  renderJoinable() {
    const channels = [...this.channels.values()]
      .sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
    this.joinableEl.replaceChildren(...channels.map((channel) => {
      const nameId = `joinable-name-${channel.id}`;
      return h(
        'li',
        { className: 'joinable-item' },
        h(
          'span',
          { className: 'joinable-name', id: nameId, title: channel.name },
          h('span', { className: 'chat-icon', 'aria-hidden': 'true', text: '#' }),
          h('span', { className: 'joinable-label', text: channel.name }),
        ),
        h('button', {
          type: 'button',
          className: 'button button-small',
          dataset: { chatId: String(channel.id) },
          'aria-describedby': nameId,
          text: 'Join',
        }),
      );
    }));
    this.joinableEmptyEl.hidden = channels.length > 0;
  }

  afterChange() {
    this.emptyEl.hidden = this.chats.size > 0;
    const total = this.totalUnread();
    document.title = total > 0 ? `(${total}) Chat` : 'Chat';
    this.onChange();
  }
}
