//! The command line (clap): the default command (desktop window when there is a display,
//! otherwise the headless server), `serve`, `sources`, `import`, `reindex` and `deliveries`.
//! Errors end here, printed with their causes; nothing below returns `anyhow`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use bytes::Bytes;
use chrono::Utc;
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};
use rusqlite::TransactionBehavior;

/// A line on stdout. A receiver outlives the terminal or pipe it was started with (the program
/// that started it going away), and `rollcall deliveries | head` closes the pipe early; what
/// goes to stdout is only information, so a line that cannot be written is dropped, where
/// `println!` would panic (in the middle of a receiver's graceful stop, among other places).
macro_rules! say {
    ($($line:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($line)*);
    }};
}

use crate::facts::Platform;
use crate::hookup;
use crate::http::ingest::DEFAULT_BODY_LIMIT;
use crate::http::listener::ConnectionLimits;
use crate::server::{ServeOptions, Server};
use crate::signature::ReplayWindow;
use crate::store::journal::{self, DeliveryFilter, NewDelivery, Prepared, Status, Via};
use crate::store::sources::{self, Source};
use crate::store::{database_path, open_read_only, open_writer, ReadPool, StoreOptions};
use crate::subscriptions::{PlatformApis, SubscriptionOptions};
use crate::tunnel::{ProviderKind, TunnelConfig, TunnelReport, TunnelStatus};

#[derive(Debug, Parser)]
#[command(
    name = "rollcall",
    version,
    about = "Attendance dashboard for webinar organizers"
)]
pub struct Cli {
    /// Where Rollcall keeps its database [default: the platform's app-data directory]
    #[arg(long, global = true, env = "ROLLCALL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Receiver settings for the default command (desktop, or headless without a display)
    #[command(flatten)]
    receiver: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run headless: receive webhooks and print where
    Serve(ServeArgs),
    /// Add, list, rotate or remove webhook sources
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Journal payload files as deliveries (backfill, tests)
    Import(ImportArgs),
    /// Rebuild every report table from the journal
    Reindex,
    /// List recent deliveries with their status
    Deliveries(DeliveriesArgs),
    /// Write a CSV export (attendees, registrants, no-shows, replay-viewers, timeline, webinars)
    Export(ExportArgs),
    /// Write a consistent copy of the database to FILE, also while webhooks keep arriving
    Backup {
        /// The new file (an existing file is never overwritten)
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the webhook listener binds to (point the tunnel here)
    #[arg(long, env = "ROLLCALL_INGEST_BIND", default_value = "127.0.0.1:8787")]
    pub ingest_bind: SocketAddr,
    /// Address of the dashboard (loopback only; never point a tunnel here)
    #[arg(
        long,
        env = "ROLLCALL_DASHBOARD_BIND",
        default_value = "127.0.0.1:8788"
    )]
    pub dashboard_bind: SocketAddr,
    /// Largest webhook body accepted, in bytes
    #[arg(long, default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Seconds a sender may take to send a webhook's body
    #[arg(long, default_value_t = 60)]
    pub body_timeout_secs: u64,
    /// Seconds a sender may take to send a request's headers (slow senders are cut off)
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a GoTo signature's timestamp may be off the receipt time before the delivery
    /// is refused as a replay (0: no limit)
    #[arg(long, default_value_t = ReplayWindow::DEFAULT_SECS)]
    pub replay_window_secs: u64,
    /// The public URL the platforms reach this receiver at (your tunnel's URL)
    #[arg(long, env = "ROLLCALL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Start a tunnel to the webhook listener and use its public URL
    #[arg(long, value_enum, env = "ROLLCALL_TUNNEL")]
    pub tunnel: Option<ProviderKind>,
    /// Run this tunnel program instead of the usual one (a path, or a name on PATH)
    #[arg(long, requires = "tunnel")]
    pub tunnel_program: Option<PathBuf>,
    /// For --tunnel custom: the command to run; {port} is the webhook listener's port
    #[arg(long, requires = "tunnel")]
    pub tunnel_command: Option<String>,
    /// For --tunnel custom: a regex matching the public URL in the command's output
    #[arg(long, requires = "tunnel")]
    pub tunnel_url_pattern: Option<String>,
    /// For --tunnel ngrok: your static domain (e.g. rollcall.ngrok.app), so the URL never changes
    #[arg(long, requires = "tunnel")]
    pub ngrok_domain: Option<String>,
    /// Keep platform API keys in a file only you can read, never in the system keychain
    #[arg(long, env = "ROLLCALL_NO_KEYCHAIN")]
    pub no_keychain: bool,
    /// TagMango API base URL (tests point it at a fake)
    #[arg(long, env = "ROLLCALL_TAGMANGO_API", hide = true)]
    pub tagmango_api: Option<String>,
    /// Livestorm API base URL (tests point it at a fake)
    #[arg(long, env = "ROLLCALL_LIVESTORM_API", hide = true)]
    pub livestorm_api: Option<String>,
    /// GoTo Webinar API base URL (tests point it at a fake)
    #[arg(long, env = "ROLLCALL_GOTOWEBINAR_API", hide = true)]
    pub gotowebinar_api: Option<String>,
}

