"""The embedded default's transport: every message written to ``var/outbox/`` as an .eml file."""

import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


class OutboxEmailBackend(BaseEmailBackend):
    def __init__(self, *args, outbox_dir: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.outbox_dir = Path(outbox_dir or settings.MAILROOM_OUTBOX_DIR)

    def send_messages(self, email_messages) -> int:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            name = self.outbox_dir / f"{uuid.uuid4().hex}.eml"
            tmp = name.with_suffix(".tmp")
            tmp.write_bytes(message.message().as_bytes(linesep="\r\n"))
            tmp.rename(name)  # readers never see a half-written file
            sent += 1
        return sent
