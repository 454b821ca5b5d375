/*
 * null_args_test.c - every function of the libwebsockets v1.23 API called with NULL
 * (and otherwise invalid) arguments must return its error value and not crash.
 *
 * Each case runs in its own forked child, so a crash is reported by name (with the
 * signal) and the remaining cases still run. A case that does not finish within
 * 5 s is killed and counted as failed. Exit status 0 when every case passed.
 *
 * tests/c_api.rs checks that this file names every exported API function.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <libwebsockets.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int case_failures;

#define EXPECT(cond, ...)                                                       \
	do {                                                                    \
		if (!(cond)) {                                                  \
			case_failures++;                                        \
			fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__,          \
				__LINE__, #cond);                               \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

typedef void (*case_fn)(void);

/* ------------------------------------------------------------- the cases */

static void c_lws_log(void)
{
	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_NOTICE, NULL);
	_lws_log(LLL_ERR, NULL);
	_lws_log(LLL_WARN, NULL);
	_lws_log(0, NULL);
	_lws_log(LLL_ERR, "%s", "");
}

static void c_set_log_level(void)
{
	lws_set_log_level(0, NULL);
	lws_set_log_level(-1, NULL);
	lws_set_log_level(LLL_ERR, NULL);
	lwsl_err("null_args_test: still logging after NULL emitters\n");
}

static void c_emit_syslog(void)
{
	lwsl_emit_syslog(LLL_ERR, NULL);
	lwsl_emit_syslog(0, NULL);
	lwsl_emit_syslog(-1, "null_args_test: odd level\n");
}

static void c_hexdump(void)
{
#ifdef _DEBUG
	lws_set_log_level(LLL_DEBUG, NULL);
	lwsl_hexdump(NULL, 0);
	lwsl_hexdump(NULL, 16);
	lws_set_log_level(LLL_ERR, NULL);
	lwsl_hexdump(NULL, 16);
#endif
}

static void c_create_context(void)
{
	struct libwebsocket_context *ctx = libwebsocket_create_context(NULL);

	EXPECT(ctx == NULL, "libwebsocket_create_context(NULL) = %p, want NULL",
	       (void *)ctx);
}

static void c_set_proxy(void)
{
	int n = libwebsocket_set_proxy(NULL, NULL);

	EXPECT(n == -1, "libwebsocket_set_proxy(NULL, NULL) = %d, want -1", n);
	n = libwebsocket_set_proxy(NULL, "proxy.invalid:8080");
	EXPECT(n == -1, "libwebsocket_set_proxy(NULL, \"...\") = %d, want -1",
	       n);
}

static void c_context_destroy(void)
{
	libwebsocket_context_destroy(NULL);
}

static void c_service(void)
{
	int n = libwebsocket_service(NULL, 0);

	EXPECT(n < 0, "libwebsocket_service(NULL, 0) = %d, want negative", n);
	n = libwebsocket_service(NULL, 10);
	EXPECT(n < 0, "libwebsocket_service(NULL, 10) = %d, want negative", n);
	n = libwebsocket_service(NULL, -1);
	EXPECT(n < 0, "libwebsocket_service(NULL, -1) = %d, want negative", n);
}

static void c_service_fd(void)
{
	struct pollfd pfd;
	int n = libwebsocket_service_fd(NULL, NULL);

	EXPECT(n < 0, "libwebsocket_service_fd(NULL, NULL) = %d, want negative",
	       n);
	pfd.fd = 0;
	pfd.events = POLLIN;
	pfd.revents = POLLIN;
	n = libwebsocket_service_fd(NULL, &pfd);
	EXPECT(n < 0, "libwebsocket_service_fd(NULL, &pfd) = %d, want negative",
	       n);
}

static void c_context_user(void)
{
	void *p = libwebsocket_context_user(NULL);

	EXPECT(p == NULL, "libwebsocket_context_user(NULL) = %p, want NULL", p);
}

