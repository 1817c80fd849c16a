"""The sign-up form: what a stranger may type, checked and normalised before anything is stored."""

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.core import get_global
from babel.dates import get_timezone_location, get_timezone_name
from email_validator import EmailUndeliverableError
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import BooleanField, StringField
from wtforms.validators import ValidationError

from registration.addresses import EmailNotValidError, parse
from registration.models import AFFILIATIONS, Language, Registration
from registration.services import Applicant
from registration.text import clean_text, first_control
from registration.times import zone_names

MAX_FIELD = 200
MAX_EMAIL = Registration.email.type.length
# The words under a field's label, on the page (_signup_fields.html) and in the API's form
# description (api/form.py).
HINTS = {
    "email": _l("We send your invite and the join link here."),
    "timezone": _l("Your emails show the session’s times in this time zone."),
}
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


@lru_cache(maxsize=2)
def _country_names(locale: str) -> dict[str, str]:
    return dict(countries(locale))


def country_name(code: str, locale: str = "en") -> str:
    """A country's name in the locale's words (the console's and exports' English by default);
    the code itself for one the list doesn't have."""
    return _country_names(locale).get(code, code)


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


# The time zones offered: one per place Babel (CLDR) names, in IANA's current spelling; the
# old spellings some browsers still report (Asia/Calcutta) are kept as aliases of their zone.
AREAS = ("Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/", "Australia/",
         "Europe/", "Indian/", "Pacific/")


@lru_cache(maxsize=1)
def _zone_aliases() -> dict[str, tuple[str, ...]]:
    aliases: dict[str, list[str]] = {}
    for alias, zone_id in get_global("zone_aliases").items():
        if alias.startswith(AREAS) and alias in zone_names():
            aliases.setdefault(zone_id, []).append(alias)
    return {zone_id: tuple(sorted(names)) for zone_id, names in aliases.items()}


def _offsets(tzinfo: ZoneInfo, year: int) -> set:
    return {datetime(year, month, 1, tzinfo=tzinfo).utcoffset() for month in (1, 7)}


def zone_long_name(tzinfo: ZoneInfo, year: int, locale: str = "en") -> str:
    """The zone's name for the whole year: a zone without summer time by its standard name
    ('Japan Standard Time'), one with it by its generic name ('Central European Time')."""
    variant = "standard" if len(_offsets(tzinfo, year)) == 1 else "generic"
    # Babel takes the tzinfo itself: given a name it loads the zone again for every call.
    return get_timezone_name(tzinfo, "long", zone_variant=variant, locale=locale)


def _zone_row(zone_id: str, year: int, locale: str) -> tuple:
    """(standard offset, label, zone ID) for sorting and showing; the label is 'Tokyo — Japan
    Standard Time' / '東京 — 日本標準時'."""
    tzinfo = ZoneInfo(zone_id)
    city = get_timezone_location(tzinfo, locale=locale, return_city=True)
    return min(_offsets(tzinfo, year)), f"{city} — {zone_long_name(tzinfo, year, locale)}", zone_id


@lru_cache(maxsize=2)
def time_zones(locale: str = "en") -> tuple[tuple[str, str], ...]:
    """(zone ID, label) for every place, UTC first, then from west to east and by label,
    built once per language."""
    year = datetime.now(UTC).year
    rows = sorted(
        _zone_row(zone_id, year, locale)
        for zone_id in get_global("zone_territories")
        if zone_id.startswith(AREAS) and zone_id in zone_names()
    )
    utc = ("UTC", "UTC — " + get_timezone_name("UTC", "long", zone_variant="standard",
                                                locale=locale))
    return (utc, *((zone_id, label) for _, label, zone_id in rows))


@lru_cache(maxsize=1)
def offered_zones() -> dict[str, str]:
    """Each zone the list offers, and each old name of one (a browser may still send
    Asia/Calcutta), to the zone the list shows: what the form accepts and stores."""
    zones = {zone_id: zone_id for zone_id, _ in time_zones()}
    for zone_id, aliases in _zone_aliases().items():
        if zone_id in zones:
            zones.update(dict.fromkeys(aliases, zone_id))
    return zones


@lru_cache(maxsize=2)
def _time_zone_options(locale: str) -> str:
    html = []
    for zone_id, label in time_zones(locale):
        aliases = _zone_aliases().get(zone_id)
        extra = f' data-aliases="{escape(" ".join(aliases))}"' if aliases else ""
        html.append(f'<option value="{zone_id}"{extra}>{escape(label)}</option>')
    return "".join(html)


