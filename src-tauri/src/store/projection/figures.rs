//! A person's figures at a webinar, the columns [`FIGURES`] yields, folded in Rust row by row
//! for a whole rebuild of the participants summary (`participants::rebuild`). Grouped in SQL,
//! each of the 1,200,000 rows of the 1,000,000-delivery benchmark store went through all 25
//! aggregates, most of them FILTERed out or given NULL: 8.0 s, against 2.7 s to group them
//! with `count(*)` alone and 1.3 s to read them. Here a row updates only what its kind gives.
//!
//! The rules are [`FIGURES`]'s, to each value and its type: `sum` adds as SQLite does
//! (integers exactly, then Kahan-Babuska-Neumaier steps once a real comes), rows are taken in
//! the order the pair-by-pair refresh reads them (by session, then by delivery), and what SQL
//! computes per row (`json`, `unixepoch`, `json_extract`) is still computed by SQL. It must
//! not decide anything [`FIGURES`] does not: a change to one is a change to both, and the
//! tests compare the two on the same rows.
//!
//! [`FIGURES`]: super::participants::FIGURES

use std::cmp::Ordering;

use rusqlite::types::{Value, ValueRef};
use rusqlite::Row;

use crate::store::{Result, StoreError};

/// A registration's columns, of one webinar, in the order [`Figures::add_registration`] reads
/// them: by session, as the refresh's lookup by person finds them.
pub const REGISTRATIONS: &str = "
    SELECT person_uid, role, registered_at, registered_at_basis, status, source, referrer,
        tracking_code, utm_source, utm_medium, utm_campaign, utm_term, utm_content, join_url,
        json(custom_fields)
    FROM registrations WHERE webinar_uid = ?1 ORDER BY session_uid, person_uid";

/// An attendance record's columns, of one webinar, in the order [`Figures::add_attendance`]
/// reads them (by session: reals are summed in that order).
pub const ATTENDANCE: &str = "
    SELECT person_uid, role, attended, first_joined_at, last_left_at, join_count,
        coalesce(duration_secs, unixepoch(last_left_at) - unixepoch(first_joined_at)),
        engaged_secs, attendance_rate
    FROM attendance WHERE webinar_uid = ?1 ORDER BY session_uid, person_uid";

/// Every replay view, in delivery order: (webinar, person, seconds watched).
pub const REPLAY_VIEWS: &str = "
    SELECT webinar_uid, person_uid, json_extract(body, '$.watched_secs') FROM facts
    WHERE kind = 'replay_viewed' AND person_uid IS NOT NULL ORDER BY delivery_id, ordinal";

/// What [`FIGURES`](super::participants::FIGURES) computes over one person's rows.
#[derive(Debug, Default)]
pub struct Figures {
    rank: i64,
    registered: bool,
    status: Option<String>,
    registered_at: Option<String>,
    at_receipt: bool,
    /// source, referrer, tracking code, the five UTM fields, join URL: the greatest of each.
    origin: [Option<String>; 9],
    /// Each registration's custom fields, as JSON, joined by commas.
    custom_fields: String,
    attended: Option<i64>,
    first_joined_at: Option<String>,
    last_left_at: Option<String>,
    join_count: Sum,
    secs: KnownSum,
    engaged: KnownSum,
    rate_sum: Sum,
    rate_count: i64,
    replay_views: i64,
    replay_secs: Sum,
}

impl Figures {
    /// Folds in a row of [`REGISTRATIONS`] (its person already read).
    pub fn add_registration(&mut self, row: &Row<'_>) -> Result<()> {
        self.rank = self.rank.max(rank(text_at(row, 1)?));
        let status = text(row.get_ref(4)?)?;
        self.registered |= !matches!(status, Some("cancelled" | "denied"));
        keep(&mut self.status, status, Ordering::Greater);
        keep(
            &mut self.registered_at,
            text(row.get_ref(2)?)?,
            Ordering::Less,
        );
        self.at_receipt |= text(row.get_ref(3)?)? == Some("received_at");
        for (i, greatest) in self.origin.iter_mut().enumerate() {
            keep(greatest, text(row.get_ref(5 + i)?)?, Ordering::Greater);
        }
        if !self.custom_fields.is_empty() {
            self.custom_fields.push(',');
        }
        self.custom_fields.push_str(text_at(row, 14)?);
        Ok(())
    }

