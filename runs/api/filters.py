"""Declared query-string filters: applied to a queryset with clear 400s, and listed in the OpenAPI schema
from the same declaration."""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

_TYPES = {int: OpenApiTypes.INT, str: OpenApiTypes.STR, bool: OpenApiTypes.BOOL}


@dataclass(frozen=True)
class Filter:
    name: str
    lookup: str
    type: type = int
    help: str = ""

    def parse(self, raw: str):
        if self.type is int:
            try:
                return int(raw)
            except ValueError:
                raise ValidationError({self.name: [f"{raw!r} is not an integer"]}) from None
        if self.type is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValidationError({self.name: [f"{raw!r} is not true or false"]})
        return raw


def apply(queryset, params, filters: tuple[Filter, ...]):
    for f in filters:
        raw = params.get(f.name)
        if raw is not None and raw != "":
            queryset = queryset.filter(**{f.lookup: f.parse(raw)})
    return queryset


def parameters(filters: tuple[Filter, ...]) -> list[OpenApiParameter]:
    return [OpenApiParameter(f.name, _TYPES[f.type], description=f.help) for f in filters]
