/*
 * util_test.c - checks the utility part of the libwebsockets v1.23 API from C:
 * base64, SHA-1, randomness, the version string, logging, and the struct, enum and
 * constant layout that C programs compile against.
 *
 * Built by tests/c_api.rs as C and as C++, with and without -D_DEBUG, linked
 * dynamically and statically. Prints one "FAIL" line per failed check and exits 1
 * if any check failed, 0 otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <libwebsockets.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static int checks;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		checks++;                                                       \
		if (!(cond)) {                                                  \
			failures++;                                             \
			fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__,          \
				__LINE__, #cond);                               \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

#define CANARY 0xA5

/* ------------------------------------------------------------------ base64 */

struct b64_vector {
	const char *plain;
	const char *encoded;
};

/* RFC 4648, section 10 */
static const struct b64_vector rfc4648[] = {
	{"", ""},
	{"f", "Zg=="},
	{"fo", "Zm8="},
	{"foo", "Zm9v"},
	{"foob", "Zm9vYg=="},
	{"fooba", "Zm9vYmE="},
	{"foobar", "Zm9vYmFy"},
};

#define N_RFC4648 (sizeof(rfc4648) / sizeof(rfc4648[0]))

static int canary_intact(const char *buf, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if ((unsigned char)buf[i] != CANARY)
			return 0;
	return 1;
}

static void test_b64_encode(void)
{
	char out[64];
	size_t i;
	int n, size;

	for (i = 0; i < N_RFC4648; i++) {
		const char *p = rfc4648[i].plain;
		const char *e = rfc4648[i].encoded;
		int plen = (int)strlen(p), elen = (int)strlen(e);

		/* generous buffer */
		memset(out, CANARY, sizeof(out));
		n = lws_b64_encode_string(p, plen, out, (int)sizeof(out));
		CHECK(n == elen, "encode(\"%s\") returned %d, want %d", p, n, elen);
		if (n == elen) {
			CHECK(memcmp(out, e, (size_t)elen) == 0,
			      "encode(\"%s\") gave \"%.*s\", want \"%s\"", p, elen,
			      out, e);
			CHECK(out[elen] == '\0',
			      "encode(\"%s\") did not NUL-terminate", p);
		}

		/* exactly enough: encoded length + 1 for the NUL */
		memset(out, CANARY, sizeof(out));
		n = lws_b64_encode_string(p, plen, out, elen + 1);
		CHECK(n == elen,
		      "encode(\"%s\") into %d bytes returned %d, want %d", p,
		      elen + 1, n, elen);
		CHECK(canary_intact(out, (size_t)elen + 1, sizeof(out)),
		      "encode(\"%s\") wrote past out_size %d", p, elen + 1);
		if (n == elen)
			CHECK(memcmp(out, e, (size_t)elen) == 0 &&
				      out[elen] == '\0',
			      "encode(\"%s\") into an exact buffer gave \"%.*s\"",
			      p, elen, out);

		/* every smaller size fails and never writes past out_size */
		for (size = 0; size <= elen; size++) {
			memset(out, CANARY, sizeof(out));
			n = lws_b64_encode_string(p, plen, out, size);
			CHECK(n == -1,
			      "encode(\"%s\") into %d bytes (needs %d) returned %d, want -1",
			      p, size, elen + 1, n);
			CHECK(canary_intact(out, (size_t)size, sizeof(out)),
			      "encode(\"%s\") with out_size %d wrote past it", p,
			      size);
		}
	}

	/* all byte values, including NUL and high bytes */
	{
		char bin[256], enc[400], dec[300];
		int e, d;

		for (i = 0; i < sizeof(bin); i++)
			bin[i] = (char)i;
		e = lws_b64_encode_string(bin, (int)sizeof(bin), enc,
					  (int)sizeof(enc));
		CHECK(e == 344, "encode(256 bytes) returned %d, want 344", e);
		if (e > 0) {
			CHECK(strncmp(enc, "AAECAwQFBgcI", 12) == 0,
			      "encode(0..255) starts with \"%.12s\"", enc);
			CHECK(strcmp(enc + e - 8, "/P3+/w==") == 0,
			      "encode(0..255) ends with \"%s\"", enc + e - 8);
			d = lws_b64_decode_string(enc, dec, (int)sizeof(dec));
			CHECK(d == 256, "decode(encode(0..255)) returned %d", d);
			if (d == 256)
				CHECK(memcmp(dec, bin, 256) == 0,
				      "decode(encode(0..255)) differs from the input");
		}
	}

	/* bad arguments */
	memset(out, CANARY, sizeof(out));
	CHECK(lws_b64_encode_string(NULL, 3, out, (int)sizeof(out)) == -1,
	      "encode(NULL input) should return -1");
	CHECK(lws_b64_encode_string("foo", 3, NULL, 64) == -1,
	      "encode(NULL output) should return -1");
	CHECK(lws_b64_encode_string(NULL, 3, NULL, 64) == -1,
	      "encode(NULL, NULL) should return -1");
	CHECK(lws_b64_encode_string("foo", -1, out, (int)sizeof(out)) == -1,
	      "encode with in_len -1 should return -1");
	CHECK(lws_b64_encode_string("foo", 3, out, -5) == -1,
	      "encode with out_size -5 should return -1");
	CHECK(canary_intact(out, 0, sizeof(out)),
	      "a failed encode wrote into the output buffer");
}

