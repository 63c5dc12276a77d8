//! Decoding a delivery's bytes into a payload struct: JSON, or a form-encoded body read as flat
//! string fields (BigMarker's incoming-webhook style). Errors name what was found instead.

use serde::de::DeserializeOwned;

use super::{Delivery, ParseError};

/// Decodes the body into `T`, a payload struct of the platform's parser.
pub(crate) fn decode<T: DeserializeOwned>(delivery: &Delivery<'_>) -> Result<T, ParseError> {
    let body = delivery.body;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::EmptyBody);
    }
    if is_form(delivery.content_type) {
        return decode_form(body);
    }
    match first_byte(body) {
        Some(b'{') => serde_json::from_slice(body).map_err(|e| json_error(&e)),
        other => Err(top_level_mismatch(body, other)),
    }
}

/// Syntax errors mean the body is not JSON; data errors mean it is, but does not fit.
fn json_error(error: &serde_json::Error) -> ParseError {
    let message = error.to_string();
    match error.classify() {
        serde_json::error::Category::Data => ParseError::Unfit(message),
        _ => ParseError::NotJson(message),
    }
}

/// The body's top-level keys, for an error message: "keys \"a\", \"b\"", at most twenty, each
/// cut to 64 characters (a hostile body cannot make the message huge).
pub(crate) fn top_level_keys(delivery: &Delivery<'_>) -> String {
    match decode::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(delivery) {
        Ok(map) => describe_keys(map.keys()),
        Err(_) => "a body whose keys cannot be read".to_owned(),
    }
}

/// Describes a set of keys as `top_level_keys` does.
pub(crate) fn describe_keys<'k>(keys: impl ExactSizeIterator<Item = &'k String>) -> String {
    const SHOWN: usize = 20;
    let total = keys.len();
    if total == 0 {
        return "an empty object".to_owned();
    }
    let mut shown: Vec<String> = keys
        .take(SHOWN)
        .map(|k| format!("{:?}", k.chars().take(64).collect::<String>()))
        .collect();
    if total > SHOWN {
        shown.push(format!("and {} more", total - SHOWN));
    }
    format!("keys {}", shown.join(", "))
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

fn decode_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| ParseError::BadForm(e.to_string()))?;
    let fields: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| ParseError::BadForm(e.to_string()))
}

fn first_byte(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// Explains a body that is not a JSON object, checking it is at least JSON so the message says
/// which of the two is wrong.
fn top_level_mismatch(body: &[u8], first: Option<u8>) -> ParseError {
    if first == Some(b'<') {
        return ParseError::NotJson("the body looks like XML or HTML".into());
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(e) => ParseError::NotJson(e.to_string()),
        Ok(_) => ParseError::NotAnObject(json_kind(body)),
    }
}

/// What a JSON value is ("an array", "null", ...), named from its first character: it has
/// parsed as JSON, so that one decides.
pub(crate) fn json_kind(value: &[u8]) -> &'static str {
    match first_byte(value) {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Platform;
    use crate::platforms::test_support::delivery;

    #[derive(Debug, serde::Deserialize)]
    struct Any {}

    fn decode_str(body: &str) -> Result<Any, ParseError> {
        decode(&delivery(Platform::Bigmarker, None, body))
    }

    #[test]
    fn names_what_was_found_instead_of_an_object() {
        assert_eq!(decode_str("").unwrap_err(), ParseError::EmptyBody);
        assert_eq!(
            decode_str("[1]").unwrap_err(),
            ParseError::NotAnObject("an array")
        );
        assert_eq!(
            decode_str("null").unwrap_err(),
            ParseError::NotAnObject("null")
        );
        assert!(
            matches!(decode_str("<xml/>").unwrap_err(), ParseError::NotJson(m) if m.contains("XML"))
        );
        assert!(
            matches!(decode_str("{\"a\":").unwrap_err(), ParseError::NotJson(m) if m.contains("line 1"))
        );
    }

    #[test]
    fn form_bodies_become_flat_fields() {
        #[derive(serde::Deserialize)]
        struct Form {
            email: String,
        }
        let mut d = delivery(Platform::Bigmarker, None, "email=a%40b.co&first_name=A");
        d.content_type = Some("application/x-www-form-urlencoded; charset=utf-8");
        let form: Form = decode(&d).unwrap();
        assert_eq!(form.email, "a@b.co");
    }
}
