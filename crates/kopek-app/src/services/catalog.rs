//! Products and prices.

use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::price::PriceModel;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct NewProduct {
    /// Stripe lets the caller choose a product's id.
    pub id: Option<String>,
    pub name: String,
    pub active: bool,
    pub update: ProductUpdate,
}

/// Fields a product is updated with. `None`: leave as is; `Some(None)`: unset.
#[derive(Debug, Clone, Default)]
pub struct ProductUpdate {
    pub name: Option<String>,
    pub active: Option<bool>,
    pub description: Option<Option<String>>,
    pub default_price: Option<Option<String>>,
    pub images: Option<Vec<String>>,
    pub marketing_features: Option<Vec<String>>,
    pub shippable: Option<Option<bool>>,
    pub statement_descriptor: Option<Option<String>>,
    pub tax_code: Option<Option<String>>,
    pub unit_label: Option<Option<String>>,
    pub url: Option<Option<String>>,
    pub product_type: Option<ProductType>,
    pub metadata: MetadataUpdate,
}

impl ProductUpdate {
    fn apply(self, product: &mut Product) -> Result<(), AppError> {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut product.name, self.name);
        set(&mut product.active, self.active);
        set(&mut product.description, self.description);
        set(&mut product.default_price, self.default_price);
        set(&mut product.images, self.images);
        set(&mut product.marketing_features, self.marketing_features);
        set(&mut product.shippable, self.shippable);
        set(&mut product.statement_descriptor, self.statement_descriptor);
        set(&mut product.tax_code, self.tax_code);
        set(&mut product.unit_label, self.unit_label);
        set(&mut product.url, self.url);
        set(&mut product.product_type, self.product_type);
        self.metadata.apply(&mut product.metadata)
    }
}

/// The product a new price belongs to: an existing one, or one made with it.
#[derive(Debug, Clone)]
pub enum ProductRef {
    Id(String),
    Data(Box<NewProduct>),
}

#[derive(Debug, Clone)]
pub struct NewPrice {
    pub product: ProductRef,
    pub model: PriceModel,
    pub active: bool,
    pub nickname: Option<String>,
    pub lookup_key: Option<String>,
    pub transfer_lookup_key: bool,
    pub tax_behavior: TaxBehavior,
    pub trial_period_days: Option<u32>,
    /// `recurring.meter`, for a metered price.
    pub meter: Option<String>,
    pub metadata: MetadataUpdate,
}

/// What may change on a price: never what it costs (prices are immutable once made).
#[derive(Debug, Clone, Default)]
pub struct PriceUpdate {
    pub active: Option<bool>,
    pub nickname: Option<Option<String>>,
    pub lookup_key: Option<Option<String>>,
    pub transfer_lookup_key: bool,
    pub tax_behavior: Option<TaxBehavior>,
    pub metadata: MetadataUpdate,
}

fn product_not_found(id: &str, param: &'static str) -> AppError {
    AppError::NotFound {
        object: "product",
        id: id.to_owned(),
        param: Some(param),
    }
}

fn price_not_found(id: &str, param: &'static str) -> AppError {
    AppError::NotFound {
        object: "price",
        id: id.to_owned(),
        param: Some(param),
    }
}

impl App {
    pub async fn create_product(
        &self,
        caller: &Caller,
        new: NewProduct,
    ) -> Result<Product, AppError> {
        let mut tx = self.store.write().await?;
        let (product, change) = self.insert_new_product(&mut *tx, caller, new).await?;
        let rendered = self.render.product(&product);
        self.commit(tx, caller, vec![change], &rendered).await?;
        Ok(product)
    }

