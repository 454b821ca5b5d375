//! The library as C programs see it.
//!
//! * Every `tests/c/*.c` is a self-checking program (run without arguments, exit 0
//!   when all its checks pass). Each is compiled with `-Wall -Wextra -Werror` against
//!   `include/` and the built library, as C and as C++, with and without `-D_DEBUG`,
//!   linked dynamically (rpath to `target/release`, checked with `ldd`) and
//!   statically (`libwebsockets.a -lpthread -ldl -lm`), then run.
//! * `abi-check` (from the sibling `shared/abi/`) must report `0 failed`.
//! * The `.so` exports exactly the API functions and has the original SONAME.
//!
//! The library must have been built first (`cargo build --release`; tests/run-all.sh
//! does it). Build products go to `target/ctests/`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cc::{CBuild, Lang, Link};
use common::paths::{ctests_dir, release_dir, repo, shared_dir};
use common::proc::run;
use common::tools::have;

const SONAME: &str = "libwebsockets.so.4.0.0";

/// The functions the library must export: the v1.23 header's functions minus the two
/// documentation-only prototypes (`callback`, `extension_callback`). This includes
/// the three that the upstream `.so` did not export (`libwebsocket_set_timeout`,
/// `libwebsockets_SHA1`, `lws_b64_decode_string`).
const API_FUNCTIONS: [&str; 39] = [
    "_lws_log",
    "lwsl_hexdump",
    "lws_set_log_level",
    "lwsl_emit_syslog",
    "libwebsocket_create_context",
    "libwebsocket_set_proxy",
    "libwebsocket_context_destroy",
    "libwebsocket_service",
    "libwebsocket_service_fd",
    "libwebsocket_context_user",
    "libwebsocket_set_timeout",
    "libwebsocket_write",
    "libwebsockets_serve_http_file",
    "libwebsockets_serve_http_file_fragment",
    "libwebsockets_get_protocol",
    "libwebsocket_callback_on_writable",
    "libwebsocket_callback_on_writable_all_protocol",
    "libwebsocket_get_socket_fd",
    "libwebsocket_is_final_fragment",
    "libwebsocket_get_reserved_bits",
    "libwebsocket_rx_flow_control",
    "libwebsocket_rx_flow_allow_all_protocol",
    "libwebsockets_remaining_packet_payload",
    "libwebsocket_client_connect",
    "libwebsocket_client_connect_extended",
    "libwebsocket_canonical_hostname",
    "libwebsockets_get_peer_addresses",
    "libwebsockets_get_random",
    "lws_daemonize",
    "lws_send_pipe_choked",
    "lws_frame_is_binary",
    "libwebsockets_SHA1",
    "lws_b64_encode_string",
    "lws_b64_decode_string",
    "lws_get_library_version",
    "lws_hdr_total_length",
    "lws_hdr_copy",
    "libwebsocket_read",
    "libwebsocket_get_internal_extensions",
];

/// Linker-defined symbols that may appear in any shared object's dynamic table.
const STANDARD_SYMBOLS: [&str; 5] = ["_init", "_fini", "_edata", "_end", "__bss_start"];

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const VALGRIND_TIMEOUT: Duration = Duration::from_secs(300);

// ----------------------------------------------------------------- locations

/// The built library, or a panic that says how to build it.
fn built_library() -> (PathBuf, PathBuf) {
    let dir = release_dir();
    let so = dir.join("libwebsockets.so");
    let a = dir.join("libwebsockets.a");
    for f in [&so, &a] {
        assert!(
            f.is_file(),
            "{} is missing: build the library first with `cargo build --release` \
             (tests/run-all.sh does this before running the tests)",
            f.display()
        );
    }
    assert!(
        repo().join("include/libwebsockets.h").is_file(),
        "include/libwebsockets.h is missing: `cargo build --release` generates it"
    );
    (so, a)
}

fn c_programs() -> Vec<PathBuf> {
    let dir = repo().join("tests/c");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no C programs in {}", dir.display());
    v
}

// ------------------------------------------------------------ C program matrix

#[derive(Clone, Copy)]
struct Variant {
    lang: Lang,
    debug: bool,
    link: Link,
}

impl Variant {
    fn name(&self) -> String {
        format!(
            "{}-{}-{}",
            if self.lang == Lang::C { "c" } else { "cxx" },
            if self.debug { "debug" } else { "nodebug" },
            if self.link == Link::Dynamic {
                "dynamic"
            } else {
                "static"
            }
        )
    }
}

/// Compiles one program; returns the binary or the compiler's complaint.
fn compile(src: &Path, variant: Variant, out_dir: &Path) -> Result<PathBuf, String> {
    let mut build = CBuild::new(src, out_dir, &release_dir())
        .lang(variant.lang)
        .link(variant.link);
    if variant.debug {
        build = build.flag("-D_DEBUG");
    }
    build.build()
}

