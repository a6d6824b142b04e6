"""The dashboard's pages, one module each; they are declared in
:data:`fspace.app.navigation.PAGES` (``add_page`` is also importable from here)."""

from fspace.app.navigation import PAGES, add_page

__all__ = ["PAGES", "add_page"]
