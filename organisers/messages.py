"""The console's messages to a session's attendees: compose, preview one recipient's email,
then queue one outbox row per recipient. Views and the form's checks; the queueing is
notifications.announcements'.

The preview carries the composed values to the send step in hidden fields, not a signed token
or a stored draft: sending checks every value again (time has passed, people have signed up or
cancelled), and the organiser who posts them could as well have typed them in the form."""

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from extensions import db
from notifications import announcements, mail
from notifications.announcements import Draft
from notifications.models import Audience, Message, MessageKind
from notifications.text import SUBJECT_MAX, TEXT_MAX, has_line_break, normalise
from organisers import auth
from organisers.clock import console_time
from registration import times
from registration.lookup import event_or_404
from registration.models import Event, Language
from registration.text import first_control
from settings import CONTENT_SECURITY_POLICY

bp = Blueprint("organiser_messages", __name__, url_prefix="/admin")

FIELDS = ("audience", "subject_en", "text_en", "subject_ja", "text_ja", "when", "send_at",
          "draft_key")
_DRAFT_KEY = re.compile(r"[0-9a-f]{32}")
# The controls a message's text may hold: its line breaks and tabs.
_TEXT_CONTROLS = "\n\r\t"


@dataclass
class Composed:
    """The form's values as posted, the draft they make, and what is wrong with them."""

    values: dict[str, str]
    draft: Draft | None = None
    errors: dict[str, str] = field(default_factory=dict)
    # A problem with the whole message rather than one field, and its status.
    error: str | None = None
    status: int = 422


@bp.context_processor
def _helpers():
    return {"audience_labels": _audience_labels()}


def _audience_labels() -> dict[str, str]:
    return {Audience.SEATS: _("People with a seat"),
            Audience.WAITING: _("The waiting list"),
            Audience.BOTH: _("Both: people with a seat and the waiting list")}


def _subject_error(subject: str, required: bool) -> str | None:
    if not subject:
        return _("Write a subject.") if required else None
    if has_line_break(subject):
        # A line break in a header would start a header of the reader's choosing.
        return _("The subject must be one line, without line breaks.")
    if first_control(subject) is not None:
        return _("The subject holds a control character; please type it again.")
    if len(subject) > SUBJECT_MAX:
        return _("The subject may have at most %(max)d characters; it has %(count)d.",
                 max=SUBJECT_MAX, count=len(subject))
    return None


def _text_error(text: str, required: bool) -> str | None:
    if not text.strip():
        return _("Write the message.") if required else None
    if first_control(text, allowed=_TEXT_CONTROLS) is not None:
        return _("The message holds a control character; please type it again.")
    if len(text) > TEXT_MAX:
        return _("The message may have at most %(max)d characters; it has %(count)d.",
                 max=TEXT_MAX, count=len(text))
    return None


def _send_at(text: str, zone_name: str) -> datetime:
    """A datetime-local value, in the organiser's zone, as UTC; ValueError with words for a
    time that is not one, or that the zone skips or repeats (never guessed)."""
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(_("Choose a date and time, like 2026-07-01T14:00.")) from None
    if wall.tzinfo is not None:
        raise ValueError(_("Choose a date and time, like 2026-07-01T14:00."))
    tzinfo = times.zone(zone_name)
    earlier, later = wall.replace(tzinfo=tzinfo, fold=0), wall.replace(tzinfo=tzinfo, fold=1)
    if earlier.utcoffset() != later.utcoffset():
        raise ValueError(_("That time happens twice or not at all in %(zone)s (the clocks "
                           "change that night); choose another.", zone=zone_name))
    return earlier.astimezone(UTC)


