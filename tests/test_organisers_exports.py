"""The console's attendee downloads: CSV streamed by the one writer `flask export-attendees` uses,
XLSX of text cells only, both named for the event and the day, filtered by status, audited."""

import codecs
import io
import re
import zipfile
from datetime import timedelta

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from werkzeug.http import parse_options_header

from extensions import db
from organisers.models import AuditEntry
from registration import services
from registration.times import utc_iso
from registration.workbook import XLSX_MIMETYPE, xlsx_text
from tests.conftest import NOW, make_event, make_registration
from tests.test_export_attendees import (
    HOSTILE,
    applicant,
    assert_hostile_rows_safe,
    read_export,
)

# What an XLSX cell can't hold as it is: control characters, CR, and text that reads like
# Excel's own escape; and what openpyxl would otherwise make a formula or an error.
XLSX_HOSTILE = [
    "Bell\x07 and escape\x1b",
    "\x01Start of heading",
    "Vertical\x0btab and form\x0cfeed",
    "Windows line\r\nend",
    "_x0041_ typed by hand",
    "_x005F_ and _X00e9_ and _x12_",
    "#N/A",
    '=HYPERLINK("http://evil.example","click")',
    "=",
    "+1",
    "@SUM(A1)",
    "-2+3",
    "=SUM(A1:A2)",
]
# The headings of the workbook's date-time columns.
TIME_HEADINGS = ("Starts", "Registered", "Consent given", "Cancelled")


def registered(event, values):
    """Sign up one person per value, with the value as name and reversed as organisation."""
    for n, value in enumerate(values):
        services.sign_up(event, applicant(n, name=value, organisation=value[::-1],
                                          email=f"-{n}@example.org"), NOW)
    db.session.commit()


def exports_audited():
    return [(entry.action, entry.target, entry.detail) for entry in db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id))]


def attachment_name(response) -> str:
    value, options = parse_options_header(response.headers["Content-Disposition"])
    assert value == "attachment"
    return options["filename"]


def xlsx_unescaped(text: str) -> str:
    """Excel's reading of an _xHHHH_ escape, in one pass (openpyxl leaves them as they are)."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def sheet_rows(data: bytes):
    """The workbook's headings, and its rows as {heading: cell}."""
    sheet = load_workbook(io.BytesIO(data)).active
    header, *rows = sheet.iter_rows()
    headings = [cell.value for cell in header]
    return headings, [dict(zip(headings, row, strict=True)) for row in rows]


