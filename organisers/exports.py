"""Attendee exports (CSV and XLSX) and the attendance report upload."""

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    send_file,
    stream_with_context,
)
from werkzeug.exceptions import RequestEntityTooLarge

from extensions import csrf, db
from notifications.models import Message
from organisers import auth
from registration import times
from registration.export import (
    FORMULA_STARTS,
    XLSX_MIMETYPE,
    attendees_csv,
    attendees_xlsx,
)
from registration.models import REGISTRATION_STATUSES, Event, Registration

bp = Blueprint("organiser_exports", __name__, url_prefix="/admin")

# A platform's attendee report of a few thousand people is well under a megabyte.
MAX_REPORT_BYTES = 10 * 1024 * 1024
# Platforms put a title, the report's date and the session's details above the table.
MAX_PREAMBLE_LINES = 100
DELIMITERS = (",", ";", "\t")
# Header names of the attendee's address, compared after _header_key(): NFKC, case-folded,
# without spaces, hyphens and underscores ("E-mail Address" → "emailaddress").
EMAIL_HEADERS = frozenset({
    "email", "emailaddress", "mail", "mailaddress", "attendeeemail", "attendeeemailaddress",
    "useremail", "useremailaddress", "participantemail", "participantemailaddress",
    "registrantemail", "guestemail", "メールアドレス", "メール", "eメール", "eメールアドレス",
    "電子メール", "電子メールアドレス", "ユーザーメール", "参加者のメールアドレス",
})
# Zoom's webinar report lists registrants who never joined, with "Attended: No".
ATTENDED_HEADERS = frozenset({"attended", "出席済み", "出席", "参加済み"})
NOT_ATTENDED = frozenset({"no", "n", "false", "0", "いいえ", "absent"})
# Binary files people pick by mistake instead of the CSV, by their first bytes.
NOT_CSV = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another zipped file",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"%PDF": "a PDF",
}
SHOWN_UNREGISTERED = 10


# -- exports ------------------------------------------------------------------------------------

def _event_or_404(slug: str) -> Event:
    event = db.session.scalar(sa.select(Event).where(Event.slug == slug))
    if event is None:
        abort(404, description=f"No event has the slug {slug!r}.")
    return event


def _status_filter() -> str | None:
    """The ?status= of an export: one registration status, or None for everyone."""
    status = request.args.get("status", "").strip()
    if not status:
        return None
    if status not in REGISTRATION_STATUSES:
        abort(400, description=(
            f"There is no registration status {status[:40]!r}. Use status=confirmed, "
            "status=waitlisted or status=cancelled, or leave it out to export everyone."
        ))
    return status


def _filename(event: Event | None, status: str | None, extension: str) -> str:
    """attendees-<slug>[-<status>]-<the organiser's date>.<extension>"""
    today = current_app.config["CLOCK"]().astimezone(times.zone(g.organiser.timezone))
    scope = re.sub(r"[^A-Za-z0-9_-]+", "-", event.slug) if event is not None else "all"
    parts = ["attendees", scope, status, today.date().isoformat()]
    return "-".join(part for part in parts if part) + "." + extension


def _audit_export(event: Event | None, file_format: str, status: str | None) -> None:
    # Committed before any byte is sent: once a stream has begun, nothing can undo it.
    auth.audit("export", event.slug if event is not None else "all events",
               {"format": file_format, "status": status})
    db.session.commit()


def _no_store(response: Response) -> Response:
    # Personal data: no copy in a browser's or a proxy's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _csv_download(event: Event | None) -> Response:
    status = _status_filter()
    filename = _filename(event, status, "csv")
    chunks = attendees_csv(event, status)
    _audit_export(event, "csv", status)
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return _no_store(response)


def _xlsx_download(event: Event | None) -> Response:
    status = _status_filter()
    filename = _filename(event, status, "xlsx")
    # A workbook is only readable once complete: built into a temporary file, then sent.
    # The build only reads, in a transaction of its own (no SQLite write lock while it runs).
    db.session.commit()
    file = attendees_xlsx(event, status)
    db.session.rollback()  # the audit below writes, in a transaction that takes the lock first
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
    return _no_store(response)


