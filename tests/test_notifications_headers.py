"""The headers of every email: DKIM signatures that verify against the record `flask dkim-record`
prints, the envelope sender, List-Unsubscribe on reminders and follow-ups only, automatic
replies suppressed, short header lines and encoded words, invites that ask for no reply."""

import email
import re
import subprocess
from email import policy
from email.header import decode_header, make_header

import dkim
import pytest

from extensions import db
from notifications import planner
from notifications.dispatcher import dispatch
from notifications.mail import build_message
from notifications.models import IcalMethod, MessageKind
from tests.conftest import (
    NOW,
    make_event,
    make_registration,
    sending_through_smtp,
    written_reminder,
)

# A subject and a name long enough in Japanese to need several encoded words.
LONG_JAPANESE_TITLE = ("気候変動と都市の資金調達："
                       "自治体が今日から始められる十の実践と国際協力の最前線")
LONG_JAPANESE_NAME = "田中 愛子（横浜市 温暖化対策統括本部 国際連携担当課長）"


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    """A fresh 2048-bit RSA private key (PEM) made by openssl, as an operator would make one."""
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture
def signing_app(app_with, dkim_key):
    with app_with(DKIM_PRIVATE_KEY_PATH=str(dkim_key), DKIM_SELECTOR="forum2026") as app:
        yield app


def published(app) -> dict[bytes, bytes]:
    """What DNS would answer, from the line `flask dkim-record` prints: name → TXT text."""
    result = app.test_cli_runner().invoke(args=["dkim-record"])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    match = re.fullmatch(r'(\S+)\. IN TXT ((?:"[^"]{1,255}" ?)+)', line)
    assert match, line
    text = "".join(re.findall(r'"([^"]*)"', match.group(2)))
    return {match.group(1).encode(): text.encode()}


def dns_from(records):
    def dnsfunc(name, timeout=5):
        return records.get(name.rstrip(b".") if isinstance(name, bytes) else name.encode())
    return dnsfunc


def a_reminder(**registration_fields):
    registration = make_registration(make_event(), **registration_fields)
    db.session.commit()
    return written_reminder(registration)


def test_the_record_names_the_selector_and_domain_and_splits_its_text(signing_app):
    [(name, text)] = published(signing_app).items()
    assert name == b"forum2026._domainkey.example.org"  # DKIM_DOMAIN defaults to MAIL_FROM's
    assert text.startswith(b"v=DKIM1; k=rsa; p=MIIB")


@pytest.mark.parametrize("traditional", [False, True])
def test_the_published_key_is_the_public_key_openssl_derives(tmp_path, traditional):
    from notifications import dkim as ours

    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "genrsa", *(["-traditional"] if traditional else []), "-out",
                    str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                            check=True, capture_output=True).stdout
    assert ours.public_key_der(ours.read_key(str(key))) == public
    header = b"-----BEGIN RSA PRIVATE KEY-----" if traditional else b"-----BEGIN PRIVATE KEY"
    assert key.read_bytes().startswith(header)


def test_a_signed_message_verifies_against_the_printed_record(signing_app):
    mail = build_message(a_reminder(), signing_app.config, NOW)
    assert mail.data.startswith(b"DKIM-Signature: ")
    records = published(signing_app)
    assert dkim.verify(mail.data, dnsfunc=dns_from(records))

    signature = email.message_from_bytes(mail.data, policy=policy.compat32)["DKIM-Signature"]
    tags = dict(tag.strip().split("=", 1) for tag in "".join(signature.split()).split(";") if tag)
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == (
        "rsa-sha256", "relaxed/relaxed", "example.org", "forum2026")
    assert set(tags["h"].split(":")) >= {
        "from", "to", "subject", "date", "message-id", "reply-to", "mime-version",
        "content-type", "list-unsubscribe", "list-unsubscribe-post"}


def test_a_changed_message_or_another_key_fails_verification(signing_app, tmp_path):
    mail = build_message(a_reminder(), signing_app.config, NOW)
    records = published(signing_app)
    tampered = mail.data.replace(b"Subject: Reminder", b"Subject: Reminded", 1)
    assert tampered != mail.data
    assert not dkim.verify(tampered, dnsfunc=dns_from(records))
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(other)], check=True, capture_output=True)
    from notifications import dkim as ours

    wrong = {name: ours.record_value(other.read_bytes()).encode() for name in records}
    assert not dkim.verify(mail.data, dnsfunc=dns_from(wrong))


