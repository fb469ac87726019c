"""Verifies one opsworker webhook with the Python standard library only.

    OPSWORKER_WEBHOOK_SECRET=whsec_... WEBHOOK_ID=... WEBHOOK_TIMESTAMP=... \
    WEBHOOK_SIGNATURE='v1,...' python3 verify.py < body.json

The `standardwebhooks` package on PyPI does the same in one call
(Webhook(secret).verify(body, headers)). In a real receiver, use the
request's raw body and headers, answer 2xx at once, and drop a
webhook-id seen before.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

TOLERANCE = 5 * 60  # seconds, as the worker's own receivers use


def verify(secret: str, msg_id: str, timestamp: str, signatures: str, body: bytes) -> dict:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    if abs(time.time() - int(timestamp)) > TOLERANCE:
        raise ValueError("timestamp outside the tolerance")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # One "v1,<base64>" per signing secret, space-separated (several while
    # a secret is being rotated).
    for sig in signatures.split():
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise ValueError("no signature matches")


if __name__ == "__main__":
    body = sys.stdin.buffer.read()  # the raw body, byte for byte
    env = os.environ
    try:
        event = verify(env["OPSWORKER_WEBHOOK_SECRET"], env["WEBHOOK_ID"], env["WEBHOOK_TIMESTAMP"], env["WEBHOOK_SIGNATURE"], body)
    except (ValueError, KeyError) as err:
        print(f"invalid: {err}", file=sys.stderr)
        sys.exit(1)
    print(f"valid: {env['WEBHOOK_ID']} {event['type']}")
