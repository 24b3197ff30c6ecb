"""Verifies a request hookflow signed, with the official Standard Webhooks library
(`standardwebhooks` from PyPI), as a receiver would.

Reads {"secret": "whsec_...", "body": "...", "headers": {...}} on stdin; prints "ok" and
exits 0 when the signature verifies, else prints the library's error and exits 1.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

request = json.load(sys.stdin)
try:
    Webhook(request["secret"]).verify(request["body"], request["headers"])
except Exception as e:  # the library raises WebhookVerificationError
    print(f"{type(e).__name__}: {e}")
    sys.exit(1)
print("ok")
