"""The attendance report: a webinar platform's CSV marks who attended; bad uploads change
nothing and say why; the recording's follow-up then thanks or misses each person."""

import codecs
import email
import html
import io
import re
from datetime import timedelta
from email import policy

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from extensions import db
from notifications import planner
from notifications.dispatcher import dispatch
from notifications.mail import build_message
from organisers.models import AuditEntry
from registration import changes
from registration.models import Registration
from tests.conftest import NOW, make_event, make_registration, outbox, page_csrf

RECORDING = "https://video.example.org/r/1"


@pytest.fixture
def event(app):
    """A session that has ended, with a seat holder who came, one who did not, one on the
    waiting list and one who cancelled."""
    event = make_event(starts_at=NOW - timedelta(days=1), recording_url=None)
    make_registration(event, name="Aiko Tanaka", email="Aiko.Tanaka@Example.org",
                      email_key="aiko.tanaka@example.org")
    make_registration(event, name="Ben Okafor", email="ben@example.org")
    make_registration(event, name="Chloé Martin", email="chloe@example.org",
                      status="waitlisted", confirmed_at=None)
    make_registration(event, name="Dev Patel", email="dev@example.org", status="cancelled",
                      cancelled_at=NOW)
    db.session.commit()
    return event


def attendance():
    """Each registration's attended, by address, as the database holds it now."""
    db.session.expire_all()
    return dict(db.session.execute(sa.select(Registration.email_key, Registration.attended)).all())


NOBODY_KNOWN = {"aiko.tanaka@example.org": None, "ben@example.org": None,
                "chloe@example.org": None, "dev@example.org": None}


def audited():
    return [(entry.action, entry.target, entry.detail) for entry in db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "attendance"))]


def upload(admin, slug, data: bytes, filename="attendees.csv", token=None):
    path = f"/admin/events/{slug}/attendance"
    form = {"csrf_token": token or page_csrf(admin, path), "report": (io.BytesIO(data), filename)}
    return admin.post(path, data=form, content_type="multipart/form-data")


