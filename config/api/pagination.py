"""limit/offset pagination producing ``{"<items>": [...], "pagination": {...}}``."""

from typing import Any

from rest_framework import serializers

from config.api.errors import ValidationError


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    offset = serializers.IntegerField(min_value=0, default=0)


def page_params(request) -> tuple[int, int]:
    params = PageParams(data=request.query_params)
    if not params.is_valid():
        raise ValidationError("Invalid pagination parameters.", details={
            k: [str(m) for m in v] for k, v in params.errors.items()
        })
    return params.validated_data["limit"], params.validated_data["offset"]


def paginate(request, queryset, *, key: str, serializer_class, context: dict | None = None) -> dict[str, Any]:
    limit, offset = page_params(request)
    total = queryset.count()
    items = list(queryset[offset:offset + limit])
    return {
        key: serializer_class(items, many=True, context=context or {}).data,
        "pagination": {"total": total, "limit": limit, "offset": offset,
                       "has_more": offset + len(items) < total},
    }
