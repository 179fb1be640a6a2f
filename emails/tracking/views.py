"""The public tracking routes: open pixel, click redirect, unsubscribe page and one-click POST.

No authentication and no cookies: the token is the only credential. /t/ answers JSON errors
like the rest of the platform; /u/ is read by people, so it answers small HTML pages.
"""

import base64
import logging

from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt

from config.api.envelope import error_body, error_dict
from emails.tracking.hits import tracked_link_url, tracking_click_store, tracking_open_store
from emails.tracking.tokens import tracking_token_read
from emails.tracking.unsubscribe import email_unsubscribe, unsubscribe_target

logger = logging.getLogger(__name__)

# A transparent 1x1 GIF89a (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
}
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"


def _json_error(request, code: str, message: str, status: int) -> JsonResponse:
    return _no_cache(JsonResponse(error_body(error_dict(code, message, status), request), status=status))


def _not_found(request) -> JsonResponse:
    return _json_error(request, "not_found", "This tracking link is not valid.", 404)


def _method_not_allowed(request, allowed: str) -> JsonResponse:
    response = _json_error(request, "method_not_allowed", f"Use {allowed}.", 405)
    response["Allow"] = allowed
    return response


def _client(request) -> dict:
    return {"ip": request.META.get("REMOTE_ADDR"), "user_agent": request.META.get("HTTP_USER_AGENT")}


def _no_cache(response):
    for name, value in NO_CACHE.items():
        response[name] = value
    return response


# HEAD is what link checkers and scanners send: it is answered, but only a GET counts. Losing a
# hit to a database hiccup is better than a broken image or a link that does not open.

def open_pixel(request, token: str):
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed(request, "GET, HEAD")
    parsed = tracking_token_read(token, kind="o")
    if parsed is None:
        return _not_found(request)
    if request.method == "GET":
        try:
            tracking_open_store(email_public_id=parsed.email_public_id, **_client(request))
        except DatabaseError:
            logger.warning("Could not store an open", exc_info=True)
    return _no_cache(HttpResponse(PIXEL, content_type="image/gif"))


def click_redirect(request, token: str):
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed(request, "GET, HEAD")
    parsed = tracking_token_read(token, kind="c")
    if parsed is None:
        return _not_found(request)
    target = {"email_public_id": parsed.email_public_id, "link_index": parsed.link_index}
    url = None
    if request.method == "GET":
        try:
            url = tracking_click_store(**target, **_client(request))
        except DatabaseError:
            logger.warning("Could not store a click", exc_info=True)
            url = tracked_link_url(**target)
    else:
        url = tracked_link_url(**target)
    if url is None:  # the email was deleted: a valid token, but nothing to send anyone to
        return _not_found(request)
    return _no_cache(HttpResponseRedirect(url))


def _page(template: str, context: dict, status: int = 200) -> HttpResponse:
    response = HttpResponse(render_to_string(f"tracking/{template}", context), status=status)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


@csrf_exempt  # RFC 8058: the mail client POSTs without cookies or a form token
def unsubscribe(request, token: str):
    if request.method not in ("GET", "HEAD", "POST"):
        response = _page("unsubscribe_error.html", {"title": "Method not allowed",
                                                    "message": "Use the link in the email."}, status=405)
        response["Allow"] = "GET, HEAD, POST"
        return response
    target = unsubscribe_target(token=token)
    if target is None:
        return _page("unsubscribe_error.html", {
            "title": "Link not valid",
            "message": "This unsubscribe link is not valid or has expired (links work for 60 days). "
                       "Use the link in a more recent email, or contact the sender."}, status=404)
    context = {"recipient": target.recipient, "sender": target.email.from_header}
    if request.method != "POST":
        return _page("unsubscribe.html", context)  # showing the page changes nothing
    try:
        confirmed = request.POST.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE
    except (MultiPartParserError, SuspiciousOperation):  # a broken or oversized body
        confirmed = False
    if not confirmed:
        return _page("unsubscribe_error.html", {
            "title": "Not unsubscribed",
            "message": f"The request must carry {ONE_CLICK_FIELD}={ONE_CLICK_VALUE}."}, status=400)
    email_unsubscribe(target=target, ip=request.META.get("REMOTE_ADDR"),
                      user_agent=request.META.get("HTTP_USER_AGENT"))
    return _page("unsubscribed.html", context)
