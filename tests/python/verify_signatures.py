"""Verifies deliveries signed by kopek with Stripe's SDK (stripe.Webhook.construct_event)
and the Standard Webhooks reference library, both unchanged. Reads a JSON list of
{"secret", "body", "headers", "valid"} from stdin; exits non-zero on any surprise."""
import datetime
import json
import sys

import stripe
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

failures = []
for case in json.load(sys.stdin):
    body, headers, secret = case["body"], case["headers"], case["secret"]
    try:
        event = stripe.Webhook.construct_event(body, headers["stripe-signature"], secret)
        stripe_ok = event["id"] == json.loads(body)["id"]
    except (stripe.SignatureVerificationError, ValueError):
        stripe_ok = False
    try:
        Webhook(secret).verify(body, headers)
        standard_ok = True
    except WebhookVerificationError:
        standard_ok = False
    for name, ok in [("stripe", stripe_ok), ("standardwebhooks", standard_ok)]:
        if ok != case["valid"]:
            failures.append(f"{name}: {case['name']} verified={ok}, expected {case['valid']}")
if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok")
