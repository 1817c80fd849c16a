"""Uploading a programme CSV in the console: a preview of what it would create, change,
reschedule and cancel (and whom it would tell), applied only once confirmed and checked again;
bad, foreign or oversized files refused with nothing changed."""

import io
import random
import re
import string
from datetime import timedelta

import pytest
import sqlalchemy as sa

from extensions import db
from notifications.models import Message
from organisers.models import AuditEntry
from registration.models import Event
from tests.conftest import NOW, make_event, make_registration, page_csrf
from tests.test_organisers_dashboard import make_message

# make_event()'s default start, a month after NOW, on Berlin's wall clock.
SAME_TIME = "2025-07-20T11:00,2025-07-20T12:30,Europe/Berlin"
HEADER = "slug,title,starts_at,ends_at,timezone,status"


def upload(client, data: bytes, filename="programme.csv", token=None, **fields):
    token = token or page_csrf(client, "/admin/programme")
    return client.post("/admin/programme", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(data), filename),
                             **fields})


def preview_token(page: str) -> str:
    return re.search(r'name="upload" value="([^"]+)"', page).group(1)


def apply(client, upload_token):
    csrf = page_csrf(client, "/admin/programme")
    return client.post("/admin/programme/apply",
                       data={"csrf_token": csrf, "upload": upload_token})


def section(page: str, caption: str) -> str:
    """The rows of the preview's table with this caption."""
    match = re.search(rf"<caption>{re.escape(caption)}[^<]*</caption>(.*?)</table>", page, re.S)
    assert match, f"no table {caption!r}"
    return match.group(1)


def slugs_in(page: str, caption: str) -> list[str]:
    return re.findall(r'<tr id="plan-([a-z0-9-]+)"', section(page, caption))


def people(event, confirmed=0, waitlisted=0):
    for i in range(confirmed):
        make_registration(event, email=f"{event.slug}-seat{i}@example.org")
    for i in range(waitlisted):
        make_registration(event, email=f"{event.slug}-wait{i}@example.org",
                          status="waitlisted", confirmed_at=None)
    event.confirmed_count = confirmed
    db.session.commit()


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def audit_actions() -> list[str]:
    return [entry.action for entry in db.session.scalars(
        sa.select(AuditEntry).order_by(AuditEntry.id)) if entry.action != "signed in"]


@pytest.fixture
def programme(admin):
    """Four stored events with registrants, and a file that touches each differently."""
    people(make_event(slug="resched"), confirmed=2, waitlisted=1)
    people(make_event(slug="retitle"), confirmed=1, waitlisted=1)
    people(make_event(slug="called-off"), confirmed=2)
    people(make_event(slug="same"), confirmed=1)
    text = "\n".join([
        HEADER,
        "fresh,Fresh session,2025-08-01T10:00,2025-08-01T11:00,Europe/Berlin,scheduled",
        "resched,Climate finance 101,2025-07-21T11:00,2025-07-21T12:30,Europe/Berlin,scheduled",
        f"retitle,A better title,{SAME_TIME},scheduled",
        f"called-off,Climate finance 101,{SAME_TIME},cancelled",
        f"same,Climate finance 101,{SAME_TIME},scheduled",
    ]) + "\n"
    return text.encode()


def test_the_preview_lists_what_the_file_would_do_and_whom_it_would_tell(admin, programme):
    response = upload(admin, programme)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert slugs_in(page, "To create") == ["fresh"]
    assert slugs_in(page, "To reschedule") == ["resched"]
    assert slugs_in(page, "To cancel") == ["called-off"]
    assert slugs_in(page, "To change") == ["retitle"]
    assert "1 session unchanged." in page and 'id="plan-same"' not in page
    # A reschedule tells seats and waiting list, a new title the seats, a cancellation everyone.
    assert dict(re.findall(r'data-told="([a-z-]+)" data-count="(\d+)"', page)) == {
        "resched": "3", "called-off": "2", "retitle": "1"}
    assert "6 registrants would be told by email." in page
    # Nothing is applied by a preview.
    assert count(Event) == 4 and count(Message) == 0
    assert db.session.scalar(sa.select(Event.title).where(Event.slug == "retitle")) == (
        "Climate finance 101")
    assert audit_actions() == ["programme previewed"]


