from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission

from accounts.models import KeyKind
from config.api.errors import AuthorizationError


class HasScope(BasePermission):
    """Requires an authenticated key and, for sub-account keys, one of the view's scopes.

    Views declare ``required_scopes = {"GET": ("emails:read",), "POST": ("emails:send",)}``;
    any listed scope suffices, ``full_access`` grants all. Account keys have no scopes.
    """

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if principal is None or not getattr(principal, "is_authenticated", False):
            return False
        if principal.kind == KeyKind.ACCOUNT:
            return True
        required = getattr(view, "required_scopes", None)
        if required is None:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no required_scopes")
        # Django answers HEAD with the GET handler, so HEAD needs GET's scopes.
        method = "GET" if request.method == "HEAD" else request.method
        scopes = required.get(method, required.get("*", ()))
        if not scopes or any(principal.has_scope(scope) for scope in scopes):
            return True
        raise AuthorizationError(f"This API key lacks the scope {' or '.join(repr(s) for s in scopes)}.")
