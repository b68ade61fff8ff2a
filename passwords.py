"""Password hashes: made and checked off the event loop, with the same work for every login.

A login for a name nobody has still checks the password against a hash of the configured
method (made once from a random password), so a wrong name costs what a wrong password
costs and the time of the answer does not tell an attacker which names exist.
"""

from __future__ import annotations

import functools
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

import off_loop


def make_hash(password: str, method: str) -> str:
    """A salted hash of ``password`` with Werkzeug's ``method``, computed off the loop."""
    return off_loop.run(generate_password_hash, password, method=method)


def is_correct(stored_hash: str | None, password: str, method: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; None (no such user) is never correct,
    yet costs the same hash as a real check."""
    if stored_hash is None:
        off_loop.run(check_password_hash, stand_in_hash(method), password)
        return False
    return off_loop.run(check_password_hash, stored_hash, password)


@functools.cache
def stand_in_hash(method: str) -> str:
    """A hash of a random password that nobody knows, one per method (made at start, so
    that not even the first unknown name costs more than a wrong password)."""
    return off_loop.run(generate_password_hash, secrets.token_urlsafe(32), method=method)
