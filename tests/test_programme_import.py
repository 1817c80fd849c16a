"""`flask import-programme`: events created or updated by slug, every row or none, and every
problem of a bad file reported on the line a spreadsheet shows."""

import codecs
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from registration import services
from registration.models import Event, Registration
from registration.programme import ProgrammeRejected, apply_programme, parse_programme
from tests.conftest import NOW, make_event

HEADER = "slug,title,starts_at,ends_at"
GOOD_ROW = "heat-plans,Heat action plans,2026-07-07T14:00,2026-07-07T15:30"


def write_csv(tmp_path, text, name="programme.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def import_csv(runner, tmp_path, text, **kwargs):
    return runner.invoke(args=["import-programme", str(write_csv(tmp_path, text, **kwargs))])


def events():
    db.session.expire_all()
    return db.session.scalars(sa.select(Event).order_by(Event.slug)).all()


def test_import_creates_an_event_with_defaults_for_absent_columns(app, runner, tmp_path):
    result = import_csv(runner, tmp_path, f"{HEADER}\n{GOOD_ROW}\n")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "created 1, updated 0, unchanged 0"
    [event] = events()
    assert (event.slug, event.title) == ("heat-plans", "Heat action plans")
    assert event.starts_at == datetime(2026, 7, 7, 14, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2026, 7, 7, 15, 30, tzinfo=UTC)
    assert (event.kind, event.pillar, event.timezone, event.capacity, event.language,
            event.join_url, event.location, event.description, event.status,
            event.recording_url) == (
        "webinar", None, "UTC", None, "en", None, None, "", "scheduled", None)
    assert event.created_at == event.updated_at == NOW


def test_import_creates_an_event_from_every_column(app, runner, tmp_path):
    text = (
        "slug,title,kind,pillar,starts_at,ends_at,timezone,capacity,language,join_url,"
        "location,description,status,recording_url\n"
        "gpc-training,温室効果ガス算定研修,Training,Exchange,2026-08-12 14:30,2026-08-12 17:00,"
        "Asia/Tokyo,5,JA,https://meet.example.org/j/42,Online,\"一行目\n二行目\",scheduled,"
        "http://video.example.org/42\n"
    )
    result = import_csv(runner, tmp_path, text)

    assert result.exit_code == 0, result.output
    [event] = events()
    assert (event.title, event.kind, event.pillar, event.timezone, event.capacity,
            event.language, event.join_url, event.location, event.description, event.status,
            event.recording_url) == (
        "温室効果ガス算定研修", "training", "exchange", "Asia/Tokyo", 5, "ja",
        "https://meet.example.org/j/42", "Online", "一行目\n二行目", "scheduled",
        "http://video.example.org/42")
    assert event.starts_at == datetime(2026, 8, 12, 5, 30, tzinfo=UTC)


def test_update_changes_the_columns_in_the_file_and_keeps_the_others(app, runner, tmp_path):
    make_event(slug="climate-finance-101", capacity=50, pillar="exchange", kind="workshop",
               timezone="Europe/Berlin", location="Online",
               join_url="https://meet.example.org/j/1", description="Kept.")
    later = NOW + timedelta(hours=2)
    app.config["CLOCK"] = lambda: later

    result = import_csv(runner, tmp_path, "slug,title,starts_at,ends_at,language\n"
                        "climate-finance-101,Climate finance 102,2026-07-07T14:00,"
                        "2026-07-07T15:00,ja\n")

    assert result.exit_code == 0, result.output
    assert "created 0, updated 1, unchanged 0" in result.output
    [event] = events()
    assert (event.title, event.language) == ("Climate finance 102", "ja")
    assert (event.capacity, event.pillar, event.kind, event.timezone, event.location,
            event.join_url, event.description) == (
        50, "exchange", "workshop", "Europe/Berlin", "Online", "https://meet.example.org/j/1",
        "Kept.")
    # Without a timezone column the times are read in the event's stored zone (summer time).
    assert event.starts_at == datetime(2026, 7, 7, 12, 0, tzinfo=UTC)
    assert (event.created_at, event.updated_at) == (NOW, later)


def test_a_blank_cell_means_the_default_and_a_blank_capacity_means_no_limit(
    app, runner, tmp_path
):
    make_event(slug="climate-finance-101", capacity=50, join_url="https://meet.example.org/j/1")

    result = import_csv(runner, tmp_path, f"{HEADER},capacity,join_url\n"
                        "climate-finance-101,Climate finance,2026-07-07T14:00,"
                        "2026-07-07T15:00,,\n")

    assert result.exit_code == 0, result.output
    [event] = events()
    assert (event.capacity, event.join_url) == (None, None)


def test_importing_the_same_file_again_changes_nothing(app, runner, tmp_path):
    text = f"{HEADER},timezone,capacity\n{GOOD_ROW},Europe/Berlin,30\n"
    assert import_csv(runner, tmp_path, text).exit_code == 0
    app.config["CLOCK"] = lambda: NOW + timedelta(days=1)

    result = import_csv(runner, tmp_path, text)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "created 0, updated 0, unchanged 1"
    [event] = events()
    assert event.updated_at == NOW


def test_a_utf8_bom_and_crlf_line_ends_from_excel_are_accepted(app, runner, tmp_path):
    text = f"{HEADER},language\r\nurban-october,アーバン・オクトーバー,2026-10-01T09:00," \
           "2026-10-01T10:00,ja\r\n"

    result = import_csv(runner, tmp_path, text, encoding="utf-8-sig")

    assert result.exit_code == 0, result.output
    [event] = events()
    assert (event.slug, event.title) == ("urban-october", "アーバン・オクトーバー")


def test_an_event_on_the_day_summer_time_starts_lands_on_the_right_utc_time(
    app, runner, tmp_path
):
    result = import_csv(runner, tmp_path, f"{HEADER},timezone\n"
                        "spring,Spring,2026-03-29 12:00,2026-03-29 13:30,Europe/Berlin\n"
                        "eve,Eve,2026-03-28 12:00,2026-03-28 13:30,Europe/Berlin\n")

    assert result.exit_code == 0, result.output
    eve, spring = events()
    assert spring.starts_at == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    assert spring.ends_at == datetime(2026, 3, 29, 11, 30, tzinfo=UTC)
    assert eve.starts_at == datetime(2026, 3, 28, 11, 0, tzinfo=UTC)


def test_an_offset_in_the_value_wins_over_the_zone(app, runner, tmp_path):
    result = import_csv(runner, tmp_path, f"{HEADER},timezone\n"
                        "tokyo-time,Tokyo,2026-07-07T14:00+09:00,2026-07-07T15:00Z,"
                        "Europe/Berlin\n"
                        # The autumn overlap is fine once the offset says which 02:30 it is.
                        "night,Night,2026-10-25T02:30+01:00,2026-10-25T04:00+01:00,"
                        "Europe/Berlin\n")

    assert result.exit_code == 0, result.output
    night, tokyo = events()
    assert tokyo.starts_at == datetime(2026, 7, 7, 5, 0, tzinfo=UTC)
    assert tokyo.ends_at == datetime(2026, 7, 7, 15, 0, tzinfo=UTC)
    assert tokyo.timezone == "Europe/Berlin"
    assert night.starts_at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "starts_at, ends_at, zone, words",
    [
        ("2026-03-29 02:30", "2026-03-29 05:00", "Europe/Berlin", "does not exist"),
        ("2026-10-25 02:30", "2026-10-25 05:00", "Europe/Berlin", "happens twice"),
        ("2026-11-01 01:30", "2026-11-01 05:00", "America/New_York", "happens twice"),
        ("2026-03-08 02:30", "2026-03-08 05:00", "America/New_York", "does not exist"),
    ],
    ids=["berlin-gap", "berlin-overlap", "new-york-overlap", "new-york-gap"],
)
def test_a_time_the_zone_skips_or_repeats_is_reported_not_guessed(
    app, runner, tmp_path, starts_at, ends_at, zone, words
):
    result = import_csv(runner, tmp_path, f"{HEADER},timezone\n{GOOD_ROW},UTC\n"
                        f"dst-edge,DST edge,{starts_at},{ends_at},{zone}\n")

    assert result.exit_code != 0
    assert f"line 3: starts_at {starts_at} {words} in {zone}" in result.stderr
    assert events() == []


