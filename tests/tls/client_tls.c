/*
 * client_tls: one wss:// connection made with the libwebsockets v1.23 client API,
 * for the TLS tests (tests/tls_behaviour.rs) against tests/tls/wss_server.py.
 *
 * Usage: client_tls --port P --ssl N [--address A] [--host H | --no-host]
 *                   [--ca FILE] [--big] [--timeout S] --expect ok|error
 *
 *   --ssl N      the ssl_connection argument: 1 verifies the server (system
 *                roots plus --ca, which goes into the context's
 *                ssl_ca_filepath; host name check and SNI from the host
 *                argument, or the address when it is NULL or empty), 2 accepts
 *                any certificate
 *   --address    where to connect (default 127.0.0.1)
 *   --host       the host argument (default: the address); --no-host passes NULL
 *   --big        also echo a 16 MiB message each way
 *   --expect ok     the connection is established, text and binary messages of
 *                   0, 125, 126, 65535, 65536 bytes and 1 MiB (16 MiB with --big)
 *                   come back unchanged, and returning -1 from WRITEABLE closes it:
 *                   CLOSED once, no CONNECTION_ERROR
 *   --expect error  LWS_CALLBACK_CLIENT_CONNECTION_ERROR exactly once (checked for
 *                   another 1.5 s afterwards), never ESTABLISHED nor CLOSED
 *
 * Prints "client_tls: PASS" or "client_tls: FAIL: why"; exit status 0 on PASS.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

static const size_t sizes[] = { 0, 125, 126, 65535, 65536, 1 << 20, 16 << 20 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static struct libwebsocket *wsi_main;
static int errors, established, closed, stray;
static int expect_error;
static size_t nmsgs;		/* messages to echo: 2 per size */
static size_t current;		/* index of the message on its way */
static int sent_current;	/* the current message was written */
static int echoes;		/* messages echoed unchanged */
static int bad;			/* an echo differed */
static char bad_why[256];
static int want_close;
static unsigned char *rx;
static size_t rx_len, rx_cap;
static int rx_binary, rx_started;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* message i: even = text, odd = binary, of sizes[i / 2] bytes */
static void fill(unsigned char *p, size_t i)
{
	size_t n = sizes[i / 2], k;

	if (i % 2 == 0) {
		static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 ,.-";

		for (k = 0; k < n; k++)
			p[k] = (unsigned char)alphabet[(k * 7 + i) % (sizeof(alphabet) - 1)];
	} else {
		for (k = 0; k < n; k++)
			p[k] = (unsigned char)((k * 131 + (k >> 9) + i * 17) & 0xff);
	}
}

static int check_echo(void)
{
	size_t n = sizes[current / 2];
	unsigned char *want;
	int same;

	if (rx_binary != (int)(current % 2)) {
		snprintf(bad_why, sizeof(bad_why), "message %zu (%zu bytes) came back as %s",
			 current, n, rx_binary ? "binary" : "text");
		return -1;
	}
	if (rx_len != n) {
		snprintf(bad_why, sizeof(bad_why), "message %zu: %zu bytes sent, %zu came back",
			 current, n, rx_len);
		return -1;
	}
	want = malloc(n ? n : 1);
	if (!want) {
		snprintf(bad_why, sizeof(bad_why), "out of memory");
		return -1;
	}
	fill(want, current);
	same = !n || !memcmp(want, rx, n);
	free(want);
	if (!same) {
		snprintf(bad_why, sizeof(bad_why), "message %zu (%zu bytes) came back different",
			 current, n);
		return -1;
	}
	return 0;
}

static int rx_add(const void *in, size_t len)
{
	if (rx_len + len > rx_cap) {
		size_t cap = rx_cap ? rx_cap : 4096;
		unsigned char *p;

		while (cap < rx_len + len)
			cap *= 2;
		p = realloc(rx, cap);
		if (!p)
			return -1;
		rx = p;
		rx_cap = cap;
	}
	if (len)
		memcpy(rx + rx_len, in, len);
	rx_len += len;
	return 0;
}

