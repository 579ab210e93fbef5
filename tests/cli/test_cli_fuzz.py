"""Malformed files and values on the command line: one line on stderr, never a traceback, exit
status 2 for a usage error or bad input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_runner import run

DEPTH = 100_000  # the pathological config.json


@pytest.mark.parametrize(
    ("name", "content", "command", "match"),
    [
        pytest.param("config.json", "[" * DEPTH + "]" * DEPTH, "estimate", "nested 100,000 levels", id="deep-list"),
        pytest.param("config.json", '{"a":' * DEPTH + "1" + "}" * DEPTH, "estimate", "nested", id="deep-object"),
        pytest.param("config.json", b"\x89PNG\r\n\x1a\n\xff\xfe", "estimate", "not UTF-8", id="binary-json"),
        pytest.param("config.json", '{"hidden_size": ', "estimate", "line 1", id="truncated-json"),
        pytest.param("bench.json", "[" * DEPTH + "]" * DEPTH, "calibrate", "nested deeper", id="calibrate-deep"),
        pytest.param("bench.json", b"\x00\xff\xfe\x80", "calibrate", "not UTF-8", id="calibrate-binary"),
    ],
)
def test_malformed_files_are_one_line_exit_2(capsys, tmp_path, name, content, command, match):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    args = [command, str(path), "--rig", "rtx-4090"] if command == "estimate" else [command, str(path)]
    if command == "calibrate":
        args += ["--gpu", "rtx-4090"]
    code, out, err = run(capsys, *args)
    assert code == 2
    assert match in err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "match"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\xff", "not UTF-8 text (byte 0x89 on line 1)", id="binary"),
        pytest.param(b"[prices]\nrtx-4090 = = 3\n", "line 2", id="malformed"),
    ],
)
def test_a_bad_config_toml_names_file_and_line(capsys, tmp_path, monkeypatch, content, match):
    folder = tmp_path / "xdg" / "rigplan"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_bytes(content)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    code, _, err = run(capsys, "plan", "llama-3-8b", "--top", "1")
    assert code == 2
    assert "config.toml" in err and match in err
    assert "Traceback" not in err


OPTIONS = [
    ("estimate", "--context"),
    ("estimate", "--batch"),
    ("estimate", "--output-tokens"),
    ("estimate", "--host-ram"),
    ("estimate", "--gpu-layers"),
    ("estimate", "--quant"),
    ("estimate", "--tensor-parallel"),
    ("vram", "--context"),
    ("gpus", "--min-memory"),
]
EXAMPLES = 40  # a second or so: each example is one CLI run


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    option=st.sampled_from(OPTIONS),
    value=st.one_of(
        st.sampled_from(["1e8", "1e30", "-1", "0", "nan", "inf", "", "½", "12abc", "9" * 40, "\x00"]),
        st.text(max_size=12),
    ),
)
def test_any_value_of_a_number_option_is_answered_without_a_traceback(capsys, option, value):
    command, flag = option
    args = [command, flag, value] if command == "gpus" else [command, "llama-3-8b", flag, value]
    if command == "estimate":
        args += ["--rig", "rtx-4090"]
    code, out, err = run(capsys, *args)
    assert "Traceback" not in out + err
    assert code in (0, 1, 2)
    if code == 2:
        assert err.strip()
