"""Request bodies as people send them: a multipart or urlencoded form, or a JSON object, parsed into one model.

Every endpoint that takes fields takes them both ways (`latent_id` as a form field or in JSON alike). What goes
wrong is said in terms of the request: the field, what it takes, and an example that works. The same spec
writes the endpoint's OpenAPI request body, with prefills that make Swagger UI's "Try it out" succeed.
"""
from __future__ import annotations

import json
import reprlib
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any, Generic, TypeVar

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser

from core.media import SUPPORTED
from core.vocab import Vocab
from service.errors import DuplicateField, InvalidInput, UnsupportedBody
from service.predictor import Upload
from service.schemas import LATENT_EXAMPLE, SENTENCE_EXAMPLE, RequestFields

VIDEO_FORMATS = ", ".join(SUPPORTED[:-1]) + " or " + SUPPORTED[-1]
VIDEO_HELP = f"a clip: {', '.join(SUPPORTED[:-1])} (or .npy frames / features)"
FILE_NAMES = ("file", "clip", "upload", "media", "movie", "data", "image", "gif", "mp4")
_SHORT = reprlib.Repr()  # what a message quotes of a rejected value: bounded, as it may be nested hundreds deep
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


Fields = TypeVar("Fields", bound=RequestFields)


@dataclass(frozen=True)
class BodySpec(Generic[Fields]):
    """What one endpoint takes: its fields' model, its file field, its sources and how to say what to do."""

    endpoint: str
    model: type[Fields]
    sources: tuple[str, ...]  # the inputs an SLR can come from; at least one is required
    exclusive: bool = True  # exactly one source (media or latent_id); False: any of them (/encode)
    file_field: str | None = None
    example: str = ""  # a command that works, quoted in messages
    hints: dict[str, str] = field(default_factory=dict)  # a field sent by mistake -> what to do instead
    json_first: bool = False  # which body Swagger UI offers first

    def accepted(self) -> str:
        names = ([f"{self.file_field} (a file: {VIDEO_FORMATS})"] if self.file_field else [])
        return ", ".join(names + list(self.model.model_fields))


@dataclass(frozen=True)
class ParsedBody(Generic[Fields]):
    fields: Fields  # validated by its spec's model: each endpoint reads its own fields, typed
    upload: Upload | None


# ---- reading -----------------------------------------------------------------------------------------------

