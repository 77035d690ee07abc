"""gc_pause.py: the cyclic collector paused inside a block and left as it was found."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from promptform.core.gc_pause import gc_paused


@pytest.fixture
def restore_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_collection_is_paused_inside_and_resumed_after(restore_gc: None) -> None:
    gc.enable()

    with gc_paused():
        assert not gc.isenabled()

    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled(restore_gc: None) -> None:
    gc.disable()

    with gc_paused():
        pass

    assert not gc.isenabled()


def test_collection_resumes_when_the_block_raises(restore_gc: None) -> None:
    gc.enable()

    with pytest.raises(ValueError), gc_paused():
        raise ValueError("boom")

    assert gc.isenabled()
