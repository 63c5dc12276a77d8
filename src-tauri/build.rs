fn main() {
    // The dashboard UI (ui/dist, built by `npm run build`) is embedded in the binary. Without
    // it the binary still builds, and its dashboard says how to build the UI.
    println!("cargo::rustc-check-cfg=cfg(ui_missing)");
    println!("cargo::rerun-if-changed=../ui/dist");
    if !std::path::Path::new("../ui/dist/index.html").exists() {
        println!("cargo::rustc-cfg=ui_missing");
        println!(
            "cargo::warning=ui/dist is missing: run `bash .ci/install` to build the dashboard UI"
        );
    }
    // Only the desktop build embeds the Tauri context; headless builds need no build step.
    #[cfg(feature = "desktop")]
    tauri_build::build();
}
