//! The store generator: writes a journal of realistic deliveries (the platforms' documented
//! payloads from `tests/fixtures`, with unique people, webinars and event ids) straight into
//! `deliveries`, unprojected. The real `rollcall reindex` then projects them, which both builds
//! the store and measures reindex. It must not project anything itself.

use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rollcall::facts::Platform;
use rollcall::store::journal::{NewDelivery, Prepared, Via};
use rollcall::store::sources;
use rollcall::store::{open_writer, StoreOptions};
use rusqlite::{params, Connection};
use serde_json::{json, Value};

/// The shape of a generated store.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub deliveries: usize,
    pub webinars: usize,
    pub people: usize,
    /// Registrants (and attendees) of the largest webinar, a TagMango one.
    pub largest: usize,
}

impl Spec {
    pub const FULL: Spec = Spec {
        deliveries: 1_000_000,
        webinars: 10_000,
        people: 100_000,
        largest: 100_000,
    };
    pub const SMOKE: Spec = Spec {
        deliveries: 4_000,
        webinars: 40,
        people: 1_000,
        largest: 1_000,
    };
}

/// The largest webinar's uid, as the dashboard names it.
pub const LARGEST: &str = "tagmango:bench-largest";

/// A webinar with about the median number of attendees, for the small export.
pub fn small_webinar() -> String {
    // Webinar 4 is TagMango (platform = index % 4 with TagMango at 0).
    format!("tagmango:bench-w{:05}", 4)
}

fn fixture(path: &str) -> Value {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(path);
    let text = std::fs::read_to_string(&full).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

struct Templates {
    tm_registered: Value,
    tm_completed: Value,
    bm_registration: Value,
    bm_attendee: AttendeeTemplate,
    bm_start: Value,
    bm_end: Value,
    goto_created: Value,
    goto_added: Value,
    goto_joined: Value,
    ls_registered: Value,
    ls_attended: Value,
}

impl Templates {
    fn load() -> Templates {
        let attendees = fixture("bigmarker/attendee-data@doc.json");
        Templates {
            tm_registered: fixture("tagmango/webinar.created.single@doc.json"),
            tm_completed: fixture("tagmango/webinar.completed.all@doc.json"),
            bm_registration: fixture("bigmarker/registration@doc.json"),
            bm_attendee: AttendeeTemplate::new(&attendees["attendees"][0]),
            bm_start: fixture("bigmarker/webinar-start@doc.json"),
            bm_end: fixture("bigmarker/webinar-end@doc.json"),
            goto_created: fixture("gotowebinar/webinar_created.json"),
            goto_added: fixture("gotowebinar/registrant_added.json"),
            goto_joined: fixture("gotowebinar/registrant_joined.json"),
            ls_registered: fixture("livestorm/rest_people_registered.json"),
            ls_attended: fixture("livestorm/rest_people_attended.json"),
        }
    }
}

fn set(value: &mut Value, pointer: &str, new: Value) {
    *value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("template has {pointer}")) = new;
}

fn email(person: usize) -> String {
    format!("p{person}@example.com")
}

/// One generated delivery: platform, trigger, body.
pub struct Body {
    pub platform: Platform,
    pub trigger: Option<&'static str>,
    pub body: String,
}

/// Bodies for load tests: TagMango "completed" deliveries, every one unique.
pub fn tagmango_completed(run: &str, n: u64) -> String {
    let webinar = n % 50;
    format!(
        concat!(
            r#"{{"email":"load-{run}-{n}@example.com","#,
            r#""extra":"padding padding padding padding padding padding padding padding padding","#,
            r#""mangoes":"mango1, mango2, mango3","name":"Load Tester Number {n}","#,
            r#""phone":"+1234567890","timezone":"+05:30","#,
            r#""webinar":"Introduction to Digital Marketing: a load test of the receiver","#,
            r#""webinarId":"load-{run}-{webinar}","#,
            r#""webinarLink":"https://example.com/webinar/recording/{run}/{webinar}"}}"#
        ),
        run = run,
        n = n,
        webinar = webinar
    )
}