def compose(form, event: Event, now: datetime) -> Composed:
    """The posted form checked: a draft, or the problems by field."""
    values = {name: (form.get(name) or "") for name in FIELDS}
    for name in ("text_en", "text_ja"):
        values[name] = normalise(values[name])
    for name in ("subject_en", "subject_ja"):
        values[name] = values[name].strip(" \t")
    if not _DRAFT_KEY.fullmatch(values["draft_key"]):
        # A new draft (or a form without its preview): "Send" from its preview carries this.
        values["draft_key"] = secrets.token_hex(16)
    composed = Composed(values)
    errors = composed.errors
    if values["audience"] not in tuple(Audience):
        errors["audience"] = _("Choose who gets the message.")
    for language, required in ((Language.EN, True), (Language.JA, False)):
        subject, text = values[f"subject_{language}"], values[f"text_{language}"]
        if problem := _subject_error(subject, required):
            errors[f"subject_{language}"] = problem
        if problem := _text_error(text, required):
            errors[f"text_{language}"] = problem
    if bool(values["subject_ja"]) != bool(values["text_ja"]) and not (
            {"subject_ja", "text_ja"} & errors.keys()):
        missing = "text_ja" if values["subject_ja"] else "subject_ja"
        errors[missing] = _("Write both the Japanese subject and message, or neither.")
    due_at = None
    latest = announcements.latest_due(event)
    if values["when"] == "later":
        try:
            due_at = _send_at(values["send_at"], g.organiser.timezone)
        except ValueError as exc:
            errors["send_at"] = str(exc)
        else:
            if due_at <= now:
                errors["send_at"] = _("Choose a time in the future.")
            elif due_at >= latest:
                errors["send_at"] = _("Choose a time before %(latest)s, a week at most after "
                                      "the session ends.", latest=console_time(latest))
    elif values["when"] != "now":
        errors["when"] = _("Choose when to send it: at once or at a time you choose.")
    if event.is_cancelled:
        composed.error, composed.status = _("The session is cancelled: its registrants were "
                                            "told, and nobody is left to write to."), 409
    elif now >= latest:
        composed.error, composed.status = _("The session ended more than a week ago: its "
                                            "registrants are no longer written to."), 409
    if not errors and composed.error is None:
        composed.draft = Draft(Audience(values["audience"]), values["subject_en"],
                               values["text_en"], values["subject_ja"], values["text_ja"],
                               due_at, values["draft_key"])
    return composed


def _render_compose(event: Event, composed: Composed | None = None, status: int = 200):
    composed = composed or Composed({name: "" for name in FIELDS} | {"when": "now"})
    # A changed draft is a new one: its next preview gets a key of its own.
    composed.values["draft_key"] = ""
    return render_template("organisers/message_new.html", event=event, c=composed,
                           zone_name=g.organiser.timezone,
                           latest=announcements.latest_due(event)), status


@bp.get("/events/<slug>/messages/new")
@auth.login_required
def new_message(slug):
    """The form to write a message to the session's seat holders, waiting list or both."""
    return _render_compose(event_or_404(slug))


@bp.post("/events/<slug>/messages/new")
@auth.login_required
def change_message(slug):
    """The form again, filled with what was composed (the preview's "Change" button)."""
    event = event_or_404(slug)
    composed = compose(request.form, event, times.now())
    return _render_compose(event, Composed(composed.values))


def _masked(words: str, registration) -> str:
    # The organisers see the email as it goes, but not the recipient's personal links: each
    # would let its holder act as that person.
    base = current_app.config["BASE_URL"]
    for url in (mail.manage_url(registration, base), mail.me_url(registration, base)):
        if url:
            words = words.replace(url, url.rpartition("/")[0] + "/" + _("(their own link)"))
    return words


# The preview's heading over each language's sample.
SAMPLE_HEADINGS = {Language.EN: _l("In English"), Language.JA: _l("In Japanese")}


@dataclass(frozen=True)
class Sample:
    """One real recipient's email as the preview shows it."""

    language: str
    heading: str
    name: str
    subject: str
    text: str
    html: str


def _samples(event: Event, draft: Draft, groups, now: datetime) -> list[Sample]:
    announcement = draft.announcement(event, now)
    samples = []
    for language, registrations in groups.items():
        if not registrations:
            continue
        registration = registrations[0]
        # A message never stored: the email is rendered exactly as the dispatcher will.
        message = Message(registration=registration, event=event,
                          kind=MessageKind.ANNOUNCEMENT, detail={})
        subject, text, html = mail.render(message, current_app.config, now, announcement)
        samples.append(Sample(language, str(SAMPLE_HEADINGS[language]),
                              mail.display_name(registration.name), subject,
                              _masked(text, registration), _masked(html, registration)))
    return samples


