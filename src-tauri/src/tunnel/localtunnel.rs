//! localtunnel (`lt --port PORT --local-host 127.0.0.1`, from npm): prints `your url is:
//! https://….loca.lt` once the tunnel is open.

use std::net::SocketAddr;

use super::{CommandLine, Launch, Provider, ProviderKind, Said};

pub struct Localtunnel;

impl Provider for Localtunnel {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Localtunnel
    }

    fn launch(&self, target: SocketAddr) -> Launch {
        Launch {
            command: CommandLine {
                program: "lt".into(),
                args: vec![
                    "--port".into(),
                    target.port().to_string(),
                    "--local-host".into(),
                    target.ip().to_string(),
                ],
            },
            probe: None,
        }
    }

    fn read_line(&self, line: &str) -> Option<Said> {
        read_line(line)
    }

    fn how_to_install(&self) -> &'static str {
        "Install localtunnel with Node.js: `npm install -g localtunnel` (it provides `lt`)."
    }
}

pub fn read_line(line: &str) -> Option<Said> {
    let line = line.trim();
    if let Some(url) = line.strip_prefix("your url is:") {
        let url = url.trim();
        return url
            .starts_with("https://")
            .then(|| Said::Url(url.to_owned()));
    }
    line.strip_prefix("Error:")
        .map(|message| Said::Problem(message.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_line_gives_the_url() {
        assert_eq!(
            read_line("your url is: https://brave-owls-dance.loca.lt\n"),
            Some(Said::Url("https://brave-owls-dance.loca.lt".into()))
        );
    }

    #[test]
    fn errors_are_problems() {
        let line = "Error: connection refused: localtunnel.me:39187 (check your firewall settings)";
        assert!(matches!(read_line(line), Some(Said::Problem(_))));
        assert_eq!(read_line("    at Socket.emit (node:events:517:28)"), None);
    }

    #[test]
    fn the_command_names_the_ingest_port() {
        let launch = Localtunnel.launch("127.0.0.1:8787".parse().unwrap());
        assert_eq!(
            launch.command.args,
            ["--port", "8787", "--local-host", "127.0.0.1"]
        );
    }
}
