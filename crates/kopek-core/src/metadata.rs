//! Stripe's limits on `metadata`.

pub const KEYS_MAX: usize = 50;
pub const KEY_CHARS_MAX: usize = 40;
pub const VALUE_CHARS_MAX: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    TooManyKeys,
    KeyTooLong,
    KeyHasBrackets,
    EmptyKey,
    ValueTooLong,
}

impl std::fmt::Display for MetadataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetadataError::TooManyKeys => write!(f, "metadata can have at most {KEYS_MAX} keys"),
            MetadataError::KeyTooLong => {
                write!(
                    f,
                    "metadata keys can be at most {KEY_CHARS_MAX} characters long"
                )
            }
            MetadataError::KeyHasBrackets => f.write_str("metadata keys cannot contain '[' or ']'"),
            MetadataError::EmptyKey => f.write_str("metadata keys cannot be empty"),
            MetadataError::ValueTooLong => {
                write!(
                    f,
                    "metadata values can be at most {VALUE_CHARS_MAX} characters long"
                )
            }
        }
    }
}

pub fn check_key(key: &str) -> Result<(), MetadataError> {
    if key.is_empty() {
        Err(MetadataError::EmptyKey)
    } else if key.chars().count() > KEY_CHARS_MAX {
        Err(MetadataError::KeyTooLong)
    } else if key.contains(['[', ']']) {
        Err(MetadataError::KeyHasBrackets)
    } else {
        Ok(())
    }
}

pub fn check_value(value: &str) -> Result<(), MetadataError> {
    if value.chars().count() > VALUE_CHARS_MAX {
        Err(MetadataError::ValueTooLong)
    } else {
        Ok(())
    }
}