static void c_set_timeout(void)
{
	libwebsocket_set_timeout(NULL, PENDING_TIMEOUT_AWAITING_PING, 5);
	libwebsocket_set_timeout(NULL, NO_PENDING_TIMEOUT, 0);
	libwebsocket_set_timeout(NULL, (enum pending_timeout)15, -1);
}

static void c_write(void)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 5 +
			  LWS_SEND_BUFFER_POST_PADDING];
	int n;

	memcpy(buf + LWS_SEND_BUFFER_PRE_PADDING, "hello", 5);
	n = libwebsocket_write(NULL, buf + LWS_SEND_BUFFER_PRE_PADDING, 5,
			       LWS_WRITE_TEXT);
	EXPECT(n == -1, "libwebsocket_write(NULL wsi, text) = %d, want -1", n);
	n = libwebsocket_write(NULL, buf + LWS_SEND_BUFFER_PRE_PADDING, 5,
			       (enum libwebsocket_write_protocol)(
				       LWS_WRITE_BINARY | LWS_WRITE_NO_FIN));
	EXPECT(n == -1,
	       "libwebsocket_write(NULL wsi, binary|NO_FIN) = %d, want -1", n);
	n = libwebsocket_write(NULL, NULL, 0, LWS_WRITE_HTTP);
	EXPECT(n == -1, "libwebsocket_write(NULL, NULL, 0) = %d, want -1", n);
	n = libwebsocket_write(NULL, NULL, 100, LWS_WRITE_CLOSE);
	EXPECT(n == -1, "libwebsocket_write(NULL, NULL, 100) = %d, want -1", n);
}

static void c_hdr_total_length(void)
{
	int n = lws_hdr_total_length(NULL, WSI_TOKEN_HOST);

	EXPECT(n == 0 || n == -1,
	       "lws_hdr_total_length(NULL, HOST) = %d, want 0 or -1", n);
	n = lws_hdr_total_length(NULL, WSI_TOKEN_COUNT);
	EXPECT(n == 0 || n == -1,
	       "lws_hdr_total_length(NULL, COUNT) = %d, want 0 or -1", n);
	n = lws_hdr_total_length(NULL, (enum lws_token_indexes)31);
	EXPECT(n == 0 || n == -1,
	       "lws_hdr_total_length(NULL, 31) = %d, want 0 or -1", n);
}

static void c_hdr_copy(void)
{
	char buf[32];
	int n;

	memset(buf, 'x', sizeof(buf));
	n = lws_hdr_copy(NULL, buf, (int)sizeof(buf), WSI_TOKEN_GET_URI);
	EXPECT(n == -1 || n == 0, "lws_hdr_copy(NULL, buf) = %d, want -1 or 0",
	       n);
	if (n == 0)
		EXPECT(buf[0] == '\0' || buf[0] == 'x',
		       "lws_hdr_copy(NULL, buf) returned 0 but wrote text");
	n = lws_hdr_copy(NULL, NULL, 0, WSI_TOKEN_HOST);
	EXPECT(n == -1 || n == 0, "lws_hdr_copy(NULL, NULL, 0) = %d", n);
	n = lws_hdr_copy(NULL, NULL, 64, WSI_TOKEN_HOST);
	EXPECT(n == -1 || n == 0, "lws_hdr_copy(NULL, NULL, 64) = %d", n);
	n = lws_hdr_copy(NULL, buf, -1, (enum lws_token_indexes)31);
	EXPECT(n == -1 || n == 0, "lws_hdr_copy(NULL, buf, -1, 31) = %d", n);
}

static void c_serve_http_file(void)
{
	int n = libwebsockets_serve_http_file(NULL, NULL, NULL, NULL);

	EXPECT(n == -1,
	       "libwebsockets_serve_http_file(NULL x4) = %d, want -1", n);
	n = libwebsockets_serve_http_file(NULL, NULL, "/etc/hostname",
					  "text/plain");
	EXPECT(n == -1,
	       "libwebsockets_serve_http_file(NULL ctx/wsi, file) = %d, want -1",
	       n);
}

