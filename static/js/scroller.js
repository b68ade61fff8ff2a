// Where the reader is in the history: at the bottom (new messages keep them there) or
// further up (a "Jump to latest" button, with the number of messages that arrived below,
// brings them back), and keeping what they look at in place while content above it changes.

import { h } from './dom.js';

const AT_BOTTOM_SLACK_PX = 48;

export class HistoryScroller {
  /**
   * history: the scrolling element; jumpButton: "Jump to latest";
   * showJump(): whether the button may show at all (a chat is open);
   * moreBelow(): true while newer messages wait on the server below what is shown.
   */
  constructor({ history, jumpButton, showJump, moreBelow }) {
    this.history = history;
    this.jumpButton = jumpButton;
    this.showJump = showJump;
    this.moreBelow = moreBelow;
    this.pinned = true;
    // Messages that arrived below while the button showed; counted until it hides.
    this.newBelow = 0;
    this.jumpCount = h('span', { className: 'jump-count', 'aria-hidden': 'true', hidden: true });
    this.jumpCountWords = h('span', { className: 'visually-hidden' });
    jumpButton.append(this.jumpCount, this.jumpCountWords);

    let frame = 0;
    history.addEventListener('scroll', () => {
      this.pinned = this.isAtBottom();
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        this.updateJumpButton();
      });
    }, { passive: true });
    // The upload tray, a growing text box or a phone's keyboard shrink the history: a reader
    // at the bottom stays at the bottom.
    new ResizeObserver(() => {
      if (this.pinned && !history.hidden) history.scrollTop = history.scrollHeight;
    }).observe(history);
    jumpButton.addEventListener('click', () => {
      this.scrollToBottom();
      history.focus({ preventScroll: true });
    });
  }

  isAtBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.history;
    return scrollHeight - scrollTop - clientHeight <= AT_BOTTOM_SLACK_PX;
  }

  scrollToBottom() {
    this.history.scrollTop = this.history.scrollHeight;
    this.pinned = true;
    this.updateJumpButton();
  }

  /** Scroll so that the "New messages" divider shows near the top (below its day, when
   * the first unread message starts a day). */
  scrollToDivider(divider) {
    const before = divider.previousElementSibling;
    const target = before && before.classList.contains('day-separator') ? before : divider;
    this.history.scrollTop = Math.max(0, target.offsetTop - 8);
    this.pinned = this.isAtBottom();
    this.updateJumpButton();
  }

  updateJumpButton() {
    const { scrollHeight, scrollTop, clientHeight } = this.history;
    const far = scrollHeight - scrollTop - clientHeight > clientHeight / 2;
    this.jumpButton.hidden = !this.showJump() || !(far || (this.moreBelow() && !this.isAtBottom()));
    if (this.jumpButton.hidden) this.newBelow = 0;
    this.renderJumpCount();
  }

  /** A message arrived below what the reader sees. */
  noteNewBelow() {
    this.updateJumpButton();
    if (this.jumpButton.hidden) return;
    this.newBelow += 1;
    this.renderJumpCount();
  }

  renderJumpCount() {
    const count = this.newBelow;
    this.jumpCount.hidden = count === 0;
    this.jumpCount.textContent = count > 99 ? '99+' : String(count);
    let words = '';
    if (count > 0) words = count === 1 ? ', 1 new message' : `, ${count} new messages`;
    this.jumpCountWords.textContent = words;
  }

  /**
   * Run `change` (which adds or removes content above the reader) without moving what the
   * reader sees: the first message in view stays where it was on the screen.
   */
  keepInView(change) {
    const anchor = this.firstInView();
    const before = anchor ? anchor.getBoundingClientRect().top : 0;
    const result = change();
    if (anchor && anchor.isConnected) {
      this.history.scrollTop += anchor.getBoundingClientRect().top - before;
    }
    return result;
  }

  firstInView() {
    const top = this.history.getBoundingClientRect().top;
    for (const el of this.history.querySelectorAll('.message')) {
      if (el.getBoundingClientRect().bottom > top) return el;
    }
    return null;
  }
}
