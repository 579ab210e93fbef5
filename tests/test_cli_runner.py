"""The generated-docs check can fail, with or without RIGPLAN_UPDATE_DOCS."""

from __future__ import annotations

import pytest

from cli_runner import check_generated


def test_equal_text_passes(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text("same\n", encoding="utf-8")
    monkeypatch.delenv("RIGPLAN_UPDATE_DOCS", raising=False)
    check_generated(doc, "same\n", "regenerate")


def test_stale_text_fails(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text("old\n", encoding="utf-8")
    monkeypatch.delenv("RIGPLAN_UPDATE_DOCS", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"doc\.md is stale"):
        check_generated(doc, "new\n", "regenerate")
    assert doc.read_text(encoding="utf-8") == "old\n"


def test_update_mode_writes_and_still_fails(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text("old\n", encoding="utf-8")
    monkeypatch.setenv("RIGPLAN_UPDATE_DOCS", "1")
    with pytest.raises(pytest.fail.Exception, match="regenerated"):
        check_generated(doc, "new\n", "regenerate")
    assert doc.read_text(encoding="utf-8") == "new\n"
    check_generated(doc, "new\n", "regenerate")  # the rerun passes
