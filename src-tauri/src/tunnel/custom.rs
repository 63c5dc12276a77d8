//! A tunnel command of the organizer's own (a named cloudflared tunnel, tailscale funnel,
//! bore…): run through the shell with `{port}` replaced by the ingest listener's port; the
//! organizer's regex finds the URL in its output (the first capture group if it has one).

use std::net::SocketAddr;

use regex::Regex;

use super::{CommandLine, Launch, Provider, ProviderKind, Said};

pub struct Custom {
    pub command: String,
    pub pattern: Regex,
}

impl Provider for Custom {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Custom
    }

    fn launch(&self, target: SocketAddr) -> Launch {
        let command = self.command.replace("{port}", &target.port().to_string());
        let (program, flag) = if cfg!(windows) {
            ("cmd", "/C")
        } else {
            ("sh", "-c")
        };
        Launch {
            command: CommandLine {
                program: program.into(),
                args: vec![flag.into(), command],
            },
            probe: None,
        }
    }

    fn read_line(&self, line: &str) -> Option<Said> {
        let found = self.pattern.captures(line)?;
        let url = found.get(1).or_else(|| found.get(0))?.as_str();
        let url = url.trim_end_matches('/');
        // A bare host:port (bore prints one) is reached over plain http.
        let url = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        Some(Said::Url(url))
    }

    fn how_to_install(&self) -> &'static str {
        "Check that the program your --tunnel-command runs is installed and on the PATH."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funnel() -> Custom {
        Custom {
            command: "tailscale funnel {port}".into(),
            pattern: Regex::new(r"https://\S+\.ts\.net/?").unwrap(),
        }
    }

    #[test]
    fn the_port_is_filled_in() {
        let launch = funnel().launch("127.0.0.1:8787".parse().unwrap());
        assert_eq!(launch.command.args[1], "tailscale funnel 8787");
    }

    #[test]
    fn the_pattern_finds_the_url() {
        let funnel = funnel();
        assert_eq!(funnel.read_line("Available on the internet:"), None);
        assert_eq!(
            funnel.read_line("https://rollcall.tail1234.ts.net/"),
            Some(Said::Url("https://rollcall.tail1234.ts.net".into()))
        );
    }

    #[test]
    fn a_capture_group_picks_a_bare_host_and_port() {
        let bore = Custom {
            command: "bore local {port} --to bore.pub".into(),
            pattern: Regex::new(r"listening at (bore\.pub:\d+)").unwrap(),
        };
        let line = "2024-05-10T09:00:00.000Z  INFO bore_cli::client: listening at bore.pub:41873";
        assert_eq!(
            bore.read_line(line),
            Some(Said::Url("http://bore.pub:41873".into()))
        );
    }
}
