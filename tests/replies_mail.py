"""Emails as they arrive in the replies mailbox, written as real senders write them: a calendar
answer as Google Calendar and Outlook send it (iTIP REPLY), a delivery report as Postfix writes
it (RFC 3464), and mail for people."""

import uuid
from email.message import EmailMessage
from email.utils import format_datetime

from tests.conftest import NOW

REPLIES = "replies@example.org"


def calendar_reply(uid: str, attendee: str, partstat: str, *, attached: bool = False,
                   sequence: int = 0, message_id: str | None = None,
                   change=lambda calendar: calendar) -> bytes:
    """An attendee's calendar answering an invite: Google's form (a text/calendar alternative
    with method=REPLY), or Outlook's (the answer as an attached .ics file); `change` rewrites
    the calendar text first."""
    calendar = "\r\n".join([
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:REPLY",
        "BEGIN:VEVENT",
        "DTSTART:20250731T080000Z",
        "DTEND:20250731T093000Z",
        "DTSTAMP:20250701T090000Z",
        "ORGANIZER;CN=Forum organisers:mailto:" + REPLIES,
        f"UID:{uid}",
        f"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat};",
        f" CN=Aiko Tanaka;X-NUM-GUESTS=0:mailto:{attendee}",
        f"SEQUENCE:{sequence}",
        f"SUMMARY:{partstat.title()}: Climate finance 101",
        "STATUS:CONFIRMED",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ])
    calendar = change(calendar)
    mail = _envelope(f"{partstat.title()}: Climate finance 101", attendee, message_id)
    mail.set_content(f"Aiko Tanaka has {partstat.lower()} this invitation.")
    if attached:
        mail.add_attachment(calendar.encode(), maintype="application", subtype="ics",
                            filename="invite.ics")
    else:
        mail.add_alternative(calendar.encode(), maintype="text", subtype="calendar",
                             params={"method": "REPLY"})
    return mail.as_bytes()


def delivery_report(recipient: str, status: str = "5.1.1", *, action: str = "failed",
                    original_message_id: str | None = None,
                    message_id: str | None = None) -> bytes:
    """A bounce as Postfix writes it: a human part, the machine-readable status, and the
    headers of the email that could not be delivered."""
    message_id = message_id or f"<{uuid.uuid4().hex}@mx.example.org>"
    quoted = f"Message-ID: {original_message_id}\r\n" if original_message_id else ""
    return (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        f"To: {REPLIES}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(NOW)}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        '\tboundary="B0UND"\r\n'
        "\r\n"
        "--B0UND\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "\r\n"
        f"<{recipient}>: host mx.example.org said: 550 {status} User unknown\r\n"
        "\r\n"
        "--B0UND\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n"
        "Arrival-Date: Tue,  1 Jul 2025 09:00:00 +0000 (UTC)\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mx.example.org\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address\r\n"
        "    rejected: User unknown in virtual mailbox table\r\n"
        "\r\n"
        "--B0UND\r\n"
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: Forum Sign-up <forum@example.org>\r\n"
        f"To: {recipient}\r\n"
        "Subject: Reminder: Climate finance 101\r\n"
        f"{quoted}"
        "\r\n"
        "--B0UND--\r\n"
    ).encode()


def human_mail(sender: str = "someone@example.org") -> bytes:
    """A person writing to the mailbox: left for people."""
    mail = _envelope("Question about the workshop", sender, None)
    mail.set_content("Will the slides be shared after the session?")
    return mail.as_bytes()


def _envelope(subject: str, sender: str, message_id: str | None) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = REPLIES
    mail["Subject"] = subject
    mail["Date"] = format_datetime(NOW)
    mail["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@mail.example.net>"
    return mail
