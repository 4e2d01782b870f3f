"""A real SMTP server on loopback for kopek's email tests (aiosmtpd): every message it
accepts is written, as received, to <dir>/<n>.eml with its envelope in <n>.json.
Prints `listening <port>` once ready; runs until killed.

    smtp_sink.py <dir> [--port N] [--auth user:password] [--starttls cert.pem,key.pem]
"""
import asyncio
import json
import os
import socket
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, f"{self.count:05d}")
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos}, f)
        return "250 Message accepted"


def authenticator(expected):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()) == expected
        return AuthResult(success=ok)
    return check


def main():
    directory, args = sys.argv[1], dict(zip(sys.argv[2::2], sys.argv[3::2]))
    options = {}
    if "--auth" in args:
        user, password = args["--auth"].split(":", 1)
        options = dict(authenticator=authenticator((user, password)),
                       auth_required=True, auth_require_tls=False)
    if "--starttls" in args:
        import ssl
        cert, key = args["--starttls"].split(",")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        options.update(tls_context=context, require_starttls=True)
    port = int(args.get("--port", 0))
    if not port:
        with socket.socket() as probe:  # a free port (the controller checks its own)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print(f"listening {port}", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
