//! The desktop shell (Tauri): starts the same receiver headless mode runs, opens the window,
//! and stops the receiver cleanly when the app exits. Thin on purpose: anything headless mode
//! also needs lives outside this file.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tauri::{Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};

use crate::cli::{serve_options, ServeArgs};
use crate::server::Server;

struct Receiver(Mutex<Option<Server>>);

/// Runs the desktop app until its window is closed.
pub fn run(data_dir: &Path, args: &ServeArgs) -> anyhow::Result<()> {
    let server = tauri::async_runtime::block_on(Server::start(&serve_options(data_dir, args)))?;
    let shell_info = serde_json::json!({
        "ingestUrl": format!("http://{}", server.ingest_addr()),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_shell::init())
        .manage(Receiver(Mutex::new(Some(server))))
        .setup(move |app| {
            WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
                .title("Rollcall")
                .inner_size(1200.0, 800.0)
                .initialization_script(format!("window.__ROLLCALL__ = {shell_info};"))
                .build()?;
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("could not start the desktop app")?;
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            let receiver = handle.state::<Receiver>();
            let server = receiver.0.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(server) = server {
                tauri::async_runtime::block_on(server.stop());
            }
        }
    });
    Ok(())
}
