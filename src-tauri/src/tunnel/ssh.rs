//! An ssh reverse tunnel to localhost.run: `ssh -R 80:127.0.0.1:PORT nokey@localhost.run`. It
//! needs nothing but ssh. The URL is on the line `… tunneled with tls termination, https://…`;
//! the banner's other links (the admin site, docs) are not it.

use std::net::SocketAddr;
use std::sync::LazyLock;

use regex::Regex;

use super::{CommandLine, Launch, Provider, ProviderKind, Said};

pub struct LocalhostRun;

static TUNNELED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"tunneled with tls termination, (https://[A-Za-z0-9.-]+)").expect("valid regex")
});

impl Provider for LocalhostRun {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ssh
    }

    fn launch(&self, target: SocketAddr) -> Launch {
        let args = [
            "-T",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "ServerAliveInterval=30",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("80:{target}"), "nokey@localhost.run".to_owned()])
        .collect();
        Launch {
            command: CommandLine {
                program: "ssh".into(),
                args,
            },
            probe: None,
        }
    }

    fn read_line(&self, line: &str) -> Option<Said> {
        read_line(line)
    }

    fn how_to_install(&self) -> &'static str {
        "Install an OpenSSH client: `sudo apt install openssh-client` on Debian/Ubuntu; macOS \
         and Windows 10+ include one."
    }
}

pub fn read_line(line: &str) -> Option<Said> {
    if let Some(found) = TUNNELED.captures(line) {
        return Some(Said::Url(found[1].to_owned()));
    }
    let problem = [
        "Permission denied",
        "Connection refused",
        "Could not resolve",
    ]
    .iter()
    .any(|hint| line.contains(hint));
    problem.then(|| Said::Problem(line.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tunneled_line_gives_the_url() {
        let lines = [
            "===============================================================================",
            "Welcome to localhost.run!",
            "Follow your favourite reverse tunnel at [https://twitter.com/localhost_run].",
            "To set up and manage custom domains go to https://admin.localhost.run/",
            "More details on custom domains (and how to enable subdomains for your custom",
            "domain) at https://localhost.run/docs/custom-domains",
            "** your connection id is 4b1f3c2e-9d7a-4a51-b1f0-2e6c8d9a0f13, please mention it if you send me a message about an issue. **",
            "a1b2c3d4e5f6a7.lhr.life tunneled with tls termination, https://a1b2c3d4e5f6a7.lhr.life",
        ];
        let said: Vec<Said> = lines.iter().filter_map(|l| read_line(l)).collect();
        assert_eq!(
            said,
            vec![Said::Url("https://a1b2c3d4e5f6a7.lhr.life".into())]
        );
    }

    #[test]
    fn ssh_failures_are_problems() {
        let line = "ssh: connect to host localhost.run port 22: Connection refused";
        assert!(matches!(read_line(line), Some(Said::Problem(_))));
    }

    #[test]
    fn the_remote_forward_targets_the_ingest_listener() {
        let launch = LocalhostRun.launch("127.0.0.1:8787".parse().unwrap());
        let args = launch.command.args.join(" ");
        assert!(
            args.ends_with("-R 80:127.0.0.1:8787 nokey@localhost.run"),
            "{args}"
        );
    }
}
