"""Reading the mailbox against a real Dovecot (tests/imap_server.py): what act says is ours
moves to the done folder, the rest stays unread and is not fetched again, a message whose act
failed is tried again; the CLI's summary and its one-line errors; TLS, and servers without MOVE."""

import email
import logging

import pytest
import sqlalchemy as sa

from extensions import db
from notifications import imap
from notifications.mailbox import read_mailbox
from notifications.worker import add_jobs
from tests.conftest import NOW
from tests.imap_server import DovecotServer, missing_dovecot
from tests.smtp_servers import free_port

if reason := missing_dovecot():
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def dovecot():
    with DovecotServer() as server:
        yield server


@pytest.fixture(scope="module")
def tls_dovecot():
    with DovecotServer(tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def plain_dovecot():
    """A server that announces neither MOVE (RFC 6851) nor UIDPLUS (RFC 4315)."""
    with DovecotServer(capability="IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE") as server:
        yield server


@pytest.fixture
def mailbox(dovecot):
    """The module's Dovecot, emptied for this test."""
    dovecot.empty()
    return dovecot


@pytest.fixture
def imap_app(app_with, mailbox):
    with app_with(**mailbox.settings()) as app:
        yield app


def mail(subject: str, number: int = 1) -> bytes:
    return (f"From: someone@example.com\r\nTo: replies@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{number}@example.com>\r\n"
            f"\r\nbody {number}\r\n").encode()


class ActBySubject:
    """An act() that answers what the subject says ("reply: …" → "reply"), or raises for
    "boom"; it keeps every subject it was given."""

    def __init__(self):
        self.seen = []

    def __call__(self, raw: bytes, now) -> str:
        assert now == NOW
        subject = email.message_from_bytes(raw)["Subject"]
        self.seen.append(subject)
        if subject.startswith("boom"):
            raise RuntimeError("the database said no")
        return subject.split(":")[0]


def subjects(server, folder="INBOX"):
    return sorted(server.subject(uid, folder) for uid in server.messages(folder))


def test_what_act_says_is_ours_moves_to_the_done_folder_made_when_missing(imap_app, mailbox):
    for subject in ("reply: yes", "bounce: no such user", "duplicate: seen", "left: hello"):
        mailbox.append(mail(subject))
    assert mailbox.messages("Processed") == {}  # no such folder yet

    summary = read_mailbox(imap_app.config, ActBySubject(), NOW)

    assert (summary.examined, summary.replies, summary.bounces, summary.duplicates,
            summary.left, summary.failed) == (4, 1, 1, 1, 1, 0)
    assert str(summary) == ("mailbox INBOX: 4 examined, 1 reply, 1 bounce, 1 duplicate, "
                            "1 left for people, 0 failed")
    assert subjects(mailbox) == ["left: hello"]
    assert subjects(mailbox, "Processed") == ["bounce: no such user", "duplicate: seen",
                                              "reply: yes"]


def test_a_message_left_for_people_stays_unread_and_is_not_fetched_again(imap_app, mailbox):
    mailbox.append(mail("left: a question for the organisers"))
    act = ActBySubject()
    assert read_mailbox(imap_app.config, act, NOW).left == 1
    [flags] = mailbox.messages().values()
    assert "\\Seen" not in flags  # people still see it as new
    assert imap.EXAMINED in flags

    mailbox.append(mail("reply: accepted"))
    again = read_mailbox(imap_app.config, act, NOW)
    assert (again.examined, again.replies, again.left) == (1, 1, 0)
    assert act.seen == ["left: a question for the organisers", "reply: accepted"]
    assert subjects(mailbox) == ["left: a question for the organisers"]


def test_a_message_whose_act_failed_stays_and_is_tried_again(imap_app, mailbox, caplog):
    mailbox.append(mail("boom: first"))
    mailbox.append(mail("reply: second"))
    with caplog.at_level(logging.ERROR):
        summary = read_mailbox(imap_app.config, ActBySubject(), NOW)
    assert (summary.examined, summary.failed, summary.replies) == (2, 1, 1)
    [line] = [r for r in caplog.records if r.name == "notifications.mailbox"]
    assert "RuntimeError: the database said no" in line.getMessage()
    assert line.exc_info is None and "\n" not in line.getMessage()
    [(uid, flags)] = mailbox.messages().items()
    assert mailbox.subject(uid) == "boom: first"
    assert imap.EXAMINED not in flags and "\\Seen" not in flags

    # Fixed (or the database back): the next run takes it.
    fixed = read_mailbox(imap_app.config, lambda raw, now: "reply", NOW)
    assert (fixed.examined, fixed.replies, fixed.failed) == (1, 1, 0)
    assert mailbox.messages() == {}


def test_what_a_failed_act_began_in_the_database_is_rolled_back(imap_app, mailbox):
    from organisers.models import Organiser

    def half_done(raw, now):
        db.session.add(Organiser(email="half@example.org", password_hash="x", created_at=now))
        db.session.flush()
        raise RuntimeError("failed after writing")

    mailbox.append(mail("boom: half done"))
    assert read_mailbox(imap_app.config, half_done, NOW).failed == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Organiser)) == 0


