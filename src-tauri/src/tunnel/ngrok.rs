//! ngrok v3: `ngrok http 127.0.0.1:PORT --log stdout --log-format json [--domain D]`. The URL
//! is in the JSON log line `{"msg":"started tunnel","url":"https://…"}`; the agent API on
//! 127.0.0.1:4040 (`/api/tunnels`) confirms it, matching our listener's address so another
//! ngrok on this machine is never mistaken for ours.

use std::net::SocketAddr;

use serde_json::Value;

use super::{CommandLine, Launch, Probe, Provider, ProviderKind, Said};

pub struct Ngrok {
    /// A static domain reserved in the ngrok dashboard.
    pub domain: Option<String>,
}

impl Provider for Ngrok {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ngrok
    }

    fn launch(&self, target: SocketAddr) -> Launch {
        let mut args = vec![
            "http".to_owned(),
            target.to_string(),
            "--log".into(),
            "stdout".into(),
            "--log-format".into(),
            "json".into(),
        ];
        if let Some(domain) = &self.domain {
            args.push(format!("--domain={domain}"));
        }
        Launch {
            command: CommandLine {
                program: "ngrok".into(),
                args,
            },
            probe: Some(Probe {
                url: "http://127.0.0.1:4040/api/tunnels".into(),
                read: Box::new(move |body| url_from_agent_api(body, target)),
            }),
        }
    }

    fn read_line(&self, line: &str) -> Option<Said> {
        read_line(line)
    }

    fn how_to_install(&self) -> &'static str {
        "Install ngrok from https://ngrok.com/download (or `brew install ngrok`, `snap install \
         ngrok`), then connect your account once: `ngrok config add-authtoken <your token>`."
    }
}

/// Reads one JSON log line of ngrok v3.
pub fn read_line(line: &str) -> Option<Said> {
    let entry: Value = serde_json::from_str(line.trim()).ok()?;
    let text = |key: &str| entry.get(key).and_then(Value::as_str);
    if text("msg") == Some("started tunnel") {
        if let Some(url) = text("url").filter(|u| u.starts_with("https://")) {
            return Some(Said::Url(url.to_owned()));
        }
    }
    if matches!(text("lvl"), Some("eror" | "crit")) {
        let message = text("err").or(text("msg"))?;
        return Some(Said::Problem(message.to_owned()));
    }
    None
}

/// The https URL of the agent's tunnel that forwards to `target`.
pub fn url_from_agent_api(body: &str, target: SocketAddr) -> Option<String> {
    let answer: Value = serde_json::from_str(body).ok()?;
    let ours = |addr: &str| {
        let addr = addr.trim_start_matches("http://");
        addr == target.to_string() || addr == format!("localhost:{}", target.port())
    };
    answer
        .get("tunnels")?
        .as_array()?
        .iter()
        .filter(|t| {
            t.pointer("/config/addr")
                .and_then(Value::as_str)
                .is_some_and(ours)
        })
        .filter_map(|t| t.get("public_url")?.as_str())
        .find(|url| url.starts_with("https://"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_started_tunnel_line_gives_the_url() {
        let lines = [
            r#"{"addr":"","lvl":"info","msg":"no configuration paths supplied","t":"2024-05-10T11:02:11.451+02:00"}"#,
            r#"{"lvl":"info","msg":"open config file","path":"/home/ana/.config/ngrok/ngrok.yml","err":null,"t":"2024-05-10T11:02:11.452+02:00"}"#,
            r#"{"lvl":"info","msg":"starting web service","obj":"web","addr":"127.0.0.1:4040","allow_hosts":[],"t":"2024-05-10T11:02:11.455+02:00"}"#,
            r#"{"lvl":"info","msg":"client session established","obj":"tunnels.session","t":"2024-05-10T11:02:11.902+02:00"}"#,
            r#"{"lvl":"info","msg":"started tunnel","obj":"tunnels","name":"command_line","addr":"http://127.0.0.1:8787","url":"https://7c1e-203-0-113-7.ngrok-free.app","t":"2024-05-10T11:02:12.044+02:00"}"#,
        ];
        let said: Vec<Said> = lines.iter().filter_map(|l| read_line(l)).collect();
        assert_eq!(
            said,
            vec![Said::Url("https://7c1e-203-0-113-7.ngrok-free.app".into())]
        );
    }

    #[test]
    fn error_lines_are_problems() {
        let line = r#"{"lvl":"eror","msg":"session closing","obj":"tunnels.session","err":"authentication failed: Usage of ngrok requires a verified account and authtoken.\n\nSign up for an account: https://dashboard.ngrok.com/signup\n\nERR_NGROK_4018\n","t":"2024-05-10T11:05:40.120+02:00"}"#;
        match read_line(line) {
            Some(Said::Problem(message)) => assert!(message.starts_with("authentication failed")),
            other => panic!("{other:?}"),
        }
        assert_eq!(read_line("not json"), None);
    }

    #[test]
    fn the_agent_api_answer_is_read_for_our_listener_only() {
        let body = r#"{"tunnels":[
            {"name":"other","public_url":"https://other.ngrok-free.app","proto":"https","config":{"addr":"http://localhost:3000","inspect":true}},
            {"name":"command_line","ID":"a1","public_url":"https://rollcall.ngrok.app","proto":"https","config":{"addr":"http://127.0.0.1:8787","inspect":true}}
        ],"uri":"/api/tunnels"}"#;
        let ours = "127.0.0.1:8787".parse().unwrap();
        assert_eq!(
            url_from_agent_api(body, ours),
            Some("https://rollcall.ngrok.app".into())
        );
        assert_eq!(
            url_from_agent_api(body, "127.0.0.1:9999".parse().unwrap()),
            None
        );
    }

    #[test]
    fn a_static_domain_is_passed_on() {
        let ngrok = Ngrok {
            domain: Some("rollcall.ngrok.app".into()),
        };
        let launch = ngrok.launch("127.0.0.1:8787".parse().unwrap());
        assert_eq!(launch.command.args[..2], ["http", "127.0.0.1:8787"]);
        assert!(launch
            .command
            .args
            .contains(&"--domain=rollcall.ngrok.app".to_owned()));
    }
}
