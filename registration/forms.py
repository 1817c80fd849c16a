"""The sign-up form: what a stranger may type, checked and normalised before anything is stored."""

from functools import lru_cache

from babel import Locale
from flask import current_app
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import BooleanField, StringField
from wtforms.validators import ValidationError

from registration.addresses import EmailNotValidError, parse
from registration.models import AFFILIATIONS, Language
from registration.text import clean_text, first_control
from registration.times import is_zone

MAX_FIELD = 200
# Codes Babel knows that are not ISO 3166-1 countries (regions, "unknown", reserved ones);
# Kosovo's user-assigned XK stays, as cities there sign up too.
NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}


@lru_cache(maxsize=2)
def countries(locale: str = "en") -> tuple[tuple[str, str], ...]:
    """(code, name) for every ISO 3166-1 alpha-2 country, sorted by name, built once."""
    names = Locale.parse(locale).territories
    pairs = [
        (code, name)
        for code, name in names.items()
        if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
    ]
    return tuple(sorted(pairs, key=lambda pair: pair[1].casefold()))


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    return frozenset(code for code, _ in countries())


@lru_cache(maxsize=2)
def _country_options(locale: str) -> str:
    return "".join(
        f'<option value="{code}">{escape(name)}</option>' for code, name in countries(locale)
    )


def country_options(selected: str | None = None, locale: str = "en") -> Markup:
    """The <option>s of the country list, escaped once per process (it is the largest part of
    the sign-up page), with the chosen one selected."""
    html = _country_options(locale)
    if selected in country_codes():
        html = html.replace(f'<option value="{selected}">',
                            f'<option value="{selected}" selected>', 1)
    return Markup(html)




def _check_text(field):
    value = clean_text(field.data)
    if first_control(value) is not None:
        raise ValidationError("Please remove line breaks and control characters.")
    if len(value) > MAX_FIELD:
        raise ValidationError(f"Please keep this under {MAX_FIELD} characters.")
    field.data = value


class SignupForm(FlaskForm):
    """name, email, organisation, affiliation, country, timezone, language, consent, website."""

    name = StringField("Full name")
    email = StringField("Email")
    organisation = StringField("Organisation")
    affiliation = StringField("Type of organisation")
    country = StringField("Country")
    timezone = StringField("Time zone")
    language = StringField("Language for emails")
    consent = BooleanField("I have read and accept the privacy notice")
    # The honeypot: hidden from people by CSS, filled in by bots.
    website = StringField("Leave this empty")

    # What the address becomes once valid: the form stored and sent, and the repeat key.
    email_wire: str = ""
    email_key: str = ""

    def validate_name(self, field):
        _check_text(field)
        if not field.data:
            raise ValidationError("Please enter your name.")

    def validate_organisation(self, field):
        _check_text(field)
        if not field.data:
            raise ValidationError("Please enter your organisation.")

    def validate_email(self, field):
        _check_text(field)
        if not field.data:
            raise ValidationError("Please enter your email address.")
        try:
            address = parse(
                field.data,
                check_deliverability=current_app.config["EMAIL_CHECK_DELIVERABILITY"],
            )
        except EmailNotValidError as exc:
            raise ValidationError(f"This email address does not look right: {exc}") from None
        self.email_wire = address.wire
        self.email_key = address.key

    def validate_affiliation(self, field):
        if field.data not in AFFILIATIONS:
            raise ValidationError("Please choose the type of your organisation.")

    def validate_country(self, field):
        field.data = clean_text(field.data).upper()
        if field.data not in country_codes():
            raise ValidationError("Please choose your country.")

    def validate_timezone(self, field):
        # The browser fills this hidden field; a person can't correct it, so an unknown zone
        # falls back to the event's own (the caller's default) instead of failing the form.
        field.data = clean_text(field.data)
        if not is_zone(field.data):
            field.data = ""

    def validate_language(self, field):
        field.data = clean_text(field.data) or Language.EN
        if field.data not in tuple(Language):
            raise ValidationError("Please choose English or Japanese.")

    def validate_consent(self, field):
        if not field.data:
            raise ValidationError("Please accept the privacy notice to sign up.")
