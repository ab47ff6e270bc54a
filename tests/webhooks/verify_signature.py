"""Verifies recorded web hook requests with the Standard Webhooks reference library (PyPI
`standardwebhooks`), independently of Sallyport's own signing code.

Usage: verify_signature.py SECRET REQUESTS.json
REQUESTS.json is a list of {"headers": {name: value}, "body": "...", "expect": "valid" | "invalid"}.
Exits 0 when every request verifies as expected, 1 otherwise, 3 when the library is not installed.
"""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    print("standardwebhooks is not installed", file=sys.stderr)
    sys.exit(3)

secret, path = sys.argv[1], sys.argv[2]
wh = Webhook(secret)
failed = 0
with open(path) as f:
    requests = json.load(f)
for i, r in enumerate(requests):
    try:
        wh.verify(r["body"], r["headers"])
        got = "valid"
    except WebhookVerificationError as e:
        got = f"invalid ({e})"
    except json.JSONDecodeError:
        # The library decodes the payload only once the signature matched; a GET hook sends no body.
        got = "valid" if r["body"] == "" else "invalid (not JSON)"
    if got.split(" ")[0] != r["expect"]:
        print(f"request {i}: expected {r['expect']}, got {got}", file=sys.stderr)
        failed += 1
    else:
        print(f"request {i}: {got}")
sys.exit(1 if failed else 0)