static void test_b64_decode(void)
{
	char out[64];
	size_t i;
	int n, size;

	for (i = 0; i < N_RFC4648; i++) {
		const char *p = rfc4648[i].plain;
		const char *e = rfc4648[i].encoded;
		int plen = (int)strlen(p);
		char unpadded[16];
		size_t k;

		/* generous buffer: bytes plus a NUL after them */
		memset(out, CANARY, sizeof(out));
		n = lws_b64_decode_string(e, out, (int)sizeof(out));
		CHECK(n == plen, "decode(\"%s\") returned %d, want %d", e, n,
		      plen);
		if (n == plen) {
			CHECK(memcmp(out, p, (size_t)plen) == 0,
			      "decode(\"%s\") gave \"%.*s\", want \"%s\"", e, plen,
			      out, p);
			CHECK(out[plen] == '\0',
			      "decode(\"%s\") did not write a NUL after the bytes (room was left)",
			      e);
		}

		/* exactly the decoded size: no room for the NUL, still succeeds */
		memset(out, CANARY, sizeof(out));
		n = lws_b64_decode_string(e, out, plen);
		CHECK(n == plen, "decode(\"%s\") into %d bytes returned %d", e,
		      plen, n);
		CHECK(canary_intact(out, (size_t)plen, sizeof(out)),
		      "decode(\"%s\") into %d bytes wrote past out_size", e,
		      plen);
		if (n == plen)
			CHECK(memcmp(out, p, (size_t)plen) == 0,
			      "decode(\"%s\") into an exact buffer gave wrong bytes",
			      e);

		/* too small: -1, nothing written past out_size */
		for (size = 0; size < plen; size++) {
			memset(out, CANARY, sizeof(out));
			n = lws_b64_decode_string(e, out, size);
			CHECK(n == -1,
			      "decode(\"%s\") into %d bytes (needs %d) returned %d, want -1",
			      e, size, plen, n);
			CHECK(canary_intact(out, (size_t)size, sizeof(out)),
			      "decode(\"%s\") with out_size %d wrote past it", e,
			      size);
		}

		/* padding is optional */
		for (k = 0; e[k] && e[k] != '=' && k < sizeof(unpadded) - 1; k++)
			unpadded[k] = e[k];
		unpadded[k] = '\0';
		memset(out, CANARY, sizeof(out));
		n = lws_b64_decode_string(unpadded, out, (int)sizeof(out));
		CHECK(n == plen, "decode(\"%s\") (unpadded) returned %d, want %d",
		      unpadded, n, plen);
		if (n == plen)
			CHECK(memcmp(out, p, (size_t)plen) == 0,
			      "decode(\"%s\") (unpadded) gave wrong bytes",
			      unpadded);
	}

	/* malformed input */
	{
		static const char *const bad[] = {
			"!!!!", "Zm9v!", "Z", "Zm9vY", "Zm\x80v", "Zm 9v",
			"Zm9v\nZm9v", "Zg==Zg==", "====", "Z===",
		};
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			memset(out, CANARY, sizeof(out));
			n = lws_b64_decode_string(bad[i], out, (int)sizeof(out));
			CHECK(n == -1,
			      "decode of malformed input #%u returned %d, want -1",
			      (unsigned)i, n);
		}
	}

	/* bad arguments */
	memset(out, CANARY, sizeof(out));
	CHECK(lws_b64_decode_string(NULL, out, (int)sizeof(out)) == -1,
	      "decode(NULL input) should return -1");
	CHECK(lws_b64_decode_string("Zm9v", NULL, 64) == -1,
	      "decode(NULL output) should return -1");
	CHECK(lws_b64_decode_string(NULL, NULL, 0) == -1,
	      "decode(NULL, NULL, 0) should return -1");
	CHECK(lws_b64_decode_string("Zm9v", out, -1) == -1,
	      "decode with out_size -1 should return -1");
	CHECK(canary_intact(out, 0, sizeof(out)),
	      "a failed decode wrote into the output buffer");
}

