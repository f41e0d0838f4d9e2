"""ReDoc's script is served by the app with its one CDN image (the Redocly badge) pointed at a local file."""
from __future__ import annotations

import re

from service.app import STATIC
from service.redoc import CDN_LOGO, LOCAL_LOGO, OFFLINE_ASSETS, redoc_script


def test_the_served_script_fetches_nothing_from_a_cdn() -> None:
    original = (OFFLINE_ASSETS / "redoc.standalone.js").read_bytes()
    assert CDN_LOGO.encode() in original  # what this module exists for: fails when the bundle stops doing it
    served = redoc_script("/api")
    assert b"cdn.redoc.ly" not in served and b"/api" + LOCAL_LOGO.encode() in served
    assert not re.findall(rb"https://cdn[.\w/-]*\.(?:svg|png|js|css)", served)
    assert (STATIC / LOCAL_LOGO.removeprefix("/static/")).is_file()