/// [`tagmango_completed`] writes its text out: building it through serde_json Values was a
/// third of what the load generator spent on a webhook beyond a /healthz request. It must be,
/// byte for byte, what serde_json gives (so that figures stay comparable with earlier rounds),
/// which holds for a `run` that needs no escaping.
pub fn check_tagmango(run: &str) {
    assert!(run.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    for n in [0, 7, 57] {
        let expected = json!({
            "name": format!("Load Tester Number {n}"),
            "email": format!("load-{run}-{n}@example.com"),
            "phone": "+1234567890",
            "webinar": "Introduction to Digital Marketing: a load test of the receiver",
            "webinarId": format!("load-{run}-{}", n % 50),
            "webinarLink": format!("https://example.com/webinar/recording/{run}/{}", n % 50),
            "mangoes": "mango1, mango2, mango3",
            "timezone": "+05:30",
            "extra": "padding padding padding padding padding padding padding padding padding",
        })
        .to_string();
        assert_eq!(tagmango_completed(run, n), expected);
    }
}

/// A BigMarker `attendees` list of `count` attendees for conference `conference`. The load
/// generator calls this for every request: the templates are read once, since reading and
/// parsing eleven fixture files per request took the server's CPU from the load it measured.
pub fn bigmarker_attendees(conference: &str, first_person: usize, count: usize) -> String {
    static TEMPLATES: std::sync::OnceLock<Templates> = std::sync::OnceLock::new();
    bigmarker_list(
        TEMPLATES.get_or_init(Templates::load),
        conference,
        first_person,
        count,
    )
}

fn bigmarker_list(t: &Templates, conference: &str, first_person: usize, count: usize) -> String {
    t.bm_attendee.list(conference, first_person, count)
}

/// One BigMarker attendee, serialized once with markers in the fields that vary and split at
/// them, so that a list is rendered by concatenation. Building each list through serde_json
/// Values cost the load generator 442 µs per 100-attendee list, three times what the server
/// spent on it, so the lists benchmark measured its own generator.
struct AttendeeTemplate {
    /// The text between slots: one more piece than there are slots.
    pieces: Vec<String>,
    slots: Vec<Slot>,
}

#[derive(Clone, Copy)]
enum Slot {
    Email,
    Bmid,
    FirstName,
    Conference,
}

impl Slot {
    const ALL: [(Slot, &'static str); 4] = [
        (Slot::Email, "/email"),
        (Slot::Bmid, "/bmid"),
        (Slot::FirstName, "/first_name"),
        (Slot::Conference, "/conference_id"),
    ];

    fn marker(index: usize) -> String {
        format!("@@rollcall-bench-slot-{index}@@")
    }
}

impl AttendeeTemplate {
    fn new(attendee: &Value) -> AttendeeTemplate {
        let mut marked = attendee.clone();
        for (index, (_, pointer)) in Slot::ALL.iter().enumerate() {
            set(&mut marked, pointer, json!(Slot::marker(index)));
        }
        let text = marked.to_string();
        let mut found: Vec<(usize, usize, Slot)> = Slot::ALL
            .iter()
            .enumerate()
            .map(|(index, (slot, _))| {
                let quoted = format!("\"{}\"", Slot::marker(index));
                let at = text.find(&quoted).expect("the marker is in the text");
                (at, quoted.len(), *slot)
            })
            .collect();
        found.sort_by_key(|&(at, _, _)| at);
        let (mut pieces, mut slots, mut from) = (Vec::new(), Vec::new(), 0);
        for (at, len, slot) in found {
            pieces.push(text[from..at].to_owned());
            slots.push(slot);
            from = at + len;
        }
        pieces.push(text[from..].to_owned());
        let template = AttendeeTemplate { pieces, slots };
        template.check_against(attendee);
        template
    }

    /// The rendered text must be, byte for byte, what setting the same fields through
    /// serde_json gives, so that figures stay comparable with earlier rounds.
    fn check_against(&self, attendee: &Value) {
        let conference = "c-\"quoted\"";
        let expected: Vec<Value> = (7..9)
            .map(|person| {
                let mut a = attendee.clone();
                set(&mut a, "/email", json!(email(person)));
                set(&mut a, "/bmid", json!(format!("bm{person}")));
                set(&mut a, "/first_name", json!(format!("First{person}")));
                set(&mut a, "/conference_id", json!(conference));
                a
            })
            .collect();
        let expected = json!({ "attendees": expected }).to_string();
        assert_eq!(self.list(conference, 7, 2), expected);
    }

    /// Numbers are written with `itoa`: through `write!` they were a quarter of what the load
    /// generator spent on a list, on the two cores it shares with the server.
    fn list(&self, conference: &str, first_person: usize, count: usize) -> String {
        let conference = serde_json::to_string(conference).expect("a string serializes");
        let per_attendee = self.pieces.iter().map(String::len).sum::<usize>() + 96;
        let mut out = String::with_capacity(16 + count * (per_attendee + conference.len()));
        let mut digits = itoa::Buffer::new();
        out.push_str("{\"attendees\":[");
        for person in first_person..first_person + count {
            if person > first_person {
                out.push(',');
            }
            let number = digits.format(person);
            for (piece, slot) in self.pieces.iter().zip(&self.slots) {
                out.push_str(piece);
                // Generated emails and ids are ASCII letters, digits, '@' and '.': nothing to escape.
                let [before, after] = match slot {
                    Slot::Email => ["\"p", "@example.com\""],
                    Slot::Bmid => ["\"bm", "\""],
                    Slot::FirstName => ["\"First", "\""],
                    Slot::Conference => {
                        out.push_str(&conference);
                        continue;
                    }
                };
                out.push_str(before);
                out.push_str(number);
                out.push_str(after);
            }
            out.push_str(self.pieces.last().expect("one piece more than slots"));
        }
        out.push_str("]}");
        out
    }
}

fn tagmango(t: &Templates, webinar: &str, person: usize, completed: bool) -> Body {
    let (mut v, trigger) = if completed {
        (t.tm_completed.clone(), "webinar.completed.all")
    } else {
        (t.tm_registered.clone(), "webinar.created.single")
    };
    set(&mut v, "/email", json!(email(person)));
    set(&mut v, "/name", json!(format!("Person {person}")));
    if completed {
        set(&mut v, "/webinarId", json!(webinar));
    } else {
        set(&mut v, "/callList/0/webinarId", json!(webinar));
    }
    Body {
        platform: Platform::Tagmango,
        trigger: Some(trigger),
        body: v.to_string(),
    }
}

/// The deliveries of one ordinary webinar (index `w`, `n` deliveries, people from `people`).
fn webinar_bodies(
    t: &Templates,
    w: usize,
    n: usize,
    people: &mut impl Iterator<Item = usize>,
) -> Vec<Body> {
    let id = format!("bench-w{w:05}");
    let mut out = Vec::with_capacity(n);
    match w % 4 {
        0 => {
            for k in 0..n {
                let person = people.next().unwrap_or_default();
                out.push(tagmango(t, &id, person, k % 2 == 1));
            }
        }
        1 => {
            for (template, key) in [
                (&t.bm_start, "/webinar_start_time"),
                (&t.bm_end, "/webinar_end_time"),
            ] {
                let mut v = template.clone();
                set(&mut v, &format!("{key}/conference_id"), json!(id));
                out.push(Body {
                    platform: Platform::Bigmarker,
                    trigger: None,
                    body: v.to_string(),
                });
            }
            let registrants: Vec<usize> = people.take(n.saturating_sub(3)).collect();
            for &person in &registrants {
                let mut v = t.bm_registration.clone();
                set(&mut v, "/registration/email", json!(email(person)));
                set(&mut v, "/registration/bmid", json!(format!("bm{person}")));
                set(&mut v, "/registration/conference_id", json!(id));
                out.push(Body {
                    platform: Platform::Bigmarker,
                    trigger: Some("registration"),
                    body: v.to_string(),
                });
            }
            let first = registrants.first().copied().unwrap_or_default();
            out.push(Body {
                platform: Platform::Bigmarker,
                trigger: Some("attendee-data"),
                body: bigmarker_list(t, &id, first, registrants.len() / 2),
            });
        }
        2 => {
            let key = 8_000_000_000_000_000_000u64 + w as u64;
            let mut v = t.goto_created.clone();
            set(&mut v, "/webinarKey", json!(key));
            set(&mut v, "/eventKey", json!(format!("created-{w}")));
            out.push(Body {
                platform: Platform::Gotowebinar,
                trigger: None,
                body: v.to_string(),
            });
            for k in 1..n {
                let person = people.next().unwrap_or_default();
                let mut v = if k % 2 == 1 {
                    t.goto_added.clone()
                } else {
                    t.goto_joined.clone()
                };
                set(&mut v, "/webinarKey", json!(key));
                set(&mut v, "/eventKey", json!(format!("ev-{w}-{k}")));
                set(&mut v, "/email", json!(email(person)));
                set(
                    &mut v,
                    "/registrantKey",
                    json!(7_000_000_000_000_000_000u64 + person as u64),
                );
                out.push(Body {
                    platform: Platform::Gotowebinar,
                    trigger: None,
                    body: v.to_string(),
                });
            }
        }
        _ => {
            for k in 0..n {
                let person = people.next().unwrap_or_default();
                let mut v = if k % 2 == 0 {
                    t.ls_registered.clone()
                } else {
                    t.ls_attended.clone()
                };
                set(&mut v, "/data/id", json!(format!("ls-{w}-{k}")));
                set(&mut v, "/data/attributes/email", json!(email(person)));
                set(
                    &mut v,
                    "/data/attributes/registrant_detail/event_id",
                    json!(id),
                );
                set(
                    &mut v,
                    "/data/attributes/registrant_detail/session_id",
                    json!(format!("{id}-s")),
                );
                if let Some(fields) = v
                    .pointer_mut("/data/attributes/registrant_detail/fields")
                    .and_then(Value::as_array_mut)
                {
                    fields.retain(|f| f["id"] != "email");
                }
                out.push(Body {
                    platform: Platform::Livestorm,
                    trigger: None,
                    body: v.to_string(),
                });
            }
        }
    }
    out
}

/// Every delivery of the store, in arrival order, handed to `sink` one webinar at a time.
fn generate(
    spec: Spec,
    mut sink: impl FnMut(Vec<Body>) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let t = Templates::load();
    let largest_id = LARGEST.trim_start_matches("tagmango:");
    for half in [false, true] {
        for chunk in (0..spec.largest).collect::<Vec<_>>().chunks(10_000) {
            sink(
                chunk
                    .iter()
                    .map(|&p| tagmango(&t, largest_id, p % spec.people, half))
                    .collect(),
            )?;
        }
    }
    let others = spec.webinars - 1;
    let remaining = spec.deliveries.saturating_sub(2 * spec.largest);
    let mut people = (0..).map(|i: usize| (i * 7919) % spec.people);
    for w in 0..others {
        let n = remaining / others + usize::from(w < remaining % others);
        sink(webinar_bodies(&t, w, n, &mut people))?;
    }
    Ok(())
}

/// Writes the journal of a store of shape `spec` into the database at `db` (which must be new).
/// Returns the number of deliveries written.
pub fn write_journal(db: &Path, spec: Spec) -> anyhow::Result<usize> {
    let conn = open_writer(db, &StoreOptions::default())?;
    let zone = chrono_tz::UTC;
    let mut ids = std::collections::HashMap::new();
    for platform in Platform::ALL {
        let source = sources::add(&conn, platform, platform.as_str(), zone, &[])?;
        ids.insert(platform, source.id);
    }
    conn.pragma_update(None, "synchronous", "OFF")?;
    let start: DateTime<Utc> = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mut written = 0usize;
    let mut last_delivery = std::collections::HashMap::new();
    let mut sink = |bodies: Vec<Body>| -> rusqlite::Result<()> {
        let tx = conn.unchecked_transaction()?;
        for body in bodies {
            let delivery = NewDelivery {
                platform: body.platform,
                source_id: ids.get(&body.platform).copied(),
                trigger: body.trigger.map(str::to_owned),
                received_at: start + Duration::seconds(written as i64),
                via: Via::Import,
                content_type: Some("application/json".into()),
                headers: Default::default(),
                body: Bytes::from(body.body),
                time_zone: zone,
            };
            let prepared = Prepared::new(delivery);
            insert_raw(&tx, &prepared)?;
            if let Some(source) = prepared.delivery.source_id {
                last_delivery.insert(source, prepared.delivery.received_at);
            }
            written += 1;
        }
        tx.commit()
    };
    generate(spec, &mut sink)?;
    // What the journal keeps as it appends (`journal::insert`), which this bypasses.
    for (source, at) in last_delivery {
        conn.execute(
            "INSERT INTO source_last_delivery (source_id, received_at) VALUES (?1, ?2)",
            params![source, at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()],
        )?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(written)
}

fn insert_raw(conn: &Connection, prepared: &Prepared) -> rusqlite::Result<()> {
    let d = &prepared.delivery;
    conn.prepare_cached(
        "INSERT INTO deliveries (platform, source_id, trigger, received_at, via, content_type,
            headers, body, body_sha256, time_zone, identity, status)
         VALUES (?1, ?2, ?3, ?4, 'import', ?5, '{}', ?6, ?7, 'UTC', ?8, 'quarantined')",
    )?
    .execute(params![
        d.platform.as_str(),
        d.source_id,
        d.trigger,
        d.received_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        d.content_type,
        &d.body[..],
        prepared.body_sha256,
        prepared.identity,
    ])?;
    Ok(())
}
