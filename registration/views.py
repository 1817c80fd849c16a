"""Public pages: the programme, an event, sign-up, the attendee's own page (the public
calendar files are in registration/feeds.py)."""

import hashlib
from collections import OrderedDict

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from extensions import database_answers, db, limiter
from notifications import ical
from registration import (
    addresses,
    cancelling,
    feeds,
    language,
    places,
    remember,
    retention,
    services,
    times,
    tokens,
    wording,
)
from registration.addresses import display, email_key
from registration.forms import (
    HINTS,
    MAX_EMAIL,
    MAX_FIELD,
    SignupForm,
    country_options,
    time_zone_options,
)
from registration.lookup import event_or_404, open_events
from registration.models import (
    AFFILIATIONS,
    KIND_LABELS,
    LANGUAGE_LABELS,
    PILLAR_LABELS,
    Event,
    EventKind,
    Language,
    Pillar,
)
from registration.private import private_page
from registration.text import is_unicode
from registration.times import format_month, format_when, utc_iso, when_data, zone

bp = Blueprint("registration", __name__)


def _email_key() -> str:
    """Rate-limit key for the per-address limit: the submitted address under the key repeats
    use, for this session (signing up for many sessions is fine; hammering one is not); on
    the form for several sessions, for the address alone (one submission counts once)."""
    # A digest: the limiter's store and its log lines never hold the address itself.
    address = hashlib.sha256(email_key(submitted_email()).encode()).hexdigest()
    return f"signup-email:{request.view_args.get('slug', '')}:{address}"


def submitted_email() -> str:
    """The address a sign-up sent: the form's field, or the API's JSON body's "email"."""
    if request.is_json:
        body = request.get_json(silent=True)
        value = body.get("email") if isinstance(body, dict) else None
        return value if is_unicode(value) else ""
    return request.form.get("email") or ""


def signup_limits(view):
    """The sign-up rate limits, counted once per submission: per IP, and per address."""
    # One scope for every sign-up view (the forms and the API): one budget per address and
    # session, one per IP, however a sign-up arrives.
    view = limiter.shared_limit(lambda: current_app.config["RATELIMIT_SIGNUP_PER_EMAIL"],
                                scope="signup-email", key_func=_email_key)(view)
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_SIGNUP_PER_IP"],
                                scope="signup-ip")(view)


@bp.app_template_filter("address")
def address_filter(wire: str) -> str:
    """A stored address as people read it (an international domain in Unicode)."""
    return display(wire)


def format_helpers():
    """Template globals for showing times and choices to people."""
    return {
        "format_when": format_when,
        "utc_iso": utc_iso,
        "when_data": when_data,
        "affiliations": AFFILIATIONS,
        "kind_labels": KIND_LABELS,
        "pillar_labels": PILLAR_LABELS,
        "language_labels": LANGUAGE_LABELS,
        "country_options": country_options,
        "time_zone_options": time_zone_options,
        "signup_hints": HINTS,
        "max_field": MAX_FIELD,
        "max_email": MAX_EMAIL,
        "zone_info": zone,
        **remember.template_helpers(),
    }


@bp.get("/")
def index():
    """The programme: upcoming sessions by month, filterable; past ones apart."""
    now = times.now()
    filters = {
        "kind": request.args.get("kind") if request.args.get("kind") in tuple(EventKind) else "",
        "pillar": request.args.get("pillar") if request.args.get("pillar") in tuple(Pillar) else "",
        "language": (request.args.get("language")
                     if request.args.get("language") in tuple(Language) else ""),
    }
    query = sa.select(Event).order_by(Event.starts_at, Event.id)
    for column, value in filters.items():
        if value:
            query = query.where(getattr(Event, column) == value)
    events = db.session.scalars(query).all()
    upcoming = OrderedDict()
    past = []
    for event in events:
        if event.has_ended(now):
            past.append(event)
            continue
        month = format_month(event.starts_at, event.timezone)
        upcoming.setdefault(month, []).append(event)
    return render_template(
        "registration/index.html",
        upcoming=upcoming,
        past=list(reversed(past)),
        filters=filters,
        now=now,
    )


