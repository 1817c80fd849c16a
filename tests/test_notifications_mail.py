"""The emails we build: structure, headers, the words people read, and what they must never hold."""

import email
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo

import pytest
import vobject

from extensions import db
from notifications import planner
from notifications.mail import UnsendableMessage, build_message
from registration import services, tokens
from tests.conftest import NOW, make_event, make_registration

JOIN = "https://meet.example.org/j/123456"


def built(app, message):
    """The message as the recipient's mail client parses it, plus the raw bytes."""
    mail = build_message(message, app.config, NOW)
    return email.message_from_bytes(mail.data, policy=policy.default), mail


def text_of(parsed, subtype):
    return next(p for p in parsed.walk() if p.get_content_type() == f"text/{subtype}").get_content()


def header(raw: bytes, name: str) -> str:
    """A header decoded the classic way (RFC 2047 words joined as the RFC says)."""
    parsed = email.message_from_bytes(raw, policy=policy.compat32)
    return str(make_header(decode_header(parsed[name])))


def test_confirmation_is_mixed_holding_alternative_with_calendar_then_the_ics_attachment(app):
    registration = make_registration(make_event())
    parsed, mail = built(app, planner.queue_signup(registration, NOW))

    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == [
        "text/plain", "text/html", "text/calendar"
    ]
    calendar = alternative.get_payload()[2]
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_param("charset") == "UTF-8"
    assert calendar["Content-Disposition"] is None
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "invite.ics"
    ics = calendar.get_payload(decode=True)
    assert attachment.get_payload(decode=True) == ics
    assert vobject.readOne(ics.decode()).method.value == "REQUEST"


def test_waitlisted_email_is_alternative_text_and_html_only(app):
    registration = make_registration(make_event(), status="waitlisted", confirmed_at=None)
    parsed, mail = built(app, planner.queue_signup(registration, NOW))
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.get_payload()] == ["text/plain", "text/html"]
    assert b"text/calendar" not in mail.data and b"invite.ics" not in mail.data


def test_headers_name_sender_recipient_organiser_and_keep_the_rows_message_id(app):
    registration = make_registration(make_event())
    message = planner.queue_signup(registration, NOW)
    db.session.commit()
    parsed, mail = built(app, message)

    assert parsed["From"].addresses[0].display_name == "Forum Sign-up"
    assert parsed["From"].addresses[0].addr_spec == "forum@example.org"
    assert parsed["To"].addresses[0].display_name == "Aiko Tanaka"
    assert parsed["To"].addresses[0].addr_spec == "aiko.tanaka@example.org"
    assert parsed["Reply-To"] == "organisers@example.org"
    assert parsed["Subject"] == "Confirmed: Climate finance 101"
    assert parsed["Date"].datetime == NOW
    assert parsed["Message-ID"] == message.message_id
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["MIME-Version"] == "1.0"
    assert mail.envelope_from == "forum@example.org"
    assert mail.recipients == ("aiko.tanaka@example.org",)
    assert mail.message_id == message.message_id


def test_message_is_seven_bit_with_crlf_lines_short_enough_for_smtp(app):
    event = make_event(title="気候ファイナンス入門 — 都市の資金調達 " * 3)
    registration = make_registration(event, name="田中 愛子 🌏", language="ja")
    _, mail = built(app, planner.queue_signup(registration, NOW))
    assert mail.data.isascii()
    assert b"\n" not in mail.data.replace(b"\r\n", b"")
    assert max(len(line) for line in mail.data.split(b"\r\n")) <= 998


@pytest.mark.parametrize("name", ["田中 愛子", "Zoë 🌏 Okafor", "Dr. O'Brien, \"Jo\""])
def test_names_in_any_script_reach_the_to_header_intact(app, name):
    registration = make_registration(make_event(), name=name)
    _, mail = built(app, planner.queue_signup(registration, NOW))
    assert header(mail.data, "To") in (
        f"{name} <aiko.tanaka@example.org>",
        f'"{name.replace(chr(34), chr(92) + chr(34))}" <aiko.tanaka@example.org>',
    )
    to = email.message_from_bytes(mail.data, policy=policy.default)["To"]
    assert to.addresses[0].addr_spec == "aiko.tanaka@example.org"
    assert len(to.addresses) == 1


