"""Messages to a session's attendees: compose, preview one recipient's email, send to the
seat holders, the waiting list or both, each in their language, and see it in the timeline."""

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from markupsafe import escape

from extensions import db
from notifications.dispatcher import dispatch
from notifications.models import Announcement, Message
from notifications.text import to_html
from organisers.models import AuditEntry
from registration import people
from tests.conftest import NOW, make_event, make_registration, outbox, page_csrf

SLUG = "climate-finance-101"
NEW = f"/admin/events/{SLUG}/messages/new"
PREVIEW = f"/admin/events/{SLUG}/messages/preview"
SEND = f"/admin/events/{SLUG}/messages"
MESSAGE = {
    "audience": "both",
    "subject_en": "Slides for Thursday",
    "text_en": "Dear all,\r\n\r\nThe slides are at https://example.org/slides.\r\nSee you!",
    "subject_ja": "",
    "text_ja": "",
    "when": "now",
    "send_at": "",
}
JAPANESE = {"subject_ja": "木曜日のスライド", "text_ja": "皆さま\n\nスライドはこちら: https://example.org/slides"}


@pytest.fixture
def event(app):
    """The session, with a seat holder in English and one in Japanese, and one waiting."""
    event = make_event(capacity=2)
    make_registration(event, name="Aiko Tanaka", email="aiko@example.org", language="ja")
    make_registration(event, name="Ben Okafor", email="ben@example.org")
    make_registration(event, name="Wen Li", email="wen@example.org", status="waitlisted",
                      confirmed_at=None)
    db.session.commit()
    return event


def post(client, path, **overrides):
    return client.post(path, data={**MESSAGE, **overrides, "csrf_token": page_csrf(client, NEW)})


def announcement_rows():
    return db.session.scalars(sa.select(Message).where(Message.kind == "announcement")
                              .order_by(Message.recipient)).all()


def sent_mail(app):
    """(recipient, subject, plain text, html) of every email sent, by recipient."""
    mails = []
    for mail in outbox(app):
        parts = {part.get_content_type(): part.get_content().replace("\r\n", "\n")
                 for part in mail.walk() if not part.is_multipart()}
        mails.append((mail["To"].addresses[0].addr_spec, str(mail["Subject"]),
                      parts["text/plain"], parts["text/html"], mail))
    return sorted(mails, key=lambda m: m[0])


def test_the_compose_form_names_the_organisers_zone_and_offers_each_audience(admin, event):
    page = admin.get(NEW).get_data(as_text=True)

    assert 'type="datetime-local"' in page
    assert "Date and time (UTC)" in page  # the organiser's zone, named beside the field
    # The latest time allowed, in that zone: a week after the end (20 July, 10:30 UTC).
    assert "at the latest Sun 27 Jul 2025, 10:30" in page
    assert all(f'value="{value}"' in page for value in ("seats", "waiting", "both"))


def test_preview_shows_one_recipients_exact_email_in_each_language_and_the_counts(admin, event):
    response = post(admin, PREVIEW, **JAPANESE)
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert ("3 recipients: 2 will get it in English, 1 in Japanese." in
            html.unescape(re.sub(r"\s+", " ", page)))
    assert "Slides for Thursday" in page and "木曜日のスライド" in page
    # The English reader's plain text, exactly as the dispatcher will build it.
    assert "Hello Ben Okafor," in page
    assert "The slides are at https://example.org/slides." in page
    # Japanese for the one who chose it, frame and all.
    assert "Aiko Tanaka" in page and "スライドはこちら" in page
    # The HTML part, escaped into its frame: the link is a link there.
    assert str(escape('<a href="https://example.org/slides">')) in page
    # Nothing is queued by a preview; the composed values travel on to "Send".
    assert announcement_rows() == []
    assert 'name="subject_ja" value="木曜日のスライド"' in page