/* ------------------------------------------------------------------- SHA-1 */

static void hex(const unsigned char *md, char *text)
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 20; i++) {
		text[2 * i] = digits[md[i] >> 4];
		text[2 * i + 1] = digits[md[i] & 15];
	}
	text[40] = '\0';
}

static void check_sha1(const unsigned char *data, size_t len, const char *want,
		       const char *what)
{
	unsigned char md[21];
	unsigned char *r;
	char text[41];

	memset(md, CANARY, sizeof(md));
	r = libwebsockets_SHA1(data, len, md);
	CHECK(r == md, "SHA1(%s) returned %p, want md %p", what, (void *)r,
	      (void *)md);
	hex(md, text);
	CHECK(strcmp(text, want) == 0, "SHA1(%s) = %s, want %s", what, text,
	      want);
	CHECK(md[20] == CANARY, "SHA1(%s) wrote more than 20 bytes", what);
}

static void test_sha1(void)
{
	static const char abc[] = "abc";
	static const char abc448[] =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	unsigned char *million;
	unsigned char md[20];

	check_sha1((const unsigned char *)abc, strlen(abc),
		   "a9993e364706816aba3e25717850c26c9cd0d89d", "\"abc\"");
	check_sha1((const unsigned char *)abc448, strlen(abc448),
		   "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
		   "the 448-bit FIPS message");
	check_sha1((const unsigned char *)"", 0,
		   "da39a3ee5e6b4b0d3255bfef95601890afd80709", "\"\"");

	million = (unsigned char *)malloc(1000000);
	CHECK(million != NULL, "malloc failed");
	if (million) {
		memset(million, 'a', 1000000);
		check_sha1(million, 1000000,
			   "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
			   "one million 'a'");
		free(million);
	}

	CHECK(libwebsockets_SHA1((const unsigned char *)abc, 3, NULL) == NULL,
	      "SHA1 with NULL md should return NULL");
	CHECK(libwebsockets_SHA1(NULL, 5, md) == NULL,
	      "SHA1 of NULL data (length 5) should return NULL");

	/* the RFC 6455 handshake example: base64(SHA1(key + GUID)) */
	{
		static const char key_guid[] =
			"dGhlIHNhbXBsZSBub25jZQ=="
			"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
		char accept[32];
		int n;

		CHECK(libwebsockets_SHA1((const unsigned char *)key_guid,
					 strlen(key_guid), md) == md,
		      "SHA1(handshake key) did not return md");
		n = lws_b64_encode_string((const char *)md, 20, accept,
					  (int)sizeof(accept));
		CHECK(n == 28 && strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
		      "accept key is \"%s\" (%d), want s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
		      n > 0 ? accept : "", n);
	}
}

/* ------------------------------------------------------------------ random */