static void c_serve_http_file_fragment(void)
{
	int n = libwebsockets_serve_http_file_fragment(NULL, NULL);

	EXPECT(n < 0,
	       "libwebsockets_serve_http_file_fragment(NULL, NULL) = %d, want negative",
	       n);
}

static void c_get_protocol(void)
{
	const struct libwebsocket_protocols *p = libwebsockets_get_protocol(NULL);

	EXPECT(p == NULL, "libwebsockets_get_protocol(NULL) = %p, want NULL",
	       (const void *)p);
}

static void c_callback_on_writable(void)
{
	int n = libwebsocket_callback_on_writable(NULL, NULL);

	EXPECT(n == -1,
	       "libwebsocket_callback_on_writable(NULL, NULL) = %d, want -1", n);
}

static void c_callback_on_writable_all_protocol(void)
{
	struct libwebsocket_protocols unregistered;
	int n = libwebsocket_callback_on_writable_all_protocol(NULL);

	EXPECT(n == -1,
	       "libwebsocket_callback_on_writable_all_protocol(NULL) = %d, want -1",
	       n);

	/* a protocol that belongs to no context */
	memset(&unregistered, 0, sizeof(unregistered));
	unregistered.name = "never-registered";
	n = libwebsocket_callback_on_writable_all_protocol(&unregistered);
	EXPECT(n == -1 || n == 0,
	       "callback_on_writable_all_protocol(unregistered) = %d, want -1 or 0",
	       n);
}

static void c_get_socket_fd(void)
{
	int n = libwebsocket_get_socket_fd(NULL);

	EXPECT(n == -1, "libwebsocket_get_socket_fd(NULL) = %d, want -1", n);
}

static void c_is_final_fragment(void)
{
	int n = libwebsocket_is_final_fragment(NULL);

	EXPECT(n == 0 || n == 1,
	       "libwebsocket_is_final_fragment(NULL) = %d, want 0 or 1", n);
}

static void c_get_reserved_bits(void)
{
	unsigned char n = libwebsocket_get_reserved_bits(NULL);

	EXPECT(n == 0, "libwebsocket_get_reserved_bits(NULL) = %u, want 0",
	       (unsigned)n);
}

static void c_rx_flow_control(void)
{
	int n = libwebsocket_rx_flow_control(NULL, 0);

	EXPECT(n == -1, "libwebsocket_rx_flow_control(NULL, 0) = %d, want -1",
	       n);
	n = libwebsocket_rx_flow_control(NULL, 1);
	EXPECT(n == -1, "libwebsocket_rx_flow_control(NULL, 1) = %d, want -1",
	       n);
}

static void c_rx_flow_allow_all_protocol(void)
{
	struct libwebsocket_protocols unregistered;

	libwebsocket_rx_flow_allow_all_protocol(NULL);
	memset(&unregistered, 0, sizeof(unregistered));
	unregistered.name = "never-registered";
	libwebsocket_rx_flow_allow_all_protocol(&unregistered);
}

static void c_remaining_packet_payload(void)
{
	size_t n = libwebsockets_remaining_packet_payload(NULL);

	EXPECT(n == 0,
	       "libwebsockets_remaining_packet_payload(NULL) = %lu, want 0",
	       (unsigned long)n);
}

static void c_client_connect(void)
{
	struct libwebsocket *wsi;

	wsi = libwebsocket_client_connect(NULL, "127.0.0.1", 7681, 0, "/",
					  "localhost", "localhost",
					  "dumb-increment-protocol", -1);
	EXPECT(wsi == NULL, "libwebsocket_client_connect(NULL ctx, ...) = %p",
	       (void *)wsi);
	wsi = libwebsocket_client_connect(NULL, NULL, 0, 0, NULL, NULL, NULL,
					  NULL, 13);
	EXPECT(wsi == NULL, "libwebsocket_client_connect(all NULL) = %p",
	       (void *)wsi);
}

