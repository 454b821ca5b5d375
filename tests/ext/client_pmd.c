/*
 * client_pmd: a libwebsockets v1.23 client with the library's internal
 * extensions registered (libwebsocket_get_internal_extensions()), echoing
 * messages through a server that echoes every message back with the same type
 * (tests/ext/pmd_server.py, or examples/test-echo).
 *
 * Usage: client_pmd --port P [--path /echo] [--expect-rsv1 yes|no|any]
 *                   [--max BYTES] [--no-extensions] [--expect-error]
 *
 * One connection. Messages of 0 B .. --max (default 1 MiB), text and binary,
 * compressible and not, each written with one libwebsocket_write (so the
 * library may compress it), then three fragmented messages (NO_FIN +
 * CONTINUATION; sent uncompressed), one at a time: each echo must equal what
 * was sent, with the same type. --expect-rsv1 yes: every echoed message must
 * arrive with RSV1 (libwebsocket_get_reserved_bits() on its first chunk), i.e.
 * compressed by the server; no: never. Prints the extension names the library
 * asked about (CLIENT_CONFIRM_EXTENSION_SUPPORTED), a "PASS"/"FAIL" line per
 * check and closes with "client_pmd: N messages, M failed checks"; exit status
 * 0 only when every check passed. Gives up after 60 s.
 *
 * --expect-error: the handshake must fail instead (CLIENT_CONNECTION_ERROR
 * exactly once, never ESTABLISHED), e.g. for a reply naming extensions or
 * parameters the client must not accept.
 */

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#define PRE LWS_SEND_BUFFER_PRE_PADDING
#define POST LWS_SEND_BUFFER_POST_PADDING

struct plan {
	size_t len;
	int binary;
	int kind;	/* 0 compressible, 1 pseudo-random, 2 zeros */
	int frags;	/* 1: one write; more: NO_FIN + CONTINUATION pieces */
};

static struct plan plans[128];
static int nplans;
static int cur;			/* message being sent / awaited */
static int sent_cur;		/* its frames written */
static unsigned char *txbuf;	/* PRE + message + POST */
static unsigned char *rx;
static size_t rx_len, rx_cap;
static int rx_started, rx_binary, rx_rsv1;
static unsigned char rx_rsv_raw;	/* libwebsocket_get_reserved_bits() at the first chunk */
static int rsv_failures;		/* only the first is printed */
static int failures, echoed, rsv1_msgs;
static int established, closed, conn_error, done, expect_error;
static const char *expect_rsv1 = "any";
static char offered[256];

static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failures++;
}

static unsigned int lcg_state;

static unsigned char lcg(void)
{
	lcg_state = lcg_state * 1103515245u + 12345u;
	return (unsigned char)(lcg_state >> 16);
}

/* message i's bytes into p (text is valid UTF-8: ASCII plus a 2-byte and a 3-byte
 * character, never cut, padded with ASCII at the end) */
static void fill(unsigned char *p, const struct plan *pl, int i)
{
	static const char words[] = "permessage-deflate caf\xc3\xa9 \xe2\x82\xac lorem ipsum ";
	size_t n, w = sizeof(words) - 1;

	lcg_state = 0x9e3779b9u ^ (unsigned int)i;
	if (pl->kind == 2) {
		memset(p, 0, pl->len);
		return;
	}
	if (pl->binary && pl->kind == 1) {
		for (n = 0; n < pl->len; n++)
			p[n] = lcg();
		return;
	}
	for (n = 0; n + w <= pl->len; n += w)
		memcpy(p + n, words, w);
	for (; n < pl->len; n++)
		p[n] = 'a' + (unsigned char)(n % 26);
	if (pl->kind == 1) /* sprinkle some randomness over the ASCII letters */
		for (n = 0; n < pl->len; n += 7)
			if (p[n] >= 'a' && p[n] <= 'z')
				p[n] = 'a' + lcg() % 26;
}

static void add(size_t len, int binary, int kind, int frags)
{
	if (nplans >= (int)(sizeof(plans) / sizeof(plans[0]))) {
		fprintf(stderr, "client_pmd: too many messages planned\n");
		exit(2);
	}
	plans[nplans].len = len;
	plans[nplans].binary = binary;
	plans[nplans].kind = kind;
	plans[nplans].frags = frags;
	nplans++;
}

