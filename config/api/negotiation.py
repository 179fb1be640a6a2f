"""DRF's content negotiation, answering the two Accept values nearly every client sends at once."""

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        # ``*/*`` (or no Accept header) and the first renderer's own media type pick the first
        # renderer with its media type, whatever the other renderers are: DRF parses the header
        # and every renderer's type to find that out, on every request (a few percent of a
        # send's CPU). A query string may carry ``?format=``: DRF decides then.
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if (format_suffix is None and renderers and not request.META.get("QUERY_STRING")
                and (accept == "*/*" or accept == renderers[0].media_type)):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