def test_preview_and_send_answer_the_organiser_zone(admin, event):
    page = post(admin, PREVIEW, when="later",
                send_at="2025-06-21T10:00").get_data(as_text=True)
    assert "It will be sent at Sat 21 Jun 2025, 10:00 Coordinated Universal Time." in page


@pytest.mark.parametrize("audience, expected", [
    ("seats", ["aiko@example.org", "ben@example.org"]),
    ("waiting", ["wen@example.org"]),
    ("both", ["aiko@example.org", "ben@example.org", "wen@example.org"]),
])
def test_send_queues_one_row_per_recipient_of_the_audience(admin, event, audience, expected):
    response = post(admin, SEND, audience=audience)

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/events/{SLUG}#messages")
    rows = announcement_rows()
    assert [row.recipient for row in rows] == expected
    assert {(row.status, row.due_at, row.ical_method) for row in rows} == {
        ("pending", NOW, None)}
    assert {row.expires_at for row in rows} == {NOW + timedelta(days=7)}
    [announcement] = db.session.scalars(sa.select(Announcement)).all()
    assert {row.detail["announcement_id"] for row in rows} == {announcement.id}


def test_each_reader_gets_their_language_and_english_when_none_was_written(app, admin, event):
    post(admin, SEND, **JAPANESE)
    post(admin, SEND, subject_en="Second note", text_en="Only in English.")
    dispatch(NOW)

    mails = sent_mail(app)
    by_subject = {(to, subject): (text, body) for to, subject, text, body, _ in mails}
    assert set(by_subject) == {
        ("aiko@example.org", "木曜日のスライド"), ("ben@example.org", "Slides for Thursday"),
        ("wen@example.org", "Slides for Thursday"), ("aiko@example.org", "Second note"),
        ("ben@example.org", "Second note"), ("wen@example.org", "Second note")}
    text, body = by_subject[("aiko@example.org", "木曜日のスライド")]
    assert "スライドはこちら: https://example.org/slides" in text
    assert "Hello" not in text and 'lang="ja"' in body
    text, body = by_subject[("ben@example.org", "Slides for Thursday")]
    assert "Hello Ben Okafor," in text
    assert "Dear all,\n\nThe slides are at https://example.org/slides.\nSee you!" in text
    assert '<p>Dear all,</p>' in body
    # No Japanese written: the Japanese reader gets the English email, all in English.
    text, body = by_subject[("aiko@example.org", "Second note")]
    assert "Hello Aiko Tanaka," in text and "Only in English." in text
    assert '<html lang="en">' in body


def test_it_carries_no_invite_and_no_unsubscribe_link(app, admin, event):
    post(admin, SEND)
    dispatch(NOW)

    for *_, mail in sent_mail(app):
        assert mail.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
        assert mail["List-Unsubscribe"] is None


def test_cancelled_and_anonymised_registrations_get_nothing(admin, event):
    make_registration(event, email="gone@example.org", status="cancelled", cancelled_at=NOW)
    make_registration(event, email="wiped@example.org", anonymised_at=NOW)
    db.session.commit()

    post(admin, SEND)

    assert [row.recipient for row in announcement_rows()] == [
        "aiko@example.org", "ben@example.org", "wen@example.org"]


def test_an_undeliverable_address_is_skipped_as_bounced_and_counted(admin, event):
    people.mark_undeliverable("ben@example.org", "5.1.1 User unknown", NOW)
    db.session.commit()

    page = post(admin, PREVIEW).get_data(as_text=True)
    assert ("2 recipients: 2 will get it in English, 0 in Japanese; 1 skipped "
            "(undeliverable address)." in html.unescape(re.sub(r"\s+", " ", page)))
    post(admin, SEND)

    rows = {row.recipient: (row.status, row.skip_reason) for row in announcement_rows()}
    assert rows["ben@example.org"] == ("skipped", "bounced")
    assert rows["wen@example.org"] == ("pending", None)


