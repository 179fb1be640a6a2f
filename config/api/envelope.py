"""The JSON envelope every response carries (DESIGN section 2)."""

from datetime import UTC, datetime
from typing import Any


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def meta_for(request) -> dict[str, str]:
    return {"request_id": getattr(request, "request_id", ""), "timestamp": utc_timestamp()}


def success_body(data: Any, request) -> dict[str, Any]:
    return {"success": True, "data": data, "meta": meta_for(request)}


def error_dict(code: str, message: str, status: int, details: dict | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "status": status, "details": details or {}}


def error_body(error: dict[str, Any], request) -> dict[str, Any]:
    return {"success": False, "error": error, "meta": meta_for(request)}
