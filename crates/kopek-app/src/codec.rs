//! The document half of a stored row: the fields of an object that no query filters on,
//! kept as one JSON text so both stores share one encoding and new fields need no
//! migration. Columns that are filtered, joined or constrained stay real columns.
//!
//! Decoding trusts nothing: a document that does not decode is a [`StoreError`].

use crate::error::StoreError;
use crate::records::*;
use kopek_core::period::{Interval, IntervalUnit};
use kopek_core::price::*;
use kopek_core::Currency;
use serde::Deserialize;
use serde_json::{json, Map, Value};

type Decoded<T> = Result<T, StoreError>;

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("stored document has a bad `{what}`"))
}

fn text(doc: &Value, key: &str) -> Decoded<Option<String>> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(corrupt(key)),
    }
}

fn strings(doc: &Value, key: &str) -> Decoded<Vec<String>> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| corrupt(key)))
            .collect(),
        Some(_) => Err(corrupt(key)),
    }
}

fn metadata(doc: &Value) -> Decoded<Metadata> {
    match doc.get("metadata") {
        None | Some(Value::Null) => Ok(Metadata::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_str().ok_or_else(|| corrupt("metadata"))?.to_owned(),
                ))
            })
            .collect(),
        Some(_) => Err(corrupt("metadata")),
    }
}

