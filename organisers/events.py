"""The console's programme pages: create and edit events, upload a programme, an event's
attendees and the timeline of its messages."""

import base64
import hashlib
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from babel.dates import format_datetime
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from extensions import csrf, db
from notifications import planner
from notifications.models import Message
from organisers import auth
from organisers.forms import EventForm
from organisers.uploads import binary_kind
from registration import programme, services
from registration.forms import countries
from registration.models import Event, Registration
from registration.times import zone, zone_names

bp = Blueprint("organiser_events", __name__, url_prefix="/admin")

# The programme file and the multipart form around it; the file itself is checked against
# programme.MAX_FILE_BYTES, so a file just over it still gets the importer's own words.
UPLOAD_MAX_BYTES = programme.MAX_FILE_BYTES + 64 * 1024
# The previewed file travels back signed, compressed and base64-encoded (4/3 of its size at
# worst), in a hidden field: no server-side state, so any host behind the balancer can apply it.
APPLY_MAX_BYTES = programme.MAX_FILE_BYTES * 4 // 3 + 64 * 1024
PREVIEW_MAX_AGE_SECONDS = 3600
# Signatures of the files people most often send instead of CSV.
TOO_LARGE = (f"The file is larger than {programme.MAX_FILE_BYTES // 1024 // 1024} MB; a "
             "programme is far smaller. Is it the right file? Nothing was changed.")
# Messages sent to one person at a time, grouped by day in the timeline; the others go out in
# batches (a reminder, an update, a follow-up), grouped by the moment they were due.
PERSONAL_KINDS = ("confirmation", "waitlisted", "promotion", "cancellation")
KIND_LABELS = {
    "confirmation": "confirmation",
    "waitlisted": "waiting-list notice",
    "promotion": "seat from the waiting list",
    "cancellation": "cancellation",
    "reminder": "reminder",
    "update": "update",
    "follow_up": "follow-up with the recording",
}
FAILED_SHOWN = 200
_DATETIME_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?")


def _now() -> datetime:
    return current_app.config["CLOCK"]()


def _event_or_404(slug: str, *, lock: bool = False) -> Event:
    event = services.find_event(slug)
    if event is None:
        abort(404, description=f"No event has the slug {slug!r}. See the list of events in "
                               "the organisers' console.")
    # Read afresh under the lock: a sign-up may have taken a seat since the session loaded it.
    return services.lock_event(event) if lock else event


@bp.context_processor
def _helpers():
    return {"at": local_time, "input_type": _input_type, "kind_label": KIND_LABELS.get,
            "zone_choices": _zone_choices, "country_name": _country_name}


def local_time(moment: datetime | None) -> str:
    """A moment in the signed-in organiser's zone, short: 'Mon 7 Jul 2025, 16:00'."""
    if moment is None:
        return ""
    return format_datetime(moment, "EEE d MMM y, HH:mm", tzinfo=zone(_organiser_zone()),
                           locale="en")


def _organiser_zone() -> str:
    organiser = g.get("organiser")
    return organiser.timezone if organiser is not None else "UTC"


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    return dict(countries())


def _country_name(code: str) -> str:
    return _country_names().get(code, code)


@lru_cache(maxsize=1)
def _zone_choices() -> tuple[str, ...]:
    return tuple(sorted(name for name in zone_names() if "/" in name or name == "UTC"))


def _input_type(value: str | None) -> str:
    """A datetime-local box for a plain wall-clock time; a text box for anything else (an
    offset, a typo), so that the browser never drops what was typed."""
    return "datetime-local" if not value or _DATETIME_LOCAL.fullmatch(value) else "text"


def _wall_clock(moment: datetime, zone_name: str) -> str:
    """The moment as the form shows it, in the event's zone; with its offset when that wall
    time happens twice (the night the clocks go back), as the checks then require."""
    tzinfo = zone(zone_name)
    local = moment.astimezone(tzinfo)
    naive = local.replace(tzinfo=None)
    spec = "minutes" if not (local.second or local.microsecond) else "auto"
    if naive.replace(tzinfo=tzinfo, fold=0).utcoffset() != naive.replace(
        tzinfo=tzinfo, fold=1
    ).utcoffset():
        return local.isoformat(timespec=spec)
    return naive.isoformat(timespec=spec)