static void c_client_connect_extended(void)
{
	struct libwebsocket *wsi;
	int user = 5;

	wsi = libwebsocket_client_connect_extended(
		NULL, "127.0.0.1", 7681, 0, "/", "localhost", "localhost",
		"dumb-increment-protocol", -1, &user);
	EXPECT(wsi == NULL,
	       "libwebsocket_client_connect_extended(NULL ctx, ...) = %p",
	       (void *)wsi);
	wsi = libwebsocket_client_connect_extended(NULL, NULL, 0, 0, NULL, NULL,
						   NULL, NULL, -1, NULL);
	EXPECT(wsi == NULL,
	       "libwebsocket_client_connect_extended(all NULL) = %p",
	       (void *)wsi);
	EXPECT(user == 5, "client_connect_extended wrote into userdata");
}

static void c_canonical_hostname(void)
{
	const char *p = libwebsocket_canonical_hostname(NULL);

	EXPECT(p == NULL, "libwebsocket_canonical_hostname(NULL) = %p, want NULL",
	       (const void *)p);
}

static void c_get_peer_addresses(void)
{
	char name[64], rip[64];

	libwebsockets_get_peer_addresses(NULL, NULL, -1, NULL, 0, NULL, 0);
	libwebsockets_get_peer_addresses(NULL, NULL, -1, NULL, 64, NULL, 64);

	strcpy(name, "unset");
	strcpy(rip, "unset");
	libwebsockets_get_peer_addresses(NULL, NULL, -1, name,
					 (int)sizeof(name), rip,
					 (int)sizeof(rip));
	EXPECT(memchr(name, '\0', sizeof(name)) != NULL,
	       "get_peer_addresses left name unterminated");
	EXPECT(memchr(rip, '\0', sizeof(rip)) != NULL,
	       "get_peer_addresses left rip unterminated");

	/* an fd that is not a socket */
	strcpy(name, "unset");
	strcpy(rip, "unset");
	libwebsockets_get_peer_addresses(NULL, NULL, 0, name, (int)sizeof(name),
					 rip, (int)sizeof(rip));
	EXPECT(memchr(name, '\0', sizeof(name)) != NULL &&
		       memchr(rip, '\0', sizeof(rip)) != NULL,
	       "get_peer_addresses(fd 0) left a buffer unterminated");
}

static void c_send_pipe_choked(void)
{
	int n = lws_send_pipe_choked(NULL);

	(void)n; /* any value is acceptable, only no crash */
}

static void c_frame_is_binary(void)
{
	int n = lws_frame_is_binary(NULL);

	EXPECT(n == 0, "lws_frame_is_binary(NULL) = %d, want 0", n);
}

static void c_read(void)
{
	unsigned char buf[16];
	int n;

	memset(buf, 0, sizeof(buf));
	n = libwebsocket_read(NULL, NULL, buf, sizeof(buf));
	EXPECT(n == -1, "libwebsocket_read(NULL, NULL, buf) = %d, want -1", n);
	n = libwebsocket_read(NULL, NULL, NULL, 0);
	EXPECT(n == -1, "libwebsocket_read(NULL x3, 0) = %d, want -1", n);
	n = libwebsocket_read(NULL, NULL, NULL, 100);
	EXPECT(n == -1, "libwebsocket_read(NULL x3, 100) = %d, want -1", n);
}

static void c_get_random(void)
{
	int n = libwebsockets_get_random(NULL, NULL, 8);

	EXPECT(n == -1, "libwebsockets_get_random(NULL, NULL, 8) = %d, want -1",
	       n);
	n = libwebsockets_get_random(NULL, NULL, -8);
	EXPECT(n == -1, "libwebsockets_get_random(NULL, NULL, -8) = %d, want -1",
	       n);
}