impl ServeArgs {
    fn subscription_options(&self) -> SubscriptionOptions {
        let defaults = PlatformApis::default();
        SubscriptionOptions {
            apis: PlatformApis {
                tagmango: self.tagmango_api.clone().unwrap_or(defaults.tagmango),
                livestorm: self.livestorm_api.clone().unwrap_or(defaults.livestorm),
                gotowebinar: self.gotowebinar_api.clone().unwrap_or(defaults.gotowebinar),
            },
            use_keychain: !self.no_keychain,
        }
    }
}

#[derive(Debug, Args)]
struct PublicUrl {
    /// The public URL the platforms reach the receiver at (your tunnel's URL)
    #[arg(
        long,
        env = "ROLLCALL_PUBLIC_URL",
        default_value = "http://127.0.0.1:8787"
    )]
    public_url: String,
}

#[derive(Debug, Subcommand)]
enum SourcesCommand {
    /// Add a source and print its webhook URLs
    Add {
        /// bigmarker, tagmango, livestorm or gotowebinar
        platform: Platform,
        /// A name for this source, unique among sources
        label: String,
        /// IANA zone for times the platform sends without one [default: this machine's]
        #[arg(long)]
        time_zone: Option<String>,
        /// A GoTo Webinar secret key (repeat for several); signed deliveries must match one
        #[arg(long = "secret-key")]
        secret_keys: Vec<String>,
        #[command(flatten)]
        public: PublicUrl,
    },
    /// List sources and their webhook URLs
    List {
        #[command(flatten)]
        public: PublicUrl,
    },
    /// Give a source a new token: the old URLs stop working at once
    Rotate {
        /// The source's label or id
        source: String,
        #[command(flatten)]
        public: PublicUrl,
    },
    /// Remove a source: its URLs stop working; its deliveries are kept
    Remove {
        /// The source's label or id
        source: String,
    },
    /// Add a GoTo Webinar secret key to a source
    AddKey { source: String, key: String },
    /// Remove a GoTo Webinar secret key from a source
    RemoveKey { source: String, key: String },
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// bigmarker, tagmango, livestorm or gotowebinar
    platform: Platform,
    /// Payload files; a name like `webinar.completed.all@anything.json` sets the trigger
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The event the files are (TagMango event, Livestorm native trigger, BigMarker hook)
    #[arg(long)]
    trigger: Option<String>,
    /// Attribute the deliveries to this source (label or id); its zone is used
    #[arg(long)]
    source: Option<String>,
    /// IANA zone for times sent without one [default: the source's, else this machine's]
    #[arg(long)]
    time_zone: Option<String>,
    /// When the deliveries were originally received (RFC 3339) [default: now]; payloads that
    /// carry no time of their own (a BigMarker "attendee enters") are placed at this time
    #[arg(long)]
    received_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// attendees, registrants, no-shows, replay-viewers, staff, timeline or webinars
    kind: String,
    /// The webinar (as `platform:id`, e.g. gotowebinar:8281234567890123456)
    #[arg(long)]
    webinar: Option<String>,
    /// One session of the webinar (the platform's session id)
    #[arg(long)]
    session: Option<String>,
    /// IANA zone the times are written in [default: this machine's]
    #[arg(long)]
    time_zone: Option<String>,
    /// Start the file with a UTF-8 byte order mark, for Excel
    #[arg(long)]
    excel: bool,
    /// Write here instead of standard output
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DeliveriesArgs {
    /// projected, duplicate, quarantined or ignored
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    platform: Option<Platform>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

/// Runs the command line and turns any error into a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = data_dir(cli.data_dir)?;
    match cli.command {
        None => default_command(&data_dir, &cli.receiver),
        Some(Command::Serve(args)) => serve(&data_dir, &args),
        Some(Command::Sources(command)) => sources_command(&data_dir, command),
        Some(Command::Import(args)) => import(&data_dir, &args),
        Some(Command::Reindex) => reindex(&data_dir),
        Some(Command::Deliveries(args)) => deliveries(&data_dir, &args),
        Some(Command::Export(args)) => export(&data_dir, &args),
        Some(Command::Backup { file }) => backup(&data_dir, &file),
    }
}

fn data_dir(chosen: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match chosen {
        Some(dir) => Ok(dir),
        None => dirs::data_dir()
            .map(|dir| dir.join("rollcall"))
            .context("this machine has no app-data directory; pass --data-dir"),
    }
}

/// The desktop window when built with it and a display exists; otherwise the headless server.
fn default_command(data_dir: &Path, receiver: &ServeArgs) -> anyhow::Result<()> {
    #[cfg(feature = "desktop")]
    if has_display() {
        return crate::desktop::run(data_dir, receiver);
    }
    eprintln!("No display found: running headless (`rollcall serve`).");
    serve(data_dir, receiver)
}

#[cfg(feature = "desktop")]
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
        || cfg!(any(target_os = "macos", target_os = "windows"))
}