def test_confirming_the_preview_applies_the_file_and_tells_whom_the_preview_said(admin,
                                                                               programme):
    token = preview_token(upload(admin, programme).get_data(as_text=True))

    response = apply(admin, token)

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/")
    db.session.expire_all()
    events = {event.slug: event for event in db.session.scalars(sa.select(Event))}
    assert set(events) == {"fresh", "resched", "retitle", "called-off", "same"}
    assert events["called-off"].status == "cancelled"
    assert events["retitle"].title == "A better title"
    told = db.session.execute(sa.select(Message.kind, sa.func.count())
                              .where(Message.kind.in_(("update", "cancellation")))
                              .group_by(Message.kind)).all()
    assert dict(told) == {"update": 4, "cancellation": 2}
    assert audit_actions() == ["programme previewed", "programme uploaded"]
    detail = db.session.scalars(sa.select(AuditEntry.detail)
                                .where(AuditEntry.action == "programme uploaded")).one()
    assert (detail["created"], detail["notified"]) == (["fresh"], 6)
    page = admin.get("/admin/").get_data(as_text=True)
    assert "Programme programme.csv applied: created 1, updated 3, unchanged 1" in page


def test_the_preview_counts_seats_given_and_recordings_sent_as_applying_does(admin):
    bigger = make_event(slug="bigger", capacity=1)
    people(bigger, confirmed=1, waitlisted=3)
    recorded = make_event(slug="recorded", starts_at=NOW - timedelta(days=2))
    people(recorded, confirmed=3)
    already = db.session.scalars(sa.select(Event).where(Event.slug == "recorded")).one()
    make_message(already.registrations[0], "sent", kind="follow_up")
    db.session.commit()
    text = (
        b"slug,title,starts_at,ends_at,timezone,capacity,recording_url\n"
        b"bigger,Climate finance 101,2025-07-20T11:00,2025-07-20T12:30,Europe/Berlin,3,\n"
        b"recorded,Climate finance 101,2025-06-18T11:00,2025-06-18T12:30,Europe/Berlin,,"
        b"https://video.example.org/r/1\n"
    )

    page = upload(admin, text).get_data(as_text=True)

    assert "2 would move from a waiting list to a seat." in page
    assert "2 would get the recording link." in page
    assert apply(admin, preview_token(page)).status_code == 303
    kinds = dict(db.session.execute(
        sa.select(Message.kind, sa.func.count()).where(Message.status == "pending")
        .group_by(Message.kind)).all())
    assert kinds["promotion"] == 2
    assert kinds["follow_up"] == 2


def test_a_bad_file_shows_every_problem_with_its_line_and_changes_nothing(admin):
    make_event(slug="kept")
    text = (
        b"slug,title,starts_at,ends_at,capacity\n"
        b"Bad Slug,Title,2025-07-07T14:00,2025-07-07T15:00,10\n"
        b"ok-one,,2025-07-07T14:00,2025-07-07,ten\n"
    )

    response = upload(admin, text)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    problems = re.findall(r"<li><strong>Line (\d+)</strong>: ([^<]+)</li>", page)
    assert [line for line, _ in problems] == ["2", "3", "3", "3"]
    assert "must be lowercase letters" in problems[0][1]
    assert any("title is empty" in message for _, message in problems)
    assert any("has a date but no time" in message for _, message in problems)
    assert any("capacity must be a whole number" in message for _, message in problems)
    assert "Nothing was changed: 4 problems in programme.csv" in page
    assert 'name="upload"' not in page  # nothing to confirm
    assert count(Event) == 1


def test_a_change_the_service_refuses_is_shown_with_its_line_and_changes_nothing(admin):
    make_event(slug="soon")
    response = upload(admin, b"slug,title,starts_at,ends_at\n"
                             b"soon,Soon,2025-06-19T10:00,2025-06-19T11:00\n")
    assert response.status_code == 422
    assert "<strong>Line 2</strong>: soon can&#39;t be moved into the past" in (
        response.get_data(as_text=True))


