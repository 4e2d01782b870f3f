"""Coupons, promotion codes, discounts and tax rates with Stripe's official Python SDK:
a repeating coupon behind a promotion code and a tax rate on a subscription, its first
invoice discounted and then taxed, the code looked up by what customers type, and the
discount removed. Run by crates/kopek-api/tests/it/stripe_sdk.rs against a live kopek."""

import os
import sys

import stripe

stripe.api_key = os.environ["KOPEK_KEY"]
stripe.api_base = os.environ["KOPEK_URL"]
stripe.max_network_retries = 0


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


coupon = stripe.Coupon.create(
    id="SDK20", percent_off=20, duration="repeating", duration_in_months=3, name="20% off"
)
check(coupon.valid and coupon.percent_off == 20, "coupon created")
check(stripe.Coupon.retrieve("SDK20").duration_in_months == 3, "coupon retrieved")
code = stripe.PromotionCode.create(
    promotion={"type": "coupon", "coupon": coupon.id}, code="SDKSPRING", max_redemptions=5
)
check(code.promotion.coupon.id == "SDK20", "promotion code for the coupon")
found = stripe.PromotionCode.list(code="sdkspring")
check([c.id for c in found.data] == [code.id], "codes found whatever their case")
rate = stripe.TaxRate.create(display_name="Sales tax", percentage=8.5, inclusive=False)
check(rate.percentage == 8.5 and not rate.inclusive, "tax rate created")

customer = stripe.Customer.create(email="pricing@example.com")
price = stripe.Price.create(
    product_data={"name": "SDK pricing plan"}, currency="usd", unit_amount=5000,
    recurring={"interval": "month"},
)
sub = stripe.Subscription.create(
    customer=customer.id, items=[{"price": price.id}], collection_method="send_invoice",
    days_until_due=30, discounts=[{"promotion_code": code.id}], default_tax_rates=[rate.id],
)
check(len(sub.discounts) == 1, "subscription discounted")
invoice = stripe.Invoice.retrieve(sub.latest_invoice)
# 50.00 less 20% is 40.00; 8.5% tax on that is 3.40.
check(invoice.subtotal == 5000, "subtotal before discount")
check(invoice.total_discount_amounts[0].amount == 1000, "20% off")
check(invoice.total_taxes[0].amount == 340, "tax after the discount")
check(invoice.total == 4340 and invoice.total_excluding_tax == 4000, "total")
line = invoice.lines.data[0]
check(line.discount_amounts[0].amount == 1000, "the line carries the discount")
check(stripe.PromotionCode.retrieve(code.id).times_redeemed == 1, "redemption counted")

deleted = stripe.Subscription.delete_discount(sub.id)
check(deleted.deleted, "discount removed")
check(stripe.Subscription.retrieve(sub.id).discounts == [], "no discounts left")
gone = stripe.Coupon.delete("SDK20")
check(gone.deleted, "coupon deleted")
print("ok")
