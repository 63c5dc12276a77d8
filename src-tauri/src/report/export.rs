//! CSV exports (the csv crate): attendees in the style of the Zoom and GoTo attendee reports,
//! registrants, no-shows, replay viewers, a webinar's timeline, and the webinar list.
//!
//! Files are RFC 4180 with CRLF line ends, optionally with a UTF-8 byte order mark so Excel
//! reads them as UTF-8. Every time column names the zone it is written in. Cells that a
//! spreadsheet would run as a formula (starting `=`, `+`, `-`, `@`, tab or carriage return) are
//! prefixed with `'`, which spreadsheets hide. Rows are written as they are read, so an export
//! of any size holds one row in memory.

use std::io::Write;

use rusqlite::Connection;

use super::attendance::{self, Audience, Participant};
use super::{timeline, webinars, ReportError, Result, Scope, Zone};

/// What to export.
#[derive(Debug, Clone)]
pub enum Export {
    People(Audience, Scope),
    Timeline(Scope),
    Webinars(webinars::Filter),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CsvOptions {
    /// Start with a UTF-8 byte order mark (for Excel).
    pub excel: bool,
}

impl Export {
    /// A file name for the export, e.g. `attendees-gotowebinar-8281234567890123456.csv`.
    pub fn file_name(&self) -> String {
        let slug = |scope: &Scope| {
            let mut name = scope.webinar.replace(':', "-");
            if let Some(session) = &scope.session {
                name.push('-');
                name.push_str(session);
            }
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        match self {
            Export::People(audience, scope) => {
                format!("{}-{}.csv", audience_name(*audience), slug(scope))
            }
            Export::Timeline(scope) => format!("timeline-{}.csv", slug(scope)),
            Export::Webinars(_) => "webinars.csv".to_owned(),
        }
    }
}

fn audience_name(audience: Audience) -> &'static str {
    match audience {
        Audience::Attendees => "attendees",
        Audience::Registrants => "registrants",
        Audience::NoShows => "no-shows",
        Audience::ReplayViewers => "replay-viewers",
        Audience::Staff => "hosts-and-speakers",
    }
}

/// Neutralizes a cell a spreadsheet would run as a formula.
pub fn safe_cell(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// Writes the export to `out`.
pub fn write_csv<W: Write>(
    conn: &Connection,
    export: &Export,
    zone: Zone,
    options: CsvOptions,
    mut out: W,
) -> Result<()> {
    if options.excel {
        out.write_all("\u{feff}".as_bytes())
            .map_err(|e| io_error(&e))?;
    }
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    match export {
        Export::People(Audience::ReplayViewers, scope) => {
            replay_viewers(conn, scope, zone, &mut csv)?
        }
        Export::People(audience, scope) => people(conn, *audience, scope, zone, &mut csv)?,
        Export::Timeline(scope) => timeline_rows(conn, scope, zone, &mut csv)?,
        Export::Webinars(filter) => webinar_rows(conn, filter, zone, &mut csv)?,
    }
    csv.flush().map_err(|e| io_error(&e))
}

fn io_error(error: &std::io::Error) -> ReportError {
    ReportError::Store(crate::store::StoreError::Unavailable(format!(
        "the export could not be written: {error}"
    )))
}

fn csv_error(error: csv::Error) -> ReportError {
    io_error(&std::io::Error::other(error))
}

/// Writes one record cell by cell: an export of 100,000 people writes millions of cells, and
/// copying each into a `String` first was a fifth of its time.
fn write_row<W: Write, I: IntoIterator<Item = S>, S: AsRef<str>>(
    csv: &mut csv::Writer<W>,
    cells: I,
) -> Result<()> {
    for cell in cells {
        csv.write_field(safe_cell(cell.as_ref()).as_bytes())
            .map_err(csv_error)?;
    }
    csv.write_record(None::<&[u8]>).map_err(csv_error)
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

fn minutes(secs: Option<u64>) -> String {
    secs.map(|s| format!("{:.1}", s as f64 / 60.0))
        .unwrap_or_default()
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "Yes"
    } else {
        "No"
    }
}

fn people<W: Write>(
    conn: &Connection,
    audience: Audience,
    scope: &Scope,
    zone: Zone,
    csv: &mut csv::Writer<W>,
) -> Result<()> {
    let platform = scope.platform().to_owned();
    // UTM fields sent as custom fields already have their own columns.
    let custom: Vec<String> = attendance::custom_field_names(conn, scope)?
        .into_iter()
        .filter(|name| {
            !["utm_source", "utm_medium", "utm_campaign"].contains(&name.to_lowercase().as_str())
        })
        .collect();
    let z = zone.name();
    let mut header: Vec<String> = [
        "Attended",
        "First Name",
        "Last Name",
        "Email",
        "Phone",
        "Organization",
        "Job Title",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    header.extend([
        format!("Registration Time ({z})"),
        format!("Join Time ({z})"),
        format!("Leave Time ({z})"),
        "Time in Session (minutes)".to_owned(),
        "Role".to_owned(),
        "Platform".to_owned(),
        "Source".to_owned(),
        "UTM Source".to_owned(),
        "UTM Medium".to_owned(),
        "UTM Campaign".to_owned(),
    ]);
    header.extend(custom.iter().cloned());
    write_row(csv, &header)?;
    attendance::each_participant(conn, scope, zone, |p: Participant| {
        if !audience.includes(&p) {
            return Ok(());
        }
        let time_in_session = minutes(p.time_in_session_secs);
        let row = [
            yes_no(p.attended),
            p.first_name
                .as_deref()
                .or(p.name.as_deref())
                .unwrap_or_default(),
            text(&p.last_name),
            text(&p.email),
            text(&p.phone),
            text(&p.organization),
            text(&p.job_title),
            text(&p.registered_at),
            text(&p.first_joined_at),
            text(&p.last_left_at),
            &time_in_session,
            p.role,
            &platform,
            p.source
                .as_deref()
                .or(p.referrer.as_deref())
                .unwrap_or_default(),
            text(&p.utm_source),
            text(&p.utm_medium),
            text(&p.utm_campaign),
        ];
        let custom_cells = custom
            .iter()
            .map(|name| p.custom_fields.get(name).map_or("", String::as_str));
        write_row(csv, row.into_iter().chain(custom_cells))
    })
}

fn replay_viewers<W: Write>(
    conn: &Connection,
    scope: &Scope,
    zone: Zone,
    csv: &mut csv::Writer<W>,
) -> Result<()> {
    let platform = scope.platform().to_owned();
    write_row(
        csv,
        [
            "First Name",
            "Last Name",
            "Email",
            "Registered",
            "Attended Live",
            "Replay Views",
            "Replay Minutes",
            "Platform",
        ],
    )?;
    attendance::each_participant(conn, scope, zone, |p| {
        if !Audience::ReplayViewers.includes(&p) {
            return Ok(());
        }
        write_row(
            csv,
            [
                p.first_name
                    .as_deref()
                    .or(p.name.as_deref())
                    .unwrap_or_default(),
                text(&p.last_name),
                text(&p.email),
                yes_no(p.registered),
                yes_no(p.attended),
                &p.replay_views.to_string(),
                &minutes(p.replay_secs),
                &platform,
            ],
        )
    })
}

fn timeline_rows<W: Write>(
    conn: &Connection,
    scope: &Scope,
    zone: Zone,
    csv: &mut csv::Writer<W>,
) -> Result<()> {
    let timeline = timeline::timeline(conn, scope, zone)?;
    write_row(
        csv,
        [
            format!("Time ({})", zone.name()),
            "Event".into(),
            "Session".into(),
            "Person".into(),
            "Time Known".into(),
            "Delivery".into(),
        ],
    )?;
    for entry in timeline.entries {
        let basis = match entry.basis.as_deref() {
            Some("exact") | None => "exact".to_owned(),
            Some("received_at") => "when received".to_owned(),
            Some(zone) => format!("assumed {zone}"),
        };
        write_row(
            csv,
            [
                entry.at.as_str(),
                entry.kind,
                text(&entry.session),
                text(&entry.person),
                &basis,
                &entry.delivery_id.to_string(),
            ],
        )?;
    }
    Ok(())
}

fn webinar_rows<W: Write>(
    conn: &Connection,
    filter: &webinars::Filter,
    zone: Zone,
    csv: &mut csv::Writer<W>,
) -> Result<()> {
    let z = zone.name();
    write_row(
        csv,
        [
            "Platform".to_owned(),
            "Webinar ID".into(),
            "Title".into(),
            "Status".into(),
            format!("Scheduled Start ({z})"),
            format!("Scheduled End ({z})"),
            format!("Started ({z})"),
            format!("Ended ({z})"),
            "Registered".into(),
            "Attended".into(),
            "Attendance Rate (%)".into(),
            "Replay Viewers".into(),
        ],
    )?;
    for line in webinars::list(conn, filter, zone)? {
        let w = &line.info;
        let status = serde_json::to_value(w.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        write_row(
            csv,
            [
                w.platform_name,
                &w.external_id,
                text(&w.title),
                &status,
                text(&w.scheduled_start),
                text(&w.scheduled_end),
                text(&w.started_at),
                text(&w.ended_at),
                &line.registered.to_string(),
                &line.attended.to_string(),
                &line
                    .attendance_rate
                    .map(|r| format!("{:.1}", r * 100.0))
                    .unwrap_or_default(),
                &line.replay_viewers.to_string(),
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(cell: &str) -> String {
        let mut out = Vec::new();
        {
            let mut csv = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(&mut out);
            write_row(&mut csv, [cell, "after"]).unwrap();
            csv.flush().unwrap();
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(out.as_slice());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(record.len(), 2, "the cell stayed one cell");
        assert_eq!(&record[1], "after");
        record[0].to_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text reads back as the same visible text (a spreadsheet hides the `'` guard) and
        /// never starts a formula.
        #[test]
        fn any_text_reads_back_as_written_and_never_as_a_formula(
            text in prop_oneof![
                any::<String>(),
                "[=+\\-@\t\r\n\",; a-zé漢🙂]{0,12}",
            ]
        ) {
            let read = round_trip(&text);
            let visible = read.strip_prefix('\'').filter(|_| read != text).unwrap_or(&read);
            prop_assert_eq!(visible, text.as_str());
            prop_assert!(!read.starts_with(['=', '+', '-', '@', '\t', '\r']), "{:?}", read);
        }
    }

    #[test]
    fn formula_prefixes_are_neutralized() {
        for dangerous in ["=SUM(A1)", "+1 555", "-2", "@cmd", "\tx", "\rx"] {
            assert!(safe_cell(dangerous).starts_with('\''), "{dangerous:?}");
        }
        assert_eq!(safe_cell("Zoë"), "Zoë");
        assert_eq!(safe_cell(""), "");
    }
}