def test_japanese_subject_is_encoded_and_decodes_back(app):
    event = make_event(title="気候ファイナンス入門")
    registration = make_registration(event, language="ja")
    parsed, mail = built(app, planner.queue_signup(registration, NOW))
    assert b"=?utf-8?" in mail.data
    assert parsed["Subject"] == "登録完了: 気候ファイナンス入門"


def test_a_name_carrying_a_bcc_header_creates_no_header(app):
    registration = make_registration(make_event(), name="Eve\r\nBcc: x@example.com\r\n\r\nHi")
    parsed, mail = built(app, planner.queue_signup(registration, NOW))
    assert parsed["Bcc"] is None
    assert b"\r\nBcc:" not in mail.data
    assert len(parsed.get_all("To")) == 1
    assert parsed["To"].addresses[0].addr_spec == "aiko.tanaka@example.org"
    assert mail.recipients == ("aiko.tanaka@example.org",)


def test_an_event_title_carrying_a_header_creates_no_header(app):
    event = make_event(title="Webinar\nBcc: x@example.com")
    parsed, mail = built(app, planner.queue_signup(make_registration(event), NOW))
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Confirmed: Webinar Bcc: x@example.com"


@pytest.mark.parametrize("recipient", [
    "aiko@example.org\r\nBcc: x@example.com",
    "aiko@example.org, x@example.com",
    "Aiko <aiko@example.org>",
    "aiko",
])
def test_a_recipient_that_is_not_one_plain_address_is_unsendable(app, recipient):
    message = planner.queue_signup(make_registration(make_event()), NOW)
    message.recipient = recipient
    with pytest.raises(UnsendableMessage):
        build_message(message, app.config, NOW)


def test_international_domain_is_sent_in_its_ascii_form(app):
    message = planner.queue_signup(make_registration(make_event()), NOW)
    message.recipient = "aiko@bücher.example"
    mail = build_message(message, app.config, NOW)
    assert mail.recipients == ("aiko@xn--bcher-kva.example",)


