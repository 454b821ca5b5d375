//! Processes: commands run to their end within a limit, background processes killed by
//! their PID when dropped, and servers started on a free port.
//!
//! Every spawned command gets, unless the caller set them: stdin from /dev/null, the
//! repository as working directory, and no inherited `LD_LIBRARY_PATH` (cargo's could
//! make the loader pick another copy of the library than the one the rpath names).

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, sleep, JoinHandle};
use std::time::{Duration, Instant};

use super::net::{accepts, free_port};
use super::paths::{repo, TempDir};

/// How long a command told to stop (SIGTERM) at its deadline gets before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// How long the output of an exited process may take to arrive.
const DRAIN: Duration = Duration::from_secs(5);

fn prepare(cmd: &mut Command) {
    if !cmd.get_envs().any(|(k, _)| k == "LD_LIBRARY_PATH") {
        cmd.env_remove("LD_LIBRARY_PATH");
    }
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(repo());
    }
    cmd.stdin(Stdio::null());
}

/// kill(2) of the process group led by `pid` (a child started with `process_group(0)`).
fn kill_group(pid: u32, sig: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on the process group of our own child; no memory is involved.
        unsafe { libc::kill(-pid, sig) };
    }
}

/// kill(2) of one process, our own child.
fn kill_pid(pid: u32, sig: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on the PID of our own child, not reaped yet; no memory involved.
        unsafe { libc::kill(pid, sig) };
    }
}