def _form_data(event: Event) -> dict[str, str]:
    def text(value):
        return "" if value is None else str(value)

    return {
        "slug": event.slug, "title": event.title, "kind": event.kind,
        "pillar": text(event.pillar),
        "starts_at": _wall_clock(event.starts_at, event.timezone),
        "ends_at": _wall_clock(event.ends_at, event.timezone),
        "timezone": event.timezone, "capacity": text(event.capacity),
        "language": event.language, "join_url": text(event.join_url),
        "location": text(event.location), "description": event.description,
        "status": event.status, "recording_url": text(event.recording_url),
    }


# --- the dashboard -------------------------------------------------------------------------


@dataclass
class EventRow:
    """One event of the dashboard with its counts by status."""

    event: Event
    people: Counter = field(default_factory=Counter)
    messages: Counter = field(default_factory=Counter)


def _counts_by_event(model) -> dict[int, Counter]:
    counts: dict[int, Counter] = {}
    rows = db.session.execute(
        sa.select(model.event_id, model.status, sa.func.count())
        .group_by(model.event_id, model.status)
    )
    for event_id, status, count in rows:
        counts.setdefault(event_id, Counter())[status] = count
    return counts


def dashboard_rows(now: datetime) -> tuple[list[EventRow], list[EventRow]]:
    """Every event with its registrations and messages counted by status, in three queries:
    (upcoming and running, soonest first; past, latest first)."""
    events = db.session.scalars(sa.select(Event).order_by(Event.starts_at, Event.id)).all()
    people = _counts_by_event(Registration)
    messages = _counts_by_event(Message)
    rows = [EventRow(event, people.get(event.id, Counter()), messages.get(event.id, Counter()))
            for event in events]
    upcoming = [row for row in rows if not row.event.has_ended(now)]
    past = [row for row in reversed(rows) if row.event.has_ended(now)]
    return upcoming, past


# --- one event: attendees, messages, the edit form -------------------------------------------


@dataclass
class TimelineEntry:
    """Messages of one kind sent (or to be sent) together, or on one day."""

    status: str  # "sent" or "scheduled"
    kind: str
    first_at: datetime
    last_at: datetime
    count: int = 0


def _timeline(event: Event, now: datetime) -> list[TimelineEntry]:
    rows = db.session.execute(
        sa.select(Message.status, Message.kind, Message.due_at, sa.func.count(),
                  sa.func.min(Message.sent_at), sa.func.max(Message.sent_at))
        .where(Message.event_id == event.id, Message.status.in_(("sent", "pending")))
        .group_by(Message.status, Message.kind, Message.due_at)
    )
    tzinfo = zone(_organiser_zone())
    entries: dict[tuple, TimelineEntry] = {}
    for status, kind, due_at, count, first_sent, last_sent in rows:
        first, last = due_at, due_at
        if status == "sent":
            first, last = first_sent or due_at, last_sent or due_at
        when = due_at.astimezone(tzinfo).date() if kind in PERSONAL_KINDS else due_at
        key = (status, kind, when)
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = TimelineEntry(
                "sent" if status == "sent" else "scheduled", kind, first, last)
        entry.first_at, entry.last_at = min(entry.first_at, first), max(entry.last_at, last)
        entry.count += count
    return sorted(entries.values(), key=lambda e: (e.first_at, e.status != "sent", e.kind))


def _failed(event: Event) -> list[Message]:
    return db.session.scalars(
        sa.select(Message)
        .where(Message.event_id == event.id, Message.status == "failed")
        .order_by(Message.last_attempt_at, Message.id)
        .limit(FAILED_SHOWN + 1)
    ).all()


def _skipped(event: Event) -> list[tuple[str, int]]:
    rows = db.session.execute(
        sa.select(Message.skip_reason, sa.func.count())
        .where(Message.event_id == event.id, Message.status == "skipped")
        .group_by(Message.skip_reason)
        .order_by(sa.func.count().desc(), Message.skip_reason)
    )
    return [(reason or "no reason recorded", count) for reason, count in rows]


def _render_event(event: Event, form: EventForm, status: int = 200, error: str | None = None):
    now = _now()
    registrations = db.session.scalars(
        sa.select(Registration)
        .where(Registration.event_id == event.id)
        .order_by(Registration.registered_at, Registration.id)
    ).all()
    by_status = {state: [r for r in registrations if r.status == state]
                 for state in ("confirmed", "waitlisted", "cancelled")}
    failed = _failed(event)
    return render_template(
        "organisers/event.html",
        event=event,
        form=form,
        error=error,
        now=now,
        attendees=by_status["confirmed"],
        waiting=by_status["waitlisted"],
        cancelled=by_status["cancelled"],
        active_count=len(by_status["confirmed"]) + len(by_status["waitlisted"]),
        timeline=_timeline(event, now),
        failed=failed[:FAILED_SHOWN],
        more_failed=len(failed) > FAILED_SHOWN,
        retryable=sum(1 for m in failed if m.expires_at > now),
        skipped=_skipped(event),
    ), status