# (file text, line of the problem, words in the message)
BAD_FILES = {
    "unknown-column": (f"{HEADER},colour\n{GOOD_ROW},red\n", 1, "unknown column 'colour'"),
    "missing-required-column": (
        "slug,title,starts_at\nheat-plans,Heat,2026-07-07T14:00\n", 1,
        "required column missing: ends_at"),
    "column-twice": (f"{HEADER},title\n{GOOD_ROW},Again\n", 1, "column title appears twice"),
    "semicolons": ("slug;title;starts_at;ends_at\n", 1, "semicolons"),
    "empty-file": ("", 1, "the file is empty"),
    "end-before-start": (
        f"{HEADER}\n{GOOD_ROW}\nbackwards,Backwards,2026-07-07T15:00,2026-07-07T14:00\n", 3,
        "ends_at '2026-07-07T14:00' is not after starts_at"),
    "end-equals-start": (
        f"{HEADER}\nzero,Zero,2026-07-07T15:00,2026-07-07T15:00\n", 2, "is not after"),
    "bad-zone": (f"{HEADER},timezone\n{GOOD_ROW},Mars/Olympus\n", 2,
                 "timezone must be an IANA zone name"),
    "offset-as-zone": (f"{HEADER},timezone\n{GOOD_ROW},UTC+2\n", 2, "IANA zone name"),
    "ftp-url": (f"{HEADER},join_url\n{GOOD_ROW},ftp://files.example.org/x\n", 2,
                "join_url must be a full http:// or https:// address"),
    "javascript-url": (f"{HEADER},join_url\n{GOOD_ROW},javascript:alert(1)\n", 2,
                       "join_url must be a full http"),
    "url-without-scheme": (f"{HEADER},recording_url\n{GOOD_ROW},video.example.org/1\n", 2,
                           "recording_url must be a full http"),
    "url-with-space": (f"{HEADER},join_url\n{GOOD_ROW},https://meet.example.org/a b\n", 2,
                       "join_url contains a space"),
    "duplicate-slug": (f"{HEADER}\n{GOOD_ROW}\nother,Other,2026-07-08T14:00,2026-07-08T15:00\n"
                       f"{GOOD_ROW}\n", 4, "slug 'heat-plans' is already on line 2"),
    "slug-with-capitals": (f"{HEADER}\nHeat Plans,Heat,2026-07-07T14:00,2026-07-07T15:00\n", 2,
                           "slug 'Heat Plans' must be lowercase letters, digits"),
    "slug-with-double-hyphen": (f"{HEADER}\nheat--plans,Heat,2026-07-07T14:00,"
                                "2026-07-07T15:00\n", 2, "must be lowercase"),
    "reserved-slug": (f"{HEADER}\nnew,New,2026-07-07T14:00,2026-07-07T15:00\n", 2,
                      "slug new is reserved"),
    "empty-title": (f"{HEADER}\nheat-plans,,2026-07-07T14:00,2026-07-07T15:00\n", 2,
                    "title is empty"),
    "long-title": (f"{HEADER}\nheat-plans,{'x' * 201},2026-07-07T14:00,2026-07-07T15:00\n", 2,
                   "title is 201 characters long; at most 200"),
    "long-slug": (f"{HEADER}\n{'a' * 81},Long,2026-07-07T14:00,2026-07-07T15:00\n", 2,
                  "slug is 81 characters long; at most 80"),
    "long-description": (f"{HEADER},description\n{GOOD_ROW},{'d' * 10_001}\n", 2,
                         "description is 10001 characters long"),
    "bell-in-title": (f"{HEADER}\nheat-plans,Heat\x07plans,2026-07-07T14:00,"
                      "2026-07-07T15:00\n", 2, "title contains the invisible control "
                      "character U+0007"),
    "nul-in-location": (f"{HEADER},location\n{GOOD_ROW},On\x00line\n", 2, "U+0000"),
    "escape-in-description": (f"{HEADER},description\n{GOOD_ROW},\"ok\n\x1b[31mred\"\n", 2,
                              "description contains the invisible control character U+001B"),
    "bidi-override-in-title": (f"{HEADER}\nheat-plans,Heat \u202eplans,2026-07-07T14:00,"
                               "2026-07-07T15:00\n", 2, "U+202E"),
    "line-break-in-title": (f"{HEADER}\nheat-plans,\"Heat\nplans\",2026-07-07T14:00,"
                            "2026-07-07T15:00\n", 2, "title contains a line break"),
    "unknown-kind": (f"{HEADER},kind\n{GOOD_ROW},seminar\n", 2,
                     "kind must be webinar, workshop, training, dialogue"),
    "unknown-pillar": (f"{HEADER},pillar\n{GOOD_ROW},inspire\n", 2,
                       "pillar must be reflect, exchange, advocate or blank"),
    "unknown-language": (f"{HEADER},language\n{GOOD_ROW},fr\n", 2, "language must be en, ja"),
    "unknown-status": (f"{HEADER},status\n{GOOD_ROW},postponed\n", 2,
                       "status must be scheduled, cancelled"),
    "negative-capacity": (f"{HEADER},capacity\n{GOOD_ROW},-5\n", 2,
                          "capacity must be a whole number"),
    "capacity-in-words": (f"{HEADER},capacity\n{GOOD_ROW},ten\n", 2, "capacity must be"),
    "spreadsheet-date": (f"{HEADER}\nheat-plans,Heat,07/07/2026 14:00,2026-07-07T15:00\n", 2,
                         "starts_at must be an ISO 8601 date and time"),
    "date-without-time": (f"{HEADER}\nheat-plans,Heat,2026-07-07,2026-07-07T15:00\n", 2,
                          "starts_at '2026-07-07' has a date but no time"),
    "year-typo": (f"{HEADER}\nheat-plans,Heat,2206-07-07T14:00,2206-07-07T15:00\n", 2,
                  "is in the year 2206"),
    "too-many-values": (f"{HEADER}\n{GOOD_ROW},extra\n", 2,
                        "has 5 values, but the header names 4 columns"),
    "too-few-values": (f"{HEADER}\nheat-plans,Heat,2026-07-07T14:00\n", 2, "has 3 values"),
    "unclosed-quote": (f'{HEADER}\n{GOOD_ROW}\nx,"Heat,2026-07-07T14:00,2026-07-07T15:00\n',
                       3, "a quoted value is never closed"),
    "not-utf8": (f"{HEADER}\n{GOOD_ROW}\ncafe,Café,2026-07-08T14:00,2026-07-08T15:00\n"
                 .encode("latin-1"), 3, "is not UTF-8 text"),
    "utf16": (f"{HEADER}\n{GOOD_ROW}\n".encode("utf-16"), 1, "the file is UTF-16"),
}


