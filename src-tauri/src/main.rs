// Hide the console window on Windows release builds of the desktop app.
#![cfg_attr(
    all(not(debug_assertions), feature = "desktop"),
    windows_subsystem = "windows"
)]

fn main() -> std::process::ExitCode {
    rollcall::cli::main()
}