    async fn insert_new_product(
        &self,
        tx: &mut dyn Tx,
        caller: &Caller,
        new: NewProduct,
    ) -> Result<(Product, Change), AppError> {
        let now = self.clock.now();
        let mut product = Product {
            id: new.id.clone().unwrap_or_else(|| self.ids.id("prod")),
            livemode: caller.scope.livemode,
            created: now,
            updated: now,
            name: new.name,
            active: new.active,
            description: None,
            default_price: None,
            images: Vec::new(),
            marketing_features: Vec::new(),
            shippable: None,
            statement_descriptor: None,
            tax_code: None,
            unit_label: None,
            url: None,
            product_type: ProductType::Service,
            metadata: Metadata::new(),
        };
        if new.update.default_price.is_some() {
            return Err(AppError::invalid(
                "default_price",
                "A new product has no prices to default to.",
            ));
        }
        new.update.apply(&mut product)?;
        if let Err(crate::StoreError::Conflict(_)) =
            tx.insert_product(&caller.scope, &product).await
        {
            return Err(AppError::invalid(
                "id",
                format!("Product already exists: '{}'", product.id),
            ));
        }
        let rendered = self.render.product(&product);
        let change = Change {
            event_type: "product.created",
            object_id: product.id.clone(),
            object: Snapshot::Rendered(rendered),
            previous: None,
        };
        Ok((product, change))
    }

    pub async fn product(&self, scope: &Scope, id: &str) -> Result<Product, AppError> {
        let mut tx = self.store.read().await?;
        tx.product(scope, id)
            .await?
            .ok_or_else(|| product_not_found(id, "id"))
    }

    pub async fn update_product(
        &self,
        caller: &Caller,
        id: &str,
        update: ProductUpdate,
    ) -> Result<Product, AppError> {
        let mut tx = self.store.write().await?;
        let mut product = tx
            .product(&caller.scope, id)
            .await?
            .ok_or_else(|| product_not_found(id, "id"))?;
        if let Some(Some(price_id)) = &update.default_price {
            let price = tx.price(&caller.scope, price_id).await?;
            if price.is_none_or(|p| p.product != product.id) {
                return Err(AppError::invalid(
                    "default_price",
                    format!("The price '{price_id}' does not belong to this product."),
                ));
            }
        }
        let before = self.render.product(&product);
        update.apply(&mut product)?;
        product.updated = self.clock.now();
        tx.update_product(&caller.scope, &product).await?;
        let rendered = self.render.product(&product);
        let changes = Change::rendered_update("product.updated", &product.id, before, &rendered);
        self.commit(tx, caller, changes.into_iter().collect(), &rendered)
            .await?;
        Ok(product)
    }

    /// Deletes a product that no price uses; a product with prices can only be archived
    /// (`active=false`), as on Stripe.
    pub async fn delete_product(&self, caller: &Caller, id: &str) -> Result<Value, AppError> {
        let mut tx = self.store.write().await?;
        let product = tx
            .product(&caller.scope, id)
            .await?
            .ok_or_else(|| product_not_found(id, "id"))?;
        if tx.price_count_for_product(&caller.scope, id).await? > 0 {
            return Err(AppError::Conflict {
                param: None,
                message: "This product cannot be deleted because it has one or more prices. \
                          Archive it instead with `active=false`."
                    .into(),
            });
        }
        let last = self.render.product(&product);
        tx.delete_product(&caller.scope, id).await?;
        let response = self.render.deleted("product", id);
        let change = Change {
            event_type: "product.deleted",
            object_id: id.to_owned(),
            object: Snapshot::Rendered(last),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &response).await?;
        Ok(response)
    }

    pub async fn products(
        &self,
        scope: &Scope,
        filter: &ProductFilter,
        page: &PageRequest,
    ) -> Result<Page<Product>, AppError> {
        let mut tx = self.store.read().await?;
        tx.products(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("product", page))
    }

    pub async fn create_price(&self, caller: &Caller, new: NewPrice) -> Result<Price, AppError> {
        let mut tx = self.store.write().await?;
        let mut changes = Vec::new();
        let product_id = match new.product {
            ProductRef::Id(id) => {
                tx.product(&caller.scope, &id)
                    .await?
                    .ok_or_else(|| product_not_found(&id, "product"))?;
                id
            }
            ProductRef::Data(new_product) => {
                let (product, change) = self
                    .insert_new_product(&mut *tx, caller, *new_product)
                    .await?;
                changes.push(change);
                product.id
            }
        };
        if let Some(meter) = &new.meter {
            self.active_meter(&mut *tx, &caller.scope, meter, "recurring[meter]")
                .await?;
        }
        let mut price = Price {
            id: self.ids.id("price"),
            livemode: caller.scope.livemode,
            created: self.clock.now(),
            product: product_id,
            active: new.active,
            nickname: new.nickname,
            lookup_key: None,
            tax_behavior: new.tax_behavior,
            trial_period_days: new.trial_period_days,
            model: new.model,
            meter: new.meter,
            metadata: Metadata::new(),
        };
        new.metadata.apply(&mut price.metadata)?;
        if let Some(key) = new.lookup_key {
            self.take_lookup_key(
                &mut *tx,
                caller,
                &key,
                new.transfer_lookup_key,
                &mut changes,
            )
            .await?;
            price.lookup_key = Some(key);
        }
        tx.insert_price(&caller.scope, &price).await?;
        let rendered = self.render.price(&price);
        changes.push(Change {
            event_type: "price.created",
            object_id: price.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        });
        self.commit(tx, caller, changes, &rendered).await?;
        Ok(price)
    }

