use crate::app::{cursor_not_found, previous_attributes, App};
use crate::error::{AppError, StoreError};
use crate::ports::{StoredDoc, Tx};
use crate::records::*;
use serde_json::Value;

impl App {
    /// Records `events` and, in the same transaction, what they cause outside kopek: a
    /// webhook delivery to every endpoint enabled for each, and the emails they send.
    /// Every event goes through here, so none is recorded without its consequences.
    pub(crate) async fn record_events(
        &self,
        tx: &mut dyn Tx,
        scope: &Scope,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let docs = self.stored_docs(events, crate::codec::event_doc);
        self.record_encoded_events(tx, scope, events, &docs).await
    }

    /// Records' documents as the store keeps them, each encoded by `encode`.
    pub(crate) fn stored_docs<T>(&self, records: &[T], encode: fn(&T) -> String) -> Vec<StoredDoc> {
        records
            .iter()
            .map(|r| self.store.stored_doc(encode(r)))
            .collect()
    }

    /// `json`, documents made by [`crate::codec`], as the store keeps them.
    pub(crate) fn stored_json(&self, json: Vec<String>) -> Vec<StoredDoc> {
        json.into_iter().map(|j| self.store.stored_doc(j)).collect()
    }

    /// The documents of `events` as the store keeps them, with the JSON a batch has just
    /// made of the records they snapshot spliced in (`codec::event_doc_spliced`).
    pub(crate) fn stored_event_docs(&self, events: &[Event], made: &MadeJson) -> Vec<StoredDoc> {
        events
            .iter()
            .map(|e| {
                let json = match made.of(&e.object) {
                    Some(object) => crate::codec::event_doc_spliced(e, object),
                    None => crate::codec::event_doc(e),
                };
                self.store.stored_doc(json)
            })
            .collect()
    }

    /// As [`App::record_events`], with each event's document already made.
    pub(crate) async fn record_encoded_events(
        &self,
        tx: &mut dyn Tx,
        scope: &Scope,
        events: &[Event],
        docs: &[StoredDoc],
    ) -> Result<(), StoreError> {
        tx.insert_encoded_events(scope, events, docs).await?;
        self.write_deliveries(tx, scope, events).await?;
        self.write_notifications(tx, scope, events).await
    }

    /// An event as the API shows it.
    pub async fn event(&self, scope: &Scope, id: &str) -> Result<Value, AppError> {
        let mut tx = self.store.read().await?;
        let event = tx
            .event(scope, id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                object: "event",
                id: id.to_owned(),
                param: Some("id"),
            })?;
        let mut rendered = self.render_events(&mut tx, scope, vec![event]).await?;
        Ok(rendered.remove(0))
    }

    pub async fn events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<Value>, AppError> {
        let mut tx = self.store.read().await?;
        let events = tx
            .events(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("event", page))?;
        Ok(Page {
            data: self.render_events(&mut tx, scope, events.data).await?,
            has_more: events.has_more,
        })
    }

    /// Renders events' snapshots on the wire. A subscription shows its items' prices as
    /// they are now: a price's amounts never change, only its descriptive fields.
    pub(crate) async fn render_events(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        events: Vec<Event>,
    ) -> Result<Vec<Value>, AppError> {
        let mut price_ids: Vec<String> = events
            .iter()
            .flat_map(|e| [Some(&e.object), e.previous.as_ref()])
            .flatten()
            .filter_map(|s| match s {
                Snapshot::Subscription(sub) => Some(sub.items.iter().map(|i| i.price.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        price_ids.sort();
        price_ids.dedup();
        let prices = tx
            .prices_by_ids(scope, &price_ids)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), self.render.price(&p)))
            .collect();
        let render = |snapshot: &Snapshot| match snapshot {
            Snapshot::Rendered(value) => value.clone(),
            Snapshot::Subscription(sub) => self.render.subscription(sub, &prices),
            Snapshot::Invoice(invoice) => self.render.invoice(invoice),
            Snapshot::InvoiceItem(item) => self.render.invoice_item(item),
        };
        Ok(events
            .iter()
            .map(|e| {
                let object = render(&e.object);
                let previous = e
                    .previous
                    .as_ref()
                    .and_then(|before| previous_attributes(&render(before), &object));
                self.render.event(e, object, previous)
            })
            .collect())
    }
}

/// Records a batch has just serialized for their own rows, by id, with that JSON: an
/// event whose snapshot is still such a record takes the JSON as it is.
#[derive(Default)]
pub(crate) struct MadeJson<'a> {
    invoices: std::collections::HashMap<&'a str, (&'a Invoice, &'a str)>,
    subscriptions: std::collections::HashMap<&'a str, (&'a Subscription, &'a str)>,
}

impl<'a> MadeJson<'a> {
    /// `json[i]` is `codec::to_doc(&invoices[i])`.
    pub(crate) fn invoices(mut self, invoices: &'a [Invoice], json: &'a [String]) -> Self {
        self.invoices.extend(by_id(invoices, json, |i| &i.id));
        self
    }

    /// `json[i]` is `codec::to_doc(&subscriptions[i])`.
    pub(crate) fn subscriptions(mut self, subs: &'a [Subscription], json: &'a [String]) -> Self {
        self.subscriptions.extend(by_id(subs, json, |s| &s.id));
        self
    }

    /// The JSON of the record `snapshot` holds, if made and unchanged since.
    fn of(&self, snapshot: &Snapshot) -> Option<&'a str> {
        match snapshot {
            Snapshot::Invoice(i) => self
                .invoices
                .get(i.id.as_str())
                .filter(|(made, _)| *made == &**i)
                .map(|(_, json)| *json),
            Snapshot::Subscription(s) => self
                .subscriptions
                .get(s.id.as_str())
                .filter(|(made, _)| *made == &**s)
                .map(|(_, json)| *json),
            Snapshot::InvoiceItem(_) | Snapshot::Rendered(_) => None,
        }
    }
}

/// Each record with its JSON, keyed by the record's id.
fn by_id<'a, T>(
    records: &'a [T],
    json: &'a [String],
    id: fn(&'a T) -> &'a String,
) -> impl Iterator<Item = (&'a str, (&'a T, &'a str))> {
    records
        .iter()
        .zip(json)
        .map(move |(r, j)| (id(r).as_str(), (r, j.as_str())))
}
