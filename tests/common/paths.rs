//! Where things are: the repository, `target/`, the library under test, scratch space.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

/// The repository (the crate's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/`: the directory above the `<profile>/deps/` holding this test executable,
/// else `CARGO_TARGET_DIR`, else `target` in the repository.
pub fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(t) = exe.ancestors().nth(3) {
            if t.join("release").exists() || t.join("debug").exists() {
                return t.to_path_buf();
            }
        }
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo().join(dir)
            }
        }
        _ => repo().join("target"),
    }
}

/// The absolute, canonical `target/release`.
pub fn release_dir() -> PathBuf {
    let dir = target_dir().join("release");
    dir.canonicalize().unwrap_or(dir)
}

/// `LWS_LIB_DIR` when set, else the `target/<profile>` (release or debug) holding the
/// newest `libwebsockets.so`.
pub fn lib_dir() -> PathBuf {
    newest_lib_dir(false)
}

/// As [`lib_dir`], among the profiles that also hold `libwebsockets.a`.
pub fn lib_dir_with_archive() -> PathBuf {
    newest_lib_dir(true)
}

fn newest_lib_dir(with_archive: bool) -> PathBuf {
    if let Some(d) = std::env::var_os("LWS_LIB_DIR") {
        return PathBuf::from(d);
    }
    let t = target_dir();
    let mut best: Option<(SystemTime, PathBuf)> = None;
    for profile in ["release", "debug"] {
        let dir = t.join(profile);
        if with_archive && !dir.join("libwebsockets.a").exists() {
            continue;
        }
        if let Ok(m) = fs::metadata(dir.join("libwebsockets.so")).and_then(|m| m.modified()) {
            if best.as_ref().is_none_or(|(b, _)| m > *b) {
                best = Some((m, dir));
            }
        }
    }
    best.map(|(_, d)| d).unwrap_or_else(|| {
        panic!(
            "no libwebsockets.so{} under {}: run cargo build --release",
            if with_archive { " + .a" } else { "" },
            t.display()
        )
    })
}

/// `target/ctests/<name>`, created: where a test file puts what it builds.
pub fn ctests_dir(name: &str) -> PathBuf {
    let d = target_dir().join("ctests").join(name);
    fs::create_dir_all(&d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
    d
}

/// `../shared` beside the repository (abi-check, Autobahn runners).
pub fn shared_dir() -> PathBuf {
    repo().join("..").join("shared")
}

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "lws-tests-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
