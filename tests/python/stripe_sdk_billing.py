"""Drives a subscription through a test clock with Stripe's official Python SDK: create a
clock, a customer on it, a monthly price and a subscription; advance the clock a month
and a day; check the renewal invoice; pay one out of band; cancel. Run by
crates/kopek-api/tests/it/stripe_sdk.rs against a live kopek whose worker runs."""

import os
import sys
import time

import stripe

stripe.api_key = os.environ["KOPEK_KEY"]
stripe.api_base = os.environ["KOPEK_URL"]
stripe.max_network_retries = 0

JAN_1_2026 = 1767225600
DAY = 86400


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


clock = stripe.test_helpers.TestClock.create(frozen_time=JAN_1_2026, name="sdk")
check(clock.id.startswith("clock_") and clock.status == "ready", "create test clock")
customer = stripe.Customer.create(email="clock@example.com", test_clock=clock.id)
check(customer.test_clock == clock.id, "customer on the clock")
price = stripe.Price.create(
    product_data={"name": "SDK plan"}, currency="usd", unit_amount=1500,
    recurring={"interval": "month"},
)
sub = stripe.Subscription.create(
    customer=customer.id, items=[{"price": price.id}],
    collection_method="send_invoice", days_until_due=30,
)
check(sub.status == "active", "subscription is active")
check(sub["items"].data[0].current_period_end == JAN_1_2026 + 31 * DAY, "first period ends Feb 1")

clock = stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1_2026 + 32 * DAY)
check(clock.status == "advancing", "advance starts")
for _ in range(200):
    clock = stripe.test_helpers.TestClock.retrieve(clock.id)
    if clock.status == "ready":
        break
    time.sleep(0.05)
check(clock.status == "ready", "the clock becomes ready")

invoices = stripe.Invoice.list(subscription=sub.id, limit=10)
check(len(invoices.data) == 2, f"two invoices, got {len(invoices.data)}")
renewal, first = invoices.data
check(renewal.billing_reason == "subscription_cycle", "renewal reason")
check(renewal.status == "open" and renewal.amount_due == 1500, "renewal finalized")
check(renewal.period_start == JAN_1_2026 + 31 * DAY, "renewal period")
paid = stripe.Invoice.pay(first.id, paid_out_of_band=True)
check(paid.status == "paid" and paid.amount_remaining == 0, "paid out of band")

sub = stripe.Subscription.modify(sub.id, cancel_at_period_end=True)
check(sub.cancel_at_period_end and sub.cancel_at is not None, "cancel at period end")
sub = stripe.Subscription.cancel(sub.id, cancellation_details={"feedback": "unused"})
check(sub.status == "canceled", "canceled now")
check(sub.cancellation_details.feedback == "unused", "feedback kept")
found = stripe.Subscription.list(customer=customer.id, status="all")
check([s.id for s in found.data] == [sub.id], "list with status=all")

# default_incomplete: the first invoice waits for the caller to pay it.
waiting = stripe.Customer.create(email="waiting@example.com", test_clock=clock.id)
sub = stripe.Subscription.create(
    customer=waiting.id, items=[{"price": price.id}], payment_behavior="default_incomplete",
)
check(sub.status == "incomplete", "default_incomplete starts incomplete")
first = stripe.Invoice.retrieve(sub.latest_invoice)
check(first.status == "open" and first.attempt_count == 0, "first invoice not attempted")
stripe.Invoice.pay(first.id, paid_out_of_band=True)
check(stripe.Subscription.retrieve(sub.id).status == "active", "active once paid")
print("ok")
