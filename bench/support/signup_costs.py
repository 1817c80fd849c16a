"""Where a sign-up's time goes, measured in one process on the benchmark's database (no HTTP,
no gunicorn): the session's page (GET) and the sign-up (POST) through Flask's test client, the
template's share of the GET (Flask's template signals around render_template), with the
rendered-once fragments (registration/fragments.py) and without them, the form's (WTForms:
building and validating SignupForm, its CSRF token included) and email-validator's own. Each
figure is the median of many runs, in milliseconds per request; the app with fragments and the
one without take turns."""

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


def _pages(app, form_path, post_path, events, rounds, tag, samples):
    """GET, its template, and POST (seconds) for `rounds` new visitors on this app, added to
    samples["get"], ["template"] and ["post"]."""
    rendering = []  # [started, ended] of each render_template

    def before(sender, **extra):
        rendering.append([time.perf_counter(), None])

    def after(sender, **extra):
        rendering[-1][1] = time.perf_counter()

    with (before_render_template.connected_to(before, app),
          template_rendered.connected_to(after, app)):
        for n in range(rounds):
            client = app.test_client()
            rendering.clear()
            t0 = time.perf_counter()
            page = client.get(form_path)
            t1 = time.perf_counter()
            samples["template"].append(sum(ended - started for started, ended in rendering))
            token = CSRF_RE.search(page.data).group(1).decode()
            response = client.post(post_path, data=_form(token, f"{tag}-{n}", events),
                                   content_type="application/x-www-form-urlencoded")
            samples["post"].append(time.perf_counter() - t1)
            assert response.status_code == 303, response.status_code
            samples["get"].append(t1 - t0)


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


def measure(config, slug, several, rounds=100, batch=10):
    """[(what, ms per request)] for the single form, the form for several sessions, and the
    parts; `config` makes an app on the benchmark's database (its sign-ups add to its rows).
    The apps with fragments and without take turns, `batch` visitors each, so that both see
    the same load from the rest of the machine."""
    from app import create_app
    from extensions import db

    apps = {"fragments on": create_app(config),
            "fragments off": create_app({**config, "FRAGMENT_CACHE_SIZE": 0})}
    forms = {"": (f"/events/{slug}", f"/events/{slug}/register", ()),
             " for 5 sessions": ("/signup?" + urlencode([("event", s) for s in several]),
                                 "/signup", several)}
    samples = {(label, form): {"get": [], "template": [], "post": []}
               for label in apps for form in forms}
    # No app context around the requests: each request ends its own transaction.
    for start in range(0, rounds, batch):
        for label, app in apps.items():
            for form, (form_path, post_path, events) in forms.items():
                _pages(app, form_path, post_path, events, batch,
                       f"{label.replace(' ', '-')}{form.replace(' ', '-')}-{start}",
                       samples[label, form])
    app = apps["fragments on"]
    form_ms, address_ms = _form_and_address(app, slug, rounds)
    deliverability = "on" if app.config["EMAIL_CHECK_DELIVERABILITY"] else "off"
    for each in apps.values():
        with each.app_context():
            db.engine.dispose()
    rows = []
    for form in forms:
        for kind, what in (("get", f"GET the form{form}"),
                           ("template", "  of which the template"),
                           ("post", f"POST a sign-up{form}")):
            rows += [(f"{what} ({label})", _median_ms(samples[label, form][kind]))
                     for label in apps]
    rows += [("WTForms: build and validate SignupForm (CSRF, address included)", form_ms),
             (f"email-validator: one address, deliverability check {deliverability}",
              address_ms)]
    return rows


def print_costs(database, rows):
    """One line per figure, under a heading naming the database."""
    print(f"{database}: in-process costs, median ms per request (no HTTP; machine shared)")
    for what, ms in rows:
        print(f"  {what:<72}{ms:>8.2f}")
