"""The benches' and tests' shared helpers: one parser of a clip's FRAMESxHEIGHTxWIDTH, one free port."""
from __future__ import annotations

import socket

import pytest

from bench.support import clip_shape, free_port


def test_clip_shape_reads_frames_height_width_and_refuses_the_rest() -> None:
    assert clip_shape("16x72x128") == (16, 72, 128) and clip_shape("8X36X64") == (8, 36, 64)
    for bad in ("72x128", "16x72x", "0x72x128", "ax72x128"):
        with pytest.raises(ValueError, match="FRAMESxHEIGHTxWIDTH"):
            clip_shape(bad)


def test_free_port_can_be_bound() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
