"""'Remember my details on this device': a signed, HttpOnly, SameSite=Lax cookie for 180 days,
set only when the person ticks the box, that fills in the next form (never its consent box nor
the box itself) and that "Forget me" clears; a bad cookie fills in nothing."""

import time

import pytest
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from registration import remember
from tests.conftest import ATTENDEE, csrf_token, make_event, sign_up
from tests.test_registration_form import Tags

DAYS_180 = 180 * 24 * 3600


def cookie_header(response, name=remember.COOKIE) -> str | None:
    """The Set-Cookie header the response sends for this cookie, if any."""
    found = [header for header in response.headers.getlist("Set-Cookie")
             if header.startswith(f"{name}=")]
    assert len(found) <= 1
    return found[0] if found else None


def attributes(header: str) -> dict[str, str]:
    parts = [part.strip() for part in header.split(";")]
    return {key.lower(): value for key, _, value in (part.partition("=") for part in parts[1:])}


def signed(payload, key="test-secret-key", salt=remember.SALT, signed_at=None) -> str:
    """A cookie value as some server signed it (at signed_at, a Unix time, if given)."""

    class At(TimestampSigner):
        def get_timestamp(self):
            return int(signed_at if signed_at is not None else time.time())

    return URLSafeTimedSerializer(key, salt=salt, signer=At).dumps(payload)


def page(client, slug, **headers) -> tuple:
    response = client.get(f"/events/{slug}", headers=headers)
    assert response.status_code == 200
    return response, response.get_data(as_text=True)


def value_of(html: str, field: str) -> str | None:
    _tag, attrs = Tags(html).by_id(field)
    return attrs.get("value")


def is_checked(html: str, field: str) -> bool:
    return "checked" in Tags(html).by_id(field)[1]


def assert_not_prefilled(response, html):
    assert value_of(html, "name") == "" and value_of(html, "email") == ""
    assert "Filled in from this device" not in html
    assert response.headers.get("Cache-Control") != "no-store"


@pytest.fixture
def event(app):
    return make_event()


def test_ticking_the_box_sets_a_signed_httponly_lax_cookie_for_180_days(client, event):
    response = sign_up(client, event.slug, remember="y")
    assert response.status_code == 303
    header = cookie_header(response)
    assert header, "no remember cookie"
    flags = attributes(header)
    assert "httponly" in flags and flags["samesite"] == "Lax"
    assert flags["max-age"] == str(DAYS_180)
    assert "secure" not in flags  # the site is plain http here
    value = header.split(";")[0].split("=", 1)[1]
    # Signed with the server's key under its own salt: another key or salt can't read it.
    assert URLSafeTimedSerializer("test-secret-key", salt=remember.SALT).loads(value) == {
        **ATTENDEE}
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer("another-key", salt=remember.SALT).loads(value)
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer("test-secret-key", salt="session").loads(value)


def test_the_cookie_is_secure_when_the_site_is_https(app_with):
    with app_with(BASE_URL="https://forum.example.org") as app:
        client = app.test_client()
        slug = make_event().slug
        response = sign_up(client, slug, remember="y")
    assert response.status_code == 303
    assert "secure" in attributes(cookie_header(response))


def test_unticked_sets_nothing_and_leaves_an_earlier_cookie_as_it_is(client, event):
    response = sign_up(client, event.slug)
    assert response.status_code == 303
    assert cookie_header(response) is None
    assert client.get_cookie(remember.COOKIE) is None
    sign_up(client, event.slug, remember="y")
    kept = client.get_cookie(remember.COOKIE).value
    response = sign_up(client, event.slug, name="Someone Else", email="else@example.org")
    assert cookie_header(response) is None
    assert client.get_cookie(remember.COOKIE).value == kept


def test_nothing_is_remembered_for_the_honeypot_or_a_form_with_errors(client, event):
    response = sign_up(client, event.slug, remember="y", website="https://spam.example.com")
    assert response.status_code == 303 and cookie_header(response) is None
    response = sign_up(client, event.slug, remember="y", email="not-an-address")
    assert response.status_code == 422 and cookie_header(response) is None
    # The person's own tick comes back with the other answers.
    assert is_checked(response.get_data(as_text=True), "remember")


