"""The console's charts: sign-ups over time, the sessions' fill, seat holders by country and by
type of organisation; their numbers and the geometry templates/organisers/_charts.html draws.

Hand-drawn SVG, no library. pygal, the usual Python SVG chart library, writes a <style> element
and <script> tags into every chart (its tooltips), both blocked by our Content-Security-Policy
(no 'unsafe-inline'); matplotlib's SVG styles every element with `style=` attributes and is a
large dependency for a few lines and rectangles. Ours use presentation attributes only."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import sqlalchemy as sa
from babel.dates import format_date
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.ext.compiler import compiles

from extensions import db
from organisers.clock import LANGUAGE
from registration.forms import country_name
from registration.models import AFFILIATIONS, Event, Registration, RegistrationStatus

# The drawing's own units (viewBox); the page scales it to its column (at most 28rem). Narrow
# enough that on a 375 px phone the 13-unit text is still about 12 px.
WIDTH = 360
TOP_SHOWN = 10
DAY_PATTERN = "d MMM y"
AXIS_PATTERN = "d MMM"

# How each kind of change moves the two series: (seat holders, waiting).
REGISTERED, CONFIRMED, LEFT_SEAT, LEFT_QUEUE = range(4)
EFFECT = {REGISTERED: (0, 1), CONFIRMED: (1, -1), LEFT_SEAT: (-1, 0), LEFT_QUEUE: (0, -1)}


class quarter_hour(sa.sql.functions.FunctionElement):  # noqa: N801  (reads as a SQL function)
    """A stored UTC time as the number of whole quarter-hours since 1970."""

    type = sa.Integer()
    inherit_cache = True


@compiles(quarter_hour, "postgresql")
def _postgresql_quarter_hour(element, compiler, **kw):
    # Stored naive in UTC: extract(epoch) reads a timestamp without zone as UTC.
    column = compiler.process(element.clauses, **kw)
    return f"CAST(floor(extract(epoch FROM {column}) / 900) AS INTEGER)"


@compiles(quarter_hour, "sqlite")
def _sqlite_quarter_hour(element, compiler, **kw):
    column = compiler.process(element.clauses, **kw)
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / 900)"


@dataclass(frozen=True)
class Day:
    """The series' values at the end of one day in the organiser's zone."""

    day: date
    seats: int
    waiting: int


def signup_changes(event_id: int | None = None) -> list[tuple[int, int, int]]:
    """(quarter-hour, kind of change, count) for all registrations or one event's, one query."""
    # Every offset from UTC in use since the 1980s is a whole number of quarter-hours (India
    # +05:30, Nepal +05:45), so a quarter-hour of UTC lies within one day wherever the
    # organiser is: grouping by it loses nothing, and returns far fewer rows than people.
    def grouped(column, kind, *where):
        bucket = quarter_hour(column)
        query = (sa.select(bucket, sa.literal_column(str(kind), sa.Integer), sa.func.count())
                 .where(column.is_not(None), *where).group_by(bucket))
        if event_id is not None:
            query = query.where(Registration.event_id == event_id)
        return query

    # The approximation: everyone waits from registered_at until confirmed_at (a direct seat is
    # confirmed the moment it is registered, so it never waits past that quarter-hour), holds
    # a seat from confirmed_at, and leaves whichever series they were in at cancelled_at.
    confirmed = Registration.confirmed_at.is_not(None)
    union = sa.union_all(
        grouped(Registration.registered_at, REGISTERED),
        grouped(Registration.confirmed_at, CONFIRMED),
        grouped(Registration.cancelled_at, LEFT_SEAT, confirmed),
        grouped(Registration.cancelled_at, LEFT_QUEUE, sa.not_(confirmed)),
    )
    return [tuple(row) for row in db.session.execute(union)]


def daily_series(changes, zone: tzinfo, last_day: date) -> list[Day]:
    """Seat holders and waiting at the end of each day in `zone`, first change to `last_day`."""
    deltas: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for bucket, kind, count in changes:
        day = datetime.fromtimestamp(bucket * 900, zone).date()
        seats, waiting = EFFECT[kind]
        deltas[day][0] += seats * count
        deltas[day][1] += waiting * count
    if not deltas:
        return []
    day, last = min(deltas), max(max(deltas), last_day)
    seats = waiting = 0
    series = []
    while day <= last:
        change = deltas.get(day, (0, 0))
        seats, waiting = seats + change[0], waiting + change[1]
        series.append(Day(day, seats, waiting))
        day += timedelta(days=1)
    return series