static void c_sha1(void)
{
	unsigned char md[20];

	EXPECT(libwebsockets_SHA1(NULL, 0, NULL) == NULL,
	       "libwebsockets_SHA1(NULL, 0, NULL) != NULL");
	EXPECT(libwebsockets_SHA1(NULL, 100, NULL) == NULL,
	       "libwebsockets_SHA1(NULL, 100, NULL) != NULL");
	EXPECT(libwebsockets_SHA1(NULL, 100, md) == NULL,
	       "libwebsockets_SHA1(NULL data, 100, md) != NULL");
}

static void c_b64_encode(void)
{
	char out[16];

	EXPECT(lws_b64_encode_string(NULL, 0, NULL, 0) == -1,
	       "lws_b64_encode_string(NULL, 0, NULL, 0) != -1");
	EXPECT(lws_b64_encode_string(NULL, 10, out, (int)sizeof(out)) == -1,
	       "lws_b64_encode_string(NULL in, 10) != -1");
	EXPECT(lws_b64_encode_string("abc", 3, NULL, 16) == -1,
	       "lws_b64_encode_string(NULL out) != -1");
}

static void c_b64_decode(void)
{
	char out[16];

	EXPECT(lws_b64_decode_string(NULL, NULL, 0) == -1,
	       "lws_b64_decode_string(NULL, NULL, 0) != -1");
	EXPECT(lws_b64_decode_string(NULL, out, (int)sizeof(out)) == -1,
	       "lws_b64_decode_string(NULL in) != -1");
	EXPECT(lws_b64_decode_string("YWJj", NULL, 16) == -1,
	       "lws_b64_decode_string(NULL out) != -1");
}

static void c_get_library_version(void)
{
	const char *v = lws_get_library_version();

	EXPECT(v != NULL, "lws_get_library_version() returned NULL");
}

static void c_daemonize(void)
{
	/*
	 * Runs in a child of its own: an implementation that forked anyway would
	 * make this process exit in the parent half, which the runner sees as
	 * exit status 0 instead of the 42 below.
	 */
	int n = lws_daemonize(NULL);

	if (n == 0)
		_exit(43); /* we are an unexpected daemon */
	_exit(42);
}

static void c_get_internal_extensions(void)
{
	struct libwebsocket_extension *ext = libwebsocket_get_internal_extensions();
	int i;

	EXPECT(ext != NULL, "libwebsocket_get_internal_extensions() = NULL");
	if (!ext)
		return;
	for (i = 0; i < 64 && ext[i].callback; i++) {
		EXPECT(ext[i].name != NULL && ext[i].name[0],
		       "internal extension #%d has a callback but no name", i);
		if (ext[i].name)
			printf("  internal extension: %s\n", ext[i].name);
	}
	EXPECT(i < 64,
	       "internal extensions: no entry with a NULL callback in the first 64");
	EXPECT(libwebsocket_get_internal_extensions() == ext,
	       "libwebsocket_get_internal_extensions() is not a stable static array");
}

/* ------------------------------------------------------------- the runner */

struct test_case {
	const char *name;
	case_fn fn;
	int expect_exit; /* the child's expected exit status */
};

