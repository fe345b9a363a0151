"""Declared query-string filters: applied to a queryset with clear 400s, and listed in the OpenAPI schema
from the same declaration.

Integers from a query string (filters here, ``?run=`` on pages) go through :func:`parse_int`: a value
that is not a plain base-10 integer, or lies outside the range its column can hold, answers 400 naming
the parameter and the range; it never reaches the database (SQLite raised OverflowError, a 500, for
``?run=99999999999999999999``). Ids in URL paths (``/api/runs/<id>/``) are different: any id that names
no row, huge ones included, is 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

from worker.sim.catalog import SEED_MAX, SEED_MIN

_TYPES = {int: OpenApiTypes.INT, str: OpenApiTypes.STR, bool: OpenApiTypes.BOOL}

# Ranges of the columns filtered on, from Django's integer field ranges (BaseDatabaseOperations.
# integer_field_ranges): ids are BigAutoField (positive, 64-bit signed); counters are PositiveIntegerField.
ID_RANGE = (1, 2**63 - 1)
POSITIVE_INT_RANGE = (0, 2**31 - 1)
INT_RANGE = (-(2**31), 2**31 - 1)
SEED_RANGE = (SEED_MIN, SEED_MAX)

_INTEGER = re.compile(r"[+-]?([0-9]+)", re.ASCII)


class ParamError(ValueError):
    """A query-string parameter that cannot be used; the message names it and says what it takes."""


def parse_int(raw, name: str, bounds: tuple[int, int] = ID_RANGE) -> int:
    """``raw`` (a query-string value) as an int within ``bounds`` (inclusive); raises ParamError.

    Only ASCII base-10 digits with an optional sign are read: no "1_000", " 1", "١" or "1e3" (Python's
    int() takes the first three).
    """
    lo, hi = bounds
    text = str(raw)
    match = _INTEGER.fullmatch(text)
    if match is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ParamError(f"{name}: {shown!r} is not an integer")
    # No int() of a 100,000-digit string: anything longer than the bounds' digits is out of range.
    fits = len(match.group(1).lstrip("0")) <= max(len(str(abs(lo))), len(str(abs(hi))))
    value = int(text) if fits else None
    if value is None or not lo <= value <= hi:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ParamError(f"{name}: {shown} is out of range; it takes integers from {lo} to {hi}")
    return value


@dataclass(frozen=True)
class Filter:
    name: str
    lookup: str
    type: type = int
    help: str = ""
    bounds: tuple[int, int] = ID_RANGE  # for int filters: the column's range (ID_RANGE for foreign keys)

    def parse(self, raw: str):
        if self.type is int:
            try:
                return parse_int(raw, self.name, self.bounds)
            except ParamError as exc:
                raise ValidationError({self.name: [str(exc)]}) from None
        if self.type is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValidationError({self.name: [f"{raw[:40]!r} is not true or false"]})
        if "\x00" in raw:  # PostgreSQL refuses NUL in text ("A string literal cannot contain NUL")
            raise ValidationError({self.name: ["the value contains a NUL character"]})
        return raw


def apply(queryset, params, filters: tuple[Filter, ...]):
    for f in filters:
        raw = params.get(f.name)
        if raw is not None and raw != "":
            queryset = queryset.filter(**{f.lookup: f.parse(raw)})
    return queryset


def parameters(filters: tuple[Filter, ...]) -> list[OpenApiParameter]:
    out = []
    for f in filters:
        help_text = f.help
        if f.type is int:
            help_text = f"{help_text} ({f.bounds[0]} to {f.bounds[1]}; outside: 400)".strip()
        out.append(OpenApiParameter(f.name, _TYPES[f.type], description=help_text))
    return out