def _nice_top(value: int) -> tuple[int, int]:
    """A round top for the y axis and its step: at most five gridlines."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor * 4:
                return max(step * factor * 4, step * factor), step * factor
        step *= 10


@dataclass(frozen=True)
class LineChart:
    """Two series over days, with what the SVG needs to draw them."""

    days: list[Day]
    summary: str
    height: int
    seats: list[tuple[float, float]]
    waiting: list[tuple[float, float]]
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str]]
    left: int
    right: int
    bottom: float
    width: int = WIDTH

    @property
    def changed_days(self) -> list[Day]:
        """The days whose numbers differ from the day before, and the last: the table's rows."""
        return [day for i, day in enumerate(self.days)
                if i == 0 or i == len(self.days) - 1
                or (day.seats, day.waiting) != (self.days[i - 1].seats, self.days[i - 1].waiting)]

    @staticmethod
    def day_label(day: date) -> str:
        """A day as the table writes it: '20 Jun 2025'."""
        return _day(day)

    @staticmethod
    def points(points) -> str:
        """An SVG `points` attribute."""
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _day(day: date, pattern: str = DAY_PATTERN) -> str:
    return format_date(day, pattern, locale=LANGUAGE)


def _signup_summary(days: list[Day]) -> str:
    last = days[-1]
    week_ago = days[-8] if len(days) > 7 else Day(last.day, 0, 0)
    change = last.seats - week_ago.seats
    if change > 0:
        trend = _("seat holders up %(num)d in the last 7 days", num=change)
    elif change < 0:
        trend = _("seat holders down %(num)d in the last 7 days", num=-change)
    else:
        trend = _("no change in seat holders in the last 7 days")
    return _("%(seats)d with a seat and %(waiting)d waiting at the end of %(day)s; %(trend)s.",
             seats=last.seats, waiting=last.waiting, day=_day(last.day), trend=trend)


def line_chart(days: list[Day]) -> LineChart | None:
    """The sign-ups chart of these days; None when there is nothing to draw."""
    if not days:
        return None
    height, left, right, top, bottom = 210, 34, WIDTH - 40, 12, 210 - 30
    top_value, step = _nice_top(max(max(d.seats, d.waiting) for d in days) or 1)

    def x(i: int) -> float:
        return left + (right - left) * (i / (len(days) - 1) if len(days) > 1 else 0.5)

    def y(value: int) -> float:
        return bottom - (bottom - top) * value / top_value

    # At most five dates under the axis, evenly spread, the first and last always.
    shown = sorted({round(i * (len(days) - 1) / 4) for i in range(5)})
    return LineChart(
        days=days, summary=_signup_summary(days), height=height, left=left, right=right,
        bottom=bottom,
        seats=[(x(i), y(d.seats)) for i, d in enumerate(days)],
        waiting=[(x(i), y(d.waiting)) for i, d in enumerate(days)],
        y_ticks=[(y(v), v) for v in range(0, top_value + 1, step)],
        x_ticks=[(x(i), _day(days[i].day, AXIS_PATTERN)) for i in shown],
    )


def forum_signups(now: datetime, zone: tzinfo) -> LineChart | None:
    """The whole forum's seat holders and waiting list per day, up to today."""
    return line_chart(daily_series(signup_changes(), zone, now.astimezone(zone).date()))


def event_signups(event: Event, now: datetime, zone: tzinfo) -> LineChart | None:
    """One session's seat holders and waiting list per day, up to today or its end."""
    last_day = min(now, event.ends_at).astimezone(zone).date()
    return line_chart(daily_series(signup_changes(event.id), zone, last_day))


@dataclass(frozen=True)
class Bar:
    """One labelled bar: `share` of the full width (0 to 1); `track` when it has a maximum."""

    label: str
    value: int
    text: str
    share: float
    track: bool = False
    capacity: int | None = None


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, a label above each."""

    bars: list[Bar]
    summary: str
    row: int = 40
    width: int = WIDTH
    bar_width: int = WIDTH - 70

    @property
    def height(self) -> int:
        """The drawing's height: one row per bar."""
        return self.row * len(self.bars) + 4