pub fn serve_options(data_dir: &Path, args: &ServeArgs) -> anyhow::Result<ServeOptions> {
    let tunnel = args
        .tunnel
        .map(|kind| {
            TunnelConfig::new(
                kind,
                args.tunnel_program.clone(),
                args.tunnel_command.clone(),
                args.tunnel_url_pattern.as_deref(),
                args.ngrok_domain.clone(),
            )
        })
        .transpose()?;
    Ok(ServeOptions {
        data_dir: data_dir.to_owned(),
        ingest_bind: args.ingest_bind,
        dashboard_bind: args.dashboard_bind,
        body_limit: args.body_limit,
        body_timeout: std::time::Duration::from_secs(args.body_timeout_secs),
        connection_limits: ConnectionLimits {
            header_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
            ..ConnectionLimits::default()
        },
        replay_window: ReplayWindow::from_secs(args.replay_window_secs),
        public_url: args.public_url.clone(),
        tunnel,
        store: StoreOptions::default(),
        subscriptions: args.subscription_options(),
    })
}

fn serve(data_dir: &Path, args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("could not start the async runtime")?;
    runtime.block_on(async {
        let stop = stop_requested();
        let server = Server::start(&serve_options(data_dir, args)?).await?;
        let addr = server.ingest_addr();
        let public = server.public_url().current();
        say!("Rollcall is receiving webhooks on http://{addr}/hooks/<platform>/<token>");
        if let Some(login) = server.dashboard_access().login_url() {
            say!("Dashboard: {login}");
        }
        say!("Data directory: {}", data_dir.display());
        let listed = server.reads().with(sources::list)?;
        if args.tunnel.is_some() {
            say!("Starting the tunnel; the sources' URLs follow once it is up.");
            tokio::spawn(print_tunnel(
                server.public_url().subscribe(),
                server.reads().clone(),
            ));
        } else {
            print_sources(&public, &listed);
        }
        stop.await;
        say!("Stopping: answering in-flight deliveries...");
        server.stop().await;
        anyhow::Ok(())
    })
}