def _render_event(event: Event, form: SignupForm, status: int = 200):
    # A form with errors answers a POST: the language switch leads back to the event's page.
    g.switch_path = url_for(".event_page", slug=event.slug)
    now = times.now()
    response = Response(render_template(
        "registration/event.html",
        event=event,
        form=form,
        now=now,
        others=[other for other in open_events(now) if other.id != event.id],
        **feeds.subscription_links(),
    ), status)
    return form_page(response)


def form_page(response: Response) -> Response:
    """A page with a sign-up form: one that names a person's remembered details is not for
    any cache."""
    return private_page(response) if remember.details() else response


@bp.get("/events/<slug>")
def event_page(slug):
    """One session: its details, seats left and the sign-up form."""
    event = event_or_404(slug)
    # Emails start in the language the person reads this page in (they can choose another).
    form = SignupForm(formdata=None, timezone=event.timezone,
                      language=language.page_language())
    # The emails' language may come from this device; the page keeps its own.
    remember.prefill(form)
    return _render_event(event, form)


@bp.post("/events/<slug>/register")
@signup_limits
def register(slug):
    """Take a sign-up: 303 to the thank-you page, the same for a first and a repeat sign-up."""
    event = event_or_404(slug)
    now = times.now()
    if not event.is_open_for_signup(now):
        abort(410, description=closed_message(event))
    form = SignupForm()
    if form.website.data:
        # A bot filled the honeypot: answer as to anyone, keep nothing.
        return _thank_you(slug, form)
    if not form.validate():
        return _render_event(event, form, 422)
    try:
        services.sign_up(event, form.applicant(), now)
    except services.SignupClosed:
        # Cancelled (or ended) after this request read the event, before the sign-up locked
        # it: the same answer as when the page was loaded too late, with nothing stored.
        message = closed_message(event)  # the event as the lock read it
        db.session.rollback()
        abort(410, description=message)
    db.session.commit()
    response = _thank_you(slug, form)
    # Unticked leaves an earlier cookie as it is: forgetting is the explicit "Forget me".
    return remember.remember(response, form) if form.remember.data else response


@bp.post("/forget-me")
def forget_me():
    """Clear the details remembered on this device; 303 back to the page it was asked from."""
    return remember.forget(redirect(_same_site_path(request.form.get("next")), 303))


def _same_site_path(target: str | None) -> str:
    # Only a path of this site: never another site, a scheme-relative //host, or anything a
    # Location header can't carry.
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isascii() and target.isprintable()):
        return target
    return url_for(".index")


# The thank-you page names the address of this submission, as typed, for this session only.
SIGNED_UP = "signed_up"


def _thank_you(slug: str, form: SignupForm):
    """303 to the thank-you page, which will name the address as the person typed it."""
    session[SIGNED_UP] = {"slug": slug, "email": (form.email.data or "").strip()[:320]}
    return redirect(url_for(".registered", slug=slug), 303)


def closed_message(event: Event) -> str:
    if event.is_cancelled:
        return _("“%(title)s” was cancelled and takes no sign-ups.", title=event.title)
    return _("“%(title)s” has ended and takes no more sign-ups.", title=event.title)


@bp.get("/events/<slug>/registered")
def registered(slug):
    """The thank-you page: what happens next, the same for a first and a repeat sign-up (and
    for a seat or the waiting list); it names the address this browser just sent."""
    event = event_or_404(slug)
    # Shown once, then gone: the session cookie is signed, not encrypted, and on a shared
    # computer the next person must not find the address in it or on a reload.
    signed_up = session.pop(SIGNED_UP, None) or {}
    email = signed_up.get("email") if signed_up.get("slug") == slug else None
    reminders = wording.reminder_offsets(event, current_app.config["REMINDER_OFFSETS"],
                                         times.now())
    # Not stored by caches: it names a person's address.
    return private_page(render_template(
        "registration/registered.html", event=event, email=email, reminders=reminders,
    ))


