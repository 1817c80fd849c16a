"""The console's charts: sign-ups per day in the organiser's zone, the sessions' fill, a
session's seat holders by country and by type, drawn as inline SVG the CSP lets through."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from extensions import db
from organisers import charts
from organisers.charts import Day
from tests.conftest import NOW, make_event, make_registration

UTC_ZONE = ZoneInfo("UTC")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment in June 2025, in UTC."""
    return datetime(2025, 6, day, hour, minute, second, tzinfo=UTC)


def person(event, n, *, registered, confirmed=None, cancelled=None, status=None, **fields):
    """A registration with its own address, its status following its times unless given."""
    if status is None:
        status = ("cancelled" if cancelled else "confirmed" if confirmed else "waitlisted")
    return make_registration(event, email=f"p{n}@example.org", status=status,
                             registered_at=registered, confirmed_at=confirmed,
                             cancelled_at=cancelled, **fields)


def chart_markup(page: str) -> str:
    match = re.search(r'<section class="charts".*?</section>', page, re.S)
    assert match, "no charts on the page"
    return match.group(0)


def figure(page: str, chart_id: str) -> str:
    match = re.search(rf'<figure class="chart" id="{chart_id}">.*?</figure>', page, re.S)
    assert match, f"no figure {chart_id}"
    return match.group(0)


