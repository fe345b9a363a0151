"""Request bodies the REST API accepts: JSON no deeper than ASPIRE["MAX_JSON_DEPTH"] and no larger than
DATA_UPLOAD_MAX_MEMORY_SIZE, and the errors a bad body gets (400 malformed or too deep, 413 too large).
Its own module, importing no DRF views: DRF imports the default parsers while it builds APIView.

Python's json module recurses once per nesting level, so a body of 100,000 "[" raised RecursionError (a
500) before this parser; the depth is now counted on the raw text first, without recursing.
"""

from __future__ import annotations

import json
import re

from django.conf import settings as django_settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# A JSON string literal (escapes included); brackets inside strings do not nest anything.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def max_body_bytes() -> int:
    """The largest request body read, in bytes: Django's DATA_UPLOAD_MAX_MEMORY_SIZE (env
    ASPIRE_MAX_BODY_BYTES), which also bounds form posts."""
    return int(django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def too_large(size: int | None = None) -> PayloadTooLarge:
    """The 413 for a body of ``size`` bytes (None: not known, only that it is over the limit)."""
    limit = max_body_bytes()
    if size is None:
        return PayloadTooLarge(f"The request body is over the limit of {limit:,} bytes.")
    return PayloadTooLarge(f"The request body is {size:,} bytes; the limit is {limit:,} bytes.")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (0 for a scalar), counted without
    recursion. Brackets inside string literals are ignored; malformed text gets a number anyway (the
    decoder reports what is wrong with it)."""
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with limits: a body over max_body_bytes() answers 413, nesting deeper than
    ASPIRE["MAX_JSON_DEPTH"] (64) answers 400, and so does malformed JSON, text that is not UTF-8, NaN
    or Infinity, or an integer of more than 4,300 digits (Python's int_max_str_digits)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = max_body_bytes()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise too_large()
        encoding = (parser_context or {}).get("encoding") or django_settings.DEFAULT_CHARSET
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}: {exc}") from None
        most = django_settings.ASPIRE["MAX_JSON_DEPTH"]
        depth = json_depth(text)
        if depth > most:
            raise ParseError(f"JSON parse error - nested {depth} levels deep; at most {most} levels are accepted")
        try:
            return json.loads(text, parse_constant=strict_constant if self.strict else None)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from None