def test_the_message_as_delivered_verifies_and_bounces_go_to_the_envelope_sender(
        app_with, dkim_key):
    with app_with(DKIM_PRIVATE_KEY_PATH=str(dkim_key),
                  SMTP_ENVELOPE_FROM="bounces@example.org") as app:
        due_at = a_reminder().due_at
        with sending_through_smtp(app) as smtp:
            summary = dispatch(due_at)
        assert summary.sent == 1
        for mail_from, _rcpt_tos, raw in smtp.delivered:
            assert mail_from == "bounces@example.org"
            assert dkim.verify(raw, dnsfunc=dns_from(published(app)))
            parsed = email.message_from_bytes(raw, policy=policy.default)
            assert parsed["From"].addresses[0].addr_spec == "forum@example.org"


def test_the_envelope_sender_is_mail_from_by_default_and_nothing_is_signed(app, smtp):
    assert dispatch(a_reminder().due_at).sent == 1
    mail_from, _, raw = smtp.delivered[0]
    assert mail_from == "forum@example.org"
    assert b"DKIM-Signature" not in raw


@pytest.mark.parametrize("content", [None, b"not a key at all\n"])
def test_a_key_that_cant_be_read_stops_start_up_with_one_line_naming_the_setting(
        tmp_path, content):
    from app import create_app

    path = tmp_path / "dkim.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as exc:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SCHEDULER": "off",
                    "DKIM_PRIVATE_KEY_PATH": str(path)})
    message = str(exc.value.code)
    assert "DKIM_PRIVATE_KEY_PATH" in message and "\n" not in message


def test_dkim_record_without_a_key_says_so(app):
    result = app.test_cli_runner().invoke(args=["dkim-record"])
    assert result.exit_code != 0
    assert "DKIM_PRIVATE_KEY_PATH" in result.output


# --- Headers ------------------------------------------------------------------------------------

KINDS = [
    (MessageKind.CONFIRMATION, IcalMethod.REQUEST, "confirmed"),
    (MessageKind.WAITLISTED, None, "waitlisted"),
    (MessageKind.PROMOTION, IcalMethod.REQUEST, "confirmed"),
    (MessageKind.CANCELLATION, IcalMethod.CANCEL, "cancelled"),
    (MessageKind.REMINDER, None, "confirmed"),
    (MessageKind.UPDATE, IcalMethod.REQUEST, "confirmed"),
    (MessageKind.FOLLOW_UP, None, "confirmed"),
    (MessageKind.MY_LINK, None, "confirmed"),
]


def a_message(kind, method, status, **fields):
    registration = make_registration(make_event(recording_url="https://video.example.org/1"),
                                     status=status, **fields)
    db.session.commit()
    return planner._queue(registration, kind, NOW, method=method,
                          detail={"offset": "1d", "is_last": False})


def headers(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=policy.compat32)