@pytest.mark.parametrize("text, line, words", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_imports_nothing_and_names_the_problem_and_its_line(
    app, runner, tmp_path, text, line, words
):
    result = import_csv(runner, tmp_path, text)

    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert any(p.startswith(f"line {line}: ") and words in p for p in problems), result.stderr
    assert problems[-1].startswith("Error: Nothing was imported")
    assert "Traceback" not in result.output
    assert events() == []


def test_line_numbers_count_spreadsheet_rows_when_a_value_spans_text_lines(
    app, runner, tmp_path
):
    text = (
        f"{HEADER},description\n"
        'first,First,2026-07-07T14:00,2026-07-07T15:00,"A description\n'
        'that spans\nthree lines, with ""quotes"""\n'
        "\n"  # an empty spreadsheet row: skipped, but it still has a number
        "second,Second,2026-07-08T15:00,2026-07-08T14:00,ok\n"
    )

    result = import_csv(runner, tmp_path, text)

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("line 4: ends_at '2026-07-08T14:00'")


def test_every_problem_is_reported_and_nothing_is_imported_when_any_row_is_bad(
    app, runner, tmp_path
):
    make_event(slug="climate-finance-101", title="Climate finance 101")
    text = (
        f"{HEADER},timezone,capacity\n"
        "climate-finance-101,Renamed,2026-07-07T14:00,2026-07-07T15:00,UTC,10\n"
        f"{GOOD_ROW},UTC,\n"
        "bad-zone,Bad zone,2026-07-07T14:00,2026-07-07T15:00,Berlin,\n"
        "Bad Slug,Bad slug and capacity,2026-07-07T14:00,2026-07-07T15:00,UTC,lots\n"
    )

    result = import_csv(runner, tmp_path, text)

    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert [p.split(":")[0] for p in problems[:-1]] == ["line 4", "line 5", "line 5"]
    assert "3 problems" in problems[-1]
    [event] = events()
    assert (event.title, event.capacity) == ("Climate finance 101", None)


def test_a_cancelled_event_cannot_be_scheduled_again_by_an_import(app, runner, tmp_path):
    make_event(slug="climate-finance-101", status="cancelled")

    result = import_csv(runner, tmp_path, f"{HEADER},status\nclimate-finance-101,Back again,"
                        "2026-07-07T14:00,2026-07-07T15:00,scheduled\n")

    assert result.exit_code == 1
    assert "line 2: climate-finance-101 was cancelled" in result.stderr
    assert "publish a new session instead" in result.stderr
    [event] = events()
    assert (event.status, event.title) == ("cancelled", "Climate finance 101")


def test_a_cancelled_event_can_still_be_updated_and_stays_cancelled(app, runner, tmp_path):
    event = make_event(slug="climate-finance-101", status="cancelled")
    times = f"{event.starts_at:%Y-%m-%dT%H:%MZ},{event.ends_at:%Y-%m-%dT%H:%MZ}"

    result = import_csv(runner, tmp_path, f"{HEADER},recording_url\nclimate-finance-101,"
                        f"Climate finance 101,{times},https://video.example.org/cf\n")

    assert result.exit_code == 0, result.output
    [event] = events()
    assert (event.status, event.recording_url) == ("cancelled", "https://video.example.org/cf")


def test_the_service_itself_refuses_to_reopen_a_cancelled_event(app):
    make_event(slug="climate-finance-101", status="cancelled")
    # Checked without knowing the stored events, as a stale preview would be.
    rows, problems = parse_programme(f"{HEADER},status\nclimate-finance-101,Back,"
                                     "2026-07-07T14:00,2026-07-07T15:00,scheduled\n".encode())
    assert problems == []

    with pytest.raises(ProgrammeRejected) as exc:
        apply_programme(rows, NOW)

    assert exc.value.problems[0].line == 2
    db.session.rollback()
    [event] = events()
    assert event.status == "cancelled"


def _applicant(n):
    return services.Applicant(
        name=f"Person {n}", email=f"person{n}@example.org", email_key=f"person{n}@example.org",
        organisation="City of Bonn", affiliation="local_government", country="DE",
        timezone="Europe/Berlin", language="en", consent_version="2025-06",
    )


def test_raising_capacity_gives_the_new_seats_to_the_waiting_list(app, runner, tmp_path):
    event = make_event(slug="climate-finance-101", capacity=1)
    for n in range(3):
        services.sign_up(event, _applicant(n), NOW)
    db.session.commit()
    times = f"{event.starts_at:%Y-%m-%dT%H:%MZ},{event.ends_at:%Y-%m-%dT%H:%MZ}"

    result = import_csv(runner, tmp_path, f"{HEADER},capacity\n"
                        f"climate-finance-101,Climate finance 101,{times},2\n")

    assert result.exit_code == 0, result.output
    assert "created 0, updated 1, unchanged 0; 1 moved from the waiting list" in result.output
    db.session.expire_all()
    statuses = db.session.scalars(sa.select(Registration.status).order_by(Registration.id)).all()
    assert statuses == ["confirmed", "confirmed", "waitlisted"]
    [event] = events()
    assert (event.capacity, event.confirmed_count) == (2, 2)


def three_seats_taken_of_five():
    event = make_event(slug="climate-finance-101", capacity=5)
    for n in range(3):
        services.sign_up(event, _applicant(n), NOW)
    db.session.commit()
    return f"{event.starts_at:%Y-%m-%dT%H:%MZ},{event.ends_at:%Y-%m-%dT%H:%MZ}"


def test_capacity_below_the_seats_taken_is_a_problem_on_its_line_and_nothing_is_applied(
        app, runner, tmp_path):
    times = three_seats_taken_of_five()

    result = import_csv(runner, tmp_path, f"{HEADER},capacity\n"
                        f"fresh-session,Fresh,2026-07-07T14:00,2026-07-07T15:00,10\n"
                        f"climate-finance-101,A new title,{times},1\n")

    assert result.exit_code != 0
    assert "line 3: capacity 1 is below the 3 seats already taken" in result.output
    assert "--keep-seats" in result.output
    assert [(e.slug, e.title, e.capacity) for e in events()] == [
        ("climate-finance-101", "Climate finance 101", 5)]


def test_capacity_down_to_the_seats_taken_needs_no_confirmation(app, runner, tmp_path):
    times = three_seats_taken_of_five()

    result = import_csv(runner, tmp_path, f"{HEADER},capacity\n"
                        f"climate-finance-101,Climate finance 101,{times},3\n")

    assert result.exit_code == 0, result.output
    assert events()[0].capacity == 3


def test_keep_seats_lowers_capacity_below_the_seats_taken_and_takes_no_seat_away(
        app, runner, tmp_path):
    times = three_seats_taken_of_five()
    path = write_csv(tmp_path, f"{HEADER},capacity\n"
                               f"climate-finance-101,Climate finance 101,{times},1\n")

    result = runner.invoke(args=["import-programme", "--keep-seats", str(path)])

    assert result.exit_code == 0, result.output
    [event] = events()
    assert (event.capacity, event.confirmed_count) == (1, 3)
    statuses = db.session.scalars(sa.select(Registration.status)).all()
    assert statuses == ["confirmed"] * 3


def test_titles_are_stored_composed_as_the_sign_up_form_stores_names():
    decomposed = "Cafe\u0301 des me\u0301tiers"
    rows, problems = parse_programme(f"{HEADER}\nheat-plans,{decomposed},2026-07-07T14:00,"
                                     "2026-07-07T15:30\n".encode())
    assert problems == []
    assert rows[0].values["title"] == "Café des métiers"


def bad_rows(count):
    """Rows each with one problem: a slug no event may have."""
    return "".join(f"Bad Slug {n},Title,2026-07-07T14:00,2026-07-07T15:00\n"
                   for n in range(count))


def problem_lines(output):
    return [line for line in output.splitlines() if line.startswith("line ")]


def test_a_file_with_more_than_100_problems_lists_100_and_how_many_more(app, runner, tmp_path):
    result = import_csv(runner, tmp_path, f"{HEADER}\n{bad_rows(150)}")

    assert result.exit_code != 0
    shown = problem_lines(result.output)
    assert len(shown) == 100
    assert shown[0].startswith("line 2: ") and shown[-1].startswith("line 101: ")
    assert "…and 50 more" in result.output
    assert "Nothing was imported: 150 problems in" in result.output


def test_a_file_over_the_row_limit_is_refused_in_one_line_before_any_row_is_checked(
        app, runner, tmp_path):
    result = import_csv(runner, tmp_path, f"{HEADER}\n{bad_rows(5001)}")

    assert result.exit_code != 0
    assert problem_lines(result.output) == [
        "line 1: the file has more than 5000 rows of events; a programme is far smaller: is it "
        "the right file? (The limit is the PROGRAMME_MAX_ROWS setting.)"]
    assert "Nothing was imported: 1 problem in" in result.output


def test_the_row_limit_comes_from_the_setting_and_blank_rows_do_not_count(app_with, tmp_path):
    rows = [f"event-{n},Event {n},2026-07-0{n}T14:00,2026-07-0{n}T15:00" for n in (1, 2, 3)]
    with app_with(PROGRAMME_MAX_ROWS="2") as app:
        runner = app.test_cli_runner()
        refused = import_csv(runner, tmp_path, "\n".join([HEADER, *rows]) + "\n")
        assert refused.exit_code != 0 and "more than 2 rows" in refused.output
        assert events() == []

        kept = import_csv(runner, tmp_path, "\n".join([HEADER, *rows[:2], ",,,", ""]) + "\n")
        assert kept.exit_code == 0, kept.output
        assert len(events()) == 2


def test_parse_programme_answers_rows_or_problems_without_a_database():
    rows, problems = parse_programme(codecs.BOM_UTF8 + f"{HEADER}\n{GOOD_ROW}\n".encode())
    assert problems == []
    assert [(row.line, row.slug) for row in rows] == [(2, "heat-plans")]

    rows, problems = parse_programme(f"{HEADER},colour\n{GOOD_ROW},red\n"
                                     "new,New,2026-07-07T14:00,2026-07-07T15:00,\n".encode())
    assert rows == []
    assert [line for line, _ in problems] == [1, 3]


def test_a_missing_file_is_one_clear_line(app, runner, tmp_path):
    result = runner.invoke(args=["import-programme", str(tmp_path / "nowhere.csv")])

    assert result.exit_code != 0
    assert "No such file" in result.output
    assert "Traceback" not in result.output
