"""Forms of the organiser console.

The event form only carries text: its cells are checked by the programme importer's own rules
(`registration.programme.check_event`), so the console and a CSV file accept the same events.
"""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField

from registration.models import EventKind, EventStatus, Language, Pillar


class LoginForm(FlaskForm):
    """email, password, csrf_token."""

    email = EmailField("Email")
    password = PasswordField("Password")


class EventForm(FlaskForm):
    """Every column of a programme row, plus the confirmations a risky change needs.

    The choices are only offered here (as select boxes); the importer's checks decide.
    """

    CHOICES = {
        "kind": [(kind, kind.capitalize()) for kind in EventKind],
        "pillar": [("", "None")] + [(pillar, pillar.capitalize()) for pillar in Pillar],
        "language": [(Language.EN, "English"), (Language.JA, "日本語")],
        "status": [(status, status.capitalize()) for status in EventStatus],
    }

    slug = StringField("Slug (the address: /events/…)")
    title = StringField("Title")
    kind = StringField("Kind")
    pillar = StringField("Pillar")
    starts_at = StringField("Starts (in the time zone below)")
    ends_at = StringField("Ends (in the time zone below)")
    timezone = StringField("Time zone of these times")
    capacity = StringField("Capacity (seats; blank for no limit)")
    language = StringField("Language")
    join_url = StringField("Join link")
    location = StringField("Location")
    description = TextAreaField("Description")
    status = StringField("Status")
    recording_url = StringField("Recording link")
    keep_attendees = BooleanField("Keep the existing attendees (nobody loses a seat; new "
                                  "sign-ups join the waiting list)")
    confirm_cancel = BooleanField("Yes, cancel this session and notify its registrants")

    def cells(self, columns) -> dict[str, str]:
        """The submitted text of each programme column, as a CSV cell would hold it."""
        return {name: self[name].data or "" for name in columns}