def table_rows(markup: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", markup, re.S).group(1)
    return [re.findall(r"<td[^>]*>([^<]*)</td>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def busy_session():
    """Cap 1. Day 16: A takes the seat, B waits. Day 17: C and D wait. Day 18: A cancels and B
    is promoted. Day 19: D leaves the queue."""
    event = make_event(slug="busy", capacity=1)
    person(event, 1, registered=at(16, 10), confirmed=at(16, 10), cancelled=at(18, 8))
    person(event, 2, registered=at(16, 12), confirmed=at(18, 8, 0, 1))
    person(event, 3, registered=at(17, 9))
    person(event, 4, registered=at(17, 11), cancelled=at(19, 15))
    db.session.commit()
    return event


def test_series_follows_sign_ups_a_cancellation_and_a_promotion_day_by_day(app):
    event = busy_session()

    series = charts.daily_series(charts.signup_changes(event.id), UTC_ZONE, NOW.date())

    assert series == [Day(NOW.date().replace(day=16), 1, 1), Day(NOW.date().replace(day=17), 1, 3),
                      Day(NOW.date().replace(day=18), 1, 2), Day(NOW.date().replace(day=19), 1, 1),
                      Day(NOW.date(), 1, 1)]


def test_forum_series_counts_every_session_and_one_session_only_its_own(app):
    event = busy_session()
    other = make_event(slug="other")
    person(other, 9, registered=at(17, 10), confirmed=at(17, 10))
    db.session.commit()

    forum = charts.daily_series(charts.signup_changes(), UTC_ZONE, NOW.date())
    own = charts.daily_series(charts.signup_changes(event.id), UTC_ZONE, NOW.date())

    assert [(d.seats, d.waiting) for d in forum] == [(1, 1), (2, 3), (2, 2), (2, 1), (2, 1)]
    assert [(d.seats, d.waiting) for d in own] == [(1, 1), (1, 3), (1, 2), (1, 1), (1, 1)]


def test_a_day_ends_at_midnight_in_the_organisers_zone(app):
    event = make_event()
    # 23:30 UTC on the 17th is 08:30 on the 18th in Tokyo.
    person(event, 1, registered=at(17, 23, 30), confirmed=at(17, 23, 30))
    # Kathmandu is UTC+05:45: its midnight is 18:15 UTC, a second either side.
    person(event, 2, registered=at(18, 18, 14, 59), confirmed=at(18, 18, 14, 59))
    person(event, 3, registered=at(18, 18, 15), confirmed=at(18, 18, 15))
    db.session.commit()
    changes = charts.signup_changes(event.id)

    def per_day(zone):
        return {d.day.day: d.seats for d in charts.daily_series(changes, ZoneInfo(zone),
                                                                NOW.date().replace(day=19))}

    assert per_day("UTC") == {17: 1, 18: 3, 19: 3}
    assert per_day("Asia/Tokyo") == {18: 1, 19: 3}
    assert per_day("Asia/Kathmandu") == {18: 2, 19: 3}


def test_session_page_draws_its_sign_ups_in_the_organisers_zone(admin, organiser):
    organiser.timezone = "Asia/Tokyo"
    db.session.commit()
    event = busy_session()
    person(event, 5, registered=at(19, 23, 30))  # the 20th in Tokyo
    db.session.commit()

    page = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)
    signups = figure(page, "chart-signups")

    assert table_rows(signups) == [["16 Jun 2025", "1", "1"], ["17 Jun 2025", "1", "3"],
                                   ["18 Jun 2025", "1", "2"], ["20 Jun 2025", "1", "2"]]
    assert ('<svg role="img" aria-labelledby="chart-signups-title chart-signups-summary"'
            in signups)
    assert re.search(r'id="chart-signups-summary">1 with a seat and 2 waiting at the end of '
                     r"20 Jun 2025; seat holders up 1 in the last 7 days\.<", signups)
    assert signups.count("<polyline") == 2
    assert "With a seat (solid line)" in signups and "Waiting (dashed line)" in signups


def test_dashboard_shows_the_forums_sign_ups_and_each_upcoming_sessions_fill(admin):
    capped = make_event(slug="capped", title="Capped session", capacity=20)
    open_ = make_event(slug="open", title="Open session", starts_at=NOW + timedelta(days=40))
    full = make_event(slug="full", title="Full session", capacity=2,
                      starts_at=NOW + timedelta(days=50))
    past = make_event(slug="past", title="Past session", capacity=5,
                      starts_at=NOW - timedelta(days=3))
    n = 0
    for event, seats in ((capped, 5), (open_, 3), (full, 2), (past, 4)):
        for _ in range(seats):
            n += 1
            person(event, n, registered=at(18, 9), confirmed=at(18, 9))
    person(full, 99, registered=at(19, 9))
    db.session.commit()

    page = admin.get("/admin/").get_data(as_text=True)
    fill = figure(page, "chart-fill")

    assert table_rows(fill) == [["Capped session", "5 of 20"], ["Open session", "3, no limit"],
                                ["Full session", "2 of 2"]]
    # Capped: a quarter of the bar; full: all of it; no limit: no bar, only the words.
    assert re.findall(r'<rect x="0" y="\d+" width="([\d.]+)" height="14" fill="#0a6e4f"', fill) \
        == ["72.5", "290.0"]
    assert "3 upcoming or running sessions; 1 full." in fill
    signups = figure(page, "chart-forum-signups")
    assert table_rows(signups) == [["18 Jun 2025", "14", "0"], ["19 Jun 2025", "14", "1"],
                                   ["20 Jun 2025", "14", "1"]]


def test_seat_holders_by_country_show_the_top_ten_and_the_rest_together(admin):
    event = make_event()
    codes = ["JP"] * 5 + ["DE"] * 3 + ["FR", "GB", "US", "KE", "BR", "IN", "ID", "MX", "NG",
                                         "PH", "VN"]
    for n, code in enumerate(codes):
        person(event, n, registered=at(18, 9), confirmed=at(18, 9), country=code,
               affiliation="ngo" if n % 3 else "academia")
    # Waiting and cancelled people have no seat: not counted.
    person(event, 50, registered=at(18, 9), country="CA")
    person(event, 51, registered=at(18, 9), confirmed=at(18, 9), cancelled=at(19, 9),
           country="CA")
    db.session.commit()

    page = admin.get(f"/admin/events/{event.slug}").get_data(as_text=True)

    by_country = table_rows(figure(page, "chart-countries"))
    assert by_country[:3] == [["Japan", "5"], ["Germany", "3"], ["Brazil", "1"]]
    assert len(by_country) == 11
    assert by_country[-1] == ["3 other countries", "3"]
    assert sum(int(count) for _label, count in by_country) == len(codes)
    assert "Canada" not in page.split('id="chart-countries"')[1].split("</figure>")[0]
    assert table_rows(figure(page, "chart-types")) == [["NGO or civil society", "12"],
                                                      ["Academia or research", "7"]]
    assert "the most seat holders from Japan (5 of 19)" in figure(page, "chart-countries")


def test_top_bars_measure_every_bar_against_the_longest(app):
    counts = {f"c{i}": 1 for i in range(15)} | {"big": 3}

    bars = charts.top_bars(counts, str, lambda n: f"{n} others")

    assert [(bar.label, bar.value) for bar in bars][:2] == [("big", 3), ("c0", 1)]
    assert (bars[-1].label, bars[-1].value) == ("6 others", 6)
    assert bars[-1].share == 1 and bars[0].share == 0.5


def test_chart_markup_is_svg_images_with_no_style_or_script(admin):
    event = busy_session()
    person(event, 5, registered=at(19, 9), confirmed=at(19, 9), country="DE")
    db.session.commit()

    for path in (f"/admin/events/{event.slug}", "/admin/"):
        markup = chart_markup(admin.get(path).get_data(as_text=True))
        assert markup.count('role="img"') >= 2
        assert "style=" not in markup and "<style" not in markup
        assert "<script" not in markup
        assert not re.search(r"<[^>]+\son\w+=", markup)
        assert markup.count("<table>") == markup.count('role="img"')
        assert "Show the numbers" in markup
        for labelled in re.findall(r'aria-labelledby="([^"]+)"', markup):
            for target in labelled.split():
                assert f'id="{target}"' in markup


def test_a_session_nobody_signed_up_for_shows_sentences_instead_of_charts(admin):
    event = make_event()

    markup = chart_markup(admin.get(f"/admin/events/{event.slug}").get_data(as_text=True))

    assert "<svg" not in markup and "<table" not in markup
    assert "Nobody has signed up yet: the chart appears with the first sign-up." in markup
    assert markup.count("Nobody has a seat yet.") == 2