/// Prints the tunnel's changes as they happen: its URL with every source's hook URLs, loudly
/// when the URL differs from last time, and how to install a missing program.
async fn print_tunnel(mut tunnel: tokio::sync::watch::Receiver<TunnelReport>, reads: ReadPool) {
    let mut shown = None;
    loop {
        let report = tunnel.borrow_and_update().clone();
        let status = std::mem::discriminant(&report.status);
        if shown != Some((status, report.url.clone())) {
            shown = Some((status, report.url.clone()));
            print_tunnel_status(&report, &reads);
        }
        if tunnel.changed().await.is_err() {
            return;
        }
    }
}

fn print_tunnel_status(report: &TunnelReport, reads: &ReadPool) {
    match &report.status {
        TunnelStatus::Up { url } => {
            say!("\nTunnel up: {url} (pointing at this receiver's webhook listener)");
            if let Some(previous) = report.previous_url.as_deref().filter(|_| report.changed) {
                let rule = "!".repeat(78);
                say!("\n{rule}\nTHE PUBLIC URL CHANGED: it was {previous}\nRe-point EVERY platform below to its new URLs, or their webhooks will be lost.\n{rule}");
            }
            match reads.with(sources::list) {
                Ok(listed) => print_sources(url, &listed),
                Err(error) => tracing::warn!(%error, "could not list the sources"),
            }
        }
        TunnelStatus::NotInstalled {
            program,
            how_to_install,
        } => say!("\nThe tunnel program {program} is not installed. {how_to_install}"),
        TunnelStatus::Down {
            reason,
            retry_in_secs,
        } => say!("\nTunnel down: {reason}; retrying in {retry_in_secs} s"),
        TunnelStatus::Starting | TunnelStatus::Off => {}
    }
}

/// Completes on SIGTERM or Ctrl-C. On Unix the handlers are installed when it is called, not
/// when it is first awaited: called before the receiver starts, a signal that arrives while it
/// starts or announces itself stops it gracefully, where the default action would kill it
/// mid-request. Elsewhere Ctrl-C is listened for from the first await.
fn stop_requested() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut interrupt)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            return Box::pin(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            });
        }
    }
    Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn print_sources(public: &str, listed: &[Source]) {
    if listed.is_empty() {
        say!("No sources yet: add one with `rollcall sources add <platform> <label>`.");
    }
    for source in listed {
        print_source(public, source);
    }
}

fn print_source(public: &str, source: &Source) {
    say!(
        "\n[{}] {} ({}), times without a zone read in {}{}",
        source.id,
        source.label,
        source.platform.display_name(),
        source.time_zone,
        match source.secret_keys.len() {
            0 => String::new(),
            n => format!(", {n} secret key(s): signatures required"),
        }
    );
    for hook in hookup::hook_urls(public, source) {
        say!("  {:<38} {}", hook.hook, hook.url);
    }
}

fn machine_zone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Tz::UTC)
}

fn parse_zone(name: Option<&str>) -> anyhow::Result<Option<Tz>> {
    name.map(|name| {
        name.parse::<Tz>().map_err(|_| {
            anyhow::anyhow!("unknown time zone {name:?}: use an IANA name such as Europe/Paris")
        })
    })
    .transpose()
}

fn find_source(conn: &rusqlite::Connection, label_or_id: &str) -> anyhow::Result<Source> {
    sources::find(conn, label_or_id)?
        .with_context(|| format!("no source {label_or_id:?}: `rollcall sources list` shows them"))
}

