//! Build script: generates include/libwebsockets.h with cbindgen, compiles the one C
//! shim (`_lws_log` formatting), sets the original's SONAME, records the build hash
//! and leaves the `libwebsockets.so.4.0.0` link that programs linked with
//! `-lwebsockets` look for at run time.

use std::path::{Path, PathBuf};
use std::process::Command;

const SONAME: &str = "libwebsockets.so.4.0.0";

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());

    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");

    cc::Build::new()
        .file("src/capi/variadic_log.c")
        .flag_if_supported("-fvisibility=hidden")
        .warnings(true)
        .compile("lws_variadic_log");
    println!("cargo:rerun-if-changed=src/capi/variadic_log.c");

    println!("cargo:rustc-env=LWS_BUILD_HASH={}", build_hash(&root));
    println!("cargo:rerun-if-changed=.git/HEAD");
    // HEAD names a branch; the branch's ref file changes on every commit.
    if let Ok(head) = std::fs::read_to_string(root.join(".git/HEAD")) {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{r}");
        }
    }

    generate_header(&root);
    link_soname(&root);
}

fn build_hash(root: &Path) -> String {
    Command::new("git")
        .args(["rev-parse", "--short=8", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-build-hash".to_string())
}

fn generate_header(root: &Path) {
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/capi");
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate libwebsockets.h");
    let mut text = Vec::new();
    bindings.write(&mut text);
    let path = root.join("include").join("libwebsockets.h");
    // Only touch the file when it changes, so the header's mtime stays meaningful.
    if std::fs::read(&path).ok().as_deref() != Some(&text[..]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
}

/// target/<profile>/libwebsockets.so.4.0.0 -> libwebsockets.so
fn link_soname(_root: &Path) {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // OUT_DIR = target/<profile>/build/<pkg>-<hash>/out
    if let Some(profile_dir) = out.ancestors().nth(3) {
        let link = profile_dir.join(SONAME);
        if std::fs::symlink_metadata(&link).is_err() {
            let _ = std::os::unix::fs::symlink("libwebsockets.so", &link);
        }
    }
}
