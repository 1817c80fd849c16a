"""Forms of the organiser console.

The event form only carries text: its cells are checked by the programme importer's own rules
(`registration.programme.check_event`), so the console and a CSV file accept the same events.
"""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField

from registration.models import EventKind, EventStatus, Language, Pillar


class LoginForm(FlaskForm):
    """email, password, csrf_token."""

    email = EmailField(_l("Email"))
    password = PasswordField(_l("Password"))


class ProfileForm(FlaskForm):
    """The organiser's own settings: their time zone; a new password, typed twice, after the
    current one. Checked by organisers.profile."""

    timezone = StringField(_l("Your time zone"))
    current_password = PasswordField(_l("Current password"))
    new_password = PasswordField(_l("New password"))
    new_password_again = PasswordField(_l("New password again"))


class EventForm(FlaskForm):
    """Every column of a programme row, plus the confirmations a risky change needs.

    The choices are only offered here (as select boxes); the importer's checks decide.
    """

    CHOICES = {
        "kind": [(kind, kind.capitalize()) for kind in EventKind],
        "pillar": [("", _l("None"))] + [(pillar, pillar.capitalize()) for pillar in Pillar],
        "language": [(Language.EN, "English"), (Language.JA, "日本語")],
        "status": [(status, status.capitalize()) for status in EventStatus],
    }

    slug = StringField(_l("Slug (the address: /events/…)"))
    title = StringField(_l("Title"))
    kind = StringField(_l("Kind"))
    pillar = StringField(_l("Pillar"))
    starts_at = StringField(_l("Starts (in the time zone below)"))
    ends_at = StringField(_l("Ends (in the time zone below)"))
    timezone = StringField(_l("Time zone of these times"))
    capacity = StringField(_l("Capacity (seats; blank for no limit)"))
    language = StringField(_l("Language"))
    join_url = StringField(_l("Join link"))
    location = StringField(_l("Location"))
    description = TextAreaField(_l("Description"))
    status = StringField(_l("Status"))
    recording_url = StringField(_l("Recording link"))
    keep_attendees = BooleanField(_l("Keep the existing attendees (nobody loses a seat; new "
                                     "sign-ups join the waiting list)"))
    confirm_cancel = BooleanField(_l("Yes, cancel this session and notify its registrants"))

    def cells(self, columns) -> dict[str, str]:
        """The submitted text of each programme column, as a CSV cell would hold it."""
        return {name: self[name].data or "" for name in columns}
