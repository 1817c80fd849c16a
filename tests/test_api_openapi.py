"""The API's OpenAPI document: the committed snapshot (openapi.json) is what the code writes,
and the readable page at /api/v1/docs shows it under the app's CSP."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_snapshot_is_the_served_document(client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    committed = json.loads((ROOT / "openapi.json").read_text())
    assert served.get_json() == committed, (
        "the API changed: run `make openapi` and commit openapi.json")


def test_the_document_is_openapi_3_1_with_every_operation(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    operations = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method in ("get", "post")}
    assert operations == {
        ("GET", "/api/v1/events"), ("GET", "/api/v1/events/{slug}"), ("GET", "/api/v1/form"),
        ("POST", "/api/v1/events/{slug}/registrations"), ("POST", "/api/v1/registrations"),
    }
    sign_up = document["paths"]["/api/v1/events/{slug}/registrations"]["post"]
    assert "application/problem+json" in sign_up["responses"]["422"]["content"]
    links = document["paths"]["/api/v1/events/{slug}"]["get"]["responses"]["200"]["links"]
    assert links["SignUp"]["operationId"] == "sign_up"


@pytest.mark.parametrize(("language", "heading"), [("en", "Parameters"), ("ja", "パラメーター")])
def test_the_docs_page_is_ours_and_readable(client, language, heading):
    page = client.get(f"/api/v1/docs?lang={language}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "POST /api/v1/events/{slug}/registrations" in text
    assert heading in text
    # Nothing from another site: the page works under the app's CSP as it stands.
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script" not in text.replace('<script src="/static/', "")
    assert "cdn" not in text.lower()
