//! Request parameters: Stripe's form encoding with bracket notation, or JSON, parsed into
//! one tree and then taken field by field, so that every error names its parameter and
//! anything left over is refused as unknown.

use crate::error::{ApiError, ApiResult};
use kopek_app::MetadataUpdate;
use kopek_core::card::contains_card_number;
use serde_json::{Map, Value};

/// Nesting deeper than this is refused (`a[b][c][d][e][f]…`).
const DEPTH_MAX: usize = 5;
/// Array indices above this are refused, so `items[999999999]` cannot allocate.
const INDEX_MAX: usize = 1_000;
/// Free text longer than this is refused (Stripe's usual `maxLength`).
pub const TEXT_CHARS_MAX: usize = 5_000;

/// Parses `application/x-www-form-urlencoded` with brackets: `metadata[plan]=pro`,
/// `expand[]=x`, `items[0][price]=price_1`.
pub fn parse_form(body: &[u8]) -> ApiResult<Map<String, Value>> {
    let mut root = Map::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let key = percent_decode(raw_key)?;
        let value = percent_decode(raw_value)?;
        let path = split_key(&key)?;
        insert(&mut root, &key, &path, Value::String(value))?;
    }
    Ok(root)
}

fn percent_decode(raw: &[u8]) -> ApiResult<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "body",
                            "parameter_invalid_encoding",
                            "Invalid percent-encoding in the request body.",
                        )
                    })?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        ApiError::invalid(
            "body",
            "parameter_invalid_encoding",
            "The request body is not valid UTF-8.",
        )
    })
}

/// `items[0][price]` → `["items", "0", "price"]`; `expand[]` → `["expand", ""]`.
fn split_key(key: &str) -> ApiResult<Vec<String>> {
    let bad = || {
        ApiError::invalid(
            key,
            "parameter_invalid",
            format!("Invalid parameter name: {key}"),
        )
    };
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return Err(bad());
    }
    let mut path = vec![head.to_owned()];
    while !rest.is_empty() {
        let close = rest.find(']').ok_or_else(bad)?;
        if !rest.starts_with('[') {
            return Err(bad());
        }
        path.push(rest[1..close].to_owned());
        rest = &rest[close + 1..];
    }
    if path.len() > DEPTH_MAX {
        return Err(bad());
    }
    Ok(path)
}

fn insert(
    node: &mut Map<String, Value>,
    key: &str,
    path: &[String],
    value: Value,
) -> ApiResult<()> {
    let conflict = || {
        ApiError::invalid(
            key,
            "parameter_invalid",
            format!("Conflicting values for parameter {key}"),
        )
    };
    let (first, rest) = path.split_first().ok_or_else(conflict)?;
    if rest.is_empty() {
        return match node.insert(first.clone(), value) {
            None => Ok(()),
            Some(_) => Err(conflict()),
        };
    }
    if rest[0].is_empty() {
        // `name[]=value`: append to a list.
        if rest.len() > 1 {
            return Err(conflict());
        }
        let entry = node
            .entry(first.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        return match entry {
            Value::Array(items) if items.len() < INDEX_MAX => {
                items.push(value);
                Ok(())
            }
            _ => Err(conflict()),
        };
    }
    match node
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(child) => insert(child, key, rest, value),
        _ => Err(conflict()),
    }
}

/// Refuses the request if any string in it looks like a card number: kopek never takes
/// one, wherever it is sent.
pub fn refuse_card_numbers(node: &Value, path: &str) -> ApiResult<()> {
    match node {
        Value::String(text) if contains_card_number(text) => Err(ApiError::invalid(
            path,
            "card_number_refused",
            "This looks like a card number. kopek never accepts card numbers: tokenize the card \
             with your payment gateway and send the token instead.",
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| refuse_card_numbers(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}[{k}]")
            };
            refuse_card_numbers(v, &child)
        }),
        _ => Ok(()),
    }
}

/// Parameters being taken one by one; [`Params::finish`] refuses whatever is left.
#[derive(Debug)]
pub struct Params {
    map: Map<String, Value>,
    prefix: String,
}

impl Params {
    pub fn new(map: Map<String, Value>) -> Params {
        Params {
            map,
            prefix: String::new(),
        }
    }

