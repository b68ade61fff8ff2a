// The connection line in the page header: connected or not, and how many are online.

import { h } from './dom.js';

export class ConnectionStatus {
  constructor(el) {
    this.el = el;
    this.onlineCount = null;
    this.dot = h('span', { className: 'status-dot', 'aria-hidden': 'true' });
    this.text = h('span', { className: 'status-text', role: 'status', text: 'Connecting…' });
    this.count = h('span', { className: 'status-count' });
    if (el) {
      el.replaceChildren(this.dot, this.text, this.count);
      el.dataset.state = 'connecting';
    }
  }

  set(state, text) {
    if (!this.el) return;
    this.el.dataset.state = state;
    this.text.replaceChildren(text);
    this.count.hidden = state !== 'connected' || this.onlineCount === null;
  }

  connected() {
    this.set('connected', 'Connected');
  }

  disconnected() {
    this.set('offline', 'Offline, reconnecting…');
  }

  reconnecting() {
    this.set('offline', 'Offline, reconnecting…');
  }

  /** The connection failed; `stopped` means the client gave up (e.g. logged out). */
  failed(stopped) {
    if (!stopped) {
      this.set('offline', 'Cannot reach the server, retrying…');
      return;
    }
    this.set('offline', 'Not connected. ');
    this.text.append(h('a', { href: '/login?next=/chats', text: 'Log in again' }));
  }

  online(count) {
    this.onlineCount = count;
    this.count.textContent = `${count} online`;
    this.count.hidden = this.el ? this.el.dataset.state !== 'connected' : true;
  }
}
