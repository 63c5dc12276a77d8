// Hide the console window on Windows release builds of the desktop app.
#![cfg_attr(
    all(not(debug_assertions), feature = "desktop"),
    windows_subsystem = "windows"
)]

// glibc's malloc was a tenth of the server's time under webhook load, buffers being allocated
// on the HTTP workers and freed on the syncer thread (bench/results/README.md, 25th round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rollcall::cli::main()
}