fn metadata_doc(metadata: &Metadata) -> Value {
    Value::Object(
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

pub fn address_doc(address: &Address) -> Value {
    json!({
        "city": address.city, "country": address.country, "line1": address.line1,
        "line2": address.line2, "postal_code": address.postal_code, "state": address.state,
    })
}

pub fn customer_doc(c: &Customer) -> String {
    json!({
        "name": c.name, "description": c.description, "phone": c.phone,
        "address": c.address.as_ref().map(address_doc),
        "shipping": c.shipping.as_ref().map(|s| json!({
            "address": address_doc(&s.address), "name": s.name, "phone": s.phone,
        })),
        "invoice_prefix": c.invoice_prefix,
        "next_invoice_sequence": c.next_invoice_sequence,
        "invoice_settings": {
            "custom_fields": c.invoice_settings.custom_fields.iter()
                .map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>(),
            "default_payment_method": c.invoice_settings.default_payment_method,
            "footer": c.invoice_settings.footer,
        },
        "preferred_locales": c.preferred_locales,
        "email_opt_outs": c.email_opt_outs,
        "tax_exempt": c.tax_exempt.as_str(),
        "test_clock": c.test_clock,
        "metadata": metadata_doc(&c.metadata),
        "discount": c.discount,
    })
    .to_string()
}

/// The columns a customer is kept in besides its document. The balance and its
/// currency are columns, not document fields, so that moving a balance is an increment
/// and writing the rest of a customer can never put back a balance it read earlier.
pub struct CustomerColumns {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub email: Option<String>,
    pub deleted: bool,
    pub balance: i64,
    pub currency: Option<String>,
}

/// A customer's document as `customer_doc` writes it. Any field may be missing (a doc
/// written before the field existed) or null. Read as this struct rather than through a
/// `serde_json::Value` map: a billing run reads a customer per renewal, and decoding
/// through the map was 3.8% of the run's instructions (1.3% this way).
#[derive(Deserialize)]
struct CustomerDoc {
    name: Option<String>,
    description: Option<String>,
    phone: Option<String>,
    address: Option<AddressDoc>,
    shipping: Option<ShippingDoc>,
    invoice_prefix: Option<String>,
    next_invoice_sequence: Option<i64>,
    invoice_settings: Option<InvoiceSettingsDoc>,
    preferred_locales: Option<Vec<String>>,
    email_opt_outs: Option<Vec<EmailKind>>,
    tax_exempt: Option<String>,
    metadata: Option<Metadata>,
    test_clock: Option<String>,
    discount: Option<Discount>,
}

#[derive(Deserialize)]
struct AddressDoc {
    city: Option<String>,
    country: Option<String>,
    line1: Option<String>,
    line2: Option<String>,
    postal_code: Option<String>,
    state: Option<String>,
}

impl From<AddressDoc> for Address {
    fn from(a: AddressDoc) -> Address {
        Address {
            city: a.city,
            country: a.country,
            line1: a.line1,
            line2: a.line2,
            postal_code: a.postal_code,
            state: a.state,
        }
    }
}

#[derive(Deserialize)]
struct ShippingDoc {
    address: Option<AddressDoc>,
    name: Option<String>,
    phone: Option<String>,
}

#[derive(Deserialize, Default)]
struct InvoiceSettingsDoc {
    custom_fields: Option<Vec<CustomFieldDoc>>,
    default_payment_method: Option<String>,
    footer: Option<String>,
}

#[derive(Deserialize)]
struct CustomFieldDoc {
    name: Option<String>,
    value: Option<String>,
}

/// Rebuilds a customer from its columns and its document.
pub fn customer_from_doc(columns: CustomerColumns, doc: &str) -> Decoded<Customer> {
    let CustomerColumns {
        id,
        livemode,
        created,
        email,
        deleted,
        balance,
        currency,
    } = columns;
    let doc: CustomerDoc = serde_json::from_str(doc).map_err(|_| corrupt("customer"))?;
    let settings = doc.invoice_settings.unwrap_or_default();
    Ok(Customer {
        id,
        livemode,
        created,
        email,
        name: doc.name,
        description: doc.description,
        phone: doc.phone,
        address: doc.address.map(Address::from),
        shipping: doc.shipping.map(|s| Shipping {
            address: s.address.map(Address::from).unwrap_or_default(),
            name: s.name.unwrap_or_default(),
            phone: s.phone,
        }),
        balance,
        currency: currency
            .map(|c| Currency::parse(&c).map_err(|_| corrupt("currency")))
            .transpose()?,
        invoice_prefix: doc.invoice_prefix.unwrap_or_default(),
        next_invoice_sequence: doc.next_invoice_sequence.unwrap_or(1),
        invoice_settings: InvoiceSettings {
            custom_fields: settings
                .custom_fields
                .unwrap_or_default()
                .into_iter()
                .map(|f| (f.name.unwrap_or_default(), f.value.unwrap_or_default()))
                .collect(),
            default_payment_method: settings.default_payment_method,
            footer: settings.footer,
        },
        preferred_locales: doc.preferred_locales.unwrap_or_default(),
        email_opt_outs: doc.email_opt_outs.unwrap_or_default(),
        tax_exempt: doc
            .tax_exempt
            .and_then(|t| TaxExempt::parse(&t))
            .ok_or_else(|| corrupt("tax_exempt"))?,
        metadata: doc.metadata.unwrap_or_default(),
        test_clock: doc.test_clock,
        discount: doc.discount,
        deleted,
    })
}

pub fn product_doc(p: &Product) -> String {
    json!({
        "updated": p.updated, "name": p.name, "description": p.description,
        "default_price": p.default_price, "images": p.images,
        "marketing_features": p.marketing_features, "shippable": p.shippable,
        "statement_descriptor": p.statement_descriptor, "tax_code": p.tax_code,
        "unit_label": p.unit_label, "url": p.url, "type": p.product_type.as_str(),
        "metadata": metadata_doc(&p.metadata),
    })
    .to_string()
}

pub fn product_from_doc(
    id: String,
    livemode: bool,
    created: i64,
    active: bool,
    doc: &str,
) -> Decoded<Product> {
    let doc: Value = serde_json::from_str(doc).map_err(|_| corrupt("product"))?;
    Ok(Product {
        id,
        livemode,
        created,
        updated: doc
            .get("updated")
            .and_then(Value::as_i64)
            .unwrap_or(created),
        name: text(&doc, "name")?.ok_or_else(|| corrupt("name"))?,
        active,
        description: text(&doc, "description")?,
        default_price: text(&doc, "default_price")?,
        images: strings(&doc, "images")?,
        marketing_features: strings(&doc, "marketing_features")?,
        shippable: doc.get("shippable").and_then(Value::as_bool),
        statement_descriptor: text(&doc, "statement_descriptor")?,
        tax_code: text(&doc, "tax_code")?,
        unit_label: text(&doc, "unit_label")?,
        url: text(&doc, "url")?,
        product_type: text(&doc, "type")?
            .and_then(|t| ProductType::parse(&t))
            .ok_or_else(|| corrupt("type"))?,
        metadata: metadata(&doc)?,
    })
}

fn amount_doc(amount: Option<UnitAmount>) -> Value {
    amount.map_or(Value::Null, |a| Value::String(a.decimal().to_string()))
}

fn amount(doc: &Value, key: &str) -> Decoded<Option<UnitAmount>> {
    text(doc, key)?
        .map(|t| {
            let decimal = t.parse().map_err(|_| corrupt(key))?;
            UnitAmount::new(decimal).map_err(|_| corrupt(key))
        })
        .transpose()
}

pub fn price_doc(p: &Price) -> String {
    let mut doc = Map::new();
    doc.insert("nickname".into(), json!(p.nickname));
    doc.insert("tax_behavior".into(), json!(p.tax_behavior.as_str()));
    doc.insert("trial_period_days".into(), json!(p.trial_period_days));
    if let Some(meter) = &p.meter {
        doc.insert("meter".into(), json!(meter));
    }
    doc.insert("metadata".into(), metadata_doc(&p.metadata));
    if let PriceKind::Recurring(interval) = p.model.kind {
        doc.insert("interval".into(), json!(interval.unit().as_str()));
        doc.insert("interval_count".into(), json!(interval.count()));
    }
    match &p.model.scheme {
        BillingScheme::PerUnit {
            unit_amount,
            transform_quantity,
        } => {
            doc.insert("unit_amount".into(), amount_doc(Some(*unit_amount)));
            if let Some(t) = transform_quantity {
                let round = if t.round() == Round::Up { "up" } else { "down" };
                doc.insert(
                    "transform_quantity".into(),
                    json!({"divide_by": t.divide_by(), "round": round}),
                );
            }
        }
        BillingScheme::Tiered { mode, tiers } => {
            let mode = if *mode == TiersMode::Graduated {
                "graduated"
            } else {
                "volume"
            };
            doc.insert("tiers_mode".into(), json!(mode));
            let tiers: Vec<Value> = tiers
                .as_slice()
                .iter()
                .map(|t| {
                    json!({
                        "up_to": t.up_to,
                        "unit_amount": amount_doc(t.unit_amount),
                        "flat_amount": amount_doc(t.flat_amount),
                    })
                })
                .collect();
            doc.insert("tiers".into(), Value::Array(tiers));
        }
    }
    Value::Object(doc).to_string()
}

#[allow(clippy::too_many_arguments)]
pub fn price_from_doc(
    id: String,
    livemode: bool,
    created: i64,
    product: String,
    active: bool,
    currency: &str,
    lookup_key: Option<String>,
    doc: &str,
) -> Decoded<Price> {
    let doc: Value = serde_json::from_str(doc).map_err(|_| corrupt("price"))?;
    let kind = match text(&doc, "interval")? {
        None => PriceKind::OneTime,
        Some(unit) => {
            let unit = IntervalUnit::parse(&unit).ok_or_else(|| corrupt("interval"))?;
            let count = doc
                .get("interval_count")
                .and_then(Value::as_u64)
                .ok_or_else(|| corrupt("interval_count"))?;
            let count = u32::try_from(count).map_err(|_| corrupt("interval_count"))?;
            PriceKind::Recurring(Interval::new(unit, count).map_err(|_| corrupt("interval_count"))?)
        }
    };
    let scheme = match text(&doc, "tiers_mode")? {
        None => BillingScheme::PerUnit {
            unit_amount: amount(&doc, "unit_amount")?.ok_or_else(|| corrupt("unit_amount"))?,
            transform_quantity: match doc.get("transform_quantity") {
                Some(t @ Value::Object(_)) => {
                    let divide_by = t
                        .get("divide_by")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| corrupt("divide_by"))?;
                    let round = if text(t, "round")?.as_deref() == Some("up") {
                        Round::Up
                    } else {
                        Round::Down
                    };
                    Some(
                        TransformQuantity::new(divide_by, round)
                            .map_err(|_| corrupt("divide_by"))?,
                    )
                }
                _ => None,
            },
        },
        Some(mode) => {
            let mode = if mode == "graduated" {
                TiersMode::Graduated
            } else {
                TiersMode::Volume
            };
            let tiers = match doc.get("tiers") {
                Some(Value::Array(tiers)) => tiers
                    .iter()
                    .map(|t| {
                        Ok(Tier {
                            up_to: t.get("up_to").and_then(Value::as_u64),
                            unit_amount: amount(t, "unit_amount")?,
                            flat_amount: amount(t, "flat_amount")?,
                        })
                    })
                    .collect::<Decoded<Vec<_>>>()?,
                _ => return Err(corrupt("tiers")),
            };
            BillingScheme::Tiered {
                mode,
                tiers: Tiers::new(tiers).map_err(|_| corrupt("tiers"))?,
            }
        }
    };
    Ok(Price {
        id,
        livemode,
        created,
        product,
        active,
        nickname: text(&doc, "nickname")?,
        lookup_key,
        tax_behavior: text(&doc, "tax_behavior")?
            .and_then(|t| TaxBehavior::parse(&t))
            .ok_or_else(|| corrupt("tax_behavior"))?,
        trial_period_days: doc
            .get("trial_period_days")
            .and_then(Value::as_u64)
            .map(|d| d as u32),
        meter: text(&doc, "meter")?,
        model: PriceModel {
            currency: Currency::parse(currency).map_err(|_| corrupt("currency"))?,
            kind,
            scheme,
        },
        metadata: metadata(&doc)?,
    })
}

#[derive(serde::Serialize)]
struct EventDoc<'a> {
    object: &'a Snapshot,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: &'a Option<Snapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: &'a Option<String>,
}

