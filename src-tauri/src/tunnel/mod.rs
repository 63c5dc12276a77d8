//! Tunnels: a program (cloudflared, ngrok, localtunnel, ssh to localhost.run, or the
//! organizer's own command) that gives the ingest listener a public URL the platforms can
//! reach. This module owns the providers' command lines, reading the public URL from their
//! output or local API, the status the UI shows, and restarting a tunnel that dies.
//!
//! It must not depend on Tauri: the supervisor runs children through a [`Spawner`], which the
//! headless build implements with `tokio::process` ([`process`]) and the desktop app with
//! tauri-plugin-shell (`desktop` feature, [`shell`]). Both feed the same parsers. A tunnel
//! always points at the ingest listener, never at the dashboard.

pub mod cloudflared;
pub mod custom;
pub mod localtunnel;
pub mod ngrok;
pub mod process;
#[cfg(feature = "desktop")]
pub mod shell;
pub mod ssh;
pub mod supervisor;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use supervisor::{Tunnel, TunnelControl, UrlMemory};

/// The kinds of tunnel Rollcall can run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS, clap::ValueEnum,
)]
#[ts(export, rename = "TunnelProvider")]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Cloudflare quick tunnel (`cloudflared tunnel --url`): free, no account, new URL each start
    Cloudflared,
    /// ngrok v3 (an account and authtoken; a static domain keeps the URL)
    Ngrok,
    /// localtunnel (`lt`, from npm)
    Localtunnel,
    /// ssh reverse tunnel to localhost.run (no install beyond ssh)
    Ssh,
    /// Your own command, with a pattern that finds the URL in its output
    Custom,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Cloudflared => "cloudflared",
            ProviderKind::Ngrok => "ngrok",
            ProviderKind::Localtunnel => "localtunnel",
            ProviderKind::Ssh => "ssh",
            ProviderKind::Custom => "custom",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("--tunnel custom needs --tunnel-command (the command to run)")]
    MissingCommand,
    #[error("--tunnel custom needs --tunnel-url-pattern (a regex matching the public URL)")]
    MissingPattern,
    #[error("--tunnel-url-pattern is not a valid regex: {0}")]
    BadPattern(#[from] regex::Error),
    #[error(
        "--tunnel-program does not apply to --tunnel custom: name the program in --tunnel-command"
    )]
    ProgramWithCustom,
    #[error("--ngrok-domain {0:?} is not a domain name (give it without https://)")]
    BadDomain(String),
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} is not installed")]
    NotFound { program: String },
}

/// What the organizer chose: which tunnel, and how to run it.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    pub kind: ProviderKind,
    /// Runs this binary instead of the provider's usual one (a sidecar, a path, a test fake).
    pub program: Option<PathBuf>,
    /// For `custom`: the shell command; `{port}` is replaced by the ingest listener's port.
    pub command: Option<String>,
    /// For `custom`: finds the public URL in the command's output (the first capture group if
    /// it has one, otherwise the whole match).
    pub url_pattern: Option<regex::Regex>,
    /// For ngrok: a static domain (`example.ngrok.app`), so the URL survives restarts.
    pub ngrok_domain: Option<String>,
}

impl TunnelConfig {
    /// Checks the options a provider needs, with messages naming the flag to fix.
    pub fn new(
        kind: ProviderKind,
        program: Option<PathBuf>,
        command: Option<String>,
        url_pattern: Option<&str>,
        ngrok_domain: Option<String>,
    ) -> Result<TunnelConfig, TunnelError> {
        let url_pattern = url_pattern.map(regex::Regex::new).transpose()?;
        if kind == ProviderKind::Custom {
            if command.as_deref().is_none_or(|c| c.trim().is_empty()) {
                return Err(TunnelError::MissingCommand);
            }
            if url_pattern.is_none() {
                return Err(TunnelError::MissingPattern);
            }
            if program.is_some() {
                return Err(TunnelError::ProgramWithCustom);
            }
        }
        if let Some(domain) = &ngrok_domain {
            let valid = !domain.is_empty()
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !valid {
                return Err(TunnelError::BadDomain(domain.clone()));
            }
        }
        Ok(TunnelConfig {
            kind,
            program,
            command,
            url_pattern,
            ngrok_domain,
        })
    }

