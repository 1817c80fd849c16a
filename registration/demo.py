"""The demo programme: a dozen sessions of a July–October city-climate forum, as a programme CSV
that goes through the same checks and import as an organiser's file."""

import calendar
import csv
import io
from datetime import date, datetime, time

MON, TUE, WED, THU = range(4)

# (slug, pillar, kind, language, zone, (month, nth weekday, weekday), start, end, capacity,
#  title, description). Every kind, pillar and language; cities' own zones; one tiny training.
SESSIONS = (
    (
        "cop-outcomes-briefing", "reflect", "webinar", "en", "Europe/Berlin",
        (7, 1, TUE), time(14, 0), time(15, 30), None,
        "From COP to city hall: what the last climate summit means for local leaders",
        "Mayors and councillors who attended the last UN climate conference share what was "
        "agreed, what it changes for local climate action, and their priorities for the year "
        "ahead.\nThere is time for your questions.",
    ),
    (
        "cop-outcomes-ja", "reflect", "webinar", "ja", "Asia/Tokyo",
        (7, 2, WED), time(15, 0), time(16, 30), None,
        "COPの成果を地域の行動へ：首長が語る次の一歩",
        "前回の国連気候変動枠組条約締約国会議（COP）に参加した自治体の首長が、合意の内容と"
        "地域の気候変動対策への影響、今年の優先課題を共有します。\n質疑応答の時間もあります。",
    ),
    (
        "town-hall-cops", "reflect", "dialogue", "en", "America/New_York",
        (7, 3, THU), time(10, 0), time(11, 30), None,
        "Town Hall COPs: bringing local voices into the climate negotiations",
        "An open dialogue on how cities and regions have run Town Hall COPs to feed local "
        "priorities into national positions, and what the mid-year UN climate talks in Bonn "
        "mean for multilevel action.",
    ),
    (
        "heat-action-plans", "exchange", "workshop", "en", "Africa/Nairobi",
        (8, 1, TUE), time(11, 0), time(13, 0), 40,
        "Heat action plans that work: cases from African cities",
        "A hands-on workshop: map heat risk in your city, choose early warnings and cooling "
        "spaces, and learn from cities that have already been through a heat season with a "
        "plan.\nBring a rough map of your city.",
    ),
    (
        "ghg-inventory-training", "exchange", "training", "en", "Asia/Kolkata",
        (8, 2, WED), time(14, 30), time(17, 0), 5,
        "Your city's first greenhouse gas inventory: a step-by-step training",
        "A small-group technical training for inventory compilers: boundaries, activity data, "
        "emission factors and reporting under the Global Protocol for Community-Scale "
        "Greenhouse Gas Inventories (GPC).\nFive seats, so that everyone works on their own "
        "city's data.",
    ),
    (
        "local-energy-workshop-ja", "exchange", "workshop", "ja", "Asia/Tokyo",
        (8, 3, THU), time(14, 0), time(16, 0), 30,
        "地域エネルギー事業の始め方：脱炭素先行地域の事例に学ぶワークショップ",
        "脱炭素先行地域に選ばれた自治体の担当者とともに、地域新電力の設立や公共施設への太陽光発電の"
        "導入など、地域エネルギー事業を立ち上げる手順をグループワークで学びます。",
    ),
    (
        "nature-based-flooding", "exchange", "webinar", "en", "America/Sao_Paulo",
        (9, 1, TUE), time(10, 0), time(11, 30), None,
        "Nature-based solutions for urban flooding: lessons from Latin America",
        "Sponge parks, restored wetlands and green corridors: city engineers from Latin "
        "America show what worked, what it cost and how they convinced their finance "
        "departments.",
    ),
    (
        "adaptation-planning-ja", "exchange", "training", "ja", "Asia/Tokyo",
        (9, 2, WED), time(13, 30), time(16, 30), None,
        "気候変動適応計画の策定研修：リスク評価から施策の優先順位づけまで",
        "地域気候変動適応計画を担当する職員向けの技術研修です。気候リスクの評価、関係部署との連携、"
        "施策の優先順位づけを、演習を交えて学びます。",
    ),
    (
        "ndc-multilevel-action", "advocate", "webinar", "en", "America/New_York",
        (9, 3, THU), time(9, 0), time(10, 30), None,
        "Stronger national climate plans through multilevel action",
        "How national governments and cities can write the next national climate plans "
        "(NDCs) together, with lessons from countries that have joined the Coalition for High "
        "Ambition Multilevel Partnerships (CHAMP).",
    ),
    (
        "champ-dialogue", "advocate", "dialogue", "en", "Europe/Berlin",
        (10, 1, TUE), time(13, 0), time(14, 30), None,
        "CHAMP in practice: a dialogue between national and local governments",
        "Ministries and city governments compare notes on planning together: shared targets, "
        "shared data, and climate finance that reaches local projects.",
    ),
    (
        "urban-october-storytelling", "advocate", "workshop", "en", "Asia/Manila",
        (10, 2, WED), time(14, 0), time(16, 0), 25,
        "Urban October: telling your city's climate story",
        "A practical workshop for communication officers: turn your city's climate data into "
        "a story that national delegates and residents remember, ahead of the UN climate "
        "conference in November.",
    ),
    (
        "urban-october-ja", "advocate", "webinar", "ja", "Asia/Tokyo",
        (10, 3, THU), time(18, 0), time(19, 0), None,
        "アーバン・オクトーバー：自治体の声を国際交渉に届けるには",
        "11月の国連気候変動会議（COP）に向けて、自治体の取り組みと要望を国や国際社会に伝える方法を、"
        "国内外の事例から考えます。",
    ),
)

# The demo sessions' location, written in each session's own language (it is the session's
# text, shown as typed, not a word of the site).
ONLINE = {"en": "Online", "ja": "オンライン"}

COLUMNS = (
    "slug", "title", "kind", "pillar", "starts_at", "ends_at", "timezone", "capacity",
    "language", "join_url", "location", "description",
)


def forum_year(now: datetime) -> int:
    """The year of the next July–October forum: this year until October is over, then the next."""
    return now.year if now.month <= 10 else now.year + 1


def demo_programme_csv(year: int) -> bytes:
    """The demo programme for July–October of the year, as a programme CSV file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for (slug, pillar, kind, language, zone, (month, nth, weekday), start, end, capacity,
         title, description) in SESSIONS:
        day = _nth_weekday(year, month, nth, weekday)
        writer.writerow((
            f"{slug}-{year}",
            title,
            kind,
            pillar,
            datetime.combine(day, start).isoformat(timespec="minutes"),
            datetime.combine(day, end).isoformat(timespec="minutes"),
            zone,
            "" if capacity is None else capacity,
            language,
            f"https://meet.example.org/forum-{year}/{slug}",
            ONLINE[language],
            description,
        ))
    return buffer.getvalue().encode("utf-8")


def _nth_weekday(year: int, month: int, nth: int, weekday: int) -> date:
    """The nth Monday (Tuesday…) of the month: sessions fall on working days every year."""
    offset = (weekday - calendar.weekday(year, month, 1)) % 7
    return date(year, month, 1 + offset + 7 * (nth - 1))
