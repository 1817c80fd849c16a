"""The console's programme pages: create and edit events, retry failed messages, upload a
programme. Views only: the work is done by organisers.editing, organisers.timeline and
organisers.programme_upload."""

import hashlib
import re
from functools import lru_cache

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext

from extensions import db, writes_on_get
from notifications import planner
from organisers import auth, charts, editing, programme_preview, programme_upload
from organisers.clock import organiser_zone
from organisers.editing import EditRefused
from organisers.forms import DuplicateForm, EventForm
from organisers.programme_upload import PreviewStale, UploadRefused
from organisers.timeline import KIND_LABELS, RSVP_LABELS, STATUS_LABELS, event_overview
from organisers.uploads import upload_limit
from registration import programme, programme_export, times
from registration.forms import country_name
from registration.lookup import event_or_404
from registration.models import Event, EventKind, EventStatus, Language
from registration.programme_export import event_cells
from registration.times import is_zone, zone, zone_names

bp = Blueprint("organiser_events", __name__, url_prefix="/admin")

_DATETIME_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?")


@bp.context_processor
def _helpers():
    return {"input_type": _input_type, "kind_label": KIND_LABELS.get,
            "zone_choices": _zone_choices, "country_name": country_name, "is_zone": is_zone,
            "rsvp_labels": RSVP_LABELS, "status_label": STATUS_LABELS.get}


@lru_cache(maxsize=1)
def _zone_choices() -> tuple[str, ...]:
    return tuple(sorted(name for name in zone_names() if "/" in name or name == "UTC"))


def _input_type(value: str | None) -> str:
    """A datetime-local box for a plain wall-clock time; a text box for anything else (an
    offset, a typo), so that the browser never drops what was typed."""
    return "datetime-local" if not value or _DATETIME_LOCAL.fullmatch(value) else "text"


def _with_errors(form: EventForm, refused: EditRefused) -> EventForm:
    for name, messages in refused.errors.items():
        form[name].errors = messages
    return form


def _render_event(event: Event, form: EventForm, status: int = 200, error: str | None = None):
    now = times.now()
    return render_template(
        "organisers/event.html", event=event, form=form, error=error, now=now,
        **event_overview(event, now, zone(organiser_zone())),
        charts=charts.event_charts(event, now, zone(organiser_zone())),
    ), status


def _render_new(form: EventForm, status: int = 200, error: str | None = None):
    return render_template("organisers/event_new.html", form=form, error=error), status


@bp.route("/events/new", methods=["GET", "POST"])
@auth.login_required
def new_event():
    """A form for a new event; a valid one is created and opens its own page."""
    if request.method == "GET":
        form = EventForm(formdata=None, data={"timezone": organiser_zone(),
                                              "kind": EventKind.WEBINAR,
                                              "language": Language.EN,
                                              "status": EventStatus.SCHEDULED})
        return _render_new(form)
    form = EventForm()
    try:
        event, values = editing.create_event(form.cells(programme.COLUMNS), times.now())
    except EditRefused as refused:
        return _render_new(_with_errors(form, refused), refused.status, refused.error)
    auth.audit("event created", event.slug, {"fields": sorted(values)})
    db.session.commit()
    flash(_("Event %(slug)s created.", slug=event.slug))
    return redirect(url_for(".event_page", slug=event.slug), 303)


@bp.get("/events/<slug>")
@auth.login_required
def event_page(slug):
    """One event: its attendees and waiting list, its messages, and the form to edit it."""
    event = event_or_404(slug)
    return _render_event(event, EventForm(formdata=None, data=event_cells(event)))


@bp.post("/events/<slug>")
@auth.login_required
def save_event(slug):
    """Change an event through the same service as the importer, so people are told alike."""
    event = event_or_404(slug, lock=True)
    form = EventForm()
    try:
        change = editing.change_event(
            event, form.cells(programme.COLUMNS), times.now(),
            keep_attendees=form.keep_attendees.data, confirm_cancel=form.confirm_cancel.data)
    except EditRefused as refused:
        return _render_event(event, _with_errors(form, refused), refused.status, refused.error)
    if not change.changed:
        flash(_("Nothing was changed: the form holds what is already stored."))
        return redirect(url_for(".event_page", slug=event.slug), 303)
    cancelled = "status" in change.changed and event.is_cancelled
    auth.audit("event cancelled" if cancelled else "event changed", event.slug,
               {"fields": change.changed, "notified": change.notified,
                "promoted": change.promoted})
    db.session.commit()
    flash(editing.change_summary(change, cancelled))
    return redirect(url_for(".event_page", slug=event.slug), 303)


@bp.post("/events/<slug>/retry")
@auth.login_required
def retry_failed(slug):
    """Send the event's failed messages again, those still inside their window."""
    event = event_or_404(slug)
    retried, too_late = planner.retry_failed(event.id, times.now())
    late_text = editing.retry_summary(too_late)
    if not retried:
        error = (_("Nothing to retry: there are no failed messages.") if not too_late
                 else _("Nothing was retried:") + late_text)
        return _render_event(event, EventForm(formdata=None, data=event_cells(event)), 409,
                             error=error)
    auth.audit("retry", event.slug, {"messages": retried, "too_late": too_late})
    db.session.commit()
    flash(ngettext("%(num)d failed message will be sent again shortly.",
                   "%(num)d failed messages will be sent again shortly.", retried) + late_text)
    return redirect(url_for(".event_page", slug=event.slug) + "#messages", 303)


