"""Freed heap memory goes back to the OS where the C library allows it."""

from __future__ import annotations

import platform

import pytest

from autoscaler.live.memory import release_free_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_heap_is_returned_on_glibc() -> None:
    blocks = [bytearray(64 * 1024) for _ in range(200)]  # heap, not mmap: under the threshold
    del blocks
    assert release_free_memory() is True
