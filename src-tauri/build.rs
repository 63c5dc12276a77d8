fn main() {
    // Only the desktop build embeds the Tauri context; headless builds need no build step.
    #[cfg(feature = "desktop")]
    tauri_build::build();
}