def test_a_capacity_below_the_seats_taken_is_a_problem_unless_the_upload_keeps_them(admin):
    people(make_event(slug="booked", capacity=3), confirmed=2, waitlisted=1)
    text = f"{HEADER},capacity\nbooked,Climate finance 101,{SAME_TIME},scheduled,1\n".encode()

    refused = upload(admin, text)

    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "<strong>Line 2</strong>: capacity 1 is below the 2 seats already taken" in page
    assert 'name="keep_seats"' in page
    assert db.session.scalar(sa.select(Event.capacity)) == 3

    kept = upload(admin, text, keep_seats="y")

    assert kept.status_code == 200
    assert 'id="keep-seats"' in kept.get_data(as_text=True)
    assert db.session.scalar(sa.select(Event.capacity)) == 3  # a preview changes nothing
    assert apply(admin, preview_token(kept.get_data(as_text=True))).status_code == 303
    db.session.expire_all()
    event = db.session.scalar(sa.select(Event))
    assert (event.capacity, event.confirmed_count) == (1, 2)
    assert db.session.scalars(sa.select(Message.kind)).all() == []


def test_a_file_with_more_than_100_problems_shows_100_and_how_many_more(admin):
    rows = "".join(f"Bad Slug {n},Title,2025-07-07T14:00,2025-07-07T15:00\n" for n in range(150))

    response = upload(admin, f"slug,title,starts_at,ends_at\n{rows}".encode())

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert len(re.findall(r"<li><strong>Line \d+</strong>", page)) == 100
    assert '<li id="more-problems">…and 50 more</li>' in page
    assert "Nothing was changed: 150 problems in programme.csv" in page
    assert count(Event) == 0


def test_a_file_over_the_row_limit_is_refused_in_one_line(app, admin):
    app.config["PROGRAMME_MAX_ROWS"] = 3
    rows = "".join(f"event-{n},Event {n},2025-08-0{n}T10:00,2025-08-0{n}T11:00\n"
                   for n in range(1, 5))

    response = upload(admin, f"slug,title,starts_at,ends_at\n{rows}".encode())

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.findall(r"<li><strong>Line (\d+)</strong>: ([^<]+)</li>", page) == [
        ("1", "the file has more than 3 rows of events; a programme is far smaller: is it the "
              "right file? (The limit is the PROGRAMME_MAX_ROWS setting.)")]
    assert count(Event) == 0


@pytest.mark.parametrize(("data", "filename", "words"), [
    pytest.param(b"PK\x03\x04" + bytes(200), "programme.xlsx", "an Excel workbook", id="xlsx"),
    pytest.param(b"PK\x03\x04" + bytes(200), "programme.csv", "an Excel workbook",
                 id="xlsx-renamed"),
    pytest.param(b"%PDF-1.7\n" + bytes(200), "programme.pdf", "a PDF", id="pdf"),
    pytest.param(b"slug,title,starts_at,ends_at\n", "programme.txt", "not a .csv file",
                 id="txt"),
])
def test_a_file_that_is_not_csv_is_refused_with_what_to_do(admin, data, filename, words):
    response = upload(admin, data, filename=filename)
    assert response.status_code == 415
    page = response.get_data(as_text=True)
    assert words in page and "CSV UTF-8" in page
    assert count(Event) == 0


def test_a_file_that_is_not_utf8_is_refused_on_its_line(admin):
    text = "slug,title,starts_at,ends_at\ncafe,Café crème,2025-07-07T14:00,2025-07-07T15:00\n"
    response = upload(admin, text.encode("latin-1"))
    assert response.status_code == 422
    assert "<strong>Line 2</strong>: is not UTF-8 text" in response.get_data(as_text=True)
    assert count(Event) == 0


def test_a_20_mb_upload_answers_413_with_a_clear_message_and_changes_nothing(admin):
    response = upload(admin, b"slug,title\n" + b"x" * (20 * 1024 * 1024))
    assert response.status_code == 413
    assert "larger than 5 MB" in response.get_data(as_text=True)
    assert count(Event) == 0


