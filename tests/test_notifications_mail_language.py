"""Every email in its reader's language (subject and both parts), the join button, the
reminder's description and the footer in both parts."""

import email
import re
from datetime import timedelta
from email import policy

import pytest
import sqlalchemy as sa

from extensions import db
from notifications import planner, session_changes
from notifications.dispatcher import dispatch
from notifications.mail import build_message
from notifications.models import Message
from tests.conftest import NOW, make_event, make_registration, written_reminder

JOIN = "https://meet.example.org/j/123456"
RECORDING = "https://video.example.org/climate-finance-101"
TITLE = "Climate finance 101"
ORGANISERS = "organisers@example.org"


def queued(kind: str, reader: str, **event_fields):
    """A message of this kind for a registrant reading `reader`'s language, and when it is
    sent."""
    if kind == "follow_up":
        event_fields.setdefault("starts_at", NOW - timedelta(days=1))
        event_fields.setdefault("recording_url", RECORDING)
    event = make_event(**event_fields)
    status = "waitlisted" if kind == "waitlisted" else "confirmed"
    registration = make_registration(event, language=reader, status=status)
    if kind in ("confirmation", "waitlisted"):
        return planner.queue_signup(registration, NOW, is_repeat=False), NOW
    if kind == "promotion":
        return planner.queue_promotion(registration, NOW), NOW
    if kind == "reminder":
        first = written_reminder(registration)  # the week's
        return first, first.due_at
    if kind == "update":
        session_changes.queue_updates(
            event, NOW, changed=["time", "title"],
            old_starts_at=event.starts_at - timedelta(days=1),
            old_ends_at=event.ends_at - timedelta(days=1))
        return db.session.scalar(sa.select(Message).where(Message.kind == kind)), NOW
    if kind == "cancellation":
        registration.status = "cancelled"
        return planner.queue_cancellation(registration, True, NOW), NOW
    if kind == "my_link":
        from registration import people

        people.ensure(registration.email_key, NOW)
        return planner.queue_my_link(registration, NOW), NOW
    return planner.plan_follow_up(registration, NOW), NOW


def parsed_mail(app, message, now=NOW):
    mail = build_message(message, app.config, now)
    return email.message_from_bytes(mail.data, policy=policy.default)


def parts(parsed) -> tuple[str, str]:
    # Line ends as a mail client shows them (the wire's CRLF, read back).
    return tuple(parsed.get_body((subtype,)).get_content().replace("\r\n", "\n")
                 for subtype in ("plain", "html"))


def words_of(html: str) -> str:
    """What a reader sees of an HTML part: no tags, no addresses."""
    return re.sub(r"<[^>]+>", " ", html)


def without_links(text: str) -> str:
    return re.sub(r"https?://\S+", " ", text)


