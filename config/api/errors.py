"""The one error hierarchy of the API (DESIGN section 2). The exception handler renders it."""

from typing import Any


class ApplicationError(Exception):
    code = "internal_error"
    status = 500
    default_message = "An unexpected error occurred."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(ApplicationError):
    code, status, default_message = "bad_request", 400, "The request could not be parsed."


class AuthenticationError(ApplicationError):
    code, status, default_message = "authentication_error", 401, "A valid API key is required."


class AuthorizationError(ApplicationError):
    code, status, default_message = "authorization_error", 403, "This key may not do that."


class NotFound(ApplicationError):
    code, status, default_message = "not_found", 404, "Not found."


class MethodNotAllowed(ApplicationError):
    code, status, default_message = "method_not_allowed", 405, "Method not allowed."


class NotAcceptable(ApplicationError):
    code, status, default_message = "not_acceptable", 406, "This API only answers with JSON (application/json)."


class Conflict(ApplicationError):
    code, status, default_message = "conflict", 409, "The resource is not in a state that allows this."


class IdempotencyConflict(ApplicationError):
    code, status = "idempotency_conflict", 409
    default_message = "A request with this idempotency key is still being processed."


class PayloadTooLarge(ApplicationError):
    code, status, default_message = "payload_too_large", 413, "The request body is too large."


class UnsupportedMediaType(ApplicationError):
    code, status, default_message = "unsupported_media_type", 415, "Send JSON (application/json)."


class ValidationError(ApplicationError):
    code, status, default_message = "validation_error", 422, "The request is invalid."


class DomainNotVerified(ApplicationError):
    code, status, default_message = "domain_not_verified", 422, "The sending domain is not verified."


class TemplateNotFound(ApplicationError):
    code, status, default_message = "template_not_found", 422, "The template does not exist."


class InvalidVariables(ApplicationError):
    code, status, default_message = "invalid_variables", 422, "The template variables are invalid."


class RecipientSuppressed(ApplicationError):
    code, status, default_message = "recipient_suppressed", 422, "Every recipient is suppressed."


class IdempotencyMismatch(ApplicationError):
    code, status = "idempotency_mismatch", 422
    default_message = "This idempotency key was used with a different request body."


class SpamRejected(ApplicationError):
    code, status, default_message = "spam_rejected", 422, "The message was rejected as spam."


class RateLimitExceeded(ApplicationError):
    code, status, default_message = "rate_limit_exceeded", 429, "Too many requests."


class QuotaExceeded(ApplicationError):
    code, status, default_message = "quota_exceeded", 429, "The monthly email quota is used up."


class ProviderError(ApplicationError):
    code, status, default_message = "provider_error", 502, "The email provider failed."


class ServiceUnavailable(ApplicationError):
    code, status, default_message = "service_unavailable", 503, "A backing service is unavailable."
