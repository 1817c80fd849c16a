"""Attendee exports (CSV and XLSX) and the attendance report upload."""

import io
import re

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    g,
    render_template,
    request,
    send_file,
    stream_with_context,
)
from flask_babel import gettext as _

from extensions import db, read_only, writes_on_get
from notifications.models import Message, MessageKind, MessageStatus
from organisers import auth
from organisers.attendance import (
    MAX_REPORT_BYTES,
    ReportRejected,
    read_attendance_report,
    record_attendance,
)
from organisers.timeline import STATUS_LABELS
from organisers.uploads import upload_limit
from registration import times
from registration.export import attendees_csv
from registration.lookup import event_or_404
from registration.models import Event, Registration, RegistrationStatus

bp = Blueprint("organiser_exports", __name__, url_prefix="/admin")

SHOWN_UNREGISTERED = 10

# -- exports ------------------------------------------------------------------------------------

def _status_filter() -> str | None:
    """The ?status= of an export: one registration status, or None for everyone."""
    status = request.args.get("status", "").strip()
    if not status:
        return None
    if status not in tuple(RegistrationStatus):
        abort(400, description=_(
            "There is no registration status %(status)s. Use status=confirmed, "
            "status=waitlisted or status=cancelled, or leave it out to export everyone.",
            status=repr(status[:40])))
    return status


def _filename(event: Event | None, status: str | None, extension: str) -> str:
    """attendees-<slug>[-<status>]-<the organiser's date>.<extension>"""
    today = times.now().astimezone(times.zone(g.organiser.timezone))
    scope = re.sub(r"[^A-Za-z0-9_-]+", "-", event.slug) if event is not None else "all"
    parts = ["attendees", scope, status, today.date().isoformat()]
    return "-".join(part for part in parts if part) + "." + extension


def _audit_export(event: Event | None, file_format: str, status: str | None) -> None:
    # Committed before any byte is sent: once a stream has begun, nothing can undo it.
    auth.audit("export", event.slug if event is not None else "all events",
               {"format": file_format, "status": status})
    db.session.commit()


def _csv_download(event: Event | None) -> Response:
    status = _status_filter()
    filename = _filename(event, status, "csv")
    chunks = attendees_csv(event, status)
    _audit_export(event, "csv", status)
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response


def _xlsx_download(event: Event | None) -> Response:
    # openpyxl is imported when a workbook is asked for, not by every process that builds the
    # app (a `flask dispatch` has no use for it).
    from registration.workbook import XLSX_MIMETYPE, attendees_xlsx

    status = _status_filter()
    filename = _filename(event, status, "xlsx")
    # A workbook is only readable once complete: built into a temporary file, then sent.
    # The build only reads, in a transaction of its own (no SQLite write lock while it runs).
    db.session.commit()
    with read_only():  # the event itself is read again inside, in the reading transaction
        file = attendees_xlsx(event, status)
        db.session.rollback()  # the audit below writes, in a transaction that locks first
    try:
        size = file.seek(0, io.SEEK_END)
        file.seek(0)
        _audit_export(event, "xlsx", status)
    except BaseException:
        file.close()
        raise
    response = send_file(file, mimetype=XLSX_MIMETYPE, as_attachment=True,
                         download_name=filename, conditional=False,
                         etag=False)
    response.content_length = size
    return response


@bp.get("/events/<slug>/attendees.csv")
@writes_on_get  # the audit entry, written before the file is sent
@auth.login_required
def event_attendees_csv(slug):
    """The event's registrations as CSV for Excel (?status= to choose one status)."""
    return _csv_download(event_or_404(slug))


@bp.get("/attendees.csv")
@writes_on_get  # the audit entry, written before the file is sent
@auth.login_required
def all_attendees_csv():
    """Every event's registrations as CSV for Excel (?status= to choose one status)."""
    return _csv_download(None)


@bp.get("/events/<slug>/attendees.xlsx")
@writes_on_get  # the audit entry, written before the file is sent
@auth.login_required
def event_attendees_xlsx(slug):
    """The event's registrations as an Excel workbook (?status= to choose one status)."""
    return _xlsx_download(event_or_404(slug))


@bp.get("/attendees.xlsx")
@writes_on_get  # the audit entry, written before the file is sent
@auth.login_required
def all_attendees_xlsx():
    """Every event's registrations as an Excel workbook (?status= to choose one status)."""
    return _xlsx_download(None)


# -- the attendance report ----------------------------------------------------------------------

def _attendance_counts(event: Event) -> dict:
    """Confirmed registrations by what the last report said, and follow-ups already sent."""
    counts = dict.fromkeys((True, False, None), 0)
    for attended, count in db.session.execute(
        sa.select(Registration.attended, sa.func.count())
        .where(Registration.event_id == event.id,
               Registration.status == RegistrationStatus.CONFIRMED)
        .group_by(Registration.attended)
    ):
        counts[attended] = count
    follow_ups_sent = db.session.scalar(
        sa.select(sa.func.count()).select_from(Message)
        .where(Message.event_id == event.id, Message.kind == MessageKind.FOLLOW_UP,
               Message.status == MessageStatus.SENT)
    )
    return {"attended": counts[True], "missed": counts[False], "unknown": counts[None],
            "follow_ups_sent": follow_ups_sent}


def _attendance_page(event: Event, status: int = 200, **context):
    return render_template(
        "organisers/attendance.html", event=event, counts=_attendance_counts(event),
        max_megabytes=MAX_REPORT_BYTES // 1024 // 1024, shown=SHOWN_UNREGISTERED,
        statuses=tuple(RegistrationStatus), status_labels=STATUS_LABELS, **context,
    ), status


def _report_too_large(slug):
    return _attendance_page(
        event_or_404(slug), 413, error=_(
            "The file is larger than %(megabytes)d MB, far more than an attendee report: is "
            "it the right file?", megabytes=MAX_REPORT_BYTES // 1024 // 1024))


@bp.route("/events/<slug>/attendance", methods=["GET", "POST"])
@auth.login_required
@upload_limit(MAX_REPORT_BYTES, _report_too_large)
def attendance(slug):
    """Upload the webinar platform's attendee report to mark who attended the event."""
    event = event_or_404(slug)
    if request.method == "GET":
        return _attendance_page(event)
    upload = request.files.get("report")
    if upload is None or not upload.filename:
        return _attendance_page(event, 400, error=_("Choose the attendee report (a CSV file) "
                                                    "to upload."))
    try:
        report = read_attendance_report(upload.read())
    except ReportRejected as exc:
        return _attendance_page(event, exc.status, error=str(exc))
    result = record_attendance(event, report)
    auth.audit("attendance", event.slug, {
        "file": upload.filename[:100], "addresses": result.addresses,
        "matched": result.matched, "not_registered": len(result.not_registered),
        "not_attended": result.not_attended,
    })
    db.session.commit()
    return _attendance_page(event, result=result)