def _render_new(form: EventForm, status: int = 200, error: str | None = None):
    return render_template("organisers/event_new.html", form=form, error=error), status


@bp.route("/events/new", methods=["GET", "POST"])
@auth.login_required
def new_event():
    """A form for a new event; a valid one is created and opens its own page."""
    if request.method == "GET":
        form = EventForm(formdata=None, data={"timezone": _organiser_zone(),
                                              "kind": "webinar", "language": "en",
                                              "status": "scheduled"})
        return _render_new(form)
    form = EventForm()
    values, errors = _checked(form)
    if not errors and _slug_taken(values["slug"]):
        errors["slug"] = [f"An event already has the slug {values['slug']}; choose another."]
    if errors:
        return _refuse(form, errors, _render_new)
    now = _now()
    event = Event(**values, confirmed_count=0, created_at=now, updated_at=now)
    db.session.add(event)
    try:
        db.session.flush()
    except IntegrityError:
        return _render_new(*_slug_race(form))
    auth.audit("event created", event.slug, {"fields": sorted(values)})
    db.session.commit()
    flash(f"Event {event.slug} created.")
    return redirect(url_for(".event_page", slug=event.slug), 303)


@bp.get("/events/<slug>")
@auth.login_required
def event_page(slug):
    """One event: its attendees and waiting list, its messages, and the form to edit it."""
    event = _event_or_404(slug)
    return _render_event(event, EventForm(formdata=None, data=_form_data(event)))


@bp.post("/events/<slug>")
@auth.login_required
def save_event(slug):
    """Change an event through the same service as the importer, so people are told alike."""
    event = _event_or_404(slug, lock=True)
    form = EventForm()
    values, errors = _checked(form)
    now = _now()
    if not errors:
        errors = _refusals(event, values, form)
    if errors:
        return _refuse(form, errors, lambda f, s: _render_event(event, f, s))
    try:
        change = services.change_event(event, values, now,
                                       keep_seats=bool(form.keep_attendees.data))
        db.session.flush()
    except services.ChangeRefused as exc:
        db.session.rollback()
        form[exc.refusal.field].errors = [str(exc)]
        return _render_event(event, form, 409, error=f"Nothing was changed: {exc}.")
    except IntegrityError:
        form, status = _slug_race(form)
        return _render_event(event, form, status)
    if not change.changed:
        db.session.rollback()
        flash("Nothing was changed: the form holds what is already stored.")
        return redirect(url_for(".event_page", slug=event.slug), 303)
    cancelled = "status" in change.changed and event.is_cancelled
    auth.audit("event cancelled" if cancelled else "event changed", event.slug,
               {"fields": change.changed, "notified": change.notified,
                "promoted": change.promoted})
    db.session.commit()
    flash(_change_summary(change, cancelled))
    return redirect(url_for(".event_page", slug=event.slug), 303)


def _checked(form: EventForm) -> tuple[dict, dict[str, list[str]]]:
    """The form's values checked by the importer's rules, and the problems by field."""
    values, problems = programme.check_event(form.cells(programme.COLUMNS))
    errors: dict[str, list[str]] = {}
    for name, message in problems:
        errors.setdefault(name, []).append(message)
    return values, errors


def _slug_taken(slug: str, other_than: Event | None = None) -> bool:
    query = sa.select(Event.id).where(Event.slug == slug)
    if other_than is not None:
        query = query.where(Event.id != other_than.id)
    return db.session.scalar(query) is not None


def _refusals(event: Event, values: dict, form: EventForm) -> dict[str, list[str]]:
    """What the form must confirm or correct before this change may go ahead."""
    errors = {}
    if values["slug"] != event.slug and _slug_taken(values["slug"], other_than=event):
        errors["slug"] = [f"Another event has the slug {values['slug']}; choose another."]
    # The change service's own rule, asked first to show it beside the field with the box
    # that accepts it.
    seats = services.seats_refusal(event, values["capacity"],
                                   keep_seats=bool(form.keep_attendees.data))
    if seats:
        errors["capacity"] = [
            f"The {seats}. Tick “keep the existing attendees” to lower it anyway (nobody "
            "loses a seat), or choose at least that many."
        ]
    if values["status"] == "cancelled" and not event.is_cancelled and not form.confirm_cancel.data:
        errors["confirm_cancel"] = [
            "Cancelling notifies every registrant and can't be undone: tick the box to confirm. "
            "Nothing was changed."
        ]
    return errors


