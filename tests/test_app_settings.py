"""Start-up settings: defaults that work, and one clear line for a bad one."""

import pytest

from app import create_app


def test_defaults_make_a_working_app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SCHEDULER": "off"})
    assert app.config["MAIL_BACKEND"] == "file"
    assert app.config["SECRET_KEY"]


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("SMTP_PORT", "twenty-five", "SMTP_PORT"),
        ("MAIL_BACKEND", "pigeon", "MAIL_BACKEND"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("BASE_URL", "forum.example.org", "BASE_URL"),
        ("RATELIMIT_ENABLED", "maybe", "RATELIMIT_ENABLED"),
        ("DISPATCH_INTERVAL_SECONDS", "0", "DISPATCH_INTERVAL_SECONDS"),
        ("ORGANISER_EMAIL", "not-an-address", "ORGANISER_EMAIL"),
        ("SMTP_SECURITY", "tls1.0", "SMTP_SECURITY"),
        ("PROGRAMME_MAX_ROWS", "lots", "PROGRAMME_MAX_ROWS"),
        ("DATABASE_CONNECT_TIMEOUT_SECONDS", "1", "DATABASE_CONNECT_TIMEOUT_SECONDS"),
        ("DATABASE_STATEMENT_TIMEOUT_SECONDS", "soon", "DATABASE_STATEMENT_TIMEOUT_SECONDS"),
    ],
)
def test_malformed_setting_stops_start_up_naming_it(tmp_path, name, value, words):
    with pytest.raises(SystemExit) as exc:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", name: value})
    message = str(exc.value.code)
    assert words in message and "\n" not in message


def test_https_without_secret_key_stops_start_up(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(SystemExit) as exc:
        create_app({"BASE_URL": "https://forum.example.org", "SECRET_KEY": "",
                    "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3"})
    assert "SECRET_KEY" in str(exc.value.code)


def test_postgresql_url_uses_psycopg_3(tmp_path):
    app = create_app({"DATABASE_URL": "postgresql://postgres@127.0.0.1/x", "SCHEDULER": "off"})
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")


def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(tmp_path):
    from flask import request

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SCHEDULER": "off",
                      "TRUSTED_PROXIES": "1"})

    @app.get("/whoami")
    def whoami():
        return request.remote_addr

    seen = app.test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.7"})
    assert seen.get_data(as_text=True) == "203.0.113.7"


def test_database_waits_have_an_end_by_default(tmp_path):
    app = create_app({"DATABASE_URL": "postgresql://postgres@127.0.0.1/x", "SCHEDULER": "off"})
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    connect = options["connect_args"]
    assert options["hide_parameters"] is True and options["pool_timeout"] == 5
    assert connect["connect_timeout"] == 3 and connect["keepalives"] == 1
    assert connect["options"] == ("-c statement_timeout=30000 -c lock_timeout=10000 "
                                  "-c idle_in_transaction_session_timeout=60000")


def test_smtp_login_without_tls_to_another_host_stops_start_up(tmp_path):
    with pytest.raises(SystemExit) as exc:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SCHEDULER": "off",
                    "SMTP_HOST": "mail.example.org", "SMTP_USERNAME": "forum",
                    "SMTP_PASSWORD": "secret", "SMTP_SECURITY": "none"})
    message = str(exc.value.code)
    assert "SMTP_USERNAME" in message and "SMTP_SECURITY" in message and "\n" not in message
    assert "secret" not in message


@pytest.mark.parametrize("host, security", [
    ("localhost", "none"), ("127.0.0.1", "none"), ("127.8.9.10", "none"), ("::1", "none"),
    ("[::1]", "none"), ("mail.example.org", "starttls"), ("mail.example.org", "ssl"),
])
def test_smtp_login_is_allowed_over_tls_or_to_a_loopback_host(tmp_path, host, security):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SCHEDULER": "off",
                      "SMTP_HOST": host, "SMTP_USERNAME": "forum", "SMTP_SECURITY": security})
    assert app.config["SMTP_USERNAME"] == "forum"


def _imap_app(tmp_path, **settings):
    return create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "SCHEDULER": "off",
                       **settings})


