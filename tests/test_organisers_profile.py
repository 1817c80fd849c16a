"""The organiser's profile: their time zone (also set by `flask create-organiser --timezone`) and
their password, each change checked, audited and named in a flash."""

import re

import pytest
import sqlalchemy as sa

from extensions import db
from organisers.models import AuditEntry, Organiser
from tests.conftest import (
    ORGANISER_EMAIL,
    ORGANISER_PASSWORD,
    log_in,
    make_organiser,
    page_csrf,
)

NEW_PASSWORD = "a much longer new passphrase"


def save(client, **fields):
    """POST the profile form as a browser would: the zone as shown, the password boxes empty."""
    data = {"timezone": "UTC", "current_password": "", "new_password": "",
            "new_password_again": "", **fields}
    data.setdefault("csrf_token", page_csrf(client, "/admin/profile"))
    return client.post("/admin/profile", data=data)


def stored(organiser) -> Organiser:
    return db.session.execute(sa.select(Organiser).where(Organiser.id == organiser.id)
                              .execution_options(populate_existing=True)).scalar_one()


def audited() -> list[tuple[str, dict | None]]:
    return [(e.action, e.detail) for e in db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action != "signed in").order_by(AuditEntry.id))]


def error_beside(page: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="{name}-error">(.*?)</p>', page, re.S)
    assert match, f"no error beside {name}"
    return re.sub(r"<[^>]+>", "", match.group(1))


# --- flask create-organiser --timezone -----------------------------------------------------------


def test_create_organiser_stores_the_time_zone_given(app, runner):
    result = runner.invoke(args=["create-organiser", "kenji@example.org", "--timezone",
                                 "Asia/Tokyo"], input="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(Organiser.timezone)) == "Asia/Tokyo"


def test_create_organiser_stores_an_old_spelling_as_the_zone_it_names(app, runner):
    result = runner.invoke(args=["create-organiser", "priya@example.org", "--timezone",
                                 "Asia/Calcutta"], input="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(Organiser.timezone)) == "Asia/Kolkata"


def test_create_organiser_without_a_zone_keeps_utc(app, runner):
    result = runner.invoke(args=["create-organiser", "kenji@example.org"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(Organiser.timezone)) == "UTC"


def test_create_organiser_refuses_an_unknown_zone_in_one_line_and_stores_nothing(app, runner):
    result = runner.invoke(args=["create-organiser", "kenji@example.org", "--timezone",
                                 "Asia/Tokio"], input="a long enough password\n")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0, result.output
    assert "Asia/Tokio" in result.output and "IANA" in result.output
    assert db.session.scalar(sa.select(Organiser)) is None


# --- the profile page ----------------------------------------------------------------------------


def test_the_console_links_the_profile_and_it_shows_the_stored_zone(admin, organiser):
    organiser.timezone = "Asia/Kolkata"
    db.session.commit()
    assert 'href="/admin/profile"' in admin.get("/admin/").get_data(as_text=True)
    page = admin.get("/admin/profile").get_data(as_text=True)
    assert '<option value="Asia/Kolkata" selected' in page
    assert len(re.findall(r"<option [^>]*\bselected\b", page)) == 1
    assert 'type="password"' in page and 'autocomplete="current-password"' in page


def test_a_zone_the_list_does_not_offer_stays_chosen_until_changed(admin, organiser):
    organiser.timezone = "Etc/GMT-5"  # what `flask create-organiser --timezone` may set
    db.session.commit()
    page = admin.get("/admin/profile").get_data(as_text=True)
    assert '<option value="Etc/GMT-5" selected>' in page
    assert save(admin, timezone="Etc/GMT-5").status_code == 303
    assert stored(organiser).timezone == "Etc/GMT-5" and audited() == []


def test_changing_the_zone_is_stored_audited_and_said(admin, organiser):
    response = save(admin, timezone="Asia/Tokyo")
    assert response.status_code == 303
    assert stored(organiser).timezone == "Asia/Tokyo"
    assert audited() == [("time zone changed", {"from": "UTC", "to": "Asia/Tokyo"})]
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved: your time zone is now Asia/Tokyo — Japan Standard Time." in page


def test_an_old_spelling_of_a_zone_is_stored_as_the_zone_it_names(admin, organiser):
    assert save(admin, timezone="Asia/Calcutta").status_code == 303
    assert stored(organiser).timezone == "Asia/Kolkata"


def test_a_zone_not_on_the_list_is_refused_beside_the_field(admin, organiser):
    response = save(admin, timezone="Mars/Olympus_Mons")
    assert response.status_code == 422
    assert "Choose your time zone" in error_beside(response.get_data(as_text=True), "timezone")
    assert stored(organiser).timezone == "UTC"
    assert audited() == []


def test_saving_the_form_unchanged_changes_nothing(admin, organiser):
    response = save(admin, current_password=ORGANISER_PASSWORD)  # as a password manager fills it
    assert response.status_code == 303
    assert audited() == []
    assert "Nothing was changed" in admin.get("/admin/profile").get_data(as_text=True)


def test_a_new_password_needs_the_current_one_and_then_only_it_signs_in(app, admin, organiser):
    elsewhere = app.test_client()
    assert log_in(elsewhere).status_code == 303
    response = save(admin, timezone="Europe/Berlin", current_password=ORGANISER_PASSWORD,
                    new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD)
    assert response.status_code == 303
    assert audited() == [("time zone changed", {"from": "UTC", "to": "Europe/Berlin"}),
                         ("password changed", None)]
    page = admin.get(response.headers["Location"])
    assert page.status_code == 200  # this browser stays signed in
    assert ("Saved: your time zone is now Europe/Berlin — Central European Time; your password "
            "is changed, and every other device is signed out.") in page.get_data(as_text=True)
    assert elsewhere.get("/admin/").status_code == 303  # the other one is not
    fresh = app.test_client()
    assert log_in(fresh, password=ORGANISER_PASSWORD).status_code == 401
    assert log_in(fresh, email=ORGANISER_EMAIL, password=NEW_PASSWORD).status_code == 303


def test_a_wrong_current_password_changes_nothing_and_is_audited(app, admin, organiser):
    before = stored(organiser).password_hash
    response = save(admin, timezone="Asia/Tokyo", current_password="not my password at all",
                    new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "not your current password" in error_beside(page, "current_password")
    assert NEW_PASSWORD not in page and "not my password at all" not in page
    account = stored(organiser)
    assert (account.password_hash, account.timezone) == (before, "UTC")
    assert audited() == [("password change refused", {"reason": "wrong current password"})]
    assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 401


@pytest.mark.parametrize(("fields", "beside", "words"), [
    ({"current_password": ORGANISER_PASSWORD, "new_password": NEW_PASSWORD,
      "new_password_again": NEW_PASSWORD + "!"}, "new_password_again", "differ"),
    ({"current_password": ORGANISER_PASSWORD, "new_password": "too short",
      "new_password_again": "too short"}, "new_password", "at least 12 characters"),
    ({"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}, "current_password",
     "Enter your current password"),
])
def test_a_new_password_must_be_long_typed_twice_alike_after_the_current_one(
        admin, organiser, fields, beside, words):
    before = stored(organiser).password_hash
    response = save(admin, **fields)
    assert response.status_code == 422
    assert words in error_beside(response.get_data(as_text=True), beside)
    assert stored(organiser).password_hash == before
    assert audited() == []


def test_the_profile_form_needs_its_csrf_token(admin, organiser):
    response = admin.post("/admin/profile", data={"timezone": "Asia/Tokyo"})
    assert response.status_code == 400
    assert stored(organiser).timezone == "UTC"


def test_wrong_current_passwords_are_limited_per_organiser(app_with):
    with app_with(RATELIMIT_ENABLED="true", RATELIMIT_LOGIN_PER_ADDRESS_IP="3 per 15 minutes") \
            as app:
        organiser = make_organiser()
        client = app.test_client()
        assert log_in(client).status_code == 303
        guesses = {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
        codes = [save(client, current_password=f"guess number {n}", **guesses).status_code
                 for n in range(2)]
        # Other mistakes are not guesses and don't count.
        codes.append(save(client, timezone="Nowhere/Else").status_code)
        codes.append(save(client, current_password="guess number 3", **guesses).status_code)
        assert codes == [422, 422, 422, 422]
        # The fourth guess is refused, even a right one.
        assert save(client, current_password=ORGANISER_PASSWORD, **guesses).status_code == 429
        assert log_in(app.test_client(), password=NEW_PASSWORD).status_code == 401
        assert stored(organiser).timezone == "UTC"
