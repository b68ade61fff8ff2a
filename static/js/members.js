// People in the page: pictures (or a coloured initial), a channel's topic under the
// conversation's title, and the member list panel (presence, roles, inviting someone,
// leaving the channel, setting its topic).

import { h, setNote } from './dom.js';

const HUES = 6;

function hueOf(name) {
  let sum = 0;
  for (const ch of String(name)) sum = (sum * 31 + ch.codePointAt(0)) % 9973;
  return sum % HUES;
}

/** A person's picture, or the first letter of their name on a colour of its own. */
export function buildAvatar({ name, url, size = 'small' }) {
  if (url) {
    return h('img', { className: `person-avatar person-avatar-${size}`, src: url, alt: '', loading: 'lazy' });
  }
  const letter = (Array.from(String(name || '?'))[0] || '?').toUpperCase();
  return h('span', {
    className: `person-avatar person-avatar-${size} avatar hue-${hueOf(name || '')}`,
    'aria-hidden': 'true',
    text: letter,
  });
}

export class MembersPanel {
  /**
   * root: #chat-app; ask(event, payload): a request; me: {id}; defaultChannel: its name;
   * onLeft(chatId): the user left the channel.
   */
  constructor({ root, ask, me, onLeft }) {
    this.ask = ask;
    this.me = me;
    this.onLeft = onLeft;
    this.chat = null;
    this.topicEl = root.querySelector('#chat-topic');
    this.button = root.querySelector('#members-button');
    this.panel = root.querySelector('#members-panel');
    this.listEl = root.querySelector('#members-list');
    this.errorEl = root.querySelector('#members-error');
    this.inviteForm = root.querySelector('#invite-form');
    this.inviteInput = root.querySelector('#invite-name');
    this.topicForm = root.querySelector('#topic-form');
    this.topicInput = root.querySelector('#topic-input');
    this.leaveButton = root.querySelector('#leave-button');
    this.closeButton = root.querySelector('#members-close');
    this.defaultChannel = (root.dataset.defaultChannel || '').toLowerCase();

    this.button.addEventListener('click', () => {
      if (!this.panel.hidden) {
        this.hide();
        return;
      }
      this.show();
      this.closeButton.focus();
    });
    this.closeButton.addEventListener('click', () => {
      this.hide();
      this.button.focus();
    });
    this.inviteForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.invite();
    });
    this.topicForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.saveTopic();
    });
    this.leaveButton.addEventListener('click', () => this.leave());
  }

  /** The open chat changed (or was updated): its topic, and the panel if it is shown. */
  setChat(chat) {
    const changed = !this.chat || !chat || this.chat.id !== chat.id;
    this.chat = chat;
    const topic = chat && chat.kind === 'channel' ? String(chat.topic || '') : '';
    setNote(this.topicEl, topic);
    this.button.hidden = !chat;
    if (changed) this.hide();
    else if (!this.panel.hidden) this.show();
  }

  /** A channel's name or topic changed (channel_updated). */
  updated(chat) {
    if (this.chat && chat && chat.id === this.chat.id) this.setChat({ ...this.chat, ...chat });
  }

  isChannel() {
    return this.chat && this.chat.kind === 'channel';
  }

  async show() {
    if (!this.chat) return;
    this.panel.hidden = false;
    this.button.setAttribute('aria-expanded', 'true');
    const isChannel = this.isChannel();
    const isDefault = isChannel && String(this.chat.name).toLowerCase() === this.defaultChannel;
    this.inviteForm.hidden = !isChannel;
    this.topicForm.hidden = !isChannel;
    this.leaveButton.hidden = !isChannel || isDefault;
    this.topicInput.value = this.chat.topic || '';
    setNote(this.errorEl, '');
    const chatId = this.chat.id;
    const res = await this.ask('list_members', { chat_id: chatId });
    if (!this.chat || this.chat.id !== chatId) return;
    if (!res.ok) {
      setNote(this.errorEl, res.error || 'The members could not be loaded.');
      return;
    }
    this.listEl.replaceChildren(...res.members.map((member) => this.buildMember(member)));
  }

  hide() {
    this.panel.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
  }

  buildMember(member) {
    const name = member.display_name || member.username;
    return h(
      'li',
      { className: `member${member.online ? ' is-online' : ''}`, dataset: { userId: String(member.id) } },
      h('span', { className: 'member-avatar' },
        buildAvatar({ name, url: member.avatar_url, size: 'medium' }),
        h('span', { className: 'presence-dot', 'aria-hidden': 'true', hidden: !member.online })),
      h('span', { className: 'member-text' },
        h('span', { className: 'member-name', text: name }),
        h('span', { className: 'member-handle', text: `@${member.username}` })),
      h('span', { className: 'visually-hidden', text: member.online ? ', online' : ', offline' }),
      member.role === 'admin' ? h('span', { className: 'role-tag role-admin', text: 'admin' }) : null,
    );
  }

  async invite() {
    const name = this.inviteInput.value.trim();
    if (!name || !this.chat) return;
    setNote(this.errorEl, '');
    let person = null;
    try {
      const response = await fetch(`/find?q=${encodeURIComponent(name)}`, {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
      });
      const people = response.ok ? await response.json() : [];
      person = people.find((p) => p.username.toLowerCase() === name.replace(/^@/, '').toLowerCase()) || null;
    } catch {
      person = null;
    }
    if (!person) {
      setNote(this.errorEl, `Nobody is called ${name}.`);
      return;
    }
    const res = await this.ask('invite_to_channel', { chat_id: this.chat.id, user_id: person.id });
    if (!res.ok) {
      setNote(this.errorEl, res.error || 'The invitation failed.');
      return;
    }
    this.inviteInput.value = '';
    this.show();
  }

  async saveTopic() {
    if (!this.chat) return;
    const res = await this.ask('update_channel', { chat_id: this.chat.id, topic: this.topicInput.value });
    if (!res.ok) {
      setNote(this.errorEl, res.error || 'The topic could not be saved.');
      return;
    }
    this.updated(res.chat);
  }

  async leave() {
    if (!this.chat) return;
    const chatId = this.chat.id;
    const res = await this.ask('leave_channel', { chat_id: chatId });
    if (!res.ok) {
      setNote(this.errorEl, res.error || 'Could not leave the channel.');
      return;
    }
    this.hide();
    this.onLeft(chatId);
  }
}
