"""The synthetic clips' captions: the surface forms of shapes, motions, sizes, speeds and backgrounds (the words
`model.data.attributes` parses back) and the human-like descriptions of a clip's objects, each naming the canonical
colour, a shape synonym and a motion phrase. Torch-free."""
from __future__ import annotations

import random
import re

from model.data.shapes import MOTIONS, ObjectSpec

# Surface forms used when writing captions; the parser accepts every one of them (and a few more).
SHAPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "disc", "disk", "dot", "round shape"),
    "square": ("square", "box", "block", "square shape"),
    "triangle": ("triangle", "triangular shape", "three sided shape"),
    "diamond": ("diamond", "rhombus", "diamond shape", "lozenge"),
    "star": ("star", "star shape", "five pointed star"),
    "cross": ("cross", "plus sign", "plus shape", "cross shape"),
}

# Each verb as (3rd person present, progressive, participle).
Verb = tuple[str, str, str]
_TRAVEL_VERBS: tuple[Verb, ...] = (
    ("moves", "is moving", "moving"),
    ("slides", "is sliding", "sliding"),
    ("goes", "is going", "going"),
    ("travels", "is traveling", "traveling"),
    ("drifts", "is drifting", "drifting"),
    ("glides", "is gliding", "gliding"),
    ("heads", "is heading", "heading"),
)
_DIRECTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("left", "to the left", "leftwards", "towards the left"),
    "right": ("right", "to the right", "rightwards", "towards the right"),
    "up": ("up", "upwards", "upward", "towards the top"),
    "down": ("down", "downwards", "downward", "towards the bottom"),
}
# Single verbs that carry the direction themselves.
_DIRECTION_VERBS: dict[str, tuple[Verb, ...]] = {
    "left": (),
    "right": (),
    "up": (("rises", "is rising", "rising"), ("climbs up", "is climbing up", "climbing up"),
           ("floats up", "is floating up", "floating up")),
    "down": (("falls", "is falling", "falling"), ("sinks", "is sinking", "sinking"),
             ("drops down", "is dropping down", "dropping down")),
}
_CHANGE_VERBS: dict[str, tuple[Verb, ...]] = {
    "grow": (
        ("grows", "is growing", "growing"),
        ("gets bigger", "is getting bigger", "getting bigger"),
        ("gets larger", "is getting larger", "getting larger"),
        ("expands", "is expanding", "expanding"),
        ("becomes larger", "is becoming larger", "becoming larger"),
        ("increases in size", "is increasing in size", "increasing in size"),
        ("grows in size", "is growing in size", "growing in size"),
    ),
    "shrink": (
        ("shrinks", "is shrinking", "shrinking"),
        ("gets smaller", "is getting smaller", "getting smaller"),
        ("becomes smaller", "is becoming smaller", "becoming smaller"),
        ("contracts", "is contracting", "contracting"),
        ("decreases in size", "is decreasing in size", "decreasing in size"),
        ("gets tinier", "is getting tinier", "getting tinier"),
    ),
    "bounce": (
        ("bounces", "is bouncing", "bouncing"),
        ("bounces up and down", "is bouncing up and down", "bouncing up and down"),
        ("hops", "is hopping", "hopping"),
        ("jumps up and down", "is jumping up and down", "jumping up and down"),
        ("keeps bouncing", "keeps bouncing", "bouncing repeatedly"),
    ),
    "still": (
        ("stays still", "is staying still", "staying still"),
        ("does not move", "is not moving", "not moving"),
        ("stays in place", "is staying in place", "staying in place"),
        ("sits still", "is sitting still", "sitting still"),
        ("remains stationary", "is stationary", "remaining stationary"),
        ("stands still", "is standing still", "standing still"),
    ),
}

# What the parser recognises for each motion: every phrase above, plus plain direction words.
MOTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "left": ("left", "leftwards", "leftward"),
    "right": ("right", "rightwards", "rightward"),
    "up": ("up", "upwards", "upward", "towards the top", "to the top", "rises", "rising", "rise"),
    "down": ("down", "downwards", "downward", "towards the bottom", "to the bottom", "falls", "falling",
             "fall", "sinks", "sinking", "sink"),
    "grow": ("grows", "growing", "grow", "bigger", "larger", "expands", "expanding", "increases in size",
             "increasing in size"),
    "shrink": ("shrinks", "shrinking", "shrink", "smaller", "tinier", "contracts", "contracting",
               "decreases in size", "decreasing in size"),
    # "up and down" must win over "up" / "down": the parser prefers the longest phrase at a position.
    "bounce": ("bounces", "bouncing", "bounce", "up and down", "hops", "hopping", "jumps", "jumping"),
    "still": ("still", "not moving", "does not move", "in place", "stationary", "motionless"),
}