    pub fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}[{key}]", self.prefix)
        }
    }

    pub(crate) fn invalid(&self, key: &str, code: &'static str, message: String) -> ApiError {
        ApiError::invalid(self.name(key), code, message)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn is_object(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Value::Object(_)))
    }

    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// A string, with `null` refused.
    pub fn string(&mut self, key: &str) -> ApiResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => self.checked_text(key, s).map(Some),
            Some(_) => Err(self.invalid(
                key,
                "parameter_invalid_string",
                format!("Invalid string: {}", self.name(key)),
            )),
        }
    }

    pub fn required_string(&mut self, key: &str) -> ApiResult<String> {
        self.string(key)?.ok_or_else(|| self.missing(key))
    }

    pub fn missing(&self, key: &str) -> ApiError {
        self.invalid(
            key,
            "parameter_missing",
            format!("Missing required param: {}.", self.name(key)),
        )
    }

    fn checked_text(&self, key: &str, s: String) -> ApiResult<String> {
        if s.chars().count() > TEXT_CHARS_MAX {
            return Err(self.invalid(
                key,
                "parameter_too_long",
                format!(
                    "{} can be at most {TEXT_CHARS_MAX} characters long.",
                    self.name(key)
                ),
            ));
        }
        Ok(s)
    }

    /// A string that can be unset with `""` (form) or `null` (JSON): `Some(None)`.
    pub fn nullable_string(&mut self, key: &str) -> ApiResult<Option<Option<String>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
            Some(Value::String(s)) => self.checked_text(key, s).map(|s| Some(Some(s))),
            Some(_) => Err(self.invalid(
                key,
                "parameter_invalid_string",
                format!("Invalid string: {}", self.name(key)),
            )),
        }
    }

    pub fn bool(&mut self, key: &str) -> ApiResult<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(self.invalid(
                key,
                "parameter_invalid_boolean",
                format!("Invalid boolean: {} must be true or false.", self.name(key)),
            )),
        }
    }

    pub fn i64(&mut self, key: &str) -> ApiResult<Option<i64>> {
        let bad = |p: &Params| {
            p.invalid(
                key,
                "parameter_invalid_integer",
                format!("Invalid integer: {}", p.name(key)),
            )
        };
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad(self)),
            Some(Value::String(s)) => s.parse::<i64>().map(Some).map_err(|_| bad(self)),
            Some(_) => Err(bad(self)),
        }
    }

    /// One of a fixed set of names, parsed by `parse`; `names` lists them for the error.
    pub fn one_of<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        names: &str,
    ) -> ApiResult<Option<T>> {
        match self.string(key)? {
            None => Ok(None),
            Some(text) => parse(&text).map(Some).ok_or_else(|| {
                self.invalid(
                    key,
                    "parameter_invalid",
                    format!("Invalid {}: {text}. Use one of {names}.", self.name(key)),
                )
            }),
        }
    }

    /// A timestamp, or `now` (`Some(None)`), as Stripe's `trial_end`.
    pub fn timestamp_or_now(&mut self, key: &str) -> ApiResult<Option<Option<i64>>> {
        match self.map.get(key) {
            Some(Value::String(s)) if s == "now" => {
                self.take(key);
                Ok(Some(None))
            }
            _ => Ok(self.i64(key)?.map(Some)),
        }
    }

    /// An integer within `min..=max`.
    pub fn int_in(&mut self, key: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        match self.i64(key)? {
            Some(n) if n < min || n > max => Err(self.invalid(
                key,
                "parameter_invalid_integer",
                format!("{} must be between {min} and {max}.", self.name(key)),
            )),
            n => Ok(n),
        }
    }

    /// A nested object: `address[city]` or `{"address": {"city": …}}`. `""` or `null`
    /// unsets it: `Some(None)`.
    pub fn object(&mut self, key: &str) -> ApiResult<Option<Option<Params>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
            Some(Value::Object(map)) => Ok(Some(Some(Params {
                map,
                prefix: self.name(key),
            }))),
            Some(_) => Err(self.invalid(
                key,
                "parameter_invalid_object",
                format!("Invalid object: {}", self.name(key)),
            )),
        }
    }

    /// A list: `tiers[0][…]`, `expand[]=…` or a JSON array. `""` is the empty list.
    pub fn list(&mut self, key: &str, max: usize) -> ApiResult<Option<Vec<Value>>> {
        let items = match self.take(key) {
            None => return Ok(None),
            Some(Value::String(s)) if s.is_empty() => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(Value::Object(map)) => {
                let mut indexed = Vec::with_capacity(map.len());
                for (index, value) in map {
                    let index: usize = index.parse().map_err(|_| {
                        self.invalid(
                            key,
                            "parameter_invalid_array",
                            format!("Invalid array: {}", self.name(key)),
                        )
                    })?;
                    indexed.push((index, value));
                }
                indexed.sort_by_key(|(i, _)| *i);
                if indexed
                    .iter()
                    .enumerate()
                    .any(|(expected, (i, _))| *i != expected)
                {
                    return Err(self.invalid(
                        key,
                        "parameter_invalid_array",
                        format!(
                            "Invalid array: the indices of {} must count up from 0.",
                            self.name(key)
                        ),
                    ));
                }
                indexed.into_iter().map(|(_, v)| v).collect()
            }
            Some(_) => {
                return Err(self.invalid(
                    key,
                    "parameter_invalid_array",
                    format!("Invalid array: {}", self.name(key)),
                ))
            }
        };
        if items.len() > max {
            return Err(self.invalid(
                key,
                "parameter_invalid_array",
                format!("{} can have at most {max} items.", self.name(key)),
            ));
        }
        Ok(Some(items))
    }

    pub fn string_list(&mut self, key: &str, max: usize) -> ApiResult<Option<Vec<String>>> {
        let Some(items) = self.list(key, max)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => self.checked_text(key, s),
                _ => Err(self.invalid(
                    key,
                    "parameter_invalid_string",
                    format!("Invalid string: {}[{i}]", self.name(key)),
                )),
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    /// The items of a list, each as nested parameters.
    pub fn object_list(&mut self, key: &str, max: usize) -> ApiResult<Option<Vec<Params>>> {
        let Some(items) = self.list(key, max)? else {
            return Ok(None);
        };
        let name = self.name(key);
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(Params {
                    map,
                    prefix: format!("{name}[{i}]"),
                }),
                _ => Err(ApiError::invalid(
                    format!("{name}[{i}]"),
                    "parameter_invalid_object",
                    format!("Invalid object: {name}[{i}]"),
                )),
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    /// Stripe's `metadata`: a map of strings; `""` for a value removes that key, and
    /// `metadata=""` removes them all.
    pub fn metadata(&mut self) -> ApiResult<MetadataUpdate> {
        let mut update = MetadataUpdate::default();
        match self.take("metadata") {
            None => {}
            Some(Value::Null) => update.clear = true,
            Some(Value::String(s)) if s.is_empty() => update.clear = true,
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    let value = match value {
                        Value::String(s) if s.is_empty() => None,
                        Value::Null => None,
                        Value::String(s) => Some(s),
                        Value::Number(n) => Some(n.to_string()),
                        Value::Bool(b) => Some(b.to_string()),
                        _ => {
                            return Err(ApiError::invalid(
                                format!("{}[{key}]", self.name("metadata")),
                                "parameter_invalid_string",
                                "Metadata values must be strings.",
                            ))
                        }
                    };
                    update.set.push((key, value));
                }
            }
            Some(_) => {
                return Err(self.invalid(
                    "metadata",
                    "parameter_invalid_object",
                    "Invalid object: metadata".into(),
                ))
            }
        }
        Ok(update)
    }

    /// Accepts `expand` (indexed or `[]`); kopek's objects hold ids, and nothing is
    /// expandable yet, so a non-empty `expand` is refused by name.
    pub fn expand(&mut self) -> ApiResult<()> {
        if let Some(fields) = self.string_list("expand", 20)? {
            if let Some(field) = fields.first() {
                return Err(self.invalid(
                    "expand",
                    "parameter_invalid",
                    format!("This property cannot be expanded ({field})."),
                ));
            }
        }
        Ok(())
    }

    /// Refuses any parameter that was not taken.
    pub fn finish(self) -> ApiResult<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => {
                let name = if self.prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{}[{key}]", self.prefix)
                };
                Err(ApiError::invalid(
                    &name,
                    "parameter_unknown",
                    format!("Received unknown parameter: {name}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brackets_nest() {
        let body = b"email=a%40b.c&metadata[plan]=pro&expand[]=x&expand[]=y&items[0][price]=p1&items[1][price]=p2&name=A+B";
        assert_eq!(
            Value::Object(parse_form(body).unwrap()),
            json!({
                "email": "a@b.c", "metadata": {"plan": "pro"}, "expand": ["x", "y"],
                "items": {"0": {"price": "p1"}, "1": {"price": "p2"}}, "name": "A B",
            })
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [
            &b"a[b=1"[..],
            b"%zz=1",
            b"[x]=1",
            b"a=1&a=2",
            b"a=1&a[b]=2",
            b"a[b][c][d][e][f]=1",
            b"\xff=1",
        ] {
            assert!(
                parse_form(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn unknown_parameters_are_named() {
        let mut params = Params::new(parse_form(b"address[city]=X&address[planet]=Mars").unwrap());
        let mut address = params.object("address").unwrap().unwrap().unwrap();
        address.string("city").unwrap();
        let error = address.finish().unwrap_err();
        assert_eq!(error.param.as_deref(), Some("address[planet]"));
    }
}
