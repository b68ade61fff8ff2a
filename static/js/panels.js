// The phone layout (600 px wide and below): one panel at a time, the chat list or the open
// conversation with a Back button. The browser's own Back (a phone's back gesture) and
// Escape go from the conversation to the list too. The page's height follows the visual
// viewport, so the on-screen keyboard never covers the text box.

import { isNarrow } from './dom.js';

const CONVERSATION = 'conversation';

/** Keep `--viewport-height` at the height the user actually sees. */
export function followVisualViewport() {
  const viewport = window.visualViewport;
  if (!viewport) return;
  const style = document.documentElement.style;
  const update = () => {
    // Setting a custom property through CSSOM is allowed under style-src 'self'.
    style.setProperty('--viewport-height', `${Math.round(viewport.height)}px`);
    // The browser may have scrolled the page to show the focused box; the page fits now.
    if (window.scrollY) window.scrollTo(0, 0);
  };
  viewport.addEventListener('resize', update);
  viewport.addEventListener('scroll', update);
  update();
}

export class Panels {
  /**
   * onShowList(): the list came into view (focus its active chat);
   * onShowChat(chatId): the browser's Forward brought a conversation back.
   */
  constructor({ root, onShowList, onShowChat }) {
    this.root = root;
    this.onShowList = onShowList;
    this.onShowChat = onShowChat;
    root.querySelector('#back-button').addEventListener('click', () => this.back());
    root.querySelector('.right-panel').addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || event.defaultPrevented || !isNarrow()) return;
      if (event.target.closest && event.target.closest('dialog')) return;
      event.preventDefault();
      this.back();
    });
    window.addEventListener('popstate', (event) => {
      const state = event.state || {};
      if (state.panel === CONVERSATION && Number.isInteger(state.chatId)) {
        this.root.classList.add('show-conversation');
        this.onShowChat(state.chatId);
      } else {
        this.showList();
      }
    });
  }

  get conversationShown() {
    return this.root.classList.contains('show-conversation');
  }

  /** Show the conversation; on a phone, an entry in the history lets Back return. */
  showConversation(chatId) {
    if (isNarrow() && !this.conversationShown) {
      history.pushState({ panel: CONVERSATION, chatId }, '', `/chats?chat=${chatId}`);
    }
    this.root.classList.add('show-conversation');
  }

  /** The address of the open chat, without adding a history entry. */
  noteOpenChat(chatId) {
    const state = history.state && history.state.panel === CONVERSATION
      ? { panel: CONVERSATION, chatId }
      : null;
    // On a phone showing the list, a reload should show the list again.
    const url = !isNarrow() || this.conversationShown ? `/chats?chat=${chatId}` : '/chats';
    history.replaceState(state, '', url);
  }

  back() {
    if (history.state && history.state.panel === CONVERSATION) history.back();
    else this.showList();
  }

  showList() {
    this.root.classList.remove('show-conversation');
    if (isNarrow()) history.replaceState(null, '', '/chats');
    this.onShowList();
  }
}
