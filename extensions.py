"""The Flask extensions, created once here and bound to each app in ``create_app``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from flask import current_app
from flask_limiter import Limiter
from flask_session import Session
from flask_wtf.csrf import CSRFProtect

from socket_context import ChatSocketIO

F = TypeVar("F", bound=Callable[..., Any])

socketio = ChatSocketIO()
server_session = Session()
csrf = CSRFProtect()


def limit(limit_value: Callable[[], str], **options: Any) -> Callable[[F], F]:
    """Flask-Limiter's ``limit`` for a blueprint's view, counted by the limiter of the app
    that serves the request (``app.extensions["rate_limiter"]``).

    Each app has a limiter of its own, built from its settings: Flask-Limiter keeps the
    storage and key prefix of the first app a shared limiter was bound to.
    """

    def decorate(view: F) -> F:
        bound: WeakKeyDictionary[Limiter, Callable[..., Any]] = WeakKeyDictionary()
        binding = threading.Lock()

        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            limiter = current_app.extensions["rate_limiter"]
            checked = bound.get(limiter)
            if checked is None:
                with binding:
                    checked = bound.get(limiter) or limiter.limit(limit_value, **options)(view)
                    bound[limiter] = checked
            return checked(*args, **kwargs)

        return limited  # type: ignore[return-value]

    return decorate
