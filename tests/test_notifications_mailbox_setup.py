"""The mailbox's parts that need no IMAP server: the command and the worker without IMAP_HOST,
the summary line, folder names as IMAP wants them."""

from datetime import UTC

import pytest

from notifications import imap, worker
from notifications.mailbox import MailboxSummary


def jobs(app):
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=UTC)
    worker.add_jobs(scheduler, app)
    return {job.id: job for job in scheduler.get_jobs()}


def test_flask_read_mailbox_without_imap_host_says_so_in_one_line(runner):
    result = runner.invoke(args=["read-mailbox"])
    assert result.exit_code == 2
    assert result.output == "Error: IMAP_HOST is not set: there is no mailbox to read\n"


def test_the_worker_reads_a_mailbox_only_when_imap_host_is_set(app_with):
    with app_with() as app:
        assert set(jobs(app)) == {"dispatch", "housekeeping"}
        assert worker.mailbox_words(app.config) == "no mailbox read (IMAP_HOST is not set)"
    with app_with(IMAP_HOST="imap.example.org", IMAP_USERNAME="forum",
                  REPLIES_EMAIL="replies@example.org", MAILBOX_INTERVAL_SECONDS="120") as app:
        scheduled = jobs(app)
        assert set(scheduled) == {"dispatch", "housekeeping", "mailbox"}
        assert scheduled["mailbox"].trigger.interval.total_seconds() == 120
        assert worker.mailbox_words(app.config) == ("mailbox INBOX on imap.example.org read "
                                                    "every 120s")


def test_the_summary_is_one_line_with_its_words_in_the_singular_or_plural():
    assert str(MailboxSummary("INBOX", examined=3, replies=1, bounces=1, left=1)) == (
        "mailbox INBOX: 3 examined, 1 reply, 1 bounce, 0 duplicates, 1 left for people, "
        "0 failed")
    assert str(MailboxSummary("Replies", examined=5, replies=2, bounces=2, duplicates=1)) == (
        "mailbox Replies: 5 examined, 2 replies, 2 bounces, 1 duplicate, 0 left for people, "
        "0 failed")


@pytest.mark.parametrize("name, wire", [
    ("INBOX", '"INBOX"'),
    ("Processed replies", '"Processed replies"'),
    ('Say "hi" \\ there', '"Say \\"hi\\" \\\\ there"'),
    ("Tom & Jerry", '"Tom &- Jerry"'),
    # RFC 3501 §5.1.3's own example, and Japanese.
    ("~peter/mail/台北/日本語", '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'),
    # 処理済み in UTF-16BE is 51E6 7406 6E08 307F: base64 UeZ0Bm4IMH8=, without its padding.
    ("処理済み", '"&UeZ0Bm4IMH8-"'),
])
def test_folder_names_are_quoted_and_beyond_ascii_in_modified_utf7(name, wire):
    assert imap.folder_name(name) == wire