    /// The provider this configuration describes.
    pub fn provider(&self) -> Box<dyn Provider> {
        match self.kind {
            ProviderKind::Cloudflared => Box::new(cloudflared::Cloudflared),
            ProviderKind::Ngrok => Box::new(ngrok::Ngrok {
                domain: self.ngrok_domain.clone(),
            }),
            ProviderKind::Localtunnel => Box::new(localtunnel::Localtunnel),
            ProviderKind::Ssh => Box::new(ssh::LocalhostRun),
            ProviderKind::Custom => Box::new(custom::Custom {
                command: self.command.clone().unwrap_or_default(),
                pattern: self
                    .url_pattern
                    .clone()
                    .unwrap_or_else(|| regex::Regex::new("https://\\S+").expect("valid")),
            }),
        }
    }
}

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: String,
    pub args: Vec<String>,
}

/// What one line of a tunnel program's output says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// The public URL.
    Url(String),
    /// An error worth showing if the program then dies.
    Problem(String),
}

/// A local HTTP endpoint that tells the public URL (cloudflared's metrics, ngrok's agent API),
/// asked before trusting a URL read from the output.
pub struct Probe {
    pub url: String,
    pub read: Box<ReadProbe>,
}

/// Reads the public URL from a probe's answer, if it has one yet.
pub type ReadProbe = dyn Fn(&str) -> Option<String> + Send + Sync;

/// How to start a tunnel once.
pub struct Launch {
    pub command: CommandLine,
    pub probe: Option<Probe>,
}

/// One kind of tunnel: how to run it towards the ingest listener and how to read its output.
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    fn launch(&self, target: SocketAddr) -> Launch;
    fn read_line(&self, line: &str) -> Option<Said>;
    fn how_to_install(&self) -> &'static str;
}

/// Status of the tunnel, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TunnelStatus {
    /// No tunnel was asked for.
    Off,
    NotInstalled {
        program: String,
        how_to_install: String,
    },
    Starting,
    Up {
        url: String,
    },
    Down {
        reason: String,
        /// Seconds until the next attempt.
        retry_in_secs: u64,
    },
}

/// The tunnel as the dashboard and the headless printout see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct TunnelReport {
    pub provider: Option<ProviderKind>,
    pub status: TunnelStatus,
    /// The public URL (the last one known while the tunnel is down).
    pub url: Option<String>,
    /// The URL this provider had before, when it changed.
    pub previous_url: Option<String>,
    /// The URL differs from the one last remembered for this provider: every platform must
    /// be re-pointed.
    pub changed: bool,
    /// The running tunnel program's process id.
    pub pid: Option<u32>,
    /// How many times the program has been started in this launch.
    pub starts: u32,
    /// The program's last lines of output.
    pub output: Vec<String>,
}

impl TunnelReport {
    pub fn off() -> TunnelReport {
        TunnelReport {
            provider: None,
            status: TunnelStatus::Off,
            url: None,
            previous_url: None,
            changed: false,
            pid: None,
            starts: 0,
            output: Vec::new(),
        }
    }

    /// The public URL while the tunnel is up.
    pub fn live_url(&self) -> Option<&str> {
        match &self.status {
            TunnelStatus::Up { url } => Some(url),
            _ => None,
        }
    }
}

/// Where platforms should send webhooks right now: the tunnel's URL while it is up, otherwise
/// the `--public-url` given, otherwise the ingest listener's own address. Cheap to clone; the
/// dashboard's handlers read it on every request, and [`PublicUrl::subscribe`] tells whoever
/// must re-point something (platform subscriptions) when the tunnel's URL changes.
#[derive(Clone)]
pub struct PublicUrl {
    fallback: String,
    tunnel: watch::Receiver<TunnelReport>,
}

