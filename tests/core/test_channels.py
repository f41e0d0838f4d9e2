"""The channel keys 'v', 's', 'vs' and their media: core.channels is their one owner."""
from __future__ import annotations

import pytest

from core import channels
from core.channels import INPUT_KEYS, REGISTRY


@pytest.mark.parametrize("key", INPUT_KEYS)
def test_a_key_and_its_media_round_trip(key: str) -> None:
    media = channels.media_of(key)
    assert channels.input_key(set(media)) == key
    assert channels.key_of(video="video" in media, sentence="sentence" in media) == key
    assert (channels.has_video(key), channels.has_sentence(key)) == ("video" in media, "sentence" in media)
    assert REGISTRY[channels.encode_name(key)].inputs == frozenset(media)


def test_keys_name_media_in_one_order() -> None:
    assert channels.media_of("vs") == ("video", "sentence")
    assert channels.key_of(video=True, sentence=False) == "v"
    assert channels.key_of(video=False, sentence=True) == "s"


@pytest.mark.parametrize("bad", ["", "sv", "x", "video"])
def test_an_unknown_key_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        channels.media_of(bad)


def test_no_inputs_have_no_key() -> None:
    with pytest.raises(ValueError):
        channels.key_of(video=False, sentence=False)
