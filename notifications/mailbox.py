"""Reading the mailbox where calendar replies and bounces arrive (REPLIES_EMAIL): each message
not examined before goes to `act`, which says what it was; what was ours moves to
IMAP_DONE_FOLDER, the rest stays, unread, for people."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from extensions import db
from notifications import imap

log = logging.getLogger(__name__)

# One run stays bounded however full the folder is; the next run takes the rest.
MAX_MESSAGES_PER_RUN = 500
# What act() answers: acted on now, or in an earlier run (both move), or not ours (stays).
REPLY, BOUNCE, DUPLICATE, LEFT = "reply", "bounce", "duplicate", "left"
MOVED = (REPLY, BOUNCE, DUPLICATE)

Act = Callable[[bytes, datetime], str]


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


@dataclass
class MailboxSummary:
    """What one reading of the folder did, message by message."""

    folder: str
    examined: int = 0
    replies: int = 0
    bounces: int = 0
    duplicates: int = 0
    left: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return (f"mailbox {self.folder}: {self.examined} examined, "
                f"{_count(self.replies, 'reply', 'replies')}, "
                f"{_count(self.bounces, 'bounce', 'bounces')}, "
                f"{_count(self.duplicates, 'duplicate', 'duplicates')}, "
                f"{self.left} left for people, {self.failed} failed")


def read_mailbox(config, act: Act, now: datetime, *, limit: int = MAX_MESSAGES_PER_RUN,
                 should_stop: Callable[[], bool] | None = None) -> MailboxSummary:
    """Read IMAP_FOLDER once: hand each message not examined before to `act` (which commits
    what it does), move what it acted on to IMAP_DONE_FOLDER, mark what it left as examined.

    A message whose act raised is left unmarked, so the next run tries it again. Raises
    imap.MailboxError when the server can't be reached or refuses us, and the database's
    OperationalError when it is down (every message would fail alike). `should_stop` is asked
    between messages.
    """
    folder = config["IMAP_FOLDER"]
    summary = MailboxSummary(folder)
    with imap.connect(config) as mailbox:
        mailbox.select(folder)
        done = []
        for uid in mailbox.unexamined(limit):
            if should_stop and should_stop():
                break  # what was acted on is still moved below
            raw = mailbox.fetch(uid)
            if raw is None:
                continue  # gone since the search: another reader took it
            summary.examined += 1
            try:
                outcome = act(raw, now)
                if outcome not in (*MOVED, LEFT):
                    raise ValueError(f"act answered {outcome!r}")
            except sa.exc.OperationalError:
                # The database is down: every message would fail alike, so the run ends here
                # (the worker logs one line); what was acted on so far moves at the next run.
                db.session.rollback()
                raise
            except Exception as exc:
                # Whatever act began is undone; the message waits for the next run (after a
                # fix), and the rest of the folder goes on.
                db.session.rollback()
                summary.failed += 1
                log.error("mailbox %s: message %s left to try again, it could not be handled "
                          "(%s: %s)", folder, uid, type(exc).__name__, exc)
                continue
            if outcome == LEFT:
                mailbox.mark_examined(uid)
                summary.left += 1
                continue
            done.append(uid)
            if outcome == REPLY:
                summary.replies += 1
            elif outcome == BOUNCE:
                summary.bounces += 1
            else:
                summary.duplicates += 1
        # One move at the end: a run cut short leaves these in the folder, and the next run
        # finds them acted on already ("duplicate") and moves them then.
        mailbox.move(done, config["IMAP_DONE_FOLDER"])
    return summary
