//! Placeholder: the livestorm parser is being written.
use super::{Delivery, ParseError, Understanding};
#[allow(dead_code)]
pub const TRIGGERS: &[&str] = &[];
pub fn parse(_delivery: &Delivery<'_>) -> Result<Understanding, ParseError> {
    Err(ParseError::MissingField("not implemented".into()))
}
#[allow(dead_code)]
pub fn event_id(_delivery: &Delivery<'_>) -> Option<String> {
    None
}
