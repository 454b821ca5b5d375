//! install.sh / uninstall.sh into temporary prefixes, and consumers built the usual
//! ways against what was installed: a C program with `pkg-config --cflags --libs`
//! (dynamic, and static with `pkg-config --static`) and a CMake project with
//! `pkg_check_modules` (tests/install/). Needs pkg-config, cmake, a C compiler and
//! readelf (binutils); .ci/run installs them.
//!
//! install.sh runs with NO_BUILD=1 and BUILD_DIR set to the freshest build under
//! target/, so no cargo runs here. Everything happens under a temporary directory
//! removed at the end; consumers are started with a deadline and killed if they
//! overrun.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cc::{compiler, Lang};
use common::net::free_port_below_ephemeral;
use common::paths::{lib_dir_with_archive, repo, TempDir};
use common::proc::{self, Finished};
use common::tools::need_tool;

const SONAME: &str = "libwebsockets.so.4.0.0";

/// Runs `cmd` to completion within `within` (a panic after); panics on failure
/// unless `may_fail`.
fn run(cmd: &mut Command, within: Duration, may_fail: bool) -> Finished {
    let out = proc::run(cmd, within);
    assert!(
        !out.timed_out,
        "{cmd:?} did not finish within {within:?}: {}",
        out.describe()
    );
    if !may_fail && !out.ok() {
        panic!("{cmd:?} failed: {}", out.describe());
    }
    out
}

fn ok(cmd: &mut Command) -> String {
    run(cmd, Duration::from_secs(120), false).stdout
}

/// PREFIX / DESTDIR / LIBDIR for one installation.
struct Layout {
    destdir: Option<PathBuf>,
    prefix: PathBuf,
    libdir: Option<PathBuf>,
}

impl Layout {
    fn env(&self, cmd: &mut Command) {
        cmd.env("PREFIX", &self.prefix)
            .env("NO_BUILD", "1")
            .env("BUILD_DIR", lib_dir_with_archive())
            .env_remove("DESTDIR")
            .env_remove("LIBDIR")
            .env_remove("INCLUDEDIR");
        if let Some(d) = &self.destdir {
            cmd.env("DESTDIR", d);
        }
        if let Some(l) = &self.libdir {
            cmd.env("LIBDIR", l);
        }
    }
    fn install(&self) -> String {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("install.sh"));
        self.env(&mut cmd);
        ok(&mut cmd)
    }
    fn uninstall(&self) -> Finished {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("uninstall.sh"));
        self.env(&mut cmd);
        run(&mut cmd, Duration::from_secs(60), true)
    }
    /// Where a path under PREFIX really is (DESTDIR prepended).
    fn real(&self, p: &Path) -> PathBuf {
        match &self.destdir {
            Some(d) => d.join(p.strip_prefix("/").unwrap()),
            None => p.to_path_buf(),
        }
    }
    fn libdir(&self) -> PathBuf {
        self.libdir
            .clone()
            .unwrap_or_else(|| self.prefix.join("lib"))
    }
    fn real_lib(&self) -> PathBuf {
        self.real(&self.libdir())
    }
    fn real_include(&self) -> PathBuf {
        self.real(&self.prefix.join("include"))
    }
    fn pkg_config(&self) -> Command {
        let mut cmd = Command::new("pkg-config");
        cmd.env("PKG_CONFIG_PATH", self.real_lib().join("pkgconfig"));
        if let Some(d) = &self.destdir {
            cmd.env("PKG_CONFIG_SYSROOT_DIR", d);
        }
        cmd
    }
    fn pc(&self, args: &[&str]) -> Vec<String> {
        let out = ok(self.pkg_config().args(args).arg("libwebsockets"));
        out.split_whitespace().map(str::to_string).collect()
    }
    fn expected_files(&self) -> BTreeSet<PathBuf> {
        let lib = self.real_lib();
        [
            lib.join(SONAME),
            lib.join("libwebsockets.so"),
            lib.join("libwebsockets.a"),
            lib.join("pkgconfig/libwebsockets.pc"),
            self.real_include().join("libwebsockets.h"),
        ]
        .into_iter()
        .collect()
    }
}

