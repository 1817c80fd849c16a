"""The organiser console's pages: sign-in and out, the dashboard (more in their own modules)."""

import sqlalchemy as sa
from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from extensions import db, limiter
from organisers import auth, charts, clock, throttle
from organisers.dashboard import dashboard_rows, forum_headcount
from organisers.forms import LoginForm
from organisers.models import AuditEntry
from registration import times

bp = Blueprint("organisers", __name__, url_prefix="/admin")

SIGN_IN_FAILED = _l("Wrong email or password.")
clock.register(bp)


@bp.after_app_request
def _never_stored(response):
    # Every console answer may show personal data or a form's token: no copy in a browser's or
    # a proxy's cache. Keyed on the path, not the blueprint, so that the console's other
    # blueprints, its error pages and its redirects are covered too.
    if request.path == bp.url_prefix or request.path.startswith(bp.url_prefix + "/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _safe_next(target: str | None) -> str:
    # Only a page of the console itself: never another site, nor a scheme-relative //host,
    # nor anything a Location header can't carry.
    if (target and target.startswith("/admin") and "//" not in target and "\\" not in target
            and target.isprintable() and target.isascii()):
        return target
    return url_for("organisers.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_PER_IP"], methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_PER_ADDRESS_IP"], methods=["POST"],
               key_func=throttle.address_ip_key, deduct_when=throttle.failed)
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_PER_ADDRESS"], methods=["POST"],
               key_func=throttle.address_key, deduct_when=throttle.failed)
def login():
    """Sign in with email and password; 303 to the console (or the page asked for)."""
    form = LoginForm()
    if request.method == "GET":
        return render_template("organisers/login.html", form=form,
                               next=request.args.get("next", ""))
    if not form.validate():
        return render_template("organisers/login.html", form=form, error=SIGN_IN_FAILED,
                               next=request.form.get("next", "")), 400
    address = (form.email.data or "").strip()
    organiser = auth.authenticate(address, form.password.data or "")
    if organiser is None:
        auth.audit("sign-in failed", actor=auth.email_key(address)[:320], ip=request.remote_addr)
        db.session.commit()
        return render_template("organisers/login.html", form=form, error=SIGN_IN_FAILED,
                               next=request.form.get("next", "")), 401
    target = _safe_next(request.form.get("next"))
    now = times.now()
    auth.start_session(organiser, now)
    auth.audit("signed in", organiser=organiser, ip=request.remote_addr)
    db.session.commit()
    throttle.forget_failures()
    return throttle.remember_device(redirect(target, 303), now)


@bp.post("/logout")
@auth.login_required
def logout():
    """Sign out, on every device."""
    auth.audit("signed out")
    auth.end_session(g.organiser)
    db.session.commit()
    return redirect(url_for("organisers.login"), 303)


@bp.get("/")
@auth.login_required
def dashboard():
    """Every event at a glance: upcoming and running first, then past, with their counts."""

    now = times.now()
    upcoming, past = dashboard_rows(now)
    return render_template("organisers/dashboard.html", upcoming=upcoming, past=past, now=now,
                           forum=forum_headcount(),
                           charts=charts.dashboard_charts(upcoming, now,
                                                          times.zone(clock.organiser_zone())))


AUDIT_PAGE = 100


@bp.get("/audit")
@auth.login_required
def audit_log():
    """Who did what and when, newest first, a page at a time."""
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE + 1)
    before = request.args.get("before", type=int)
    if before and 0 < before < 2**62:
        query = query.where(AuditEntry.id < before)
    entries = db.session.scalars(query).all()
    older = entries[AUDIT_PAGE].id + 1 if len(entries) > AUDIT_PAGE else None
    return render_template("organisers/audit.html", entries=entries[:AUDIT_PAGE], older=older)