def test_an_unsubscribed_registration_still_gets_it_on_the_waiting_list_too(app, admin, event):
    for registration in event.registrations:
        registration.unsubscribed_at = NOW
    db.session.commit()

    post(admin, SEND)
    summary = dispatch(NOW)

    assert summary.sent == 3
    assert {row.status for row in announcement_rows()} == {"sent"}


def test_a_registration_cancelled_before_the_sending_gets_nothing(app, admin, event):
    post(admin, SEND)
    wen = next(r for r in event.registrations if r.email == "wen@example.org")
    wen.status = "cancelled"
    db.session.commit()

    dispatch(NOW)

    assert [to for to, *_ in sent_mail(app)] == ["aiko@example.org", "ben@example.org"]
    skipped = [row for row in announcement_rows() if row.status == "skipped"]
    assert [(row.recipient, row.skip_reason) for row in skipped] == [
        ("wen@example.org", "cancelled")]


def test_a_scheduled_message_is_not_sent_before_its_time(app, admin, event):
    # The organiser's zone is UTC unless set: 2025-06-22T08:30 there.
    response = post(admin, SEND, when="later", send_at="2025-06-22T08:30")
    assert response.status_code == 303
    due = NOW.replace(day=22, hour=8, minute=30)

    assert dispatch(NOW).sent == 0
    assert dispatch(due - timedelta(minutes=1)).sent == 0
    assert dispatch(due).sent == 3
    assert {row.due_at for row in announcement_rows()} == {due}


def test_the_chosen_time_is_read_in_the_organisers_zone(admin, event, organiser):
    organiser.timezone = "Asia/Tokyo"
    db.session.commit()

    post(admin, SEND, when="later", send_at="2025-06-22T08:30")

    assert {row.due_at for row in announcement_rows()} == {NOW.replace(day=21, hour=23,
                                                                       minute=30)}


@pytest.mark.parametrize("overrides, field", [
    ({"when": "later", "send_at": "2025-06-20T08:00"}, "Choose a time in the future."),
    ({"when": "later", "send_at": "2025-09-01T08:00"}, "a week at most after"),
    ({"when": "later", "send_at": "tomorrow"}, "Choose a date and time"),
    ({"subject_en": ""}, "Write a subject."),
    ({"text_en": "  "}, "Write the message."),
    ({"subject_en": "x" * 201}, "at most 200 characters"),
    ({"text_en": "x" * 10_001}, "at most 10000 characters"),
    ({"subject_ja": "件名だけ"}, "Write both the Japanese subject and message, or neither."),
    ({"audience": "everyone"}, "Choose who gets the message."),
])
def test_a_bad_message_is_refused_beside_its_field_and_nothing_is_queued(admin, event,
                                                                         overrides, field):
    for path in (PREVIEW, SEND):
        response = post(admin, path, **overrides)
        assert response.status_code == 422
        assert field in html.unescape(response.get_data(as_text=True))
    assert announcement_rows() == []


@pytest.mark.parametrize("subject", [
    "Slides\r\nBcc: everyone@example.org", "Slides\nX-Injected: yes", "Slides\rBcc: x@y.org"])
def test_a_line_break_in_the_subject_is_refused_with_422_and_nothing_queued(admin, event,
                                                                            subject):
    response = post(admin, SEND, subject_en=subject)

    assert response.status_code == 422
    assert "The subject must be one line" in response.get_data(as_text=True)
    assert announcement_rows() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Announcement)) == 0


HOSTILE = ('<script>alert(1)</script>\n\n"><img src=x onerror=alert(1)>\n'
           'javascript:alert(document.cookie) and https://example.org/a?b=1&c=2.')


def test_hostile_text_becomes_escaped_html_with_only_http_links():
    out = to_html(HOSTILE)

    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in out
    assert re.findall(r'href="([^"]*)"', out) == ["https://example.org/a?b=1&amp;c=2"]
    assert out.count("<p>") == 2
    assert to_html("see (https://example.org/x), or https://example.org/y.") == (
        '<p>see (<a href="https://example.org/x">https://example.org/x</a>), or '
        '<a href="https://example.org/y">https://example.org/y</a>.</p>')
    assert to_html('https://x.org/"onmouseover="alert(1)') == (
        '<p><a href="https://x.org/">https://x.org/</a>&#34;onmouseover=&#34;alert(1)</p>')


