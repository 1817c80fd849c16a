"""The embeddable sign-up's script at /embed.js: the one file other sites load from us."""

from flask import Blueprint, current_app, send_from_directory

bp = Blueprint("embed", __name__)

# Other sites load it by a fixed address, so a new version must reach them soon: an hour from a
# cache, then a revalidation by ETag (a 304 while it has not changed).
SCRIPT_MAX_AGE = 3600


@bp.get("/embed.js")
def script():
    """The script, loadable from any origin (it holds nothing private)."""
    response = send_from_directory(current_app.static_folder, "embed.js",
                                   mimetype="text/javascript", max_age=SCRIPT_MAX_AGE)
    response.cache_control.public = True
    response.headers["Access-Control-Allow-Origin"] = "*"
    # A host page that isolates itself (Cross-Origin-Embedder-Policy) loads only resources that
    # say they may be embedded elsewhere.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
