"""Choose several sessions, sign up once: the form for the chosen sessions, its submission (one
registration per session, in one transaction) and its thank-you page."""

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

from extensions import db
from registration import language, remember, services, times, wording
from registration.forms import SignupForm
from registration.models import Event
from registration.private import private_page
from registration.views import closed_message, form_page, signup_limits

bp = Blueprint("signup", __name__)

# More `event` values than this in one request is not a person ticking boxes; the programme
# rarely has this many open sessions at once.
MAX_CHOSEN = 20
SLUG_LENGTH = Event.slug.type.length
# The thank-you page names the address just typed and the sessions chosen, once.
SIGNED_UP = "signed_up_several"


def _slugs(values: list[str]) -> list[str]:
    """The chosen slugs, stripped, without blanks or repeats, in the order given; 400 when
    there are too many to be a person's choice."""
    slugs = list(dict.fromkeys(value.strip() for value in values if value.strip()))
    if len(slugs) > MAX_CHOSEN:
        abort(400, description=_(
            "Choose at most %(max)d sessions at a time. Go back to the programme and untick "
            "some.", max=MAX_CHOSEN))
    return slugs


def _may_be_slug(value: str) -> bool:
    return len(value) <= SLUG_LENGTH and value.isprintable()


def _chosen(slugs: list[str], now) -> tuple[list[Event], list[str]]:
    """The chosen sessions that take sign-ups, in the order chosen, and a sentence for each
    slug that names no session or a session that takes no sign-ups."""
    # Only what a slug can be is looked up (PostgreSQL refuses a NUL in a query).
    found = {event.slug: event for event in db.session.scalars(
        sa.select(Event).where(Event.slug.in_([slug for slug in slugs if _may_be_slug(slug)])))}
    events, problems = [], []
    for slug in slugs:
        event = found.get(slug)
        if event is None:
            shown = "".join(char if char.isprintable() else "\ufffd" for char in slug[:80])
            problems.append(_("There is no session “%(slug)s” in the programme.", slug=shown))
        elif not event.is_open_for_signup(now):
            problems.append(closed_message(event))
        else:
            events.append(event)
    return events, problems


def _render(events: list[Event], problems: list[str], form: SignupForm, status: int = 200):
    slugs = [event.slug for event in events]
    # A form with errors answers a POST: the language switch leads to the same choice.
    g.switch_path = url_for(".choose", event=slugs)
    return form_page(Response(render_template(
        "registration/signup.html", events=events, problems=problems, form=form,
        # Refusals answering a POST head the error summary; on a GET they are a notice.
        summary=[("sessions", problem) for problem in problems] if status == 422 else [],
        drop_urls={slug: url_for(".choose", event=[other for other in slugs if other != slug])
                   for slug in slugs},
        default_timezone=events[0].timezone if events else "UTC",
    ), status))


@bp.get("/signup")
def choose():
    """The chosen sessions (time, seats left or the waiting list), each with a way to drop
    it, and the sign-up form."""
    events, problems = _chosen(_slugs(request.args.getlist("event")), times.now())
    form = SignupForm(formdata=None, timezone=events[0].timezone if events else None,
                      language=language.page_language())
    # The emails' language may come from this device; the page keeps its own.
    remember.prefill(form)
    return _render(events, problems, form)


@bp.post("/signup")
@signup_limits
def send():
    """One registration per chosen session, in one transaction; 303 to the thank-you page,
    the same whether or not the address held any of them already."""
    now = times.now()
    slugs = _slugs(request.form.getlist("event"))
    events, problems = _chosen(slugs, now)
    form = SignupForm()
    if form.website.data:
        # A bot filled the honeypot: answer as to anyone, keep nothing.
        return _thank_you(events, form)
    if not slugs:
        problems.append(_("Choose at least one session from the programme."))
    # Without a session there is no form on the page: only the choice is in question.
    if not events or not form.validate() or problems:
        return _render(events, problems, form, 422)
    try:
        services.sign_up_many(events, form.applicant(), now)
    except services.SignupClosed as closed:
        # Cancelled (or ended) after this request read it, before the sign-up locked it:
        # nothing is stored, and the form comes back naming it as the lock read it.
        problems = [closed_message(event) for event in events if event.slug in closed.args]
        events = [event for event in events if event.slug not in closed.args]
        db.session.rollback()
        return _render(events, problems, form, 422)
    db.session.commit()
    response = _thank_you(events, form)
    # Unticked leaves an earlier cookie as it is: forgetting is the explicit "Forget me".
    return remember.remember(response, form) if form.remember.data else response


def _thank_you(events: list[Event], form: SignupForm):
    """303 to the thank-you page, which will name the sessions and the address as typed."""
    session[SIGNED_UP] = {"slugs": [event.slug for event in events],
                          "email": (form.email.data or "").strip()[:320]}
    return redirect(url_for(".done"), 303)


@bp.get("/signup/done")
def done():
    """The thank-you page: the sessions chosen and what happens next, the same for new and
    repeat sign-ups (each email says whether it is a seat or the waiting list)."""
    # Shown once, then gone, like the single sign-up's page: it names a person's address.
    signed_up = session.pop(SIGNED_UP, None) or {}
    slugs = [slug for slug in signed_up.get("slugs") or () if isinstance(slug, str)]
    found = {event.slug: event for event in db.session.scalars(
        sa.select(Event).where(Event.slug.in_(slugs)))} if slugs else {}
    events = [found[slug] for slug in slugs if slug in found]
    # The reminders of the session that starts last: the others get the same or fewer.
    reminders = wording.reminder_offsets(
        max(events, key=lambda event: event.starts_at), current_app.config["REMINDER_OFFSETS"],
        times.now()) if events else ""
    return private_page(render_template(
        "registration/signup_done.html", email=signed_up.get("email"), events=events,
        reminders=reminders,
    ))
