"""``manage.py smtp_relay``: run the SMTP relay until SIGTERM or SIGINT (docs/smtp-relay.md)."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from emails.relay.server import config_from_settings, relay_controller, stop_gracefully


class Command(BaseCommand):
    help = "Run the SMTP relay: authenticated SMTP submission into the Mailroom send path."

    def add_arguments(self, parser):
        parser.add_argument("--host", help="Address to listen on (default SMTP_RELAY_HOST, 127.0.0.1).")
        parser.add_argument("--port", type=int, help="Port to listen on (default SMTP_RELAY_PORT, 2525).")
        parser.add_argument("--tls-cert", help="PEM certificate chain (default SMTP_RELAY_TLS_CERT; "
                                               "none: a self-signed one in var/smtp-relay/).")
        parser.add_argument("--tls-key", help="PEM private key of --tls-cert (default SMTP_RELAY_TLS_KEY).")
        parser.add_argument("--implicit-tls", action="store_true", default=None,
                            help="TLS from the first byte (port 465) instead of STARTTLS.")
        parser.add_argument("--drain-seconds", type=float, default=30.0,
                            help="On shutdown, how long to let messages being accepted finish.")

    def handle(self, *args, **options):
        # aiosmtpd logs every SMTP command at INFO: only with -v 2 or more.
        if options["verbosity"] < 2:
            logging.getLogger("mail.log").setLevel(logging.WARNING)
        try:
            config = config_from_settings(host=options["host"], port=options["port"], tls_cert=options["tls_cert"],
                                          tls_key=options["tls_key"], implicit_tls=options["implicit_tls"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        controller = relay_controller(config)
        try:
            controller.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {config.host}:{config.port}: {exc}") from exc
        mode = "implicit TLS" if config.implicit_tls else "STARTTLS"
        plaintext = ", plaintext AUTH allowed from loopback" if config.allow_plaintext_auth else ""
        self.stdout.write(f"SMTP relay listening on {config.host}:{config.port} ({mode}{plaintext}), "
                          f"certificate {config.tls_cert}")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        self.stdout.write("SMTP relay stopping")
        stop_gracefully(controller, drain_seconds=options["drain_seconds"])
