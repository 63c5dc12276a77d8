//! Every parser on arbitrary input. The first line says where the body was posted,
//! `platform/trigger[/form]` (so the seed corpus is the fixtures with that line in front, and
//! libFuzzer mutates the route too); the rest is the body. Parsers must return facts or an
//! error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall::facts::Platform;
use rollcall::platforms::{self, Delivery};

fuzz_target!(|data: &[u8]| {
    let (route, body) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (&[][..], data),
    };
    let route = std::str::from_utf8(route).unwrap_or("");
    let mut parts = route.split('/');
    let platform = parts
        .next()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Platform::ALL[data.len() % Platform::ALL.len()]);
    let trigger = parts.next().filter(|t| !t.is_empty());
    let content_type = match parts.next() {
        Some("form") => "application/x-www-form-urlencoded",
        _ => "application/json",
    };
    let delivery = Delivery {
        platform,
        trigger,
        content_type: Some(content_type),
        body,
        received_at: chrono::DateTime::from_timestamp(1_717_243_200, 0).unwrap(),
        source_zone: chrono_tz::Asia::Kolkata,
    };
    let _ = platforms::event_id(&delivery);
    let _ = platforms::parse(&delivery);
});
