//! Reading the many ways platforms write times: RFC 3339 with or without fractions, epoch
//! seconds or milliseconds, wall-clock times with no zone (read in the source's zone and marked
//! as such), and UTC offsets written as `+05:30`.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::facts::Moment;

/// Epoch values above this are milliseconds: 10^11 seconds is the year 5138.
const EPOCH_MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// An unambiguous instant: RFC 3339 / ISO 8601 with a zone, or epoch seconds or milliseconds.
pub(crate) fn instant(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<i64>() {
        return epoch(n);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    // ISO 8601 forms RFC 3339 refuses: a space for the `T`, `+0000` offsets.
    [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ]
    .iter()
    .find_map(|format| DateTime::parse_from_str(raw, format).ok())
    .map(|t| t.with_timezone(&Utc))
}

/// Epoch seconds or milliseconds, told apart by magnitude. Zero and negatives are "unset".
pub(crate) fn epoch(n: i64) -> Option<DateTime<Utc>> {
    match n {
        n if n <= 0 => None,
        n if n >= EPOCH_MILLIS_THRESHOLD => DateTime::from_timestamp_millis(n),
        n => DateTime::from_timestamp(n, 0),
    }
}

/// A wall-clock time with no zone (`yyyy-mm-dd hh:mm`, optionally with seconds or a `T`).
pub(crate) fn naive(raw: &str) -> Option<NaiveDateTime> {
    let raw = raw.trim();
    [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
}

/// Reads `local` in `zone`. In the autumn overlap the earlier instant is taken; a time in the
/// spring gap (which no clock showed) is read as the instant just after the gap.
pub(crate) fn in_zone<Z: TimeZone>(local: NaiveDateTime, zone: &Z) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => {
            let later = local.checked_add_signed(chrono::Duration::hours(1))?;
            zone.from_local_datetime(&later)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        }
    }
}

/// An instant if the text carries a zone, otherwise the wall-clock time read in `zone` and
/// marked as assumed.
pub(crate) fn moment_in(raw: &str, zone: Tz) -> Option<Moment> {
    if let Some(at) = instant(raw) {
        return Some(Moment::exact(at));
    }
    let local = naive(raw)?;
    Some(Moment::assumed(in_zone(local, &zone)?, zone.name()))
}

/// A UTC offset written `+05:30`, `-0800`, `+5` or `Z`.
pub(crate) fn offset(raw: &str) -> Option<FixedOffset> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("z") || raw.eq_ignore_ascii_case("utc") {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match raw.as_bytes().first()? {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None if rest.len() == 4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        None => (rest.parse().ok()?, 0),
    };
    if !(0..=18).contains(&hours) || !(0..60).contains(&minutes) {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::TimeBasis;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn instants_in_every_form_seen() {
        assert_eq!(
            instant("2021-05-18T08:43:25.304Z"),
            Some(utc("2021-05-18T08:43:25.304Z"))
        );
        assert_eq!(
            instant("2023-01-01T09:00:00-05:00"),
            Some(utc("2023-01-01T14:00:00Z"))
        );
        assert_eq!(instant("1645459200"), Some(utc("2022-02-21T16:00:00Z")));
        assert_eq!(instant("1645459200000"), Some(utc("2022-02-21T16:00:00Z")));
        assert_eq!(
            instant("2020-08-20T18:00:00+0000"),
            Some(utc("2020-08-20T18:00:00Z"))
        );
        assert_eq!(instant("0"), None);
        assert_eq!(
            instant("2024-03-15 10:00"),
            None,
            "zone-less is not an instant"
        );
        assert_eq!(instant("soon"), None);
    }

    #[test]
    fn zone_less_times_are_read_in_the_source_zone_and_marked() {
        let m = moment_in("2024-07-01 09:30", chrono_tz::America::New_York).unwrap();
        assert_eq!(m.at, utc("2024-07-01T13:30:00Z"));
        assert_eq!(
            m.basis,
            TimeBasis::AssumedZone {
                zone: "America/New_York".into()
            }
        );
        let gap = moment_in("2024-03-10 02:30", chrono_tz::America::New_York).unwrap();
        assert_eq!(gap.at, utc("2024-03-10T07:30:00Z"));
        let overlap = moment_in("2024-11-03 01:30", chrono_tz::America::New_York).unwrap();
        assert_eq!(overlap.at, utc("2024-11-03T05:30:00Z"));
    }

    #[test]
    fn offsets() {
        assert_eq!(offset("+05:30").unwrap().local_minus_utc(), 19800);
        assert_eq!(offset("-0800").unwrap().local_minus_utc(), -28800);
        assert_eq!(offset("+5").unwrap().local_minus_utc(), 18000);
        assert_eq!(offset("Z").unwrap().local_minus_utc(), 0);
        assert!(offset("Asia/Kolkata").is_none());
        assert!(offset("+25:00").is_none());
    }
}
