// The usage part of the shared SQL (see `tx.rs` beside this file for how it is
// included): meters and meter events.

use kopek_app::ports::UsageTx;
use kopek_core::usage::Aggregates;

fn meter(row: &DbRow) -> StoreResult<Meter> {
    decode_doc(row, "meter")
}

/// `sum, count, max, distinct, last` over `source`, a table or CTE filtered by `filter`.
fn push_aggregates(q: &mut Builder, source: &str, filter: impl Fn(&mut Builder)) {
    q.push(
        "SELECT CAST(COALESCE(SUM(value), 0) AS BIGINT), COUNT(*), MAX(value), \
         COUNT(DISTINCT token), (SELECT value FROM ",
    );
    q.push(source).push(" WHERE TRUE");
    filter(q);
    q.push(" ORDER BY timestamp DESC, created DESC, identifier DESC LIMIT 1) FROM ");
    q.push(source).push(" WHERE TRUE");
    filter(q);
}

fn push_usage_filter(q: &mut Builder, scope: &Scope, query: &UsageQuery, unbilled: bool) {
    q.push(" AND meter = ")
        .push_bind(query.meter.clone())
        .push(" AND customer = ")
        .push_bind(query.customer.clone())
        .push(" AND timestamp >= ")
        .push_bind(query.from)
        .push(" AND timestamp < ")
        .push_bind(query.to)
        .push(" AND meter IN (SELECT id FROM meters WHERE account_id = ");
    push_scope(q, scope);
    q.push(")");
    if unbilled {
        q.push(" AND invoice IS NULL");
    }
}

fn aggregates(row: &DbRow) -> StoreResult<Aggregates> {
    Ok(Aggregates {
        sum: get(row, 0)?,
        count: get(row, 1)?,
        max: get(row, 2)?,
        distinct: get(row, 3)?,
        last: get(row, 4)?,
    })
}

impl StoreTx {
    async fn aggregates(&mut self, q: Builder) -> StoreResult<Aggregates> {
        let row = self
            .fetch_optional(q)
            .await?
            .ok_or_else(|| StoreError::Internal("an aggregate returned no row".into()))?;
        aggregates(&row)
    }
}

#[async_trait]
impl UsageTx for StoreTx {
    async fn insert_meter(&mut self, scope: &Scope, m: &Meter) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO meters (account_id, livemode, id, created, event_name, active, doc) ",
        );
        q.push_values([m], |mut b, m| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(m.id.clone())
                .push_bind(m.created)
                .push_bind(m.event_name.clone())
                .push_bind(!m.inactive)
                .push_bind(encode_doc(m));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_meter(&mut self, scope: &Scope, m: &Meter) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE meters SET active = ");
        q.push_bind(!m.inactive)
            .push(", doc = ")
            .push_bind(encode_doc(m))
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(m.id.clone());
        expect_one(self.execute(q).await?, "update meter")
    }

    async fn meters_by_ids(&mut self, scope: &Scope, ids: &[String]) -> StoreResult<Vec<Meter>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut q = scoped("SELECT doc FROM meters WHERE account_id = ", scope);
            push_in(&mut q, "id", chunk.to_vec());
            for row in self.fetch_all(q).await? {
                found.push(meter(&row)?);
            }
        }
        Ok(found)
    }

    async fn meters_by_event_names(
        &mut self,
        scope: &Scope,
        names: &[String],
    ) -> StoreResult<Vec<Meter>> {
        let mut found = Vec::new();
        for chunk in names.chunks(ROWS_PER_STATEMENT) {
            let mut q = scoped("SELECT doc FROM meters WHERE account_id = ", scope);
            q.push(" AND active = ").push_bind(true);
            push_in(&mut q, "event_name", chunk.to_vec());
            for row in self.fetch_all(q).await? {
                found.push(meter(&row)?);
            }
        }
        Ok(found)
    }

    async fn meters(
        &mut self,
        scope: &Scope,
        active: Option<bool>,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Meter>>> {
        let list = ListQuery {
            table: "meters",
            columns: "doc",
            scope,
            page,
            created: TimeRange::default(),
            filter: Box::new(move |q| {
                if let Some(active) = active {
                    q.push(" AND active = ").push_bind(active);
                }
            }),
        };
        self.list(list, meter).await
    }

    async fn insert_meter_events(
        &mut self,
        _scope: &Scope,
        events: &[MeterEvent],
    ) -> StoreResult<u64> {
        // The caller found every event's meter in the scope.
        self.insert_event_rows(events).await
    }

    async fn usage(&mut self, scope: &Scope, query: &UsageQuery) -> StoreResult<Aggregates> {
        let mut q = Builder::new("");
        push_aggregates(&mut q, "meter_events", |q| {
            push_usage_filter(q, scope, query, false)
        });
        self.aggregates(q).await
    }

    async fn unbilled_usage(
        &mut self,
        scope: &Scope,
        query: &UsageQuery,
        bill_to: Option<&str>,
    ) -> StoreResult<Aggregates> {
        let Some(invoice) = bill_to else {
            let mut q = Builder::new("");
            push_aggregates(&mut q, "meter_events", |q| {
                push_usage_filter(q, scope, query, true)
            });
            return self.aggregates(q).await;
        };
        let mark = |q: &mut Builder| {
            q.push("UPDATE meter_events SET invoice = ")
                .push_bind(invoice.to_owned())
                .push(" WHERE TRUE");
            push_usage_filter(q, scope, query, true);
        };
        if BILL_IN_ONE_STATEMENT {
            let mut q = Builder::new("WITH billed AS (");
            mark(&mut q);
            q.push(" RETURNING value, token, timestamp, created, identifier) ");
            push_aggregates(&mut q, "billed", |_| {});
            self.aggregates(q).await
        } else {
            let found = self.unbilled_usage(scope, query, None).await?;
            let mut q = Builder::new("");
            mark(&mut q);
            let marked = self.execute(q).await?;
            if marked != found.count as u64 {
                return Err(StoreError::Internal(format!(
                    "billed {marked} meter events, counted {}",
                    found.count
                )));
            }
            Ok(found)
        }
    }
}
