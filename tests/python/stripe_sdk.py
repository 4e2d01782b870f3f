"""Drives kopek with Stripe's official Python SDK: create, retrieve, update, list and
delete customers, products and prices. Run by crates/kopek-api/tests/it/stripe_sdk.rs
against a live kopek on loopback; exits non-zero on the first mismatch."""

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


customer = stripe.Customer.create(
    email="jenny@example.com", name="Jenny Rosen", metadata={"plan": "pro"},
    address={"city": "Riga", "country": "LV"}, preferred_locales=["lv", "en"],
)
check(customer.id.startswith("cus_"), "customer id")
check(customer.address.city == "Riga", "nested address")
fetched = stripe.Customer.retrieve(customer.id)
check(fetched.email == "jenny@example.com" and fetched.metadata["plan"] == "pro", "retrieve customer")
updated = stripe.Customer.modify(customer.id, name="Jenny R.", metadata={"plan": ""})
check(updated.name == "Jenny R." and "plan" not in updated.metadata, "update customer")
found = stripe.Customer.list(email="jenny@example.com", limit=5)
check([c.id for c in found.data] == [customer.id], "list customers by email")

product = stripe.Product.create(name="Pro plan", marketing_features=[{"name": "Fast"}])
check(product.id.startswith("prod_") and product.active, "create product")
price = stripe.Price.create(
    product=product.id, currency="usd", unit_amount=2000,
    recurring={"interval": "month"}, lookup_key="pro_monthly",
)
check(price.unit_amount == 2000 and price.recurring.interval == "month", "create price")
tiered = stripe.Price.create(
    product=product.id, currency="eur", billing_scheme="tiered", tiers_mode="graduated",
    tiers=[{"up_to": 5, "unit_amount": 700}, {"up_to": "inf", "unit_amount_decimal": "650.5"}],
)
check(str(tiered.tiers[1].unit_amount_decimal) == "650.5", "tiered price")
check(stripe.Price.retrieve(price.id).lookup_key == "pro_monthly", "retrieve price")
archived = stripe.Price.modify(price.id, active=False, nickname="old")
check(archived.active is False and archived.nickname == "old", "update price")
by_key = stripe.Price.list(lookup_keys=["pro_monthly"])
check([p.id for p in by_key.data] == [price.id], "list prices by lookup key")
by_product = stripe.Price.list(product=product.id, type="one_time")
check([p.id for p in by_product.data] == [tiered.id], "list prices by product and type")

stripe.Product.modify(product.id, description="The pro plan")
check(stripe.Product.retrieve(product.id).description == "The pro plan", "update product")
check(len(stripe.Product.list(active=True).data) == 1, "list products")
try:
    stripe.Product.delete(product.id)
    check(False, "a product with prices cannot be deleted")
except stripe.InvalidRequestError:
    pass
empty = stripe.Product.create(name="Unused")
check(stripe.Product.delete(empty.id).deleted, "delete unused product")

deleted = stripe.Customer.delete(customer.id)
check(deleted.deleted, "delete customer")
try:
    stripe.Customer.modify(customer.id, name="ghost")
    check(False, "a deleted customer cannot be updated")
except stripe.InvalidRequestError as e:
    check(e.http_status == 404, "404 for deleted customer")

pages = []
for i in range(3):
    stripe.Customer.create(email=f"page{i}@example.com")
for c in stripe.Customer.list(limit=1).auto_paging_iter():
    pages.append(c.id)
check(len(pages) == 3, "auto-paging through cursors")

events = stripe.Event.list(type="customer.created", limit=100)
check(len(events.data) == 4, "events recorded")
check(stripe.Event.retrieve(events.data[0].id).type == "customer.created", "retrieve event")
print("stripe sdk: all checks passed")