def text_of(response) -> str:
    """The page's words, markup and entities aside."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))
                    .split())


# -- what a report does -------------------------------------------------------------------------

def test_a_report_marks_who_came_who_did_not_and_lists_strangers(app, admin, event):
    report = (b"Name,Email,Join time\n"
              b"Aiko,AIKO.TANAKA@example.org,10:01\n"
              b"Host,host@example.org,09:55\n"
              b"Stranger,stranger@example.org,10:05\n")

    response = upload(admin, event.slug, report)

    assert response.status_code == 200
    assert attendance() == {"aiko.tanaka@example.org": True, "ben@example.org": False,
                            "chloe@example.org": None, "dev@example.org": None}
    page = text_of(response)
    assert "Addresses in the report: 3" in page
    assert "Attended (registered and in the report): 1" in page
    assert "Not attended (confirmed, not in the report): 1" in page
    assert ("Not registered (in the report, not registered for this session): 2: "
            "host@example.org stranger@example.org") in page
    assert audited() == [("attendance", event.slug, {
        "file": "attendees.csv", "addresses": 3, "matched": 1, "not_registered": 2,
        "not_attended": 1})]


def test_a_new_report_replaces_the_previous_one(app, admin, event):
    upload(admin, event.slug, b"email\naiko.tanaka@example.org\n")
    response = upload(admin, event.slug, b"email\nben@example.org\nchloe@example.org\n")

    assert response.status_code == 200
    # A waitlisted person who joined anyway counts as attended; a cancelled one not in it is
    # unknown, never "missed".
    assert attendance() == {"aiko.tanaka@example.org": False, "ben@example.org": True,
                            "chloe@example.org": True, "dev@example.org": None}
    assert "Attended (registered and in the report): 2" in text_of(response)
    assert len(audited()) == 2


@pytest.mark.parametrize("header", [
    "email", "Email", "EMAIL", "E-mail", "Email Address", "e-mail address", "Attendee Email",
    "User Email", "Participant Email", "Registrant email", "メールアドレス", "ｍａｉｌ",
    " Email ", "email_address",
])
def test_the_email_column_is_found_by_any_common_header(app, admin, event, header):
    report = f"First name,{header},Company\nBen,ben@example.org,City of Lagos\n".encode()

    response = upload(admin, event.slug, report)

    assert response.status_code == 200, text_of(response)
    assert attendance()["ben@example.org"] is True


ZOOM_WEBINAR = """\ufeffAttendee Report,
Report Generated:,"7/21/2025 10:02 AM"
Topic,Webinar ID,Actual Start Time,Actual Duration (minutes),# Registered,# Cancelled
Climate finance 101,"812 3456 7890","7/20/2025 9:00 AM",92,4,1
Host Details,
Attended,User Name (Original Name),Email,Join Time,Leave Time,Time in Session (minutes)
Yes,Forum host,host@example.org,"7/20/2025 8:50 AM","7/20/2025 10:32 AM",102
Panelist Details,
Attended,User Name (Original Name),Email,Join Time
Yes,Speaker,speaker@example.org,"7/20/2025 8:55 AM"
Attendee Details,
Attended,User Name (Original Name),First Name,Last Name,Email,Registration Time
Yes,"Tanaka, Aiko",Aiko,Tanaka,aiko.tanaka@example.org,"6/20/2025 9:00 AM"
No,Ben,Ben,Okafor,ben@example.org,"6/21/2025 9:00 AM"
"""


@pytest.mark.parametrize("report", [
    pytest.param(codecs.BOM_UTF8 + b"Name;E-Mail\r\nAiko;aiko.tanaka@example.org\r\n",
                 id="bom-semicolon-crlf"),
    pytest.param(ZOOM_WEBINAR.encode(), id="zoom-sections-with-attended-no"),
    pytest.param(codecs.BOM_UTF16_LE + "Full Name\tUser Action\tEmail\n"
                 "Aiko Tanaka\tJoined\taiko.tanaka@example.org\n".encode("utf-16-le"),
                 id="teams-utf16-tab"),
    pytest.param(b"Webinar attendees\n\nexported 2025-07-21\n"
                 b'"Name, as given",Participant Email\n'
                 b'"Tanaka, Aiko","  aiko.tanaka@example.org "\n'
                 b"(no address),\n", id="preamble-quoted-blank"),
    pytest.param("氏名,メールアドレス\n田中 愛子,aiko.tanaka@example.org\n".encode(),
                 id="japanese"),
    pytest.param(b"\xef\xbb\xbfevent_slug,name,email\n"
                 b"climate-finance-101,Aiko,aiko.tanaka@example.org\n", id="our-own-export"),
])
def test_reports_of_the_common_platforms_are_read(app, admin, event, report):
    response = upload(admin, event.slug, report)

    assert response.status_code == 200, text_of(response)
    assert attendance() == {"aiko.tanaka@example.org": True, "ben@example.org": False,
                            "chloe@example.org": None, "dev@example.org": None}


def test_rows_without_an_address_are_counted_not_guessed(app, admin, event):
    response = upload(admin, event.slug, b"Name,Email\nAiko,aiko.tanaka@example.org\n"
                                         b"Walk-in guest,\nPhone dial-in,+81 3 1234 5678\n")

    assert response.status_code == 200
    assert "Rows without an address, skipped: 2" in text_of(response)


def test_a_report_far_above_the_sign_up_forms_limit_is_accepted(app, admin, event):
    # The global limit (64 KB) is for the public form; this view raises its own.
    lines = [f"Guest {n},guest{n}@example.org" for n in range(40_000)]
    report = ("Name,Email\nAiko,aiko.tanaka@example.org\n" + "\n".join(lines)).encode()
    assert len(report) > 1024 * 1024

    response = upload(admin, event.slug, report)

    assert response.status_code == 200, text_of(response)
    assert attendance()["aiko.tanaka@example.org"] is True
    assert "and 39990 more" in text_of(response)


def test_the_page_shows_the_form_the_counts_and_the_downloads(app, admin, event):
    upload(admin, event.slug, b"email\naiko.tanaka@example.org\n")

    response = admin.get(f"/admin/events/{event.slug}/attendance")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="report"' in page
    words = text_of(response)
    assert "Attended 1 Not attended 1 No report yet 0" in words
    assert f"/admin/events/{event.slug}/attendees.csv?status=confirmed" in page
    assert f"/admin/events/{event.slug}/attendees.xlsx" in page


# -- bad uploads: a clear message, a 4xx, nothing changed, nothing audited -----------------------

def xlsx_bytes():
    workbook = Workbook()
    workbook.active.append(["Email"])
    workbook.active.append(["aiko.tanaka@example.org"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("report, status, message", [
    pytest.param("メールアドレス\naiko.tanaka@example.org\n".encode("shift_jis"), 415,
                 "The file is not UTF-8 text", id="shift-jis"),
    pytest.param("Name,Email\nZoë,aiko.tanaka@example.org\n".encode("latin-1"), 415,
                 "The file is not UTF-8 text", id="latin-1"),
    pytest.param(xlsx_bytes(), 415, "This file is an Excel workbook (.xlsx)", id="xlsx"),
    pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", 415, "This file is a PDF", id="pdf"),
    pytest.param(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 415, None, id="png"),
    pytest.param(b"email\0\nx@example.org\n", 415, "holds binary data", id="nul"),
    pytest.param(b"Name,Company\nAiko,City of Yokohama\n", 422,
                 "No email column found. The report needs a header row naming it, such as "
                 "Email, E-mail, Email address, Attendee email or メールアドレス; its first "
                 "row reads: Name,Company.", id="no-email-column"),
    pytest.param(b"Name,Email\n", 422, "no attendee addresses in it", id="header-only"),
    pytest.param(b"Name,Email\nAiko,not an address\n", 422, "no attendee addresses in it",
                 id="no-addresses"),
    pytest.param(b"", 400, "The file is empty", id="empty"),
    pytest.param(b'Name,Email\n"Aiko,' + b"x" * 200_000 + b'"\n', 422,
                 "The file is not a readable CSV", id="unreadable"),
])
def test_a_bad_upload_says_what_to_do_and_changes_nothing(app, admin, event, report, status,
                                                          message):
    response = upload(admin, event.slug, report)

    assert response.status_code == status
    if message:
        assert message in text_of(response)
    assert 'role="alert"' in response.get_data(as_text=True)
    assert attendance() == NOBODY_KNOWN
    assert audited() == []


def test_a_20_mb_upload_is_refused_with_413_and_a_clear_message(app, admin, event):
    report = b"Email\n" + b"aiko.tanaka@example.org\n" * (20 * 1024 * 1024 // 24)

    response = upload(admin, event.slug, report)

    assert response.status_code == 413
    assert "The file is larger than 10 MB" in text_of(response)
    assert attendance() == NOBODY_KNOWN
    assert audited() == []


def test_no_file_chosen_is_400(app, admin, event):
    path = f"/admin/events/{event.slug}/attendance"
    response = admin.post(path, data={"csrf_token": page_csrf(admin, path)},
                          content_type="multipart/form-data")

    assert response.status_code == 400
    assert "Choose the attendee report" in text_of(response)


def test_an_upload_without_the_csrf_token_is_refused(app, admin, event):
    response = upload(admin, event.slug, b"email\naiko.tanaka@example.org\n", token="forged")

    assert response.status_code == 400
    assert attendance() == NOBODY_KNOWN
    assert audited() == []


def test_an_unknown_event_is_404(app, admin):
    assert admin.get("/admin/events/no-such-session/attendance").status_code == 404


# -- the follow-up ------------------------------------------------------------------------------

def follow_up_texts(app, registration):
    message = planner.plan_follow_up(registration, NOW)
    db.session.flush()
    parsed = email.message_from_bytes(build_message(message, app.config, NOW).data,
                                      policy=policy.default)
    plain = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    return plain, parsed.get_body(("html",)).get_content()


# The opening line of each follow-up, by language and by what the report said.
OPENINGS = {
    ("en", True): "Thank you for joining “Climate finance 101”.",
    ("en", False): "Sorry we missed you at “Climate finance 101”.",
    ("en", None): "Thank you for registering for “Climate finance 101”.",
    ("ja", True): "「Climate finance 101」にご参加いただき、ありがとうございました。",
    ("ja", False): "「Climate finance 101」では、お会いできず残念でした。",
    ("ja", None): "「Climate finance 101」にご登録いただき、ありがとうございました。",
}


@pytest.mark.parametrize("language, attended", list(OPENINGS))
def test_the_follow_up_thanks_attendees_and_misses_the_others(app, language, attended):
    event = make_event(starts_at=NOW - timedelta(days=1), recording_url=RECORDING)
    registration = make_registration(event, language=language, attended=attended)

    plain, html_body = follow_up_texts(app, registration)

    opening = OPENINGS[language, attended]
    assert opening in plain
    # The English title carries its own language in a Japanese email.
    strong = '<strong lang="en">' if language == "ja" else "<strong>"
    assert opening.replace(
        "Climate finance 101", f"{strong}Climate finance 101</strong>") in html_body
    assert RECORDING in plain and f'href="{RECORDING}"' in html_body
    for other in OPENINGS.keys() - {(language, attended)}:
        assert OPENINGS[other] not in plain


def test_without_a_report_the_follow_up_is_the_neutral_text_it_always_was(app):
    event = make_event(starts_at=NOW - timedelta(days=1), recording_url=RECORDING)
    registration = make_registration(event)

    plain, _ = follow_up_texts(app, registration)

    assert plain == ("Hello Aiko Tanaka,\n\n"
                     "Thank you for registering for “Climate finance 101”.\n\n"
                     f"The recording is online:\n{RECORDING}\n\n"
                     "About the session: http://forum.example.org/events/climate-finance-101\n\n"
                     "-- \n"
                     "This email was sent automatically by Forum Sign-up for Virtual Forum.\n"
                     "Questions? Reply to this email (organisers@example.org).")


def test_after_an_upload_the_dispatched_follow_ups_differ_by_attendance(app, admin, event):
    upload(admin, event.slug, b"email\naiko.tanaka@example.org\n")
    changes.change_event(event, {"recording_url": RECORDING}, NOW)
    db.session.commit()

    dispatch(NOW + timedelta(minutes=1))

    mails = {str(mail["To"]): mail.get_body(("plain",)).get_content() for mail in outbox(app)
             if str(mail["Subject"]).startswith("Recording:")}
    # Sent to the address as email-validator writes it for the wire: the domain lowercased.
    assert set(mails) == {"Aiko Tanaka <Aiko.Tanaka@example.org>", "Ben Okafor <ben@example.org>"}
    assert "Thank you for joining" in mails["Aiko Tanaka <Aiko.Tanaka@example.org>"]
    assert "Sorry we missed you" in mails["Ben Okafor <ben@example.org>"]
