"""The embed's script as other sites get it: at /embed.js, from any origin, cached, small, and
built from DOM nodes only (the browser tests, tests/test_browser_embed.py, run it)."""

import gzip
import re

from registration.embed import SCRIPT_MAX_AGE
from tests.servers import ROOT

SCRIPT = ROOT / "static" / "embed.js"
EMBED_LIMIT_BYTES = 30 * 1024
# What would turn text from the API into markup or code, or need 'unsafe-inline' styles.
UNSAFE = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|"
                    r"new\s+Function|setTimeout\s*\(\s*['\"`]|[\"']style[\"']\s*:|"
                    r"setAttribute\(\s*[\"']style|\.cssText")


def test_the_script_is_served_to_any_origin_and_cached(client):
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.cache_control.public and response.cache_control.max_age == SCRIPT_MAX_AGE
    assert "Set-Cookie" not in response.headers
    assert response.get_data() == SCRIPT.read_bytes()
    again = client.get("/embed.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_script_weighs_under_30_kb_gzipped():
    assert len(gzip.compress(SCRIPT.read_bytes(), 9)) < EMBED_LIMIT_BYTES


def test_the_script_writes_api_data_as_text_never_as_markup_or_code():
    source = SCRIPT.read_text(encoding="utf-8")
    assert UNSAFE.findall(source) == []
