"""The webinar platform's attendee report: reading it (any of the common layouts) and
recording who attended. A service: flushes, never commits."""

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import gettext as _

from extensions import db
from organisers.uploads import binary_kind
from registration.addresses import email_key
from registration.export import FORMULA_STARTS
from registration.models import Event, Registration, RegistrationStatus

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
        raise ReportRejected(_("The file is empty. Upload the attendee report exported from "
                               "the webinar platform, as CSV."), 400)
    if kind := binary_kind(data):
        raise ReportRejected(_(
            "This file is %(kind)s, not a CSV. Export the attendee report as CSV (or open it "
            "in Excel and save it as 'CSV UTF-8') and upload that.", kind=kind), 415)
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")  # Microsoft Teams writes its reports so
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReportRejected(_(
            "The file is not UTF-8 text (perhaps Shift_JIS or Windows-1252). Export the report "
            "again as CSV in UTF-8, or open it in Excel and save it as 'CSV UTF-8'."), 415
        ) from None
    if "\0" in text:
        raise ReportRejected(_("This file is not a CSV (it holds binary data). Upload the "
                               "attendee report exported as CSV."), 415)
    return text


def _find_header(lines: list[str]) -> tuple[int, str]:
    """The line of the first header naming an email column, and the delimiter it uses."""
    for number, line in enumerate(lines[:MAX_PREAMBLE_LINES]):
        for delimiter in DELIMITERS:
            cells = next(csv.reader([line], delimiter=delimiter), [])
            if _column(cells, EMAIL_HEADERS) is not None:
                return number, delimiter
    first = next((line.strip() for line in lines if line.strip()), "")
    if first:
        raise ReportRejected(_(
            "No email column found. The report needs a header row naming it, such as Email, "
            "E-mail, Email address, Attendee email or メールアドレス; its first row reads: "
            "%(first)s.", first=first[:120]))
    raise ReportRejected(_(
        "No email column found. The report needs a header row naming it, such as Email, "
        "E-mail, Email address, Attendee email or メールアドレス."))


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
            report.addresses.add(email_key(address))
    except csv.Error as exc:
        raise ReportRejected(_("The file is not a readable CSV (%(reason)s).",
                               reason=exc)) from None
    if not report.addresses:
        raise ReportRejected(_("The report has an email column but no attendee addresses in "
                               "it: is it the right file?"))
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
        elif row.status == RegistrationStatus.CONFIRMED:
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

