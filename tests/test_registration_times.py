"""Times in words: Babel's patterns and zone names, the words between them in each language,
and what the `<time>` element hands the browser's script."""

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from flask_babel import force_locale

from registration import times
from tests.conftest import NOW, base_config, make_app, make_event


@pytest.fixture(scope="module")
def quiet_app(tmp_path_factory):
    """An app for formatting only: its catalogues, no database."""
    return make_app(base_config("sqlite://", tmp_path_factory.mktemp("times")))


@pytest.fixture
def in_app(quiet_app):
    with quiet_app.test_request_context("/"):
        yield quiet_app


def at(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def when(start: datetime, minutes: int, tz: str, language: str) -> str:
    return times.format_when(start, start + timedelta(minutes=minutes), tz, language)


def test_a_session_on_one_day_in_english_and_japanese(in_app):
    start = at(2027, 7, 14, 1, 0)
    assert when(start, 90, "Asia/Tokyo", "en") == \
        "Wednesday 14 July 2027, 10:00–11:30 Japan Standard Time"
    assert when(start, 90, "Asia/Tokyo", "ja") == "2027年7月14日(水) 10:00〜11:30 日本標準時"
    assert when(start, 90, "Europe/Berlin", "ja") == \
        "2027年7月14日(水) 3:00〜4:30 中央ヨーロッパ夏時間"


def test_an_end_on_the_next_day_is_marked(in_app):
    start = at(2027, 7, 14, 14, 0)
    assert when(start, 90, "Asia/Tokyo", "en") == \
        "Wednesday 14 July 2027, 23:00–00:30 (+1 day) Japan Standard Time"
    assert when(start, 90, "Asia/Tokyo", "ja") == "2027年7月14日(水) 23:00〜翌0:30 日本標準時"
    # The same session ends on its own day where it is earlier.
    assert when(start, 90, "Europe/Berlin", "en") == \
        "Wednesday 14 July 2027, 16:00–17:30 Central European Summer Time"


def test_an_end_days_later_gives_its_full_date(in_app):
    start = at(2027, 7, 14, 14, 0)
    assert when(start, 2 * 24 * 60, "Asia/Tokyo", "en") == (
        "Wednesday 14 July 2027, 23:00 – Friday 16 July 2027, 23:00 Japan Standard Time")
    assert when(start, 2 * 24 * 60, "Asia/Tokyo", "ja") == \
        "2027年7月14日(水) 23:00〜2027年7月16日(金) 23:00 日本標準時"


def test_a_session_without_an_end_shows_its_start(in_app):
    assert times.format_when(at(2027, 7, 14, 1, 0), None, "Asia/Tokyo", "ja") == \
        "2027年7月14日(水) 10:00 日本標準時"


def test_zones_with_half_and_three_quarter_hour_offsets(in_app):
    start = at(2027, 8, 11, 9, 0)
    assert when(start, 150, "Asia/Kolkata", "en") == \
        "Wednesday 11 August 2027, 14:30–17:00 India Standard Time"
    assert when(start, 150, "Asia/Kolkata", "ja") == "2027年8月11日(水) 14:30〜17:00 インド標準時"
    assert when(start, 30, "Asia/Kathmandu", "en") == \
        "Wednesday 11 August 2027, 14:45–15:15 Nepal Time"
    # The old name of Kolkata reads the same: no raw zone ID.
    assert when(at(2027, 8, 11, 18, 0), 60, "Asia/Calcutta", "en") == \
        "Wednesday 11 August 2027, 23:30–00:30 (+1 day) India Standard Time"


def test_the_clock_change_shows_the_wall_clock_and_the_name_of_the_season(in_app):
    # Berlin springs forward at 01:00 UTC on 29 March 2026: 01:30 CET, then 04:30 CEST.
    assert when(at(2026, 3, 29, 0, 30), 120, "Europe/Berlin", "en") == \
        "Sunday 29 March 2026, 01:30–04:30 Central European Standard Time"
    assert when(at(2026, 3, 29, 10, 0), 90, "Europe/Berlin", "en") == \
        "Sunday 29 March 2026, 12:00–13:30 Central European Summer Time"
    assert when(at(2026, 3, 29, 10, 0), 90, "Europe/Berlin", "ja") == \
        "2026年3月29日(日) 12:00〜13:30 中央ヨーロッパ夏時間"
    # New York moves on 8 March 2026: the same UTC hour is 08:00 before and 09:00 after.
    assert when(at(2026, 3, 7, 13, 0), 60, "America/New_York", "en") == \
        "Saturday 7 March 2026, 08:00–09:00 Eastern Standard Time"
    assert when(at(2026, 3, 9, 13, 0), 60, "America/New_York", "en") == \
        "Monday 9 March 2026, 09:00–10:00 Eastern Daylight Time"


def test_no_language_means_the_page_or_the_email_being_written(quiet_app):
    start = at(2027, 7, 14, 1, 0)
    with quiet_app.test_request_context("/?lang=ja"):
        assert times.format_when(start, None, "Asia/Tokyo") == "2027年7月14日(水) 10:00 日本標準時"
        assert times.format_when(start, None, "Asia/Tokyo", "en") == \
            "Wednesday 14 July 2027, 10:00 Japan Standard Time"
    # An email is rendered outside any request, inside force_locale.
    with quiet_app.app_context(), force_locale("ja"):
        assert times.format_when(start, None, "Asia/Tokyo") == "2027年7月14日(水) 10:00 日本標準時"
    with quiet_app.app_context(), force_locale("en"):
        assert times.format_when(start, None, "Asia/Tokyo") == \
            "Wednesday 14 July 2027, 10:00 Japan Standard Time"


def test_an_unknown_language_or_zone_falls_back_to_english_and_utc(in_app):
    assert times.format_when(at(2027, 7, 14, 1, 0), None, "Mars/Olympus", "fr") == \
        "Wednesday 14 July 2027, 01:00 Coordinated Universal Time"


def test_month_headings_in_both_languages_and_in_the_zone(in_app):
    late_july = at(2027, 7, 31, 23, 30)
    assert times.format_month(late_july, "Europe/London", "en") == "August 2027"
    assert times.format_month(late_july, "America/New_York", "en") == "July 2027"
    assert times.format_month(late_july, "Asia/Tokyo", "ja") == "2027年8月"
    assert times.format_month(late_july, "UTC", "ja") == "2027年7月"


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_zone_is_named_in_words_never_by_its_id(in_app, language):
    looks_like_an_id = []
    for name in sorted(times.zone_names()):
        for moment in (at(2027, 1, 14, 12, 0), at(2027, 7, 14, 12, 0)):
            words = times.zone_words(moment, name, language)
            place = times.city(moment, name, language)
            for text in (words, place, times.format_when(moment, None, name, language)):
                if "/" in text or "_" in text or name in (words, place):
                    looks_like_an_id.append((name, text))
    assert not looks_like_an_id


def test_a_zone_that_names_no_place_is_given_by_its_offset(in_app):
    # CLDR calls Etc/GMT+5 "GMT+5" as a city; it is five hours behind GMT.
    assert times.city(at(2027, 7, 14), "Etc/GMT+5", "en") == "GMT-05:00"
    assert times.city(at(2027, 7, 14), "EST5EDT", "ja") == "GMT-04:00"
    assert times.city(at(2027, 7, 14), "Europe/Berlin", "ja") == "ベルリン"
    assert times.city(at(2027, 7, 14), "Asia/Calcutta", "en") == "Kolkata"


class TimeElements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag == "time":
            self.found.append(dict(attrs))


def time_elements(page: str) -> list[dict]:
    parser = TimeElements()
    parser.feed(page)
    return parser.found


def test_the_time_element_hands_the_browser_the_zone_patterns_and_words_of_the_page(client):
    event = make_event(starts_at=at(2025, 7, 1, 12, 0), timezone="Europe/Berlin", language="en")
    page = client.get(f"/events/{event.slug}?lang=ja").get_data(as_text=True)
    assert "2025年7月1日(火) 14:00〜15:30 中央ヨーロッパ夏時間" in page
    [element] = time_elements(page.split('<main', 1)[1])
    assert element["datetime"] == "2025-07-01T12:00:00Z"
    assert element["data-ends"] == "2025-07-01T13:30:00Z"
    # The time is in the page's language, inside a session written in English.
    assert element["lang"] == "ja"
    assert element["data-zone"] == "Europe/Berlin"
    assert element["data-city"] == "ベルリン"
    assert json.loads(element["data-patterns"])["date"] == "y年M月d日(E)"
    words = json.loads(element["data-words"])
    assert words["next_day"] == "%(start)s〜翌%(end)s"
    assert words["yours"] == "%(when)s（現在地の時刻）"
    assert words["there"] == "%(city)s時間 %(when)s"

    english = time_elements(client.get(f"/events/{event.slug}?lang=en").get_data(as_text=True))
    assert english[0]["data-city"] == "Berlin"
    assert json.loads(english[0]["data-words"])["there"] == "%(when)s in %(city)s"


def test_programme_months_are_headed_in_the_page_language(client):
    make_event(slug="july-one", title="July one", starts_at=NOW + timedelta(days=15))
    make_event(slug="august-one", title="August one", starts_at=NOW + timedelta(days=50))
    page = client.get("/?lang=ja").get_data(as_text=True)
    assert page.index("2025年7月") < page.index("July one") < page.index("2025年8月")
    assert "July 2025" not in page
