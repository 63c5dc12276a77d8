//! Rollcall: receives webinar platforms' webhooks, keeps every delivery, and projects them into
//! webinars, registrations and attendance an organizer can report on.

pub mod cli;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod facts;
pub mod hookup;
pub mod http;
pub mod platforms;
pub mod report;
pub mod selftest;
pub mod server;
pub mod signature;
pub mod store;
pub mod subscriptions;
pub mod tunnel;
