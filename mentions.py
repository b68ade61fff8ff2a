"""Which names a message body mentions: ``@username`` as a word of its own, outside code.

Only the syntax is read here; whether a name is a member of the chat is for the database
(``db_commands.replace_mentions``). ``static/js/markdown.js`` highlights the same names.
"""

from __future__ import annotations

import re

from helpers import MAX_USERNAME_LENGTH, MIN_USERNAME_LENGTH

# More distinct names than this in one message are not looked up: each costs a query.
MAX_MENTIONS_PER_MESSAGE = 50

# "@" not glued to what comes before (so alice@example.org is an address, not a mention),
# then a username's characters; what follows must not be one of them either.
_MENTION = re.compile(r"(?<![\w@.+\-])@([A-Za-z0-9_.\-]+)")
# Code is quoted text: a fenced block (``` or ~~~), then an inline span of backticks.
_FENCED_CODE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}\1[ \t]*$|\Z)", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)


def mentioned_names(body: str) -> list[str]:
    """The usernames (lower case, in order of first use) that ``body`` names as ``@name``
    outside code, at most ``MAX_MENTIONS_PER_MESSAGE``."""
    # The common case: a message without "@" costs one scan of its characters.
    if "@" not in body:
        return []
    if "`" in body or "~~~" in body:
        body = _CODE_SPAN.sub(" ", _FENCED_CODE.sub(" ", body))
    names: dict[str, None] = {}
    for match in _MENTION.finditer(body):
        # A sentence may end right after a name ("thanks @bob."): dots and hyphens at the
        # end belong to the sentence, as in the browser.
        name = match.group(1).rstrip(".-").lower()
        if MIN_USERNAME_LENGTH <= len(name) <= MAX_USERNAME_LENGTH:
            names.setdefault(name)
            if len(names) == MAX_MENTIONS_PER_MESSAGE:
                break
    return list(names)
