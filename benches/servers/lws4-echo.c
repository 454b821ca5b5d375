/*
 * lws4-echo.c - the comparison server of benches/run-ext.sh: the echo server of
 * examples/test-echo.c rewritten for the libwebsockets 4.x API (lws_* names) and built
 * against the system's libwebsockets (Debian 12: 4.1.6 on OpenSSL 3), so that both
 * libraries serve the same load from the same client with the same certificates.
 *
 * Same echo design as test-echo: every text or binary message comes back unchanged, as
 * one message with its opcode, in order. RECEIVE chunks are gathered into one buffer
 * per message (sized from the frame's remaining payload when it is known), a complete
 * message goes on the connection's queue, SERVER_WRITEABLE writes queued messages (one
 * lws_write each, with LWS_PRE headroom) until lws_send_pipe_choked(), and reading
 * stops (lws_rx_flow_control) while more than 4 MiB wait, until less than 1 MiB do.
 *
 * libwebsockets 4.x may keep using a buffer handed to lws_write after it returns: with
 * permessage-deflate the compressor reads the message piece by piece while the library
 * drains it in later POLLOUT rounds (lws_send_pipe_choked() is true meanwhile, and the
 * application's WRITEABLE is not called until it is done). So the last message written
 * is freed only at the next WRITEABLE or at close.
 *
 *   lws4-echo --port N [--ssl --cert FILE --key FILE] [--deflate] [--pmd-level N]
 *             [--pmd-tx-pwr2 N] [--pmd-rx-pwr2 N] [--rx-buffer BYTES] [--log LEVEL]
 *   lws4-echo --version      prints the library's version (lws_get_library_version)
 *
 *   --ssl          TLS only on the port (LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT, the
 *                  certificate and key files through ssl_cert_filepath /
 *                  ssl_private_key_filepath)
 *   --deflate      register permessage-deflate (lws_extension_callback_pm_deflate) with
 *                  the parameters of our server: zlib level 6 (lws 4.1 defaults to 1),
 *                  15-bit windows both ways, memLevel 8, context takeover, and 16 KiB
 *                  deflate / inflate steps (lws defaults to 1 KiB; lws caps the inflate
 *                  step at the protocol's rx buffer size)
 *   --pmd-level N, --pmd-tx-pwr2 N, --pmd-rx-pwr2 N
 *                  zlib level, deflate and inflate step (2^N bytes) instead of 6, 14, 14
 *   --rx-buffer N  the protocol's rx_buffer_size (default 0: the library's, 4096).
 *                  lws 4.1.6's permessage-deflate corrupts its input (zlib "invalid
 *                  distance too far back", then stalls) when several connections receive
 *                  compressed frames larger than this buffer, or inflate in 1 KiB steps:
 *                  give compressed traffic a buffer larger than its frames (run-ext.sh
 *                  uses 65536 for its 64 KiB messages)
 *   --log LEVEL    lws log level bitmask (default LLL_ERR | LLL_WARN)
 *
 * Listens on 127.0.0.1 only. SIGTERM / SIGINT stop it. SIGUSR1 prints one line of
 * counters to stderr (cumulative since start):
 *   lws4-echo: stats established=N tls_full=N tls_resumed=N messages=N
 * tls_full / tls_resumed count the TLS connections that reached the WebSocket upgrade by
 * whether OpenSSL resumed a session (SSL_session_reused), which lets the harness check
 * that its client really resumes against this server. The first TLS connection's
 * version, cipher and key-exchange group are printed once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>

/* the system's 4.x header, not ours (which has no version macros) */
#if !defined(LWS_LIBRARY_VERSION_MAJOR) || LWS_LIBRARY_VERSION_MAJOR < 4
#error "lws4-echo needs the libwebsockets 4.x header (libwebsockets-dev), not this project's"
#endif

#define QUEUE_HIGH_WATER (4u * 1024u * 1024u)
#define QUEUE_LOW_WATER (1u * 1024u * 1024u)

/* one message: payload at data + LWS_PRE */
struct qmsg {
	struct qmsg *next;
	size_t len;
	int binary;
	unsigned char data[];
};

struct conn {
	struct qmsg *rx;	/* message being gathered */
	size_t rx_cap;		/* payload bytes rx can hold */
	struct qmsg *head, *tail;
	struct qmsg *written;	/* last message given to lws_write */
	size_t queued_bytes;
	int paused;
};

