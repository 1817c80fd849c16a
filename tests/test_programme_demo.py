"""`flask seed-demo`: a realistic programme for the next July–October forum, loaded through the
importer, that a second run leaves exactly as it was."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from extensions import db
from registration.demo import demo_programme_csv, forum_year
from registration.models import Event, EventKind, Language, Pillar
from registration.programme import parse_programme
from tests.conftest import NOW, make_event

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def events():
    db.session.expire_all()
    return db.session.scalars(sa.select(Event).order_by(Event.starts_at)).all()


def snapshot():
    """Every stored column of every event, to compare before and after."""
    return [{c.key: getattr(e, c.key) for c in Event.__table__.columns} for e in events()]


def test_seed_demo_loads_every_kind_pillar_and_language_in_many_zones(app, runner):
    result = runner.invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    assert "created 12, updated 0, unchanged 0" in result.output
    loaded = events()
    assert len(loaded) == 12
    assert {e.kind for e in loaded} == set(EventKind)
    assert {e.pillar for e in loaded} == set(Pillar)
    assert {e.language for e in loaded} == set(Language)
    assert {"Europe/Berlin", "Asia/Tokyo", "America/New_York", "America/Sao_Paulo",
            "Africa/Nairobi", "Asia/Kolkata"} <= {e.timezone for e in loaded}
    assert any(e.capacity is not None and e.capacity <= 5 for e in loaded)
    assert all(e.join_url.startswith("https://meet.example.org/") for e in loaded)
    assert all(e.status == "scheduled" and e.description for e in loaded)


def test_japanese_demo_sessions_have_japanese_titles_and_descriptions(app, runner):
    runner.invoke(args=["seed-demo"])

    for event in events():
        written_in_japanese = bool(JAPANESE.search(event.title + event.description))
        assert written_in_japanese == (event.language == "ja"), event.slug


def test_demo_sessions_fall_on_working_days_from_july_to_october_in_their_own_zone(app, runner):
    runner.invoke(args=["seed-demo"])

    for event in events():
        local_start = event.starts_at.astimezone(ZoneInfo(event.timezone))
        local_end = event.ends_at.astimezone(ZoneInfo(event.timezone))
        assert local_start.year == NOW.year
        assert 7 <= local_start.month <= 10
        assert local_start.weekday() < 5
        assert 8 <= local_start.hour and local_end.hour <= 20
        assert local_start.date() == local_end.date()


def test_seed_demo_twice_changes_nothing(app, runner):
    runner.invoke(args=["seed-demo"])
    before = snapshot()
    app.config["CLOCK"] = lambda: NOW.replace(hour=18)

    result = runner.invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    assert "created 0, updated 0, unchanged 12" in result.output
    assert snapshot() == before


def test_seed_demo_leaves_an_organisers_cancellation_alone(app, runner):
    runner.invoke(args=["seed-demo"])
    cancelled = events()[0]
    cancelled.status = "cancelled"
    db.session.commit()

    result = runner.invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    assert "unchanged 12" in result.output
    assert [e.status for e in events()].count("cancelled") == 1


def test_seed_demo_if_empty_does_nothing_when_any_event_exists(app, runner):
    make_event()

    result = runner.invoke(args=["seed-demo", "--if-empty"])

    assert result.exit_code == 0, result.output
    assert "already has events" in result.output
    assert [e.slug for e in events()] == ["climate-finance-101"]


def test_seed_demo_if_empty_loads_an_empty_programme(app, runner):
    result = runner.invoke(args=["seed-demo", "--if-empty"])

    assert result.exit_code == 0, result.output
    assert len(events()) == 12


def test_seed_demo_after_october_loads_next_years_forum(app, runner):
    app.config["CLOCK"] = lambda: datetime(2025, 11, 3, 9, 0, tzinfo=UTC)

    result = runner.invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    assert "July–October 2026" in result.output
    assert {e.starts_at.year for e in events()} == {2026}
    assert all(e.slug.endswith("-2026") for e in events())


@pytest.mark.parametrize(
    "now, year",
    [
        (datetime(2025, 1, 10, tzinfo=UTC), 2025),
        (datetime(2025, 6, 20, tzinfo=UTC), 2025),
        (datetime(2025, 8, 15, tzinfo=UTC), 2025),
        (datetime(2025, 10, 31, 23, 0, tzinfo=UTC), 2025),
        (datetime(2025, 11, 1, tzinfo=UTC), 2026),
        (datetime(2025, 12, 31, tzinfo=UTC), 2026),
    ],
)
def test_the_demo_forum_is_this_years_until_october_is_over(now, year):
    assert forum_year(now) == year


@pytest.mark.parametrize("year", [2025, 2026, 2027, 2028, 2032])
def test_the_demo_programme_passes_the_importers_checks_in_any_year(year):
    rows, problems = parse_programme(demo_programme_csv(year))

    assert problems == []
    assert len(rows) == 12