def sheet_xml(data: bytes) -> str:
    """The XML of the workbook's one sheet, as stored in the file."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        [name] = [name for name in archive.namelist() if name.startswith("xl/worksheets/")]
        return archive.read(name).decode("utf-8")


def hostile_values():
    values = list(HOSTILE)
    if db.engine.dialect.name == "sqlite":
        values.append("\0Nul first")  # PostgreSQL text can't hold NUL at all
    return values


# -- CSV ----------------------------------------------------------------------------------------

def test_event_csv_over_http_is_formula_safe_keeps_every_character_and_names_the_file(
    app, admin, runner, tmp_path
):
    values = hostile_values()
    event = make_event(title="@SUM(1+1)*cmd|' /C calc'!A0")
    registered(event, values)

    response = admin.get(f"/admin/events/{event.slug}/attendees.csv")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.mimetype_params == {"charset": "utf-8"}
    assert attachment_name(response) == "attendees-climate-finance-101-2025-06-20.csv"
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_data()
    assert data.startswith(codecs.BOM_UTF8 + b"event_slug,event_title,")
    assert_hostile_rows_safe(read_export(data), values)
    # The very bytes of `flask export-attendees`: one writer for both.
    path = tmp_path / "cli.csv"
    result = runner.invoke(args=["export-attendees", event.slug, "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert data == path.read_bytes()


def test_the_csv_is_streamed_and_the_export_is_audited_before_the_first_byte(app, admin):
    event = make_event()
    registered(event, ["Aiko Tanaka", "田中 愛子"])

    response = admin.get(f"/admin/events/{event.slug}/attendees.csv?status=confirmed")

    assert response.is_streamed
    # Committed before the stream began: another connection sees it with no byte read yet.
    engine = sa.create_engine(db.engine.url)
    try:
        with engine.connect() as conn:
            seen = conn.execute(sa.select(AuditEntry.action, AuditEntry.target, AuditEntry.actor)
                                .where(AuditEntry.action == "export")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in seen] == [("export", event.slug, "anna.organiser@example.org")]
    assert exports_audited() == [("export", event.slug, {"format": "csv",
                                                         "status": "confirmed"})]
    assert [row[5] for row in read_export(response.get_data())[1:]] == ["Aiko Tanaka",
                                                                       "田中 愛子"]


def test_every_event_in_one_file_and_the_status_filter(app, admin):
    first = make_event(slug="first-session", capacity=1)
    second = make_event(slug="second-session", starts_at=NOW + timedelta(days=40))
    services.sign_up(first, applicant(1), NOW)
    services.sign_up(first, applicant(2), NOW)  # waiting list: the one seat is taken
    third = services.sign_up(second, applicant(3), NOW)
    services.cancel(third, NOW)
    services.sign_up(second, applicant(4), NOW)
    db.session.commit()

    # Each read to its end before the next request, as a browser would: a stream keeps its
    # request's context until it is done.
    everyone = admin.get("/admin/attendees.csv")
    assert attachment_name(everyone) == "attendees-all-2025-06-20.csv"
    assert [(row[0], row[3], row[6]) for row in read_export(everyone.get_data())[1:]] == [
        ("first-session", "confirmed", "person1@example.org"),
        ("first-session", "waitlisted", "person2@example.org"),
        ("second-session", "cancelled", "person3@example.org"),
        ("second-session", "confirmed", "person4@example.org"),
    ]
    waiting = admin.get("/admin/attendees.csv?status=waitlisted")
    assert attachment_name(waiting) == "attendees-all-waitlisted-2025-06-20.csv"
    assert [row[6] for row in read_export(waiting.get_data())[1:]] == ["person2@example.org"]
    confirmed = admin.get("/admin/events/second-session/attendees.csv?status=confirmed")
    assert attachment_name(confirmed) == (
        "attendees-second-session-confirmed-2025-06-20.csv")
    assert [row[6] for row in read_export(confirmed.get_data())[1:]] == ["person4@example.org"]
    assert [(target, detail["status"]) for _, target, detail in exports_audited()] == [
        ("all events", None), ("all events", "waitlisted"), ("second-session", "confirmed")]


def test_the_file_is_dated_in_the_organisers_own_time_zone(app, admin, organiser):
    organiser.timezone = "Pacific/Kiritimati"  # UTC+14: already the next day at 10:00 UTC
    db.session.commit()
    app.config["CLOCK"] = lambda: NOW + timedelta(hours=1)
    make_event()

    response = admin.get("/admin/events/climate-finance-101/attendees.xlsx")

    assert attachment_name(response) == "attendees-climate-finance-101-2025-06-21.xlsx"


def test_times_read_as_utc_iso_writes_them_the_seconds_cut_not_rounded(app, admin):
    at = NOW + timedelta(seconds=59, microseconds=999_999)
    event = make_event(starts_at=NOW + timedelta(days=30, microseconds=500_000))
    make_registration(event, registered_at=at, consent_at=at, status="cancelled",
                      cancelled_at=at + timedelta(hours=1))
    db.session.commit()

    [row] = read_export(admin.get(f"/admin/events/{event.slug}/attendees.csv").get_data())[1:]

    assert row[2] == utc_iso(event.starts_at) == "2025-07-20T09:00:00Z"
    assert row[4] == row[12] == utc_iso(at) == "2025-06-20T09:00:59Z"
    assert row[13] == "2025-06-20T10:00:59Z"


@pytest.mark.parametrize("path", ["/admin/attendees.csv", "/admin/attendees.xlsx",
                                  "/admin/events/climate-finance-101/attendees.csv",
                                  "/admin/events/climate-finance-101/attendees.xlsx"])
def test_an_unknown_status_is_a_clear_400_and_exports_nothing(app, admin, path):
    make_event()

    response = admin.get(path + "?status=attended")

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "There is no registration status &#39;attended&#39;" in page
    assert "status=confirmed" in page
    assert exports_audited() == []


@pytest.mark.parametrize("path", ["/admin/events/no-such-session/attendees.csv",
                                  "/admin/events/no-such-session/attendees.xlsx"])
def test_an_unknown_event_is_404(app, admin, path):
    response = admin.get(path)

    assert response.status_code == 404
    assert "No event has the slug &#39;no-such-session&#39;." in response.get_data(as_text=True)
    assert exports_audited() == []


@pytest.mark.parametrize("path", ["/admin/attendees.csv", "/admin/attendees.xlsx",
                                  "/admin/events/climate-finance-101/attendees.csv",
                                  "/admin/events/climate-finance-101/attendees.xlsx"])
def test_only_a_signed_in_organiser_may_download(app, client, path):
    make_event()

    response = client.get(path)

    assert response.status_code == 303
    assert "/admin/login" in response.headers["Location"]


# -- XLSX ---------------------------------------------------------------------------------------

def test_xlsx_keeps_text_as_text_and_every_character_comes_back(app, admin):
    values = hostile_values() + XLSX_HOSTILE
    event = make_event(title="=1+2 and _x0000_")
    registered(event, values)

    response = admin.get(f"/admin/events/{event.slug}/attendees.xlsx")

    assert response.status_code == 200
    assert response.mimetype == XLSX_MIMETYPE
    assert attachment_name(response) == "attendees-climate-finance-101-2025-06-20.xlsx"
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_data()
    assert response.content_length == len(data)
    headings, rows = sheet_rows(data)
    assert len(rows) == len(values)
    assert "Name" in headings and "Organisation" in headings
    for row in rows:
        for heading, cell in row.items():
            assert cell.data_type != "f", cell.coordinate
            if heading.startswith(TIME_HEADINGS):
                assert cell.value is None or cell.is_date, (cell.coordinate, cell.value)
            else:
                assert cell.value is None or cell.data_type == "s", (cell.coordinate,
                                                                     cell.value)
    assert not re.search(r"<f[\s>/]", sheet_xml(data))  # not one formula anywhere
    for row, value in zip(rows, values, strict=True):
        # No ' in front: a text cell is never run, so the data is exactly what was typed.
        assert xlsx_unescaped(row["Name"].value) == value
        assert xlsx_unescaped(row["Organisation"].value) == value[::-1]
        assert row["Email"].value.startswith("-")
        assert xlsx_unescaped(row["Session title"].value) == "=1+2 and _x0000_"
        assert row["Cancelled (UTC)"].value is None
    assert exports_audited() == [("export", event.slug, {"format": "xlsx", "status": None})]


def test_xlsx_of_every_event_with_a_status(app, admin):
    event = make_event(capacity=1)
    services.sign_up(event, applicant(1), NOW)
    services.sign_up(event, applicant(2), NOW)
    db.session.commit()

    response = admin.get("/admin/attendees.xlsx?status=waitlisted")

    assert attachment_name(response) == "attendees-all-waitlisted-2025-06-20.xlsx"
    _, rows = sheet_rows(response.get_data())
    assert [(row["Status"].value, row["Email"].value) for row in rows] == [
        ("waitlisted", "person2@example.org")]
    assert exports_audited() == [("export", "all events", {"format": "xlsx",
                                                           "status": "waitlisted"})]


@pytest.mark.parametrize("value, text", [
    ("plain", "plain"),
    ("tab\tand\nline feed stay", "tab\tand\nline feed stay"),
    ("\0", "_x0000_"),
    ("a\r\nb", "a_x000D_\nb"),
    ("\x1f\x7f", "_x001F_\x7f"),
    ("_x0041_", "_x005F_x0041_"),
    ("_X004a_", "_x005F_X004a_"),
    ("_x004", "_x004"),
    ("__x0041__", "__x005F_x0041__"),
    ("\ufffe", "_xFFFE_"),
    (None, ""),
    (42, "42"),
])
def test_xlsx_text_escapes_what_a_cell_cant_hold_as_excel_does(value, text):
    assert xlsx_text(value) == text
    assert xlsx_unescaped(text) == ("" if value is None else str(value))


def test_a_streaming_export_leaves_sqlite_free_for_sign_ups(app, admin):
    import sqlite3

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock; PostgreSQL locks rows")
    event = make_event()
    for number in range(3000):
        make_registration(event, email=f"p{number}@example.org")
    db.session.commit()
    response = admin.get(f"/admin/events/{event.slug}/attendees.csv", buffered=False)
    chunks = iter(response.response)
    started = next(chunks) + next(chunks)  # the header, then the first rows: the query is open
    other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # "database is locked" if the export held the lock
    other.execute("ROLLBACK")
    other.close()
    body = started + b"".join(chunks)
    response.close()
    assert body.count(b"\r\n") == 3001


def test_building_a_workbook_leaves_sqlite_free_for_sign_ups(app, admin):
    import sqlite3

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock; PostgreSQL locks rows")
    event = make_event()
    make_registration(event, email="p@example.org")
    db.session.commit()
    writers_got_in = []

    def try_to_write(conn, cursor, statement, parameters, context, executemany):
        if "FROM registrations JOIN events" in statement:  # the workbook's rows being read
            other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                writers_got_in.append(True)
            except sqlite3.OperationalError:
                writers_got_in.append(False)
            finally:
                other.close()

    sa.event.listen(db.engine, "before_cursor_execute", try_to_write)
    try:
        response = admin.get(f"/admin/events/{event.slug}/attendees.xlsx")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", try_to_write)
    assert response.status_code == 200
    # Read twice (measured for the column widths, then written), a writer let in each time.
    assert writers_got_in == [True, True]
