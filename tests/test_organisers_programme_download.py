"""Downloading the programme in the upload's own format: every column the importer reads, in its
order, times on each event's own wall clock, formula-safe in a way the importer undoes, so that
the file uploaded unchanged previews no changes and applying it changes nothing."""

import codecs
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from organisers.models import AuditEntry
from registration.models import Event
from registration.programme import COLUMNS, parse_programme
from registration.programme_export import as_written, formula_safe
from tests.conftest import NOW, make_event
from tests.test_organisers_upload import apply, audit_actions, count, people, preview_token, upload

FORMULA_TITLE = "=HYPERLINK(\"https://evil.example\",\"Click\")"
RISKY_TEXTS = [
    "=1+1", "+81 Tokyo", "-5 degrees", "@channel", "'=already quoted", "''+twice", "'plain",
    "It's fine", "", "plain", "'", "'-", "=", "日本語",
]


def snapshot() -> dict[str, dict]:
    """Every stored column of every event, by slug."""
    db.session.expire_all()
    return {event.slug: {column.key: getattr(event, column.key)
                         for column in Event.__table__.columns}
            for event in db.session.scalars(sa.select(Event))}


def download(client) -> bytes:
    response = client.get("/admin/programme.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment")
    return response.get_data()


def rows_of(data: bytes) -> list[dict[str, str]]:
    text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture
def stored(admin):
    """A programme with something of every kind the file must carry back unchanged."""
    tokyo = make_event(slug="tokyo-morning", title="Tokyo morning", timezone="Asia/Tokyo",
                       starts_at=datetime(2025, 7, 20, 1, 0, tzinfo=UTC), capacity=40,
                       language="ja", pillar=None, location="Online")
    people(tokyo, confirmed=2, waitlisted=1)
    make_event(slug="formula", title=FORMULA_TITLE, description="- first point\n- second")
    make_event(slug="quoted", title="'=already quoted", location="@home")
    # 02:30 happens twice in Berlin that night; the file must say which.
    make_event(slug="clocks-back", starts_at=datetime(2025, 10, 26, 0, 30, tzinfo=UTC),
               capacity=0)
    make_event(slug="called-off", status="cancelled")
    make_event(slug="recorded", starts_at=NOW - timedelta(days=3),
               recording_url="https://video.example.org/r/1")


def test_the_download_has_the_importers_columns_in_its_order_with_a_bom(admin, stored):
    data = download(admin)

    assert data.startswith(codecs.BOM_UTF8)
    header = next(csv.reader(io.StringIO(data.removeprefix(codecs.BOM_UTF8).decode())))
    assert tuple(header) == COLUMNS
    assert [row["slug"] for row in rows_of(data)] == [
        "recorded", "tokyo-morning", "called-off", "formula", "quoted", "clocks-back"]


def test_times_are_on_the_wall_clock_of_each_sessions_zone(admin, stored):
    rows = {row["slug"]: row for row in rows_of(download(admin))}

    assert (rows["tokyo-morning"]["starts_at"], rows["tokyo-morning"]["ends_at"],
            rows["tokyo-morning"]["timezone"]) == ("2025-07-20T10:00", "2025-07-20T11:30",
                                                   "Asia/Tokyo")
    assert rows["formula"]["starts_at"] == "2025-07-20T11:00"  # 09:00 UTC in Berlin
    assert rows["clocks-back"]["starts_at"] == "2025-10-26T02:30+02:00"
    assert (rows["tokyo-morning"]["pillar"], rows["tokyo-morning"]["capacity"],
            rows["tokyo-morning"]["language"]) == ("", "40", "ja")


def test_a_formula_like_value_is_not_a_formula_in_the_file_and_reads_back_as_typed(admin,
                                                                                   stored):
    data = download(admin)
    rows = {row["slug"]: row for row in rows_of(data)}

    assert rows["formula"]["title"] == "'" + FORMULA_TITLE
    assert rows["formula"]["description"] == "'- first point\n- second"
    assert rows["quoted"]["title"] == "''=already quoted"
    assert rows["quoted"]["location"] == "'@home"
    for row in rows.values():
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values()), row
    read, problems = parse_programme(data)
    assert not problems
    values = {row.slug: row.values for row in read}
    assert values["formula"]["title"] == FORMULA_TITLE
    assert values["formula"]["description"] == "- first point\n- second"
    assert values["quoted"]["title"] == "'=already quoted"
    assert values["quoted"]["location"] == "@home"


@pytest.mark.parametrize("text", RISKY_TEXTS)
def test_the_importer_takes_away_exactly_the_quote_the_exporter_adds(text):
    written = formula_safe(text)
    assert as_written(written) == text
    assert not written.startswith(("=", "+", "-", "@"))


def test_downloading_and_uploading_unchanged_previews_no_changes_and_changes_nothing(admin,
                                                                                   stored):
    before = snapshot()
    data = download(admin)

    response = upload(admin, data, filename="programme-2025-06-20.csv")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "No changes: every session in this file is as stored." in page
    assert "6 sessions unchanged." in page
    assert 'id="plan-' not in page
    applied = apply(admin, preview_token(page))
    assert applied.status_code == 303, applied.get_data(as_text=True)
    assert snapshot() == before
    assert count(Message) == 0
    assert audit_actions() == ["programme downloaded", "programme previewed",
                               "programme uploaded"]
    detail = db.session.scalars(sa.select(AuditEntry.detail)
                                .where(AuditEntry.action == "programme uploaded")).one()
    assert (detail["created"], detail["updated"], detail["notified"]) == ([], [], 0)


def test_the_download_is_for_organisers_only(app, stored):
    response = app.test_client().get("/admin/programme.csv")
    assert response.status_code == 303
    assert "/admin/login" in response.headers["Location"]


def test_the_upload_page_and_the_dashboard_link_the_download(admin):
    for path in ("/admin/", "/admin/programme"):
        page = admin.get(path).get_data(as_text=True)
        assert 'href="/admin/programme.csv">Download the programme</a>' in page, path


def test_the_demo_programme_comes_back_unchanged(admin):
    from registration.demo import demo_programme_csv
    from registration.programme import apply_programme

    rows, problems = parse_programme(demo_programme_csv(2025))
    assert rows and not problems
    apply_programme(rows, NOW)
    db.session.commit()
    before = snapshot()

    page = upload(admin, download(admin)).get_data(as_text=True)

    assert "No changes: every session in this file is as stored." in page
    assert f"{len(rows)} sessions unchanged." in page
    assert snapshot() == before