static int tls_callback(struct libwebsocket_context *context, struct libwebsocket *wsi,
		    enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (wsi != wsi_main && wsi_main)
			stray++;
		errors++;
		fprintf(stderr, "client_tls: CLIENT_CONNECTION_ERROR\n");
		break;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		established++;
		fprintf(stderr, "client_tls: ESTABLISHED\n");
		libwebsocket_callback_on_writable(context, wsi);
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (want_close)
			return -1;	/* closes with a close frame */
		if (current < nmsgs && !sent_current) {
			size_t n = sizes[current / 2];
			unsigned char *buf = malloc(LWS_SEND_BUFFER_PRE_PADDING + n +
						    LWS_SEND_BUFFER_POST_PADDING);
			int w;

			if (!buf)
				return -1;
			fill(buf + LWS_SEND_BUFFER_PRE_PADDING, current);
			w = libwebsocket_write(wsi, buf + LWS_SEND_BUFFER_PRE_PADDING, n,
					       current % 2 ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
			free(buf);
			if (w < (int)n) {
				snprintf(bad_why, sizeof(bad_why), "libwebsocket_write(%zu) gave %d",
					 n, w);
				bad = 1;
				return -1;
			}
			sent_current = 1;
		}
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!rx_started) {
			rx_started = 1;
			rx_binary = lws_frame_is_binary(wsi);
		}
		if (rx_add(in, len))
			return -1;
		if (libwebsockets_remaining_packet_payload(wsi) || !libwebsocket_is_final_fragment(wsi))
			break;
		rx_started = 0;
		if (current >= nmsgs || !sent_current) {
			snprintf(bad_why, sizeof(bad_why), "a message nobody asked for (%zu bytes)",
				 rx_len);
			bad = 1;
		} else if (check_echo()) {
			bad = 1;
		} else {
			echoes++;
		}
		rx_len = 0;
		current++;
		sent_current = 0;
		if (bad || current >= nmsgs)
			want_close = 1;
		libwebsocket_callback_on_writable(context, wsi);
		break;

	case LWS_CALLBACK_CLOSED:
		closed++;
		fprintf(stderr, "client_tls: CLOSED\n");
		break;

	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "tls-echo-client", tls_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void usage(void)
{
	fprintf(stderr,
		"Usage: client_tls --port P --ssl N [--address A] [--host H | --no-host]\n"
		"                  [--ca FILE] [--big] [--timeout S] --expect ok|error\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "ssl", required_argument, NULL, 's' },
		{ "address", required_argument, NULL, 'a' },
		{ "host", required_argument, NULL, 'H' },
		{ "no-host", no_argument, NULL, 'N' },
		{ "ca", required_argument, NULL, 'c' },
		{ "big", no_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ "expect", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	const char *address = "127.0.0.1", *host = NULL, *ca = NULL, *expect = NULL;
	int port = 0, ssl = -1, no_host = 0, big = 0, c, ok;
	long timeout_s = 60;
	long long start, error_at = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			port = atoi(optarg);
			break;
		case 's':
			ssl = atoi(optarg);
			break;
		case 'a':
			address = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'N':
			no_host = 1;
			break;
		case 'c':
			ca = optarg;
			break;
		case 'b':
			big = 1;
			break;
		case 't':
			timeout_s = atol(optarg);
			break;
		case 'e':
			expect = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (port <= 0 || ssl < 0 || !expect || (strcmp(expect, "ok") && strcmp(expect, "error"))) {
		usage();
		return 2;
	}
	expect_error = !strcmp(expect, "error");
	if (!host && !no_host)
		host = address;
	nmsgs = 2 * (big ? NSIZES : NSIZES - 1);
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	info.ssl_ca_filepath = ca;
	context = libwebsocket_create_context(&info);
	if (!context) {
		printf("client_tls: FAIL: libwebsocket_create_context failed\n");
		return 1;
	}

	fprintf(stderr, "client_tls: %s:%d ssl_connection %d host %s%s%s\n", address, port, ssl,
		host ? "\"" : "", host ? host : "NULL", host ? "\"" : "");
	wsi_main = libwebsocket_client_connect(context, address, port, ssl, "/", host, host,
					       NULL, -1);
	if (!wsi_main && !errors) {
		printf("client_tls: FAIL: libwebsocket_client_connect returned NULL\n");
		libwebsocket_context_destroy(context);
		return 1;
	}

	start = now_ms();
	while (now_ms() - start < timeout_s * 1000) {
		if (errors && !error_at)
			error_at = now_ms();
		/* after an error, watch a little longer for a second report */
		if (error_at && now_ms() - error_at > 1500)
			break;
		if (closed && !error_at)
			break;
		if (libwebsocket_service(context, 20) < 0)
			break;
	}

	printf("client_tls: established %d, errors %d, closed %d, echoes %d of %zu%s%s\n",
	       established, errors, closed, echoes, nmsgs, bad ? ", " : "", bad ? bad_why : "");
	if (expect_error) {
		ok = errors == 1 && !established && !closed && !stray;
		if (!ok)
			printf("client_tls: FAIL: expected CONNECTION_ERROR exactly once and nothing "
			       "else\n");
	} else {
		ok = established == 1 && !errors && closed == 1 && !bad &&
		     (size_t)echoes == nmsgs;
		if (!ok)
			printf("client_tls: FAIL: expected an established connection, every echo, "
			       "CLOSED once\n");
	}
	if (ok)
		printf("client_tls: PASS\n");
	libwebsocket_context_destroy(context);
	free(rx);
	return ok ? 0 : 1;
}