def test_the_next_form_is_filled_in_but_neither_box_is_ticked(client, event):
    sign_up(client, event.slug, remember="y", organisation="Ville de Lyon", country="FR",
            affiliation="academia", timezone="Europe/Paris", language="ja")
    other = make_event(slug="other-session", title="Another session")

    response, html = page(client, other.slug)

    assert value_of(html, "name") == "Aiko Tanaka"
    assert value_of(html, "email") == "aiko.tanaka@example.org"
    assert value_of(html, "organisation") == "Ville de Lyon"
    assert is_checked(html, "affiliation-academia")
    assert '<option value="FR" selected>' in html
    assert '<option value="Europe/Paris" selected>' in html
    # The person's zone stands: the script does not replace it with the browser's.
    assert "data-prefill" not in Tags(html).by_id("timezone")[1]
    # The emails' language is the remembered one; the page stays in its own.
    assert '<option value="ja" selected>' in html
    assert '<html lang="en"' in html
    assert not is_checked(html, "remember") and not is_checked(html, "consent")
    assert "Filled in from this device (Aiko Tanaka, aiko.tanaka@example.org)." in html
    # It names a person: no cache keeps it.
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in response.headers["Vary"]


def test_a_page_without_remembered_details_offers_an_unticked_box_and_no_forget_me(
        client, event):
    response, html = page(client, event.slug)
    assert_not_prefilled(response, html)
    assert not is_checked(html, "remember")
    assert "Remember my details on this device" in html
    assert "180 days" in html and "Not for a shared computer" in html
    assert "/forget-me" not in html
    # The box is in the sign-up form (its value is sent with it).
    form = html[html.index('action="/events/climate-finance-101/register"'):]
    assert 'name="remember"' in form[:form.index("</form>")]


@pytest.mark.parametrize("value", [
    "garbage",
    "",
    "eyJuYW1lIjoiRXZlIn0.abc.def",
])
def test_a_tampered_cookie_fills_in_nothing_and_causes_no_error(client, event, value):
    client.set_cookie(remember.COOKIE, value)
    response, html = page(client, event.slug)
    assert_not_prefilled(response, html)


def test_a_cookie_whose_payload_was_changed_fills_in_nothing(client, event):
    sign_up(client, event.slug, remember="y")
    good = client.get_cookie(remember.COOKIE).value
    # The value is "payload.timestamp.signature" (a compressed payload starts with a dot).
    signature = ".".join(good.rsplit(".", 2)[1:])
    forged = signed({**ATTENDEE, "name": "Mallory"}, key="guessed-key").rsplit(".", 2)[0]
    assert forged != good.rsplit(".", 2)[0]
    client.set_cookie(remember.COOKIE, f"{forged}.{signature}")
    assert_not_prefilled(*page(client, event.slug))
    # The untouched cookie still works (the test above fails for the right reason).
    client.set_cookie(remember.COOKIE, good)
    assert value_of(page(client, event.slug)[1], "name") == "Aiko Tanaka"


@pytest.mark.parametrize("payload", [
    ["a", "list"], "text", {"name": "No address"}, None,
    {"name": ["Aiko"], "email": {"a": 1}},
])
def test_a_validly_signed_cookie_of_another_shape_fills_in_nothing(client, event, payload):
    client.set_cookie(remember.COOKIE, signed(payload))
    assert_not_prefilled(*page(client, event.slug))


def test_a_cookie_older_than_180_days_fills_in_nothing(client, event):
    now = time.time()
    client.set_cookie(remember.COOKIE, signed(ATTENDEE, signed_at=now - DAYS_180 - 60))
    assert_not_prefilled(*page(client, event.slug))
    client.set_cookie(remember.COOKIE, signed(ATTENDEE, signed_at=now - DAYS_180 + 3600))
    assert value_of(page(client, event.slug)[1], "name") == "Aiko Tanaka"


def test_a_cookie_signed_with_a_listed_earlier_key_still_fills_in(app_with):
    with app_with(SECRET_KEY="the-new-key", SECRET_KEY_FALLBACKS="test-secret-key") as app:
        client = app.test_client()
        slug = make_event().slug
        client.set_cookie(remember.COOKIE, signed(ATTENDEE, key="test-secret-key"))
        assert value_of(page(client, slug)[1], "name") == "Aiko Tanaka"
        client.set_cookie(remember.COOKIE, signed(ATTENDEE, key="a-key-nobody-lists"))
        assert_not_prefilled(*page(client, slug))


def test_remembered_values_of_the_wrong_type_are_left_out(client, event):
    client.set_cookie(remember.COOKIE, signed({
        **ATTENDEE, "affiliation": ["ngo"], "country": {"JP": 1}, "timezone": ["UTC"],
        "language": 7, "organisation": None}))
    _response, html = page(client, event.slug)
    assert value_of(html, "name") == "Aiko Tanaka"
    assert value_of(html, "organisation") == ""
    assert '<option value="JP" selected>' not in html
    assert '<option value="Europe/Berlin" selected>' in html