@bp.get("/r/<token>")
def manage(token):
    """The attendee's own page, reached only through the link in their email."""
    registration = _registration_or_404(token)
    return private_page(render_template(
        "registration/manage.html",
        registration=registration,
        event=registration.event,
        token=token,
        # Found by the registration's own address key: it shows nothing of anyone else.
        me_token=tokens.me_token(registration.person) if registration.person else None,
        now=times.now(),
        holds_seat=places.holds_seat(registration),
        position=places.waiting_position(registration),
    ))


def _registration_or_404(token: str):
    """The registration a manage link names; its pages start in the registrant's language."""
    registration = services.find_by_token(token) or abort(404)
    language.start_in(registration.language)
    return registration


@bp.get("/r/<token>/invite.ics")
def own_invite(token):
    """A seat holder's own invite (their UID, the current SEQUENCE): importing it and later
    emailed updates land on one calendar entry. Nobody else is offered a copy."""
    registration = services.find_by_token(token) or abort(404)
    if not places.holds_seat(registration):
        abort(404, description=_("Only a confirmed seat has a calendar invite."))
    config = current_app.config
    organiser = addresses.parse(ical.organiser_address(config), test_environment=True)
    return private_page(feeds.calendar_response(
        ical.own_invite(registration, organiser.wire, times.now(),
                        organiser_name=config["MAIL_FROM_NAME"]),
        "invite.ics",
    ))


@bp.get("/r/<token>/cancel")
def cancel_confirm(token):
    """Ask before cancelling: what happens to the seat (or the place in the queue)."""
    return cancelling.confirmation(_registration_or_404(token),
                                   action=url_for(".cancel", token=token),
                                   back=url_for(".manage", token=token))


@bp.post("/r/<token>/cancel")
def cancel(token):
    """Cancel the registration, free the seat and promote the next person, in one transaction."""
    cancelling.cancel_or_410(_registration_or_404(token))
    return redirect(url_for(".cancelled", token=token), 303)


@bp.get("/r/<token>/cancelled")
def cancelled(token):
    """Where a person lands after cancelling: it is done, and the way back to sign up again."""
    registration = _registration_or_404(token)
    if registration.is_active:
        return redirect(url_for(".manage", token=token), 303)
    return private_page(render_template(
        "registration/cancelled.html", registration=registration, event=registration.event,
        now=times.now(),
    ))


@bp.get("/r/<token>/delete")
def delete_data_confirm(token):
    """Ask before deleting: what goes, what stays, and that it can't be undone."""
    registration = _registration_or_404(token)
    return private_page(render_template(
        "registration/delete.html", registration=registration, event=registration.event,
        token=token, now=times.now(),
    ))


@bp.post("/r/<token>/delete")
def delete_data(token):
    """Cancel if still active and the session has not ended, then anonymise at once; the
    manage link stops working."""
    registration = _registration_or_404(token)
    retention.delete_my_data(registration, times.now())
    db.session.commit()
    return redirect(url_for(".data_deleted"), 303)


@bp.get("/deleted")
def data_deleted():
    """Where a person lands after deleting their data."""
    return render_template("registration/deleted.html")


@bp.get("/privacy")
def privacy():
    """The privacy notice the sign-up form asks people to accept."""
    config = current_app.config
    return render_template(
        "registration/privacy.html", version=config["PRIVACY_NOTICE_VERSION"],
        operator=config["SERVICE_OPERATOR"], contact=config["ORGANISER_EMAIL"],
        retention_days=config["RETENTION_DAYS"],
    )


@bp.get("/healthz")
def healthz():
    """200 when the database answers, 503 when it does not (within a few seconds)."""
    if not database_answers():
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}