static void test_random(void)
{
	unsigned char a[32], b[32];
	int n;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	n = libwebsockets_get_random(NULL, a, (int)sizeof(a));
	CHECK(n == (int)sizeof(a), "get_random(NULL ctx, 32) returned %d", n);
	n = libwebsockets_get_random(NULL, b, (int)sizeof(b));
	CHECK(n == (int)sizeof(b), "get_random(NULL ctx, 32) returned %d", n);
	CHECK(memcmp(a, b, sizeof(a)) != 0,
	      "two calls of get_random gave the same 32 bytes");

	n = libwebsockets_get_random(NULL, NULL, 16);
	CHECK(n == -1, "get_random(NULL buffer) returned %d, want -1", n);
	n = libwebsockets_get_random(NULL, a, -1);
	CHECK(n == -1, "get_random(len -1) returned %d, want -1", n);
}

/* ----------------------------------------------------------------- version */

static void test_version(void)
{
	const char *v = lws_get_library_version();

	CHECK(v != NULL, "lws_get_library_version() returned NULL");
	if (v) {
		CHECK(strncmp(v, "1.3 ", 4) == 0,
		      "version \"%s\" does not start with \"1.3 \"", v);
		CHECK(strlen(v) > 4, "version \"%s\" has no build hash", v);
		CHECK(lws_get_library_version() == v,
		      "the version string is not a stable static string");
	}
}

/* ----------------------------------------------------------------- logging */

#define MAX_CAPTURED 64

static int n_captured;
static int captured_level[MAX_CAPTURED];
static char captured_line[MAX_CAPTURED][1200];

static void capture(int level, const char *line)
{
	if (n_captured < MAX_CAPTURED) {
		captured_level[n_captured] = level;
		snprintf(captured_line[n_captured],
			 sizeof(captured_line[n_captured]), "%s",
			 line ? line : "(null)");
	}
	n_captured++;
}

static void reset_capture(void)
{
	n_captured = 0;
}

static int side_effects;

static int side_effect(void)
{
	return ++side_effects;
}

/*
 * Default emitter: a child process points stderr at a pipe, logs, and the parent
 * checks "[secs:usec] LEVEL: line" for each enabled level.
 */