/// `wrapper...` then `bin`: a program under valgrind, prlimit, env... (just `bin` when
/// `wrapper` is empty).
pub fn wrapped(wrapper: &[&str], bin: &Path) -> Command {
    match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

// ----------------------------------------------------------------- output

/// What a thread reads from one of a child's pipes.
struct Collector {
    text: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl Collector {
    /// Reads `pipe` to its end.
    fn start<R: Read + Send + 'static>(mut pipe: R) -> Collector {
        let text = Arc::new(Mutex::new(Vec::new()));
        let keep = text.clone();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 16384];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => keep.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        Collector { text, reader }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    fn done(&self) -> bool {
        self.reader.is_finished()
    }
}

/// Waits (up to DRAIN) until the pipes reached their end. When something the process
/// started still holds them then, the process group led by `pid` is killed and waited
/// for once more.
fn drain(pid: u32, collectors: &[&Collector]) {
    let wait = || {
        let deadline = Instant::now() + DRAIN;
        while !collectors.iter().all(|c| c.done()) && Instant::now() < deadline {
            sleep(Duration::from_millis(10));
        }
        collectors.iter().all(|c| c.done())
    };
    if !wait() {
        kill_group(pid, libc::SIGKILL);
        wait();
    }
}

// ----------------------------------------------------------------- bounded runs

/// How a command run by [`run`] or [`run_merged`] ended.
pub struct Finished {
    /// None when it could not be started or waited for.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// It was still running at its limit and was killed.
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Finished {
    /// Exit status 0 before the limit.
    pub fn ok(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// How it ended, and its output, for an assertion message.
    pub fn describe(&self) -> String {
        let how = match (self.timed_out, self.status) {
            (true, _) => "timed out (killed)".to_string(),
            (false, Some(s)) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit status {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s}"),
            },
            (false, None) => "could not be started or waited for".to_string(),
        };
        format!(
            "{how} after {:.1}s\n--- stdout ---\n{}--- stderr ---\n{}",
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `cmd` to its end, its stdout and stderr captured apart. It leads a process group
/// of its own; at `limit` the group (what it started too) gets SIGTERM, then SIGKILL.
pub fn run(cmd: &mut Command, limit: Duration) -> Finished {
    run_to_end(cmd, limit, false)
}

/// As [`run`], with stdout and stderr as one stream, in the order written, in `stdout`.
pub fn run_merged(cmd: &mut Command, limit: Duration) -> Finished {
    run_to_end(cmd, limit, true)
}

fn run_to_end(cmd: &mut Command, limit: Duration, merged: bool) -> Finished {
    prepare(cmd);
    cmd.process_group(0);
    let mut one_pipe = None;
    if merged {
        match std::io::pipe().and_then(|(r, w)| Ok((r, w.try_clone()?, w))) {
            Ok((r, w1, w2)) => {
                cmd.stdout(w1).stderr(w2);
                one_pipe = Some(r);
            }
            Err(e) => panic!("pipe: {e}"),
        }
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let start = Instant::now();
    let spawned = cmd.spawn();
    // the Command holds the write ends of the merged pipe: no end of file while it does
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Finished {
                status: None,
                stdout: String::new(),
                stderr: format!("cannot start {cmd:?}: {e}\n"),
                timed_out: false,
                elapsed: Duration::ZERO,
            }
        }
    };
    let out = match one_pipe {
        Some(r) => Collector::start(r),
        None => Collector::start(child.stdout.take().unwrap()),
    };
    let err = child.stderr.take().map(Collector::start);
    let pid = child.id();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() >= limit => {
                timed_out = true;
                kill_group(pid, libc::SIGTERM);
                let deadline = Instant::now() + GRACE;
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    sleep(Duration::from_millis(20));
                }
                kill_group(pid, libc::SIGKILL);
                break child.wait().ok();
            }
            Ok(None) => sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let elapsed = start.elapsed();
    let mut collectors = vec![&out];
    collectors.extend(err.as_ref());
    drain(pid, &collectors);
    Finished {
        status,
        stdout: out.text(),
        stderr: err.map(|e| e.text()).unwrap_or_default(),
        timed_out,
        elapsed,
    }
}

// ----------------------------------------------------------------- background processes

/// A process that runs beside the test (a server, a proxy, a client holding
/// connections), killed by its PID when dropped. Its stdout and stderr go to files
/// (what it has written is there to read at once); stdout lines can also be waited for
/// one by one.
pub struct Background {
    pub name: String,
    /// The port given to it by [`start_server`] (0 otherwise).
    pub port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    /// stdout.log and stderr.log.
    logs: TempDir,
    /// How much of stdout the line readers have gone through.
    read_to: usize,
    dir: Option<TempDir>,
}

impl Background {
    /// Starts `cmd` (stdin from /dev/null); panics when it cannot be started.
    pub fn start(name: &str, cmd: &mut Command) -> Background {
        Self::spawn(name, cmd, false)
    }

    /// As [`Background::start`], with a pipe to its stdin, open until
    /// [`Background::close_stdin`].
    pub fn start_with_stdin(name: &str, cmd: &mut Command) -> Background {
        Self::spawn(name, cmd, true)
    }

    fn spawn(name: &str, cmd: &mut Command, with_stdin: bool) -> Background {
        prepare(cmd);
        if with_stdin {
            cmd.stdin(Stdio::piped());
        }
        let logs = TempDir::new("output");
        let file = |f: &str| {
            File::create(logs.path().join(f))
                .unwrap_or_else(|e| panic!("cannot create {f} for {name}: {e}"))
        };
        let mut child = cmd
            .stdout(file("stdout.log"))
            .stderr(file("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Background {
            name: name.to_string(),
            port: 0,
            stdin: child.stdin.take(),
            child,
            logs,
            read_to: 0,
            dir: None,
        }
    }

    /// Keeps `dir` (its working directory, say) until the process is dropped.
    pub fn keep_dir(&mut self, dir: TempDir) {
        self.dir = Some(dir);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin: end of file for it.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    // --- output

    fn log(&self, name: &str) -> String {
        String::from_utf8_lossy(&fs::read(self.logs.path().join(name)).unwrap_or_default())
            .into_owned()
    }

    pub fn stdout(&self) -> String {
        self.log("stdout.log")
    }

    pub fn stderr(&self) -> String {
        self.log("stderr.log")
    }

    /// Both streams, labelled, for an assertion message.
    pub fn output(&self) -> String {
        format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            self.stdout(),
            self.name,
            self.stderr()
        )
    }

    /// The last 40 lines of each stream, labelled.
    pub fn tail(&self) -> String {
        let last = |s: String| {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- {} stdout (tail) ---\n{}\n--- {} stderr (tail) ---\n{}",
            self.name,
            last(self.stdout()),
            self.name,
            last(self.stderr())
        )
    }

    /// The next stdout line (after those this has returned or passed over) starting
    /// with `prefix`, within `limit`; None also when the process ended without one.
    pub fn try_line_starting(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            // once it has exited, what the file holds is all there will be
            let ended = matches!(self.child.try_wait(), Ok(Some(_)));
            let out = fs::read(self.logs.path().join("stdout.log")).unwrap_or_default();
            while self.read_to < out.len() {
                let rest = &out[self.read_to..];
                let line = match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => &rest[..i],
                    None if ended => rest,
                    None => break,
                };
                self.read_to += (line.len() + 1).min(rest.len());
                let line = String::from_utf8_lossy(line);
                let line = line.trim_end_matches('\r');
                if line.starts_with(prefix) {
                    return Some(line.to_string());
                }
            }
            if ended || Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// The next stdout line starting with `prefix`, within `limit`; panics otherwise.
    pub fn line_starting(&mut self, prefix: &str, limit: Duration) -> String {
        self.try_line_starting(prefix, limit).unwrap_or_else(|| {
            panic!(
                "{}: no line starting with '{prefix}' within {limit:?}\n{}",
                self.name,
                self.output()
            )
        })
    }

    /// The port in its first stdout line "`word` PORT", within 20 s.
    pub fn read_port(&mut self, word: &str) -> u16 {
        let prefix = format!("{word} ");
        let line = self.line_starting(&prefix, Duration::from_secs(20));
        line[prefix.len()..]
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}: bad port line '{line}'", self.name))
    }

    /// The first stdout line so far (not only the new ones) that starts with `prefix`,
    /// waiting up to `within` for it.
    pub fn find_line(&self, prefix: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.stdout().lines().find(|l| l.starts_with(prefix)) {
                return Some(l.to_string());
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `within` until `pred` holds for its stderr.
    pub fn wait_for_stderr(&self, pred: impl Fn(&str) -> bool, within: Duration) -> bool {
        wait_for_text(|| self.stderr(), pred, within)
    }

    /// Waits up to `within` until `pred` holds for its stdout.
    pub fn wait_for_stdout(&self, pred: impl Fn(&str) -> bool, within: Duration) -> bool {
        wait_for_text(|| self.stdout(), pred, within)
    }

    // --- life

    /// Its exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Panics, with its output, when it has exited.
    pub fn assert_alive(&mut self, when: &str) {
        if let Some(st) = self.exited() {
            panic!("{} exited ({st}) {when}\n{}", self.name, self.tail());
        }
    }

    /// Waits up to `within` for it to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` and waits up to `within` for the exit; SIGKILL after that (None).
    pub fn stop(&mut self, sig: i32, within: Duration) -> Option<ExitStatus> {
        if let Some(st) = self.exited() {
            return Some(st);
        }
        kill_pid(self.pid(), sig);
        let st = self.wait_exit(within);
        if st.is_none() {
            self.kill();
        }
        st
    }

    /// SIGTERM, and asserts that it exits with status 0 within 10 s.
    pub fn stop_cleanly(mut self) {
        match self.stop(libc::SIGTERM, Duration::from_secs(10)) {
            Some(st) if st.success() => {}
            other => panic!(
                "{} did not exit cleanly on SIGTERM ({other:?})\n{}",
                self.name,
                self.tail()
            ),
        }
    }

    /// SIGKILL by its PID, then reaps it (waiting at most 5 s).
    pub fn kill(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = self.child.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
    }

    // --- resources, from /proc

    /// How many descriptors it has open.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// A "kB" field of /proc/PID/status (`VmRSS:`, `VmHWM:`...), 0 when unreadable.
    pub fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }
}

/// Polls `text()` every 50 ms until `pred` holds (true) or `within` has passed.
fn wait_for_text(text: impl Fn() -> String, pred: impl Fn(&str) -> bool, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pred(&text()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the server `make(port)` builds for a free port and waits up to `ready_within`
/// until the port accepts connections. When it exits before that (the port was taken
/// meanwhile, say), another port is tried, `attempts` in all; a server that neither
/// exits nor listens is a panic at once.
pub fn start_server(
    name: &str,
    attempts: u32,
    ready_within: Duration,
    mut make: impl FnMut(u16) -> Command,
) -> Background {
    let mut last = String::new();
    for _ in 0..attempts {
        let port = free_port();
        let mut server = Background::start(name, &mut make(port));
        server.port = port;
        let deadline = Instant::now() + ready_within;
        loop {
            if let Some(st) = server.exited() {
                last = format!("exited early ({st})\n{}", server.tail());
                break;
            }
            if accepts(port) {
                return server;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{name} did not listen on port {port} within {ready_within:?}\n{}",
                    server.tail()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }
    panic!("cannot start {name} ({attempts} attempts): {last}");
}

/// `wrapper... bin args...` (see [`wrapped`]) started by [`start_server`] (3 attempts),
/// `{port}` in `args` replaced by its port.
pub fn start_program(
    wrapper: &[&str],
    bin: &Path,
    args: &[&str],
    ready_within: Duration,
) -> Background {
    start_program_with(wrapper, bin, args, ready_within, |_| {})
}

/// As [`start_program`], with `setup` applied to each command (environment, working
/// directory).
pub fn start_program_with(
    wrapper: &[&str],
    bin: &Path,
    args: &[&str],
    ready_within: Duration,
    setup: impl Fn(&mut Command),
) -> Background {
    let name = bin.file_name().unwrap().to_string_lossy().into_owned();
    start_server(&name, 3, ready_within, |port| {
        let mut cmd = wrapped(wrapper, bin);
        cmd.args(args.iter().map(|a| a.replace("{port}", &port.to_string())));
        setup(&mut cmd);
        cmd
    })
}