    /// Makes `key` free for a price to take: refused if another price holds it, unless
    /// `transfer` asks to move it (Stripe's `transfer_lookup_key`).
    async fn take_lookup_key(
        &self,
        tx: &mut dyn Tx,
        caller: &Caller,
        key: &str,
        transfer: bool,
        changes: &mut Vec<Change>,
    ) -> Result<(), AppError> {
        let filter = PriceFilter {
            lookup_keys: vec![key.to_owned()],
            ..PriceFilter::default()
        };
        let page = PageRequest {
            limit: 1,
            ..PageRequest::default()
        };
        let holders = tx
            .prices(&caller.scope, &filter, &page)
            .await?
            .map(|p| p.data)
            .unwrap_or_default();
        let Some(mut holder) = holders.into_iter().next() else {
            return Ok(());
        };
        if !transfer {
            return Err(AppError::invalid(
                "lookup_key",
                format!(
                    "A price ('{}') already uses the lookup key '{key}'. Pass `transfer_lookup_key=true` to move it.",
                    holder.id
                ),
            ));
        }
        let before = self.render.price(&holder);
        holder.lookup_key = None;
        tx.update_price(&caller.scope, &holder).await?;
        let after = self.render.price(&holder);
        changes.extend(Change::rendered_update(
            "price.updated",
            &holder.id,
            before,
            &after,
        ));
        Ok(())
    }

    pub async fn price(&self, scope: &Scope, id: &str) -> Result<Price, AppError> {
        let mut tx = self.store.read().await?;
        tx.price(scope, id)
            .await?
            .ok_or_else(|| price_not_found(id, "id"))
    }

    pub async fn update_price(
        &self,
        caller: &Caller,
        id: &str,
        update: PriceUpdate,
    ) -> Result<Price, AppError> {
        let mut tx = self.store.write().await?;
        let mut price = tx
            .price(&caller.scope, id)
            .await?
            .ok_or_else(|| price_not_found(id, "id"))?;
        let before = self.render.price(&price);
        let mut changes = Vec::new();
        if let Some(behavior) = update.tax_behavior {
            if price.tax_behavior != TaxBehavior::Unspecified && behavior != price.tax_behavior {
                return Err(AppError::invalid(
                    "tax_behavior",
                    "tax_behavior cannot be changed once it is `inclusive` or `exclusive`.",
                ));
            }
            price.tax_behavior = behavior;
        }
        if let Some(active) = update.active {
            price.active = active;
        }
        if let Some(nickname) = update.nickname {
            price.nickname = nickname;
        }
        update.metadata.apply(&mut price.metadata)?;
        if let Some(lookup_key) = update.lookup_key {
            if let Some(key) = &lookup_key {
                if price.lookup_key.as_ref() != Some(key) {
                    self.take_lookup_key(
                        &mut *tx,
                        caller,
                        key,
                        update.transfer_lookup_key,
                        &mut changes,
                    )
                    .await?;
                }
            }
            price.lookup_key = lookup_key;
        }
        tx.update_price(&caller.scope, &price).await?;
        let rendered = self.render.price(&price);
        changes.extend(Change::rendered_update(
            "price.updated",
            &price.id,
            before,
            &rendered,
        ));
        self.commit(tx, caller, changes, &rendered).await?;
        Ok(price)
    }

    pub async fn prices(
        &self,
        scope: &Scope,
        filter: &PriceFilter,
        page: &PageRequest,
    ) -> Result<Page<Price>, AppError> {
        let mut tx = self.store.read().await?;
        tx.prices(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("price", page))
    }
}
