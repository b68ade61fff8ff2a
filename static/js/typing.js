// The "<name> is typing…" line under the open chat. Each person's note goes 5 s after
// their last typing signal (senders repeat it at most every 3 s while they type), or at
// once when their message arrives.

const TYPING_SHOW_MS = 5000;

export class TypingLine {
  constructor(el) {
    this.el = el;
    this.typers = new Map();
  }

  /** user_typing: someone typed in the open chat. */
  show(userId, name) {
    const known = this.typers.get(userId);
    if (known) clearTimeout(known.timer);
    this.typers.set(userId, {
      name: String(name || 'Someone'),
      timer: setTimeout(() => this.clear(userId), TYPING_SHOW_MS),
    });
    this.render();
  }

  clear(userId) {
    const typer = this.typers.get(userId);
    if (!typer) return;
    clearTimeout(typer.timer);
    this.typers.delete(userId);
    this.render();
  }

  clearAll() {
    for (const typer of this.typers.values()) clearTimeout(typer.timer);
    this.typers.clear();
    this.render();
  }

  render() {
    const names = [...this.typers.values()].map((typer) => typer.name);
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = 'Several people are typing…';
    this.el.textContent = text;
  }
}
