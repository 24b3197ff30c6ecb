"""Signs webhook requests the way providers' official SDKs do, for hookflow to verify.

Reads a JSON request on stdin and prints a JSON answer:
- {"op": "sendgrid-key"}: a fresh P-256 key; {"private_pem", "public"} where `public`
  is base64 DER, as SendGrid's settings page shows it.
- {"op": "sign", "payload", "timestamp", "private_pem", "svix_secret", "svix_id"}:
  {"sendgrid": signature, "sendgrid_sdk_verifies": bool, "svix": signature header}.
  The SendGrid signature is checked by SendGrid's own `EventWebhook` helper (PyPI
  `sendgrid`), and the Svix one is made by Svix's library (PyPI `svix`), which Resend
  documents for its webhooks.
"""
import base64
import datetime
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from svix.webhooks import Webhook

request = json.load(sys.stdin)
if request["op"] == "sendgrid-key":
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    print(json.dumps({"private_pem": pem.decode(), "public": base64.b64encode(der).decode()}))
elif request["op"] == "sign":
    payload, timestamp = request["payload"], request["timestamp"]
    key = serialization.load_pem_private_key(request["private_pem"].encode(), password=None)
    signature = base64.b64encode(
        key.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
    ).decode()
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    sdk = EventWebhook(public)
    svix = Webhook(request["svix_secret"]).sign(
        request["svix_id"],
        datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc),
        payload,
    )
    print(json.dumps({
        "sendgrid": signature,
        "sendgrid_sdk_verifies": sdk.verify_signature(payload, signature, timestamp),
        "svix": svix,
    }))
else:
    sys.exit(f"unknown op {request['op']}")