/// For a dynamic build: the loader must resolve our library, by its SONAME, to
/// target/release. For a static one: no libwebsockets at all.
fn check_loaded_library(exe: &Path, link: Link) -> Result<(), String> {
    let r = run(Command::new("ldd").arg(exe), Duration::from_secs(30));
    if !r.ok() {
        return Err(format!("ldd {} failed: {}", exe.display(), r.describe()));
    }
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("libwebsockets"))
        .collect();
    match link {
        Link::Static => {
            if lines.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "statically linked {} still loads a libwebsockets:\n{}",
                    exe.display(),
                    r.stdout
                ))
            }
        }
        Link::Dynamic => {
            let want = release_dir().join("libwebsockets.so");
            let want = want.canonicalize().unwrap_or(want);
            let resolved = lines.iter().find_map(|l| {
                let (name, rest) = l.trim().split_once(" => ")?;
                if name != SONAME {
                    return None;
                }
                let path = rest.split(" (").next()?.trim();
                Some(PathBuf::from(path))
            });
            match resolved {
                Some(p) if p.canonicalize().ok().as_ref() == Some(&want) => Ok(()),
                Some(p) => Err(format!(
                    "{} loads {} instead of {} (a system libwebsockets?)\n{}",
                    exe.display(),
                    p.display(),
                    want.display(),
                    r.stdout
                )),
                None => Err(format!(
                    "{} does not load {SONAME} from target/release:\n{}",
                    exe.display(),
                    r.stdout
                )),
            }
        }
    }
}

