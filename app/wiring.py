"""How pages declare callbacks, and how a callback turns errors into messages.

A page declares its callbacks with a :class:`Callbacks` collector instead of
``dash.callback``: Dash hands global callbacks to the first app that starts, while a
collector attaches them to every app built by :func:`fspace.app.server.create_app` (tests
build several). The decorated functions stay plain functions that tests call directly.

:func:`guarded` is the boundary between fspace and the browser: an
:class:`~fspace.errors.FspaceError` becomes a message the page shows, and any other
exception is logged on the server and shown as a one-line notice, never a traceback.
Every callback is also attached behind :func:`shielded`, so one without a message of
its own (or whose message fails) answers crafted input with "no change", never an
HTTP 500; :func:`guarded_layout` does the same for a page's layout.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from fspace.errors import FspaceError

log = logging.getLogger("fspace.app")


class Callbacks:
    """Callbacks of one page, declared at import and attached to each app.

    Example::

        callback = Callbacks()

        @callback(Output("graph", "figure"), Input("slider", "value"))
        def draw(value): ...

        callback.attach(app)
    """

    def __init__(self) -> None:
        self._server: list[tuple[tuple, dict, Callable]] = []
        self._client: list[tuple[str, tuple, dict]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Callable[[Callable], Callable]:
        def decorate(fn: Callable) -> Callable:
            self._server.append((args, kwargs, fn))
            return fn

        return decorate

    def clientside(self, code: str, *args: Any, **kwargs: Any) -> None:
        """Declare a clientside (JavaScript) callback."""
        self._client.append((code, args, kwargs))

    def attach(self, app: Any) -> None:
        """Register every declared callback with ``app``."""
        for args, kwargs, fn in self._server:
            app.callback(*args, **kwargs)(shielded(fn))
        for code, args, kwargs in self._client:
            app.clientside_callback(code, *args, **kwargs)


def internal_error_message(err: BaseException) -> str:
    """What the page says about an unexpected error (details go to the server log)."""
    return (
        f"internal error ({type(err).__name__}); the details are in the server's log. "
        f"The page keeps working: change a setting or reload."
    )


def error_text(err: BaseException) -> str:
    """What the page says about ``err``: an FspaceError's own one-line message, else a
    notice (the details are logged)."""
    if isinstance(err, FspaceError):
        return str(err)
    log.error("unexpected error", exc_info=err)
    return internal_error_message(err)


def guarded(on_error: Callable[[str], Any]) -> Callable[[Callable], Callable]:
    """Decorator: return ``on_error(message)`` instead of raising.

    ``PreventUpdate`` passes through (it is how a callback says "nothing changed").
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from dash.exceptions import PreventUpdate

            try:
                return fn(*args, **kwargs)
            except PreventUpdate:
                raise
            except FspaceError as err:
                return on_error(str(err))
            except Exception as err:  # the browser must never get a traceback
                log.exception("callback %s failed", fn.__name__)
                return on_error(internal_error_message(err))

        return wrapper

    return decorate


def shielded(fn: Callable) -> Callable:
    """``fn`` that answers any unexpected exception with "no change" (logged).

    The last line of defence for input that a browser never sends but a crafted
    request can (a list where a number belongs, a click on a point that is not there).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from dash.exceptions import PreventUpdate

        try:
            return fn(*args, **kwargs)
        except PreventUpdate:
            raise
        except Exception as err:
            level = logging.INFO if isinstance(err, FspaceError) else logging.WARNING
            log.log(level, "callback %s refused its input: %r", fn.__name__, err)
            raise PreventUpdate from None

    wrapper.__fspace_shielded__ = True
    return wrapper


def guarded_layout(layout: Callable) -> Callable:
    """A page ``layout`` that shows what went wrong in place of the page, never a
    traceback (an FspaceError as its message, anything else as a logged notice)."""
    if getattr(layout, "__fspace_shielded__", False):
        return layout

    @functools.wraps(layout)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from dash import dcc, html

        try:
            return layout(*args, **kwargs)
        except Exception as err:
            text = error_text(err)
        home = dcc.Link("all experiments", href="/", className="fs-brand")
        # the markup of components.message, which imports the pages (and so this module)
        box = html.Div(text, className="fs-message fs-error", role="alert")
        return html.Div([html.Header([home], className="fs-header"), box], className="fs-page")

    wrapper.__fspace_shielded__ = True
    return wrapper


def triggered() -> Any:
    """Id of the input that fired the running callback; None outside a callback."""
    from dash import ctx
    from dash.exceptions import MissingCallbackContextException

    try:
        return ctx.triggered_id
    except MissingCallbackContextException:
        return None
