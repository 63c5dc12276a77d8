//! Runs a tunnel program with `tokio::process` (headless mode and tests). The child gets its
//! own process group (a Ctrl-C in the terminal reaches Rollcall, which then stops the tunnel in
//! order) and is killed with its group when stopped or dropped. On Linux the kernel also kills
//! it if Rollcall dies without stopping it: the program runs under util-linux's `setpriv
//! --pdeathsig KILL` ([`guarded`]), since setting PR_SET_PDEATHSIG ourselves would take unsafe
//! code, which this crate forbids. So a crash leaves no tunnel serving a dead port.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

use super::supervisor::{ChildEvent, RunningChild, Spawned, Spawner};
use super::{CommandLine, TunnelError};

pub struct TokioSpawner;

impl Spawner for TokioSpawner {
    fn spawn(&self, line: &CommandLine) -> Result<Spawned, TunnelError> {
        let guarded = guarded(line);
        let mut command = Command::new(&guarded.program);
        command
            .args(&guarded.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TunnelError::NotFound {
                    program: line.program.clone(),
                }
            } else {
                TunnelError::Spawn {
                    program: line.program.clone(),
                    source,
                }
            }
        })?;
        let pid = child.id();
        let (events, received) = mpsc::unbounded_channel();
        let readers = [
            child
                .stdout
                .take()
                .map(|out| forward_lines(out, events.clone())),
            child
                .stderr
                .take()
                .map(|err| forward_lines(err, events.clone())),
        ];
        let (kill, killed) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = killed => {
                    kill_group(pid);
                    let _ = child.kill().await;
                    child.wait().await
                }
            };
            // The output is read to its end first, so the last lines explain the exit.
            for reader in readers.into_iter().flatten() {
                let _ = reader.await;
            }
            let description = match status {
                Ok(status) => status.to_string(),
                Err(error) => format!("could not be waited for: {error}"),
            };
            let _ = events.send(ChildEvent::Exited(description));
        });
        Ok(Spawned {
            events: received,
            child: Box::new(TokioChild {
                pid,
                kill: Some(kill),
            }),
        })
    }
}

fn forward_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    events: mpsc::UnboundedSender<ChildEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            line.clear();
            if events.send(ChildEvent::Line(text)).is_err() {
                return;
            }
        }
    })
}

/// Where util-linux keeps `setpriv`.
const SETPRIV: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];

/// The command line wrapped so that the kernel kills the program when Rollcall dies (Linux,
/// when `setpriv` is there; elsewhere unchanged, and stopping Rollcall still kills it).
pub fn guarded(line: &CommandLine) -> CommandLine {
    let setpriv = SETPRIV
        .iter()
        .find(|path| cfg!(target_os = "linux") && std::path::Path::new(path).is_file());
    match setpriv {
        Some(setpriv) => CommandLine {
            program: (*setpriv).to_owned(),
            args: ["--pdeathsig", "KILL", "--"]
                .into_iter()
                .map(str::to_owned)
                .chain([line.program.clone()])
                .chain(line.args.iter().cloned())
                .collect(),
        },
        None => line.clone(),
    }
}

/// Kills the child's whole process group (a shell command's own children too).
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let group = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
}

struct TokioChild {
    pid: Option<u32>,
    kill: Option<oneshot::Sender<()>>,
}

impl RunningChild for TokioChild {
    fn pid(&self) -> Option<u32> {
        self.pid
    }

    fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

impl Drop for TokioChild {
    fn drop(&mut self) {
        self.kill();
    }
}
