//! Lenient field types for payload structs: platforms send numbers as strings and strings as
//! numbers, `null` where a value is expected, and placeholders where a number should be. These
//! types accept any of that and keep what can be used, so one odd field never loses a delivery.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Any scalar as trimmed text: strings, numbers (integers kept exact, so 64-bit keys survive),
/// booleans. `null`, empty strings, objects and arrays are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Text(pub Option<String>);

impl Text {
    pub fn into_option(self) -> Option<String> {
        self.0
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

/// The longest text field kept: longer values are refused rather than stored in every report
/// row (a name or a title never needs 64 KiB).
pub(crate) const MAX_TEXT_BYTES: usize = 64 << 10;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.len() > MAX_TEXT_BYTES {
            return Err(E::custom(format_args!(
                "a text field of {} bytes is longer than the {MAX_TEXT_BYTES} bytes allowed",
                v.len()
            )));
        }
        let trimmed = v.trim();
        Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.is_finite().then(|| v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(TextVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// A non-negative whole number (seconds, counts) sent as a number or a numeric string. Anything
/// else (placeholders, negatives, null) is `None`: unknown, never guessed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Count(pub Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = deserializer.deserialize_any(TextVisitor)?;
        Ok(Count(text.as_deref().and_then(parse_count)))
    }
}

fn parse_count(text: &str) -> Option<u64> {
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let n = text.parse::<f64>().ok()?;
    // Rounded, because some platforms send seconds as 181.0.
    (n.is_finite() && n >= 0.0 && n < u64::MAX as f64).then(|| n.round() as u64)
}

/// A decimal number (percentages) sent as a number or a numeric string.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Decimal(pub Option<f64>);

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = deserializer.deserialize_any(TextVisitor)?;
        let value = text
            .as_deref()
            .and_then(|t| t.trim_end_matches('%').parse::<f64>().ok());
        Ok(Decimal(value.filter(|v| v.is_finite())))
    }
}

/// A flag sent as a boolean, `"true"`/`"false"`, or 1/0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flag(pub Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = deserializer.deserialize_any(TextVisitor)?;
        let value = match text.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("true" | "1" | "yes") => Some(true),
            Some("false" | "0" | "no") => Some(false),
            _ => None,
        };
        Ok(Flag(value))
    }
}

/// `or`: the value of `self`, else that of `other`, for values a platform gives in two places.
macro_rules! or_else {
    ($($type:ident),*) => {
        $(impl $type {
            pub fn or(self, other: Self) -> Self {
                $type(self.0.or(other.0))
            }
        })*
    };
}

or_else!(Text, Count, Decimal, Flag);

/// A list that may arrive as `null`, a single object, or not at all: always a `Vec`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany<T> {
            Many(Vec<T>),
            One(T),
        }
        let items = Option::<OneOrMany<T>>::deserialize(deserializer)?;
        Ok(List(match items {
            None => Vec::new(),
            Some(OneOrMany::Many(items)) => items,
            Some(OneOrMany::One(item)) => vec![item],
        }))
    }
}

/// A nested value that should be an object but may arrive as anything (a string, a number, an
/// array): `T` when it is an object, otherwise `None`, so one odd nested value never loses the
/// whole delivery.
///
/// The object is read straight from the body, not through a `serde_json::Value` (which was most
/// of the time spent parsing a Livestorm body). So an error inside it is not caught: `T` must be
/// made of lenient fields, which fail only on what should refuse the delivery anyway (a text
/// longer than [`MAX_TEXT_BYTES`], a field given twice).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Loose<T>(pub Option<T>);

impl<T> Default for Loose<T> {
    fn default() -> Self {
        Loose(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor(PhantomData))
    }
}

/// The `visit_*` methods that read a scalar as no object; serde calls one per kind of scalar.
macro_rules! ignore_scalars {
    ($($visit:ident: $type:ty),*) => {
        $(fn $visit<E: de::Error>(self, _: $type) -> Result<Self::Value, E> {
            Ok(Loose(None))
        })*
    };
}

struct LooseVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for LooseVisitor<T> {
    type Value = Loose<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object, or anything else to be ignored")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|value| Loose(Some(value)))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose(None))
    }

    ignore_scalars! {
        visit_str: &str, visit_u64: u64, visit_i64: i64, visit_u128: u128, visit_i128: i128,
        visit_f64: f64, visit_bool: bool
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default)]
        text: Text,
        #[serde(default)]
        count: Count,
        #[serde(default)]
        rate: Decimal,
        #[serde(default)]
        flag: Flag,
    }

    fn sample(json: &str) -> Sample {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn text_accepts_any_scalar_and_keeps_big_integers_exact() {
        assert_eq!(
            sample(r#"{"text": 9007199254740993123}"#).text.0.unwrap(),
            "9007199254740993123"
        );
        assert_eq!(sample(r#"{"text": " a "}"#).text.0.unwrap(), "a");
        assert_eq!(sample(r#"{"text": ""}"#).text.0, None);
        assert_eq!(sample(r#"{"text": {"nested": [1]}}"#).text.0, None);
        assert_eq!(sample(r#"{}"#).text.0, None);
        let huge = format!(r#"{{"text": "{}"}}"#, "x".repeat(MAX_TEXT_BYTES + 1));
        assert!(serde_json::from_str::<Sample>(&huge).is_err());
    }

    #[test]
    fn counts_accept_strings_and_refuse_placeholders() {
        assert_eq!(sample(r#"{"count": "3600"}"#).count.0, Some(3600));
        assert_eq!(sample(r#"{"count": 181.0}"#).count.0, Some(181));
        assert_eq!(
            sample(r#"{"count": "[seconds attended webinar]"}"#).count.0,
            None
        );
        assert_eq!(sample(r#"{"count": -5}"#).count.0, None);
        assert_eq!(sample(r#"{"count": null}"#).count.0, None);
    }

    #[test]
    fn decimals_and_flags_are_lenient() {
        assert_eq!(sample(r#"{"rate": "87.5"}"#).rate.0, Some(87.5));
        assert_eq!(sample(r#"{"rate": "87%"}"#).rate.0, Some(87.0));
        assert_eq!(sample(r#"{"flag": "true"}"#).flag.0, Some(true));
        assert_eq!(sample(r#"{"flag": 0}"#).flag.0, Some(false));
    }

    #[test]
    fn loose_objects_fall_back_to_none() {
        #[derive(Deserialize)]
        struct Inner {
            #[serde(default)]
            id: Text,
        }
        #[derive(Deserialize)]
        struct Outer {
            #[serde(default)]
            inner: Loose<Inner>,
        }
        let read = |json: &str| serde_json::from_str::<Outer>(json).unwrap().inner.0;
        let inner = read(r#"{"inner": {"id": 8281234567890123456}}"#).unwrap();
        assert_eq!(inner.id.0.unwrap(), "8281234567890123456");
        assert!(read(r#"{"inner": "oops"}"#).is_none());
        assert!(read(r#"{"inner": null}"#).is_none());
        assert!(read(r#"{}"#).is_none());
    }
}
