from rest_framework.renderers import JSONRenderer

from config.api.envelope import error_body, error_dict, success_body


class EnvelopeRenderer(JSONRenderer):
    """Wraps view data in the envelope; error data comes pre-shaped by the exception handler."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        request = renderer_context.get("request")
        if response is None:
            return super().render(data, accepted_media_type, renderer_context)
        if response.status_code in (204, 304):
            # HTTP forbids a body on these; clients (and h11-based ones strictly) choke on one.
            return b""
        if response.status_code >= 400:
            error = data.get("error") if isinstance(data, dict) and "error" in data else None
            if error is None:
                error = error_dict("error", "Request failed.", response.status_code, {"body": data})
            body = error_body(error, request)
        else:
            body = success_body(data, request)
        return super().render(body, accepted_media_type, renderer_context)
