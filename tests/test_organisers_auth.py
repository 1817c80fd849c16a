"""Organiser accounts and sign-in: hashes, sessions, throttling, and the walls around /admin."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.routing import Rule

from app import create_app
from extensions import db
from organisers import auth
from organisers.models import AuditEntry, Organiser
from tests.conftest import (
    NOW,
    ORGANISER_EMAIL,
    ORGANISER_PASSWORD,
    log_in,
    make_event,
    make_organiser,
)


def audit_actions():
    return [(e.action, e.actor) for e in db.session.scalars(
        sa.select(AuditEntry).order_by(AuditEntry.id))]


def test_the_default_password_hash_is_at_owasps_floor(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SCHEDULER": "off"})
    assert app.config["PASSWORD_HASH_METHOD"] == "scrypt:131072:8:1"
    assert auth._DUMMY_HASH.startswith("scrypt:131072:8:1$")


def test_create_organiser_reads_a_piped_password_and_hashes_it(app, runner):
    result = runner.invoke(args=["create-organiser", "Anna@Example.org"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    organiser = db.session.scalar(sa.select(Organiser))
    assert organiser.email == "anna@example.org"
    assert organiser.password_hash.startswith("scrypt:1024:8:1$")
    assert "a long enough password" not in organiser.password_hash
    assert auth.authenticate("ANNA@example.org", "a long enough password") == organiser


def test_create_organiser_refuses_a_short_password_and_stores_nothing(app, runner):
    result = runner.invoke(args=["create-organiser", "anna@example.org"], input="short\n")
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output
    assert db.session.scalar(sa.select(Organiser)) is None


def test_reset_changes_the_password_and_signs_out_every_session(app, client, organiser, runner):
    assert log_in(client).status_code == 303
    result = runner.invoke(args=["create-organiser", ORGANISER_EMAIL, "--reset"],
                           input="a brand new password\n")
    assert result.exit_code == 0, result.output
    assert client.get("/admin/").status_code == 303  # the old session is void
    assert log_in(client, password=ORGANISER_PASSWORD).status_code == 401
    assert log_in(client, password="a brand new password").status_code == 303


def test_create_twice_or_reset_unknown_is_refused_with_one_line(app, runner, organiser):
    again = runner.invoke(args=["create-organiser", ORGANISER_EMAIL], input="x" * 20 + "\n")
    assert again.exit_code != 0 and "--reset" in again.output
    unknown = runner.invoke(args=["create-organiser", "nobody@example.org", "--reset"],
                            input="x" * 20 + "\n")
    assert unknown.exit_code != 0 and "has no account" in unknown.output


def test_sign_in_redirects_to_the_console_and_is_audited(client, organiser):
    response = log_in(client)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/")
    assert client.get("/admin/").status_code == 200
    assert audit_actions() == [("signed in", ORGANISER_EMAIL)]


def test_unknown_email_and_wrong_password_get_the_same_answer(client, organiser):
    wrong = log_in(client, password="not the password")
    unknown = log_in(client, email="nobody@example.org")
    assert wrong.status_code == unknown.status_code == 401
    message = "Wrong email or password."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    assert client.get("/admin/").status_code == 303
    assert [a for a, _ in audit_actions()] == ["sign-in failed", "sign-in failed"]


def test_sign_in_clears_the_session_it_started_from(client, organiser):
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    log_in(client)
    with client.session_transaction() as session:
        assert "planted" not in session


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(app, organiser):
    response = log_in(app.test_client(), next="/admin/audit")
    assert response.headers["Location"].endswith("/admin/audit")
    for target in ("https://evil.example.com/", "//evil.example.com/admin", "/events/x"):
        response = log_in(app.test_client(), next=target)
        assert response.headers["Location"].endswith("/admin/"), target


def test_missing_csrf_token_on_sign_in_answers_400(client, organiser):
    response = client.post("/admin/login", data={"email": ORGANISER_EMAIL,
                                                  "password": ORGANISER_PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 303


def test_idle_session_expires(app, admin):
    assert admin.get("/admin/").status_code == 200
    app.config["CLOCK"] = lambda: NOW + timedelta(minutes=59)
    assert admin.get("/admin/").status_code == 200
    app.config["CLOCK"] = lambda: NOW + timedelta(minutes=59 + 61)
    response = admin.get("/admin/")
    assert response.status_code == 303 and "/admin/login" in response.headers["Location"]


def test_the_idle_time_out_leaves_the_public_forms_csrf_token_working(app, admin):
    from tests.conftest import sign_up

    event = make_event()
    app.config["CLOCK"] = lambda: NOW + timedelta(hours=5)
    assert sign_up(admin, event.slug).status_code == 303


def test_sign_out_voids_the_session_everywhere(app, organiser):
    first, second = app.test_client(), app.test_client()
    log_in(first)
    log_in(second)
    page = first.get("/admin/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert first.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    assert first.get("/admin/").status_code == 303
    assert second.get("/admin/").status_code == 303


def test_session_cookie_is_httponly_samesite_lax_and_secure_on_https(app_with):
    with app_with(BASE_URL="https://forum.example.org") as app:
        cookie = app.test_client().get("/admin/login").headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


@pytest.fixture
def limited_app(app_with):
    """The app with the sign-in limits on, and low (the other tests run with them off), and the
    organiser's account. One IP can make at most 6 attempts an hour, so only several IPs
    together reach 9 failures. (No `app` beside it: the limiter is one object, and the app made
    last would switch it off.)"""
    with app_with(RATELIMIT_ENABLED="true", RATELIMIT_LOGIN_PER_IP="6 per hour",
                  RATELIMIT_LOGIN_PER_ADDRESS_IP="3 per 15 minutes",
                  RATELIMIT_LOGIN_PER_ADDRESS="9 per hour") as app:
        make_organiser()
        yield app


def client_at(app, ip):
    """A fresh browser (no cookies) whose requests come from this address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def test_sign_in_is_throttled_per_address_and_ip_known_or_not(limited_app):
    for address in ("nobody@example.org", ORGANISER_EMAIL):
        attacker = client_at(limited_app, "192.0.2.1")
        codes = [log_in(attacker, email=address, password="wrong").status_code
                 for _ in range(4)]
        assert codes == [401, 401, 401, 429], address