_SIZE_WORDS = {"small": ("small", "little", "tiny"), "big": ("big", "large")}
_SPEED_WORDS = {"slow": ("slowly", "gently"), "fast": ("quickly", "fast", "rapidly")}
_BACKGROUND_PHRASES = {
    "light": ("on a light background", "against a pale background", "on a light grey background"),
    "dark": ("on a dark background", "against a dark background", "on a black background"),
    "coloured": ("on a coloured background", "against a tinted background"),
    "gradient": ("on a gradient background", "against a shaded background"),
    "noisy": ("on a noisy background", "against a grainy background"),
}
MAX_CAPTION_WORDS = 16


def _verbs(motion: str) -> tuple[Verb, ...]:
    if motion in _DIRECTION_PHRASES:
        travel = tuple((v[0] + " " + d, v[1] + " " + d, v[2] + " " + d)
                       for v in _TRAVEL_VERBS for d in _DIRECTION_PHRASES[motion])
        return travel + _DIRECTION_VERBS[motion]
    return _CHANGE_VERBS[motion]


_VERBS: dict[str, tuple[Verb, ...]] = {m: _verbs(m) for m in MOTIONS}


def _noun_phrase(obj: ObjectSpec, r: random.Random, det: str) -> str:
    """The object as a noun phrase; the colour word always comes before any motion word."""
    shape = r.choice(SHAPE_SYNONYMS[obj.shape])
    adj = ""
    if obj.size in _SIZE_WORDS and obj.motion not in ("grow", "shrink") and r.random() < 0.35:
        adj = r.choice(_SIZE_WORDS[obj.size]) + " "
    bright = "bright " if r.random() < 0.1 and obj.colour != "white" else ""
    form = r.random()
    if form < 0.65:
        return f"{det} {adj}{bright}{obj.colour} {shape}"
    if form < 0.8:
        return f"{det} {adj}{shape} that is {obj.colour}"
    if form < 0.9:
        return f"{det} {adj}{obj.colour} coloured {shape}"
    return f"{det} {adj}{shape} in {obj.colour}"


def _adverb(obj: ObjectSpec, r: random.Random) -> str:
    if obj.speed in _SPEED_WORDS and r.random() < 0.3:
        return " " + r.choice(_SPEED_WORDS[obj.speed])
    return ""


def _clause(obj: ObjectSpec, r: random.Random, first: bool) -> str:
    """One object doing its motion, in one of several sentence shapes."""
    verb = r.choice(_VERBS[obj.motion])
    adv = "" if verb[0].endswith("repeatedly") or verb[2].endswith("repeatedly") else _adverb(obj, r)
    det = r.choice(("a", "a", "the", "one") if first else ("a", "the", "another"))
    shape_kind = r.random()
    if shape_kind < 0.35:
        return f"{_noun_phrase(obj, r, det)} {verb[0]}{adv}"
    if shape_kind < 0.6:
        return f"{_noun_phrase(obj, r, det)} {verb[1]}{adv}"
    lead = r.choice(("there is", "we see", "you can see", "i see", "the video shows", "the clip shows"))
    det = "another" if det == "another" else r.choice(("a", "one"))
    if not first:
        lead = r.choice(("there is", "we also see"))
    return f"{lead} {_noun_phrase(obj, r, det)} {verb[2]}{adv}"


def _caption(objects: list[ObjectSpec], background: str, r: random.Random) -> str:
    main = _clause(objects[0], r, first=True)
    if r.random() < 0.12:
        main = r.choice(("in this clip", "in the video", "here")) + " " + main
    if len(objects) > 1:
        joiner = r.choice((" and ", " while ", ", and ", " as "))
        return _ARTICLE.sub("an ", main + joiner + _clause(objects[1], r, first=False))
    if background in _BACKGROUND_PHRASES and r.random() < 0.15:
        main += " " + r.choice(_BACKGROUND_PHRASES[background])
    return _ARTICLE.sub("an ", main)


_ARTICLE = re.compile(r"\ba (?=([aeiou]))")


def describe(objects: list[ObjectSpec], background: str, n: int, r: random.Random) -> list[str]:
    """n distinct captions (when possible) of at most MAX_CAPTION_WORDS words."""
    captions: list[str] = []
    seen: set[str] = set()
    for _ in range(n * 30):
        c = _caption(objects, background, r)
        if len(c.split()) <= MAX_CAPTION_WORDS and c not in seen:
            seen.add(c)
            captions.append(c)
            if len(captions) == n:
                break
    while len(captions) < n:  # pathological tiny vocabularies only: repeat rather than fail
        captions.append(captions[len(captions) % max(1, len(seen))] if captions else _fallback(objects[0]))
    return captions


def _fallback(obj: ObjectSpec) -> str:
    return f"a {obj.colour} {obj.shape} {_VERBS[obj.motion][0][0]}"
