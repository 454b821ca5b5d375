/*
 * daemonize_test.c - lws_daemonize() with a lock file, from C.
 *
 * lws_daemonize() makes its caller exit, so every call happens in a forked child.
 * The test process makes itself a child subreaper (Linux) so the daemon is
 * re-parented to it and can be reaped. Every wait is bounded (5 s), and the daemon
 * gives up by itself after 20 s, so nothing outlives a failed run for long.
 *
 * Scenario:
 *  1. child A calls lws_daemonize(lock); A must exit 0, the daemon (returned 0)
 *     writes a marker file with its pid and sleeps;
 *  2. the lock file appears and holds the daemon's pid;
 *  3. child B calls lws_daemonize(lock) while the daemon lives: must return non-zero;
 *  4. SIGTERM to the daemon removes the lock file;
 *  5. a stale lock file (pid of a dead process) does not stop a new daemon.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <libwebsockets.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			failures++;                                             \
			fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__,          \
				__LINE__, #cond);                               \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

#define WAIT_S 5.0

static char dir[64];
static char lock_path[128];
static char marker_path[128];
static pid_t daemons[4];
static int n_daemons;
static int subreaper;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a decimal pid from a file; 0 when absent or unreadable. */
static pid_t read_pid(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY);
	long v;
	char *end;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	while (*end == '\n' || *end == ' ' || *end == '\r')
		end++;
	if (*end != '\0' || v <= 0)
		return 0;
	return (pid_t)v;
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Polls until the file exists (want = 1) or is gone (want = 0). */
static int wait_file(const char *path, int want)
{
	double deadline = now_s() + WAIT_S;

	while (now_s() < deadline) {
		if (exists(path) == want)
			return 1;
		usleep(5000);
	}
	return exists(path) == want;
}

/* Waits for a pid to end; returns 1 and its status, or 0 after WAIT_S. */
static int wait_child(pid_t pid, int *status)
{
	double deadline = now_s() + WAIT_S;
	pid_t w;

	for (;;) {
		w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			return 1;
		if (w < 0 && errno != EINTR)
			return 0;
		if (now_s() >= deadline)
			return 0;
		usleep(5000);
	}
}

/* Is pid gone (reaped, or at least not running)? Bounded. */
static int wait_gone(pid_t pid)
{
	double deadline = now_s() + WAIT_S;
	int status;

	while (now_s() < deadline) {
		if (subreaper) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid || (w < 0 && errno == ECHILD))
				return 1;
		} else {
			char path[64], stat_line[256];
			FILE *f;

			if (kill(pid, 0) != 0)
				return 1;
			/* a zombie re-parented to a non-reaping init counts as gone */
			snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
			f = fopen(path, "r");
			if (!f)
				return 1;
			if (fgets(stat_line, sizeof(stat_line), f)) {
				char *p = strrchr(stat_line, ')');
				if (p && p[1] == ' ' && p[2] == 'Z') {
					fclose(f);
					return 1;
				}
			}
			fclose(f);
		}
		usleep(5000);
	}
	return 0;
}

/* What the daemon does after lws_daemonize() returned 0 in it. */
static void daemon_body(void)
{
	char tmp[160];
	char text[32];
	int fd, i, len;

	snprintf(tmp, sizeof(tmp), "%s.tmp", marker_path);
	fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		_exit(10);
	len = snprintf(text, sizeof(text), "%d\n", (int)getpid());
	if (write(fd, text, (size_t)len) != len)
		_exit(11);
	close(fd);
	if (rename(tmp, marker_path) != 0)
		_exit(12);
	for (i = 0; i < 200; i++)
		usleep(100000);
	_exit(0);
}

/*
 * Forks a child that calls lws_daemonize(lock_path). Returns the child's pid.
 * In the child: a daemon (return 0) runs daemon_body(); a refusal exits 42.
 */
static pid_t spawn_daemonizer(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		int n = lws_daemonize(lock_path);

		if (n == 0)
			daemon_body();
		_exit(42);
	}
	return pid;
}

static void remember_daemon(pid_t pid)
{
	if (pid > 0 && n_daemons < (int)(sizeof(daemons) / sizeof(daemons[0])))
		daemons[n_daemons++] = pid;
}

