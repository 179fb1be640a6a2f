"""config.api.negotiation answers exactly as DRF's own negotiation does."""

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer, StaticHTMLRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.api.negotiation import ContentNegotiation
from config.api.renderers import EnvelopeRenderer

ACCEPTS = [None, "*/*", "application/json", "application/json; indent=4", "text/html", "text/*",
           "application/*", "application/xml", "", "application/json, */*;q=0.5", "text/html,application/json"]
RENDERER_SETS = [[EnvelopeRenderer()], [JSONRenderer(), BrowsableAPIRenderer()],
                 [StaticHTMLRenderer(), JSONRenderer()], [BrowsableAPIRenderer(), JSONRenderer()]]


def _answer(negotiation, accept, renderers, path="/api/v1/emails"):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(path, **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except NotAcceptable:
        return "406"
    except Http404:  # ?format= naming no renderer
        return "404"
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("renderers", RENDERER_SETS, ids=lambda rs: "+".join(type(r).__name__ for r in rs))
@pytest.mark.parametrize("path", ["/api/v1/emails", "/api/v1/emails?format=json", "/api/v1/emails?format=api"])
def test_the_shortcut_answers_as_drf_does(accept, renderers, path):
    assert _answer(ContentNegotiation(), accept, renderers, path) == _answer(
        DefaultContentNegotiation(), accept, renderers, path)


def test_the_api_uses_it(settings):
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is ContentNegotiation