@bp.get("/events/<slug>/attendees.csv")
@auth.login_required
def event_attendees_csv(slug):
    """The event's registrations as CSV for Excel (?status= to choose one status)."""
    return _csv_download(_event_or_404(slug))


@bp.get("/attendees.csv")
@auth.login_required
def all_attendees_csv():
    """Every event's registrations as CSV for Excel (?status= to choose one status)."""
    return _csv_download(None)


@bp.get("/events/<slug>/attendees.xlsx")
@auth.login_required
def event_attendees_xlsx(slug):
    """The event's registrations as an Excel workbook (?status= to choose one status)."""
    return _xlsx_download(_event_or_404(slug))


@bp.get("/attendees.xlsx")
@auth.login_required
def all_attendees_xlsx():
    """Every event's registrations as an Excel workbook (?status= to choose one status)."""
    return _xlsx_download(None)


# -- the attendance report ----------------------------------------------------------------------

class ReportRejected(ValueError):
    """The upload can't be read as an attendee report; the message says what to do."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass
class AttendanceReport:
    """What a platform's report says: who attended, and how many rows named nobody."""

    addresses: set[str] = field(default_factory=set)
    rows_without_address: int = 0


@dataclass
class AttendanceResult:
    """What an upload changed, for the organiser to check against the report."""

    addresses: int
    matched: int
    not_attended: int
    not_registered: list[str]
    rows_without_address: int


def _header_key(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).casefold()
    return re.sub(r"[\s\-_:'\"\ufeff]+", "", text)


def _column(cells: list[str], names: frozenset[str]) -> int | None:
    return next((i for i, cell in enumerate(cells) if _header_key(cell) in names), None)


def _decode(data: bytes) -> str:
    if not data.strip():
        raise ReportRejected("The file is empty. Upload the attendee report exported from the "
                             "webinar platform, as CSV.", 400)
    for signature, kind in NOT_CSV.items():
        if data.startswith(signature):
            raise ReportRejected(
                f"This file is {kind}, not a CSV. Export the attendee report as CSV (or open it "
                "in Excel and save it as 'CSV UTF-8') and upload that.", 415)
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")  # Microsoft Teams writes its reports so
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReportRejected(
            "The file is not UTF-8 text (perhaps Shift_JIS or Windows-1252). Export the report "
            "again as CSV in UTF-8, or open it in Excel and save it as 'CSV UTF-8'.", 415
        ) from None
    if "\0" in text:
        raise ReportRejected("This file is not a CSV (it holds binary data). Upload the "
                             "attendee report exported as CSV.", 415)
    return text


def _find_header(lines: list[str]) -> tuple[int, str]:
    """The line of the first header naming an email column, and the delimiter it uses."""
    for number, line in enumerate(lines[:MAX_PREAMBLE_LINES]):
        for delimiter in DELIMITERS:
            cells = next(csv.reader([line], delimiter=delimiter), [])
            if _column(cells, EMAIL_HEADERS) is not None:
                return number, delimiter
    first = next((line.strip() for line in lines if line.strip()), "")
    raise ReportRejected(
        "No email column found. The report needs a header row naming it, such as Email, "
        "E-mail, Email address, Attendee email or メールアドレス"
        + (f"; its first row reads: {first[:120]}" if first else "") + ".")


