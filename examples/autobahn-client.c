/*
 * autobahn-client: an echo client for the Autobahn|Testsuite "fuzzingserver",
 * written for the libwebsockets v1.23 client API.
 *
 * Usage: autobahn-client [--case-timeout S] [--debug LEVEL] <ws://HOST:PORT> <agent>
 *
 *   1. GET /getCaseCount              one text message holds N
 *   2. GET /runCase?case=i&agent=A    for i = 1..N, one connection at a time:
 *                                     every text/binary message is reassembled
 *                                     and sent back with the same opcode
 *   3. GET /updateReports?agent=A     the server writes its reports
 *
 * Each connection has a watchdog (--case-timeout, default 60 s): when it fires
 * the connection is closed through the library, and if even that does not end
 * it the whole context is recreated, so the program always finishes.
 *
 * Exit status: 0 when the case count was read and every step was attempted,
 * 1 on bad arguments or when the case count could not be read.
 */

#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#define MAX_MESSAGE (32u * 1024u * 1024u)	/* Autobahn sends up to 16 MiB */
#define FRAGMENT (256u * 1024u)			/* echo frames at most this big */
#define CLOSE_GRACE_MS 5000			/* after the watchdog closed it */

enum phase {
	PHASE_COUNT,
	PHASE_CASE,
	PHASE_REPORT
};

struct message {
	struct message *next;
	unsigned char *buf;	/* PRE padding + payload + POST padding */
	size_t len;
	int binary;
};

/* the one connection in progress */
static struct {
	struct libwebsocket *wsi;
	int done;		/* CLOSED or CONNECTION_ERROR delivered */
	int established;
	int error;
	int connecting;		/* inside libwebsocket_client_connect */
	unsigned char *rx;	/* message being reassembled, PRE padding first */
	size_t rx_len;
	size_t rx_cap;
	int rx_binary;
	int rx_active;
	struct message *head;	/* messages waiting to be echoed */
	struct message *tail;
	size_t tx_off;		/* payload bytes of head already written */
	long received;
	long echoed;
} conn;

static enum phase phase;
static long case_count = -1;
static volatile sig_atomic_t interrupted;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_queue(void)
{
	while (conn.head) {
		struct message *m = conn.head;

		conn.head = m->next;
		free(m->buf);
		free(m);
	}
	conn.tail = NULL;
	conn.tx_off = 0;
	free(conn.rx);
	conn.rx = NULL;
	conn.rx_len = conn.rx_cap = 0;
	conn.rx_active = 0;
}

static int rx_append(const void *in, size_t len)
{
	size_t need;

	if (conn.rx_len + len > MAX_MESSAGE) {
		fprintf(stderr, "autobahn-client: message over %u bytes\n", MAX_MESSAGE);
		return -1;
	}
	need = LWS_SEND_BUFFER_PRE_PADDING + conn.rx_len + len + LWS_SEND_BUFFER_POST_PADDING;
	if (need > conn.rx_cap) {
		size_t cap = conn.rx_cap ? conn.rx_cap : 4096;
		unsigned char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(conn.rx, cap);
		if (!p) {
			fprintf(stderr, "autobahn-client: out of memory\n");
			return -1;
		}
		conn.rx = p;
		conn.rx_cap = cap;
	}
	if (len)
		memcpy(conn.rx + LWS_SEND_BUFFER_PRE_PADDING + conn.rx_len, in, len);
	conn.rx_len += len;
	return 0;
}

/* a complete message: read the case count, or queue it for echoing */
static int rx_complete(struct libwebsocket_context *context, struct libwebsocket *wsi)
{
	struct message *m;

	conn.received++;
	conn.rx_active = 0;

	if (phase == PHASE_COUNT) {
		char text[32];
		size_t n = conn.rx_len < sizeof(text) - 1 ? conn.rx_len : sizeof(text) - 1;
		char *end;

		memcpy(text, conn.rx + LWS_SEND_BUFFER_PRE_PADDING, n);
		text[n] = '\0';
		case_count = strtol(text, &end, 10);
		if (end == text || case_count < 0) {
			fprintf(stderr, "autobahn-client: bad case count '%s'\n", text);
			case_count = -1;
		}
		conn.rx_len = 0;
		return 0;
	}
	if (phase != PHASE_CASE) {
		conn.rx_len = 0;
		return 0;
	}

	if (!conn.rx && rx_append(NULL, 0))
		return -1;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -1;
	m->buf = conn.rx;
	m->len = conn.rx_len;
	m->binary = conn.rx_binary;
	conn.rx = NULL;
	conn.rx_len = conn.rx_cap = 0;
	if (conn.tail)
		conn.tail->next = m;
	else
		conn.head = m;
	conn.tail = m;
	libwebsocket_callback_on_writable(context, wsi);
	return 0;
}