    /// Folds in a row of [`ATTENDANCE`] (its person already read).
    pub fn add_attendance(&mut self, row: &Row<'_>) -> Result<()> {
        self.rank = self.rank.max(rank(text_at(row, 1)?));
        let attended = row.get_ref(2)?.as_i64().map_err(rusqlite::Error::from)?;
        self.attended = Some(self.attended.map_or(attended, |a| a.max(attended)));
        keep(
            &mut self.first_joined_at,
            text(row.get_ref(3)?)?,
            Ordering::Less,
        );
        keep(
            &mut self.last_left_at,
            text(row.get_ref(4)?)?,
            Ordering::Greater,
        );
        self.join_count.add(row.get_ref(5)?)?;
        if attended != 0 {
            self.secs.add(row.get_ref(6)?)?;
            self.engaged.add(row.get_ref(7)?)?;
            let rate = row.get_ref(8)?;
            if rate != ValueRef::Null {
                self.rate_count += 1;
            }
            self.rate_sum.add(rate)?;
        }
        Ok(())
    }

    /// Folds in a replay view's seconds watched (a value of [`REPLAY_VIEWS`]).
    pub fn add_replay_view(&mut self, watched_secs: &Value) -> Result<()> {
        self.replay_views += 1;
        self.replay_secs.add(watched_secs.into())
    }

    /// The custom fields of every registration, as the JSON array the summary stores.
    pub fn custom_fields(&self) -> String {
        format!("[{}]", self.custom_fields)
    }

    /// The values of [`FIGURE_COLUMNS`](super::participants::FIGURE_COLUMNS), in its order,
    /// with `custom_fields` as given.
    pub fn into_values(self, custom_fields: String) -> Result<Vec<Value>> {
        let text = |t: Option<String>| t.map_or(Value::Null, Value::Text);
        let mut values = vec![
            Value::Integer(self.rank),
            Value::Integer(self.registered.into()),
            text(self.status),
            text(self.registered_at),
            Value::Integer(self.at_receipt.into()),
        ];
        values.extend(self.origin.into_iter().map(text));
        values.extend([
            Value::Text(custom_fields),
            Value::Integer(self.attended.unwrap_or(0)),
            text(self.first_joined_at),
            text(self.last_left_at),
            or_zero(self.join_count.total()?),
            self.secs.total()?,
            self.engaged.total()?,
            or_zero(self.rate_sum.total()?),
            Value::Integer(self.rate_count),
            Value::Integer(self.replay_views),
            self.replay_secs.total()?,
        ]);
        Ok(values)
    }
}

/// `CASE role WHEN 'host' THEN 2 WHEN 'guest_speaker' THEN 1 ELSE 0 END`.
fn rank(role: &str) -> i64 {
    match role {
        "host" => 2,
        "guest_speaker" => 1,
        _ => 0,
    }
}

/// A text column's value; the columns folded are all TEXT, so nothing else is stored in them.
fn text(value: ValueRef<'_>) -> rusqlite::Result<Option<&str>> {
    match value {
        ValueRef::Null => Ok(None),
        value => Ok(Some(value.as_str()?)),
    }
}

/// A NOT NULL text column's value.
pub fn text_at<'r>(row: &'r Row<'_>, column: usize) -> rusqlite::Result<&'r str> {
    Ok(row.get_ref(column)?.as_str()?)
}

/// `max` (`Greater`) or `min` (`Less`) of text, which SQLite compares byte by byte.
fn keep(kept: &mut Option<String>, value: Option<&str>, wins: Ordering) {
    if let Some(value) = value {
        if kept
            .as_deref()
            .is_none_or(|k| value.as_bytes().cmp(k.as_bytes()) == wins)
        {
            *kept = Some(value.to_owned());
        }
    }
}

/// `coalesce(sum(...), 0)`.
fn or_zero(sum: Value) -> Value {
    match sum {
        Value::Null => Value::Integer(0),
        sum => sum,
    }
}

/// `CASE WHEN count(*) FILTER (WHERE x IS NULL) = 0 THEN sum(x) END` over the rows given: the
/// total only when every row knows its value.
#[derive(Debug, Default)]
struct KnownSum {
    sum: Sum,
    unknown: bool,
}

impl KnownSum {
    fn add(&mut self, value: ValueRef<'_>) -> Result<()> {
        self.unknown |= value == ValueRef::Null;
        self.sum.add(value)
    }

    fn total(&self) -> Result<Value> {
        match self.unknown {
            true => Ok(Value::Null),
            false => self.sum.total(),
        }
    }
}

