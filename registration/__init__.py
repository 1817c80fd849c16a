"""The programme and the sign-ups."""

from registration.views import bp

__all__ = ["bp"]