# kind: (English subject, English phrase, Japanese subject, Japanese phrase)
EXPECTED = {
    "confirmation": ("Confirmed: " + TITLE, "Your seat is booked.",
                     "登録完了: " + TITLE, "参加が確定しています。"),
    "waitlisted": ("Waiting list: " + TITLE, "You are not confirmed yet",
                   "キャンセル待ち: " + TITLE, "まだ参加は確定していません"),
    "promotion": ("A seat is yours: " + TITLE, "a seat has freed up",
                  "お席が確保されました: " + TITLE, "空席が出たため、お席を確保しました"),
    "reminder": ("Reminder: " + TITLE + ", in 7 days", "starts in 7 days",
                 "リマインダー: " + TITLE + "（7日後）", "7日後に始まります"),
    "update": ("Changed: " + TITLE, "The time and title of",
               "変更のお知らせ: " + TITLE, "の日時・タイトルが変更されました"),
    "cancellation": ("Cancelled: " + TITLE, "is cancelled",
                     "キャンセル: " + TITLE, "へのご登録はキャンセルされました"),
    "follow_up": ("Recording: " + TITLE, "Thank you for registering for",
                  "録画のご案内: " + TITLE, "にご登録いただき、ありがとうございました"),
    "my_link": ("Your sessions at Virtual Forum: your link", "Keep this link to yourself",
                "Virtual Forum: お申し込みのセッション一覧へのリンク",
                "このリンクは他の方と共有しないでください"),
}
# Words of the English templates that must never reach a Japanese reader.
ENGLISH = ("Hello", "When:", "Join", "Reminder", "calendar", "Questions", "Reply",
           "session", "cancel", "waiting", "seat", "recording", "This email", "About",
           " and ", "in 7 days", "Can’t")


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_every_kind_speaks_english_to_an_english_reader(app, kind):
    message, now = queued(kind, "en")
    parsed = parsed_mail(app, message, now)
    subject, phrase, _, japanese = EXPECTED[kind]
    text, html = parts(parsed)
    assert parsed["Subject"] == subject
    for body in (text, html):
        assert "Hello Aiko Tanaka," in body
        assert phrase in body
        assert japanese not in body and "様" not in body
    assert '<html lang="en">' in html


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_every_kind_speaks_japanese_to_a_japanese_reader(app, kind):
    message, now = queued(kind, "ja")
    parsed = parsed_mail(app, message, now)
    _, english, subject, phrase = EXPECTED[kind]
    text, html = parts(parsed)
    assert parsed["Subject"] == subject
    assert '<html lang="ja">' in html
    for body in (text, html):
        assert "Aiko Tanaka 様" in body
        assert phrase in body
        assert "日本標準時" in body or kind in ("follow_up", "my_link")
        assert "ご質問はこのメールに返信してください" in body
        seen = without_links(words_of(body)).replace(TITLE, "")
        left = [word for word in ENGLISH if word in seen]
        assert not left, f"English in a Japanese {kind} email: {left}"


def test_a_rescheduled_session_shows_the_old_and_new_time_in_the_readers_words(app):
    message, _ = queued("update", "ja")
    text, html = parts(parsed_mail(app, message))
    assert "新しい日時: 2025年7月20日" in text
    assert "（変更前: 2025年7月19日" in text
    assert "（変更前: <s>2025年7月19日" in html


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_footer_names_the_sender_and_the_reply_address_in_both_parts(app, language):
    message, _ = queued("confirmation", language)
    text, html = parts(parsed_mail(app, message))
    footer = {
        "en": ("This email was sent automatically by Forum Sign-up for Virtual Forum.",
               f"Questions? Reply to this email ({ORGANISERS})."),
        "ja": ("このメールは、Virtual ForumのためにForum Sign-upから自動送信されています。",
               f"ご質問はこのメールに返信してください（{ORGANISERS}）。"),
    }[language]
    for body in (text, html):
        for line in footer:
            assert line in body
    # The plain part ends with the footer, after the usual signature separator.
    assert text.rstrip().endswith(footer[1])
    assert "\n-- \n" in text


BUTTON = re.compile(r'<td bgcolor="#1f4fa8"[^>]*>\s*<a href="([^"]+)" style="[^"]*padding:')


@pytest.mark.parametrize("kind", ["confirmation", "promotion", "reminder", "update"])
def test_a_join_button_leads_to_the_join_link_in_messages_that_carry_it(app, kind):
    message, now = queued(kind, "en")
    text, html = parts(parsed_mail(app, message, now))
    assert BUTTON.findall(html) == [JOIN]
    assert ">Join the session</a>" in html
    assert f"Join online: {JOIN}" in text


@pytest.mark.parametrize("kind", ["confirmation", "promotion", "reminder", "update"])
def test_no_join_button_without_a_join_link(app, kind):
    message, now = queued(kind, "en", join_url=None)
    _, html = parts(parsed_mail(app, message, now))
    assert BUTTON.findall(html) == []
    assert "Join the session" not in html and "meet.example.org" not in html


@pytest.mark.parametrize("kind", ["waitlisted", "cancellation", "follow_up"])
def test_messages_without_a_seat_link_have_no_join_button(app, kind):
    message, now = queued(kind, "ja")
    _, html = parts(parsed_mail(app, message, now))
    assert BUTTON.findall(html) == [] and "セッションに参加する" not in html