static const char *match_stderr_line(const char *p, const char *level,
				     const char *text)
{
	size_t n;

	if (*p++ != '[')
		return NULL;
	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p++ != ':')
		return NULL;
	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p++ != ']' || *p++ != ' ')
		return NULL;
	n = strlen(level);
	if (strncmp(p, level, n) != 0)
		return NULL;
	p += n;
	if (*p++ != ':' || *p++ != ' ')
		return NULL;
	n = strlen(text);
	if (strncmp(p, text, n) != 0)
		return NULL;
	return p + n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_default_emitter(void)
{
	char text[4096];
	size_t got = 0;
	int fds[2], status = 0;
	pid_t pid, w;
	double deadline;
	const char *p;

	if (pipe(fds) != 0) {
		CHECK(0, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		CHECK(0, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		if (dup2(fds[1], 2) < 0)
			_exit(3);
		/* a NULL emitter keeps the current (default) one */
		lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
		lwsl_err("default emitter %s %d\n", "err", 1);
		lwsl_warn("default emitter warn %d\n", 2);
		lwsl_notice("default emitter notice (filtered)\n");
		_exit(0);
	}
	close(fds[1]);

	deadline = now_s() + 5.0;
	for (;;) {
		struct pollfd pfd;
		ssize_t r;
		int left = (int)((deadline - now_s()) * 1000);

		if (left <= 0) {
			CHECK(0, "default emitter child: no EOF within 5 s");
			break;
		}
		pfd.fd = fds[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		r = read(fds[0], text + got, sizeof(text) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got >= sizeof(text) - 1)
			break;
	}
	text[got] = '\0';
	close(fds[0]);

	deadline = now_s() + 5.0;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_s() < deadline)
		usleep(10000);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		CHECK(0, "default emitter child did not exit within 5 s");
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "default emitter child ended with status 0x%x", status);

	p = match_stderr_line(text, "ERR", "default emitter err 1\n");
	CHECK(p != NULL,
	      "default emitter: first stderr line is not \"[secs:usec] ERR: default emitter err 1\": got \"%s\"",
	      text);
	if (p) {
		const char *q = match_stderr_line(p, "WARN",
						  "default emitter warn 2\n");
		CHECK(q != NULL,
		      "default emitter: second stderr line is not \"[secs:usec] WARN: default emitter warn 2\": got \"%s\"",
		      p);
		if (q)
			CHECK(*q == '\0',
			      "default emitter: unexpected output after the WARN line (NOTICE must be filtered): \"%s\"",
			      q);
	}
}

static void test_capture(void)
{
	char expected[1200];
	char longmsg[3000];

	lws_set_log_level(LLL_ERR | LLL_WARN, capture);

	reset_capture();
	lwsl_err("err %s %d %.2f %lld\n", "text", -42, 3.14159,
		 (long long)1234567890123LL);
	lwsl_warn("warn %u %c %x %5s|\n", 7u, 'z', 255, "ab");
	lwsl_notice("notice %d\n", side_effect());
	CHECK(n_captured == 2, "captured %d lines, want 2 (ERR, WARN)",
	      n_captured);
	if (n_captured >= 1) {
		CHECK(captured_level[0] == LLL_ERR, "first line level %d, want %d",
		      captured_level[0], (int)LLL_ERR);
		CHECK(strcmp(captured_line[0],
			     "err text -42 3.14 1234567890123\n") == 0,
		      "ERR line is \"%s\"", captured_line[0]);
	}
	if (n_captured >= 2) {
		CHECK(captured_level[1] == LLL_WARN,
		      "second line level %d, want %d", captured_level[1],
		      (int)LLL_WARN);
		CHECK(strcmp(captured_line[1], "warn 7 z ff    ab|\n") == 0,
		      "WARN line is \"%s\"", captured_line[1]);
	}

	/* only NOTICE enabled */
	lws_set_log_level(LLL_NOTICE, capture);
	reset_capture();
	lwsl_err("err filtered\n");
	lwsl_warn("warn filtered\n");
	lwsl_notice("notice %s\n", "passes");
	CHECK(n_captured == 1 && captured_level[0] == LLL_NOTICE &&
		      strcmp(captured_line[0], "notice passes\n") == 0,
	      "with LLL_NOTICE only: captured %d lines, first \"%s\"",
	      n_captured, n_captured ? captured_line[0] : "");

	/* nothing enabled */
	lws_set_log_level(0, capture);
	reset_capture();
	lwsl_err("nothing\n");
	CHECK(n_captured == 0, "with level 0, %d lines were emitted",
	      n_captured);

	/* a NULL emitter keeps the current one */
	lws_set_log_level(LLL_ERR, NULL);
	reset_capture();
	lwsl_err("still captured\n");
	CHECK(n_captured == 1 && strcmp(captured_line[0], "still captured\n") == 0,
	      "after lws_set_log_level(LLL_ERR, NULL), %d lines captured",
	      n_captured);

	/* a line longer than any internal buffer is truncated, not overflowed */
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	reset_capture();
	lwsl_err("%s\n", longmsg);
	CHECK(n_captured == 1, "long line: %d emits, want 1", n_captured);
	if (n_captured == 1) {
		size_t l = strlen(captured_line[0]);
		CHECK(l > 0 && strspn(captured_line[0], "x\n") == l,
		      "long line: emitted text is not a run of 'x' (length %u)",
		      (unsigned)l);
	}

	/* formats through the variadic entry with many arguments (stack-passed) */
	lws_set_log_level(LLL_ERR, capture);
	reset_capture();
	lwsl_err("%d %d %d %d %d %d %d %d %.3f %.3f %s %lld\n", 1, 2, 3, 4, 5,
		 6, 7, 8, 0.5, -2.25, "end", (long long)-9000000000LL);
	snprintf(expected, sizeof(expected),
		 "1 2 3 4 5 6 7 8 0.500 -2.250 end -9000000000\n");
	CHECK(n_captured == 1 && strcmp(captured_line[0], expected) == 0,
	      "many-argument line is \"%s\"",
	      n_captured ? captured_line[0] : "");
}

static void test_debug_macros(void)
{
	int before;

	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO |
				  LLL_DEBUG | LLL_PARSER | LLL_HEADER |
				  LLL_EXT | LLL_CLIENT | LLL_LATENCY,
			  capture);
	reset_capture();
	before = side_effects;
	lwsl_info("info %d\n", side_effect());
	lwsl_debug("debug %d\n", side_effect());
	lwsl_parser("parser\n");
	lwsl_header("header\n");
	lwsl_ext("ext\n");
	lwsl_client("client\n");
	lwsl_latency("latency\n");
#ifdef _DEBUG
	CHECK(side_effects == before + 2,
	      "with _DEBUG, lwsl_info/lwsl_debug arguments were evaluated %d times, want 2",
	      side_effects - before);
	CHECK(n_captured == 7, "with _DEBUG, %d debug lines emitted, want 7",
	      n_captured);
	if (n_captured == 7) {
		static const int levels[7] = {LLL_INFO,	  LLL_DEBUG, LLL_PARSER,
					      LLL_HEADER, LLL_EXT,   LLL_CLIENT,
					      LLL_LATENCY};
		int i;

		for (i = 0; i < 7; i++)
			CHECK(captured_level[i] == levels[i],
			      "debug macro #%d logged at level %d, want %d", i,
			      captured_level[i], levels[i]);
		CHECK(strncmp(captured_line[0], "info ", 5) == 0,
		      "lwsl_info line is \"%s\"", captured_line[0]);
	}

	/* disabled levels are filtered, but the call (and its arguments) still happen */
	lws_set_log_level(LLL_ERR, capture);
	reset_capture();
	before = side_effects;
	lwsl_info("info %d\n", side_effect());
	lwsl_debug("debug\n");
	CHECK(n_captured == 0, "disabled INFO/DEBUG still emitted %d lines",
	      n_captured);
	CHECK(side_effects == before + 1,
	      "with _DEBUG the arguments of a filtered lwsl_info are evaluated");

	/* hexdump logs at DEBUG level */
	{
		char data[20];
		int i;

		for (i = 0; i < 20; i++)
			data[i] = (char)('A' + i);
		lws_set_log_level(LLL_DEBUG, capture);
		reset_capture();
		lwsl_hexdump(data, sizeof(data));
		CHECK(n_captured >= 1, "lwsl_hexdump emitted nothing at LLL_DEBUG");
		if (n_captured >= 1) {
			CHECK(captured_level[0] == LLL_DEBUG,
			      "lwsl_hexdump logged at level %d, want LLL_DEBUG",
			      captured_level[0]);
			CHECK(strstr(captured_line[0], "41") != NULL &&
				      strstr(captured_line[0], "42") != NULL,
			      "lwsl_hexdump first line lacks the hex bytes: \"%s\"",
			      captured_line[0]);
		}
		lws_set_log_level(LLL_ERR, capture);
		reset_capture();
		lwsl_hexdump(data, sizeof(data));
		CHECK(n_captured == 0,
		      "lwsl_hexdump emitted %d lines with LLL_DEBUG off",
		      n_captured);
		lwsl_hexdump(data, 0);
		lwsl_hexdump(NULL, 0);
	}
#else
	CHECK(side_effects == before,
	      "without _DEBUG, lwsl_info/lwsl_debug arguments were evaluated (%d times)",
	      side_effects - before);
	CHECK(n_captured == 0,
	      "without _DEBUG, debug-level macros emitted %d lines", n_captured);
	/* lwsl_hexdump is an empty macro: arguments are not evaluated */
	before = side_effects;
	lwsl_hexdump(side_effect(), side_effect());
	CHECK(side_effects == before,
	      "without _DEBUG, lwsl_hexdump evaluated its arguments");
#endif
}