def _short(label: str, limit: int = 46) -> str:
    return label if len(label) <= limit else label[:limit - 1].rstrip() + "…"


def fill_chart(rows) -> BarChart | None:
    """Seats taken against capacity per session not yet ended; no cap: count and "no limit"."""
    bars = []
    for row in rows:
        event, taken = row.event, row.people["confirmed"]
        if event.is_cancelled:  # no seats to fill any more: its row in the table says so
            continue
        if event.capacity is None:
            bars.append(Bar(_short(event.title), taken, _("%(num)d, no limit", num=taken), 0))
        else:
            share = min(taken / event.capacity, 1) if event.capacity else 1
            bars.append(Bar(_short(event.title), taken,
                            _("%(taken)d of %(capacity)d", taken=taken, capacity=event.capacity),
                            share, track=True, capacity=event.capacity))
    if not bars:
        return None
    full = sum(1 for bar in bars if bar.track and bar.value >= bar.capacity)
    summary = ngettext("%(num)d upcoming or running session",
                       "%(num)d upcoming or running sessions", len(bars))
    summary += "; " + ngettext("%(num)d full.", "%(num)d full.", full)
    return BarChart(bars, summary)


def top_bars(counts: dict[str, int], label, rest_label) -> list[Bar]:
    """The TOP_SHOWN largest counts as bars, largest first, the rest summed in one last bar."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], label(item[0])))
    shown, rest = ranked[:TOP_SHOWN], ranked[TOP_SHOWN:]
    rest_total = sum(count for _key, count in rest)
    # The rest together may outnumber the first: the longest bar of either is the full width.
    largest = max([count for _key, count in shown[:1]] + [rest_total, 1])
    bars = [Bar(_short(label(key)), count, str(count), count / largest) for key, count in shown]
    if rest:
        bars.append(Bar(rest_label(len(rest)), rest_total, str(rest_total),
                        rest_total / largest))
    return bars


def _affiliation_label(key: str) -> str:
    return str(AFFILIATIONS.get(key, key))


def seat_holder_charts(event: Event) -> tuple[BarChart | None, BarChart | None]:
    """The session's seat holders by country and by type of organisation, from one query."""
    by_country: dict[str, int] = defaultdict(int)
    by_type: dict[str, int] = defaultdict(int)
    rows = db.session.execute(
        sa.select(Registration.country, Registration.affiliation, sa.func.count())
        .where(Registration.event_id == event.id,
               Registration.status == RegistrationStatus.CONFIRMED)
        .group_by(Registration.country, Registration.affiliation))
    for country, affiliation, count in rows:
        by_country[country] += count
        by_type[affiliation] += count
    total = sum(by_country.values())
    if not total:
        return None, None
    countries_bars = top_bars(by_country, country_name,
                              lambda n: ngettext("%(num)d other country", "%(num)d other countries",
                                                 n))
    type_bars = top_bars(by_type, _affiliation_label,
                         lambda n: ngettext("%(num)d other type", "%(num)d other types", n))
    first, first_type = countries_bars[0], type_bars[0]
    return (
        BarChart(countries_bars, ngettext(
            "%(num)d country; the most seat holders from %(label)s (%(count)d of %(total)d).",
            "%(num)d countries; the most seat holders from %(label)s (%(count)d of %(total)d).",
            len(by_country), label=first.label, count=first.value, total=total)),
        BarChart(type_bars, _("The most seat holders from %(label)s (%(count)d of %(total)d).",
                              label=first_type.label, count=first_type.value, total=total)),
    )


def event_charts(event: Event, now: datetime, zone: tzinfo) -> dict:
    """The session page's charts, as template variables."""
    by_country, by_type = seat_holder_charts(event)
    return {"signups": event_signups(event, now, zone), "by_country": by_country,
            "by_type": by_type}


def dashboard_charts(upcoming, now: datetime, zone: tzinfo) -> dict:
    """The dashboard's charts, as template variables: the forum's sign-ups, the sessions' fill."""
    return {"signups": forum_signups(now, zone), "fill": fill_chart(upcoming)}