impl PublicUrl {
    pub fn new(fallback: String, tunnel: watch::Receiver<TunnelReport>) -> PublicUrl {
        PublicUrl { fallback, tunnel }
    }

    /// A fixed URL, with no tunnel.
    pub fn fixed(url: String) -> PublicUrl {
        let (_, tunnel) = watch::channel(TunnelReport::off());
        PublicUrl::new(url, tunnel)
    }

    /// The base of every hook URL at this moment.
    pub fn current(&self) -> String {
        let report = self.tunnel.borrow();
        report
            .live_url()
            .map_or_else(|| self.fallback.clone(), str::to_owned)
    }

    /// Whether [`PublicUrl::current`] is the tunnel's.
    pub fn through_tunnel(&self) -> bool {
        self.tunnel.borrow().live_url().is_some()
    }

    pub fn tunnel(&self) -> TunnelReport {
        self.tunnel.borrow().clone()
    }

    /// Changes of the tunnel's status and URL.
    pub fn subscribe(&self) -> watch::Receiver<TunnelReport> {
        self.tunnel.clone()
    }
}

/// Whether `program` can be run: a path that exists, or a name found on PATH.
pub fn installed(program: &str) -> bool {
    let path = Path::new(program);
    if path.components().count() > 1 {
        return path.is_file();
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file() || cfg!(windows) && candidate.with_extension("exe").is_file()
        })
    })
}

/// The scheme for a host a tunnel reports: https, except for a loopback address, which only a
/// local stand-in (a test's fake tunnel) reports and which speaks plain http.
pub fn url_for_host(host: &str) -> String {
    let loopback = ["127.", "localhost:", "localhost", "[::1]"]
        .iter()
        .any(|prefix| host.starts_with(prefix));
    if loopback {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_needs_a_command_and_a_valid_pattern() {
        let custom = |command: Option<&str>, pattern: Option<&str>| {
            TunnelConfig::new(
                ProviderKind::Custom,
                None,
                command.map(str::to_owned),
                pattern,
                None,
            )
        };
        assert!(matches!(
            custom(None, Some("x")),
            Err(TunnelError::MissingCommand)
        ));
        assert!(matches!(
            custom(Some("bore"), None),
            Err(TunnelError::MissingPattern)
        ));
        let bad = custom(Some("bore"), Some("(")).unwrap_err().to_string();
        assert!(bad.contains("--tunnel-url-pattern"), "{bad}");
        assert!(custom(Some("bore"), Some("https://\\S+")).is_ok());
        let with_program = TunnelConfig::new(
            ProviderKind::Custom,
            Some("bore".into()),
            Some("bore local {port}".into()),
            Some("x"),
            None,
        );
        assert!(matches!(with_program, Err(TunnelError::ProgramWithCustom)));
    }

    #[test]
    fn an_ngrok_domain_is_a_bare_domain() {
        let domain =
            |d: &str| TunnelConfig::new(ProviderKind::Ngrok, None, None, None, Some(d.to_owned()));
        assert!(domain("rollcall.ngrok.app").is_ok());
        assert!(matches!(
            domain("https://rollcall.ngrok.app"),
            Err(TunnelError::BadDomain(_))
        ));
    }

    #[test]
    fn loopback_hosts_are_http_and_everything_else_https() {
        assert_eq!(url_for_host("127.0.0.1:4100"), "http://127.0.0.1:4100");
        assert_eq!(
            url_for_host("seasonal-deck.trycloudflare.com"),
            "https://seasonal-deck.trycloudflare.com"
        );
    }

    #[test]
    fn programs_are_found_on_the_path_or_by_their_path() {
        assert!(installed("sh"));
        assert!(!installed("rollcall-no-such-tunnel-program"));
        assert!(!installed("/nonexistent/cloudflared"));
    }
}