static void prepare(int i)
{
	free(txbuf);
	txbuf = malloc(PRE + plans[i].len + POST + 1);
	if (!txbuf) {
		fail("out of memory");
		exit(2);
	}
	fill(txbuf + PRE, &plans[i], i);
	sent_cur = 0;
}

static int write_next(struct libwebsocket *wsi)
{
	const struct plan *pl = &plans[cur];
	size_t piece, off, len;
	int flags, n;

	if (sent_cur >= pl->frags)
		return 0;
	piece = pl->len / (size_t)pl->frags;
	off = piece * (size_t)sent_cur;
	len = sent_cur == pl->frags - 1 ? pl->len - off : piece;
	if (pl->frags == 1)
		flags = pl->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
	else if (sent_cur == 0)
		flags = (pl->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) | LWS_WRITE_NO_FIN;
	else if (sent_cur < pl->frags - 1)
		flags = LWS_WRITE_CONTINUATION | LWS_WRITE_NO_FIN;
	else
		flags = LWS_WRITE_CONTINUATION;
	/* v1.23 may use the padding around the piece, which holds the neighbouring
	 * pieces of the message here: keep copies */
	{
		unsigned char pre[PRE], post[POST];

		memcpy(pre, txbuf + off, PRE);
		memcpy(post, txbuf + PRE + off + len, POST);
		n = libwebsocket_write(wsi, txbuf + PRE + off, len, (enum libwebsocket_write_protocol)flags);
		memcpy(txbuf + off, pre, PRE);
		memcpy(txbuf + PRE + off + len, post, POST);
	}
	if (n < 0 || (size_t)n != len) {
		fail("libwebsocket_write of message %d piece %d returned %d (len %zu)", cur, sent_cur, n, len);
		return -1;
	}
	sent_cur++;
	return 0;
}

static void finish_message(void)
{
	const struct plan *pl = &plans[cur];

	if (rx_binary != pl->binary)
		fail("message %d: echo type %s, sent %s", cur, rx_binary ? "binary" : "text",
		     pl->binary ? "binary" : "text");
	else if (rx_len != pl->len || memcmp(rx, txbuf + PRE, pl->len))
		fail("message %d (%zu B, %s, kind %d, %d frames): echo differs (%zu B)", cur, pl->len,
		     pl->binary ? "binary" : "text", pl->kind, pl->frags, rx_len);
	echoed++;
	if (rx_rsv1)
		rsv1_msgs++;
	if (!strcmp(expect_rsv1, "yes") && !rx_rsv1 && !rsv_failures++)
		fail("message %d (%zu B): echo arrived without RSV1 (libwebsocket_get_reserved_bits() = 0x%02x)",
		     cur, pl->len, rx_rsv_raw);
	if (!strcmp(expect_rsv1, "no") && rx_rsv_raw && !rsv_failures++)
		fail("message %d (%zu B): echo arrived with reserved bits 0x%02x", cur, pl->len, rx_rsv_raw);
	rx_len = 0;
	rx_started = 0;
	cur++;
	if (cur < nplans)
		prepare(cur);
}

