"""The attendee workbook people sort and filter: date-time cells in UTC and in the session's own
zone, English names beside the codes, a bold frozen header, an autofilter, fitted widths."""

import io
import re
from datetime import UTC, datetime, timedelta

from flask_babel import force_locale
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from extensions import db
from registration import services
from registration.workbook import MAX_WIDTH, TIME_FORMAT, attendees_xlsx
from tests.conftest import NOW, make_event
from tests.test_export_attendees import applicant
from tests.test_organisers_exports import XLSX_HOSTILE, sheet_rows, sheet_xml

# 10:00 in Tokyo (JST, UTC+9) is 01:00 UTC.
TOKYO_START = datetime(2025, 7, 20, 1, 0, tzinfo=UTC)


def workbook(event=None) -> bytes:
    """The attendee workbook's bytes, built as the console builds it."""
    with attendees_xlsx(event) as file:
        return file.read()


def tokyo_session(**fields):
    return make_event(slug="tokyo-session", timezone="Asia/Tokyo", starts_at=TOKYO_START,
                      **fields)


def test_times_are_date_cells_in_utc_and_in_the_sessions_own_zone(app):
    event = tokyo_session()
    registration = services.sign_up(event, applicant(1), NOW + timedelta(seconds=59.9))
    services.cancel(registration, NOW + timedelta(hours=6))
    db.session.commit()

    headings, [row] = sheet_rows(workbook(event))

    assert headings[:8] == [
        "Session slug", "Session title", "Session time zone", "Starts (UTC)",
        "Starts (session time, Asia/Tokyo)", "Status", "Registered (UTC)",
        "Registered (session time, Asia/Tokyo)"]
    assert row["Session time zone"].value == "Asia/Tokyo"
    expected = {
        "Starts": (datetime(2025, 7, 20, 1, 0), datetime(2025, 7, 20, 10, 0)),
        # 09:00:59.9 UTC, cut to the second as the CSV's times are: 18:00:59 in Tokyo.
        "Registered": (datetime(2025, 6, 20, 9, 0, 59), datetime(2025, 6, 20, 18, 0, 59)),
        "Consent given": (datetime(2025, 6, 20, 9, 0, 59), datetime(2025, 6, 20, 18, 0, 59)),
        "Cancelled": (datetime(2025, 6, 20, 15, 0), datetime(2025, 6, 21, 0, 0)),
    }
    for name, (utc, tokyo) in expected.items():
        in_utc, in_tokyo = row[f"{name} (UTC)"], row[f"{name} (session time, Asia/Tokyo)"]
        assert (in_utc.value, in_tokyo.value) == (utc, tokyo), name
        for cell in (in_utc, in_tokyo):
            assert cell.is_date and cell.data_type == "d", cell.coordinate
            assert cell.number_format == TIME_FORMAT


def test_every_session_in_its_own_zone_when_they_differ(app):
    tokyo = tokyo_session()
    berlin = make_event(slug="berlin-session", starts_at=TOKYO_START + timedelta(days=1),
                        timezone="Europe/Berlin")
    services.sign_up(tokyo, applicant(1), NOW)
    services.sign_up(berlin, applicant(2), NOW)
    db.session.commit()

    headings, rows = sheet_rows(workbook())

    assert "Starts (session time)" in headings
    assert [(row["Session slug"].value, row["Session time zone"].value,
             row["Starts (session time)"].value) for row in rows] == [
        ("tokyo-session", "Asia/Tokyo", datetime(2025, 7, 20, 10, 0)),
        # Summer time in Berlin: UTC+2.
        ("berlin-session", "Europe/Berlin", datetime(2025, 7, 21, 3, 0)),
    ]
    assert [row["Starts (UTC)"].value for row in rows] == [datetime(2025, 7, 20, 1, 0),
                                                          datetime(2025, 7, 21, 1, 0)]


