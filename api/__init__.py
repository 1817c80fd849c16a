"""The public JSON API (/api/v1): the programme as data and the sign-up, for the organisation's
own website and the embeddable <forum-signup>."""

from api.blueprint import bp, init_app, spec

__all__ = ["bp", "init_app", "spec"]