static int pmd_callback(struct libwebsocket_context *context, struct libwebsocket *wsi,
			enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONFIRM_EXTENSION_SUPPORTED:
		if (in && strlen(offered) + strlen((const char *)in) + 2 < sizeof(offered)) {
			if (offered[0])
				strcat(offered, ",");
			strcat(offered, (const char *)in);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		established = 1;
		prepare(0);
		libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		conn_error++;
		done = 1;
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (cur >= nplans)
			return -1; /* all echoed: close */
		if (write_next(wsi))
			return -1;
		if (sent_cur < plans[cur].frags)
			libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (cur >= nplans) {
			fail("data after the last message");
			break;
		}
		if (!rx_started) {
			rx_started = 1;
			rx_binary = lws_frame_is_binary(wsi);
			/* v1.23 returns the header bits unshifted (c & 0x70): RSV1 is 0x40 */
			rx_rsv_raw = libwebsocket_get_reserved_bits(wsi);
			rx_rsv1 = (rx_rsv_raw & 0x40) != 0;
		}
		if (rx_len + len > rx_cap) {
			size_t cap = rx_cap ? rx_cap : 4096;
			unsigned char *p;

			while (cap < rx_len + len)
				cap *= 2;
			p = realloc(rx, cap);
			if (!p) {
				fail("out of memory");
				return -1;
			}
			rx = p;
			rx_cap = cap;
		}
		memcpy(rx + rx_len, in, len);
		rx_len += len;
		if (libwebsockets_remaining_packet_payload(wsi) == 0 &&
		    libwebsocket_is_final_fragment(wsi)) {
			finish_message();
			libwebsocket_callback_on_writable(context, wsi);
		}
		break;
	case LWS_CALLBACK_CLOSED:
		closed = 1;
		done = 1;
		break;
	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "pmd-test", pmd_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "path", required_argument, NULL, 'a' },
		{ "expect-rsv1", required_argument, NULL, 'r' },
		{ "max", required_argument, NULL, 'm' },
		{ "no-extensions", no_argument, NULL, 'n' },
		{ "expect-error", no_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 }
	};
	static const size_t sizes[] = { 0, 1, 125, 126, 127, 1000, 65535, 65536, 65537, 300000, 1048576 };
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	struct libwebsocket *wsi;
	const char *path = "/echo";
	size_t max = 1048576;
	int port = 0, use_ext = 1, c, k;
	unsigned int s;
	long long deadline;

	while ((c = getopt_long(argc, argv, "p:a:r:m:ne", opts, NULL)) != -1) {
		switch (c) {
		case 'p': port = atoi(optarg); break;
		case 'a': path = optarg; break;
		case 'r': expect_rsv1 = optarg; break;
		case 'm': max = (size_t)strtoul(optarg, NULL, 10); break;
		case 'n': use_ext = 0; break;
		case 'e': expect_error = 1; break;
		default:
			fprintf(stderr, "usage: %s --port P [--path P] [--expect-rsv1 yes|no|any] [--max N] [--no-extensions] [--expect-error]\n",
				argv[0]);
			return 2;
		}
	}
	if (port <= 0) {
		fprintf(stderr, "--port is required\n");
		return 2;
	}
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		if (sizes[s] > max)
			continue;
		for (k = 0; k < 3; k++) {
			add(sizes[s], 0, k, 1);
			add(sizes[s], 1, k, 1);
		}
	}
	add(3000, 0, 0, 3);
	add(200000, 1, 1, 4);
	add(0, 1, 2, 2);
	add(1000, 0, 0, 1); /* a whole message after the fragmented ones */

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.extensions = use_ext ? libwebsocket_get_internal_extensions() : NULL;
	info.gid = -1;
	info.uid = -1;
	context = libwebsocket_create_context(&info);
	if (!context) {
		fail("libwebsocket_create_context failed");
		return 1;
	}
	wsi = libwebsocket_client_connect(context, "127.0.0.1", port, 0, path, "127.0.0.1",
					  "http://127.0.0.1", NULL, -1);
	if (!wsi)
		fail("libwebsocket_client_connect returned NULL");
	deadline = now_ms() + 60000;
	while (wsi && !done && now_ms() < deadline)
		libwebsocket_service(context, 50);
	if (!done)
		fail("gave up after 60 s: %d of %d messages echoed", cur, nplans);
	libwebsocket_context_destroy(context);

	printf("offered: %s\n", offered[0] ? offered : "(nothing)");
	if (expect_error) {
		if (conn_error != 1)
			fail("CLIENT_CONNECTION_ERROR came %d times, expected once", conn_error);
		if (established)
			fail("the connection was established although the reply must be refused");
		if (!failures)
			printf("PASS handshake refused\n");
		printf("client_pmd: %d messages, %d failed checks\n", echoed, failures);
		free(txbuf);
		free(rx);
		return failures ? 1 : 0;
	}
	printf("echoes with RSV1: %d of %d\n", rsv1_msgs, echoed);
	if (rsv_failures > 1) {
		printf("FAIL %d messages in all had unexpected reserved bits\n", rsv_failures);
		failures++;
	}
	if (conn_error)
		fail("CLIENT_CONNECTION_ERROR");
	if (!established)
		fail("never established");
	if (cur != nplans)
		fail("%d of %d messages echoed", cur, nplans);
	if (!failures)
		printf("PASS echo of %d messages\n", nplans);
	printf("client_pmd: %d messages, %d failed checks\n", echoed, failures);
	free(txbuf);
	free(rx);
	return failures ? 1 : 0;
}
