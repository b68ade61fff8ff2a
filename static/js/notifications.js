// Browser notifications: a message from someone else, in a chat that is not the open one,
// while this tab is hidden. Permission is asked only when the user presses "Enable
// notifications", never on load; browsers offer notifications only to secure pages
// (https, or localhost).

import { chatDisplayName, previewText } from './dom.js';

const ICON_URL = '/static/icons/favicon.svg';

function supported() {
  return window.isSecureContext && typeof window.Notification === 'function';
}

export class Notifier {
  /** me: {id}; onOpen(chatId): the user clicked a notification. */
  constructor({ root, me, onOpen }) {
    this.me = me;
    this.onOpen = onOpen;
    this.row = root.querySelector('#notify-row');
    this.button = root.querySelector('#notify-button');
    this.button.addEventListener('click', () => this.askPermission());
    this.render();
  }

  get allowed() {
    return supported() && Notification.permission === 'granted';
  }

  /** The button shows only while the browser could still ask. */
  render() {
    this.row.hidden = !(supported() && Notification.permission === 'default');
  }

  async askPermission() {
    this.button.disabled = true;
    try {
      await Notification.requestPermission();
    } finally {
      this.button.disabled = false;
      this.render();
    }
  }

  /** A message reached `chat` while `openChatId` was open: tell the user when they miss it. */
  consider(chat, message, openChatId) {
    if (!this.allowed || !chat || !message) return;
    if (document.visibilityState !== 'hidden') return;
    if (message.sender_id === this.me.id || chat.id === openChatId) return;
    const name = chatDisplayName(chat, this.me.id);
    const title = chat.kind === 'channel' ? `${message.sender_name} in ${name}` : name;
    let notification;
    try {
      notification = new Notification(title, {
        body: previewText(message, this.me.id, 'direct'),
        tag: `chat-${chat.id}`,
        icon: ICON_URL,
      });
    } catch {
      // Some browsers allow notifications only from a service worker.
      return;
    }
    notification.addEventListener('click', () => {
      window.focus();
      this.onOpen(chat.id);
      notification.close();
    });
  }
}