#[derive(serde::Deserialize)]
struct StoredEventDoc {
    object: Snapshot,
    #[serde(default)]
    previous: Option<Snapshot>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

pub fn event_doc(e: &Event) -> String {
    json_of(&EventDoc {
        object: &e.object,
        previous: &e.previous,
        idempotency_key: &e.idempotency_key,
    })
}

/// The fields of an event's doc after its object, as [`EventDoc`] writes them.
#[derive(serde::Serialize)]
struct EventDocRest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: &'a Option<Snapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: &'a Option<String>,
}

/// [`event_doc`], with `object_json` spliced in as the object's record: it must be
/// [`to_doc`] of the record the event's snapshot holds. The billing run has just made
/// that JSON for the record's own row, and serializing each invoice and subscription
/// again for the events about it was a seventh of its planners' time.
pub fn event_doc_spliced(e: &Event, object_json: &str) -> String {
    let tag = match &e.object {
        Snapshot::Subscription(_) => "subscription",
        Snapshot::Invoice(_) => "invoice",
        Snapshot::InvoiceItem(_) => "invoice_item",
        Snapshot::Rendered(_) => return event_doc(e),
    };
    let rest = json_of(&EventDocRest {
        previous: &e.previous,
        idempotency_key: &e.idempotency_key,
    });
    let mut doc = String::with_capacity(object_json.len() + rest.len() + 32);
    doc.push_str("{\"object\":{\"");
    doc.push_str(tag);
    doc.push_str("\":");
    doc.push_str(object_json);
    doc.push('}');
    match rest.strip_prefix('{') {
        Some("}") | None => doc.push('}'),
        Some(fields) => {
            doc.push(',');
            doc.push_str(fields);
        }
    }
    doc
}

