"""A real SMTP server for the tests (aiosmtpd): each message received is written to
OUT_DIR/NNNN.json as {"from", "to", "data", "parsed"}. "parsed" is what Python's strict
email parser (policy=email.policy.strict) makes of it: {"headers": [[name, value], ...]}
with values decoded, or {"error": "..."} when it refuses the message. Prints
"ready PORT" once listening.
Recipients named reject@... are refused for good (550); defer@... are refused for now
(451) twice, then accepted.

Usage: python3 tests/smtp_sink.py OUT_DIR PORT   (PORT 0 picks a free one)
"""
import asyncio
import email.parser
import email.policy
import json
import os
import sys

from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, out):
        self.out = out
        self.count = 0
        self.deferred = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject@"):
            return "550 5.1.1 no such user"
        if address.startswith("defer@") and self.deferred < 2:
            self.deferred += 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        try:
            message = email.parser.BytesParser(policy=email.policy.strict).parsebytes(envelope.content)
            parsed = {"headers": [[name, str(value)] for name, value in message.items()]}
        except Exception as e:  # the strict policy raises on any defect
            parsed = {"error": f"{type(e).__name__}: {e}"}
        self.count += 1
        path = os.path.join(self.out, f"{self.count:04d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "data": envelope.content.decode("utf-8", "replace"),
                    "parsed": parsed,
                },
                f,
            )
        os.rename(path + ".tmp", path)
        return "250 OK stored"


async def main():
    out, port = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    recorder = Recorder(out)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(recorder), "127.0.0.1", port)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


asyncio.run(main())
