// The right panel's history: opening a chat, paging older and newer messages by id,
// live messages, pending sends, read reports and the typing line.

import {
  chatDisplayName, h, newClientId, setNote, timeElement,
} from './dom.js';
import { ReadTracker } from './reading.js';

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const TYPING_SHOW_MS = 5000;
const SEND_TIMEOUT_MS = 15000;
const AT_BOTTOM_SLACK_PX = 48;
const OFFLINE_ERROR = 'You are offline; it will go out when the connection is back.';

function byId(a, b) {
  return a.id - b.id;
}

function isMessage(node) {
  return Boolean(node && node.classList && node.classList.contains('message'));
}

function isStored(node) {
  return isMessage(node) && Boolean(node.dataset.id);
}

export class Conversation {
  /**
   * me: {id, username}; ask(event, payload, timeoutMs): a settled Socket.IO request;
   * isConnected(): whether the socket is up;
   * onRead(chatId, unreadCount, lastReadId): the server confirmed a read report;
   * notify(text): show a problem to the user.
   */
  constructor({ root, me, ask, isConnected, onRead, notify }) {
    this.me = me;
    this.ask = ask;
    this.isConnected = isConnected;
    this.notify = notify;
    this.seq = 0;
    this.openingChatId = null;
    this.early = [];

    this.titleEl = root.querySelector('#chat-title');
    this.emptyEl = root.querySelector('#conversation-empty');
    this.history = root.querySelector('#history');
    this.list = root.querySelector('#messages');
    this.topSentinel = root.querySelector('#top-sentinel');
    this.bottomSentinel = root.querySelector('#bottom-sentinel');
    this.topNote = root.querySelector('#history-top-note');
    this.bottomNote = root.querySelector('#history-bottom-note');
    this.typingEl = root.querySelector('#typing-indicator');
    this.jumpButton = root.querySelector('#jump-latest');

    this.resetState();

    this.pageObserver = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        if (entry.target === this.topSentinel) this.loadOlder();
        else if (entry.target === this.bottomSentinel) this.loadNewer();
      }
    }, { root: this.history, rootMargin: '300px 0px' });

    this.reading = new ReadTracker({
      scroller: this.history, me, ask, onRead, notify,
    });

    let scrollFrame = 0;
    this.history.addEventListener('scroll', () => {
      if (scrollFrame) return;
      scrollFrame = requestAnimationFrame(() => {
        scrollFrame = 0;
        this.updateJumpButton();
      });
    }, { passive: true });
    this.jumpButton.addEventListener('click', () => {
      this.scrollToBottom();
      this.history.focus({ preventScroll: true });
    });
  }

  resetState() {
    this.chatId = null;
    this.chat = null;
    this.byId = new Map();
    this.pending = new Map();
    this.oldestId = null;
    this.newestId = null;
    this.hasMoreBefore = false;
    this.hasMoreAfter = false;
    this.loadingBefore = false;
    this.loadingAfter = false;
    if (this.typers) for (const typer of this.typers.values()) clearTimeout(typer.timer);
    this.typers = new Map();
  }

  /** Leave whatever is shown: report what was read, stop observers, empty the list. */
  clear() {
    this.reading.leave();
    this.pageObserver.disconnect();
    this.resetState();
    this.list.replaceChildren();
    setNote(this.topNote, '');
    setNote(this.bottomNote, '');
    this.renderTyping();
    this.jumpButton.hidden = true;
  }

  showEmpty() {
    this.seq += 1;
    this.openingChatId = null;
    this.clear();
    this.titleEl.textContent = 'No chat open';
    this.history.hidden = true;
    this.emptyEl.hidden = false;
  }

  /** Open a chat (join_chat); resolves with the server's answer, or null. */
  async open(chatId, knownChat) {
    const seq = ++this.seq;
    this.clear();
    this.openingChatId = chatId;
    this.early = [];
    this.titleEl.textContent = knownChat ? chatDisplayName(knownChat, this.me.id) : 'Loading…';
    this.emptyEl.hidden = true;
    this.history.hidden = false;
    this.history.setAttribute('aria-busy', 'true');
    setNote(this.topNote, 'Loading messages…');

    const res = await this.ask('join_chat', { chat_id: chatId });
    if (seq !== this.seq) return null;
    this.openingChatId = null;
    this.history.setAttribute('aria-busy', 'false');
    if (!res.ok) {
      setNote(this.topNote, res.error);
      return null;
    }

    const chat = res.chat || knownChat || { id: chatId, kind: 'channel', name: '' };
    const messages = Array.isArray(res.messages) ? [...res.messages].sort(byId) : [];
    this.chatId = chatId;
    this.chat = chat;
    this.titleEl.textContent = chatDisplayName(chat, this.me.id);
    this.hasMoreBefore = Boolean(res.has_more_before);
    this.hasMoreAfter = Boolean(res.has_more_after);
    const firstUnread = Number.isInteger(res.first_unread_id) ? res.first_unread_id : null;
    let lastReadId = messages.length ? messages[messages.length - 1].id : 0;
    if (Number.isInteger(chat.last_read_id)) lastReadId = chat.last_read_id;
    else if (firstUnread !== null) lastReadId = firstUnread - 1;
    this.reading.reset(chatId, lastReadId);

    const fragment = document.createDocumentFragment();
    let divider = null;
    for (const message of messages) {
      if (this.byId.has(message.id)) continue;
      if (firstUnread !== null && !divider && message.id >= firstUnread) {
        divider = h(
          'li',
          { className: 'unread-divider', role: 'separator' },
          h('span', { text: 'New messages' }),
        );
        fragment.append(divider);
      }
      fragment.append(this.buildStored(message));
    }
    this.list.append(fragment);
    for (const node of this.list.children) this.regroup(node);
    this.updateBounds(messages);
    this.updateTopNote();

    const early = this.early;
    this.early = [];
    for (const message of early) this.receive(message);

    if (divider) this.history.scrollTop = Math.max(0, divider.offsetTop - 8);
    else this.scrollToBottom();
    this.rearm();
    return res;
  }

  /** After a reconnect: fetch what came after the newest message shown. */
  async catchUp() {
    if (!this.chatId) return null;
    if (this.newestId === null) return this.open(this.chatId, this.chat);
    const seq = this.seq;
    const chatId = this.chatId;
    const res = await this.ask('join_chat', { chat_id: chatId, after_id: this.newestId });
    if (seq !== this.seq) return null;
    if (!res.ok) {
      this.notify(res.error);
      return null;
    }
    const atBottom = this.isAtBottom();
    this.addNewer(res.messages);
    this.hasMoreAfter = Boolean(res.has_more_after);
    if (atBottom) this.scrollToBottom();
    this.rearm();
    return res;
  }

  /** message_received_from_current_chat */
  receive(message) {
    if (!message || !Number.isInteger(message.id)) return;
    if (this.openingChatId !== null && message.chat_id === this.openingChatId) {
      this.early.push(message);
      return;
    }
    if (message.chat_id !== this.chatId) return;
    this.clearTyping(message.sender_id);
    if (this.byId.has(message.id)) return;
    const atBottom = this.isAtBottom();
    if (message.sender_id === this.me.id && this.pending.has(message.client_id)) {
      this.confirm(message.client_id, message);
      return;
    }
    // With a gap below what is shown, a live message would land out of place:
    // it arrives with the next page when the reader scrolls down.
    if (this.hasMoreAfter) {
      this.updateJumpButton();
      return;
    }
    this.insertStored(message);
    this.newestId = Math.max(this.newestId ?? 0, message.id);
    if (this.oldestId === null) this.oldestId = message.id;
    this.updateTopNote();
    if (atBottom) this.scrollToBottom();
    else this.updateJumpButton();
  }

  /** True when a new message in the open chat will be seen without scrolling. */
  isFollowingLive() {
    return document.visibilityState === 'visible'
      && this.isShown()
      && !this.hasMoreAfter
      && this.isAtBottom();
  }

  /** False while the panel is hidden (a phone showing the chat list). */
  isShown() {
    return !this.history.hidden && this.history.getClientRects().length > 0;
  }

  /** Show a message as pending and send it; returns false when no chat is open. */
  send(body) {
    if (!this.chatId) return false;
    const message = {
      id: null,
      chat_id: this.chatId,
      sender_id: this.me.id,
      sender_name: this.me.username,
      body,
      created_at: Date.now(),
      client_id: newClientId(),
      attachment: null,
    };
    const el = this.buildMessage(message, { pending: true });
    this.list.append(el);
    this.pending.set(message.client_id, { el, message });
    this.regroup(el);
    this.updateTopNote();
    this.scrollToBottom();
    this.deliver(message.client_id);
    return true;
  }

  async deliver(clientId) {
    const entry = this.pending.get(clientId);
    if (!entry) return;
    const { message } = entry;
    if (!this.isConnected()) {
      this.setStatus(entry.el, 'failed', OFFLINE_ERROR, { retryable: true });
      return;
    }
    const seq = this.seq;
    const chatName = this.titleEl.textContent;
    this.setStatus(entry.el, 'pending');
    const res = await this.ask(
      'message_sent',
      { chat_id: message.chat_id, body: message.body, client_id: clientId },
      SEND_TIMEOUT_MS,
    );
    if (seq !== this.seq) {
      if (!res.ok) this.notify(`Your message to ${chatName} was not sent: ${res.error}`);
      return;
    }
    if (!this.pending.has(clientId)) return;
    if (res.ok && res.message && Number.isInteger(res.message.id)) {
      this.confirm(clientId, res.message);
    } else {
      const error = res.ok ? 'The server did not return the message.' : res.error;
      this.setStatus(entry.el, 'failed', error, { retryable: Boolean(res.timedOut) });
    }
  }

  /** After a reconnect: send again what failed only for want of a connection. */
  retryFailed() {
    for (const [clientId, entry] of this.pending) {
      if (entry.el.dataset.retryable === 'true') this.deliver(clientId);
    }
  }

  /** Another tab of this user read the open chat up to `lastReadId`. */
  readElsewhere(chatId, lastReadId) {
    if (chatId === this.chatId) this.reading.readElsewhere(lastReadId);
  }

  /** user_typing */
  showTyping({ chat_id: chatId, user_id: userId, username }) {
    if (chatId !== this.chatId || userId === this.me.id) return;
    const known = this.typers.get(userId);
    if (known) clearTimeout(known.timer);
    this.typers.set(userId, {
      name: String(username || 'Someone'),
      timer: setTimeout(() => this.clearTyping(userId), TYPING_SHOW_MS),
    });
    this.renderTyping();
  }

  // Rendering

  buildMessage(message, { pending = false } = {}) {
    const own = message.sender_id === this.me.id;
    const classes = ['message'];
    if (own) classes.push('own');
    if (pending) classes.push('pending');
    const dataset = {
      senderId: String(message.sender_id),
      createdAt: String(message.created_at),
    };
    if (Number.isInteger(message.id)) dataset.id = String(message.id);
    if (message.client_id) dataset.clientId = String(message.client_id);
    const li = h(
      'li',
      { className: classes.join(' '), dataset },
      h(
        'p',
        { className: 'message-meta' },
        h('span', { className: 'sender', text: message.sender_name || 'Unknown' }),
        ' ',
        timeElement(message.created_at, undefined, 'message-time'),
      ),
      h('p', { className: 'message-body', text: message.body || '' }),
    );
    const attachment = message.attachment;
    if (attachment && typeof attachment === 'object') {
      const name = String(attachment.name || 'Attachment');
      const url = typeof attachment.url === 'string' && attachment.url.startsWith('/uploads/')
        ? attachment.url : null;
      li.append(h(
        'p',
        { className: 'message-attachment' },
        url ? h('a', { href: url, download: name, text: name }) : h('span', { text: name }),
      ));
    }
    if (pending) li.append(h('p', { className: 'message-status', text: 'Sending…' }));
    return li;
  }

  buildStored(message) {
    const el = this.buildMessage(message);
    this.byId.set(message.id, el);
    this.reading.watch(el, message);
    return el;
  }

  /** Insert a stored message in id order; pending and failed sends stay at the bottom. */
  insertStored(message) {
    const el = this.buildStored(message);
    this.place(el, message.id);
    return el;
  }

  place(el, id) {
    let ref = null;
    for (let node = this.list.lastElementChild; node; node = node.previousElementSibling) {
      if (node !== el && isStored(node) && Number(node.dataset.id) < id) break;
      if (node !== el) ref = node;
    }
    this.list.insertBefore(el, ref);
    this.regroup(el);
    this.regroup(el.nextElementSibling);
  }

  isInPlace(el, id) {
    let prev = el.previousElementSibling;
    while (prev && !isStored(prev)) prev = prev.previousElementSibling;
    let next = el.nextElementSibling;
    while (next && !isStored(next)) next = next.nextElementSibling;
    return (!prev || Number(prev.dataset.id) < id) && (!next || Number(next.dataset.id) > id);
  }

  addNewer(messages) {
    if (!Array.isArray(messages)) return;
    for (const message of [...messages].sort(byId)) {
      if (!Number.isInteger(message.id)) continue;
      this.newestId = Math.max(this.newestId ?? 0, message.id);
      if (this.oldestId === null) this.oldestId = message.id;
      if (this.byId.has(message.id)) continue;
      if (message.sender_id === this.me.id && this.pending.has(message.client_id)) {
        this.confirm(message.client_id, message);
      } else {
        this.insertStored(message);
      }
    }
    this.updateTopNote();
  }

  /** A pending send was stored: the pending element becomes the stored message. */
  confirm(clientId, message) {
    const entry = this.pending.get(clientId);
    this.pending.delete(clientId);
    if (!entry) return;
    const { el } = entry;
    const next = el.nextElementSibling;
    if (this.byId.has(message.id)) {
      el.remove();
      this.regroup(next);
      return;
    }
    // Reuse the node the reader (and a screen reader) already has instead of adding a copy.
    const fresh = this.buildMessage(message);
    el.className = fresh.className;
    el.dataset.id = String(message.id);
    el.dataset.createdAt = String(message.created_at);
    el.replaceChildren(...fresh.childNodes);
    this.byId.set(message.id, el);
    this.reading.watch(el, message);
    if (this.isInPlace(el, message.id)) {
      this.regroup(el);
      this.regroup(el.nextElementSibling);
    } else {
      el.remove();
      this.regroup(next);
      this.place(el, message.id);
    }
    if (!this.hasMoreAfter) this.newestId = Math.max(this.newestId ?? 0, message.id);
    if (this.oldestId === null) this.oldestId = message.id;
    this.updateTopNote();
  }

  setStatus(el, state, error = '', { retryable = false } = {}) {
    const atBottom = this.isAtBottom();
    el.classList.toggle('pending', state === 'pending');
    el.classList.toggle('failed', state === 'failed');
    if (retryable) el.dataset.retryable = 'true';
    else delete el.dataset.retryable;
    let status = el.querySelector('.message-status');
    if (!status) {
      status = h('p', { className: 'message-status' });
      el.append(status);
    }
    if (state === 'pending') {
      status.replaceChildren('Sending…');
    } else {
      const retry = h('button', { type: 'button', className: 'button button-small retry', text: 'Retry' });
      retry.addEventListener('click', () => this.deliver(el.dataset.clientId));
      const text = retryable ? `Not sent yet. ${error}` : `Not sent: ${error}`;
      status.replaceChildren(h('span', { text }), ' ', retry);
    }
    this.regroup(el);
    this.regroup(el.nextElementSibling);
    if (atBottom) this.scrollToBottom();
  }

  /** Hide the name line of a message that follows one from the same sender. */
  regroup(el) {
    if (!isMessage(el)) return;
    const prev = el.previousElementSibling;
    const gap = Number(el.dataset.createdAt) - Number(prev && prev.dataset.createdAt);
    const continued = isMessage(prev)
      && !prev.classList.contains('failed')
      && !el.classList.contains('failed')
      && prev.dataset.senderId === el.dataset.senderId
      && gap >= 0 && gap < GROUP_WINDOW_MS;
    el.classList.toggle('continued', continued);
  }

  updateBounds(messages) {
    for (const message of messages) {
      if (!Number.isInteger(message.id)) continue;
      this.oldestId = this.oldestId === null ? message.id : Math.min(this.oldestId, message.id);
      this.newestId = this.newestId === null ? message.id : Math.max(this.newestId, message.id);
    }
  }

  updateTopNote() {
    if (this.loadingBefore) setNote(this.topNote, 'Loading earlier messages…');
    else if (this.byId.size === 0 && this.pending.size === 0) setNote(this.topNote, 'No messages yet. Write the first one.');
    else if (!this.hasMoreBefore) setNote(this.topNote, 'This is the beginning of the chat.');
    else setNote(this.topNote, '');
  }

  renderTyping() {
    const names = [...this.typers.values()].map((typer) => typer.name);
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = 'Several people are typing…';
    this.typingEl.textContent = text;
  }

  clearTyping(userId) {
    const typer = this.typers.get(userId);
    if (!typer) return;
    clearTimeout(typer.timer);
    this.typers.delete(userId);
    this.renderTyping();
  }

  // Scrolling and paging

  isAtBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.history;
    return scrollHeight - scrollTop - clientHeight <= AT_BOTTOM_SLACK_PX;
  }

  scrollToBottom() {
    this.history.scrollTop = this.history.scrollHeight;
    this.updateJumpButton();
  }

  updateJumpButton() {
    const { scrollHeight, scrollTop, clientHeight } = this.history;
    const far = scrollHeight - scrollTop - clientHeight > clientHeight / 2;
    this.jumpButton.hidden = !this.chatId || !(far || (this.hasMoreAfter && !this.isAtBottom()));
  }

  /** Observe the sentinels afresh: observe() always reports the current state once. */
  rearm() {
    if (!this.chatId) return;
    for (const sentinel of [this.topSentinel, this.bottomSentinel]) {
      this.pageObserver.unobserve(sentinel);
      this.pageObserver.observe(sentinel);
    }
  }

  async loadOlder() {
    if (!this.chatId || !this.hasMoreBefore || this.loadingBefore || this.oldestId === null) return;
    const seq = this.seq;
    this.loadingBefore = true;
    this.updateTopNote();
    const res = await this.ask('message_history_is_scrolled_to_the_top', {
      chat_id: this.chatId,
      before_id: this.oldestId,
    });
    if (seq !== this.seq) return;
    this.loadingBefore = false;
    if (!res.ok) {
      this.updateTopNote();
      this.notify(res.error);
      return;
    }
    const messages = Array.isArray(res.messages) ? [...res.messages].sort(byId) : [];
    this.prependOlder(messages);
    this.hasMoreBefore = Boolean(res.has_more_before) && messages.length > 0;
    this.updateTopNote();
    this.rearm();
  }

  prependOlder(messages) {
    const fragment = document.createDocumentFragment();
    const added = [];
    for (const message of messages) {
      if (!Number.isInteger(message.id) || this.byId.has(message.id)) continue;
      const el = this.buildStored(message);
      fragment.append(el);
      added.push(el);
    }
    this.updateBounds(messages);
    if (!added.length) return;
    const oldFirst = this.list.firstElementChild;
    const heightBefore = this.history.scrollHeight;
    const topBefore = this.history.scrollTop;
    this.list.insertBefore(fragment, oldFirst);
    for (const el of added) this.regroup(el);
    this.regroup(oldFirst);
    this.history.scrollTop = topBefore + (this.history.scrollHeight - heightBefore);
  }

  async loadNewer() {
    if (!this.chatId || !this.hasMoreAfter || this.loadingAfter || this.newestId === null) return;
    const seq = this.seq;
    this.loadingAfter = true;
    setNote(this.bottomNote, 'Loading newer messages…');
    const res = await this.ask('message_history_is_scrolled_to_the_bottom', {
      chat_id: this.chatId,
      after_id: this.newestId,
    });
    if (seq !== this.seq) return;
    this.loadingAfter = false;
    setNote(this.bottomNote, '');
    if (!res.ok) {
      this.notify(res.error);
      return;
    }
    const messages = Array.isArray(res.messages) ? res.messages : [];
    this.addNewer(messages);
    this.hasMoreAfter = Boolean(res.has_more_after) && messages.length > 0;
    this.updateJumpButton();
    this.rearm();
  }
}
