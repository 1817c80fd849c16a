"""Where a sign-up's time goes, measured in one process on the benchmark's database (no HTTP,
no gunicorn): the session's page (GET) and the sign-up (POST) through Flask's test client, the
template's share of the GET (Flask's template signals around render_template), with the
rendered-once fragments (registration/fragments.py) and without them, the form's (WTForms:
building and validating SignupForm, its CSRF token included) and email-validator's own. Each
figure is the median of many runs, in milliseconds per request."""

import re
import statistics
import time
from urllib.parse import parse_qsl, urlencode

from flask import before_render_template, template_rendered

CSRF_RE = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


def _median_ms(samples):
    return statistics.median(samples) * 1000


def _form(token, n, events=()):
    return urlencode([
        ("csrf_token", token), ("name", f"Cost Person {n}"), ("email", f"cost-{n}@example.org"),
        ("organisation", "City of Bench"), ("affiliation", "local_government"),
        ("country", "JP"), ("timezone", "Asia/Tokyo"), ("language", "en"), ("consent", "y"),
        ("website", ""), *(("event", slug) for slug in events)])


def _pages(app, form_path, post_path, events, rounds, tag):
    """Median GET, its template, and POST (ms), for `rounds` new visitors on this app."""
    rendering = []  # (started, ended) of each render_template

    def before(sender, **extra):
        rendering.append([time.perf_counter(), None])

    def after(sender, **extra):
        rendering[-1][1] = time.perf_counter()

    get_s, template_s, post_s = [], [], []
    with (before_render_template.connected_to(before, app),
          template_rendered.connected_to(after, app)):
        for n in range(rounds):
            client = app.test_client()
            rendering.clear()
            t0 = time.perf_counter()
            page = client.get(form_path)
            t1 = time.perf_counter()
            template_s.append(sum(ended - started for started, ended in rendering))
            token = CSRF_RE.search(page.data).group(1).decode()
            response = client.post(post_path, data=_form(token, f"{tag}-{n}", events),
                                   content_type="application/x-www-form-urlencoded")
            post_s.append(time.perf_counter() - t1)
            assert response.status_code == 303, response.status_code
            get_s.append(t1 - t0)
    return _median_ms(get_s), _median_ms(template_s), _median_ms(post_s)


def _form_and_address(app, slug, rounds):
    """Median ms to build and validate the sign-up form (CSRF included), and to check one
    address with email-validator as the form does (the app's deliverability setting)."""
    from flask_wtf.csrf import generate_csrf
    from werkzeug.datastructures import MultiDict

    from registration.addresses import parse
    from registration.forms import SignupForm

    form_s, address_s = [], []
    check = app.config["EMAIL_CHECK_DELIVERABILITY"]
    with app.test_request_context(f"/events/{slug}/register", method="POST"):
        token = generate_csrf()
        for n in range(rounds):
            data = MultiDict(parse_qsl(_form(token, n), keep_blank_values=True))
            t0 = time.perf_counter()
            form = SignupForm(formdata=data)
            assert form.validate(), form.errors
            t1 = time.perf_counter()
            parse(f"cost-{n}@example.org", check_deliverability=check)
            address_s.append(time.perf_counter() - t1)
            form_s.append(t1 - t0)
    return _median_ms(form_s), _median_ms(address_s)


def measure(config, slug, several, rounds=150):
    """[(what, ms per request)] for the single form, the form for several sessions, and the
    parts; `config` makes an app on the benchmark's database (its sign-ups add to its rows)."""
    from app import create_app
    from extensions import db

    rows = []
    for label, size in (("fragments on", None), ("fragments off", 0)):
        tag = label.replace(" ", "-")  # a new address per sign-up and run
        settings = dict(config) if size is None else {**config, "FRAGMENT_CACHE_SIZE": size}
        app = create_app(settings)
        # No app context around the requests: each request ends its own transaction.
        get_ms, template_ms, post_ms = _pages(
            app, f"/events/{slug}", f"/events/{slug}/register", (), rounds, tag)
        several_get, several_template, several_post = _pages(
            app, "/signup?" + urlencode([("event", s) for s in several]), "/signup",
            several, rounds, tag + "-x5")
        if size is None:
            form_ms, address_ms = _form_and_address(app, slug, rounds)
            deliverability = "on" if app.config["EMAIL_CHECK_DELIVERABILITY"] else "off"
        with app.app_context():
            db.engine.dispose()
        rows += [(f"GET the form ({label})", get_ms),
                 (f"  of which the template ({label})", template_ms),
                 (f"GET the form for 5 sessions ({label})", several_get),
                 (f"  of which the template ({label})", several_template),
                 (f"POST a sign-up ({label})", post_ms),
                 (f"POST a sign-up for 5 sessions ({label})", several_post)]
    rows += [("  WTForms: build and validate SignupForm (CSRF, address included)", form_ms),
             (f"  email-validator: one address, deliverability check {deliverability}",
              address_ms)]
    return rows


def print_costs(database, rows):
    """One line per figure, under a heading naming the database."""
    print(f"{database}: in-process costs, median ms per request (no HTTP; machine shared)")
    for what, ms in rows:
        print(f"  {what:<72}{ms:>8.2f}")
