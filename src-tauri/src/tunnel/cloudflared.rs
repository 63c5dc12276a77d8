//! Cloudflare quick tunnels: `cloudflared tunnel --url http://127.0.0.1:PORT --no-autoupdate
//! --metrics 127.0.0.1:N`. The URL is read from the metrics endpoint's `/quicktunnel`
//! (`{"hostname":"…"}`); the `https://….trycloudflare.com` line cloudflared prints on stderr is
//! the fallback. Its error lines name `api.trycloudflare.com` (the API that hands out quick
//! tunnels), which is never the tunnel's URL.

use std::net::SocketAddr;
use std::sync::LazyLock;

use regex::Regex;

use super::{url_for_host, CommandLine, Launch, Probe, Provider, ProviderKind, Said};

pub struct Cloudflared;

static QUICK_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"https://([a-z0-9-]+)\.trycloudflare\.com\b").expect("valid regex")
});

/// A port for the metrics endpoint: asked of the OS, then released for cloudflared to take.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or(0)
}

impl Provider for Cloudflared {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Cloudflared
    }

    fn launch(&self, target: SocketAddr) -> Launch {
        let metrics = format!("127.0.0.1:{}", free_port());
        Launch {
            command: CommandLine {
                program: "cloudflared".into(),
                args: vec![
                    "tunnel".into(),
                    "--url".into(),
                    format!("http://{target}"),
                    "--no-autoupdate".into(),
                    "--metrics".into(),
                    metrics.clone(),
                ],
            },
            probe: Some(Probe {
                url: format!("http://{metrics}/quicktunnel"),
                read: Box::new(url_from_metrics),
            }),
        }
    }

    fn read_line(&self, line: &str) -> Option<Said> {
        read_line(line)
    }

    fn how_to_install(&self) -> &'static str {
        "Install cloudflared: on Debian/Ubuntu download the .deb from \
         https://github.com/cloudflare/cloudflared/releases/latest and run \
         `sudo dpkg -i cloudflared-linux-amd64.deb`; on macOS `brew install cloudflared`; on \
         Windows `winget install --id Cloudflare.cloudflared`. No account is needed."
    }
}

/// The URL in the metrics endpoint's `/quicktunnel` answer, once cloudflared has one.
pub fn url_from_metrics(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct QuickTunnel {
        hostname: String,
    }
    let answer: QuickTunnel = serde_json::from_str(body).ok()?;
    let host = answer.hostname.trim();
    (!host.is_empty()).then(|| url_for_host(host))
}

/// Reads one line of cloudflared's log.
pub fn read_line(line: &str) -> Option<Said> {
    if let Some((_, message)) = line.split_once(" ERR ") {
        return Some(Said::Problem(message.trim().to_owned()));
    }
    let found = QUICK_URL
        .captures_iter(line)
        .find(|c| &c[1] != "api")
        .map(|c| c[0].to_owned())?;
    Some(Said::Url(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cloudflared 2024.x on stderr, starting a quick tunnel, as recorded.
    const STARTUP: &[&str] = &[
        "2024-05-10T09:12:27Z INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-apps",
        "2024-05-10T09:12:27Z INF Requesting new quick Tunnel on trycloudflare.com...",
        "2024-05-10T09:12:31Z INF +--------------------------------------------------------------------------------------------+",
        "2024-05-10T09:12:31Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |",
        "2024-05-10T09:12:31Z INF |  https://seasonal-deck-organisms-sf.trycloudflare.com                                      |",
        "2024-05-10T09:12:31Z INF +--------------------------------------------------------------------------------------------+",
        "2024-05-10T09:12:31Z INF Cannot determine default configuration path. No file [config.yml config.yaml] in [~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]",
        "2024-05-10T09:12:31Z INF Version 2024.4.1",
        "2024-05-10T09:12:31Z INF Starting metrics server on 127.0.0.1:41235/metrics",
        "2024-05-10T09:12:32Z INF Registered tunnel connection connIndex=0 connection=2c4f1b3e-1d6a-4c8f-9a7e-5b0d3f2e1c44 event=0 ip=198.41.200.13 location=ams08 protocol=quic",
    ];

    #[test]
    fn the_banner_line_gives_the_url_and_nothing_else_does() {
        let said: Vec<Said> = STARTUP.iter().filter_map(|l| read_line(l)).collect();
        assert_eq!(
            said,
            vec![Said::Url(
                "https://seasonal-deck-organisms-sf.trycloudflare.com".into()
            )]
        );
    }

    #[test]
    fn error_lines_naming_the_quick_tunnel_api_are_problems_not_urls() {
        let lines = [
            r#"2024-05-10T09:20:02Z ERR Error unmarshaling QuickTunnel response: error="invalid character 'e' looking for beginning of value" status_code="429 Too Many Requests""#,
            r#"2024-05-10T09:20:02Z ERR failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup api.trycloudflare.com on 127.0.0.53:53: server misbehaving"#,
        ];
        for line in lines {
            match read_line(line) {
                Some(Said::Problem(message)) => assert!(!message.starts_with("http")),
                other => panic!("{line}: {other:?}"),
            }
        }
        // Even outside an ERR line, the API host is not a tunnel.
        assert_eq!(
            read_line("2024-05-10T09:20:02Z INF retrying https://api.trycloudflare.com/tunnel"),
            None
        );
    }

    #[test]
    fn metrics_give_the_url_once_the_tunnel_exists() {
        assert_eq!(
            url_from_metrics(r#"{"hostname":"seasonal-deck-organisms-sf.trycloudflare.com"}"#),
            Some("https://seasonal-deck-organisms-sf.trycloudflare.com".into())
        );
        assert_eq!(url_from_metrics(r#"{"hostname":""}"#), None);
        assert_eq!(url_from_metrics("404 page not found"), None);
    }

    #[test]
    fn the_command_points_at_the_ingest_listener() {
        let launch = Cloudflared.launch("127.0.0.1:8787".parse().unwrap());
        let args = launch.command.args.join(" ");
        assert!(
            args.starts_with(
                "tunnel --url http://127.0.0.1:8787 --no-autoupdate --metrics 127.0.0.1:"
            ),
            "{args}"
        );
        let probe = launch.probe.unwrap();
        assert!(probe.url.ends_with("/quicktunnel"));
    }
}
