// Browser notifications for messages that arrive while this tab is hidden: which ones is
// notify_rules.js's `shouldNotify`. Shown through the service worker's `showNotification`
// where there is one (the only kind a phone's browser shows; a click reaches the worker,
// which opens the chat), else with the page's own `new Notification()`. Permission is
// asked only when the user presses "Enable notifications", never on load; browsers offer
// notifications only to secure pages (https, or localhost). The sound plays for the same
// messages with or without notifications (on a phone over plain http it is all there is),
// unless the reader turned it off.

import { registration } from './app_shell.js';
import { chatDisplayName, previewText } from './dom.js';
import { isChosen, setChosen, setSound, shouldNotify, soundOn } from './notify_rules.js';

const ICON_URL = '/static/icons/icon-192.png';
const SOUND_URL = '/static/sounds/notify.wav';

function supported() {
  return window.isSecureContext && typeof window.Notification === 'function';
}

export class Notifier {
  /** me: {id}; onOpen(chatId): the user clicked a notification. */
  constructor({ root, me, onOpen }) {
    this.me = me;
    this.onOpen = onOpen;
    this.openChat = null;
    this.audio = null;
    this.row = root.querySelector('#notify-row');
    this.button = root.querySelector('#notify-button');
    this.settings = root.querySelector('#notify-settings');
    this.soundBox = root.querySelector('#notify-sound');
    this.chatToggle = root.querySelector('#notify-chat-button');
    this.button.addEventListener('click', () => this.askPermission());
    this.soundBox.checked = soundOn();
    this.soundBox.addEventListener('change', () => setSound(this.soundBox.checked));
    this.chatToggle.addEventListener('click', () => this.toggleChat());
    this.render();
  }

  get allowed() {
    return supported() && Notification.permission === 'granted';
  }

  /** The button shows only while the browser could still ask; the sound setting always. */
  render() {
    this.row.hidden = !(supported() && Notification.permission === 'default');
    this.settings.hidden = false;
    this.renderChatToggle();
  }

  /** The open chat (a chat object), for its "every message" toggle. */
  setOpenChat(chat) {
    this.openChat = chat || null;
    this.renderChatToggle();
  }

  // Direct messages always notify; a channel's every message only when chosen.
  renderChatToggle() {
    const chat = this.openChat;
    this.chatToggle.hidden = !(this.allowed && chat && chat.kind === 'channel');
    const on = Boolean(chat) && isChosen(this.me.id, chat.id);
    this.chatToggle.setAttribute('aria-pressed', String(on));
  }

  toggleChat() {
    if (!this.openChat) return;
    setChosen(this.me.id, this.openChat.id, !isChosen(this.me.id, this.openChat.id));
    this.renderChatToggle();
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
    const hidden = document.visibilityState === 'hidden';
    // A hidden page shows not even the open chat: its messages sound too.
    const audible = shouldNotify(message, { chat, me: this.me, openChatId: null, hidden });
    if (audible && soundOn()) this.playSound();
    if (!this.allowed || !shouldNotify(message, { chat, me: this.me, openChatId, hidden })) return;
    const name = chatDisplayName(chat, this.me.id);
    const title = chat.kind === 'channel' ? `${message.sender_display_name || message.sender_name} in ${name}` : name;
    const options = {
      body: previewText(message, this.me.id, 'direct'),
      tag: `chat-${chat.id}`,
      icon: ICON_URL,
      silent: !soundOn(),
      data: { chatId: chat.id },
    };
    this.show(chat.id, title, options);
  }

  async show(chatId, title, options) {
    const worker = await registration;
    if (worker && worker.active) {
      try {
        await worker.showNotification(title, options);
        return;
      } catch {
        // The worker refused (it is being replaced): the page's own notification instead.
      }
    }
    let notification;
    try {
      notification = new Notification(title, options);
    } catch {
      // Some browsers allow notifications only from a service worker.
      return;
    }
    notification.addEventListener('click', () => {
      window.focus();
      this.onOpen(chatId);
      notification.close();
    });
  }

  playSound() {
    if (!this.audio) {
      this.audio = new Audio(SOUND_URL);
      this.audio.volume = 0.6;
    }
    this.audio.currentTime = 0;
    // Refused until the user has once interacted with the page (autoplay rules): silence.
    this.audio.play().catch(() => {});
  }
}
