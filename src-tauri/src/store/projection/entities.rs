//! The projected entities (webinar, session, person, registration, attendance): how each folds
//! a fact, and the table row it writes. Every rule here is order-independent (see `merge`).
//!
//! Each row keeps its fold state (every field's value and version) in its `fold` column, as
//! lz4-compressed JSON. Plain, a registration's fold was about 1 KB; with the row's columns that
//! passed the 1,000 bytes SQLite keeps in a `WITHOUT ROWID` table's page, so every registration
//! took an overflow page of its own, three quarters empty (1.9 of the 6 GB of a store of
//! 1,000,000 deliveries). Compressed, the repeated versions and empty fields shrink it by half.
//! Stores written before hold plain JSON text, which reads back as it is.
//!
//! A field no fact gave is left out of the stored fold (`skip_serializing_if`) and reads back
//! as its default (`#[serde(default)]`), so folds written with every field still read. Most
//! platforms fill a few of a registration's dozen fields: leaving the rest out took a tenth of
//! the registrations' pages and a quarter of the attendance's on the smoke store.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::merge::{keep_max, keep_min, Lww, Newest, Version};
use crate::facts::{
    Engagement, Fact, Moment, Origin, Person, RegistrationStatus, Role, ScheduledTime, TimeBasis,
    WebinarDetails,
};
use crate::store::{format_time, Result};

fn time(at: Option<&DateTime<Utc>>) -> Option<String> {
    at.map(format_time)
}

fn moment_time(m: Option<&Moment>) -> Option<String> {
    m.map(|m| format_time(&m.at))
}

/// Orders moments by instant, then by basis so that equal instants still order the same way.
fn moment_key(m: &Moment) -> (DateTime<Utc>, String) {
    (m.at, serde_json::to_string(&m.basis).unwrap_or_default())
}

fn assumed_zone<'a>(moments: impl IntoIterator<Item = Option<&'a Moment>>) -> Option<String> {
    moments.into_iter().flatten().find_map(|m| match &m.basis {
        TimeBasis::AssumedZone { zone } => Some(zone.clone()),
        _ => None,
    })
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

/// A fold as its row stores it: compressed JSON.
fn encode_fold<T: Serialize>(fold: &T) -> Result<Vec<u8>> {
    Ok(lz4_flex::compress_prepend_size(&serde_json::to_vec(fold)?))
}

/// A fold read back: compressed JSON, or the plain JSON text of a store written before.
fn decode_fold<T: for<'de> Deserialize<'de>>(stored: ValueRef<'_>) -> Result<T> {
    let corrupt = |reason: String| -> serde_json::Error {
        serde::de::Error::custom(format!("a fold {reason}"))
    };
    Ok(match stored {
        ValueRef::Text(json) => serde_json::from_slice(json)?,
        ValueRef::Blob(compressed) => {
            let json = lz4_flex::decompress_size_prepended(compressed)
                .map_err(|e| corrupt(format!("does not decompress: {e}")))?;
            serde_json::from_slice(&json)?
        }
        other => {
            return Err(corrupt(format!("is stored as {:?}", other.data_type())).into());
        }
    })
}

fn load_fold<T: for<'de> Deserialize<'de>>(
    conn: &Connection,
    sql: &str,
    key: &[&dyn rusqlite::ToSql],
) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(key)?;
    match rows.next()? {
        Some(row) => Ok(Some(decode_fold(row.get_ref(0)?)?)),
        None => Ok(None),
    }
}

/// Folds webinar-level details (from `WebinarSeen` and `WebinarChanged`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetailsFold {
    #[serde(skip_serializing_if = "Lww::is_unset")]
    title: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    description: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    url: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    registration_url: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    timezone: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    kind: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    recurrence: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    platform_status: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    owner_name: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    owner_email: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    capacity: Lww<u64>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    scheduled_start: Lww<Moment>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    scheduled_end: Lww<Moment>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    schedule: Lww<Vec<ScheduledTime>>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    presenters: Lww<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extra: BTreeMap<String, Lww<String>>,
}

