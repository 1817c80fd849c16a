"""A programme uploaded in the console: checked and previewed, then applied as previewed.

The previewed file travels back to the browser signed, compressed and base64-encoded, in a
hidden field: no server-side state, so any host behind the balancer can apply it.
"""

import base64
import hashlib
import json
import zlib
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from extensions import db
from organisers.uploads import binary_kind
from registration import programme, times, tokens
from registration.text import without_controls

# The programme file and the multipart form around it; the file itself is checked against
# programme.MAX_FILE_BYTES, so a file just over it still gets the importer's own words.
UPLOAD_MAX_BYTES = programme.MAX_FILE_BYTES + 64 * 1024
# The signed file in its hidden field: base64 makes it 4/3 of the (compressed) size at worst.
APPLY_MAX_BYTES = programme.MAX_FILE_BYTES * 4 // 3 + 64 * 1024
PREVIEW_MAX_AGE_SECONDS = 3600
TOO_LARGE = _l("The file is larger than %(megabytes)d MB; a programme is far smaller. Is it "
               "the right file? Nothing was changed.",
               megabytes=programme.MAX_FILE_BYTES // 1024 // 1024)


class UploadRefused(Exception):
    """The upload can't be previewed or applied; says why in words, with the answer's status
    and the file's problems line by line, if any."""

    def __init__(self, status: int, error: str | None = None, problems=()):
        super().__init__(error or "; ".join(str(p) for p in problems))
        self.status = status
        self.error = error
        self.problems = problems


class PreviewStale(Exception):
    """The programme changed since the preview: the file would now do something else."""

    def __init__(self, plans: list[programme.PlannedChange]):
        super().__init__("the programme changed since the preview")
        self.plans = plans


def shown_filename(name: str) -> str:
    """The name an upload is shown and audited by: no folders, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return without_controls(base)[:200] or "the file"


def check_file(filename: str, data: bytes) -> None:
    """Refuse (415) a file that is plainly not a CSV, saying how to make one."""
    wrong_kind = binary_kind(data)
    if wrong_kind or not filename.lower().endswith(".csv"):
        what = wrong_kind or _("not a .csv file")
        raise UploadRefused(415, _(
            "%(filename)s is %(what)s. In Excel, choose File › Save a Copy › "
            "“CSV UTF-8 (comma delimited)”, then upload that file. Nothing was changed.",
            filename=filename, what=what))


def preview(data: bytes, now: datetime, *,
            keep_seats: bool = False) -> tuple[list, list[programme.PlannedChange], list]:
    """The file's rows, what applying them would do, and the problems (rows, plans or problems
    are empty accordingly); nothing is applied. `keep_seats` accepts capacities below the
    seats already taken."""
    rows, problems = programme.parse_programme(
        data, programme.stored_events(), max_rows=current_app.config["PROGRAMME_MAX_ROWS"])
    plans = []
    if not problems:
        plans, problems = programme.preview_programme(rows, now, keep_seats=keep_seats)
    return rows, plans, problems


def apply(filename: str, data: bytes, promised: str, now: datetime, *,
          keep_seats: bool = False) -> programme.ImportSummary:
    """Apply a previewed file, checked again; flushes, the caller commits. Raises PreviewStale
    when it would now do something else than the preview promised, UploadRefused when it
    can't be applied; either way nothing is changed."""
    rows, plans, problems = preview(data, now, keep_seats=keep_seats)
    if problems:
        raise UploadRefused(422, problems=problems)
    if plan_digest(plans) != promised:
        raise PreviewStale(plans)
    try:
        # A savepoint: a refusal or a race undoes the whole file, and only the file.
        with db.session.begin_nested():
            summary = programme.apply_programme(rows, now, keep_seats=keep_seats)
            db.session.flush()
    except programme.ProgrammeRejected as exc:
        raise UploadRefused(422, problems=exc.problems) from None
    except IntegrityError:
        raise UploadRefused(409, _(
            "The programme changed while it was being applied (another upload at the same "
            "time?); nothing was changed. Upload the file again.")) from None
    return summary


class _ClockSigner(TimestampSigner):
    """Signs with the app's clock, so a preview's age is measured like every other time."""

    def get_timestamp(self) -> int:
        return int(times.now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(tokens.signing_keys(), salt="programme-upload",
                                  signer=_ClockSigner)


def plan_digest(plans: list[programme.PlannedChange]) -> str:
    """What the preview promised, without the head counts (a sign-up meanwhile is fine)."""
    shape = [(plan.slug, plan.action, plan.fields) for plan in plans]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()


def sign(filename: str, data: bytes, plans: list[programme.PlannedChange],
         keep_seats: bool) -> str:
    """The previewed file, what it promised and whether it keeps seats, signed for the hidden
    field."""
    packed = base64.b64encode(zlib.compress(data, 9)).decode("ascii")
    return _serializer().dumps({"name": filename, "data": packed, "plan": plan_digest(plans),
                                "keep_seats": keep_seats})


def unsign(token: str) -> tuple[str, bytes, str, bool]:
    """The file a preview signed, its name, promise and whether it keeps seats; UploadRefused
    for anything else."""
    try:
        payload = _serializer().loads(token, max_age=PREVIEW_MAX_AGE_SECONDS)
        inflate = zlib.decompressobj()
        data = inflate.decompress(base64.b64decode(payload["data"]),
                                  programme.MAX_FILE_BYTES + 1)
        return payload["name"], data, payload["plan"], bool(payload.get("keep_seats"))
    except SignatureExpired:
        raise UploadRefused(400, _(
            "The preview is more than %(minutes)d minutes old; upload the file again to see "
            "what it would do now. Nothing was changed.",
            minutes=PREVIEW_MAX_AGE_SECONDS // 60)) from None
    except (BadSignature, ValueError, KeyError, TypeError, zlib.error):
        raise UploadRefused(400, _(
            "This is not a preview made here; upload the file again. Nothing was changed."
        )) from None