def test_hostile_text_reaches_the_email_escaped(app, admin, event):
    post(admin, SEND, audience="seats", text_en=HOSTILE, subject_en="<b>Hi</b> & more")
    dispatch(NOW)

    [(_, subject, text, body, _mail), _other] = sent_mail(app)
    assert subject == "<b>Hi</b> & more"  # a header is text, never markup
    assert "<script>alert(1)</script>" in text  # plain text stays as typed
    assert "<script" not in body and "<img" not in body and "<b>Hi" not in body
    assert re.findall(r'href="([^"]*)"', body.split("</div>")[0]).count(
        "https://example.org/a?b=1&amp;c=2") == 1
    assert "javascript:" not in re.findall(r'href="([^"]*)"', body).__str__()


def test_a_post_without_the_csrf_token_is_refused_and_queues_nothing(admin, event):
    response = admin.post(SEND, data=MESSAGE)

    assert response.status_code == 400
    assert announcement_rows() == []


@pytest.mark.parametrize("method, path", [("get", NEW), ("post", NEW), ("post", PREVIEW),
                                          ("post", SEND)])
def test_signed_out_visitors_are_sent_to_sign_in(client, event, method, path):
    response = getattr(client, method)(path, data=MESSAGE)

    assert response.status_code in (303, 400)  # a POST without a session has no CSRF token
    if response.status_code == 303:
        assert "/admin/login" in response.headers["Location"]
    assert announcement_rows() == []


def test_signed_out_post_with_a_valid_token_still_goes_to_sign_in(client, event):
    token = page_csrf(client, "/admin/login")
    response = client.post(SEND, data={**MESSAGE, "csrf_token": token})

    assert response.status_code == 303 and "/admin/login" in response.headers["Location"]
    assert announcement_rows() == []


def test_the_timeline_shows_each_message_by_subject_with_its_counts(app, admin, event):
    people.mark_undeliverable("ben@example.org", "5.1.1 User unknown", NOW)
    db.session.commit()
    post(admin, SEND)
    dispatch(NOW)
    post(admin, SEND, subject_en="Later news", when="later", send_at="2025-06-25T09:00")

    page = admin.get(f"/admin/events/{SLUG}").get_data(as_text=True)
    rows = {re.sub(r"(<[^>]+>)+", "|", row).strip("|") for row in
            re.findall(r"<tr><td>[^<]*</td><td>(?:Slides|Later).*?</tr>", page, re.S)}
    assert rows == {"Fri 20 Jun 2025, 09:00 Coordinated Universal Time|Slides for Thursday|0|2|0|1",
                    "Wed 25 Jun 2025, 09:00 Coordinated Universal Time|Later news|2|0|0|1"}
    # The batch timeline doesn't count them again, nor says that nothing was sent.
    assert "message from the organisers" not in page
    assert "No email sent or scheduled." not in page


def test_sending_is_audited_with_audience_recipients_and_due_time(admin, event):
    post(admin, SEND, audience="seats", when="later", send_at="2025-06-22T08:30")

    entry = db.session.scalars(sa.select(AuditEntry)
                               .where(AuditEntry.action == "message queued")).one()
    assert entry.target == SLUG
    assert entry.detail == {"audience": "seats", "recipients": 2, "skipped": 0,
                            "due_at": "2025-06-22T08:30:00+00:00"}


def test_a_cancelled_session_has_nobody_to_write_to(admin, event):
    event.status = "cancelled"
    db.session.commit()

    response = post(admin, SEND)

    assert response.status_code == 409
    assert announcement_rows() == []


def test_an_empty_audience_is_refused(admin, app):
    make_event()
    response = post(admin, PREVIEW, audience="waiting")

    assert response.status_code == 422
    assert "Nobody in this audience" in response.get_data(as_text=True)