static volatile sig_atomic_t stop_flag, stats_flag;
static struct lws_context *ctx;
static unsigned long n_established, n_tls_full, n_tls_resumed, n_messages;
static int tls_described;
static int pmd_level = 6, pmd_tx_pwr2 = 14, pmd_rx_pwr2 = 14;

static void free_chain(struct qmsg *m)
{
	while (m) {
		struct qmsg *next = m->next;

		free(m);
		m = next;
	}
}

static void conn_release(struct conn *c)
{
	free_chain(c->head);
	c->head = c->tail = NULL;
	free(c->rx);
	c->rx = NULL;
	free(c->written);
	c->written = NULL;
	c->queued_bytes = 0;
}

/* appends a chunk to the message being gathered; hint = payload bytes still to come */
static int gather(struct conn *c, struct lws *wsi, const void *in, size_t len, size_t hint)
{
	size_t have = c->rx ? c->rx->len : 0;

	if (!c->rx || have + len > c->rx_cap) {
		size_t cap = have + len + hint;
		struct qmsg *m;

		if (c->rx && cap < 2 * c->rx_cap)
			cap = 2 * c->rx_cap;
		if (cap < 128)
			cap = 128;
		m = realloc(c->rx, sizeof(*m) + LWS_PRE + cap);
		if (!m)
			return -1;
		if (!c->rx) {
			m->next = NULL;
			m->len = 0;
			m->binary = lws_frame_is_binary(wsi);
		}
		c->rx = m;
		c->rx_cap = cap;
	}
	if (len)
		memcpy(c->rx->data + LWS_PRE + have, in, len);
	c->rx->len = have + len;
	return 0;
}

/* payload of the current frame still to come, as an allocation hint (at most 64 MiB) */
static size_t remaining_hint(struct lws *wsi)
{
	size_t r = lws_remaining_packet_payload(wsi);

	return r < (64u << 20) ? r : (64u << 20);
}

static void describe_tls(struct lws *wsi)
{
	SSL *ssl = lws_get_ssl(wsi);

	if (!ssl)
		return;
	if (SSL_session_reused(ssl))
		n_tls_resumed++;
	else
		n_tls_full++;
	if (!tls_described) {
		int group = SSL_get_negotiated_group(ssl);

		tls_described = 1;
		fprintf(stderr, "lws4-echo: first TLS connection: %s %s group %s\n",
			SSL_get_version(ssl), SSL_get_cipher_name(ssl),
			group > 0 ? OBJ_nid2sn(group) : "?");
	}
}

static int on_writeable(struct lws *wsi, struct conn *c)
{
	struct qmsg *m;

	/* nothing of the previous write is pending in the library any more */
	free(c->written);
	c->written = NULL;
	while ((m = c->head)) {
		if (lws_write(wsi, m->data + LWS_PRE, m->len,
			      m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < 0)
			return -1;
		/* for WebSocket frames lws takes the whole length (queueing what the
		 * socket refuses) or fails */
		c->head = m->next;
		if (!c->head)
			c->tail = NULL;
		c->queued_bytes -= m->len;
		free(c->written);
		c->written = m;
		if (c->paused && c->queued_bytes < QUEUE_LOW_WATER) {
			c->paused = 0;
			lws_rx_flow_control(wsi, 1);
		}
		if (c->head && lws_send_pipe_choked(wsi)) {
			lws_callback_on_writable(wsi);
			break;
		}
	}
	return 0;
}

static int echo_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			 void *in, size_t len)
{
	struct conn *c = user;
	char v[8];

	if (!c && (reason == LWS_CALLBACK_ESTABLISHED || reason == LWS_CALLBACK_RECEIVE ||
		   reason == LWS_CALLBACK_SERVER_WRITEABLE))
		return -1;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		memset(c, 0, sizeof(*c));
		n_established++;
		describe_tls(wsi);
		/* compressor settings apply before the first write creates it */
		snprintf(v, sizeof(v), "%d", pmd_level);
		lws_set_extension_option(wsi, "permessage-deflate", "compression_level", v);
		snprintf(v, sizeof(v), "%d", pmd_tx_pwr2);
		lws_set_extension_option(wsi, "permessage-deflate", "tx_buf_size", v);
		snprintf(v, sizeof(v), "%d", pmd_rx_pwr2);
		lws_set_extension_option(wsi, "permessage-deflate", "rx_buf_size", v);
		break;

	case LWS_CALLBACK_RECEIVE:
		if (gather(c, wsi, in, len, remaining_hint(wsi)))
			return -1;
		if (lws_remaining_packet_payload(wsi) || !lws_is_final_fragment(wsi))
			break;
		/* a whole message: to the end of the queue */
		if (c->tail)
			c->tail->next = c->rx;
		else
			c->head = c->rx;
		c->tail = c->rx;
		c->queued_bytes += c->rx->len;
		c->rx = NULL;
		c->rx_cap = 0;
		n_messages++;
		lws_callback_on_writable(wsi);
		if (!c->paused && c->queued_bytes > QUEUE_HIGH_WATER) {
			c->paused = 1;
			lws_rx_flow_control(wsi, 0);
		}
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(wsi, c);

	case LWS_CALLBACK_CLOSED:
		if (c)
			conn_release(c);
		break;

	default:
		/* HTTP requests and the rest: the library's default handling */
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
	return 0;
}

