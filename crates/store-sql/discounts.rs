// The discounts part of the shared SQL (see `tx.rs` beside this file for how it is
// included): coupons, promotion codes and tax rates.

use kopek_app::ports::DiscountsTx;

fn coupon(row: &DbRow) -> StoreResult<Coupon> {
    decode_doc(row, "coupon")
}

fn promotion_code(row: &DbRow) -> StoreResult<PromotionCode> {
    decode_doc(row, "promotion code")
}

/// Codes are compared without regard to case, as customers type them.
fn code_key(code: &str) -> String {
    code.to_lowercase()
}

#[async_trait]
impl DiscountsTx for StoreTx {
    async fn insert_coupon(&mut self, scope: &Scope, c: &Coupon) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO coupons (account_id, livemode, id, created, deleted, doc) ",
        );
        q.push_values([c], |mut b, c| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(c.id.clone())
                .push_bind(c.created)
                .push_bind(c.deleted)
                .push_bind(encode_doc(c));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_coupon(&mut self, scope: &Scope, c: &Coupon) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE coupons SET deleted = ");
        q.push_bind(c.deleted)
            .push(", doc = ")
            .push_bind(encode_doc(c))
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(c.id.clone());
        expect_one(self.execute(q).await?, "update coupon")
    }

    async fn coupon(&mut self, scope: &Scope, id: &str, lock: bool) -> StoreResult<Option<Coupon>> {
        let mut q = scoped("SELECT doc FROM coupons WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        if lock {
            q.push(LOCK_ROWS);
        }
        self.fetch_optional(q).await?.map(|r| coupon(&r)).transpose()
    }

    async fn coupons(
        &mut self,
        scope: &Scope,
        created: &TimeRange,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Coupon>>> {
        let list = ListQuery {
            table: "coupons",
            columns: "doc",
            scope,
            page,
            created: *created,
            filter: Box::new(|q| {
                q.push(" AND deleted = ").push_bind(false);
            }),
        };
        self.list(list, coupon).await
    }

    async fn insert_promotion_code(&mut self, scope: &Scope, p: &PromotionCode) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO promotion_codes (account_id, livemode, id, created, code_key, coupon, \
             customer, active, doc) ",
        );
        q.push_values([p], |mut b, p| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(p.id.clone())
                .push_bind(p.created)
                .push_bind(code_key(&p.code))
                .push_bind(p.coupon.clone())
                .push_bind(p.customer.clone())
                .push_bind(p.active)
                .push_bind(encode_doc(p));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_promotion_code(&mut self, scope: &Scope, p: &PromotionCode) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE promotion_codes SET active = ");
        q.push_bind(p.active)
            .push(", doc = ")
            .push_bind(encode_doc(p))
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(p.id.clone());
        expect_one(self.execute(q).await?, "update promotion code")
    }

    async fn promotion_code(
        &mut self,
        scope: &Scope,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<PromotionCode>> {
        let mut q = scoped("SELECT doc FROM promotion_codes WHERE account_id = ", scope);
        q.push(" AND id = ").push_bind(id.to_owned());
        if lock {
            q.push(LOCK_ROWS);
        }
        self.fetch_optional(q).await?.map(|r| promotion_code(&r)).transpose()
    }

    async fn promotion_code_by_code(
        &mut self,
        scope: &Scope,
        code: &str,
        lock: bool,
    ) -> StoreResult<Option<PromotionCode>> {
        let mut q = scoped("SELECT doc FROM promotion_codes WHERE account_id = ", scope);
        q.push(" AND code_key = ").push_bind(code_key(code));
        if lock {
            q.push(LOCK_ROWS);
        }
        self.fetch_optional(q).await?.map(|r| promotion_code(&r)).transpose()
    }

    async fn promotion_codes(
        &mut self,
        scope: &Scope,
        filter: &PromotionCodeFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<PromotionCode>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "promotion_codes",
            columns: "doc",
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(code) = filter.code {
                    q.push(" AND code_key = ").push_bind(code_key(&code));
                }
                if let Some(coupon) = filter.coupon {
                    q.push(" AND coupon = ").push_bind(coupon);
                }
                if let Some(customer) = filter.customer {
                    q.push(" AND customer = ").push_bind(customer);
                }
                if let Some(active) = filter.active {
                    q.push(" AND active = ").push_bind(active);
                }
            }),
        };
        self.list(list, promotion_code).await
    }
}

fn tax_rate(row: &DbRow) -> StoreResult<TaxRate> {
    decode_doc(row, "tax rate")
}

#[async_trait]
impl kopek_app::ports::TaxRatesTx for StoreTx {
    async fn insert_tax_rate(&mut self, scope: &Scope, r: &TaxRate) -> StoreResult<()> {
        let mut q = Builder::new(
            "INSERT INTO tax_rates (account_id, livemode, id, created, active, inclusive, doc) ",
        );
        q.push_values([r], |mut b, r| {
            b.push_bind(scope.account_id.clone())
                .push_bind(scope.livemode)
                .push_bind(r.id.clone())
                .push_bind(r.created)
                .push_bind(r.active)
                .push_bind(r.inclusive)
                .push_bind(encode_doc(r));
        });
        self.execute(q).await.map(drop)
    }

    async fn update_tax_rate(&mut self, scope: &Scope, r: &TaxRate) -> StoreResult<()> {
        let mut q = Builder::new("UPDATE tax_rates SET active = ");
        q.push_bind(r.active)
            .push(", doc = ")
            .push_bind(encode_doc(r))
            .push(" WHERE account_id = ");
        push_scope(&mut q, scope);
        q.push(" AND id = ").push_bind(r.id.clone());
        expect_one(self.execute(q).await?, "update tax rate")
    }

    async fn tax_rates_by_ids(&mut self, scope: &Scope, ids: &[String]) -> StoreResult<Vec<TaxRate>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut q = scoped("SELECT doc FROM tax_rates WHERE account_id = ", scope);
            push_in(&mut q, "id", chunk.to_vec());
            for row in self.fetch_all(q).await? {
                found.push(tax_rate(&row)?);
            }
        }
        Ok(found)
    }

    async fn tax_rates(
        &mut self,
        scope: &Scope,
        filter: &TaxRateFilter,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<TaxRate>>> {
        let filter = filter.clone();
        let list = ListQuery {
            table: "tax_rates",
            columns: "doc",
            scope,
            page,
            created: filter.created,
            filter: Box::new(move |q| {
                if let Some(active) = filter.active {
                    q.push(" AND active = ").push_bind(active);
                }
                if let Some(inclusive) = filter.inclusive {
                    q.push(" AND inclusive = ").push_bind(inclusive);
                }
            }),
        };
        self.list(list, tax_rate).await
    }
}
