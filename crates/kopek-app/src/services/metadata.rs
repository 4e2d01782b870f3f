use crate::error::AppError;
use crate::records::Metadata;
use kopek_core::metadata::{self, KEYS_MAX};

/// A change to `metadata`, as Stripe applies it: keys set to a value are set, keys set to
/// the empty string are removed, and `metadata=""` clears everything first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    pub clear: bool,
    pub set: Vec<(String, Option<String>)>,
}

impl MetadataUpdate {
    pub fn apply(&self, metadata: &mut Metadata) -> Result<(), AppError> {
        if self.clear {
            metadata.clear();
        }
        for (key, value) in &self.set {
            let param = format!("metadata[{key}]");
            metadata::check_key(key).map_err(|e| AppError::invalid(&param, e.to_string()))?;
            match value {
                Some(value) => {
                    metadata::check_value(value)
                        .map_err(|e| AppError::invalid(&param, e.to_string()))?;
                    metadata.insert(key.clone(), value.clone());
                }
                None => {
                    metadata.remove(key);
                }
            }
        }
        if metadata.len() > KEYS_MAX {
            return Err(AppError::invalid(
                "metadata",
                format!("metadata can have at most {KEYS_MAX} keys"),
            ));
        }
        Ok(())
    }
}