def time_zone_options(selected: str | None = None, locale: str = "en") -> Markup:
    """The <option>s of the time-zone list (built once per language, like the countries),
    with the chosen zone, or the zone it is an old name of, selected."""
    html = _time_zone_options(locale)
    selected = offered_zones().get(selected or "")
    marker = f'<option value="{selected}"'
    if selected and marker in html:
        html = html.replace(marker, f"{marker} selected", 1)
    return Markup(html)


def _check_text(field, limit: int = MAX_FIELD):
    value = clean_text(field.data)
    label = str(field.label.text)
    if first_control(value) is not None:
        raise ValidationError(
            _("%(field)s must not contain line breaks or control characters", field=label))
    if len(value) > limit:
        raise ValidationError(
            _("%(field)s must be %(max)d characters or fewer", field=label, max=limit))
    field.data = value


def _check_address(field):
    """The field's address, parsed; ValidationError with words for a person otherwise."""
    _check_text(field, MAX_EMAIL)  # the limit the page, the API and its document announce
    if not field.data:
        raise ValidationError(_("Enter your email address"))
    if "@" not in field.data:
        raise ValidationError(
            _("Enter an email address with an @, like name@example.com"))
    try:
        return parse(
            field.data,
            check_deliverability=current_app.config["EMAIL_CHECK_DELIVERABILITY"],
        )
    except EmailUndeliverableError:
        raise ValidationError(
            _("The domain of this email address takes no email: check it for a typing "
              "mistake")) from None
    except EmailNotValidError:
        # The library's reason ("The part after the @-sign contains invalid characters")
        # is for programmers; people get the form an address takes.
        raise ValidationError(
            _("Enter an email address in the correct format, like name@example.com")
        ) from None


class SignupForm(FlaskForm):
    """The fields in the order of the page (the error summary lists problems in this order)."""

    name = StringField(_l("Full name"))
    email = StringField(_l("Email address"))
    organisation = StringField(_l("Organisation"))
    affiliation = StringField(_l("Type of organisation"))
    country = StringField(_l("Country"))
    timezone = StringField(_l("Time zone"))
    language = StringField(_l("Language for emails"))
    # Unticked unless the person ticks it: never pre-ticked, not even for remembered details.
    remember = BooleanField(_l("Remember my details on this device"))
    consent = BooleanField(_l("Privacy notice"))
    # The honeypot: hidden from people by CSS, filled in by bots.
    website = StringField(_l("Leave this empty"))

    # What the address becomes once valid: the form stored and sent, and the repeat key.
    email_wire: str = ""
    email_key: str = ""
    # The fields registration.remember.prefill filled in from this device.
    prefilled: frozenset = frozenset()

    def applicant(self) -> Applicant:
        """What a validated form says about the person, as the sign-up services take it."""
        return Applicant(
            name=self.name.data,
            email=self.email_wire,
            email_key=self.email_key,
            organisation=self.organisation.data,
            affiliation=self.affiliation.data,
            country=self.country.data,
            timezone=self.timezone.data,
            language=self.language.data,
            consent_version=current_app.config["PRIVACY_NOTICE_VERSION"],
        )

    def validate_name(self, field):
        _check_text(field)
        if not field.data:
            raise ValidationError(_("Enter your full name"))

    def validate_organisation(self, field):
        # Optional: people who work on their own have none; the type says "Other".
        _check_text(field)

    def validate_email(self, field):
        address = _check_address(field)
        self.email_wire = address.wire
        self.email_key = address.key

    def validate_affiliation(self, field):
        if field.data not in AFFILIATIONS:
            raise ValidationError(_("Select the type of your organisation"))

    def validate_country(self, field):
        field.data = clean_text(field.data).upper()
        if field.data not in country_codes():
            raise ValidationError(_("Select your country"))

    def validate_timezone(self, field):
        zone_id = offered_zones().get(clean_text(field.data))
        if zone_id is None:
            # Only what the list offers: a zone it does not show could not be shown again
            # as chosen when the form comes back with another error.
            raise ValidationError(_("Select the time zone for your emails from the list"))
        field.data = zone_id

    def validate_language(self, field):
        field.data = clean_text(field.data) or Language.EN
        if field.data not in tuple(Language):
            raise ValidationError(_("Select the language for your emails"))

    def validate_consent(self, field):
        if not field.data:
            raise ValidationError(_("Confirm that you have read and accept the privacy notice"))


class LostLinkForm(FlaskForm):
    """"Lost your link?": the address the link to all one's sessions goes to."""

    email = StringField(_l("Email address"))
    email_key: str = ""

    def validate_email(self, field):
        self.email_key = _check_address(field).key