/* Starts a daemon and returns its pid, or 0 after reporting why it failed. */
static pid_t start_daemon(const char *what)
{
	int status = 0;
	pid_t a, d, locked;

	unlink(marker_path);
	a = spawn_daemonizer();
	if (a < 0) {
		CHECK(0, "%s: fork: %s", what, strerror(errno));
		return 0;
	}
	if (!wait_child(a, &status)) {
		kill(a, SIGKILL);
		waitpid(a, &status, 0);
		CHECK(0, "%s: the calling process of lws_daemonize did not exit within 5 s",
		      what);
		return 0;
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "%s: the process calling lws_daemonize ended with %s %d (want exit 0; 42 = it returned non-zero)",
	      what, WIFEXITED(status) ? "exit" : "signal",
	      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));

	CHECK(wait_file(marker_path, 1),
	      "%s: the daemon did not write its marker file within 5 s", what);
	d = read_pid(marker_path);
	if (d <= 0) {
		CHECK(0, "%s: no daemon pid in the marker file", what);
		return 0;
	}
	remember_daemon(d);
	CHECK(d != a, "%s: the daemon is the calling process itself", what);
	CHECK(kill(d, 0) == 0, "%s: daemon %d is not running", what, (int)d);
	CHECK(getsid(d) == d,
	      "%s: daemon %d did not start a new session (sid %d)", what, (int)d,
	      (int)getsid(d));

	CHECK(wait_file(lock_path, 1), "%s: lock file %s was not created", what,
	      lock_path);
	locked = read_pid(lock_path);
	CHECK(locked == d, "%s: lock file holds pid %d, the daemon is %d", what,
	      (int)locked, (int)d);
	return d;
}

static void stop_daemon(pid_t d, const char *what)
{
	CHECK(kill(d, SIGTERM) == 0, "%s: kill(%d, SIGTERM): %s", what, (int)d,
	      strerror(errno));
	CHECK(wait_file(lock_path, 0),
	      "%s: lock file still present 5 s after SIGTERM to the daemon", what);
	CHECK(wait_gone(d), "%s: daemon %d still alive 5 s after SIGTERM", what,
	      (int)d);
}

static void cleanup(void)
{
	char tmp[160];
	int i, status;

	for (i = 0; i < n_daemons; i++)
		if (kill(daemons[i], 0) == 0) {
			kill(daemons[i], SIGKILL);
			if (subreaper)
				waitpid(daemons[i], &status, 0);
		}
	if (subreaper)
		while (waitpid(-1, &status, WNOHANG) > 0)
			;
	unlink(lock_path);
	for (i = 1; i <= 2; i++) {
		snprintf(tmp, sizeof(tmp), "%s/daemon-%d", dir, i);
		unlink(tmp);
		snprintf(tmp, sizeof(tmp), "%s/daemon-%d.tmp", dir, i);
		unlink(tmp);
	}
	if (dir[0])
		rmdir(dir);
}

int main(void)
{
	int status = 0, fd;
	pid_t d, b, dead;
	char text[32];

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

	subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
	if (!subreaper)
		printf("daemonize_test: note: no child subreaper (%s); checking by kill(0)\n",
		       strerror(errno));

	snprintf(dir, sizeof(dir), "/tmp/lws-daemonize-XXXXXX");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "FAIL mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(lock_path, sizeof(lock_path), "%s/test.lock", dir);
	snprintf(marker_path, sizeof(marker_path), "%s/daemon-1", dir);

	/* 1-2: a first daemon */
	d = start_daemon("first daemon");

	/* 3: a second lws_daemonize with the same lock file is refused */
	if (d > 0) {
		b = spawn_daemonizer();
		CHECK(b > 0, "fork: %s", strerror(errno));
		if (b > 0) {
			if (!wait_child(b, &status)) {
				kill(b, SIGKILL);
				waitpid(b, &status, 0);
				CHECK(0, "second lws_daemonize: caller still running after 5 s");
			} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
				CHECK(0, "second lws_daemonize while the daemon holds the lock did not return non-zero (the caller exited as if a new daemon started)");
				if (wait_file(marker_path, 1))
					remember_daemon(read_pid(marker_path));
			} else {
				CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42,
				      "second lws_daemonize: caller ended with status 0x%x, want exit 42 (non-zero return)",
				      status);
			}
		}
		CHECK(read_pid(lock_path) == d,
		      "after the refused second call the lock file holds %d, want %d",
		      (int)read_pid(lock_path), (int)d);
		CHECK(kill(d, 0) == 0, "the first daemon died during the second call");

		/* 4: SIGTERM removes the lock file */
		stop_daemon(d, "first daemon");
	}

	/* 5: a stale lock file from a dead process is replaced */
	dead = fork();
	if (dead == 0)
		_exit(0);
	if (dead > 0) {
		waitpid(dead, &status, 0);
		fd = open(lock_path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		CHECK(fd >= 0, "cannot write a stale lock file: %s",
		      strerror(errno));
		if (fd >= 0) {
			int len = snprintf(text, sizeof(text), "%d", (int)dead);
			CHECK(write(fd, text, (size_t)len) == len,
			      "short write of the stale lock file");
			close(fd);
		}
		snprintf(marker_path, sizeof(marker_path), "%s/daemon-2", dir);
		d = start_daemon("daemon over a stale lock");
		if (d > 0)
			stop_daemon(d, "daemon over a stale lock");
	}

	cleanup();

	if (failures) {
		fprintf(stderr, "daemonize_test: %d checks FAILED\n", failures);
		return 1;
	}
	printf("daemonize_test: all checks passed\n");
	return 0;
}