impl DetailsFold {
    fn merge(&mut self, d: &WebinarDetails, v: Version) {
        self.title.offer(d.title.as_ref(), v);
        self.description.offer(d.description.as_ref(), v);
        self.url.offer(d.url.as_ref(), v);
        self.registration_url.offer(d.registration_url.as_ref(), v);
        self.timezone.offer(d.timezone.as_ref(), v);
        self.kind.offer(d.kind.as_ref(), v);
        self.recurrence.offer(d.recurrence.as_ref(), v);
        self.platform_status.offer(d.platform_status.as_ref(), v);
        self.owner_name.offer(d.owner_name.as_ref(), v);
        self.owner_email.offer(
            d.owner_email
                .as_ref()
                .map(|e| e.as_str().to_owned())
                .as_ref(),
            v,
        );
        self.capacity.offer(d.capacity.as_ref(), v);
        self.scheduled_start.offer(d.scheduled_start.as_ref(), v);
        self.scheduled_end.offer(d.scheduled_end.as_ref(), v);
        self.schedule.offer_list(&d.schedule, v);
        self.presenters.offer_list(&d.presenters, v);
        keep_min(&mut self.created_at, d.created_at.as_ref(), |t| *t);
        for (key, value) in &d.extra {
            self.extra
                .entry(key.clone())
                .or_default()
                .offer(Some(value), v);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebinarFold {
    platform: String,
    external_id: String,
    details: DetailsFold,
    #[serde(skip_serializing_if = "Option::is_none")]
    published_at: Option<Moment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_at: Option<Moment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<Moment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_room_opened_at: Option<Moment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<Moment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<Moment>,
    newest: Newest,
}

impl WebinarFold {
    pub fn load(conn: &Connection, uid: &str) -> Result<Option<Self>> {
        load_fold(conn, "SELECT fold FROM webinars WHERE uid = ?1", &[&uid])
    }

    pub fn merge(&mut self, fact: &Fact, v: Version, delivery_id: i64) {
        let webinar = fact.webinar();
        self.platform = webinar.platform.as_str().to_owned();
        self.external_id.clone_from(&webinar.id);
        self.newest.offer(v, delivery_id);
        match fact {
            Fact::WebinarSeen { details, .. } => self.details.merge(details, v),
            Fact::WebinarChanged { details, at, .. } => {
                self.details.merge(details, v);
                keep_max(&mut self.changed_at, Some(at), moment_key);
            }
            Fact::WebinarPublished { at, .. } => {
                keep_min(&mut self.published_at, Some(at), moment_key)
            }
            Fact::WebinarDeleted { at, .. } => keep_max(&mut self.deleted_at, Some(at), moment_key),
            Fact::WaitingRoomOpened { at, .. } => {
                keep_min(&mut self.waiting_room_opened_at, Some(at), moment_key);
            }
            Fact::Started { at, .. } => keep_min(&mut self.started_at, Some(at), moment_key),
            Fact::Ended { at, .. } => keep_max(&mut self.ended_at, Some(at), moment_key),
            _ => {}
        }
    }

    pub fn save(&self, conn: &Connection, uid: &str) -> Result<()> {
        let d = &self.details;
        let extra: BTreeMap<&String, &String> = d
            .extra
            .iter()
            .filter_map(|(k, v)| Some((k, v.get()?)))
            .collect();
        let zone = assumed_zone([
            self.waiting_room_opened_at.as_ref(),
            self.started_at.as_ref(),
            self.ended_at.as_ref(),
        ]);
        conn.prepare_cached(
            "INSERT OR REPLACE INTO webinars (uid, platform, external_id, title, description, url,
                registration_url, timezone, kind, recurrence, platform_status, owner_name,
                owner_email, capacity, scheduled_start, scheduled_end, created_at, published_at,
                changed_at, deleted_at, waiting_room_opened_at, started_at, ended_at,
                times_assumed_zone, presenters, schedule, extra, delivery_id, fold)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
        )?
        .execute(params![
            uid,
            self.platform,
            self.external_id,
            d.title.get(),
            d.description.get(),
            d.url.get(),
            d.registration_url.get(),
            d.timezone.get(),
            d.kind.get(),
            d.recurrence.get(),
            d.platform_status.get(),
            d.owner_name.get(),
            d.owner_email.get(),
            d.capacity
                .get()
                .map(|c| i64::try_from(*c).unwrap_or(i64::MAX)),
            moment_time(d.scheduled_start.get()),
            moment_time(d.scheduled_end.get()),
            time(d.created_at.as_ref()),
            moment_time(self.published_at.as_ref()),
            moment_time(self.changed_at.as_ref()),
            moment_time(self.deleted_at.as_ref()),
            moment_time(self.waiting_room_opened_at.as_ref()),
            moment_time(self.started_at.as_ref()),
            moment_time(self.ended_at.as_ref()),
            zone,
            json(&d.presenters.get().cloned().unwrap_or_default())?,
            json(&d.schedule.get().cloned().unwrap_or_default())?,
            json(&extra)?,
            self.newest.delivery_id,
            encode_fold(self)?,
        ])?;
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionFold {
    webinar_uid: String,
    external_id: String,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    scheduled_start: Lww<Moment>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    scheduled_end: Lww<Moment>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    timezone: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    url: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    platform_status: Lww<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_room_opened_at: Option<Moment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<Moment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<Moment>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    duration_secs: Lww<u64>,
    newest: Newest,
}

impl SessionFold {
    pub fn load(conn: &Connection, uid: &str) -> Result<Option<Self>> {
        load_fold(conn, "SELECT fold FROM sessions WHERE uid = ?1", &[&uid])
    }

    pub fn merge(&mut self, fact: &Fact, v: Version, delivery_id: i64) {
        self.webinar_uid = fact.webinar().uid();
        self.external_id = fact.session().unwrap_or_default().to_owned();
        self.newest.offer(v, delivery_id);
        match fact {
            Fact::SessionSeen { details, .. } => {
                self.scheduled_start
                    .offer(details.scheduled_start.as_ref(), v);
                self.scheduled_end.offer(details.scheduled_end.as_ref(), v);
                self.timezone.offer(details.timezone.as_ref(), v);
                self.url.offer(details.url.as_ref(), v);
                self.platform_status
                    .offer(details.platform_status.as_ref(), v);
            }
            Fact::WaitingRoomOpened { at, .. } => {
                keep_min(&mut self.waiting_room_opened_at, Some(at), moment_key);
            }
            Fact::Started { at, .. } => keep_min(&mut self.started_at, Some(at), moment_key),
            Fact::Ended {
                at, duration_secs, ..
            } => {
                keep_max(&mut self.ended_at, Some(at), moment_key);
                self.duration_secs.offer(duration_secs.as_ref(), v);
            }
            _ => {}
        }
    }

    pub fn save(&self, conn: &Connection, uid: &str) -> Result<()> {
        let zone = assumed_zone([
            self.waiting_room_opened_at.as_ref(),
            self.started_at.as_ref(),
            self.ended_at.as_ref(),
        ]);
        conn.prepare_cached(
            "INSERT OR REPLACE INTO sessions (uid, webinar_uid, external_id, scheduled_start,
                scheduled_end, timezone, url, platform_status, waiting_room_opened_at, started_at,
                ended_at, duration_secs, times_assumed_zone, delivery_id, fold)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(params![
            uid,
            self.webinar_uid,
            self.external_id,
            moment_time(self.scheduled_start.get()),
            moment_time(self.scheduled_end.get()),
            self.timezone.get(),
            self.url.get(),
            self.platform_status.get(),
            moment_time(self.waiting_room_opened_at.as_ref()),
            moment_time(self.started_at.as_ref()),
            moment_time(self.ended_at.as_ref()),
            self.duration_secs
                .get()
                .map(|d| i64::try_from(*d).unwrap_or(i64::MAX)),
            zone,
            self.newest.delivery_id,
            encode_fold(self)?,
        ])?;
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersonFold {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    platform_ids: BTreeSet<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    first_name: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    last_name: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    name: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    phone: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    organization: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    job_title: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    city: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    country: Lww<String>,
    newest: Newest,
}

impl PersonFold {
    pub fn load(conn: &Connection, uid: &str) -> Result<Option<Self>> {
        load_fold(conn, "SELECT fold FROM people WHERE uid = ?1", &[&uid])
    }

    pub fn merge(&mut self, fact: &Fact, person: &Person, v: Version, delivery_id: i64) {
        let platform = fact.webinar().platform;
        self.newest.offer(v, delivery_id);
        if let Some(email) = &person.email {
            self.email = Some(email.as_str().to_owned());
        }
        if let Some(id) = &person.platform_id {
            self.platform_ids.insert(format!("{platform}:{id}"));
        }
        self.first_name.offer(person.first_name.as_ref(), v);
        self.last_name.offer(person.last_name.as_ref(), v);
        self.name.offer(person.name.as_ref(), v);
        self.phone.offer(person.phone.as_ref(), v);
        self.organization.offer(person.organization.as_ref(), v);
        self.job_title.offer(person.job_title.as_ref(), v);
        self.city.offer(person.city.as_ref(), v);
        self.country.offer(person.country.as_ref(), v);
    }

    pub fn save(&self, conn: &Connection, uid: &str) -> Result<()> {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO people (uid, email, first_name, last_name, name, phone,
                organization, job_title, city, country, platform_ids, delivery_id, fold)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            uid,
            self.email,
            self.first_name.get(),
            self.last_name.get(),
            self.name.get(),
            self.phone.get(),
            self.organization.get(),
            self.job_title.get(),
            self.city.get(),
            self.country.get(),
            json(&self.platform_ids)?,
            self.newest.delivery_id,
            encode_fold(self)?,
        ])?;
        // What people search matches and the People list sorts by name on, kept narrow (see
        // migrations 07 and 10).
        conn.prepare_cached(
            "INSERT OR REPLACE INTO people_search (uid, text, sort_key)
             SELECT uid, lower(coalesce(email, '') || ' ' || coalesce(full_name, '')),
                 lower(coalesce(full_name, email, uid))
             FROM (SELECT uid, email, coalesce(name, nullif(trim(coalesce(first_name, '')
                       || ' ' || coalesce(last_name, '')), '')) AS full_name
                   FROM people WHERE uid = ?1)",
        )?
        .execute([uid])?;
        Ok(())
    }
}

/// The key of a registration or attendance row: session `""` when not session-specific.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonAtWebinar {
    pub webinar_uid: String,
    pub session_uid: String,
    pub person_uid: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistrationFold {
    #[serde(skip_serializing_if = "Option::is_none")]
    registered_at: Option<Moment>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    status: Lww<RegistrationStatus>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    role: Lww<Role>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    source: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    referrer: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    tracking_code: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    utm_source: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    utm_medium: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    utm_campaign: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    utm_term: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    utm_content: Lww<String>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    join_url: Lww<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    custom_fields: BTreeMap<String, Lww<String>>,
    newest: Newest,
}

/// A registration time the platform gave beats the time Rollcall received it.
fn registration_time_key(m: &Moment) -> (bool, DateTime<Utc>) {
    (m.basis == TimeBasis::ReceivedAt, m.at)
}

fn basis_name(m: &Moment) -> &str {
    match &m.basis {
        TimeBasis::Exact => "exact",
        TimeBasis::ReceivedAt => "received_at",
        TimeBasis::AssumedZone { zone } => zone,
    }
}

impl RegistrationFold {
    pub fn load(conn: &Connection, key: &PersonAtWebinar) -> Result<Option<Self>> {
        load_fold(
            conn,
            "SELECT fold FROM registrations
             WHERE webinar_uid = ?1 AND session_uid = ?2 AND person_uid = ?3",
            &[&key.webinar_uid, &key.session_uid, &key.person_uid],
        )
    }

    pub fn merge(&mut self, fact: &Fact, v: Version, delivery_id: i64) {
        let Fact::Registered {
            registered_at,
            status,
            role,
            origin,
            custom_fields,
            join_url,
            ..
        } = fact
        else {
            return;
        };
        self.newest.offer(v, delivery_id);
        keep_min(
            &mut self.registered_at,
            registered_at.as_ref(),
            registration_time_key,
        );
        self.status.offer(status.as_ref(), v);
        self.role.offer(Some(role), v);
        self.merge_origin(origin, v);
        self.join_url.offer(join_url.as_ref(), v);
        for (key, value) in custom_fields {
            self.custom_fields
                .entry(key.clone())
                .or_default()
                .offer(Some(value), v);
        }
    }

    fn merge_origin(&mut self, o: &Origin, v: Version) {
        self.source.offer(o.source.as_ref(), v);
        self.referrer.offer(o.referrer.as_ref(), v);
        self.tracking_code.offer(o.tracking_code.as_ref(), v);
        self.utm_source.offer(o.utm_source.as_ref(), v);
        self.utm_medium.offer(o.utm_medium.as_ref(), v);
        self.utm_campaign.offer(o.utm_campaign.as_ref(), v);
        self.utm_term.offer(o.utm_term.as_ref(), v);
        self.utm_content.offer(o.utm_content.as_ref(), v);
    }

    pub fn save(&self, conn: &Connection, key: &PersonAtWebinar) -> Result<()> {
        let custom: BTreeMap<&String, &String> = self
            .custom_fields
            .iter()
            .filter_map(|(k, v)| Some((k, v.get()?)))
            .collect();
        conn.prepare_cached(
            "INSERT OR REPLACE INTO registrations (webinar_uid, session_uid, person_uid,
                registered_at, registered_at_basis, status, role, source, referrer, tracking_code,
                utm_source, utm_medium, utm_campaign, utm_term, utm_content, join_url,
                custom_fields, delivery_id, fold)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19)",
        )?
        .execute(params![
            key.webinar_uid,
            key.session_uid,
            key.person_uid,
            moment_time(self.registered_at.as_ref()),
            self.registered_at.as_ref().map(basis_name),
            self.status.get().map(status_name),
            role_name(self.role.get().copied().unwrap_or_default()),
            self.source.get(),
            self.referrer.get(),
            self.tracking_code.get(),
            self.utm_source.get(),
            self.utm_medium.get(),
            self.utm_campaign.get(),
            self.utm_term.get(),
            self.utm_content.get(),
            self.join_url.get(),
            json(&custom)?,
            self.newest.delivery_id,
            encode_fold(self)?,
        ])?;
        Ok(())
    }
}

fn status_name(status: &RegistrationStatus) -> &'static str {
    match status {
        RegistrationStatus::Approved => "approved",
        RegistrationStatus::Waiting => "waiting",
        RegistrationStatus::Cancelled => "cancelled",
        RegistrationStatus::Denied => "denied",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Audience => "audience",
        Role::Host => "host",
        Role::GuestSpeaker => "guest_speaker",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttendanceFold {
    attended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_joined_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_left_at: Option<DateTime<Utc>>,
    join_count: u32,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    duration_secs: Lww<u64>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    engaged_secs: Lww<u64>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    attendance_rate: Lww<f64>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    role: Lww<Role>,
    #[serde(skip_serializing_if = "Lww::is_unset")]
    engagement: Lww<Engagement>,
    newest: Newest,
}

impl AttendanceFold {
    pub fn load(conn: &Connection, key: &PersonAtWebinar) -> Result<Option<Self>> {
        load_fold(
            conn,
            "SELECT fold FROM attendance
             WHERE webinar_uid = ?1 AND session_uid = ?2 AND person_uid = ?3",
            &[&key.webinar_uid, &key.session_uid, &key.person_uid],
        )
    }

    pub fn merge(&mut self, fact: &Fact, v: Version, delivery_id: i64) {
        self.newest.offer(v, delivery_id);
        match fact {
            Fact::Joined { at, .. } => {
                self.attended = true;
                self.join_count = self.join_count.saturating_add(1);
                keep_min(&mut self.first_joined_at, Some(&at.at), |t| *t);
            }
            Fact::AttendanceSummary {
                attended,
                joined_at,
                left_at,
                duration_secs,
                engaged_secs,
                attendance_rate,
                role,
                engagement,
                ..
            } => {
                self.attended |= *attended;
                keep_min(&mut self.first_joined_at, joined_at.as_ref(), |t| *t);
                keep_max(&mut self.last_left_at, left_at.as_ref(), |t| *t);
                self.duration_secs.offer(duration_secs.as_ref(), v);
                self.engaged_secs.offer(engaged_secs.as_ref(), v);
                self.attendance_rate.offer(attendance_rate.as_ref(), v);
                self.role.offer(Some(role), v);
                self.engagement.offer(engagement.as_ref(), v);
            }
            _ => {}
        }
    }

    pub fn save(&self, conn: &Connection, key: &PersonAtWebinar) -> Result<()> {
        let engagement = self.engagement.get().cloned().unwrap_or_default();
        let int = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        conn.prepare_cached(
            "INSERT OR REPLACE INTO attendance (webinar_uid, session_uid, person_uid, attended,
                first_joined_at, last_left_at, join_count, duration_secs, engaged_secs,
                attendance_rate, role, messages, questions, votes, up_votes, delivery_id, fold)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?
        .execute(params![
            key.webinar_uid,
            key.session_uid,
            key.person_uid,
            self.attended,
            time(self.first_joined_at.as_ref()),
            time(self.last_left_at.as_ref()),
            self.join_count,
            int(self.duration_secs.get().copied()),
            int(self.engaged_secs.get().copied()),
            self.attendance_rate.get(),
            role_name(self.role.get().copied().unwrap_or_default()),
            int(engagement.messages),
            int(engagement.questions),
            int(engagement.votes),
            int(engagement.up_votes),
            self.newest.delivery_id,
            encode_fold(self)?,
        ])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registration fold and an attendance fold as stores written before 2026-12-03 hold
    /// them: every field, those no fact gave included (`{"v":null,"at":[0,0,0]}`).
    const EVERY_FIELD: [&str; 2] = [
        r#"{"registered_at":{"at":"2017-01-01T00:00:00Z"},"status":{"v":null,"at":[0,0,0]},"role":{"v":"audience","at":[1483228800000,2225566666578642885,0]},"source":{"v":"source of registration","at":[1483228800000,2225566666578642885,0]},"referrer":{"v":null,"at":[0,0,0]},"tracking_code":{"v":null,"at":[0,0,0]},"utm_source":{"v":"mail","at":[1483228800000,2225566666578642885,0]},"utm_medium":{"v":null,"at":[0,0,0]},"utm_campaign":{"v":null,"at":[0,0,0]},"utm_term":{"v":null,"at":[0,0,0]},"utm_content":{"v":null,"at":[0,0,0]},"join_url":{"v":null,"at":[0,0,0]},"custom_fields":{"Company":{"v":"Acme","at":[1483228800000,2225566666578642885,0]}},"newest":{"version":[1483228800000,2225566666578642885,0],"delivery_id":2074}}"#,
        r#"{"attended":true,"first_joined_at":"2022-09-13T09:11:52Z","last_left_at":null,"join_count":0,"duration_secs":{"v":3600,"at":[1735691703000,15164708129484472241,8]},"engaged_secs":{"v":null,"at":[0,0,0]},"attendance_rate":{"v":null,"at":[0,0,0]},"role":{"v":"audience","at":[1735691703000,15164708129484472241,8]},"engagement":{"v":null,"at":[0,0,0]},"newest":{"version":[1735691703000,15164708129484472241,8],"delivery_id":2104}}"#,
    ];

    /// The same folds as they are written now.
    const GIVEN_FIELDS: [&str; 2] = [
        r#"{"registered_at":{"at":"2017-01-01T00:00:00Z"},"role":{"v":"audience","at":[1483228800000,2225566666578642885,0]},"source":{"v":"source of registration","at":[1483228800000,2225566666578642885,0]},"utm_source":{"v":"mail","at":[1483228800000,2225566666578642885,0]},"custom_fields":{"Company":{"v":"Acme","at":[1483228800000,2225566666578642885,0]}},"newest":{"version":[1483228800000,2225566666578642885,0],"delivery_id":2074}}"#,
        r#"{"attended":true,"first_joined_at":"2022-09-13T09:11:52Z","join_count":0,"duration_secs":{"v":3600,"at":[1735691703000,15164708129484472241,8]},"role":{"v":"audience","at":[1735691703000,15164708129484472241,8]},"newest":{"version":[1735691703000,15164708129484472241,8],"delivery_id":2104}}"#,
    ];

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
        every_field: &str,
        given_fields: &str,
    ) {
        let old: T = decode_fold(ValueRef::Text(every_field.as_bytes())).unwrap();
        let stored = encode_fold(&old).unwrap();
        let json = lz4_flex::decompress_size_prepended(&stored).unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), given_fields);
        let new: T = decode_fold(ValueRef::Blob(&stored)).unwrap();
        assert_eq!(new, old);
    }

    #[test]
    fn folds_leave_out_fields_no_fact_gave_and_read_those_written_with_every_field() {
        round_trip::<RegistrationFold>(EVERY_FIELD[0], GIVEN_FIELDS[0]);
        round_trip::<AttendanceFold>(EVERY_FIELD[1], GIVEN_FIELDS[1]);
    }

    /// A field left out reads back as one no fact gave, whichever fields are left out.
    #[test]
    fn a_fold_with_every_field_left_out_reads_back_as_the_empty_fold() {
        fn empty<T: for<'de> Deserialize<'de>>() -> T {
            decode_fold(ValueRef::Text(b"{}")).unwrap()
        }
        assert_eq!(empty::<WebinarFold>(), WebinarFold::default());
        assert_eq!(empty::<SessionFold>(), SessionFold::default());
        assert_eq!(empty::<PersonFold>(), PersonFold::default());
        assert_eq!(empty::<RegistrationFold>(), RegistrationFold::default());
        assert_eq!(empty::<AttendanceFold>(), AttendanceFold::default());
    }
}