def _render_duplicate(source: Event, form: DuplicateForm, status: int = 200,
                      error: str | None = None):
    return render_template("organisers/event_duplicate.html", source=source, form=form,
                           error=error), status


@bp.route("/events/<slug>/duplicate", methods=["GET", "POST"])
@auth.login_required
def duplicate_event(slug):
    """A copy of the event under a slug the organiser chooses; it opens its own page."""
    source = event_or_404(slug)
    if request.method == "GET":
        return _render_duplicate(source, DuplicateForm(formdata=None,
                                                       data={"slug": f"{source.slug}-copy"}))
    form = DuplicateForm()
    try:
        event = editing.duplicate_event(source, form.slug.data or "", times.now())
    except EditRefused as refused:
        form.slug.errors = refused.errors.get("slug", [])
        # Only the slug is asked here; the source's other fields were checked when stored.
        others = [message for name, messages in refused.errors.items() if name != "slug"
                  for message in messages]
        return _render_duplicate(source, form, refused.status,
                                 "; ".join(others) or refused.error)
    auth.audit("event duplicated", event.slug, {"from": source.slug})
    db.session.commit()
    flash(_("Event %(slug)s created as a copy of %(source)s.", slug=event.slug,
            source=source.slug))
    return redirect(url_for(".event_page", slug=event.slug), 303)


@bp.get("/programme.csv")
@writes_on_get  # the audit entry, written before the file is sent
@auth.login_required
def download_programme():
    """The whole programme in the upload's own format, to edit and upload again."""
    rows = programme_export.programme_rows()
    auth.audit("programme downloaded", "all events", {"rows": len(rows)})
    db.session.commit()
    today = times.now().astimezone(zone(organiser_zone())).date().isoformat()
    response = Response(programme_export.programme_csv(rows), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment",
                         filename=f"programme-{today}.csv")
    return response


# --- programme upload: preview, then apply ---------------------------------------------------


def _render_upload(status: int = 200, *, error: str | None = None, problems=(), filename="",
                   keep_seats=False):
    return render_template("organisers/upload.html", error=error, problems=problems,
                           filename=filename, keep_seats=keep_seats), status


def _render_preview(filename, plans, status=200, notice=None, data=b"", keep_seats=False):
    by_action = {action: [p for p in plans if p.action == action]
                 for action in ("create", "reschedule", "cancel", "change", "unchanged")}
    return render_template(
        "organisers/upload_preview.html", filename=filename, plans=by_action,
        token=programme_upload.sign(filename, data, plans, keep_seats),
        told=sum(p.told for p in plans), promoted=sum(p.promoted for p in plans),
        follow_ups=sum(p.follow_ups for p in plans), notice=notice, keep_seats=keep_seats,
        field_changes=programme_preview.field_changes, who_is_told=programme_preview.who_is_told,
    ), status


@bp.get("/programme")
@auth.login_required
def upload_form():
    """The form to upload a programme CSV (the importer's format) for a preview."""
    return _render_upload()


def _too_large():
    return _render_upload(413, error=programme_upload.TOO_LARGE)


@bp.post("/programme")
@auth.login_required
@upload_limit(programme_upload.UPLOAD_MAX_BYTES, _too_large)
def preview_upload():
    """Check an uploaded programme and show what applying it would do; nothing is applied."""
    upload = request.files.get("file")
    keep_seats = request.form.get("keep_seats") == "y"
    if upload is None or not upload.filename:
        return _render_upload(422, error=_("Choose the programme's CSV file to upload."))
    filename = programme_upload.shown_filename(upload.filename)
    data = upload.read(programme.MAX_FILE_BYTES + 1)
    try:
        programme_upload.check_file(filename, data)
    except UploadRefused as refused:
        return _render_upload(refused.status, filename=filename, error=refused.error)
    rows, plans, problems = programme_upload.preview(data, times.now(), keep_seats=keep_seats)
    auth.audit("programme previewed", filename,
               {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                "rows": len(rows), "problems": problems.total,
                "keep_seats": keep_seats})
    db.session.commit()
    if problems:
        return _render_upload(422, problems=problems, filename=filename, keep_seats=keep_seats)
    return _render_preview(filename, plans, data=data, keep_seats=keep_seats)


@bp.post("/programme/apply")
@auth.login_required
@upload_limit(programme_upload.APPLY_MAX_BYTES, _too_large)
def apply_upload():
    """Apply a previewed programme, checked again; changed since the preview: preview again."""
    token = request.form.get("upload", "")
    filename, keep_seats = "", False
    try:
        filename, data, promised, keep_seats = programme_upload.unsign(token)
        summary = programme_upload.apply(filename, data, promised, times.now(),
                                         keep_seats=keep_seats)
    except UploadRefused as refused:
        return _render_upload(refused.status, error=refused.error, problems=refused.problems,
                              filename=filename, keep_seats=keep_seats)
    except PreviewStale as stale:
        return _render_preview(filename, stale.plans, 409, data=data, keep_seats=keep_seats,
                               notice=_(
            "The programme changed since your preview (someone else edited it), so this file "
            "would now do something else. Nothing was changed: check the preview below and "
            "confirm again."))
    auth.audit("programme uploaded", filename,
               {"sha256": hashlib.sha256(data).hexdigest(), "created": summary.created,
                "updated": summary.updated, "unchanged": len(summary.unchanged),
                "notified": summary.notified, "promoted": summary.promoted})
    db.session.commit()
    # The summary is the importer's own words (`flask import-programme` prints them too).
    flash(_("Programme %(filename)s applied: %(summary)s.", filename=filename, summary=summary))
    return redirect(url_for("organisers.dashboard"), 303)
