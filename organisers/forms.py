"""Forms of the organiser console.

The event form only carries text: its cells are checked by the programme importer's own rules
(`registration.programme.check_event`), so the console and a CSV file accept the same events.
"""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import ValidationError

from registration.forms import SignupForm
from registration.models import EventKind, EventStatus, Language, Pillar
from registration.text import clean_text, first_control

# The organiser's note in a cancellation email: a short paragraph.
MAX_NOTE = 500

# The programme's columns by the words people read, for the event form and the upload's
# preview alike; the file itself keeps the column names.
COLUMN_LABELS = {
    "slug": _l("Slug"), "title": _l("Title"), "kind": _l("Kind"), "pillar": _l("Pillar"),
    "starts_at": _l("Start"), "ends_at": _l("End"), "timezone": _l("Time zone"),
    "capacity": _l("Capacity"), "language": _l("Language"), "join_url": _l("Join link"),
    "location": _l("Location"), "description": _l("Description"), "status": _l("Status"),
    "recording_url": _l("Recording link"),
}

SLUG_LABEL = _l("%(label)s (the address: /events/…)", label=COLUMN_LABELS["slug"])


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

    slug = StringField(SLUG_LABEL)
    title = StringField(COLUMN_LABELS["title"])
    kind = StringField(COLUMN_LABELS["kind"])
    pillar = StringField(COLUMN_LABELS["pillar"])
    starts_at = StringField(_l("%(label)s (in the time zone below)",
                               label=COLUMN_LABELS["starts_at"]))
    ends_at = StringField(_l("%(label)s (in the time zone below)",
                             label=COLUMN_LABELS["ends_at"]))
    timezone = StringField(_l("%(label)s of these times", label=COLUMN_LABELS["timezone"]))
    capacity = StringField(_l("%(label)s (seats; blank for no limit)",
                              label=COLUMN_LABELS["capacity"]))
    language = StringField(COLUMN_LABELS["language"])
    join_url = StringField(COLUMN_LABELS["join_url"])
    location = StringField(COLUMN_LABELS["location"])
    description = TextAreaField(COLUMN_LABELS["description"])
    status = StringField(COLUMN_LABELS["status"])
    recording_url = StringField(COLUMN_LABELS["recording_url"])
    keep_attendees = BooleanField(_l("Keep the existing attendees (nobody loses a seat; new "
                                     "sign-ups join the waiting list)"))
    confirm_cancel = BooleanField(_l("Yes, cancel this session and notify its registrants"))

    def cells(self, columns) -> dict[str, str]:
        """The submitted text of each programme column, as a CSV cell would hold it."""
        return {name: self[name].data or "" for name in columns}


class DuplicateForm(FlaskForm):
    """The slug of a copy of an event (checked as the new-event form's slug is)."""

    slug = StringField(SLUG_LABEL)


class AttendeeForm(SignupForm):
    """The public sign-up form's fields and checks, for an organiser adding someone by hand:
    the consent is the organiser's word that they have the person's."""

    consent = BooleanField(_l("I confirm that this person agreed to the privacy notice and to "
                              "being registered"))

    def validate_consent(self, field):
        if not field.data:
            raise ValidationError(_l("Confirm that you have this person's consent to register "
                                     "them"))


class CancelForm(FlaskForm):
    """Cancelling one registration from the console, with an optional note for the person."""

    reason = TextAreaField(_l("Note to the attendee (optional, quoted in their email)"))

    def validate_reason(self, field):
        # One paragraph of plain text: line breaks become spaces, other controls are refused.
        value = " ".join(clean_text(field.data).split())
        if first_control(value) is not None:
            raise ValidationError(_l("The note must not contain control characters."))
        if len(value) > MAX_NOTE:
            raise ValidationError(_l("The note must be %(max)d characters or fewer (it has "
                                     "%(count)d).", max=MAX_NOTE, count=len(value)))
        field.data = value


class PromoteForm(FlaskForm):
    """Moving someone from the waiting list to a seat, ahead of the queue."""

    over_capacity = BooleanField(_l("Give a seat even though the session is full (the "
                                    "capacity is exceeded by one)"))
