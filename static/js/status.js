// The connection line in the page header: connected, reconnecting or offline (each with
// its own shape and words, not only a colour), and how many people are online.

import { h } from './dom.js';

export class ConnectionStatus {
  constructor(el) {
    this.el = el;
    this.onlineCount = null;
    this.state = 'connecting';
    this.dot = h('span', { className: 'status-dot', 'aria-hidden': 'true' });
    // Only the state is announced (politely); the count changes too often to read out.
    this.text = h('span', { className: 'status-text', role: 'status', text: 'Connecting…' });
    this.count = h('span', { className: 'status-count', hidden: true });
    if (el) {
      el.replaceChildren(this.dot, this.text, this.count);
      el.dataset.state = this.state;
    }
  }

  set(state, text) {
    this.state = state;
    if (!this.el) return;
    this.el.dataset.state = state;
    this.el.title = typeof text === 'string' ? text : '';
    this.text.replaceChildren(text);
    this.renderCount();
  }

  connected() {
    this.set('connected', 'Connected');
  }

  /** The socket was lost and the client is trying again. */
  reconnecting() {
    this.set('reconnecting', 'Reconnecting…');
  }

  /** The browser has no network, or the client stopped trying. */
  offline() {
    this.set('offline', 'Offline');
  }

  /** The server refused the connection (logged out): the client will not retry. */
  refused() {
    this.set('offline', 'Not connected. ');
    if (this.el) this.el.title = 'Not connected';
    this.text.append(h('a', { href: '/login?next=/chats', text: 'Log in again' }));
  }

  /** online_users_updated, or the online_count of list_chats. */
  online(count) {
    if (!Number.isInteger(count) || count < 0) return;
    this.onlineCount = count;
    this.renderCount();
  }

  renderCount() {
    if (!this.el) return;
    // A count from before the connection dropped would be stale.
    const show = this.state === 'connected' && this.onlineCount !== null;
    this.count.hidden = !show;
    if (!show) return;
    // On a phone only the dot and the number show; the title says it in words.
    this.el.title = `Connected · ${this.onlineCount} online`;
    this.count.replaceChildren(
      h('span', { className: 'status-count-number', text: String(this.onlineCount) }),
      h('span', { className: 'status-count-label', text: ' online' }),
    );
  }
}