/// A record's JSON, written into a buffer the size most records take: growing one from
/// empty reallocates it about four times per document, which showed in the billing
/// run's profile.
fn json_of(value: &impl serde::Serialize) -> String {
    let mut out = Vec::with_capacity(DOC_BYTES_TYPICAL);
    serde_json::to_writer(&mut out, value).expect("records serialize to JSON");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

const DOC_BYTES_TYPICAL: usize = 1024;

pub fn event_from_doc(
    id: String,
    livemode: bool,
    created: i64,
    event_type: String,
    object_id: String,
    doc: &str,
) -> Decoded<Event> {
    let doc: StoredEventDoc = serde_json::from_str(doc)
        .map_err(|e| StoreError::Internal(format!("stored event does not decode: {e}")))?;
    Ok(Event {
        id,
        livemode,
        created,
        event_type,
        object_id,
        object: doc.object,
        previous: doc.previous,
        idempotency_key: doc.idempotency_key,
    })
}

/// A record stored whole as its serde document (the billing records).
pub trait Doc: serde::Serialize + serde::de::DeserializeOwned {}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Doc for T {}

pub fn to_doc<T: Doc>(value: &T) -> String {
    json_of(value)
}

pub fn from_doc<T: Doc>(doc: &str, what: &str) -> Decoded<T> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::Internal(format!("stored {what} does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer_columns(c: &Customer) -> CustomerColumns {
        CustomerColumns {
            id: c.id.clone(),
            livemode: c.livemode,
            created: c.created,
            email: c.email.clone(),
            deleted: c.deleted,
            balance: c.balance,
            currency: c.currency.map(|c| c.lowercase()),
        }
    }

    #[test]
    fn customers_read_back_as_written() {
        let text = |s: &str| Some(s.to_owned());
        let customer = Customer {
            id: "cus_1".into(),
            livemode: true,
            created: 1768467600,
            email: text("zoe@example.com"),
            name: text("Zoë \"Z\" Ørsted"),
            description: text("a customer"),
            phone: text("+33 1 23 45 67 89"),
            address: Some(Address {
                city: text("Paris"),
                country: text("FR"),
                line1: text("1 rue de Rivoli"),
                line2: text("Bât. B"),
                postal_code: text("75001"),
                state: text("IDF"),
            }),
            shipping: Some(Shipping {
                address: Address {
                    city: text("Lyon"),
                    ..Address::default()
                },
                name: "Zoë".into(),
                phone: None,
            }),
            balance: -500,
            currency: Some(Currency::parse("eur").unwrap()),
            invoice_prefix: "ZOE1".into(),
            next_invoice_sequence: 7,
            invoice_settings: InvoiceSettings {
                custom_fields: vec![("PO".into(), "42".into())],
                default_payment_method: text("pm_1"),
                footer: text("Merci"),
            },
            preferred_locales: vec!["fr".into(), "en".into()],
            email_opt_outs: vec![EmailKind::UpcomingRenewal],
            tax_exempt: TaxExempt::Reverse,
            metadata: [("plan".to_owned(), "gold".to_owned())].into(),
            test_clock: text("clock_1"),
            discount: None,
            deleted: false,
        };
        let doc = customer_doc(&customer);
        let read = customer_from_doc(customer_columns(&customer), &doc).unwrap();
        assert_eq!(read, customer);
    }

    #[test]
    fn customer_docs_missing_fields_read_as_defaults_and_bad_ones_are_errors() {
        let columns = || CustomerColumns {
            id: "cus_1".into(),
            livemode: false,
            created: 1,
            email: None,
            deleted: false,
            balance: 0,
            currency: None,
        };
        // As an older kopek wrote it, before most fields existed.
        let old = customer_from_doc(columns(), r#"{"name":"Old","tax_exempt":"none"}"#).unwrap();
        assert_eq!(old.name.as_deref(), Some("Old"));
        assert_eq!(old.next_invoice_sequence, 1);
        assert_eq!(old.invoice_settings, InvoiceSettings::default());
        assert_eq!(
            (old.address, old.shipping, old.discount),
            (None, None, None)
        );
        assert!(old.metadata.is_empty() && old.email_opt_outs.is_empty());
        for bad in [
            "{}",
            r#"{"tax_exempt":"sometimes"}"#,
            r#"{"tax_exempt":"none","metadata":{"a":1}}"#,
            r#"{"tax_exempt":"none","name":5}"#,
            r#"{"tax_exempt":"none","email_opt_outs":["spam"]}"#,
            "not json",
        ] {
            assert!(customer_from_doc(columns(), bad).is_err(), "{bad} read");
        }
    }

    fn invoice() -> Invoice {
        let json = r#"{"id":"in_1","livemode":false,"created":1768467600,"customer":"cus_1","subscription":"sub_1","status":"draft","number":null,"currency":"usd","collection_method":"send_invoice","billing_reason":"subscription_cycle","period_start":1768467600,"period_end":1771146000,"lines":[],"subtotal":1000,"total":1000,"amount_due":1000,"amount_paid":0,"amount_remaining":1000,"ending_balance":0,"auto_advance":true,"due_date":1776243600,"days_until_due":90,"attempt_count":0,"metadata":{"note":"a \"quoted\" ✓"}}"#;
        from_doc(json, "invoice").unwrap()
    }

    fn event(object: Snapshot, previous: Option<Snapshot>, key: Option<&str>) -> Event {
        Event {
            id: "evt_1".into(),
            livemode: false,
            created: 1768467600,
            event_type: "invoice.created".into(),
            object_id: "in_1".into(),
            object,
            previous,
            idempotency_key: key.map(str::to_owned),
        }
    }

    #[test]
    fn spliced_event_docs_are_the_docs_serialized_whole() {
        let draft = invoice();
        let mut open = draft.clone();
        open.status = kopek_core::invoice::InvoiceStatus::Open;
        let json = to_doc(&open);
        for e in [
            event(Snapshot::invoice(&open), None, None),
            event(
                Snapshot::invoice(&open),
                Some(Snapshot::invoice(&draft)),
                None,
            ),
            event(Snapshot::invoice(&open), None, Some("key \"1\"")),
            event(
                Snapshot::invoice(&open),
                Some(Snapshot::invoice(&draft)),
                Some("k"),
            ),
        ] {
            assert_eq!(event_doc_spliced(&e, &json), event_doc(&e));
        }
        // A rendered object has no record to splice: the event is serialized whole.
        let rendered = event(Snapshot::Rendered(json!({"id": "cus_1"})), None, None);
        assert_eq!(event_doc_spliced(&rendered, &json), event_doc(&rendered));
    }
}