def test_a_programme_above_the_sign_up_forms_size_limit_previews_and_applies(app, admin):
    rng = random.Random(7)
    rows = [f"event-{n},Event {n},2025-08-{n + 1:02d}T10:00,2025-08-{n + 1:02d}T11:00,"
            + "".join(rng.choices(string.ascii_letters, k=9000)) for n in range(20)]
    data = ("slug,title,starts_at,ends_at,description\n" + "\n".join(rows) + "\n").encode()
    assert len(data) > 2 * app.config["MAX_CONTENT_LENGTH"]

    page = upload(admin, data).get_data(as_text=True)
    token = preview_token(page)
    assert len(token) > app.config["MAX_CONTENT_LENGTH"]  # the confirmation is large too
    assert apply(admin, token).status_code == 303
    assert count(Event) == 20


def test_an_upload_without_a_file_is_refused(admin):
    token = page_csrf(admin, "/admin/programme")
    response = admin.post("/admin/programme", data={"csrf_token": token},
                          content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose the programme" in response.get_data(as_text=True)


def test_upload_and_apply_without_the_csrf_token_answer_400_and_change_nothing(admin,
                                                                             programme):
    response = admin.post("/admin/programme", content_type="multipart/form-data",
                          data={"file": (io.BytesIO(programme), "programme.csv")})
    assert response.status_code == 400
    token = preview_token(upload(admin, programme).get_data(as_text=True))
    assert admin.post("/admin/programme/apply", data={"upload": token}).status_code == 400
    assert count(Event) == 4 and count(Message) == 0


def test_a_tampered_preview_is_refused_and_changes_nothing(admin, programme):
    token = preview_token(upload(admin, programme).get_data(as_text=True))
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = apply(admin, forged)
    assert response.status_code == 400
    assert "not a preview made here" in response.get_data(as_text=True)
    assert count(Event) == 4 and count(Message) == 0


def test_a_preview_older_than_an_hour_must_be_made_again(app, admin, programme):
    token = preview_token(upload(admin, programme).get_data(as_text=True))
    app.config["CLOCK"] = lambda: NOW + timedelta(minutes=50)
    csrf = page_csrf(admin, "/admin/programme")  # the organiser is still at work
    app.config["CLOCK"] = lambda: NOW + timedelta(minutes=61)
    response = admin.post("/admin/programme/apply", data={"csrf_token": csrf, "upload": token})
    assert response.status_code == 400
    assert "more than 60 minutes old" in response.get_data(as_text=True)
    assert count(Event) == 4 and count(Message) == 0


def test_a_programme_changed_since_the_preview_is_previewed_again_not_applied(admin,
                                                                            programme):
    token = preview_token(upload(admin, programme).get_data(as_text=True))
    # Meanwhile someone else gives "retitle" the file's title: the row would now change nothing.
    db.session.scalars(sa.select(Event).where(Event.slug == "retitle")).one().title = (
        "A better title")
    db.session.commit()

    response = apply(admin, token)

    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "The programme changed since your preview" in page
    assert "2 sessions unchanged." in page and 'id="plan-retitle"' not in page
    assert count(Event) == 4 and count(Message) == 0
    assert apply(admin, preview_token(page)).status_code == 303
    assert count(Event) == 5


def test_applying_checks_the_file_again(app, admin):
    make_event(slug="moving")
    later = (NOW + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    end = (NOW + timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M")
    text = f"slug,title,starts_at,ends_at,timezone\nmoving,Moving,{later},{end},UTC\n"
    token = preview_token(upload(admin, text.encode()).get_data(as_text=True))
    app.config["CLOCK"] = lambda: NOW + timedelta(minutes=45)  # the new start has gone by

    response = apply(admin, token)

    assert response.status_code == 422
    assert "<strong>Line 2</strong>: moving can&#39;t be moved into the past" in (
        response.get_data(as_text=True))
    assert db.session.scalars(sa.select(Event.title)).one() == "Climate finance 101"
    assert count(Message) == 0


def test_the_upload_pages_carry_no_inline_script_or_style(admin, programme):
    for response in (admin.get("/admin/programme"), upload(admin, programme),
                     upload(admin, b"slug\n")):
        page = response.get_data(as_text=True)
        assert "style=" not in page and "<style" not in page
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


# --- the preview in words ----------------------------------------------------------------------


def told_in(page: str, slug: str) -> str:
    match = re.search(rf'data-told="{slug}" data-count="\d+">(.*?)</td>', page, re.S)
    assert match, f"no one told for {slug}"
    return match.group(1)


def changes_in(page: str, slug: str) -> list[str]:
    row = re.search(rf'<tr id="plan-{slug}">(.*?)</tr>', page, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", item) for item in re.findall(r"<li>(.*?)</li>", row)]


def test_the_preview_shows_each_change_by_its_label_old_to_new_in_the_sessions_zone(admin):
    tokyo = make_event(slug="tokyo", timezone="Asia/Tokyo", capacity=2,
                       starts_at=NOW + timedelta(days=30, hours=-8))  # 10:00 JST
    people(tokyo, confirmed=2, waitlisted=1)
    people(make_event(slug="retitle"), confirmed=1, waitlisted=1)
    make_event(slug="moved-east")  # 11:00 in Berlin
    text = (
        "slug,title,starts_at,ends_at,timezone,capacity,description\n"
        "tokyo,Climate finance 101,2025-07-20T11:00,2025-07-20T12:30,Asia/Tokyo,2,"
        "How cities fund climate action.\n"
        "retitle,A better title,2025-07-20T11:00,2025-07-20T12:30,Europe/Berlin,,New words\n"
        "moved-east,Climate finance 101,2025-07-21T18:00,2025-07-21T19:30,Asia/Tokyo,,"
        "How cities fund climate action.\n"
    )

    page = upload(admin, text.encode()).get_data(as_text=True)

    assert changes_in(page, "tokyo") == [
        "Start: Sun 20 Jul 2025, 10:00 → 11:00 Japan Standard Time",
        "End: Sun 20 Jul 2025, 11:30 → 12:30 Japan Standard Time",
    ]
    assert changes_in(page, "retitle") == [
        "Title: Climate finance 101 → A better title",
        "Description: How cities fund climate action. → New words",
    ]
    assert changes_in(page, "moved-east") == [
        "Start: Sun 20 Jul 2025, 11:00 Central European Summer Time → "
        "Mon 21 Jul 2025, 18:00 Japan Standard Time",
        "End: Sun 20 Jul 2025, 12:30 Central European Summer Time → "
        "Mon 21 Jul 2025, 19:30 Japan Standard Time",
        "Time zone: Europe/Berlin → Asia/Tokyo",
    ]
    assert "starts_at" not in section(page, "To reschedule")
    # A new time reaches the waiting list too; a new title only the seat holders.
    assert told_in(page, "tokyo") == ("2 seat holders will get an updated invite.<br>"
                                      "1 on the waiting list will get an email with the new "
                                      "time.")
    assert told_in(page, "retitle") == "1 seat holder will get an updated invite."
    assert told_in(page, "moved-east") == "Nobody will be emailed."


def test_the_preview_tells_exactly_whom_applying_emails(admin):
    people(make_event(slug="called-off"), confirmed=2, waitlisted=1)
    people(make_event(slug="moved"), confirmed=3, waitlisted=2)
    people(make_event(slug="bigger", capacity=1), confirmed=1, waitlisted=2)
    text = (
        f"{HEADER},capacity\n"
        f"called-off,Climate finance 101,{SAME_TIME},cancelled,\n"
        "moved,Climate finance 101,2025-07-20T12:00,2025-07-20T13:30,Europe/Berlin,"
        "scheduled,\n"
        f"bigger,Climate finance 101,{SAME_TIME},scheduled,2\n"
    )

    page = upload(admin, text.encode()).get_data(as_text=True)

    assert told_in(page, "called-off") == (
        "2 seat holders will get a cancellation that removes the session from their "
        "calendars.<br>1 on the waiting list will get a cancellation email.")
    assert told_in(page, "moved") == ("3 seat holders will get an updated invite.<br>2 on the "
                                      "waiting list will get an email with the new time.")
    assert told_in(page, "bigger") == "1 on the waiting list will get a seat and their invite."
    assert changes_in(page, "bigger") == ["Capacity: 1 → 2"]
    assert apply(admin, preview_token(page)).status_code == 303
    sent = dict(db.session.execute(
        sa.select(Message.kind, sa.func.count())
        .where(Message.kind.in_(("cancellation", "update", "promotion")))
        .group_by(Message.kind)).all())
    assert sent == {"cancellation": 3, "update": 5, "promotion": 1}