def _refuse(form: EventForm, errors: dict[str, list[str]], render):
    """Every problem beside its field, nothing stored."""
    db.session.rollback()
    for name, messages in errors.items():
        form[name].errors = messages
    return render(form, 409 if "confirm_cancel" in errors else 422)


def _slug_race(form: EventForm):
    db.session.rollback()
    form.slug.errors = ["Another event took this slug a moment ago; choose another."]
    return form, 409


def _change_summary(change: services.EventChange, cancelled: bool) -> str:
    text = ("Event cancelled." if cancelled
            else f"Saved: {', '.join(change.changed)} changed.")
    if change.notified:
        text += f" {_people(change.notified)} will be told by email."
    if change.promoted:
        text += f" {_people(change.promoted)} moved from the waiting list to a seat."
    return text


def _people(count: int) -> str:
    return f"{count} registrant{'' if count == 1 else 's'}"


@bp.post("/events/<slug>/retry")
@auth.login_required
def retry_failed(slug):
    """Send the event's failed messages again, those still inside their window."""
    event = _event_or_404(slug)
    retried, too_late = planner.retry_failed(event.id, _now())
    late_text = ""
    if too_late == 1:
        late_text = " 1 is past its window (it would arrive too late) and stays failed."
    elif too_late:
        late_text = (f" {too_late} are past their window (they would arrive too late) and "
                     "stay failed.")
    if not retried:
        db.session.rollback()
        error = ("Nothing to retry: there are no failed messages." if not too_late
                 else "Nothing was retried:" + late_text)
        return _render_event(event, EventForm(formdata=None, data=_form_data(event)), 409,
                             error=error)
    auth.audit("retry", event.slug, {"messages": retried, "too_late": too_late})
    db.session.commit()
    flash(f"{retried} failed message{'' if retried == 1 else 's'} will be sent again "
          f"shortly.{late_text}")
    return redirect(url_for(".event_page", slug=event.slug) + "#messages", 303)


# --- programme upload: preview, then apply ---------------------------------------------------


class _ClockSigner(TimestampSigner):
    """Signs with the app's clock, so a preview's age is measured like every other time."""

    def get_timestamp(self) -> int:
        return int(_now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="programme-upload",
                                  signer=_ClockSigner)


def _plan_digest(plans: list[programme.PlannedChange]) -> str:
    """What the preview promised, without the head counts (a sign-up meanwhile is fine)."""
    shape = [(plan.slug, plan.action, plan.fields) for plan in plans]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()


def _sign(filename: str, data: bytes, plans: list[programme.PlannedChange],
          keep_seats: bool) -> str:
    packed = base64.b64encode(zlib.compress(data, 9)).decode("ascii")
    return _serializer().dumps({"name": filename, "data": packed, "plan": _plan_digest(plans),
                                "keep_seats": keep_seats})


def _unsign(token: str) -> tuple[str, bytes, str, bool]:
    """The file a preview signed, and whether it keeps seats; BadSignature (or
    SignatureExpired) for anything else."""
    payload = _serializer().loads(token, max_age=PREVIEW_MAX_AGE_SECONDS)
    inflate = zlib.decompressobj()
    data = inflate.decompress(base64.b64decode(payload["data"]), programme.MAX_FILE_BYTES + 1)
    return payload["name"], data, payload["plan"], bool(payload.get("keep_seats"))


def _render_upload(status: int = 200, *, error: str | None = None, problems=(), filename="",
                   keep_seats=False):
    return render_template("organisers/upload.html", error=error, problems=problems,
                           filename=filename, keep_seats=keep_seats), status


def _render_preview(filename, plans, token, status=200, notice=None, keep_seats=False):
    by_action = {action: [p for p in plans if p.action == action]
                 for action in ("create", "reschedule", "cancel", "change", "unchanged")}
    return render_template(
        "organisers/upload_preview.html", filename=filename, plans=by_action, token=token,
        told=sum(p.told for p in plans), promoted=sum(p.promoted for p in plans),
        follow_ups=sum(p.follow_ups for p in plans), notice=notice, keep_seats=keep_seats,
    ), status


@bp.get("/programme")
@auth.login_required
def upload_form():
    """The form to upload a programme CSV (the importer's format) for a preview."""
    return _render_upload()


