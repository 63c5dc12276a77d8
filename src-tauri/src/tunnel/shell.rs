//! Runs a tunnel program through tauri-plugin-shell (the desktop app): the program from PATH
//! or the path given, in its own process group, killed with its group when stopped or when its
//! handle is dropped (the app's exit stops the server, which stops the tunnel). On Linux it is
//! wrapped like the headless one ([`super::process::guarded`]) so that the kernel kills it if
//! the app crashes.

use tauri::AppHandle;
use tauri_plugin_shell::process::{CommandChild, CommandEvent};
use tauri_plugin_shell::ShellExt;
use tokio::sync::mpsc;

use super::process::guarded;
use super::supervisor::{ChildEvent, RunningChild, Spawned, Spawner};
use super::{CommandLine, TunnelError};

pub struct ShellSpawner(pub AppHandle);

impl Spawner for ShellSpawner {
    fn spawn(&self, line: &CommandLine) -> Result<Spawned, TunnelError> {
        let guarded = guarded(line);
        let (mut received, child) = self
            .0
            .shell()
            .command(&guarded.program)
            .args(&guarded.args)
            .set_process_group(true)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| TunnelError::Spawn {
                program: line.program.clone(),
                source: std::io::Error::other(error.to_string()),
            })?;
        let pid = child.pid();
        let (events, forwarded) = mpsc::unbounded_channel();
        tauri::async_runtime::spawn(async move {
            while let Some(event) = received.recv().await {
                let event = match event {
                    CommandEvent::Stdout(bytes) | CommandEvent::Stderr(bytes) => {
                        ChildEvent::Line(String::from_utf8_lossy(&bytes).trim_end().to_owned())
                    }
                    CommandEvent::Error(error) => ChildEvent::Line(error),
                    CommandEvent::Terminated(payload) => ChildEvent::Exited(match payload.code {
                        Some(code) => format!("exit status: {code}"),
                        None => format!("signal: {}", payload.signal.unwrap_or_default()),
                    }),
                    _ => continue,
                };
                if events.send(event).is_err() {
                    return;
                }
            }
        });
        Ok(Spawned {
            events: forwarded,
            child: Box::new(ShellChild {
                pid,
                child: Some(child),
            }),
        })
    }
}

struct ShellChild {
    pid: u32,
    child: Option<CommandChild>,
}

impl RunningChild for ShellChild {
    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            // Kills the group and reaps it; its Terminated event follows.
            if let Err(error) = child.kill() {
                tracing::warn!(%error, "could not kill the tunnel program");
            }
        }
    }
}
