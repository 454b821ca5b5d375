/*
 * test-server: the libwebsockets v1.23 API demonstration server.
 *
 * One port carries plain HTTP and three protocols:
 *
 *   [0] "http-only"               serves test.html at "/" and files below the
 *                                 resource directory; unknown files get 404,
 *                                 paths with ".." get 403. Also handles the
 *                                 external-poll callbacks in --extpoll mode.
 *   [1] "dumb-increment-protocol" each connection gets its own counter, sent as
 *                                 text about every 50 ms; "reset\n" sets it to 0.
 *   [2] "lws-mirror-protocol"     every message received is sent to every
 *                                 connection of this protocol, the sender too.
 *
 * Usage: test-server [--port N] [--interface IF] [--extpoll] [--debug LEVEL]
 *                    [--resource-path DIR] [-c|--closetest]
 *                    [--ssl [--cert FILE] [--key FILE] [--ca FILE]
 *                     [--require-client-cert] [--veto-client-cert]
 *                     [--ciphers LIST]]
 *
 * With --ssl the port speaks only TLS (https:// and wss://). The certificate
 * and key default to examples/test-cert.pem and examples/test-key.pem, which
 * are not part of the sources: examples/gen-test-certs.sh makes a test set.
 * --require-client-cert (needs --ca) only accepts clients presenting a
 * certificate signed by that CA; each such certificate is also shown to
 * protocols[0] (LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION), which
 * logs it and, with --veto-client-cert, rejects it.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

/* where the demo page lives when the resource directory has none */
#ifndef LWS_TEST_HTML
#define LWS_TEST_HTML "examples/test.html"
#endif

/* what --ssl uses without --cert / --key (not committed: see gen-test-certs.sh) */
#ifndef LWS_TEST_CERT
#define LWS_TEST_CERT "examples/test-cert.pem"
#endif
#ifndef LWS_TEST_KEY
#define LWS_TEST_KEY "examples/test-key.pem"
#endif

enum {
	PROTO_HTTP,
	PROTO_DUMB_INCREMENT,
	PROTO_MIRROR,
	PROTO_COUNT
};

static volatile sig_atomic_t stop_requested;
static char resource_path[PATH_MAX];
static int close_testing;
static int verbose = 1;
static int veto_client_certs;

/* ---------------------------------------------------------------- ext poll */

static struct pollfd *ext_fds;
static int *ext_slot_of_fd;
static int ext_count;
static int ext_capacity;

static int ext_init(void)
{
	int i;
	long cap = sysconf(_SC_OPEN_MAX);

	if (cap <= 0 || cap > (1L << 20))
		cap = 1L << 20;
	ext_capacity = (int)cap;
	ext_fds = calloc((size_t)ext_capacity, sizeof(*ext_fds));
	ext_slot_of_fd = malloc((size_t)ext_capacity * sizeof(*ext_slot_of_fd));
	if (!ext_fds || !ext_slot_of_fd)
		return -1;
	for (i = 0; i < ext_capacity; i++)
		ext_slot_of_fd[i] = -1;
	return 0;
}

