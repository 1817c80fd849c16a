"""An organiser's own account settings, changed by themselves: their time zone and password.
A service: flushes, never commits."""

from dataclasses import dataclass

from flask_babel import gettext as _

from extensions import db
from organisers import auth
from organisers.clock import zone_label
from organisers.models import Organiser
from registration.forms import offered_zones


class ProfileRefused(Exception):
    """The form must be corrected first: problems by field; nothing was stored.
    `wrong_password` says the current password given was wrong (for the audit log)."""

    def __init__(self, errors: dict[str, list[str]], wrong_password: bool = False):
        super().__init__("; ".join(str(m) for ms in errors.values() for m in ms))
        self.errors = errors
        self.wrong_password = wrong_password


@dataclass
class ProfileChange:
    """What a saved profile changed: the zone (was, now) if it did, and the password."""

    zone: tuple[str, str] | None = None
    password: bool = False


def _chosen_zone(organiser: Organiser, name: str) -> str | None:
    # A zone the list offers (an old spelling is taken as the zone it names), or the one
    # already stored: `flask create-organiser --timezone` takes any IANA zone.
    if name == organiser.timezone:
        return name
    return offered_zones().get(name)


def change_profile(organiser: Organiser, zone_name: str, current: str, new: str,
                   again: str) -> ProfileChange:
    """Set the organiser's zone and, when a new password is typed, their password (the current
    one checked first); every problem by field, or nothing changed. Never commits."""
    errors: dict[str, list[str]] = {}
    zone = _chosen_zone(organiser, zone_name)
    if zone is None:
        errors["timezone"] = [_("Choose your time zone from the list.")]
    # Only a new password asks for a change: a password manager may fill in the current one
    # on every visit.
    wrong_password = False
    if new or again:
        if not current:
            errors["current_password"] = [_("Enter your current password to set a new one.")]
        elif not auth.password_matches(organiser, current):
            wrong_password = True
            errors["current_password"] = [_("This is not your current password.")]
        if len(new) < auth.MIN_PASSWORD_LENGTH:
            errors["new_password"] = [_("The new password must have at least %(count)d "
                                        "characters.", count=auth.MIN_PASSWORD_LENGTH)]
        elif new != again:
            errors["new_password_again"] = [_("The two new passwords differ: type the same "
                                              "one in both boxes.")]
    if errors:
        raise ProfileRefused(errors, wrong_password)
    change = ProfileChange()
    if zone != organiser.timezone:
        change.zone = (organiser.timezone, zone)
        organiser.timezone = zone
    if new:
        organiser.password_hash = auth.hash_password(new)
        auth.revoke_sessions(organiser)  # a new password signs out every other session
        change.password = True
    db.session.flush()
    return change


def change_summary(change: ProfileChange) -> str:
    """What a saved profile changed, in a line for the organiser."""
    if not (change.zone or change.password):
        return _("Nothing was changed: the form holds what is already stored.")
    # Whole sentences, so that a translation can order their words as its language does.
    if change.zone and change.password:
        return _("Saved: your time zone is now %(zone)s; your password is changed, and every "
                 "other device is signed out.", zone=zone_label(change.zone[1]))
    if change.zone:
        return _("Saved: your time zone is now %(zone)s.", zone=zone_label(change.zone[1]))
    return _("Saved: your password is changed, and every other device is signed out.")