def test_markup_in_a_name_is_escaped_in_html_and_left_alone_in_text(app):
    registration = make_registration(make_event(), name="<script>alert(1)</script>")
    parsed, _ = built(app, planner.queue_signup(registration, NOW))
    html = text_of(parsed, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Hello <script>alert(1)</script>," in text_of(parsed, "plain")


def test_confirmation_says_confirmed_with_join_link_manage_link_and_local_time(app):
    event = make_event(starts_at=datetime(2025, 7, 1, 12, 0, tzinfo=UTC))
    registration = make_registration(event, timezone="Asia/Tokyo")
    parsed, _ = built(app, planner.queue_signup(registration, NOW))
    token = tokens.manage_token(registration)
    for body in (text_of(parsed, "plain"), text_of(parsed, "html")):
        assert "confirmed" in body
        assert "Climate finance 101" in body
        assert JOIN in body
        assert f"http://forum.example.org/r/{token}" in body
        # 12:00 UTC is 21:00 in Tokyo, and the zone is named in words.
        assert "Tuesday 1 July 2025, 21:00–22:30 Japan Standard Time" in body
    assert services.find_by_token(token) == registration


def test_waitlisted_email_says_waiting_list_not_confirmed_and_never_the_join_link(app):
    registration = make_registration(make_event(), status="waitlisted", confirmed_at=None)
    parsed, mail = built(app, planner.queue_signup(registration, NOW))
    assert parsed["Subject"] == "Waiting list: Climate finance 101"
    text = text_of(parsed, "plain")
    assert "WAITING LIST" in text
    assert "not confirmed" in text
    assert "If a seat frees up, we will email you the calendar invite" in text
    assert "You are confirmed" not in text
    for body in (text, text_of(parsed, "html")):
        assert JOIN not in body
        assert "meet.example.org" not in body
    assert "WAITING LIST" in text_of(parsed, "html")


def test_promotion_says_the_seat_is_theirs_with_the_invite_and_join_link(app):
    registration = make_registration(make_event())
    parsed, _ = built(app, planner.queue_promotion(registration, NOW))
    assert parsed["Subject"] == "A seat is yours: Climate finance 101"
    text = text_of(parsed, "plain")
    assert "You are now confirmed" in text
    assert JOIN in text
    assert any(p.get_content_type() == "text/calendar" for p in parsed.walk())


def test_cancellation_of_a_seat_sends_cancel_and_never_the_join_link(app):
    registration = make_registration(make_event())
    registration.status = "cancelled"
    parsed, mail = built(app, planner.queue_cancellation(registration, True, NOW))
    assert parsed["Subject"] == "Cancelled: Climate finance 101"
    assert "is cancelled" in text_of(parsed, "plain")
    calendar = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    assert calendar.get_param("method") == "CANCEL"
    whole = "".join(
        p.get_payload(decode=True).decode() for p in parsed.walk() if not p.is_multipart()
    )
    assert "meet.example.org" not in whole


def test_cancellation_from_the_waiting_list_is_a_plain_notice(app):
    registration = make_registration(make_event(), status="cancelled", confirmed_at=None)
    parsed, mail = built(app, planner.queue_cancellation(registration, False, NOW))
    assert parsed.get_content_type() == "multipart/alternative"
    assert "is cancelled" in text_of(parsed, "plain")
    assert b"text/calendar" not in mail.data


def test_a_cancelled_event_is_named_as_cancelled_by_the_organisers(app):
    event = make_event(status="cancelled")
    registration = make_registration(event, status="cancelled")
    parsed, _ = built(app, planner.queue_cancellation(registration, True, NOW))
    assert "The organisers have cancelled this session." in text_of(parsed, "plain")
    assert "sign up again" not in text_of(parsed, "plain")


def test_japanese_registrant_reads_japanese_with_japanese_time(app):
    event = make_event(starts_at=datetime(2025, 7, 1, 12, 0, tzinfo=UTC))
    registration = make_registration(event, language="ja", status="waitlisted")
    parsed, _ = built(app, planner.queue_signup(registration, NOW))
    text = text_of(parsed, "plain")
    assert "キャンセル待ち" in text
    assert "まだ参加は確定していません" in text
    assert "2025年7月1日(火) 21:00〜22:30 日本標準時" in text
    assert parsed["Subject"] == "キャンセル待ち: Climate finance 101"


def test_time_is_shown_in_the_attendees_zone_across_the_dst_change(app):
    # 12:00 in Berlin on 29 March 2026 (just after the spring change) is 10:00 UTC.
    starts_at = datetime(2026, 3, 29, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    event = make_event(starts_at=starts_at)
    registration = make_registration(event, timezone="Europe/Berlin")
    parsed, _ = built(app, planner.queue_signup(registration, NOW))
    assert "Sunday 29 March 2026, 12:00–13:30 Central European Summer Time" in text_of(
        parsed, "plain"
    )


@pytest.mark.parametrize("kind, method, status, expected", [
    ("confirmation", "REQUEST", "confirmed", True),
    ("promotion", "REQUEST", "confirmed", True),
    ("reminder", None, "confirmed", True),
    ("update", "REQUEST", "confirmed", True),
    ("update", None, "waitlisted", False),
    ("waitlisted", None, "waitlisted", False),
    ("cancellation", "CANCEL", "cancelled", False),
    ("follow_up", None, "confirmed", False),
    ("reminder", None, "waitlisted", False),
])
def test_the_join_link_goes_only_to_seat_holders_in_seat_messages(kind, method, status,
                                                                   expected):
    from types import SimpleNamespace

    from notifications.mail import join_link

    event = SimpleNamespace(join_url="https://meet.example.org/j/1")
    message = SimpleNamespace(kind=kind, ical_method=method, event=event,
                              registration=SimpleNamespace(status=status))
    assert (join_link(message) is not None) == expected