static int ext_poll_callback(enum libwebsocket_callback_reasons reason, int fd, int events)
{
	int slot;

	if (!ext_fds)
		return 0;
	if (fd < 0 || fd >= ext_capacity)
		return 1;
	slot = ext_slot_of_fd[fd];

	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
		if (slot >= 0) {
			ext_fds[slot].events = (short)events;
			return 0;
		}
		if (ext_count >= ext_capacity) {
			lwsl_err("poll table full\n");
			return 1;
		}
		ext_fds[ext_count].fd = fd;
		ext_fds[ext_count].events = (short)events;
		ext_fds[ext_count].revents = 0;
		ext_slot_of_fd[fd] = ext_count++;
		break;
	case LWS_CALLBACK_DEL_POLL_FD:
		if (slot < 0)
			return 0;
		ext_count--;
		if (slot != ext_count) {
			ext_fds[slot] = ext_fds[ext_count];
			ext_slot_of_fd[ext_fds[slot].fd] = slot;
		}
		ext_slot_of_fd[fd] = -1;
		break;
	case LWS_CALLBACK_SET_MODE_POLL_FD:
		if (slot >= 0)
			ext_fds[slot].events |= (short)events;
		break;
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		if (slot >= 0)
			ext_fds[slot].events &= (short)~events;
		break;
	default:
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- headers */

static const char *const header_names[WSI_TOKEN_COUNT] = {
	[WSI_TOKEN_GET_URI] = "GET URI",
	[WSI_TOKEN_HOST] = "Host",
	[WSI_TOKEN_CONNECTION] = "Connection",
	[WSI_TOKEN_KEY1] = "Sec-WebSocket-Key1",
	[WSI_TOKEN_KEY2] = "Sec-WebSocket-Key2",
	[WSI_TOKEN_PROTOCOL] = "Sec-WebSocket-Protocol",
	[WSI_TOKEN_UPGRADE] = "Upgrade",
	[WSI_TOKEN_ORIGIN] = "Origin",
	[WSI_TOKEN_DRAFT] = "Sec-WebSocket-Draft",
	[WSI_TOKEN_CHALLENGE] = "Challenge",
	[WSI_TOKEN_KEY] = "Sec-WebSocket-Key",
	[WSI_TOKEN_VERSION] = "Sec-WebSocket-Version",
	[WSI_TOKEN_SWORIGIN] = "Sec-WebSocket-Origin",
	[WSI_TOKEN_EXTENSIONS] = "Sec-WebSocket-Extensions",
	[WSI_TOKEN_ACCEPT] = "Sec-WebSocket-Accept",
	[WSI_TOKEN_NONCE] = "Sec-WebSocket-Nonce",
	[WSI_TOKEN_HTTP] = "HTTP",
	[WSI_TOKEN_MUXURL] = "X-Mux-URL",
	[_WSI_TOKEN_CLIENT_SENT_PROTOCOLS] = "(client sent protocols)",
	[_WSI_TOKEN_CLIENT_PEER_ADDRESS] = "(client peer address)",
	[_WSI_TOKEN_CLIENT_URI] = "(client URI)",
	[_WSI_TOKEN_CLIENT_HOST] = "(client host)",
	[_WSI_TOKEN_CLIENT_ORIGIN] = "(client origin)",
};

static void log_headers(struct libwebsocket *wsi, const char *why)
{
	char value[512];
	int i;

	if (!verbose)
		return;
	fprintf(stderr, "test-server: headers (%s):\n", why);
	for (i = 0; i < WSI_TOKEN_COUNT; i++) {
		int len = lws_hdr_total_length(wsi, (enum lws_token_indexes)i);

		if (len <= 0)
			continue;
		if (lws_hdr_copy(wsi, value, (int)sizeof(value), (enum lws_token_indexes)i) < 0)
			snprintf(value, sizeof(value), "(%d bytes, too long to show)", len);
		fprintf(stderr, "    %s: %s\n", header_names[i] ? header_names[i] : "?", value);
	}
}

/* ---------------------------------------------------------------- http */

struct http_session {
	int unused;
};

static const char *mime_for(const char *path)
{
	static const struct {
		const char *ext;
		const char *type;
	} table[] = {
		{ ".html", "text/html" },
		{ ".htm", "text/html" },
		{ ".js", "application/javascript" },
		{ ".css", "text/css" },
		{ ".json", "application/json" },
		{ ".txt", "text/plain" },
		{ ".png", "image/png" },
		{ ".jpg", "image/jpeg" },
		{ ".jpeg", "image/jpeg" },
		{ ".gif", "image/gif" },
		{ ".svg", "image/svg+xml" },
		{ ".ico", "image/x-icon" },
	};
	const char *dot = strrchr(path, '.');
	size_t i;

	if (dot && !strchr(dot, '/'))
		for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
			if (!strcasecmp(dot, table[i].ext))
				return table[i].type;
	return "application/octet-stream";
}

/* writes a small complete response; the caller then closes the connection */
static void http_reply(struct libwebsocket *wsi, int status, const char *reason)
{
	char body[128];
	char head[256];
	int blen, hlen;

	blen = snprintf(body, sizeof(body), "<html><body><h1>%d %s</h1></body></html>\n",
			status, reason);
	hlen = snprintf(head, sizeof(head),
			"HTTP/1.0 %d %s\r\n"
			"Server: libwebsockets-test-server\r\n"
			"Content-Type: text/html\r\n"
			"Content-Length: %d\r\n"
			"Connection: close\r\n\r\n", status, reason, blen);
	if (libwebsocket_write(wsi, (unsigned char *)head, (size_t)hlen, LWS_WRITE_HTTP) >= 0)
		libwebsocket_write(wsi, (unsigned char *)body, (size_t)blen, LWS_WRITE_HTTP);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decodes the path part of a URI into out. Returns 0 when fine, 400 for
 * a malformed or oversized path, 403 when a ".." segment would climb out of the
 * resource directory.
 */
static int decode_path(const char *uri, size_t len, char *out, size_t outsize)
{
	size_t i, o = 0;
	const char *seg;

	if (!len || uri[0] != '/')
		return 400;
	for (i = 0; i < len && uri[i] && uri[i] != '?' && uri[i] != '#'; i++) {
		int c = (unsigned char)uri[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return 400;
			hi = hexval((unsigned char)uri[i + 1]);
			lo = hexval((unsigned char)uri[i + 2]);
			if (hi < 0 || lo < 0)
				return 400;
			c = hi * 16 + lo;
			i += 2;
			if (!c)
				return 400;
		}
		if (o + 1 >= outsize)
			return 400;
		out[o++] = (char)c;
	}
	out[o] = '\0';

	for (seg = out; seg; seg = strchr(seg + 1, '/')) {
		const char *s = seg + 1;

		if (s[0] == '.' && s[1] == '.' && (s[2] == '/' || s[2] == '\0'))
			return 403;
		if (s[0] == '\\' || strstr(s, "\\.."))
			return 403;
	}
	return 0;
}

static int serve_file(struct libwebsocket_context *context, struct libwebsocket *wsi,
		      const char *file)
{
	int n = libwebsockets_serve_http_file(context, wsi, file, mime_for(file));

	/* <0: failed, >0: already complete; either way this connection is done */
	if (n)
		return -1;
	return 0;
}

static int handle_http_request(struct libwebsocket_context *context,
			       struct libwebsocket *wsi, const char *uri, size_t len)
{
	char path[1024];
	char file[PATH_MAX + 1100];
	struct stat st;
	int status;

	if (!uri) {
		http_reply(wsi, 400, "Bad Request");
		return -1;
	}
	if (!len)
		len = strnlen(uri, 4096);

	status = decode_path(uri, len, path, sizeof(path));
	if (status == 403) {
		fprintf(stderr, "test-server: refusing '%.*s'\n", (int)len, uri);
		http_reply(wsi, 403, "Forbidden");
		return -1;
	}
	if (status) {
		http_reply(wsi, 400, "Bad Request");
		return -1;
	}

	if (!strcmp(path, "/") || !strcmp(path, "/test.html")) {
		snprintf(file, sizeof(file), "%s/test.html", resource_path);
		if (stat(file, &st) || !S_ISREG(st.st_mode))
			snprintf(file, sizeof(file), "%s", LWS_TEST_HTML);
	} else {
		snprintf(file, sizeof(file), "%s%s", resource_path, path);
	}

	if (stat(file, &st) || !S_ISREG(st.st_mode)) {
		http_reply(wsi, 404, "Not Found");
		return -1;
	}
	return serve_file(context, wsi, file);
}

static int callback_http(struct libwebsocket_context *context,
			 struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		log_headers(wsi, "http");
		return handle_http_request(context, wsi, in, len);

	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		/* one file per connection */
		return -1;

	case LWS_CALLBACK_ESTABLISHED:
		/* a WebSocket client that asked for no subprotocol lands here */
		if (verbose)
			fprintf(stderr, "test-server: websocket without subprotocol on protocols[0]\n");
		break;

	case LWS_CALLBACK_CLOSED:
		if (verbose)
			fprintf(stderr, "test-server: http-only websocket closed\n");
		break;

	case LWS_CALLBACK_ADD_POLL_FD:
	case LWS_CALLBACK_DEL_POLL_FD:
	case LWS_CALLBACK_SET_MODE_POLL_FD:
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		return ext_poll_callback(reason, (int)(long)in, (int)len);

	case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
		/*
		 * The chain has already been verified against --ca; in is the
		 * client's certificate (DER), len its size. Non-zero rejects it.
		 */
		fprintf(stderr, "test-server: client certificate verification: %lu bytes of DER, %s\n",
			(unsigned long)len, veto_client_certs ? "vetoed" : "accepted");
		return veto_client_certs ? 1 : 0;

	default:
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- dumb increment */

struct increment_session {
	int number;
};

static int callback_dumb_increment(struct libwebsocket_context *context,
				   struct libwebsocket *wsi,
				   enum libwebsocket_callback_reasons reason,
				   void *user, void *in, size_t len)
{
	struct increment_session *s = user;
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 32 + LWS_SEND_BUFFER_POST_PADDING];
	unsigned char *text = buf + LWS_SEND_BUFFER_PRE_PADDING;
	int n;

	(void)context;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		log_headers(wsi, "dumb-increment-protocol handshake");
		break;

	case LWS_CALLBACK_ESTABLISHED:
		if (!s)
			return -1;
		s->number = 0;
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!s)
			return -1;
		n = snprintf((char *)text, 32, "%d", s->number);
		if (libwebsocket_write(wsi, text, (size_t)n, LWS_WRITE_TEXT) < n) {
			lwsl_err("dumb-increment: write failed\n");
			return -1;
		}
		s->number++;
		if (close_testing && s->number >= 50) {
			fprintf(stderr, "test-server: close test limit reached\n");
			return -1;
		}
		break;

	case LWS_CALLBACK_RECEIVE:
		if (s && len == 6 && !memcmp(in, "reset\n", 6))
			s->number = 0;
		break;

	default:
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- mirror */

#define RING_SLOTS 128		/* messages kept for the slowest reader */
#define RING_THROTTLE 16	/* pause a sender when fewer slots than this are free */
#define RING_RESUME 64		/* let senders go again once this many are free */
#define MIRROR_MAX_MESSAGE (1024 * 1024)

struct ring_msg {
	unsigned char *data;	/* PRE padding + payload + POST padding */
	size_t len;
	int binary;
};

static struct ring_msg ring[RING_SLOTS];
static unsigned int ring_head;	/* next slot to fill */

struct mirror_session {
	struct mirror_session *next;
	struct mirror_session *prev;
	struct libwebsocket *wsi;
	unsigned int tail;	/* next slot this session must send */
	size_t sent;		/* bytes of ring[tail] already written */
	unsigned char *rx;	/* message being reassembled */
	size_t rx_len;
	size_t rx_cap;
	int rx_binary;
	int rx_started;
	int paused;
};

static struct mirror_session *mirror_sessions;
static int mirror_paused_count;

static unsigned int ring_used_by(const struct mirror_session *s)
{
	return (ring_head + RING_SLOTS - s->tail) % RING_SLOTS;
}

static unsigned int ring_free_slots(void)
{
	unsigned int most = 0;
	const struct mirror_session *s;

	for (s = mirror_sessions; s; s = s->next)
		if (ring_used_by(s) > most)
			most = ring_used_by(s);
	return RING_SLOTS - 1 - most;
}

static int mirror_store(struct mirror_session *from)
{
	struct ring_msg *slot = &ring[ring_head];
	struct mirror_session *s;
	unsigned int next = (ring_head + 1) % RING_SLOTS;

	/* a reader that would be lapped loses its oldest message (should not happen) */
	for (s = mirror_sessions; s; s = s->next)
		if (s->tail == next) {
			lwsl_err("mirror: reader too slow, dropping a message for it\n");
			s->tail = (s->tail + 1) % RING_SLOTS;
			s->sent = 0;
		}

	free(slot->data);
	slot->data = from->rx;
	slot->len = from->rx_len;
	slot->binary = from->rx_binary;
	from->rx = NULL;
	from->rx_len = from->rx_cap = 0;
	from->rx_started = 0;
	ring_head = next;
	return 0;
}

static int mirror_rx_append(struct mirror_session *s, const void *in, size_t len)
{
	size_t need = LWS_SEND_BUFFER_PRE_PADDING + s->rx_len + len + LWS_SEND_BUFFER_POST_PADDING;

	if (s->rx_len + len > MIRROR_MAX_MESSAGE)
		return -1;
	if (need > s->rx_cap) {
		size_t cap = s->rx_cap ? s->rx_cap : 256;
		unsigned char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(s->rx, cap);
		if (!p)
			return -1;
		s->rx = p;
		s->rx_cap = cap;
	}
	if (len)
		memcpy(s->rx + LWS_SEND_BUFFER_PRE_PADDING + s->rx_len, in, len);
	s->rx_len += len;
	return 0;
}

static int mirror_writeable(struct libwebsocket_context *context,
			    struct libwebsocket *wsi, struct mirror_session *s)
{
	if (close_testing) {
		s->tail = ring_head;
		return 0;
	}
	while (s->tail != ring_head) {
		struct ring_msg *m = &ring[s->tail];
		size_t left = m->len - s->sent;
		int n;

		n = libwebsocket_write(wsi, m->data + LWS_SEND_BUFFER_PRE_PADDING + s->sent,
				       left, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		if (n < 0) {
			lwsl_err("mirror: write failed\n");
			return -1;
		}
		if ((size_t)n < left) {
			s->sent += (size_t)n;
			libwebsocket_callback_on_writable(context, wsi);
			return 0;
		}
		s->sent = 0;
		s->tail = (s->tail + 1) % RING_SLOTS;

		if (mirror_paused_count && ring_free_slots() >= RING_RESUME) {
			struct mirror_session *p;

			for (p = mirror_sessions; p; p = p->next)
				p->paused = 0;
			mirror_paused_count = 0;
			if (verbose)
				fprintf(stderr, "test-server: mirror: readers caught up, resuming senders\n");
			libwebsocket_rx_flow_allow_all_protocol(libwebsockets_get_protocol(wsi));
			/* the change takes effect for each connection after its next callback */
			libwebsocket_callback_on_writable_all_protocol(libwebsockets_get_protocol(wsi));
		}
		if (s->tail != ring_head && lws_send_pipe_choked(wsi)) {
			libwebsocket_callback_on_writable(context, wsi);
			return 0;
		}
	}
	return 0;
}

static int callback_lws_mirror(struct libwebsocket_context *context,
			       struct libwebsocket *wsi,
			       enum libwebsocket_callback_reasons reason,
			       void *user, void *in, size_t len)
{
	struct mirror_session *s = user;
	int i;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		log_headers(wsi, "lws-mirror-protocol handshake");
		break;

	case LWS_CALLBACK_ESTABLISHED:
		if (!s)
			return -1;
		memset(s, 0, sizeof(*s));
		s->wsi = wsi;
		s->tail = ring_head;
		s->next = mirror_sessions;
		if (mirror_sessions)
			mirror_sessions->prev = s;
		mirror_sessions = s;
		break;

	case LWS_CALLBACK_CLOSED:
		if (!s || !s->wsi)
			break;
		if (s->prev)
			s->prev->next = s->next;
		else if (mirror_sessions == s)
			mirror_sessions = s->next;
		if (s->next)
			s->next->prev = s->prev;
		if (s->paused)
			mirror_paused_count--;
		free(s->rx);
		memset(s, 0, sizeof(*s));
		break;

	case LWS_CALLBACK_RECEIVE:
		if (!s)
			return -1;
		if (!s->rx_started) {
			s->rx_started = 1;
			s->rx_binary = lws_frame_is_binary(wsi);
		}
		if (mirror_rx_append(s, in, len)) {
			lwsl_err("mirror: message too big or out of memory\n");
			return -1;
		}
		if (libwebsockets_remaining_packet_payload(wsi) || !libwebsocket_is_final_fragment(wsi))
			break;
		if (!s->rx && mirror_rx_append(s, NULL, 0))
			return -1;
		mirror_store(s);
		if (!s->paused && ring_free_slots() < RING_THROTTLE) {
			s->paused = 1;
			mirror_paused_count++;
			libwebsocket_rx_flow_control(wsi, 0);
			if (verbose)
				fprintf(stderr, "test-server: mirror: a reader lags, pausing a sender\n");
		}
		libwebsocket_callback_on_writable_all_protocol(libwebsockets_get_protocol(wsi));
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!s)
			return -1;
		return mirror_writeable(context, wsi, s);

	case LWS_CALLBACK_PROTOCOL_DESTROY:
		for (i = 0; i < RING_SLOTS; i++) {
			free(ring[i].data);
			ring[i].data = NULL;
		}
		break;

	default:
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- main */

static struct libwebsocket_protocols protocols[] = {
	[PROTO_HTTP] = {
		"http-only", callback_http, sizeof(struct http_session), 0, 0, NULL, 0
	},
	[PROTO_DUMB_INCREMENT] = {
		"dumb-increment-protocol", callback_dumb_increment,
		sizeof(struct increment_session), 128, 0, NULL, 0
	},
	[PROTO_MIRROR] = {
		"lws-mirror-protocol", callback_lws_mirror,
		sizeof(struct mirror_session), 4096, 0, NULL, 0
	},
	[PROTO_COUNT] = { NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"Usage: %s [--port N] [--interface IF] [--extpoll] [--debug LEVEL]\n"
		"          [--resource-path DIR] [-c|--closetest]\n"
		"          [--ssl [--cert FILE] [--key FILE] [--ca FILE]\n"
		"           [--require-client-cert] [--veto-client-cert] [--ciphers LIST]]\n",
		prog);
}

/* a readable file, or a message saying what is missing; returns 0 when fine */
static int check_readable(const char *what, const char *path)
{
	if (!access(path, R_OK))
		return 0;
	fprintf(stderr, "test-server: --ssl: cannot read the %s file '%s': %s\n",
		what, path, strerror(errno));
	fprintf(stderr, "test-server: make a test set with examples/gen-test-certs.sh and pass\n"
		"             --cert DIR/server.pem --key DIR/server-key.pem\n");
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "interface", required_argument, NULL, 'i' },
		{ "extpoll", no_argument, NULL, 'e' },
		{ "debug", required_argument, NULL, 'd' },
		{ "resource-path", required_argument, NULL, 'r' },
		{ "resource_path", required_argument, NULL, 'r' },
		{ "closetest", no_argument, NULL, 'c' },
		{ "ssl", no_argument, NULL, 's' },
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "ca", required_argument, NULL, 'A' },
		{ "require-client-cert", no_argument, NULL, 'R' },
		{ "veto-client-cert", no_argument, NULL, 'V' },
		{ "ciphers", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	struct sigaction sa;
	char iface[128] = "";
	int use_extpoll = 0;
	int debug_level = LLL_ERR | LLL_WARN | LLL_NOTICE;
	int use_ssl = 0, require_client_cert = 0;
	const char *cert_path = NULL, *key_path = NULL, *ca_path = NULL;
	const char *cipher_list = NULL;
	long long last_tick;
	char *slash;
	int c;

	memset(&info, 0, sizeof(info));
	info.port = 7681;

	/* default resource directory: the one holding the demo page */
	snprintf(resource_path, sizeof(resource_path), "%s", LWS_TEST_HTML);
	slash = strrchr(resource_path, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(resource_path, sizeof(resource_path), ".");

	while ((c = getopt_long(argc, argv, "p:i:ed:r:csh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			info.port = atoi(optarg);
			break;
		case 'i':
			snprintf(iface, sizeof(iface), "%s", optarg);
			info.iface = iface;
			break;
		case 'e':
			use_extpoll = 1;
			break;
		case 'd':
			debug_level = atoi(optarg);
			break;
		case 'r':
			snprintf(resource_path, sizeof(resource_path), "%s", optarg);
			break;
		case 'c':
			close_testing = 1;
			fprintf(stderr, "test-server: close test mode: dumb-increment closes "
				"after 50 messages, mirror sends nothing\n");
			break;
		case 's':
			use_ssl = 1;
			break;
		case 'C':
			cert_path = optarg;
			break;
		case 'K':
			key_path = optarg;
			break;
		case 'A':
			ca_path = optarg;
			break;
		case 'R':
			require_client_cert = 1;
			break;
		case 'V':
			veto_client_certs = 1;
			break;
		case 'S':
			cipher_list = optarg;
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 1;
		}
	}
	if (!use_ssl && (cert_path || key_path || ca_path || require_client_cert ||
			 veto_client_certs || cipher_list)) {
		fprintf(stderr, "test-server: --cert, --key, --ca, --require-client-cert, "
			"--veto-client-cert and --ciphers need --ssl\n");
		return 1;
	}
	if (require_client_cert && !ca_path) {
		fprintf(stderr, "test-server: --require-client-cert needs --ca FILE (the CA "
			"client certificates must chain to)\n");
		return 1;
	}
	if (veto_client_certs && !require_client_cert) {
		fprintf(stderr, "test-server: --veto-client-cert needs --require-client-cert\n");
		return 1;
	}
	if (use_ssl) {
		if (!cert_path)
			cert_path = LWS_TEST_CERT;
		if (!key_path)
			key_path = LWS_TEST_KEY;
		if (check_readable("certificate", cert_path) || check_readable("key", key_path) ||
		    (ca_path && check_readable("CA", ca_path)))
			return 1;
		info.ssl_cert_filepath = cert_path;
		info.ssl_private_key_filepath = key_path;
		info.ssl_ca_filepath = ca_path;
		info.ssl_cipher_list = cipher_list;
		if (require_client_cert)
			info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
	}

	/* "dir/" and "dir" both work */
	while (strlen(resource_path) > 1 && resource_path[strlen(resource_path) - 1] == '/')
		resource_path[strlen(resource_path) - 1] = '\0';

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lws_set_log_level(debug_level, NULL);
	verbose = !!(debug_level & LLL_NOTICE);

	if (use_extpoll && ext_init()) {
		fprintf(stderr, "test-server: out of memory for the poll table\n");
		return 1;
	}

	info.protocols = protocols;
#ifndef LWS_NO_EXTENSIONS
	info.extensions = libwebsocket_get_internal_extensions();
#endif
	info.gid = -1;
	info.uid = -1;

	context = libwebsocket_create_context(&info);
	if (!context) {
		fprintf(stderr, "test-server: libwebsocket_create_context failed\n");
		free(ext_fds);
		free(ext_slot_of_fd);
		return 1;
	}
	fprintf(stderr, "test-server listening on port %d%s\n", info.port,
		use_ssl ? " (TLS only)" : "");
	if (use_ssl && verbose)
		fprintf(stderr, "test-server: certificate %s, key %s%s%s%s\n", cert_path, key_path,
			require_client_cert ? ", client certificates required, CA " : "",
			require_client_cert ? ca_path : "",
			veto_client_certs ? " (and vetoed)" : "");
	if (verbose)
		fprintf(stderr, "test-server: serving files from %s%s\n", resource_path,
			use_extpoll ? " (external poll)" : "");

	last_tick = now_ms();
	while (!stop_requested) {
		long long t = now_ms();

		if (t - last_tick >= 50) {
			last_tick = t;
			libwebsocket_callback_on_writable_all_protocol(&protocols[PROTO_DUMB_INCREMENT]);
		}

		if (use_extpoll) {
			int n = poll(ext_fds, (nfds_t)ext_count, 50);
			int i;

			if (n < 0 && errno != EINTR)
				break;
			/* backwards, so a removal during service only moves seen entries */
			for (i = ext_count - 1; n > 0 && i >= 0; i--) {
				if (i >= ext_count || !ext_fds[i].revents)
					continue;
				if (libwebsocket_service_fd(context, &ext_fds[i]) < 0) {
					stop_requested = 1;
					break;
				}
				if (i < ext_count)
					ext_fds[i].revents = 0;
			}
			libwebsocket_service_fd(context, NULL);
		} else if (libwebsocket_service(context, 50) < 0) {
			break;
		}
	}

	libwebsocket_context_destroy(context);
	for (c = 0; c < RING_SLOTS; c++) {
		free(ring[c].data);
		ring[c].data = NULL;
	}
	free(ext_fds);
	free(ext_slot_of_fd);
	fprintf(stderr, "test-server exited cleanly\n");
	return 0;
}