def test_a_remembered_value_the_form_no_longer_offers_is_left_out(client, event):
    client.set_cookie(remember.COOKIE, signed({
        **ATTENDEE, "country": "XX", "timezone": "US/Eastern", "affiliation": "guild",
        "language": "fr", "organisation": "x" * 201}))
    _response, html = page(client, event.slug)
    assert value_of(html, "name") == "Aiko Tanaka"
    assert value_of(html, "organisation") == ""
    assert "selected" not in html[html.index('id="country"'):html.index("</select>",
                                                                      html.index('id="country"'))]
    # The session's zone and the page's language, as without a cookie.
    assert '<option value="Europe/Berlin" selected>' in html
    assert "data-prefill" in Tags(html).by_id("timezone")[1]
    assert '<option value="en" selected>' in html
    assert not any(is_checked(html, f"affiliation-{kind}") for kind in ("academia", "ngo"))


def test_an_old_spelling_of_a_remembered_zone_selects_its_place(client, event):
    client.set_cookie(remember.COOKIE, signed({**ATTENDEE, "timezone": "Asia/Calcutta"}))
    assert 'value="Asia/Kolkata" selected' in page(client, event.slug)[1]


def test_forget_me_clears_the_cookie_and_leads_back_to_the_page(client, event):
    sign_up(client, event.slug, remember="y")
    _response, html = page(client, event.slug)
    notice = html[html.index('class="remembered"'):]
    notice = notice[:notice.index("</form>")]
    # Its own form, before the sign-up form (forms can't nest), posting without a script.
    assert 'action="/forget-me"' in notice and 'method="post"' in notice
    assert f'name="next" value="/events/{event.slug}"' in notice
    assert html.index('class="remembered"') < html.index('action="/events/')

    response = client.post("/forget-me", data={"csrf_token": csrf_token(client, event.slug),
                                               "next": f"/events/{event.slug}"})

    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{event.slug}"
    flags = attributes(cookie_header(response))
    assert flags["max-age"] == "0" and "httponly" in flags and flags["samesite"] == "Lax"
    assert client.get_cookie(remember.COOKIE) is None
    assert_not_prefilled(*page(client, event.slug))


def test_forget_me_needs_the_forms_token(client, event):
    sign_up(client, event.slug, remember="y")
    response = client.post("/forget-me", data={"next": "/"})
    assert response.status_code == 400
    assert client.get_cookie(remember.COOKIE) is not None


@pytest.mark.parametrize("target", [
    "//evil.example.com/", "https://evil.example.com/", "/\\evil.example.com", "",
    "javascript:alert(1)", "/events/\u00e9",
])
def test_forget_me_leads_only_to_a_page_of_this_site(client, event, target):
    response = client.post("/forget-me", data={"csrf_token": csrf_token(client, event.slug),
                                               "next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_the_box_and_the_notice_are_in_the_page_language(client, event):
    sign_up(client, event.slug, remember="y")
    _response, html = page(client, f"{event.slug}?lang=ja")
    assert "この端末に入力内容を記憶する" in html
    assert "180 日間記憶し" in html
    assert ("この端末に記憶された内容を入力しました（Aiko Tanaka、aiko.tanaka@example.org）。"
            in html)
    assert ">記憶を消去する</button>" in html


def test_the_form_for_several_sessions_remembers_and_is_filled_in_the_same_way(client, event):
    other = make_event(slug="other-session", title="Another session")
    choose = f"/signup?event={event.slug}&event={other.slug}"
    response = client.post("/signup", data={
        **ATTENDEE, "consent": "y", "remember": "y", "event": [event.slug, other.slug],
        "csrf_token": csrf_token(client, event.slug)})
    assert response.status_code == 303
    assert "httponly" in attributes(cookie_header(response))

    response = client.get(choose)
    html = response.get_data(as_text=True)
    assert value_of(html, "name") == "Aiko Tanaka"
    assert value_of(html, "email") == "aiko.tanaka@example.org"
    assert not is_checked(html, "remember") and not is_checked(html, "consent")
    assert "Filled in from this device (Aiko Tanaka, aiko.tanaka@example.org)." in html
    assert response.headers["Cache-Control"] == "no-store"
    # "Forget me" leads back to the same choice of sessions.
    assert f'name="next" value="/signup?event={event.slug}&amp;event={other.slug}"' in html


def test_the_form_for_several_sessions_unticked_remembers_nothing(client, event):
    response = client.post("/signup", data={
        **ATTENDEE, "consent": "y", "event": [event.slug],
        "csrf_token": csrf_token(client, event.slug)})
    assert response.status_code == 303 and cookie_header(response) is None