@pytest.mark.parametrize("settings, words", [
    ({"IMAP_HOST": "imap.example.org", "IMAP_USERNAME": "forum", "IMAP_SECURITY": "none",
      "REPLIES_EMAIL": "replies@example.org"}, "IMAP_SECURITY"),
    ({"IMAP_SECURITY": "tls"}, "IMAP_SECURITY"),
    ({"IMAP_PORT": "imap"}, "IMAP_PORT"),
    ({"REPLIES_EMAIL": "not-an-address"}, "REPLIES_EMAIL"),
    ({"MAILBOX_INTERVAL_SECONDS": "0"}, "MAILBOX_INTERVAL_SECONDS"),
    ({"IMAP_HOST": "imap.example.org"}, "IMAP_USERNAME"),
    # Answers go to the ORGANIZER: without the mailbox's address they would never be read.
    ({"IMAP_HOST": "imap.example.org", "IMAP_USERNAME": "forum"}, "REPLIES_EMAIL"),
    ({"IMAP_CA_FILE": "/nowhere/ca.pem"}, "IMAP_CA_FILE"),
    ({"IMAP_DONE_FOLDER": "INBOX"}, "IMAP_DONE_FOLDER"),
    ({"IMAP_DONE_FOLDER": "Done*"}, "IMAP_DONE_FOLDER"),
])
def test_a_bad_mailbox_setting_stops_start_up_in_one_line_naming_it(tmp_path, settings, words):
    with pytest.raises(SystemExit) as exc:
        _imap_app(tmp_path, IMAP_PASSWORD="hunter2-secret", **settings)
    message = str(exc.value.code)
    assert words in message and "\n" not in message
    assert "hunter2-secret" not in message


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_imap_without_tls_is_allowed_to_a_loopback_host(tmp_path, host):
    app = _imap_app(tmp_path, IMAP_HOST=host, IMAP_USERNAME="forum", IMAP_SECURITY="none",
                    REPLIES_EMAIL="replies@example.org")
    assert app.config["IMAP_SECURITY"] == "none" and app.config["IMAP_PORT"] == 143


@pytest.mark.parametrize("security, port", [("ssl", 993), ("starttls", 143), ("none", 143)])
def test_the_imap_port_follows_the_security_by_default(tmp_path, security, port):
    app = _imap_app(tmp_path, IMAP_SECURITY=security)
    assert app.config["IMAP_PORT"] == port


def test_no_mailbox_is_read_by_default(tmp_path):
    config = _imap_app(tmp_path).config
    assert config["IMAP_HOST"] == "" and config["REPLIES_EMAIL"] == ""
    assert config["IMAP_SECURITY"] == "ssl" and config["IMAP_FOLDER"] == "INBOX"
    assert config["IMAP_DONE_FOLDER"] == "Processed" and config["MAILBOX_INTERVAL_SECONDS"] == 60


def test_bounces_go_to_the_replies_mailbox_unless_the_envelope_sender_is_set(tmp_path):
    config = _imap_app(tmp_path, REPLIES_EMAIL="replies@example.org").config
    assert config["SMTP_ENVELOPE_FROM"] == "replies@example.org"
    config = _imap_app(tmp_path, REPLIES_EMAIL="replies@example.org",
                       SMTP_ENVELOPE_FROM="bounces@example.org").config
    assert config["SMTP_ENVELOPE_FROM"] == "bounces@example.org"
    assert _imap_app(tmp_path).config["SMTP_ENVELOPE_FROM"] == "forum@example.org"


@pytest.mark.parametrize("value", [
    "www.example.org", "https://www.example.org/", "https://www.example.org/embed",
    "https://WWW.example.org", "https://www.example.org:443", "ftp://files.example.org",
    "https://user@www.example.org", "https://www.example.org, *", "https://x.example:99999",
])
def test_a_cors_origin_not_written_as_browsers_send_it_stops_start_up(tmp_path, value):
    with pytest.raises(SystemExit) as exc:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "CORS_ORIGINS": value})
    message = str(exc.value.code)
    assert "CORS_ORIGINS" in message and "\n" not in message


def test_cors_origins_are_exact_origins_and_none_by_default(tmp_path):
    database = f"sqlite:///{tmp_path}/x.sqlite3"
    assert create_app({"DATABASE_URL": database, "SCHEDULER": "off"}).config[
        "CORS_ORIGINS"] == frozenset()
    app = create_app({"DATABASE_URL": database, "SCHEDULER": "off",
                      "CORS_ORIGINS": " https://www.example.org ,http://localhost:8080,"})
    assert app.config["CORS_ORIGINS"] == {"https://www.example.org", "http://localhost:8080"}