fn run_matrix_variant(variant: Variant) {
    built_library();
    let out_dir = ctests_dir(&variant.name());

    let mut failures = Vec::new();
    let mut passed = 0;
    for src in c_programs() {
        let label = format!(
            "{} [{}]",
            src.file_name().unwrap().to_string_lossy(),
            variant.name()
        );
        let exe = match compile(&src, variant, &out_dir) {
            Ok(exe) => exe,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        if let Err(e) = check_loaded_library(&exe, variant.link) {
            failures.push(format!("{label}: {e}"));
            continue;
        }
        let r = run(&mut Command::new(&exe), RUN_TIMEOUT);
        if r.ok() {
            passed += 1;
            println!("ok   {label}: {}", r.stdout.lines().last().unwrap_or(""));
        } else {
            failures.push(format!("{label}: {}", r.describe()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} C program(s) failed in variant {} ({passed} passed):\n\n{}",
        failures.len(),
        variant.name(),
        failures.join("\n\n")
    );
}

#[test]
fn c_programs_c_dynamic() {
    run_matrix_variant(Variant {
        lang: Lang::C,
        debug: false,
        link: Link::Dynamic,
    });
}

#[test]
fn c_programs_c_debug_dynamic() {
    run_matrix_variant(Variant {
        lang: Lang::C,
        debug: true,
        link: Link::Dynamic,
    });
}

#[test]
fn c_programs_c_static() {
    run_matrix_variant(Variant {
        lang: Lang::C,
        debug: false,
        link: Link::Static,
    });
}

#[test]
fn c_programs_c_debug_static() {
    run_matrix_variant(Variant {
        lang: Lang::C,
        debug: true,
        link: Link::Static,
    });
}

#[test]
fn c_programs_cxx_dynamic() {
    run_matrix_variant(Variant {
        lang: Lang::Cxx,
        debug: false,
        link: Link::Dynamic,
    });
}

#[test]
fn c_programs_cxx_debug_dynamic() {
    run_matrix_variant(Variant {
        lang: Lang::Cxx,
        debug: true,
        link: Link::Dynamic,
    });
}

#[test]
fn c_programs_cxx_static() {
    run_matrix_variant(Variant {
        lang: Lang::Cxx,
        debug: false,
        link: Link::Static,
    });
}

#[test]
fn c_programs_cxx_debug_static() {
    run_matrix_variant(Variant {
        lang: Lang::Cxx,
        debug: true,
        link: Link::Static,
    });
}

/// The C programs (C, `_DEBUG`, dynamic) under valgrind's memcheck: no invalid read
/// or write may happen inside the library. Skipped with a notice without valgrind.
#[test]
fn c_programs_valgrind() {
    built_library();
    if !have("valgrind") {
        println!("NOTICE: valgrind not installed; c_programs_valgrind skipped");
        return;
    }
    let variant = Variant {
        lang: Lang::C,
        debug: true,
        link: Link::Dynamic,
    };
    let out_dir = ctests_dir("valgrind");
    let mut failures = Vec::new();
    for src in c_programs() {
        let label = src.file_name().unwrap().to_string_lossy().into_owned();
        let exe = match compile(&src, variant, &out_dir) {
            Ok(exe) => exe,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        let r = run(
            Command::new("valgrind")
                .args(["-q", "--error-exitcode=97", "--leak-check=no"])
                .arg(&exe),
            VALGRIND_TIMEOUT,
        );
        if !r.ok() {
            failures.push(format!("{label} under valgrind: {}", r.describe()));
        }
    }
    assert!(
        failures.is_empty(),
        "C programs failed under valgrind:\n\n{}",
        failures.join("\n\n")
    );
}

// ----------------------------------------------------------------- ABI facts

#[test]
fn abi_check_passes() {
    let (so, _) = built_library();
    let shared = shared_dir();
    let checker = shared.join("abi").join("abi-check");
    if !shared.is_dir() {
        println!(
            "NOTICE: {} is absent; abi_check_passes skipped",
            shared.display()
        );
        return;
    }
    assert!(
        checker.is_file(),
        "{} exists but has no abi/abi-check",
        shared.display()
    );
    let r = run(
        Command::new("python3")
            .arg(&checker)
            .arg("--include")
            .arg(repo().join("include"))
            .arg("--lib")
            .arg(&so)
            .args(["--prototypes", "--strict-exports", "--cxx"])
            .current_dir(repo()),
        Duration::from_secs(300),
    );
    let summary = r
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("abi-check:"))
        .unwrap_or("")
        .to_string();
    println!("{summary}");
    assert!(
        r.ok() && summary.contains(" 0 failed"),
        "abi-check did not pass ({summary}):\n{}",
        r.describe()
    );
}

/// `nm -D --defined-only`: exactly the API functions, as code, plus at most the
/// standard linker symbols.
#[test]
fn exports_exactly_the_api() {
    let (so, _) = built_library();
    let r = run(
        Command::new("nm").args(["-D", "--defined-only"]).arg(&so),
        Duration::from_secs(60),
    );
    assert!(r.ok(), "nm failed: {}", r.describe());

    let mut exported = BTreeSet::new();
    let mut problems = Vec::new();
    for line in r.stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, name) = match fields.as_slice() {
            [_, kind, name] => (*kind, *name),
            [kind, name] => (*kind, *name),
            _ => continue,
        };
        let name = name.split('@').next().unwrap_or(name);
        if API_FUNCTIONS.contains(&name) {
            if kind != "T" {
                problems.push(format!(
                    "{name} is exported as '{kind}', want a function ('T')"
                ));
            }
            exported.insert(name.to_string());
        } else if !STANDARD_SYMBOLS.contains(&name) {
            problems.push(format!("stray exported symbol: {name} ('{kind}')"));
        }
    }
    for f in API_FUNCTIONS {
        if !exported.contains(f) {
            problems.push(format!("missing export: {f}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} export problem(s) in {}:\n{}",
        problems.len(),
        so.display(),
        problems.join("\n")
    );
}

/// The hard-coded list above must match the fact sheet, when the sheet is present.
#[test]
fn api_list_matches_fact_sheet() {
    let sheet = shared_dir().join("abi").join("v1.23.json");
    if !sheet.is_file() {
        println!("NOTICE: {} is absent; skipped", sheet.display());
        return;
    }
    let script = "import json,sys\n\
                  d=json.load(open(sys.argv[1]))\n\
                  print('\\n'.join(f['name'] for f in d['functions'] \
                  if f['name'] not in ('callback','extension_callback')))\n";
    let r = run(
        Command::new("python3").args(["-c", script]).arg(&sheet),
        Duration::from_secs(60),
    );
    assert!(
        r.ok(),
        "reading {} failed: {}",
        sheet.display(),
        r.describe()
    );
    let sheet_names: BTreeSet<&str> = r.stdout.lines().map(str::trim).collect();
    let ours: BTreeSet<&str> = API_FUNCTIONS.iter().copied().collect();
    assert_eq!(
        ours,
        sheet_names,
        "tests/c_api.rs API_FUNCTIONS differs from {}",
        sheet.display()
    );
}

#[test]
fn soname_is_the_original() {
    let (so, _) = built_library();
    let r = run(
        Command::new("readelf").arg("-d").arg(&so),
        Duration::from_secs(60),
    );
    assert!(r.ok(), "readelf failed: {}", r.describe());
    let soname = r
        .stdout
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(|l| l.split('[').nth(1))
        .and_then(|s| s.split(']').next())
        .unwrap_or("")
        .to_string();
    assert_eq!(soname, SONAME, "SONAME of {}", so.display());

    let link = release_dir().join(SONAME);
    assert!(
        link.exists(),
        "{} is missing: programs linked with -lwebsockets need it at run time",
        link.display()
    );
}

/// null_args_test.c must exercise every exported function.
#[test]
fn null_args_test_covers_every_function() {
    let path = repo().join("tests/c/null_args_test.c");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let missing: Vec<&str> = API_FUNCTIONS
        .iter()
        .copied()
        .filter(|f| !text.contains(&format!("{{\"{f}\",")))
        .collect();
    assert!(
        missing.is_empty(),
        "tests/c/null_args_test.c has no case for: {}",
        missing.join(", ")
    );
}
