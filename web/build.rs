//! Fetches the meeting page's browser libraries with npm and copies them into
//! OUT_DIR, where `src/meeting/assets.rs` embeds them.
//!
//! Why at build time: the libraries are third-party builds we must not commit,
//! and the binary should carry everything it serves. Without npm the build
//! still succeeds; the copies are empty and the meeting page answers 503.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (path inside node_modules, file name in OUT_DIR).
const LIBS: [(&str, &str); 3] = [
    (
        "@lyno/lib-jitsi-meet/lib-jitsi-meet.min.js",
        "lib-jitsi-meet.min.js",
    ),
    (
        "@lyno/lib-jitsi-meet/lib-jitsi-meet.e2ee-worker.js",
        "lib-jitsi-meet.e2ee-worker.js",
    ),
    ("jquery/dist/jquery.min.js", "jquery.min.js"),
];

fn main() {
    let assets = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("assets");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let modules = assets.join("node_modules");
    println!("cargo:rerun-if-changed=assets/package.json");
    println!("cargo:rerun-if-changed=assets/package-lock.json");
    println!("cargo:rerun-if-env-changed=OXBRIDGE_NO_NPM");

    let installed = || LIBS.iter().all(|(p, _)| modules.join(p).is_file());
    let stale = is_newer(
        &assets.join("package-lock.json"),
        &modules.join(".package-lock.json"),
    );
    let mut problem = None;
    if !installed() || stale {
        problem = match std::env::var_os("OXBRIDGE_NO_NPM") {
            Some(_) => Some("OXBRIDGE_NO_NPM is set".to_string()),
            None => npm_ci(&assets).err(),
        };
    }
    let ok = installed();
    for (path, name) in LIBS {
        let bytes = match ok {
            true => std::fs::read(modules.join(path)).expect("installed file is readable"),
            false => Vec::new(),
        };
        std::fs::write(out.join(name), bytes).expect("OUT_DIR is writable");
        if ok {
            println!("cargo:rerun-if-changed=assets/node_modules/{path}");
        }
    }
    match (ok, problem) {
        (true, None) => {}
        (true, Some(why)) => {
            println!(
                "cargo:warning=could not refresh web/assets/node_modules ({why}); embedding the installed copies"
            );
        }
        (false, why) => {
            let why = why.unwrap_or_else(|| "npm ci did not install the expected files".into());
            println!(
                "cargo:warning=the meeting page's libraries are not built in ({why}); \
                 /<room> will answer 503. Install npm (apt-get install -y npm) and rebuild."
            );
            // A path that never exists makes the next build try again.
            println!("cargo:rerun-if-changed=assets/node_modules/.oxbridge-retry");
        }
    }
}

/// `npm ci --prefix <assets> --ignore-scripts` with npm's configured registry.
fn npm_ci(assets: &Path) -> Result<(), String> {
    let status = Command::new("npm")
        .arg("ci")
        .arg("--prefix")
        .arg(assets)
        .args(["--ignore-scripts", "--no-audit", "--no-fund"])
        // Build-script stdout is read by cargo; keep npm's chatter out of it.
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("npm ci failed ({status})"))
    }
}

/// Whether `a` was modified after `b` (true if `b` is missing).
fn is_newer(a: &Path, b: &Path) -> bool {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(a), mtime(b)) {
        (Some(a), Some(b)) => a > b,
        (_, None) => true,
        (None, Some(_)) => false,
    }
}
