"""calibration/user_store.locked: a second writer waits for the lock, then gives up with a
one-line error naming the lock file; once released, the lock can be taken again."""

from __future__ import annotations

import pytest

from rigplan.calibration import user_store
from rigplan.errors import DataFileError


def test_a_second_writer_gives_up_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(user_store, "LOCK_TIMEOUT_S", 0.2)
    busy = pytest.raises(DataFileError, match="another rigplan is writing the calibration")
    with user_store.locked(tmp_path), busy, user_store.locked(tmp_path):
        pass  # pragma: no cover - never reached


def test_the_lock_is_free_again_after_release(tmp_path, monkeypatch):
    monkeypatch.setattr(user_store, "LOCK_TIMEOUT_S", 0.2)
    with user_store.locked(tmp_path):
        pass
    with user_store.locked(tmp_path):
        assert (tmp_path / user_store.LOCK_FILE).exists()