/// Every non-directory under `root`.
fn files_under(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The installed files: the right kinds, modes and contents.
fn check_installed_files(l: &Layout, root: &Path) {
    assert_eq!(files_under(root), l.expected_files(), "installed files");
    let lib = l.real_lib();
    let so = lib.join(SONAME);
    let meta = fs::symlink_metadata(&so).unwrap();
    assert!(meta.file_type().is_file(), "{SONAME} is a real file");
    assert_eq!(mode(&so), 0o755);
    assert_eq!(
        fs::read(&so).unwrap(),
        fs::read(lib_dir_with_archive().join("libwebsockets.so")).unwrap(),
        "{SONAME} is the built library"
    );
    let dev = lib.join("libwebsockets.so");
    assert!(fs::symlink_metadata(&dev).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_link(&dev).unwrap(), PathBuf::from(SONAME));
    assert_eq!(mode(&lib.join("libwebsockets.a")), 0o644);
    assert_eq!(
        fs::metadata(lib.join("libwebsockets.a")).unwrap().len(),
        fs::metadata(lib_dir_with_archive().join("libwebsockets.a"))
            .unwrap()
            .len()
    );
    assert_eq!(
        fs::read(l.real_include().join("libwebsockets.h")).unwrap(),
        fs::read(repo().join("include/libwebsockets.h")).unwrap()
    );
    let dynamic = ok(Command::new("readelf").arg("-d").arg(&so));
    assert!(
        dynamic.contains(&format!("Library soname: [{SONAME}]")),
        "SONAME of the installed library:\n{dynamic}"
    );

    let pc = fs::read_to_string(lib.join("pkgconfig/libwebsockets.pc")).unwrap();
    for line in [
        format!("prefix={}", l.prefix.display()),
        "Name: libwebsockets".to_string(),
        "Version: 1.3".to_string(),
        "Libs: -L${libdir} -lwebsockets".to_string(),
        "Libs.private: -lpthread -ldl -lm -lrt -lutil".to_string(),
        "Cflags: -I${includedir}".to_string(),
    ] {
        assert!(
            pc.lines().any(|x| x == line),
            "libwebsockets.pc lacks '{line}':\n{pc}"
        );
    }
    ok(l.pkg_config().args(["--validate", "libwebsockets"]));
}

/// Compiles tests/install/app.c with `flags` into `exe`.
fn cc(exe: &Path, flags: &[String]) {
    ok(Command::new(compiler(Lang::C))
        .args(["-Wall", "-Werror", "-o"])
        .arg(exe)
        .arg(repo().join("tests/install/app.c"))
        .args(flags));
}

/// Runs a built consumer: it serves and connects to itself on a free port.
/// `ld_path`: LD_LIBRARY_PATH, or none at all. Returns the library version it printed.
fn run_app(exe: &Path, ld_path: Option<&Path>) -> String {
    let mut cmd = Command::new(exe);
    cmd.arg(free_port_below_ephemeral().to_string());
    match ld_path {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let out = ok(&mut cmd);
    assert!(out.contains("echo ok"), "{} printed:\n{out}", exe.display());
    out.lines()
        .find_map(|l| l.strip_prefix("version: "))
        .unwrap_or_else(|| panic!("no version line in:\n{out}"))
        .to_string()
}

fn ldd(exe: &Path, ld_path: Option<&Path>) -> String {
    let mut cmd = Command::new("ldd");
    cmd.arg(exe);
    match ld_path {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    run(&mut cmd, Duration::from_secs(30), true).stdout
}

/// The consumers: pkg-config dynamic and static, and CMake.
fn build_consumers(l: &Layout, work: &Path) {
    let lib = l.real_lib();
    let modversion = ok(l.pkg_config().args(["--modversion", "libwebsockets"]));
    let modversion = modversion.trim();

    // dynamic, as documented: cc app.c $(pkg-config --cflags --libs libwebsockets)
    let exe = work.join("app-dynamic");
    let mut flags = l.pc(&["--cflags", "--libs"]);
    assert!(
        flags.contains(&format!("-I{}", l.real_include().display()))
            && flags.contains(&format!("-L{}", lib.display()))
            && flags.contains(&"-lwebsockets".to_string()),
        "pkg-config --cflags --libs: {flags:?}"
    );
    cc(&exe, &flags);
    let version = run_app(&exe, Some(&lib));
    assert_eq!(
        version.split(' ').next(),
        Some(modversion),
        "pkg-config --modversion is the first token of lws_get_library_version()"
    );
    let deps = ldd(&exe, Some(&lib));
    let want = format!("{SONAME} => {}", lib.join(SONAME).display());
    assert!(
        deps.contains(&want),
        "ldd must resolve to the installed copy ({want}):\n{deps}"
    );

    // static, fully: cc -static app.c $(pkg-config --static --cflags --libs libwebsockets)
    let exe = work.join("app-static");
    let static_flags = l.pc(&["--static", "--cflags", "--libs"]);
    for f in ["-lpthread", "-ldl", "-lm"] {
        assert!(
            static_flags.contains(&f.to_string()),
            "--static adds {f}: {static_flags:?}"
        );
    }
    flags = vec!["-static".to_string()];
    flags.extend(static_flags.iter().cloned());
    cc(&exe, &flags);
    run_app(&exe, None);
    let deps = ldd(&exe, None);
    assert!(!deps.contains("libwebsockets"), "static binary:\n{deps}");

    // static libwebsockets, dynamic libc: the library itself taken from the .a
    let exe = work.join("app-static-lws");
    let mut flags = l.pc(&["--cflags"]);
    flags.push("-Wl,-Bstatic".into());
    flags.extend(l.pc(&["--libs-only-L", "--libs-only-l"]));
    flags.push("-Wl,-Bdynamic".into());
    flags.extend(
        l.pc(&["--static", "--libs-only-l"])
            .into_iter()
            .filter(|f| f != "-lwebsockets"),
    );
    cc(&exe, &flags);
    run_app(&exe, None);
    let deps = ldd(&exe, None);
    assert!(
        !deps.contains("libwebsockets") && deps.contains("libc.so"),
        "libwebsockets linked in, libc shared:\n{deps}"
    );

    // CMake: pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
    let build = work.join("cmake-build");
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(repo().join("tests/install/cmake"))
        .arg("-B")
        .arg(&build)
        .arg(format!(
            "-DAPP_SOURCE={}",
            repo().join("tests/install/app.c").display()
        ))
        .env("PKG_CONFIG_PATH", lib.join("pkgconfig"));
    if let Some(d) = &l.destdir {
        configure.env("PKG_CONFIG_SYSROOT_DIR", d);
    }
    let out = ok(&mut configure);
    assert!(
        out.contains(&format!("libwebsockets {modversion}")),
        "cmake found libwebsockets {modversion}:\n{out}"
    );
    ok(Command::new("cmake").arg("--build").arg(&build));
    let exe = build.join("app");
    // CMake links the full path and records it in RUNPATH: no LD_LIBRARY_PATH needed
    run_app(&exe, None);
    let deps = ldd(&exe, None);
    assert!(
        deps.contains(&want),
        "the CMake-built program loads the installed copy ({want}):\n{deps}"
    );
}

fn tools() {
    need_tool("pkg-config", "pkg-config");
    need_tool("cmake", "cmake");
    need_tool("readelf", "binutils");
    need_tool("ldd", "libc-bin");
}

/// PREFIX only: the usual `PREFIX=/opt/x ./install.sh`.
#[test]
fn prefix_install_builds_with_pkg_config_and_cmake_then_uninstalls() {
    tools();
    let tmp = TempDir::new("prefix");
    let prefix = tmp.path().join("prefix");
    let work = tmp.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let l = Layout {
        destdir: None,
        prefix: prefix.clone(),
        libdir: None,
    };
    let out = l.install();
    assert!(out.contains("installed libwebsockets 1.3"), "{out}");
    check_installed_files(&l, &prefix);
    build_consumers(&l, &work);

    // installing again over an existing installation is fine and changes nothing
    l.install();
    check_installed_files(&l, &prefix);

    let out = l.uninstall();
    assert!(out.ok(), "uninstall: {}", out.stderr);
    assert!(
        files_under(&prefix).is_empty(),
        "files left after uninstall: {:?}",
        files_under(&prefix)
    );
    // and again: nothing to remove is not an error
    assert!(l.uninstall().ok());
}

/// DESTDIR staging with a Debian-style LIBDIR: the files go under DESTDIR, the .pc
/// names the final PREFIX, nothing is written outside DESTDIR.
#[test]
fn destdir_staged_install_with_multiarch_libdir() {
    tools();
    let tmp = TempDir::new("destdir");
    let stage = tmp.path().join("stage");
    let work = tmp.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let prefix = PathBuf::from(format!("/opt/lws-install-test-{}", std::process::id()));
    let l = Layout {
        destdir: Some(stage.clone()),
        prefix: prefix.clone(),
        libdir: Some(prefix.join("lib/x86_64-linux-gnu")),
    };
    l.install();
    assert!(!prefix.exists(), "nothing may be written outside DESTDIR");
    check_installed_files(&l, &stage);
    let pc = fs::read_to_string(l.real_lib().join("pkgconfig/libwebsockets.pc")).unwrap();
    assert!(
        pc.contains("libdir=${prefix}/lib/x86_64-linux-gnu\n")
            && pc.contains("includedir=${prefix}/include\n"),
        "{pc}"
    );
    // pkg-config's sysroot support maps the final paths into the staging tree
    build_consumers(&l, &work);

    let out = l.uninstall();
    assert!(out.ok(), "uninstall: {}", out.stderr);
    assert!(files_under(&stage).is_empty(), "{:?}", files_under(&stage));
}

/// uninstall.sh removes its five files and nothing else: a neighbour's files stay,
/// and a libwebsockets.so that is not our symlink, or a .pc we did not write, is
/// left in place and reported (exit status 1).
#[test]
fn uninstall_leaves_other_files_alone() {
    let tmp = TempDir::new("foreign");
    let prefix = tmp.path().join("prefix");
    let l = Layout {
        destdir: None,
        prefix: prefix.clone(),
        libdir: None,
    };
    l.install();
    let lib = prefix.join("lib");
    fs::write(lib.join("libother.so.1"), b"not ours").unwrap();
    fs::write(lib.join("pkgconfig/other.pc"), b"Name: other\n").unwrap();
    fs::write(prefix.join("include/other.h"), b"/* not ours */\n").unwrap();
    let out = l.uninstall();
    assert!(out.ok(), "{}", out.stderr);
    let left: BTreeSet<PathBuf> = [
        lib.join("libother.so.1"),
        lib.join("pkgconfig/other.pc"),
        prefix.join("include/other.h"),
    ]
    .into_iter()
    .collect();
    assert_eq!(files_under(&prefix), left);

    // someone else's libwebsockets files in the way
    fs::write(lib.join("libwebsockets.so"), b"a real file").unwrap();
    fs::write(
        lib.join("pkgconfig/libwebsockets.pc"),
        b"Name: libwebsockets\nVersion: 4.3.2\n",
    )
    .unwrap();
    let out = l.uninstall();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let err = out.stderr;
    assert!(
        err.contains("libwebsockets.so alone") && err.contains("libwebsockets.pc alone"),
        "{err}"
    );
    assert!(lib.join("libwebsockets.so").exists());
    assert!(lib.join("pkgconfig/libwebsockets.pc").exists());
}

/// Relative PREFIX values are refused before anything is written.
#[test]
fn install_refuses_relative_prefix() {
    let tmp = TempDir::new("relative");
    let out = run(
        Command::new("bash")
            .arg(repo().join("install.sh"))
            .current_dir(tmp.path())
            .env("PREFIX", "relative/prefix")
            .env("NO_BUILD", "1")
            .env("BUILD_DIR", lib_dir_with_archive()),
        Duration::from_secs(30),
        true,
    );
    assert!(!out.ok());
    assert!(out.stderr.contains("absolute"), "{}", out.stderr);
    assert!(files_under(tmp.path()).is_empty());
}