static void test_syslog_emitter(void)
{
	/* only callable-ness can be checked without a syslog daemon */
	lwsl_emit_syslog(LLL_ERR, "util_test: lwsl_emit_syslog ERR check\n");
	lwsl_emit_syslog(LLL_WARN, "util_test: lwsl_emit_syslog WARN check\n");
	lwsl_emit_syslog(LLL_NOTICE, "util_test: lwsl_emit_syslog NOTICE\n");
	lwsl_emit_syslog(LLL_DEBUG, "util_test: lwsl_emit_syslog DEBUG\n");
	lwsl_emit_syslog(LLL_ERR, NULL);

	lws_set_log_level(LLL_ERR, lwsl_emit_syslog);
	lwsl_err("util_test: through lws_set_log_level(..., lwsl_emit_syslog) %d\n",
		 1);
	lws_set_log_level(LLL_ERR | LLL_WARN, capture);
}

/* ------------------------------------------------------- layout and values */

#define CHECK_SIZE(type, want)                                                 \
	CHECK(sizeof(type) == (want), "sizeof(%s) = %u, want %u", #type,       \
	      (unsigned)sizeof(type), (unsigned)(want))
#define CHECK_OFF(type, field, want)                                           \
	CHECK(offsetof(type, field) == (want), "offsetof(%s, %s) = %u, want %u", \
	      #type, #field, (unsigned)offsetof(type, field), (unsigned)(want))
#define CHECK_VAL(name, want)                                                  \
	CHECK((long)(name) == (long)(want), "%s = %ld, want %ld", #name,        \
	      (long)(name), (long)(want))

static void test_layout(void)
{
	CHECK_SIZE(struct lws_context_creation_info, 104);
	CHECK_OFF(struct lws_context_creation_info, port, 0);
	CHECK_OFF(struct lws_context_creation_info, iface, 8);
	CHECK_OFF(struct lws_context_creation_info, protocols, 16);
	CHECK_OFF(struct lws_context_creation_info, extensions, 24);
	CHECK_OFF(struct lws_context_creation_info, ssl_cert_filepath, 32);
	CHECK_OFF(struct lws_context_creation_info, ssl_private_key_filepath, 40);
	CHECK_OFF(struct lws_context_creation_info, ssl_ca_filepath, 48);
	CHECK_OFF(struct lws_context_creation_info, ssl_cipher_list, 56);
	CHECK_OFF(struct lws_context_creation_info, gid, 64);
	CHECK_OFF(struct lws_context_creation_info, uid, 68);
	CHECK_OFF(struct lws_context_creation_info, options, 72);
	CHECK_OFF(struct lws_context_creation_info, user, 80);
	CHECK_OFF(struct lws_context_creation_info, ka_time, 88);
	CHECK_OFF(struct lws_context_creation_info, ka_probes, 92);
	CHECK_OFF(struct lws_context_creation_info, ka_interval, 96);

	CHECK_SIZE(struct libwebsocket_protocols, 56);
	CHECK_OFF(struct libwebsocket_protocols, name, 0);
	CHECK_OFF(struct libwebsocket_protocols, callback, 8);
	CHECK_OFF(struct libwebsocket_protocols, per_session_data_size, 16);
	CHECK_OFF(struct libwebsocket_protocols, rx_buffer_size, 24);
	CHECK_OFF(struct libwebsocket_protocols, no_buffer_all_partial_tx, 32);
	CHECK_OFF(struct libwebsocket_protocols, owning_server, 40);
	CHECK_OFF(struct libwebsocket_protocols, protocol_index, 48);

	CHECK_SIZE(struct libwebsocket_extension, 32);
	CHECK_OFF(struct libwebsocket_extension, name, 0);
	CHECK_OFF(struct libwebsocket_extension, callback, 8);
	CHECK_OFF(struct libwebsocket_extension, per_session_data_size, 16);
	CHECK_OFF(struct libwebsocket_extension, per_context_private_data, 24);

	CHECK_SIZE(struct lws_tokens, 16);
	CHECK_OFF(struct lws_tokens, token, 0);
	CHECK_OFF(struct lws_tokens, token_len, 8);

	CHECK_SIZE(enum libwebsocket_callback_reasons, 4);
	CHECK_SIZE(enum libwebsocket_extension_callback_reasons, 4);
	CHECK_SIZE(enum lws_log_levels, 4);
	CHECK_SIZE(enum libwebsocket_write_protocol, 4);
	CHECK_SIZE(enum lws_token_indexes, 4);
	CHECK_SIZE(enum lws_close_status, 4);
	CHECK_SIZE(enum pending_timeout, 4);
	CHECK_SIZE(enum libwebsocket_context_options, 4);

	CHECK_VAL(LWS_SEND_BUFFER_PRE_PADDING, 18);
	CHECK_VAL(LWS_SEND_BUFFER_POST_PADDING, 4);
	CHECK_VAL(CONTEXT_PORT_NO_LISTEN, 0);
	CHECK_VAL(MAX_MUX_RECURSION, 2);

	CHECK_VAL(LWS_CALLBACK_ESTABLISHED, 0);
	CHECK_VAL(LWS_CALLBACK_CLOSED, 4);
	CHECK_VAL(LWS_CALLBACK_RECEIVE, 6);
	CHECK_VAL(LWS_CALLBACK_SERVER_WRITEABLE, 10);
	CHECK_VAL(LWS_CALLBACK_HTTP, 11);
	CHECK_VAL(LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION, 15);
	CHECK_VAL(LWS_CALLBACK_PROTOCOL_INIT, 22);
	CHECK_VAL(LWS_CALLBACK_ADD_POLL_FD, 24);
	CHECK_VAL(LWS_CALLBACK_CLEAR_MODE_POLL_FD, 27);
	CHECK_VAL(LWS_EXT_CALLBACK_SERVER_CONTEXT_CONSTRUCT, 0);
	CHECK_VAL(LWS_EXT_CALLBACK_PACKET_RX_PREPARSE, 11);
	CHECK_VAL(LWS_EXT_CALLBACK_PAYLOAD_RX, 22);
	CHECK_VAL(LLL_ERR, 1);
	CHECK_VAL(LLL_NOTICE, 4);
	CHECK_VAL(LLL_LATENCY, 512);
	CHECK_VAL(LLL_COUNT, 10);
	CHECK_VAL(LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT, 2);
	CHECK_VAL(LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME, 4);
	CHECK_VAL(LWS_WRITE_TEXT, 0);
	CHECK_VAL(LWS_WRITE_HTTP, 3);
	CHECK_VAL(LWS_WRITE_PONG, 6);
	CHECK_VAL(LWS_WRITE_NO_FIN, 0x40);
	CHECK_VAL(LWS_WRITE_CLIENT_IGNORE_XOR_MASK, 0x80);
	CHECK_VAL(WSI_TOKEN_GET_URI, 0);
	CHECK_VAL(WSI_TOKEN_KEY, 10);
	CHECK_VAL(WSI_TOKEN_HTTP, 16);
	CHECK_VAL(_WSI_TOKEN_CLIENT_ORIGIN, 22);
	CHECK_VAL(WSI_TOKEN_COUNT, 23);
	CHECK_VAL(WSI_INIT_TOKEN_MUXURL, 28);
	CHECK_VAL(LWS_CLOSE_STATUS_NOSTATUS, 0);
	CHECK_VAL(LWS_CLOSE_STATUS_NORMAL, 1000);
	CHECK_VAL(LWS_CLOSE_STATUS_NO_STATUS, 1005);
	CHECK_VAL(LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, 1011);
	CHECK_VAL(LWS_CLOSE_STATUS_TLS_FAILURE, 1015);
	CHECK_VAL(NO_PENDING_TIMEOUT, 0);
	CHECK_VAL(PENDING_TIMEOUT_AWAITING_PING, 5);
	CHECK_VAL(PENDING_TIMEOUT_SSL_ACCEPT, 9);

	/* the padding macros are integer constant expressions */
	{
		static unsigned char frame[LWS_SEND_BUFFER_PRE_PADDING + 8 +
					   LWS_SEND_BUFFER_POST_PADDING];
		CHECK_SIZE(frame, 30);
	}
}

int main(void)
{
	const char *variant =
#ifdef __cplusplus
		"C++"
#else
		"C"
#endif
#ifdef _DEBUG
		" _DEBUG"
#endif
		;

	/* before any emitter is installed: the default one is still active */
	test_default_emitter();

	test_b64_encode();
	test_b64_decode();
	test_sha1();
	test_random();
	test_version();
	test_capture();
	test_debug_macros();
	test_syslog_emitter();
	test_layout();

	if (failures) {
		fprintf(stderr, "util_test (%s): %d of %d checks FAILED\n", variant,
			failures, checks);
		return 1;
	}
	printf("util_test (%s): all %d checks passed\n", variant, checks);
	return 0;
}