def test_the_preview_frames_the_email_sandboxed_and_allows_only_its_own_styles(admin, event):
    response = post(admin, PREVIEW)
    usual = admin.get(NEW).headers["Content-Security-Policy"]
    policy = response.headers["Content-Security-Policy"]

    page = response.get_data(as_text=True)
    assert re.search(r'<iframe class="mail-html" sandbox="" srcdoc="', page)
    usual_directives = dict(d.strip().split(" ", 1) for d in usual.split(";"))
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    style = directives.pop("style-src").split()
    assert directives == {k: v for k, v in usual_directives.items() if k != "style-src"}
    assert style[:2] == ["'self'", "'unsafe-hashes'"]
    assert len(style) > 3 and all(s.startswith("'sha256-") for s in style[2:])
    assert "unsafe-inline" not in policy


def test_a_reschedule_after_queueing_does_not_supersede_the_organisers_words(app, admin, event):
    from notifications import session_changes

    post(admin, SEND, audience="seats")
    session_changes.queue_updates(event, NOW, changed=["time"], old_starts_at=event.starts_at,
                                  old_ends_at=event.ends_at)
    db.session.commit()

    dispatch(NOW)

    assert {row.status for row in announcement_rows()} == {"sent"}


def test_the_preview_hides_the_recipients_personal_links(app, admin, event):
    from registration import tokens

    person = people.ensure("aiko@example.org", NOW)
    db.session.commit()
    link = tokens.me_token(person)

    page = post(admin, PREVIEW, audience="seats").get_data(as_text=True)

    assert "Hello Aiko Tanaka," in page  # no Japanese written: the English email
    assert link not in page
    assert "/me/(their own link)" in page


def test_change_brings_the_form_back_with_what_was_composed(admin, event):
    page = post(admin, NEW, **JAPANESE, when="later",
                send_at="2025-06-22T08:30").get_data(as_text=True)

    assert 'value="Slides for Thursday"' in page
    assert "皆さま\n\nスライドはこちら" in page
    assert 'id="audience-both" name="audience" value="both" checked' in page
    assert 'id="when-later" name="when" value="later" checked' in page
    assert 'value="2025-06-22T08:30"' in page
    assert announcement_rows() == []


def test_sending_the_same_preview_twice_queues_it_once(admin, event):
    page = post(admin, PREVIEW).get_data(as_text=True)
    key = re.search(r'name="draft_key" value="([0-9a-f]{32})"', page).group(1)

    first = post(admin, SEND, draft_key=key)
    second = post(admin, SEND, draft_key=key)

    assert first.status_code == second.status_code == 303
    assert len(announcement_rows()) == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Announcement)) == 1
    flashed = admin.get(f"/admin/events/{SLUG}").get_data(as_text=True)
    assert "This message was already queued; it was not queued again." in flashed
    # Another preview of the same words is another message, queued on its own.
    post(admin, SEND)
    assert len(announcement_rows()) == 6


def test_japanese_spacing_is_text_not_a_control_character(app, admin, event):
    # The ideographic space (U+3000) and a no-break space are not printable to Python's
    # str.isprintable(), yet they are ordinary characters of a Japanese or French sentence.
    subject, text = "木曜日\u3000資料のご案内", "皆さま\u3000こんにちは。\n\n資料\u00a0: https://example.org/s"

    response = post(admin, SEND, subject_ja=subject, text_ja=text)

    assert response.status_code == 303, response.get_data(as_text=True)
    dispatch(NOW)
    aiko = next(m for m in sent_mail(app) if m[0] == "aiko@example.org")
    assert aiko[1] == subject and "皆さま\u3000こんにちは。" in aiko[2]
    # A real control character in either is still refused, nothing queued.
    for field, value in (("subject_ja", "資料\u202e"), ("text_ja", "資料\x07")):
        assert post(admin, SEND, **{"subject_ja": "s", "text_ja": "t", field: value}
                    ).status_code == 422