static const struct test_case cases[] = {
	{"_lws_log", c_lws_log, 0},
	{"lws_set_log_level", c_set_log_level, 0},
	{"lwsl_emit_syslog", c_emit_syslog, 0},
	{"lwsl_hexdump", c_hexdump, 0},
	{"libwebsocket_create_context", c_create_context, 0},
	{"libwebsocket_set_proxy", c_set_proxy, 0},
	{"libwebsocket_context_destroy", c_context_destroy, 0},
	{"libwebsocket_service", c_service, 0},
	{"libwebsocket_service_fd", c_service_fd, 0},
	{"libwebsocket_context_user", c_context_user, 0},
	{"libwebsocket_set_timeout", c_set_timeout, 0},
	{"libwebsocket_write", c_write, 0},
	{"lws_hdr_total_length", c_hdr_total_length, 0},
	{"lws_hdr_copy", c_hdr_copy, 0},
	{"libwebsockets_serve_http_file", c_serve_http_file, 0},
	{"libwebsockets_serve_http_file_fragment", c_serve_http_file_fragment, 0},
	{"libwebsockets_get_protocol", c_get_protocol, 0},
	{"libwebsocket_callback_on_writable", c_callback_on_writable, 0},
	{"libwebsocket_callback_on_writable_all_protocol",
	 c_callback_on_writable_all_protocol, 0},
	{"libwebsocket_get_socket_fd", c_get_socket_fd, 0},
	{"libwebsocket_is_final_fragment", c_is_final_fragment, 0},
	{"libwebsocket_get_reserved_bits", c_get_reserved_bits, 0},
	{"libwebsocket_rx_flow_control", c_rx_flow_control, 0},
	{"libwebsocket_rx_flow_allow_all_protocol", c_rx_flow_allow_all_protocol, 0},
	{"libwebsockets_remaining_packet_payload", c_remaining_packet_payload, 0},
	{"libwebsocket_client_connect", c_client_connect, 0},
	{"libwebsocket_client_connect_extended", c_client_connect_extended, 0},
	{"libwebsocket_canonical_hostname", c_canonical_hostname, 0},
	{"libwebsockets_get_peer_addresses", c_get_peer_addresses, 0},
	{"lws_send_pipe_choked", c_send_pipe_choked, 0},
	{"lws_frame_is_binary", c_frame_is_binary, 0},
	{"libwebsocket_read", c_read, 0},
	{"libwebsockets_get_random", c_get_random, 0},
	{"libwebsockets_SHA1", c_sha1, 0},
	{"lws_b64_encode_string", c_b64_encode, 0},
	{"lws_b64_decode_string", c_b64_decode, 0},
	{"lws_get_library_version", c_get_library_version, 0},
	{"lws_daemonize", c_daemonize, 42},
	{"libwebsocket_get_internal_extensions", c_get_internal_extensions, 0},
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Returns 1 when the case passed. */
static int run_case(const struct test_case *tc)
{
	double deadline;
	int status = 0;
	pid_t pid, w;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "FAIL %s: fork: %s\n", tc->name, strerror(errno));
		return 0;
	}
	if (pid == 0) {
		tc->fn();
		fflush(stdout);
		fflush(stderr);
		_exit(case_failures ? 1 : 0);
	}

	deadline = now_s() + 5.0;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_s() < deadline)
		usleep(2000);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fprintf(stderr, "FAIL %s: did not return within 5 s\n", tc->name);
		return 0;
	}
	if (w < 0) {
		fprintf(stderr, "FAIL %s: waitpid: %s\n", tc->name,
			strerror(errno));
		return 0;
	}
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "FAIL %s: crashed with signal %d (%s)\n", tc->name,
			WTERMSIG(status), strsignal(WTERMSIG(status)));
		return 0;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != tc->expect_exit) {
		if (tc->expect_exit == 42 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			fprintf(stderr,
				"FAIL %s: lws_daemonize(NULL) forked and exited the caller instead of returning non-zero\n",
				tc->name);
		else if (tc->expect_exit == 42 && WIFEXITED(status) &&
			 WEXITSTATUS(status) == 43)
			fprintf(stderr,
				"FAIL %s: lws_daemonize(NULL) returned 0\n",
				tc->name);
		else
			fprintf(stderr, "FAIL %s: exit status %d, want %d\n",
				tc->name,
				WIFEXITED(status) ? WEXITSTATUS(status) : -1,
				tc->expect_exit);
		return 0;
	}
	return 1;
}

int main(void)
{
	size_t i, n = sizeof(cases) / sizeof(cases[0]);
	int failed = 0;

	/* keep the library's own error lines out of the way, but visible */
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

	for (i = 0; i < n; i++)
		if (!run_case(&cases[i]))
			failed++;

	if (failed) {
		fprintf(stderr, "null_args_test: %d of %u cases FAILED\n", failed,
			(unsigned)n);
		return 1;
	}
	printf("null_args_test: all %u cases passed\n", (unsigned)n);
	return 0;
}