/// SQLite's `sum()` (`sumStep` and `sumFinalize` in its `func.c`): exact over integers, NULL
/// over no values, and once a real is added, a double with a Kahan-Babuska-Neumaier error term.
#[derive(Debug, Default)]
pub struct Sum {
    integer: i64,
    real: f64,
    error: f64,
    count: u64,
    approximate: bool,
    overflowed: bool,
}

/// Integers beyond ±2^52 are added as a multiple of 16,384 and a remainder, as SQLite does.
const EXACT_IN_DOUBLE: i64 = 4_503_599_627_370_496;

impl Sum {
    pub fn add(&mut self, value: ValueRef<'_>) -> Result<()> {
        match value {
            ValueRef::Null => return Ok(()),
            ValueRef::Integer(i) => self.add_integer(i),
            ValueRef::Real(r) => self.add_real(r),
            ValueRef::Text(_) | ValueRef::Blob(_) => {
                return Err(StoreError::Invalid(
                    "a participants summary figure is not a number".into(),
                ))
            }
        }
        Ok(())
    }

    fn add_integer(&mut self, i: i64) {
        self.count += 1;
        if self.approximate {
            self.step_integer(i);
            return;
        }
        match self.integer.checked_add(i) {
            Some(sum) => self.integer = sum,
            None => {
                self.overflowed = true;
                self.start_approximate();
                self.step_integer(i);
            }
        }
    }

    fn add_real(&mut self, r: f64) {
        self.count += 1;
        if self.approximate {
            self.overflowed = false;
        } else {
            self.start_approximate();
        }
        self.step(r);
    }

    fn start_approximate(&mut self) {
        self.approximate = true;
        (self.real, self.error) = match self.integer {
            i if i <= -EXACT_IN_DOUBLE || i >= EXACT_IN_DOUBLE => {
                let small = i % 16384;
                ((i - small) as f64, small as f64)
            }
            i => (i as f64, 0.0),
        };
    }

    fn step_integer(&mut self, i: i64) {
        if i <= -EXACT_IN_DOUBLE || i >= EXACT_IN_DOUBLE {
            let small = i % 16384;
            self.step((i - small) as f64);
            self.step(small as f64);
        } else {
            self.step(i as f64);
        }
    }

    fn step(&mut self, r: f64) {
        let s = self.real;
        let t = s + r;
        self.error += if s.abs() > r.abs() {
            (s - t) + r
        } else {
            (r - t) + s
        };
        self.real = t;
    }

    /// The sum as SQLite returns it; an integer overflow is an error there too.
    pub fn total(&self) -> Result<Value> {
        if self.count == 0 {
            return Ok(Value::Null);
        }
        if !self.approximate {
            return Ok(Value::Integer(self.integer));
        }
        if self.overflowed {
            return Err(StoreError::Invalid(
                "integer overflow in a participants summary figure".into(),
            ));
        }
        Ok(Value::Real(match self.error.is_finite() {
            true => self.real + self.error,
            false => self.real,
        }))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rusqlite::Connection;

    use super::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            (-5_000_i64..5_000).prop_map(Value::Integer),
            prop_oneof![
                Just(i64::MAX),
                Just(i64::MIN),
                Just((1 << 53) + 1),
                Just(-(1 << 60) - 7)
            ]
            .prop_map(Value::Integer),
            prop_oneof![
                0.0..1.0_f64,
                -1e17..1e17_f64,
                Just(0.1),
                Just(1e308),
                Just(-1e308)
            ]
            .prop_map(Value::Real),
        ]
    }

    proptest! {
        /// [`Sum`] gives what SQLite's `sum()` gives over the same values in the same order,
        /// to the bit, and fails where it fails (an integer overflow not followed by a real).
        #[test]
        fn sums_as_sqlite_sums(values in prop::collection::vec(value(), 0..30)) {
            let conn = Connection::open_in_memory().unwrap();
            conn.execute_batch("CREATE TABLE t (x)").unwrap();
            let mut sum = Sum::default();
            for value in &values {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [value]).unwrap();
                sum.add(value.into()).unwrap();
            }
            let sqlite: rusqlite::Result<Value> =
                conn.query_row("SELECT sum(x) FROM t", [], |row| row.get(0));
            match (sqlite, sum.total()) {
                (Ok(Value::Real(a)), Ok(Value::Real(b))) => {
                    prop_assert_eq!(a.to_bits(), b.to_bits(), "{} against {}", a, b)
                }
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "SQLite {:?}, Sum {:?}", a, b),
            }
        }
    }

    #[test]
    fn text_is_not_summed() {
        assert!(Sum::default().add(ValueRef::Text(b"12")).is_err());
    }
}
