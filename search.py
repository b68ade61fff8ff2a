"""What a search query means: the words and "quoted phrases" a person typed, read as plain
text (no search syntax gets through), and the same query written for SQLite's FTS5 and for
PostgreSQL's tsquery, so both databases match by one set of rules:

- every word and phrase must match (AND), in any case and without the accents of Latin
  letters ("creme" finds "Crème");
- a word is a run of letters and digits: everything else separates words, as the
  databases' tokenizers cut the messages (query.sql's version 8);
- the last word is a prefix ("plan" finds "planning") once it has ``MIN_PREFIX_LENGTH``
  characters, unless it ends a quoted phrase;
- a "quoted phrase" matches those words one after the other; a quote left open is ignored.

Quotes, ``*``, ``-``, ``^``, ``:``, parentheses, ``NEAR``, ``AND``, ``OR``, ``NOT`` are
separators or plain words: each term reaches the database quoted, letters and digits only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from helpers import ValidationError

# A shorter last word is matched whole: a one-letter prefix would match most messages.
MIN_PREFIX_LENGTH = 2
# More terms than this are refused: each is one more index lookup.
MAX_TERMS = 16

_WORD = re.compile(r"[^\W_]+")

EMPTY_QUERY = "Type a word to search for."
TOO_MANY_TERMS = f"Search for at most {MAX_TERMS} words."


@dataclass(frozen=True)
class SearchQuery:
    """A parsed query: its phrases (a lone word is a phrase of one), all to match, and
    whether the last phrase's last word is a prefix."""

    phrases: tuple[tuple[str, ...], ...]
    prefix: bool

    @property
    def prefix_word(self) -> str | None:
        """The word taken as a prefix, if any (it is then a phrase of its own)."""
        return self.phrases[-1][-1] if self.prefix else None

    def fts5(self, prefix_terms: list[str] | None = None) -> str:
        """The query as an FTS5 MATCH expression: each phrase a quoted string; the prefix
        word as ``"word" *``, or as the indexed words it starts when they are given
        (``("plan" OR "planning")``)."""
        parts = ['"' + " ".join(phrase) + '"' for phrase in self.phrases]
        if self.prefix and prefix_terms:
            quoted = ('"' + term.replace('"', '""') + '"' for term in prefix_terms)
            parts[-1] = "(" + " OR ".join(quoted) + ")"
        elif self.prefix:
            parts[-1] += " *"
        return " AND ".join(parts)

    def tsquery(self) -> str:
        """The query as to_tsquery's text ('simple' configuration; the database folds case
        and accents with message_search_fold)."""
        parts = [" <-> ".join(f"'{word}'" for word in phrase) for phrase in self.phrases]
        if self.prefix:
            parts[-1] += ":*"
        return " & ".join(f"({part})" if " " in part else part for part in parts)


def check_search_query(value: object, max_length: int) -> SearchQuery:
    """Parse what a person typed into a ``SearchQuery``; raise ValidationError for
    something that is not text, too long, or holds no word."""
    if not isinstance(value, str):
        raise ValidationError("The search must be text.")
    text = value.strip()
    if len(text) > max_length:
        raise ValidationError(f"A search is at most {max_length} characters.")
    pieces = text.split('"')
    if len(pieces) % 2 == 0:
        # A quote left open: its text is read as plain words.
        pieces[-2:] = [pieces[-2] + " " + pieces[-1]]
    phrases: list[tuple[str, ...]] = []
    prefix = False
    for index, piece in enumerate(pieces):
        words = tuple(word.lower() for word in _WORD.findall(piece))
        if not words:
            continue
        quoted = index % 2 == 1
        if quoted:
            phrases.append(words)
        else:
            phrases.extend((word,) for word in words)
        prefix = not quoted and len(words[-1]) >= MIN_PREFIX_LENGTH
    if not phrases:
        raise ValidationError(EMPTY_QUERY)
    if sum(len(phrase) for phrase in phrases) > MAX_TERMS:
        raise ValidationError(TOO_MANY_TERMS)
    return SearchQuery(tuple(phrases), prefix)
