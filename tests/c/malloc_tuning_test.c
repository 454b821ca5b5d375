/*
 * malloc_tuning_test.c - the library raises glibc's mmap/trim thresholds once a context
 * exists (so per-message buffers of echo-style applications are not page-faulted in
 * again on every message), and leaves them alone when the process opted out with
 * LWS_MALLOC_TUNING=0 or chose its own malloc tunables.
 *
 * Observed from C the only way a program can: whether a fresh 2 MiB malloc() is
 * served by mmap (an mmapped chunk spans whole pages, which malloc_usable_size
 * shows). The opt-out cases re-run this program with the environment changed.
 *
 * Built by tests/c_api.rs as C and as C++, with and without -D_DEBUG, linked
 * dynamically and statically. Exits 0 when every check passes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <libwebsockets.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__GLIBC__)

static int big_block_is_mmapped(void)
{
	void *p = malloc(2u << 20);
	size_t usable;

	if (!p) {
		fprintf(stderr, "FAIL: malloc(2 MiB)\n");
		exit(1);
	}
	/*
	 * An mmapped chunk spans whole pages and keeps two size words of overhead;
	 * a heap chunk for this request has 8 spare bytes and does not end on a page.
	 */
	usable = malloc_usable_size(p);
	free(p);
	return (usable + 2 * sizeof(size_t)) % 4096 == 0;
}

static int no_op_callback(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
			  enum libwebsocket_callback_reasons reason, void *user, void *in,
			  size_t len)
{
	(void)ctx;
	(void)wsi;
	(void)reason;
	(void)user;
	(void)in;
	(void)len;
	return 0;
}

static struct libwebsocket_context *make_context(void)
{
	static struct libwebsocket_protocols protocols[2];
	struct lws_context_creation_info info;

	memset(protocols, 0, sizeof protocols);
	protocols[0].name = "x";
	protocols[0].callback = no_op_callback;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	return libwebsocket_create_context(&info);
}

/* Runs this program again as "expect-mmapped" with one environment variable set. */
static int rerun_expecting_mmap(const char *self, const char *var, const char *value)
{
	pid_t pid = fork();
	int status = 0;

	if (pid < 0)
		return 0;
	if (pid == 0) {
		setenv(var, value, 1);
		execl(self, self, "expect-mmapped", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	struct libwebsocket_context *ctx;
	int expect_mmapped = argc > 1 && !strcmp(argv[1], "expect-mmapped");
	int failures = 0;

	/*
	 * No probe before the context: freeing an mmapped block would itself raise
	 * glibc's dynamic threshold and hide what the library did.
	 */
	lws_set_log_level(LLL_ERR, NULL);
	ctx = make_context();
	if (!ctx) {
		fprintf(stderr, "FAIL: context creation\n");
		return 1;
	}
	if (big_block_is_mmapped() != expect_mmapped) {
		fprintf(stderr, "FAIL: after context creation 2 MiB block %s mmapped\n",
			expect_mmapped ? "is not" : "is");
		failures++;
	}
	libwebsocket_context_destroy(ctx);
	if (expect_mmapped)
		return failures ? 1 : 0;

	if (!rerun_expecting_mmap(argv[0], "LWS_MALLOC_TUNING", "0")) {
		fprintf(stderr, "FAIL: LWS_MALLOC_TUNING=0 not respected\n");
		failures++;
	}
	if (!rerun_expecting_mmap(argv[0], "GLIBC_TUNABLES",
				  "glibc.malloc.mmap_threshold=131072")) {
		fprintf(stderr, "FAIL: GLIBC_TUNABLES malloc setting not respected\n");
		failures++;
	}
	if (!rerun_expecting_mmap(argv[0], "MALLOC_TRIM_THRESHOLD_", "131072")) {
		fprintf(stderr, "FAIL: MALLOC_TRIM_THRESHOLD_ not respected\n");
		failures++;
	}
	printf("malloc_tuning_test: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}

#else

int main(void)
{
	printf("malloc_tuning_test: not glibc, nothing to check\n");
	return 0;
}

#endif