def test_codes_have_their_english_names_beside_them(app):
    event = tokyo_session()
    services.sign_up(event, applicant(1, country="JP", language="ja"), NOW)
    services.sign_up(event, applicant(2, country="DE", affiliation="ngo"), NOW)
    db.session.commit()

    # English whatever language the page that asked was in.
    with force_locale("ja"):
        headings, rows = sheet_rows(workbook(event))

    pairs = [("Type of organisation (code)", "Type of organisation"),
             ("Country (ISO code)", "Country"), ("Language (code)", "Language")]
    for code, name in pairs:
        assert headings.index(name) == headings.index(code) + 1
    assert [[(row[code].value, row[name].value) for code, name in pairs] for row in rows] == [
        [("local_government", "Local or regional government"), ("JP", "Japan"),
         ("ja", "Japanese")],
        [("ngo", "NGO or civil society"), ("DE", "Germany"), ("en", "English")],
    ]


def test_the_header_is_bold_and_frozen_and_the_autofilter_covers_every_row(app):
    event = tokyo_session()
    for n in range(3):
        services.sign_up(event, applicant(n), NOW)
    db.session.commit()

    sheet = load_workbook(io.BytesIO(workbook(event))).active

    last = get_column_letter(sheet.max_column)
    assert sheet.max_row == 4
    assert all(cell.font.bold for cell in sheet[1])
    assert not any(cell.font.bold for cell in sheet[2])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{last}4"


def test_an_empty_export_is_a_header_with_its_filter(app):
    event = tokyo_session()

    sheet = load_workbook(io.BytesIO(workbook(event))).active

    assert sheet.max_row == 1
    assert sheet.auto_filter.ref == f"A1:{get_column_letter(sheet.max_column)}1"
    # No session to name: the heading says whose zone it is without naming one.
    assert "Starts (session time)" in [cell.value for cell in sheet[1]]


def test_columns_are_as_wide_as_their_longest_value_wide_characters_counting_twice(app):
    event = tokyo_session(title="T" * 150)
    services.sign_up(event, applicant(1, name="Ann", organisation="横浜市役所 温暖化対策本部"),
                     NOW)
    services.sign_up(event, applicant(2, name="Aiko Tanaka-Yamamoto"), NOW)
    db.session.commit()

    sheet = load_workbook(io.BytesIO(workbook(event))).active

    widths = {cell.value: sheet.column_dimensions[cell.column_letter].width
              for cell in sheet[1]}
    assert widths["Name"] == len("Aiko Tanaka-Yamamoto") + 2
    assert widths["Organisation"] == 2 * 12 + 1 + 2  # twelve wide characters and a space
    assert widths["Session title"] == MAX_WIDTH  # capped: one long title can't hide the others
    assert widths["Status"] == len("confirmed") + 2
    assert widths["Starts (UTC)"] == len("2025-07-20 10:00") + 2
    # A short value's column fits its heading and the filter's button instead.
    assert widths["Session time zone"] == len("Session time zone") + 3
    assert widths["Starts (session time, Asia/Tokyo)"] == len(
        "Starts (session time, Asia/Tokyo)") + 3


def test_formula_like_values_are_text_cells_and_the_file_holds_no_formula(app):
    event = tokyo_session(title='=HYPERLINK("http://evil.example","click")')
    for n, value in enumerate(XLSX_HOSTILE):
        services.sign_up(event, applicant(n, name=value, organisation=value), NOW)
    db.session.commit()

    data = workbook(event)

    _, rows = sheet_rows(data)
    assert [row["Name"].value for row in rows][-6:] == [
        '=HYPERLINK("http://evil.example","click")', "=", "+1", "@SUM(A1)", "-2+3",
        "=SUM(A1:A2)"]
    for row in rows:
        for cell in (row["Name"], row["Organisation"], row["Session title"]):
            assert cell.data_type == "s", (cell.coordinate, cell.value)
    xml = sheet_xml(data)
    assert not re.search(r"<f[\s>/]", xml)
    assert "=SUM(A1:A2)" in xml  # the value is there, as text


def test_the_calendar_answer_is_the_last_column_as_in_the_csv(app):
    event = tokyo_session()
    answered = services.sign_up(event, applicant(1), NOW)
    services.sign_up(event, applicant(2), NOW + timedelta(minutes=1))
    answered.rsvp = "declined"
    db.session.commit()

    headings, rows = sheet_rows(workbook(event))

    assert headings[-1] == "Calendar answer"
    assert [row["Calendar answer"].value for row in rows] == ["declined", None]
