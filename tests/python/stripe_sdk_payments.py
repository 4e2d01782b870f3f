"""Collects a subscription's invoice with Stripe's official Python SDK: attach Stripe's
test card pm_card_visa, make it the default, subscribe on a test clock, advance it, and
watch the invoice get paid, refund part of it then the rest, credit the customer's
balance with a credit note and by hand, and see the credit used by a one-off invoice;
a declining test card is refused with a card error; a card number is refused. Run by crates/kopek-api/tests/it/stripe_sdk.rs against a live kopek
whose worker runs."""

import os
import sys
import time

import stripe

stripe.api_key = os.environ["KOPEK_KEY"]
stripe.api_base = os.environ["KOPEK_URL"]
stripe.max_network_retries = 0

JAN_1_2026 = 1767225600
HOUR = 3600


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


clock = stripe.test_helpers.TestClock.create(frozen_time=JAN_1_2026, name="sdk-payments")
customer = stripe.Customer.create(email="pay@example.com", test_clock=clock.id)
pm = stripe.PaymentMethod.attach("pm_card_visa", customer=customer.id)
check(pm.id.startswith("pm_") and pm.customer == customer.id, "attach pm_card_visa")
check(pm.card.brand == "visa" and pm.card.last4 == "4242", "card display data")
customer = stripe.Customer.modify(
    customer.id, invoice_settings={"default_payment_method": pm.id}
)
check(customer.invoice_settings.default_payment_method == pm.id, "default payment method")

try:
    stripe.PaymentMethod.attach("pm_card_chargeDeclinedInsufficientFunds", customer=customer.id)
    check(False, "a declining card is refused when attached")
except stripe.CardError as e:
    check(e.http_status == 402, "card errors are 402")
    check(e.code == "card_declined", f"code card_declined, got {e.code}")
    check(e.error.decline_code == "insufficient_funds", "decline code insufficient_funds")

try:
    stripe.PaymentMethod.create(
        type="card", card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030}
    )
    check(False, "a card number is refused")
except stripe.InvalidRequestError as e:
    check(e.http_status == 400 and e.code == "card_number_refused", "card number refused")

price = stripe.Price.create(
    product_data={"name": "SDK paid plan"}, currency="usd", unit_amount=2900,
    recurring={"interval": "month"},
)
sub = stripe.Subscription.create(customer=customer.id, items=[{"price": price.id}])
clock = stripe.test_helpers.TestClock.advance(clock.id, frozen_time=JAN_1_2026 + HOUR)
for _ in range(200):
    clock = stripe.test_helpers.TestClock.retrieve(clock.id)
    if clock.status == "ready":
        break
    time.sleep(0.05)
check(clock.status == "ready", "the clock becomes ready")

invoice = stripe.Invoice.retrieve(sub.latest_invoice)
check(invoice.status == "paid" and invoice.amount_paid == 2900, f"invoice paid: {invoice.status}")
intent_id = invoice.payments.data[0].payment.payment_intent
intent = stripe.PaymentIntent.retrieve(intent_id)
check(intent.status == "succeeded" and intent.amount_received == 2900, "payment intent succeeded")
charges = stripe.Charge.list(customer=customer.id)
check(len(charges.data) == 1, "one charge")
charge = charges.data[0]
check(charge.paid and charge.status == "succeeded", "charge succeeded")
check(charge.payment_method_details.card.last4 == "4242", "charged the visa")

refund = stripe.Refund.create(payment_intent=intent.id, amount=900, reason="requested_by_customer")
check(refund.status == "succeeded" and refund.amount == 900, "partial refund")
charge = stripe.Charge.retrieve(charge.id)
check(charge.amount_refunded == 900 and not charge.refunded, "charge partly refunded")
try:
    stripe.Refund.create(charge=charge.id, amount=2001)
    check(False, "refunding more than is left is refused")
except stripe.InvalidRequestError as e:
    check(e.param == "amount", "the error names amount")
rest = stripe.Refund.create(charge=charge.id)
check(rest.amount == 2000, "the rest is refunded")
check(stripe.Charge.retrieve(charge.id).refunded, "fully refunded")

# The money is back with the customer; a credit note now credits their balance.
preview = stripe.CreditNote.preview(invoice=invoice.id, amount=500, credit_amount=500)
check(preview.amount == 500 and preview.post_payment_amount == 500, "credit note preview")
note = stripe.CreditNote.create(
    invoice=invoice.id, amount=500, credit_amount=500, reason="product_unsatisfactory"
)
check(note.status == "issued" and note.type == "post_payment", f"credit note: {note.type}")
check(note.customer_balance_transaction is not None, "the note credited the balance")
check(len(stripe.CreditNote.list(invoice=invoice.id).data) == 1, "credit notes listed")
txn = stripe.Customer.create_balance_transaction(
    customer.id, amount=-300, currency="usd", description="Goodwill"
)
check(txn.type == "adjustment" and txn.ending_balance == -800, f"adjustment: {txn.ending_balance}")
check(stripe.Customer.retrieve(customer.id).balance == -800, "customer balance")
moves = stripe.Customer.list_balance_transactions(customer.id)
check([m.type for m in moves.data] == ["adjustment", "credit_note"], "balance transactions")

# A one-off invoice is paid first from the credit, then by the card.
one_off = stripe.Invoice.create(customer=customer.id, auto_advance=True)
stripe.InvoiceItem.create(customer=customer.id, invoice=one_off.id, amount=1000, currency="usd")
one_off = stripe.Invoice.finalize_invoice(one_off.id)
check(one_off.starting_balance == -800 and one_off.amount_due == 200, "the credit applied")
print("ok")