async def parse_body(request: Request, spec: BodySpec[Fields]) -> ParsedBody[Fields]:
    """The request's fields (form or JSON) validated against spec.model, and its upload if any."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    upload: Upload | None = None
    if ctype == "multipart/form-data":
        raw, upload = await _read_form(request, spec)
    elif ctype == "application/json" or ctype.endswith("+json"):
        raw = _json_object(await request.body(), spec)
    elif ctype in ("", "application/x-www-form-urlencoded", "text/plain"):
        raw, upload = await _read_loose(request, spec, ctype)
    else:
        raise UnsupportedBody(_wrong_type_message(spec, ctype))
    if upload is not None:
        request.state.upload = upload
    fields = _validate(spec, raw)
    _check_sources(spec, fields, upload)
    return ParsedBody(fields, upload)


async def _read_loose(request: Request, spec: BodySpec, ctype: str) -> tuple[dict[str, Any], Upload | None]:
    """No content type, urlencoded or text: JSON when it looks like JSON (curl -d '{...}' sends it as a form)."""
    body = await request.body()
    if body.lstrip()[:1] in (b"{", b"["):
        return _json_object(body, spec), None
    if not body.strip():
        return {}, None
    if ctype == "application/x-www-form-urlencoded":
        return await _read_form(request, spec)
    raise UnsupportedBody(_wrong_type_message(spec, ctype or "none"))


async def _read_form(request: Request, spec: BodySpec) -> tuple[dict[str, Any], Upload | None]:
    try:
        form = await request.form(max_files=8, max_fields=64)
    except HTTPException as e:
        raise InvalidInput(f"the form could not be parsed ({e.detail}); {_example(spec)}") from None
    items = form.multi_items()
    repeated = [k for k, n in Counter(k for k, _ in items).items() if n > 1]
    if repeated:
        k = repeated[0]
        raise DuplicateField(f"'{k}' was sent {sum(1 for x, _ in items if x == k)} times; send it once "
                             f"(one request takes one {'file' if k == spec.file_field else 'value'} per field)")
    raw: dict[str, Any] = {}
    upload: Upload | None = None
    for key, value in items:
        if isinstance(value, UploadFile):
            upload = await _form_file(spec, key, value) or upload
        elif value != "":  # an empty field is a field not sent (HTML forms and Swagger UI send them)
            if key == spec.file_field:
                raise InvalidInput(f"'{key}' must be a file part, not text (curl: -F {key}=@clip.mp4, with the @)")
            raw[key] = value
    return raw, upload


async def _form_file(spec: BodySpec, key: str, value: UploadFile) -> Upload | None:
    if not value.size and not value.filename:
        return None  # a file input left empty
    if key != spec.file_field:
        where = f"send it as '{spec.file_field}'" if spec.file_field else f"{spec.endpoint} takes no file"
        raise InvalidInput(f"a file came in the field '{key}'; {where}. {spec.endpoint} takes: {spec.accepted()}")
    return Upload(_body_of(value), value.filename)


def _body_of(value: UploadFile) -> bytes | IO[bytes]:
    """A small file's bytes; a large one stays in the temporary file Starlette spooled it to while it streamed in
    (past MultiPartParser.spool_max_size, 1 MiB), and is hashed and decoded from there, never held in memory.
    That file is anonymous: it goes when its last descriptor closes, on every path (an error, a client gone)."""
    if (value.size or 0) <= MultiPartParser.spool_max_size:
        value.file.seek(0)
        return value.file.read()
    return value.file


def _json_object(body: bytes, spec: BodySpec) -> dict[str, Any]:
    if not body.strip():
        raise InvalidInput(f"the JSON body is empty; {_example(spec)}")
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"the body is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                           f"{_example(spec)}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"the body is not valid JSON (it is not UTF-8 text); {_example(spec)}") from None
    except RecursionError:  # the parser's own depth guard: a body nested deeper than the stack allows
        raise InvalidInput(f"the JSON body is nested too deeply to read (every field is a plain string or number); "
                           f"{_example(spec)}") from None
    except ValueError as e:  # what the parser refuses past JSON's grammar: an integer of over 4300 digits
        raise InvalidInput(f"the JSON body could not be read ({str(e).split(';')[0]}); {_example(spec)}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"the JSON body must be an object, not {type(data).__name__}; {_example(spec)}")
    if spec.file_field and spec.file_field in data:
        raise InvalidInput(f"'{spec.file_field}' cannot travel in JSON: send the clip as a file part of a "
                           f"multipart form (curl -F {spec.file_field}=@clip.mp4), or send a 'latent_id'")
    return data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each sent once: a repeated key is refused, as a repeated form field is, rather
    than the last one silently winning."""
    keys = Counter(k for k, _ in pairs)
    repeated = next((k for k, n in keys.items() if n > 1), None)
    if repeated is not None:
        raise DuplicateField(f"'{repeated}' was sent {keys[repeated]} times in the JSON object; send it once")
    return dict(pairs)


# ---- checking ----------------------------------------------------------------------------------------------

def _validate(spec: BodySpec[Fields], raw: dict[str, Any]) -> Fields:
    try:
        return spec.model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput("; ".join(_error_text(spec, e) for e in exc.errors()[:5])) from None


