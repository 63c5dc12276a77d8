//! Rollcall: receives webinar platforms' webhooks, keeps every delivery, and projects them into
//! webinars, registrations and attendance an organizer can report on.

pub mod facts;
pub mod platforms;