class _StyleAttributes(HTMLParser):
    """Every style attribute's value in an HTML text, as a browser reads it."""

    def __init__(self):
        super().__init__()
        self.values: set[str] = set()

    def handle_starttag(self, tag, attrs):
        """Collect the tag's style attribute."""
        self.values.update(value for name, value in attrs if name == "style" and value)


def preview_policy(policy: str, samples: list[Sample]) -> str:
    """The page's Content-Security-Policy, letting the previewed emails' own style attributes
    apply (each by its hash) and nothing else: the sandboxed frame that shows an email takes
    the page's policy, and an email's styles are all inline, as mail clients need them."""
    parser = _StyleAttributes()
    for sample in samples:
        parser.feed(sample.html)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()}'"
        for value in sorted(parser.values))
    directives = [d.strip() for d in policy.split(";")]
    return "; ".join(f"{d} 'unsafe-hashes' {hashes}" if d.startswith("style-src ") and hashes
                     else d for d in directives)


def counts_line(recipients: int, english: int, japanese: int, skipped: int) -> str:
    """"N recipients: A will get it in English, B in Japanese; C skipped (…)"."""
    line = ngettext("%(num)d recipient", "%(num)d recipients", recipients)
    line += _(": %(english)d will get it in English, %(japanese)d in Japanese",
              english=english, japanese=japanese)
    if skipped:
        line += "; " + ngettext("%(num)d skipped (undeliverable address)",
                                "%(num)d skipped (undeliverable addresses)", skipped)
    return line + "."


@bp.post("/events/<slug>/messages/preview")
@auth.login_required
def preview_message(slug):
    """Check what was composed and show one real recipient's email in each language, with
    how many will get it; nothing is queued."""
    event = event_or_404(slug)
    now = times.now()
    composed = compose(request.form, event, now)
    if composed.draft is None:
        return _render_compose(event, composed, composed.status)
    found = announcements.reach(event, composed.draft.audience)
    if not found.recipients:
        composed.error = _("Nobody in this audience can get the message.")
        return _render_compose(event, composed, 422)
    groups = found.by_language(composed.draft.announcement(event, now))
    samples = _samples(event, composed.draft, groups, now)
    response = make_response(render_template(
        "organisers/message_preview.html", event=event, c=composed, samples=samples,
        counts=counts_line(len(found.recipients), len(groups[Language.EN]),
                           len(groups[Language.JA]), len(found.undeliverable)),
        zone_name=g.organiser.timezone))
    response.headers["Content-Security-Policy"] = preview_policy(CONTENT_SECURITY_POLICY, samples)
    return response


@bp.post("/events/<slug>/messages")
@auth.login_required
def send_message(slug):
    """Queue the message for every recipient in one transaction, as previewed (checked
    again), and go back to the event's emails."""
    event = event_or_404(slug)
    now = times.now()
    composed = compose(request.form, event, now)
    if composed.draft is None:
        return _render_compose(event, composed, composed.status)
    try:
        announcement, found = announcements.queue(event, composed.draft, now)
    except announcements.NobodyToTell:
        composed.error = _("Nobody in this audience can get the message.")
        return _render_compose(event, composed, 422)
    except announcements.AlreadyQueued:
        flash(_("This message was already queued; it was not queued again."))
        return redirect(url_for("organiser_events.event_page", slug=event.slug) + "#messages",
                        303)
    auth.audit("message queued", event.slug,
               {"audience": announcement.audience, "recipients": len(found.recipients),
                "skipped": len(found.undeliverable),
                "due_at": announcement.due_at.isoformat()})
    db.session.commit()
    if composed.draft.due_at is None:
        flash(ngettext("The message is on its way to %(num)d person.",
                       "The message is on its way to %(num)d people.", len(found.recipients)))
    else:
        flash(ngettext("The message will go to %(num)d person at %(when)s.",
                       "The message will go to %(num)d people at %(when)s.",
                       len(found.recipients), when=console_time(announcement.due_at)))
    return redirect(url_for("organiser_events.event_page", slug=event.slug) + "#messages", 303)
