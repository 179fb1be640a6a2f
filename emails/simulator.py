"""Test-key mail never reaches a transport; simulator addresses produce events (DESIGN section 1)."""

from django.conf import settings

SIMULATOR_DOMAIN = "simulator.mailroom.test"

# local part -> the events that follow "sent", in order
SCRIPTS: dict[str, list[tuple[str, dict]]] = {
    "delivered": [("delivered", {})],
    "bounce": [("bounced", {"bounce_type": "hard", "reason": "550 5.1.1 Simulated: mailbox does not exist"})],
    "complaint": [("delivered", {}), ("complained", {"feedback_type": "abuse"})],
    "open": [("delivered", {}), ("opened", {"machine": False, "simulated": True}),
             ("clicked", {"url": "https://example.com/", "simulated": True})],
    "delay": [("delivery_delayed", {"reason": "451 4.4.1 Simulated: try again later"}), ("delivered", {})],
}


def simulated_events(address: str) -> list[tuple[str, dict]]:
    local, _, domain = address.lower().partition("@")
    if domain != getattr(settings, "MAILROOM_SIMULATOR_DOMAIN", SIMULATOR_DOMAIN):
        return []
    return SCRIPTS.get(local.split("+", 1)[0], [])
