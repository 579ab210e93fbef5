"""`rigplan serve`: loopback by default, a warning off loopback, flags reach the app."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rigplan.cli import app
from rigplan.cli.serve_cmd import is_loopback

pytest.importorskip("uvicorn")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.fixture
def started(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda web_app, **kw: calls.append((web_app, kw)))
    return calls


def test_serve_defaults_to_loopback(started):
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    web_app, kw = started[0]
    assert (kw["host"], kw["port"]) == ("127.0.0.1", 8000)
    assert "warning" not in result.output
    assert web_app.state.inputs.allow_paths is False and web_app.state.inputs.allow_network is False


def test_serve_warns_off_loopback_and_passes_flags(started):
    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--port", "9001", "--allow-paths", "--allow-network"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: listening on 0.0.0.0" in result.output
    web_app, kw = started[0]
    assert (kw["host"], kw["port"]) == ("0.0.0.0", 9001)
    assert web_app.state.inputs.allow_paths is True and web_app.state.inputs.allow_network is True


def test_serve_help_ends_with_an_example():
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "Example: rigplan serve" in result.output
    assert "--allow-paths" in result.output