fn sources_command(data_dir: &Path, command: SourcesCommand) -> anyhow::Result<()> {
    let conn = open_writer(&database_path(data_dir), &StoreOptions::default())?;
    match command {
        SourcesCommand::Add {
            platform,
            label,
            time_zone,
            secret_keys,
            public,
        } => {
            if !secret_keys.is_empty() && platform != Platform::Gotowebinar {
                bail!("only GoTo Webinar signs its deliveries; --secret-key is for gotowebinar sources");
            }
            let zone = parse_zone(time_zone.as_deref())?.unwrap_or_else(machine_zone);
            let source = sources::add(&conn, platform, &label, zone, &secret_keys)?;
            say!(
                "Added source {:?}. Paste these URLs into {}:",
                source.label,
                platform.display_name()
            );
            print_source(&public.public_url, &source);
        }
        SourcesCommand::List { public } => {
            print_sources(&public.public_url, &sources::list(&conn)?)
        }
        SourcesCommand::Rotate { source, public } => {
            let source = sources::rotate(&conn, find_source(&conn, &source)?.id)?;
            say!(
                "New token for {:?}; the old URLs no longer work. Update the platform:",
                source.label
            );
            print_source(&public.public_url, &source);
        }
        SourcesCommand::Remove { source } => {
            let source = find_source(&conn, &source)?;
            sources::remove(&conn, source.id)?;
            say!(
                "Removed source {:?}; its deliveries stay in the journal.",
                source.label
            );
        }
        SourcesCommand::AddKey { source, key } => {
            let source = find_source(&conn, &source)?;
            if source.platform != Platform::Gotowebinar {
                bail!("only GoTo Webinar signs its deliveries");
            }
            sources::add_secret_key(&conn, source.id, &key)?;
            say!(
                "Added a secret key to {:?}: deliveries must now be signed.",
                source.label
            );
        }
        SourcesCommand::RemoveKey { source, key } => {
            let source = find_source(&conn, &source)?;
            if !sources::remove_secret_key(&conn, source.id, &key)? {
                bail!("{:?} has no such secret key", source.label);
            }
            say!("Removed the secret key from {:?}.", source.label);
        }
    }
    Ok(())
}

/// The trigger a file name carries: `TRIGGER@anything.json`.
fn trigger_from_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    stem.split_once('@').map(|(trigger, _)| trigger.to_owned())
}

fn content_type_for(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("form") => "application/x-www-form-urlencoded",
        _ => "application/json",
    }
}

fn import(data_dir: &Path, args: &ImportArgs) -> anyhow::Result<()> {
    let mut conn = open_writer(&database_path(data_dir), &StoreOptions::default())?;
    let source = args
        .source
        .as_deref()
        .map(|s| find_source(&conn, s))
        .transpose()?;
    if let Some(source) = source.as_ref().filter(|s| s.platform != args.platform) {
        bail!(
            "source {:?} is a {} source, not {}",
            source.label,
            source.platform,
            args.platform
        );
    }
    let zone = parse_zone(args.time_zone.as_deref())?
        .or(source.as_ref().map(Source::zone))
        .unwrap_or_else(machine_zone);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::new();
    for path in &args.files {
        let body =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let delivery = NewDelivery {
            platform: args.platform,
            source_id: source.as_ref().map(|s| s.id),
            trigger: args.trigger.clone().or_else(|| trigger_from_name(path)),
            received_at: args
                .received_at
                .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
            via: Via::Import,
            content_type: Some(content_type_for(path).to_owned()),
            headers: Default::default(),
            body: Bytes::from(body),
            time_zone: zone,
        };
        let receipt = journal::record(&tx, &Prepared::new(delivery))?;
        outcomes.push((path, receipt));
    }
    tx.commit()?;
    for (path, receipt) in outcomes {
        say!(
            "{}: delivery {} {}",
            path.display(),
            receipt.delivery,
            receipt.status.as_str()
        );
    }
    Ok(())
}

fn reindex(data_dir: &Path) -> anyhow::Result<()> {
    // The store file is rebuilt beside the old one and swapped in: nothing may write the old
    // one meanwhile, or its changes would be lost with it.
    let mut lock = match crate::server::DataDirLock::take(data_dir) {
        Err(crate::server::ServerError::AlreadyRunning { running, .. }) => bail!(
            "Rollcall is running on {} ({running}): stop it first, since reindex rebuilds the \
             store it uses",
            data_dir.display()
        ),
        taken => taken?,
    };
    lock.describe(&format!("reindexing, process {}", std::process::id()));
    let report = crate::store::rebuild::reindex(data_dir, &StoreOptions::default())?;
    say!(
        "Reindexed: {} projected, {} quarantined, {} ignored.",
        report.projected,
        report.quarantined,
        report.ignored
    );
    Ok(())
}