/* protocols[0] serves clients that ask for no subprotocol */
static struct lws_protocols protocols[] = {
	{ "echo", echo_callback, sizeof(struct conn), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct lws_extension extensions[] = {
	{ "permessage-deflate", lws_extension_callback_pm_deflate,
	  "permessage-deflate; client_max_window_bits" },
	{ NULL, NULL, NULL }
};

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
	if (ctx)
		lws_cancel_service(ctx);	/* an eventfd write: wakes the poll */
}

static void on_stats(int sig)
{
	(void)sig;
	stats_flag = 1;
	if (ctx)
		lws_cancel_service(ctx);
}

static void print_stats(void)
{
	fprintf(stderr, "lws4-echo: stats established=%lu tls_full=%lu tls_resumed=%lu messages=%lu\n",
		n_established, n_tls_full, n_tls_resumed, n_messages);
}

static void usage(void)
{
	fprintf(stderr, "usage: lws4-echo --port N [--ssl --cert FILE --key FILE] [--deflate]\n"
			"                 [--pmd-level N] [--pmd-tx-pwr2 N] [--pmd-rx-pwr2 N]\n"
			"                 [--rx-buffer BYTES] [--log LEVEL]\n");
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	const char *cert = NULL, *key = NULL;
	int i, port = 0, use_ssl = 0, deflate = 0, level = LLL_ERR | LLL_WARN;
	struct sigaction sa;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--version")) {
			printf("%s\n", lws_get_library_version());
			return 0;
		} else if (!strcmp(a, "--ssl")) {
			use_ssl = 1;
		} else if (!strcmp(a, "--deflate")) {
			deflate = 1;
		} else if (val && !strcmp(a, "--port")) {
			port = atoi(val);
			i++;
		} else if (val && !strcmp(a, "--cert")) {
			cert = val;
			i++;
		} else if (val && !strcmp(a, "--key")) {
			key = val;
			i++;
		} else if (val && !strcmp(a, "--pmd-level")) {
			pmd_level = atoi(val);
			i++;
		} else if (val && !strcmp(a, "--pmd-tx-pwr2")) {
			pmd_tx_pwr2 = atoi(val);
			i++;
		} else if (val && !strcmp(a, "--pmd-rx-pwr2")) {
			pmd_rx_pwr2 = atoi(val);
			i++;
		} else if (val && !strcmp(a, "--rx-buffer")) {
			protocols[0].rx_buffer_size = (size_t)strtoul(val, NULL, 10);
			i++;
		} else if (val && !strcmp(a, "--log")) {
			level = atoi(val);
			i++;
		} else {
			usage();
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || pmd_level < 0 || pmd_level > 9 || pmd_tx_pwr2 < 8 ||
	    pmd_tx_pwr2 > 20 || pmd_rx_pwr2 < 8 || pmd_rx_pwr2 > 20 || (use_ssl && (!cert || !key)) || (!use_ssl && (cert || key))) {
		usage();
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_stats;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lws_set_log_level(level, NULL);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	if (deflate)
		info.extensions = extensions;
	if (use_ssl) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cert;
		info.ssl_private_key_filepath = key;
	}
	ctx = lws_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "lws4-echo: lws_create_context failed\n");
		return 1;
	}
	fprintf(stderr, "lws4-echo (libwebsockets %s) listening on 127.0.0.1:%d%s%s\n",
		lws_get_library_version(), port, use_ssl ? " (TLS only)" : "",
		deflate ? " permessage-deflate" : "");

	while (!stop_flag) {
		if (lws_service(ctx, 0) < 0)
			break;
		if (stats_flag) {
			stats_flag = 0;
			print_stats();
		}
	}
	print_stats();
	lws_context_destroy(ctx);
	return 0;
}