def read_attendance_report(data: bytes) -> AttendanceReport:
    """The case-folded addresses of the people who attended, from a platform's CSV report.

    The email column is found by its header name, under any preamble the platform writes;
    `,`, `;` or tab delimited; a header repeated further down (Zoom's host, panelist and
    attendee sections) starts a new table; rows marked as not attended are left out.
    """
    lines = list(io.StringIO(_decode(data), newline=""))
    report = AttendanceReport()
    email_at = attended_at = None
    try:
        start, delimiter = _find_header(lines)
        for cells in csv.reader(lines[start:], delimiter=delimiter):
            if (column := _column(cells, EMAIL_HEADERS)) is not None:
                email_at, attended_at = column, _column(cells, ATTENDED_HEADERS)
                continue
            if not any(cell.strip() for cell in cells):
                continue
            address = cells[email_at].strip() if email_at < len(cells) else ""
            # Our own export puts a ' before a risky first character: read it back too.
            if address.startswith("'") and address[1:].startswith(FORMULA_STARTS):
                address = address[1:]
            if "@" not in address:
                report.rows_without_address += 1
                continue
            if attended_at is not None and attended_at < len(cells) and \
                    _header_key(cells[attended_at]) in NOT_ATTENDED:
                continue
            report.addresses.add(address.casefold())
    except csv.Error as exc:
        raise ReportRejected(f"The file is not a readable CSV ({exc}).") from None
    if not report.addresses:
        raise ReportRejected("The report has an email column but no attendee addresses in it: "
                             "is it the right file?")
    return report


def record_attendance(event: Event, report: AttendanceReport) -> AttendanceResult:
    """Mark who attended the event: those in the report True, other confirmed ones False, the
    rest unknown. A new report replaces the previous one. Flushes; the caller commits."""
    # Two uploads at once for one event: the second waits, then replaces the first whole.
    db.session.execute(sa.select(Event.id).where(Event.id == event.id).with_for_update())
    registrations = db.session.execute(
        sa.select(Registration.id, Registration.email_key, Registration.status,
                  Registration.attended)
        .where(Registration.event_id == event.id)
    ).all()
    changes = []
    matched = not_attended = 0
    for row in registrations:
        if row.email_key in report.addresses:
            attended, matched = True, matched + 1
        elif row.status == "confirmed":
            attended, not_attended = False, not_attended + 1
        else:
            attended = None
        if attended is not row.attended:
            changes.append({"id": row.id, "attended": attended})
    if changes:
        db.session.execute(sa.update(Registration), changes)
    db.session.flush()
    registered = {row.email_key for row in registrations}
    return AttendanceResult(
        addresses=len(report.addresses),
        matched=matched,
        not_attended=not_attended,
        not_registered=sorted(report.addresses - registered),
        rows_without_address=report.rows_without_address,
    )


def _attendance_counts(event: Event) -> dict:
    """Confirmed registrations by what the last report said, and follow-ups already sent."""
    counts = dict.fromkeys((True, False, None), 0)
    for attended, count in db.session.execute(
        sa.select(Registration.attended, sa.func.count())
        .where(Registration.event_id == event.id, Registration.status == "confirmed")
        .group_by(Registration.attended)
    ):
        counts[attended] = count
    follow_ups_sent = db.session.scalar(
        sa.select(sa.func.count()).select_from(Message)
        .where(Message.event_id == event.id, Message.kind == "follow_up",
               Message.status == "sent")
    )
    return {"attended": counts[True], "missed": counts[False], "unknown": counts[None],
            "follow_ups_sent": follow_ups_sent}


def _attendance_page(event: Event, status: int = 200, **context):
    return render_template(
        "organisers/attendance.html", event=event, counts=_attendance_counts(event),
        max_megabytes=MAX_REPORT_BYTES // 1024 // 1024, shown=SHOWN_UNREGISTERED,
        statuses=REGISTRATION_STATUSES, **context,
    ), status


@bp.route("/events/<slug>/attendance", methods=["GET", "POST"])
# CSRF is checked in the view: the global check reads the form before the view can raise the
# upload limit above the sign-up form's, and would answer every report with a 413.
@csrf.exempt
@auth.login_required
def attendance(slug):
    """Upload the webinar platform's attendee report to mark who attended the event."""
    event = _event_or_404(slug)
    if request.method == "GET":
        return _attendance_page(event)
    request.max_content_length = MAX_REPORT_BYTES
    try:
        csrf.protect()
        upload = request.files.get("report")
    except RequestEntityTooLarge:
        return _attendance_page(
            event, 413, error=f"The file is larger than {MAX_REPORT_BYTES // 1024 // 1024} MB, "
            "far more than an attendee report: is it the right file?")
    if upload is None or not upload.filename:
        return _attendance_page(event, 400, error="Choose the attendee report (a CSV file) "
                                                  "to upload.")
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
