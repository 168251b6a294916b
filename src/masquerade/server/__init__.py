"""``masquerade serve``: a local web app and REST API for swapping (see :mod:`.app`)."""

from __future__ import annotations

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str) -> object:  # FastAPI is imported only when the server is used
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