/* writes queued messages until the queue is empty or the socket is choked */
static int write_queue(struct libwebsocket_context *context, struct libwebsocket *wsi)
{
	while (conn.head) {
		struct message *m = conn.head;
		size_t left = m->len - conn.tx_off;
		size_t chunk = left > FRAGMENT ? FRAGMENT : left;
		int flags;

		if (conn.tx_off)
			flags = LWS_WRITE_CONTINUATION;
		else
			flags = m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
		if (chunk < left)
			flags |= LWS_WRITE_NO_FIN;

		if (libwebsocket_write(wsi, m->buf + LWS_SEND_BUFFER_PRE_PADDING + conn.tx_off,
				       chunk, (enum libwebsocket_write_protocol)flags) < 0) {
			fprintf(stderr, "autobahn-client: write failed\n");
			return -1;
		}
		conn.tx_off += chunk;
		if (conn.tx_off == m->len) {
			conn.head = m->next;
			if (!conn.head)
				conn.tail = NULL;
			free(m->buf);
			free(m);
			conn.tx_off = 0;
			conn.echoed++;
		}
		if (conn.head && lws_send_pipe_choked(wsi)) {
			libwebsocket_callback_on_writable(context, wsi);
			break;
		}
	}
	return 0;
}

static int callback_echo(struct libwebsocket_context *context,
			 struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	(void)user;

	/* a callback from inside libwebsocket_client_connect itself */
	if (conn.connecting && !conn.wsi && wsi)
		conn.wsi = wsi;

	/* ignore anything about a connection other than the current one */
	if (wsi != conn.wsi || conn.done) {
		switch (reason) {
		case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
		case LWS_CALLBACK_CLIENT_ESTABLISHED:
		case LWS_CALLBACK_CLOSED:
		case LWS_CALLBACK_CLIENT_RECEIVE:
		case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		case LWS_CALLBACK_CLIENT_WRITEABLE:
			fprintf(stderr, "autobahn-client: callback %d for a stale connection\n",
				(int)reason);
			return reason == LWS_CALLBACK_CLIENT_RECEIVE ||
			       reason == LWS_CALLBACK_CLIENT_WRITEABLE ? -1 : 0;
		default:
			return 0;
		}
	}

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		conn.error = 1;
		conn.done = 1;
		free_queue();
		break;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		conn.established = 1;
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!conn.rx_active) {
			conn.rx_active = 1;
			conn.rx_binary = lws_frame_is_binary(wsi);
			conn.rx_len = 0;
		}
		if (rx_append(in, len))
			return -1;
		if (libwebsockets_remaining_packet_payload(wsi) ||
		    !libwebsocket_is_final_fragment(wsi))
			break;
		return rx_complete(context, wsi);

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return write_queue(context, wsi);

	case LWS_CALLBACK_CLOSED:
		conn.done = 1;
		free_queue();
		break;

	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "autobahn-echo", callback_echo, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* --compress: offer the library's internal extensions (permessage-deflate) */
static int use_compression;

static struct libwebsocket_context *make_context(void)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	if (use_compression)
		info.extensions = libwebsocket_get_internal_extensions();
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	return libwebsocket_create_context(&info);
}

/* the parts of ws://HOST[:PORT][/PREFIX] */
static char url_host[256];
static char url_hosthdr[300];
static char url_prefix[512];
static int url_port = 80;

static int parse_url(const char *url)
{
	const char *p, *host_end, *path;
	size_t n;

	if (!strncmp(url, "wss://", 6)) {
		fprintf(stderr, "autobahn-client: wss:// (TLS) not supported yet\n");
		return -1;
	}
	if (strncmp(url, "ws://", 5)) {
		fprintf(stderr, "autobahn-client: the URL must start with ws://\n");
		return -1;
	}
	p = url + 5;
	path = strchr(p, '/');
	if (!path)
		path = p + strlen(p);

	if (*p == '[') {
		host_end = memchr(p, ']', (size_t)(path - p));
		if (!host_end)
			return -1;
		n = (size_t)(host_end - p - 1);
		if (n >= sizeof(url_host))
			return -1;
		memcpy(url_host, p + 1, n);
		host_end++;
	} else {
		host_end = memchr(p, ':', (size_t)(path - p));
		if (!host_end)
			host_end = path;
		n = (size_t)(host_end - p);
		if (n >= sizeof(url_host))
			return -1;
		memcpy(url_host, p, n);
	}
	url_host[n] = '\0';
	if (!n)
		return -1;

	if (host_end < path && *host_end == ':') {
		char *end;
		long port = strtol(host_end + 1, &end, 10);

		if (end != path || port <= 0 || port > 65535)
			return -1;
		url_port = (int)port;
	} else if (host_end != path) {
		return -1;
	}

	n = strlen(path);
	while (n && path[n - 1] == '/')
		n--;
	if (n >= sizeof(url_prefix))
		return -1;
	memcpy(url_prefix, path, n);
	url_prefix[n] = '\0';

	if (strchr(url_host, ':'))
		snprintf(url_hosthdr, sizeof(url_hosthdr), "[%s]:%d", url_host, url_port);
	else
		snprintf(url_hosthdr, sizeof(url_hosthdr), "%s:%d", url_host, url_port);
	return 0;
}

