"""The organiser's own profile page: the time zone the console shows times in, and the password.
Views only: the work is done by organisers.accounts."""

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup

from extensions import db, limiter
from organisers import auth, throttle
from organisers.accounts import ProfileRefused, change_profile, change_summary
from organisers.clock import zone_label
from organisers.forms import ProfileForm
from registration.forms import offered_zones, time_zone_options

bp = Blueprint("organiser_profile", __name__, url_prefix="/admin")


def _zone_options(selected: str) -> Markup:
    options = time_zone_options(selected)
    if selected in offered_zones():
        return options
    # A zone set from the command line that the list doesn't offer stays until changed.
    return Markup('<option value="%s" selected>%s</option>') % (
        selected, zone_label(selected)) + options


def _render(form: ProfileForm, status: int = 200):
    return render_template("organisers/profile.html", form=form,
                           zone_options=_zone_options(form.timezone.data or ""),
                           min_length=auth.MIN_PASSWORD_LENGTH), status


@bp.route("/profile", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN_PER_ADDRESS_IP"], methods=["POST"],
               key_func=throttle.password_check_key, deduct_when=throttle.wrong_current_password)
@auth.login_required
def profile():
    """The organiser's time zone and password; each change audited."""
    organiser = g.organiser
    if request.method == "GET":
        return _render(ProfileForm(formdata=None, data={"timezone": organiser.timezone}))
    form = ProfileForm()
    try:
        change = change_profile(organiser, form.timezone.data or "",
                                form.current_password.data or "", form.new_password.data or "",
                                form.new_password_again.data or "")
    except ProfileRefused as refused:
        for name, messages in refused.errors.items():
            form[name].errors = messages
        if refused.wrong_password:
            g.wrong_current_password = True
            # Someone at an unattended console trying to take the account over.
            auth.audit("password change refused", organiser.email,
                       {"reason": "wrong current password"})
            db.session.commit()
        return _render(form, 422)
    if change.zone:
        auth.audit("time zone changed", organiser.email,
                   {"from": change.zone[0], "to": change.zone[1]})
    if change.password:
        auth.audit("password changed", organiser.email)
    db.session.commit()
    if change.password:
        auth.keep_session(organiser)
    flash(change_summary(change))
    return redirect(url_for(".profile"), 303)