@pytest.mark.parametrize("kind, method, status", KINDS)
def test_list_unsubscribe_only_on_reminders_and_follow_ups(app, kind, method, status):
    from registration import tokens

    message = a_message(kind, method, status)
    parsed = headers(build_message(message, app.config, NOW).data)
    assert parsed["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    if kind in (MessageKind.REMINDER, MessageKind.FOLLOW_UP):
        token = tokens.unsubscribe_token(message.registration)
        assert " ".join(parsed["List-Unsubscribe"].split()) == (
            f"<http://forum.example.org/u/{token}>, "
            "<mailto:forum@example.org?subject=unsubscribe>")
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert parsed["List-Unsubscribe"] is None
        assert parsed["List-Unsubscribe-Post"] is None


def test_a_long_unsubscribe_link_is_folded_between_its_uris_and_never_encoded(app_with):
    from registration import tokens

    base = "https://registration.a-rather-long-subdomain-of-the-forum.example.org/forum"
    with app_with(BASE_URL=base) as app:
        message = a_reminder()
        data = build_message(message, app.config, NOW).data
        token = tokens.unsubscribe_token(message.registration)
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "=?" not in head.split("List-Unsubscribe:", 1)[1].split("\r\nList-", 1)[0]
    assert " ".join(headers(data)["List-Unsubscribe"].split()) == (
        f"<{base}/u/{token}>, <mailto:forum@example.org?subject=unsubscribe>")


@pytest.mark.parametrize("kind, method, status", KINDS)
def test_header_lines_fit_78_and_encoded_words_75(app_with, dkim_key, kind, method, status):
    with app_with(DKIM_PRIVATE_KEY_PATH=str(dkim_key),
                  MAIL_FROM_NAME="フォーラム事務局 " * 4) as app:
        registration = make_registration(make_event(title=LONG_JAPANESE_TITLE), status=status,
                                         name=LONG_JAPANESE_NAME, language="ja")
        db.session.commit()
        message = planner._queue(registration, kind, NOW, method=method,
                                 detail={"offset": "1d", "is_last": False})
        data = build_message(message, app.config, NOW).data
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    words = re.findall(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=", head)
    assert len(words) >= 6, "the subject and names were meant to need several encoded words"
    assert max(len(word) for word in words) <= 75
    for line in head.split("\r\n"):
        # Longer only where there is nowhere to fold: one unbreakable token after the indent.
        assert len(line) <= 78 or " " not in line.strip(), line
    # Decoded as RFC 2047 says (the space between two adjacent encoded words is dropped).
    parsed = headers(data)
    decoded = {name: str(make_header(decode_header(parsed[name]))) for name in ("Subject", "To")}
    if kind != MessageKind.MY_LINK:  # its subject names the programme, not the session
        assert LONG_JAPANESE_TITLE in decoded["Subject"]
    assert decoded["To"] == f"{LONG_JAPANESE_NAME} <aiko.tanaka@example.org>"


# --- The invite asks for no reply ---------------------------------------------------------------


def test_an_invite_email_says_declining_in_a_calendar_frees_nothing(app):
    from notifications.mail import manage_url

    message = a_message(MessageKind.CONFIRMATION, IcalMethod.REQUEST, "confirmed")
    parsed = email.message_from_bytes(build_message(message, app.config, NOW).data,
                                      policy=policy.default)
    url = manage_url(message.registration, app.config["BASE_URL"])
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_content()
    html = next(p for p in parsed.walk() if p.get_content_type() == "text/html").get_content()
    assert ("Declining the invitation in your calendar does not release your place. To cancel, "
            f"use this link: {url}") in " ".join(text.split())
    assert f'To cancel, <a href="{url}">use this link</a>.' in html
    ics = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    unfolded = ics.get_payload(decode=True).decode().replace("\r\n ", "")
    attendee = next(line for line in unfolded.split("\r\n") if line.startswith("ATTENDEE"))
    assert "RSVP=FALSE" in attendee and "PARTSTAT=NEEDS-ACTION" in attendee


@pytest.mark.parametrize("kind, method, status", [
    (MessageKind.CANCELLATION, IcalMethod.CANCEL, "cancelled"),
    (MessageKind.REMINDER, None, "confirmed"),
    (MessageKind.WAITLISTED, None, "waitlisted"),
])
def test_emails_without_a_request_invite_say_nothing_of_declining(app, kind, method, status):
    message = a_message(kind, method, status)
    data = build_message(message, app.config, NOW).data
    parsed = email.message_from_bytes(data, policy=policy.default)
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Declining the invitation" not in text


def test_a_cancel_invites_attendee_line_has_no_rsvp_or_partstat(app):
    message = a_message(MessageKind.CANCELLATION, IcalMethod.CANCEL, "cancelled")
    parsed = email.message_from_bytes(build_message(message, app.config, NOW).data,
                                      policy=policy.default)
    ics = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    unfolded = ics.get_payload(decode=True).decode().replace("\r\n ", "")
    attendee = next(line for line in unfolded.split("\r\n") if line.startswith("ATTENDEE"))
    assert "RSVP" not in attendee and "PARTSTAT" not in attendee