static void url_encode(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < size; in++) {
		unsigned char c = (unsigned char)*in;

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static struct libwebsocket_context *context;
static long case_timeout_ms = 60000;

/*
 * Runs one connection to `path` until it has ended. Returns 0 when it was
 * established (whatever happened later), -1 when it never was.
 */
static int run_connection(const char *path)
{
	struct libwebsocket *wsi;
	long long start, closing_since = 0;

	memset(&conn, 0, sizeof(conn));
	if (!context) {
		context = make_context();
		if (!context) {
			fprintf(stderr, "autobahn-client: creating the context failed\n");
			return -1;
		}
	}
	conn.connecting = 1;
	wsi = libwebsocket_client_connect(context, url_host, url_port, 0, path, url_hosthdr,
					  url_hosthdr, NULL, -1);
	conn.connecting = 0;
	if (!wsi) {
		fprintf(stderr, "autobahn-client: libwebsocket_client_connect(%s) failed\n", path);
		return -1;
	}
	if (!conn.wsi)
		conn.wsi = wsi;

	start = now_ms();
	while (!conn.done) {
		long long t = now_ms();

		if (interrupted && !closing_since)
			start = t - case_timeout_ms;
		if (!closing_since && t - start >= case_timeout_ms) {
			fprintf(stderr, "autobahn-client: %s: watchdog, closing\n", path);
			libwebsocket_set_timeout(conn.wsi, PENDING_TIMEOUT_CLOSE_ACK, 1);
			closing_since = t;
		}
		if (closing_since && t - closing_since >= CLOSE_GRACE_MS) {
			fprintf(stderr, "autobahn-client: %s: still open, dropping the context\n",
				path);
			libwebsocket_context_destroy(context);
			context = NULL;
			break;
		}
		/* -1 also when a signal interrupted the wait (as in v1.23) */
		if (libwebsocket_service(context, 50) < 0 && !interrupted) {
			fprintf(stderr, "autobahn-client: libwebsocket_service failed\n");
			libwebsocket_context_destroy(context);
			context = NULL;
			break;
		}
	}
	conn.done = 1;
	free_queue();
	return conn.established ? 0 : -1;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"Usage: %s [--compress] [--case-timeout S] [--debug LEVEL] <ws://HOST:PORT> <agent>\n",
		prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "case-timeout", required_argument, NULL, 't' },
		{ "compress", no_argument, NULL, 'c' },
		{ "debug", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char agent[256];
	char path[1024];
	struct sigaction sa;
	long i, ok = 0;
	int c;

	while ((c = getopt_long(argc, argv, "t:d:ch", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			use_compression = 1;
			break;
		case 't':
			case_timeout_ms = atol(optarg) * 1000;
			if (case_timeout_ms <= 0)
				case_timeout_ms = 60000;
			break;
		case 'd':
			lws_set_log_level(atoi(optarg), NULL);
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 1;
		}
	}
	if (argc - optind != 2) {
		usage(argv[0]);
		return 1;
	}
	if (parse_url(argv[optind])) {
		fprintf(stderr, "autobahn-client: bad URL '%s'\n", argv[optind]);
		return 1;
	}
	url_encode(argv[optind + 1], agent, sizeof(agent));

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	phase = PHASE_COUNT;
	snprintf(path, sizeof(path), "%s/getCaseCount", url_prefix);
	run_connection(path);
	if (case_count < 0) {
		fprintf(stderr, "autobahn-client: could not read the case count\n");
		if (context)
			libwebsocket_context_destroy(context);
		return 1;
	}
	printf("autobahn-client: %ld cases\n", case_count);

	phase = PHASE_CASE;
	for (i = 1; i <= case_count && !interrupted; i++) {
		long long t0 = now_ms();
		int r;

		snprintf(path, sizeof(path), "%s/runCase?case=%ld&agent=%s", url_prefix, i, agent);
		r = run_connection(path);
		if (!r)
			ok++;
		printf("case %ld/%ld: %s, %ld messages echoed of %ld, %lld ms\n", i, case_count,
		       r ? "connection failed" : "done", conn.echoed, conn.received,
		       now_ms() - t0);
	}

	phase = PHASE_REPORT;
	snprintf(path, sizeof(path), "%s/updateReports?agent=%s", url_prefix, agent);
	if (run_connection(path))
		fprintf(stderr, "autobahn-client: updateReports failed\n");
	printf("autobahn-client: %ld of %ld case connections established\n", ok, case_count);

	if (context)
		libwebsocket_context_destroy(context);
	return interrupted ? 1 : 0;
}
