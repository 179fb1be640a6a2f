"""``manage.py smtp_relay``: run the SMTP relay until SIGTERM or SIGINT (docs/smtp-relay.md)."""

import argparse
import logging
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from emails.relay.server import config_from_settings, serve


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
        parser.add_argument("--processes", type=int,
                            help="Relay processes sharing the port (default SMTP_RELAY_PROCESSES, 1).")
        parser.add_argument("--drain-seconds", type=float, default=30.0,
                            help="On shutdown, how long to let messages being accepted finish.")
        parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        # aiosmtpd logs every SMTP command at INFO: only with -v 2 or more.
        if options["verbosity"] < 2:
            logging.getLogger("mail.log").setLevel(logging.WARNING)
        try:
            config = config_from_settings(host=options["host"], port=options["port"], tls_cert=options["tls_cert"],
                                          tls_key=options["tls_key"], implicit_tls=options["implicit_tls"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        processes = options["processes"] or settings.SMTP_RELAY_PROCESSES
        if processes < 1:
            raise CommandError("--processes must be at least 1.")
        mode = "implicit TLS" if config.implicit_tls else "STARTTLS"
        plaintext = ", plaintext AUTH allowed from loopback" if config.allow_plaintext_auth else ""
        description = (f"{config.host}:{config.port} ({mode}{plaintext}), certificate {config.tls_cert}")
        if processes > 1:
            self._supervise(processes, config, options, description)
            return
        try:
            serve(config, reuse_port=options["reuse_port"], drain_seconds=options["drain_seconds"],
                  on_ready=lambda: self.stdout.write(f"SMTP relay listening on {description}", ending="\n"))
        except OSError as exc:
            raise CommandError(f"Cannot listen on {config.host}:{config.port}: {exc}") from exc
        self.stdout.write("SMTP relay stopped")

    def _supervise(self, processes: int, config, options, description: str) -> None:
        """Run ``processes`` single-process relays on one port (SO_REUSEPORT) and stop them
        together; if one dies, stop the rest and fail, so the supervisor restarts the lot."""
        command = [sys.executable, sys.argv[0], "smtp_relay", "--host", config.host, "--port", str(config.port),
                   "--tls-cert", str(config.tls_cert), "--tls-key", str(config.tls_key), "--processes", "1",
                   "--reuse-port", "--drain-seconds", str(options["drain_seconds"]),
                   "--verbosity", str(options["verbosity"])]
        if config.implicit_tls:
            command.append("--implicit-tls")
        connections.close_all()
        children = [subprocess.Popen(command) for _ in range(processes)]
        self.stdout.write(f"SMTP relay: {processes} processes on {description}")
        stopping = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: stopping.append(signum))
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        codes = [child.wait() for child in children]
        if not stopping:
            raise CommandError(f"A relay process exited unexpectedly (exit codes {codes}).")
