//! C and C++ programs compiled against `include/libwebsockets.h` and the built library,
//! with `-Wall -Wextra -Werror -O2 -g`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::paths::repo;
use super::proc::run;

/// How long one compilation may take.
const COMPILE_LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Lang {
    C,
    Cxx,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Link {
    /// `-lwebsockets` with an rpath to the library's directory.
    Dynamic,
    /// `libwebsockets.a -lpthread -ldl -lm`.
    Static,
}

/// `$CC` or `cc`; `$CXX` or `c++` (unset or blank: the default).
pub fn compiler(lang: Lang) -> String {
    let (var, default) = match lang {
        Lang::C => ("CC", "cc"),
        Lang::Cxx => ("CXX", "c++"),
    };
    std::env::var(var)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// One program to build: `source` (relative to the repository, or absolute) into `dir`,
/// named after the source file, linked against the library in `lib`.
pub struct CBuild {
    source: PathBuf,
    exe: PathBuf,
    lib: PathBuf,
    lang: Lang,
    link: Link,
    flags: Vec<String>,
}

impl CBuild {
    /// A C program, linked dynamically.
    pub fn new(source: impl AsRef<Path>, dir: &Path, lib: &Path) -> CBuild {
        let source = repo().join(source);
        let stem = source.file_stem().unwrap_or_default().to_owned();
        CBuild {
            exe: dir.join(stem),
            source,
            lib: lib.to_path_buf(),
            lang: Lang::C,
            link: Link::Dynamic,
            flags: Vec::new(),
        }
    }

    /// Another name for the executable.
    pub fn named(mut self, name: &str) -> CBuild {
        self.exe.set_file_name(name);
        self
    }

    /// The language (C++ compiles the source with `-x c++`).
    pub fn lang(mut self, lang: Lang) -> CBuild {
        self.lang = lang;
        self
    }

    pub fn link(mut self, link: Link) -> CBuild {
        self.link = link;
        self
    }

    /// An extra compiler flag (`-D_DEBUG`, `-fsanitize=address`...).
    pub fn flag(mut self, flag: impl Into<String>) -> CBuild {
        self.flags.push(flag.into());
        self
    }

    /// `-DLWS_TEST_HTML="<repo>/examples/test.html"`: test-server serves the demo page
    /// whatever its working directory.
    pub fn test_html(self) -> CBuild {
        let html = repo().join("examples/test.html");
        self.flag(format!("-DLWS_TEST_HTML=\"{}\"", html.display()))
    }

    /// The compiler command line.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(compiler(self.lang));
        if self.lang == Lang::Cxx {
            cmd.args(["-x", "c++"]);
        }
        cmd.args(["-Wall", "-Wextra", "-Werror", "-O2", "-g"])
            .args(&self.flags)
            .arg(format!("-I{}", repo().join("include").display()))
            .arg(&self.source);
        if self.lang == Lang::Cxx {
            // later inputs (the archive) are not C++ sources
            cmd.args(["-x", "none"]);
        }
        cmd.arg("-o").arg(&self.exe);
        match self.link {
            Link::Dynamic => {
                cmd.arg(format!("-L{}", self.lib.display()))
                    .arg(format!("-Wl,-rpath,{}", self.lib.display()))
                    .arg("-lwebsockets");
            }
            Link::Static => {
                cmd.arg(self.lib.join("libwebsockets.a"))
                    .args(["-lpthread", "-ldl", "-lm"]);
            }
        }
        cmd
    }

    /// Compiles (within 2 minutes); the executable, or the compiler's complaint.
    pub fn build(&self) -> Result<PathBuf, String> {
        let _ = std::fs::remove_file(&self.exe);
        let mut cmd = self.command();
        let f = run(&mut cmd, COMPILE_LIMIT);
        if f.ok() && self.exe.is_file() {
            Ok(self.exe.clone())
        } else {
            Err(format!(
                "building {} failed: {cmd:?}\n{}",
                self.source.display(),
                f.describe()
            ))
        }
    }
}

/// Builds each of `sources` (see [`CBuild::new`]); stops at the first failure.
pub fn build_all<const N: usize>(
    sources: [&str; N],
    dir: &Path,
    lib: &Path,
) -> Result<[PathBuf; N], String> {
    require_library(lib)?;
    let mut built = Vec::with_capacity(N);
    for source in sources {
        built.push(CBuild::new(source, dir, lib).build()?);
    }
    Ok(built.try_into().expect("one executable per source"))
}

/// Ok when `lib` holds libwebsockets.so, else an error saying how to build it.
pub fn require_library(lib: &Path) -> Result<(), String> {
    let so = lib.join("libwebsockets.so");
    if so.is_file() {
        Ok(())
    } else {
        Err(format!(
            "{} is missing: run `cargo build --release` first",
            so.display()
        ))
    }
}

/// What `build` made the first time `cell` was asked (C programs, built once per test
/// binary); its error is a panic, then and at every later call.
pub fn built_once<T>(
    cell: &'static OnceLock<Result<T, String>>,
    build: impl FnOnce() -> Result<T, String>,
) -> &'static T {
    match cell.get_or_init(build) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
