"""The files an operator copies besides deploy/nginx.conf: the systemd units and gunicorn's
settings, which keep the app's port on loopback behind the proxy."""

import runpy
import shutil
import subprocess

import pytest

from tests.servers import ROOT

UNITS = sorted((ROOT / "deploy").glob("*.service"))


def test_gunicorn_listens_on_loopback_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["bind"].startswith("127.0.0.1:")


def test_there_is_a_unit_for_the_web_and_one_for_the_worker():
    commands = {unit.name: unit.read_text() for unit in UNITS}
    assert "gunicorn -c gunicorn.conf.py" in commands["forum-signup-web.service"]
    assert "bin/flask worker" in commands["forum-signup-worker.service"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_systemd_accepts_the_unit(unit, tmp_path):
    # Pointed at this checkout, so that systemd also finds the programs it would start.
    rendered = tmp_path / unit.name
    rendered.write_text(unit.read_text().replace("/srv/forum-signup", str(ROOT)))
    result = subprocess.run(["systemd-analyze", "verify", str(rendered)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ignoring" not in result.stderr, result.stderr  # an unknown key or a bad value
