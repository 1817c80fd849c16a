"""What the API's answers and request bodies look like, as marshmallow schemas: the OpenAPI
document is written from them (the views build their answers from the same fields)."""

import marshmallow as ma
from marshmallow import fields

from registration.forms import MAX_EMAIL, MAX_FIELD
from registration.models import EventKind, Language, Pillar
from registration.several import MAX_CHOSEN

EVENT_STATUSES = ("scheduled", "cancelled", "ended")


class ProblemSchema(ma.Schema):
    """An error, as RFC 9457 problem details."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.List(fields.Dict(keys=fields.String(), values=fields.String()), metadata={
        "description": "422 only: [{field, message}], in the request's language."})


class EventSchema(ma.Schema):
    """A published session. Never its join link (that reaches registrants only by email)."""

    slug = fields.String(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True, validate=ma.validate.OneOf(tuple(EventKind)))
    pillar = fields.String(required=True, allow_none=True,
                           validate=ma.validate.OneOf(tuple(Pillar)))
    language = fields.String(required=True, validate=ma.validate.OneOf(tuple(Language)))
    description = fields.String(required=True)
    starts_at = fields.String(required=True, metadata={
        "format": "date-time", "description": "UTC, ISO 8601 with Z"})
    ends_at = fields.String(required=True, metadata={
        "format": "date-time", "description": "UTC, ISO 8601 with Z"})
    timezone = fields.String(required=True, metadata={
        "description": "The IANA zone the organisers set the session in."})
    capacity = fields.Integer(required=True, allow_none=True)
    seats_left = fields.Integer(required=True, allow_none=True, metadata={
        "description": "null when the session has no cap."})
    status = fields.String(required=True, validate=ma.validate.OneOf(EVENT_STATUSES))
    page_url = fields.String(required=True, metadata={"format": "uri"})
    ics_url = fields.String(required=True, metadata={"format": "uri"})
    recording_url = fields.String(required=True, allow_none=True, metadata={
        "description": "Set once the session has ended and the organisers posted it."})


class EventListSchema(ma.Schema):
    events = fields.List(fields.Nested(EventSchema), required=True)


class SignupSchema(ma.Schema):
    """The sign-up form's fields, as JSON. The rules are the form's (registration/forms.py)."""

    # The limits are the form's, counted after trimming (so not claimed as maxLength).
    name = fields.String(required=True, metadata={
        "description": f"At most {MAX_FIELD} characters, no line breaks."})
    email = fields.String(required=True, metadata={
        "description": f"At most {MAX_EMAIL} characters."})
    organisation = fields.String(metadata={
        "description": f"Optional; at most {MAX_FIELD} characters, no line breaks."})
    affiliation = fields.String(required=True)
    country = fields.String(required=True, metadata={"description": "ISO 3166-1 alpha-2"})
    timezone = fields.String(required=True, metadata={"description": "An IANA time zone."})
    language = fields.String(validate=ma.validate.OneOf(tuple(Language)), metadata={
        "description": "The language of the emails (default en)."})
    consent = fields.Boolean(required=True, metadata={
        "description": "Must be true: the privacy notice was read and accepted."})
    website = fields.String(metadata={"description": "Leave empty (a trap for robots)."})


class SeveralSignupSchema(SignupSchema):
    events = fields.List(fields.String(), required=True,
                         validate=ma.validate.Length(min=1, max=MAX_CHOSEN))


class AcceptedSchema(ma.Schema):
    """The same answer for a first and a repeat sign-up (and for a seat or the waiting list)."""

    status = fields.String(required=True, validate=ma.validate.OneOf(("accepted",)))
    email = fields.String(required=True, metadata={"description": "The address as sent."})
    events = fields.List(fields.String(), required=True, metadata={
        "description": "The slugs of the sessions signed up for."})


class FormSchema(ma.Schema):
    """The sign-up form described for the embed: fields, labels and texts in one language."""

    language = fields.String(required=True, validate=ma.validate.OneOf(tuple(Language)))
    fields_ = fields.List(fields.Dict(), data_key="fields", required=True)
    honeypot = fields.String(required=True)
    texts = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