def _error_text(spec: BodySpec, e: Any) -> str:
    name = ".".join(str(p) for p in e.get("loc", ())) or "body"
    if e.get("type") == "extra_forbidden":
        hint = spec.hints.get(name) or (f"send the clip as '{spec.file_field}'"
                                        if spec.file_field and name.lower() in FILE_NAMES else "")
        return f"{spec.endpoint} takes no field '{name}'" + (f" ({hint})" if hint else "") + \
            f"; it takes: {spec.accepted()}"
    got = _SHORT.repr(e.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{name}: {str(e.get('msg', 'invalid')).removeprefix('Value error, ')} (got {got})"


def _check_sources(spec: BodySpec, fields: Any, upload: Upload | None) -> None:
    present = [s for s in spec.sources if (upload if s == spec.file_field else getattr(fields, s, None)) is not None]
    if not present:
        listed = " or ".join(_source_text(spec, s) for s in spec.sources)
        both = ", or both" if not spec.exclusive else ""
        raise InvalidInput(f"nothing to work on: send {listed}{both}; {_example(spec)}")
    if spec.exclusive and len(present) > 1:
        raise InvalidInput(f"send either '{present[0]}' or '{present[1]}', not both")


def _source_text(spec: BodySpec, source: str) -> str:
    if source == spec.file_field:
        return f"a clip in the file field '{source}' ({VIDEO_FORMATS})"
    if source == "latent_id":
        return "a 'latent_id' from POST /encode"
    return f"a '{source}' (text)"


def _example(spec: BodySpec) -> str:
    return f"for example: {spec.example}" if spec.example else f"{spec.endpoint} takes: {spec.accepted()}"


def _wrong_type_message(spec: BodySpec, ctype: str) -> str:
    kinds = "a multipart form" + (f" (a file in '{spec.file_field}')" if spec.file_field else "") + \
        " or a JSON object"
    raw_file = ctype.startswith(("video/", "image/", "application/octet-stream"))
    hint = " (a file goes in a form field, not the raw body)" if raw_file and spec.file_field else ""
    return f"POST {spec.endpoint} takes {kinds}; got content-type '{ctype}'{hint}; {_example(spec)}"


def unknown_words(vocab: Vocab, sentence: str | None) -> list[str]:
    """The sentence's words the model does not know, once each, in order (core.vocab owns the rule)."""
    return vocab.unknown_words(sentence)


def ascii_header(text: str) -> str:
    """A header value in ASCII (non-ASCII characters escaped): HTTP headers are latin-1 at best."""
    return text.encode("ascii", "backslashreplace").decode()


# ---- the OpenAPI request body ----------------------------------------------------------------------------

def _form_property(prop: dict[str, Any]) -> dict[str, Any]:
    """A form field's schema as Swagger UI fills it: no null branch (a form has none), and an empty prefill
    for optional fields so "Try it out" sends only what the user types."""
    out = {k: v for k, v in prop.items() if k != "anyOf"}
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    if branches:
        out.update(branches[0])
    if "default" not in prop or prop.get("default") is None:
        out.pop("default", None)
        out["example"] = ""
    else:
        out["example"] = prop["default"]
    out.pop("examples", None)
    return out


def request_body(spec: BodySpec) -> dict[str, Any]:
    """openapi_extra for the operation: the same fields as a multipart form and as JSON."""
    js = spec.model.model_json_schema()
    props: dict[str, Any] = {}
    if spec.file_field:
        props[spec.file_field] = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream",
                                  "description": VIDEO_HELP}
    props.update({k: _form_property(v) for k, v in js["properties"].items()})
    form = {"schema": {"type": "object", "properties": props}}
    json_example = {"sentence": SENTENCE_EXAMPLE} if "sentence" in js["properties"] else {"latent_id": LATENT_EXAMPLE}
    json_body = {"schema": js, "example": js.get("examples", [json_example])[0]}
    content = {"application/json": json_body, "multipart/form-data": form} if spec.json_first \
        else {"multipart/form-data": form, "application/json": json_body}
    return {"requestBody": {"required": True, "content": content}}