@bp.post("/programme")
@csrf.exempt  # checked below, once the larger limit for this form is in place
@auth.login_required
def preview_upload():
    """Check an uploaded programme and show what applying it would do; nothing is applied."""
    request.max_content_length = UPLOAD_MAX_BYTES
    try:
        csrf.protect()
        upload = request.files.get("file")
        keep_seats = request.form.get("keep_seats") == "y"
    except RequestEntityTooLarge:
        return _render_upload(413, error=TOO_LARGE)
    if upload is None or not upload.filename:
        return _render_upload(422, error="Choose the programme's CSV file to upload.")
    # Shown and audited: the name only (no folders), printable characters only.
    filename = "".join(ch for ch in upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
                       if ch.isprintable())[:200] or "the file"
    data = upload.read(programme.MAX_FILE_BYTES + 1)
    wrong_kind = binary_kind(data)
    if wrong_kind or not filename.lower().endswith(".csv"):
        what = wrong_kind or "not a .csv file"
        return _render_upload(415, filename=filename, error=(
            f"{filename} is {what}. In Excel, choose File › Save a Copy › "
            "“CSV UTF-8 (comma delimited)”, then upload that file. Nothing was changed."))
    now = _now()
    rows, problems = programme.parse_programme(
        data, programme.stored_events(), max_rows=current_app.config["PROGRAMME_MAX_ROWS"])
    plans = []
    if not problems:
        plans, problems = programme.preview_programme(rows, now, keep_seats=keep_seats)
    auth.audit("programme previewed", filename,
               {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                "rows": len(rows), "problems": problems.total, "keep_seats": keep_seats})
    db.session.commit()
    if problems:
        return _render_upload(422, problems=problems, filename=filename, keep_seats=keep_seats)
    return _render_preview(filename, plans, _sign(filename, data, plans, keep_seats),
                           keep_seats=keep_seats)


@bp.post("/programme/apply")
@csrf.exempt  # checked below, once the larger limit for this form is in place
@auth.login_required
def apply_upload():
    """Apply a previewed programme, checked again; changed since the preview: preview again."""
    request.max_content_length = APPLY_MAX_BYTES
    request.max_form_memory_size = APPLY_MAX_BYTES
    try:
        csrf.protect()
        token = request.form.get("upload", "")
    except RequestEntityTooLarge:
        return _render_upload(413, error=TOO_LARGE)
    try:
        filename, data, promised, keep_seats = _unsign(token)
    except SignatureExpired:
        return _render_upload(400, error=(
            f"The preview is more than {PREVIEW_MAX_AGE_SECONDS // 60} minutes old; upload "
            "the file again to see what it would do now. Nothing was changed."))
    except (BadSignature, ValueError, KeyError, TypeError, zlib.error):
        return _render_upload(400, error=(
            "This is not a preview made here; upload the file again. Nothing was changed."))
    now = _now()
    rows, problems = programme.parse_programme(
        data, programme.stored_events(), max_rows=current_app.config["PROGRAMME_MAX_ROWS"])
    plans = []
    if not problems:
        plans, problems = programme.preview_programme(rows, now, keep_seats=keep_seats)
    if problems:
        db.session.rollback()
        return _render_upload(422, problems=problems, filename=filename, keep_seats=keep_seats)
    if _plan_digest(plans) != promised:
        db.session.rollback()
        notice = ("The programme changed since your preview (someone else edited it), so this "
                  "file would now do something else. Nothing was changed: check the preview "
                  "below and confirm again.")
        return _render_preview(filename, plans, _sign(filename, data, plans, keep_seats), 409,
                               notice=notice, keep_seats=keep_seats)
    try:
        summary = programme.apply_programme(rows, now, keep_seats=keep_seats)
        auth.audit("programme uploaded", filename,
                   {"sha256": hashlib.sha256(data).hexdigest(), "created": summary.created,
                    "updated": summary.updated, "unchanged": len(summary.unchanged),
                    "notified": summary.notified, "promoted": summary.promoted})
        db.session.commit()
    except programme.ProgrammeRejected as exc:
        db.session.rollback()
        return _render_upload(422, problems=exc.problems, filename=filename,
                              keep_seats=keep_seats)
    except IntegrityError:
        db.session.rollback()
        return _render_upload(409, filename=filename, error=(
            "The programme changed while it was being applied (another upload at the same "
            "time?); nothing was changed. Upload the file again."))
    flash(f"Programme {filename} applied: {summary}.")
    return redirect(url_for("organisers.dashboard"), 303)