fn deliveries(data_dir: &Path, args: &DeliveriesArgs) -> anyhow::Result<()> {
    let path = database_path(data_dir);
    if !path.exists() {
        bail!("no Rollcall database in {}", data_dir.display());
    }
    let status = args
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).with_context(|| {
                format!("unknown status {s:?}: projected, duplicate, quarantined or ignored")
            })
        })
        .transpose()?;
    let conn = open_read_only(&path, &StoreOptions::default())?;
    let filter = DeliveryFilter {
        status,
        platform: args.platform,
        limit: args.limit,
        ..DeliveryFilter::default()
    };
    let listed = journal::list(&conn, &filter)?;
    if listed.is_empty() {
        say!("No deliveries yet.");
    }
    for d in listed {
        let trigger = d
            .trigger
            .as_deref()
            .map(|t| format!("/{t}"))
            .unwrap_or_default();
        say!(
            "{:>6}  {}  {:<11} {:<12} {:>9} B  {}{}",
            d.id,
            d.received_at,
            d.platform,
            d.status.as_str(),
            d.body_bytes,
            d.via,
            trigger
        );
        if let Some(detail) = d.detail {
            say!("        {detail}");
        }
    }
    Ok(())
}

fn export(data_dir: &Path, args: &ExportArgs) -> anyhow::Result<()> {
    use crate::report::export::{write_csv, CsvOptions, Export};
    use crate::report::{attendance::Audience, webinars, Scope, Zone};
    let zone = Zone::parse(args.time_zone.as_deref())?;
    let export = match args.kind.as_str() {
        "webinars" => Export::Webinars(webinars::Filter::default()),
        kind => {
            let webinar = args
                .webinar
                .clone()
                .context("--webinar is required for this export")?;
            let scope = Scope {
                webinar,
                session: args.session.clone(),
            };
            if kind == "timeline" {
                Export::Timeline(scope)
            } else {
                let audience: Audience = crate::report::parse_word(kind).with_context(|| {
                    format!("unknown export {kind:?}: attendees, registrants, no-shows, replay-viewers, staff, timeline or webinars")
                })?;
                Export::People(audience, scope)
            }
        }
    };
    let path = database_path(data_dir);
    if !path.exists() {
        bail!("no Rollcall database in {}", data_dir.display());
    }
    let conn = open_read_only(&path, &StoreOptions::default())?;
    let options = CsvOptions { excel: args.excel };
    match &args.output {
        Some(file) => {
            let out = std::fs::File::create(file)
                .with_context(|| format!("could not create {}", file.display()))?;
            write_csv(&conn, &export, zone, options, std::io::BufWriter::new(out))?;
            eprintln!("Wrote {} (times in {}).", file.display(), zone.name());
        }
        None => write_csv(&conn, &export, zone, options, std::io::stdout().lock())?,
    }
    Ok(())
}

/// `VACUUM INTO` copies the database as one read transaction sees it: consistent, without
/// stopping the writer.
fn backup(data_dir: &Path, file: &Path) -> anyhow::Result<()> {
    let path = database_path(data_dir);
    let backup = crate::store::backup::backup(&path, file)?;
    say!(
        "Backed up {} deliveries to {}.",
        backup.deliveries,
        backup.file
    );
    say!(
        "To restore: stop Rollcall, then copy it to {} (or start with --data-dir on a folder \
         holding it as {}).",
        path.display(),
        crate::store::DATABASE_FILE
    );
    let conn = crate::store::open_read_only(&path, &crate::store::StoreOptions::default())?;
    let waiting = crate::store::receipts::unimported(&conn, &path)?;
    if waiting > 0 {
        eprintln!(
            "{waiting} deliveries acknowledged in a burst are still only in the receipt log \
             (Rollcall journals them moments after the burst, or when it next starts): this \
             backup does not hold them."
        );
    }
    Ok(())
}