def test_the_japanese_join_button_is_in_japanese(app):
    message, now = queued("reminder", "ja")
    _, html = parts(parsed_mail(app, message, now))
    assert BUTTON.findall(html) == [JOIN]
    assert ">セッションに参加する</a>" in html


def test_the_reminder_carries_the_description_escaped_with_its_line_breaks(app):
    description = "Line one <b>bold</b>\r\nLine two & more\n\nLast line"
    message, now = queued("reminder", "en", description=description)
    text, html = parts(parsed_mail(app, message, now))
    assert "What the session is about:\nLine one <b>bold</b>\nLine two & more\n\nLast line" in text
    assert ("<p>Line one &lt;b&gt;bold&lt;/b&gt;<br>\nLine two &amp; more<br>\n<br>\n"
            "Last line</p>") in html
    assert "<b>bold</b>" not in html


def test_a_description_in_the_other_language_carries_its_own_lang(app):
    message, now = queued("reminder", "ja", description="How cities fund climate action.",
                          language="en")
    _, html = parts(parsed_mail(app, message, now))
    assert '<html lang="ja">' in html
    assert '<p lang="en">How cities fund climate action.</p>' in html
    assert "セッションの内容" in html


def test_the_title_carries_its_own_lang_only_where_it_is_not_the_readers(app):
    message, _ = queued("confirmation", "en", title="気候ファイナンス入門", language="ja")
    _, html = parts(parsed_mail(app, message))
    assert 'for “<strong lang="ja">気候ファイナンス入門</strong>”' in html
    message, _ = queued("confirmation", "ja", title="気候ファイナンス入門", language="ja",
                        slug="kikou")
    _, html = parts(parsed_mail(app, message))
    assert "「<strong>気候ファイナンス入門</strong>」" in html


def test_a_reminder_without_a_description_has_no_empty_heading(app):
    message, now = queued("reminder", "en", description="")
    text, html = parts(parsed_mail(app, message, now))
    assert "What the session is about" not in text + html


def test_markup_in_a_title_is_escaped_in_the_html_sentences(app):
    message, _ = queued("confirmation", "ja", title="<img src=x onerror=alert(1)>")
    text, html = parts(parsed_mail(app, message))
    assert "<img" not in html
    assert '「<strong lang="en">&lt;img src=x onerror=alert(1)&gt;</strong>」' in html
    assert "「<img src=x onerror=alert(1)>」" in text


def test_a_batch_of_english_and_japanese_readers_gets_each_their_own_language(app, smtp):
    event = make_event()
    readers = [("en", "first@example.org"), ("ja", "second@example.org"),
               ("en", "third@example.org"), ("ja", "fourth@example.org")]
    for language, address in readers:
        registration = make_registration(event, language=language, email=address,
                                         name=f"Reader {address[0]}")
        planner.queue_signup(registration, NOW, is_repeat=False)
    db.session.commit()

    summary = dispatch(NOW)

    assert summary.sent == 4
    got = {str(mail["To"].addresses[0].addr_spec): mail for mail in smtp.messages()}
    for language, address in readers:
        mail = got[address]
        text, html = parts(mail)
        if language == "ja":
            assert mail["Subject"] == "登録完了: " + TITLE
            assert "参加が確定しています" in text and "日時: " in text
            assert "Hello" not in text and '<html lang="ja">' in html
        else:
            assert mail["Subject"] == "Confirmed: " + TITLE
            assert "Your seat is booked" in text and "When: " in text
            assert "様" not in text and '<html lang="en">' in html
        # Each in the reader's own zone (Tokyo), named in the reader's words.
        assert ("日本標準時" if language == "ja" else "Japan Standard Time") in text


@pytest.mark.parametrize("reader, subject", [("en", "Session cancelled: " + TITLE),
                                             ("ja", "中止: " + TITLE)])
def test_a_session_called_off_says_so_in_the_subject(app, reader, subject):
    # Japanese has one word for a place given up (キャンセル), another for a session called off.
    message, now = queued("cancellation", reader, status="cancelled")
    assert parsed_mail(app, message, now)["Subject"] == subject
