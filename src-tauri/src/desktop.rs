//! The desktop shell (Tauri): starts the same receiver and dashboard headless mode runs, opens
//! a window on the dashboard (logged in with this launch's one-time link), focuses that window
//! when the app is launched again, and stops the receiver cleanly when the app exits. Thin on
//! purpose: anything headless mode also needs lives outside this file.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tauri::{Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};

use crate::cli::{serve_options, ServeArgs};
use crate::server::{ServeOptions, Server};
use crate::tunnel::shell::ShellSpawner;

struct Receiver(Mutex<Option<Server>>);

/// Runs the desktop app until its window is closed. A receiver that cannot start (the data
/// directory held by another Rollcall, a port taken) is this function's error, as it is
/// `serve`'s: Tauri would panic on a failed setup hook, so the hook keeps the error and exits.
pub fn run(data_dir: &Path, args: &ServeArgs) -> anyhow::Result<()> {
    let options = serve_options(data_dir, args)?;
    let failed: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();
    let setup_failed = failed.clone();
    let app = tauri::Builder::default()
        // First, so a second launch on the same data directory hands over and exits before it
        // starts a receiver of its own.
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .dbus_id(instance_id(data_dir))
                .callback(|app, _args, _cwd| focus(app))
                .build(),
        )
        .plugin(tauri_plugin_shell::init())
        .setup(move |app| {
            if let Err(error) = open_window(app, &options) {
                *setup_failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                app.handle().exit(1);
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("could not start the desktop app")?;
    app.run_return(|handle, event| {
        if let RunEvent::Exit = event {
            if let Some(receiver) = handle.try_state::<Receiver>() {
                let server = receiver.0.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(server) = server {
                    tauri::async_runtime::block_on(server.stop());
                }
            }
        }
    });
    let failed = failed.lock().unwrap_or_else(|e| e.into_inner()).take();
    failed.map_or(Ok(()), Err)
}

/// Starts the receiver and opens the window on its dashboard, logged in.
fn open_window(app: &mut tauri::App, options: &ServeOptions) -> anyhow::Result<()> {
    // The tunnel program runs through the shell plugin; stopping the server kills it.
    let spawner = Arc::new(ShellSpawner(app.handle().clone()));
    let server = tauri::async_runtime::block_on(Server::start_with(options, spawner))?;
    let login = server
        .dashboard_access()
        .login_url()
        .context("no dashboard login link")?;
    app.manage(Receiver(Mutex::new(Some(server))));
    WebviewWindowBuilder::new(app, "main", WebviewUrl::External(login.parse()?))
        .title("Rollcall")
        .inner_size(1280.0, 840.0)
        .min_inner_size(900.0, 600.0)
        .build()?;
    Ok(())
}

/// One app instance per data directory: the instance id names the directory.
fn instance_id(data_dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let digest = Sha256::digest(dir.to_string_lossy().as_bytes());
    format!("app.rollcall.desktop.d{}", hex::encode(&digest[..6]))
}

/// A second launch brings the open window forward instead of starting another receiver.
fn focus(app: &tauri::AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}