def test_the_attacking_ip_is_refused_even_the_right_password(limited_app):
    attacker = client_at(limited_app, "192.0.2.1")
    for _ in range(3):
        assert log_in(attacker, password="wrong").status_code == 401
    assert log_in(attacker).status_code == 429


def test_an_attack_from_one_ip_leaves_the_organiser_at_another_ip_her_way_in(
        limited_app):
    attacker = client_at(limited_app, "192.0.2.1")
    codes = [log_in(attacker, password=f"guess {n}").status_code for n in range(6)]
    assert codes == [401] * 3 + [429] * 3
    response = log_in(client_at(limited_app, "198.51.100.7"))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/")


def test_a_right_password_resets_the_failures_of_its_address_and_ip(app_with):
    with app_with(RATELIMIT_ENABLED="true", RATELIMIT_LOGIN_PER_IP="100 per hour",
                  RATELIMIT_LOGIN_PER_ADDRESS_IP="3 per 15 minutes",
                  RATELIMIT_LOGIN_PER_ADDRESS="9 per hour") as app:
        make_organiser()
        client = client_at(app, "198.51.100.7")
        for _ in range(4):  # an organiser who mistypes twice every time she signs in
            assert [log_in(client, password="typo").status_code for _ in range(2)] == [401, 401]
            assert log_in(client).status_code == 303
        codes = [log_in(client, password="typo").status_code for _ in range(3)]
        assert codes == [401, 401, 401]


def test_many_ips_lock_an_address_for_new_browsers_but_not_for_one_that_signed_in_before(
        limited_app):
    known_browser = client_at(limited_app, "198.51.100.7")
    assert log_in(known_browser).status_code == 303
    cookie = known_browser.get_cookie("organiser_device", path="/admin/login")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    for address in (ORGANISER_EMAIL, "nobody@example.org"):
        for n in range(3):
            attacker = client_at(limited_app, f"203.0.113.{n + 1}")
            codes = [log_in(attacker, email=address, password="wrong").status_code
                     for _ in range(3)]
            assert codes == [401, 401, 401], (address, n)
        # Nine failures from three IPs: a new browser anywhere waits, known account or not.
        newcomer = client_at(limited_app, "203.0.113.99")
        assert log_in(newcomer, email=address, password="wrong").status_code == 429, address
    assert log_in(client_at(limited_app, "203.0.113.99")).status_code == 429
    # The organiser's own browser, from yet another network, gets in.
    known_browser.environ_base["REMOTE_ADDR"] = "192.0.2.200"
    assert log_in(known_browser).status_code == 303