def test_a_run_takes_at_most_its_limit_and_the_next_run_the_rest(imap_app, mailbox):
    for number in range(3):
        mailbox.append(mail("reply: yes", number))
    assert read_mailbox(imap_app.config, ActBySubject(), NOW, limit=2).replies == 2
    assert read_mailbox(imap_app.config, ActBySubject(), NOW, limit=2).replies == 1
    assert len(mailbox.messages("Processed")) == 3


def test_a_done_folder_with_spaces_and_beyond_ascii_is_made_and_named_in_modified_utf7(
        app_with, mailbox):
    mailbox.append(mail("reply: yes"))
    with app_with(**mailbox.settings(), IMAP_DONE_FOLDER="Réponses & retours") as app:
        assert read_mailbox(app.config, ActBySubject(), NOW).replies == 1
    # RFC 3501 §5.1.3, as any mail client would write it.
    assert mailbox.folders() == {"INBOX", "R&AOk-ponses &- retours"}
    assert len(mailbox.messages("R&AOk-ponses &- retours")) == 1


def test_without_move_or_uidplus_messages_are_copied_deleted_and_expunged(
        app_with, plain_dovecot):
    plain_dovecot.empty()
    plain_dovecot.append(mail("reply: yes"))
    plain_dovecot.append(mail("left: hello"))
    with app_with(**plain_dovecot.settings()) as app:
        with imap.connect(app.config) as connection:
            assert not {"MOVE", "UIDPLUS"} & connection.capabilities
        summary = read_mailbox(app.config, ActBySubject(), NOW)
    assert (summary.replies, summary.left) == (1, 1)
    assert subjects(plain_dovecot) == ["left: hello"]
    assert subjects(plain_dovecot, "Processed") == ["reply: yes"]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_to_a_server_whose_certificate_the_ca_file_vouches_for(app_with, tls_dovecot,
                                                                     security):
    tls_dovecot.empty()
    tls_dovecot.append(mail("reply: over TLS"))
    with app_with(**tls_dovecot.settings(security)) as app:
        assert read_mailbox(app.config, ActBySubject(), NOW).replies == 1
    assert subjects(tls_dovecot, "Processed") == ["reply: over TLS"]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_refuses_a_certificate_the_system_does_not_trust_in_one_line(app_with, tls_dovecot,
                                                                          security):
    with app_with(**{**tls_dovecot.settings(security), "IMAP_CA_FILE": ""}) as app:
        with pytest.raises(imap.MailboxError) as exc:
            read_mailbox(app.config, ActBySubject(), NOW)
    message = str(exc.value)
    assert "127.0.0.1" in message and "CERTIFICATE_VERIFY_FAILED" in message
    assert "\n" not in message


# --- The command and the worker's job ---------------------------------------------------------

@pytest.fixture
def inbox(monkeypatch):
    """What the command acts with (registration.replies.act_on) as an ActBySubject: these
    tests are about reading and moving; tests/test_registration_replies_mailbox.py reads real
    calendar replies and bounces end to end."""
    act = ActBySubject()
    monkeypatch.setattr("registration.replies.act_on", act)
    return act


def test_flask_read_mailbox_prints_the_summary_line(imap_app, mailbox, inbox):
    mailbox.append(mail("reply: yes"))
    mailbox.append(mail("left: hello"))
    result = imap_app.test_cli_runner().invoke(
        args=["read-mailbox", "--now", "2025-06-20T09:00:00Z"])
    assert result.exit_code == 0, result.output
    assert result.output == ("mailbox INBOX: 2 examined, 1 reply, 0 bounces, 0 duplicates, "
                             "1 left for people, 0 failed\n")
    assert len(inbox.seen) == 2


def test_flask_read_mailbox_with_a_wrong_password_says_so_in_one_line(app_with, mailbox, inbox):
    with app_with(**{**mailbox.settings(), "IMAP_PASSWORD": "wrong"}) as app:
        result = app.test_cli_runner().invoke(args=["read-mailbox"])
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith(f"Error: IMAP server 127.0.0.1:{mailbox.port}: login as ")
    assert "AUTHENTICATIONFAILED" in line and "wrong" not in line
    assert "Traceback" not in result.output and inbox.seen == []


def test_flask_read_mailbox_without_a_server_says_so_in_one_line(app_with, inbox):
    port = free_port()
    with app_with(IMAP_HOST="127.0.0.1", IMAP_PORT=str(port), IMAP_USERNAME="forum",
                  IMAP_SECURITY="none", REPLIES_EMAIL="replies@example.org") as app:
        result = app.test_cli_runner().invoke(args=["read-mailbox"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: IMAP server 127.0.0.1:{port} can't be reached (")
    assert len(result.output.splitlines()) == 1


def test_the_workers_mailbox_job_reads_the_folder_and_logs_one_line_when_it_cant(
        imap_app, mailbox, caplog):
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, imap_app)
    job = scheduler.get_job("mailbox")
    assert job.trigger.interval.total_seconds() == 60
    mailbox.append(mail("bounce: gone"))
    summary = job.func(*job.args, clock=lambda: NOW, act=ActBySubject())
    assert summary.bounces == 1

    imap_app.config["IMAP_PORT"] = free_port()  # the server gone
    with caplog.at_level(logging.ERROR):
        assert job.func(*job.args, clock=lambda: NOW, act=ActBySubject()) is None
    [line] = [r for r in caplog.records if "mailbox failed" in r.getMessage()]
    assert "can't be reached" in line.getMessage() and line.exc_info is None
