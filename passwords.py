"""Password hashes: made and checked off the event loop, with the same work for every login.

A login for a name nobody has still checks the password against a hash of the configured
method (made once from a random password), so a wrong name costs what a wrong password
costs and the time of the answer does not tell an attacker which names exist.
"""

from __future__ import annotations

import functools
import os
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

import off_loop

# Hashes computed at once: one core fewer than the machine has, so that a crowd logging in
# together (after a restart, at the start of a class) queues for the others and the event
# loop keeps a core; with twenty at once on two cores, the loop got a tenth of one.
_hashing = off_loop.Lane(max(1, (os.cpu_count() or 2) - 1))


def make_hash(password: str, method: str) -> str:
    """A salted hash of ``password`` with Werkzeug's ``method``, computed off the loop."""
    return _hashing.run(generate_password_hash, password, method=method)


def is_correct(stored_hash: str | None, password: str, method: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; None (no such user) is never correct,
    yet costs the same hash as a real check."""
    if stored_hash is None:
        _hashing.run(check_password_hash, stand_in_hash(method), password)
        return False
    return _hashing.run(check_password_hash, stored_hash, password)


@functools.cache
def stand_in_hash(method: str) -> str:
    """A hash of a random password that nobody knows, one per method (made at start, so
    that not even the first unknown name costs more than a wrong password)."""
    return off_loop.run(generate_password_hash, secrets.token_urlsafe(32), method=method)