def test_a_forged_or_foreign_device_cookie_does_not_lift_the_lock(limited_app):
    colleague = Organiser(email="ben@example.org", created_at=NOW,
                          password_hash=auth.hash_password("another long password"))
    db.session.add(colleague)
    db.session.commit()
    colleagues_browser = client_at(limited_app, "198.51.100.8")
    assert log_in(colleagues_browser, email="ben@example.org",
                  password="another long password").status_code == 303
    for n in range(3):
        attacker = client_at(limited_app, f"203.0.113.{n + 1}")
        for _ in range(3):
            assert log_in(attacker, password="wrong").status_code == 401
    forged = client_at(limited_app, "203.0.113.50")
    forged.set_cookie("organiser_device", "made-up", path="/admin/login")
    assert log_in(forged).status_code == 429
    # Ben's browser has a device cookie, but for Ben: for Anna's address it is a new browser.
    assert log_in(colleagues_browser).status_code == 429


def test_the_addresses_of_one_ipv6_network_count_as_one_client(limited_app):
    codes = [log_in(client_at(limited_app, f"2001:db8:1:2::{n}"), password="wrong").status_code
             for n in range(1, 5)]
    assert codes == [401, 401, 401, 429]


def test_sign_in_is_throttled_per_ip(limited_app):
    client = limited_app.test_client()
    codes = [log_in(client, email=f"p{i}@example.org", password="wrong").status_code
             for i in range(7)]
    assert codes == [401] * 6 + [429]


def test_the_audit_log_records_the_address_the_sign_in_came_from(app, organiser):
    log_in(client_at(app, "198.51.100.7"), password="wrong")
    log_in(client_at(app, "198.51.100.8"))
    entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.ip) for e in entries] == [("sign-in failed", "198.51.100.7"),
                                                   ("signed in", "198.51.100.8")]


def test_every_admin_route_but_login_requires_a_signed_in_organiser(app, client):
    make_event()
    checked = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint == "organisers.login":
            continue
        path = _example_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            if method == "GET":
                assert response.status_code == 303, (method, path)
                assert "/admin/login" in response.headers["Location"]
            else:
                # A POST without a session is refused: by CSRF (400) or the sign-in wall (303).
                assert response.status_code in (303, 400), (method, path)
            checked.append((method, path))
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "login_required", False), rule.endpoint
    assert checked, "no /admin routes found"


def _example_path(rule: Rule) -> str:
    values = {name: "climate-finance-101" if name == "slug" else "1" for name in rule.arguments}
    return rule.build(values)[1]


def test_a_nul_in_the_submitted_address_is_just_a_failed_sign_in(client, organiser):
    assert log_in(client, email="anna\x00@example.org").status_code == 401


def test_a_next_with_a_line_break_or_backslash_goes_to_the_console(app, organiser):
    for target in ("/admin/\\evil.example.com", "/admin/\r\nSet-Cookie: x=1"):
        response = log_in(app.test_client(), next=target)
        assert response.status_code == 303
        assert response.headers["Location"].endswith("/admin/"), target


def test_an_absurd_page_number_in_the_audit_log_is_no_error(admin):
    assert admin.get("/admin/audit?before=99999999999999999999999").status_code == 200


def test_every_console_answer_says_no_store_signed_in_or_not(app, organiser):
    make_event()
    signed_out, signed_in = app.test_client(), app.test_client()
    assert log_in(signed_in).status_code == 303
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = _example_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for client in (signed_out, signed_in):
                # No CSRF token: a POST is refused (400), which must not be cached either.
                response = client.open(path, method=method)
                assert response.headers.get("Cache-Control") == "no-store", (method, path)
                checked += 1
    assert checked > 20
    # An address in the console that has no page is still the console's answer.
    assert signed_in.get("/admin/no-such-page").headers.get("Cache-Control") == "no-store"
