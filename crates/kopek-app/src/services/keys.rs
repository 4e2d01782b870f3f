use crate::app::App;
use crate::error::AppError;
use crate::ports::base62;
use crate::records::{Account, ApiKey, Scope};
use sha2::{Digest, Sha256};

pub const KEY_PREFIX_TEST: &str = "sk_test_";
pub const KEY_PREFIX_LIVE: &str = "sk_live_";

/// A key just made: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: ApiKey,
    pub secret: String,
}

pub fn secret_sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl App {
    /// Creates an account with its first test-mode key.
    pub async fn create_account(&self) -> Result<(Account, NewKey), AppError> {
        let account = Account {
            id: self.ids.id("acct"),
            created: self.clock.now(),
        };
        let new_key = self.make_key(&account.id, false);
        let mut tx = self.store.write().await?;
        tx.insert_account(&account).await?;
        tx.insert_api_key(&new_key.key).await?;
        tx.commit().await?;
        Ok((account, new_key))
    }

    /// The account a single-tenant install serves, if it has been created.
    pub async fn first_account(&self) -> Result<Option<Account>, AppError> {
        Ok(self.store.read().await?.first_account().await?)
    }

    pub async fn create_api_key(
        &self,
        account_id: &str,
        livemode: bool,
    ) -> Result<NewKey, AppError> {
        let new_key = self.make_key(account_id, livemode);
        let mut tx = self.store.write().await?;
        tx.insert_api_key(&new_key.key).await?;
        tx.commit().await?;
        Ok(new_key)
    }

    pub async fn api_keys(&self, account_id: &str) -> Result<Vec<ApiKey>, AppError> {
        Ok(self.store.read().await?.api_keys(account_id).await?)
    }

    /// The scope a secret key grants, or `None` for a key kopek does not know.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Scope>, AppError> {
        let key = self
            .store
            .read()
            .await?
            .api_key_by_hash(&secret_sha256(secret))
            .await?;
        Ok(key.map(|key| Scope {
            account_id: key.account_id,
            livemode: key.livemode,
        }))
    }

    fn make_key(&self, account_id: &str, livemode: bool) -> NewKey {
        let prefix = if livemode {
            KEY_PREFIX_LIVE
        } else {
            KEY_PREFIX_TEST
        };
        let secret = format!("{prefix}{}", base62(&self.ids.secret()));
        let key = ApiKey {
            id: self.ids.id("key"),
            account_id: account_id.to_owned(),
            livemode,
            secret_sha256: secret_sha256(&secret),
            prefix: prefix.to_owned(),
            last4: secret[secret.len() - 4..].to_owned(),
            created: self.clock.now(),
        };
        NewKey { key, secret }
    }
}
