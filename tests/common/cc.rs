//! C and C++ programs compiled against `include/libwebsockets.h` and the built library,
//! with `-Wall -Wextra -Werror -O2 -g`.

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// One program to build: `source` (relative to the repository, or absolute) into
/// `exe`, linked against the library in `lib`.
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
    pub fn new(source: impl AsRef<Path>, exe: impl AsRef<Path>, lib: &Path) -> CBuild {
        CBuild {
            source: repo().join(source),
            exe: exe.as_ref().to_path_buf(),
            lib: lib.to_path_buf(),
            lang: Lang::C,
            link: Link::Dynamic,
            flags: Vec::new(),
        }
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
