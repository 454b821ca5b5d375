/*
 * client_echo: checks the libwebsockets v1.23 client API against
 * tests/client/ws_server.py (a Python `websockets` server) over 127.0.0.1.
 *
 * Usage: client_echo [--host H] [--port P] [--raw-port P] [--proxy H:P]
 *                    SCENARIO...
 *
 * Each scenario runs in a context of its own and prints "PASS name" or
 * "FAIL name: why" lines; the exit status is 0 only when every check passed.
 *
 *   sizes         text and binary messages of 0, 125, 126, 65535, 65536 bytes,
 *                 1 MiB and 16 MiB, one at a time, asking for "lws-test-echo"
 *                 (ESTABLISHED must come to protocols[1])
 *   short         a few small messages and a fragmented one (proxy, valgrind)
 *   fragments     messages sent as several frames (NO_FIN + CONTINUATION), a
 *                 ping between fragments, a UTF-8 character split over frames
 *   inflight      100 messages written before any echo is read
 *   ping          the server pings (its pong must arrive: it says "pong-ok"),
 *                 our ping's pong must come to CLIENT_RECEIVE_PONG
 *   server-close  the server closes: CLOSED exactly once, no error
 *   client-close  returning -1 from WRITEABLE closes with a close frame
 *   headers       the request the server saw (path, Host, Origin, protocol)
 *   forbidden     the server answers 403: CONNECTION_ERROR exactly once
 *   closed-port   nothing listens on --port: CONNECTION_ERROR exactly once
 *   unresolvable  "no-such-host.invalid": CONNECTION_ERROR once within 15 s
 *   bad-handshake on --raw-port: wrong accept key, unoffered subprotocol,
 *                 200 instead of 101, hang-up, garbage: CONNECTION_ERROR once
 *   silent        on --raw-port, a server that never answers: CONNECTION_ERROR
 *                 once (within 40 s)
 *   concurrent    50 connections (libwebsocket_client_connect_extended) in one
 *                 context, all echoing at once
 */

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#define MAX_CONNS 128
#define RX_SIZE_0 4096		/* protocols[0] asks for 0: the default, 4096 */
#define RX_SIZE_1 8192
#define PSD_SIZE_1 64

struct frame {
	struct frame *next;
	unsigned char *buf;	/* PRE padding + payload + POST padding */
	size_t len;
	int flags;
};

struct msg {
	unsigned char *data;
	size_t len;
	int binary;
};

struct conn {
	struct libwebsocket *wsi;
	const char *label;
	int errors;		/* CLIENT_CONNECTION_ERROR */
	int filter;		/* CLIENT_FILTER_PRE_ESTABLISH */
	int established;	/* CLIENT_ESTABLISHED */
	int closed;		/* CLOSED */
	int est_proto;		/* protocol index ESTABLISHED came to */
	void *est_user;		/* `user` at ESTABLISHED */
	void *userdata;		/* what connect_extended was given */
	int user_mismatch;
	char subprotocol[64];	/* Sec-WebSocket-Protocol seen at FILTER_PRE_ESTABLISH */
	int bad_chunk;		/* RECEIVE chunk over rx_buffer_size */
	int no_nul;		/* RECEIVE without a NUL after the data */
	int write_failed;
	/* receiving */
	unsigned char *rx;
	size_t rx_len, rx_cap;
	int rx_binary, rx_active;
	struct msg *msgs;
	int nmsgs, capmsgs;
	long long last_event_ms;
	/* pongs */
	int pongs;
	char pong[128];
	/* sending */
	struct frame *head, *tail;
	int close_now;		/* return -1 from the next WRITEABLE */
};

static struct conn conns[MAX_CONNS];
static int nconns;
static struct conn *connecting;	/* inside libwebsocket_client_connect */
static int stray;		/* connection callbacks for no known connection */
static struct libwebsocket_context *ctx;
static const char *host = "127.0.0.1";
static int port, raw_port;
static const char *proxy;
static int failures;
static const char *scenario;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s: ", scenario);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures++;
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

/* deterministic contents: printable ASCII for text, every byte value for binary */
static void fill(unsigned char *p, size_t len, unsigned int seed, int binary)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (binary)
			p[i] = (unsigned char)(i * 131u + seed * 7u + (i >> 9));
		else
			p[i] = (unsigned char)(' ' + (i + seed * 13u) % 95u);
	}
}

static unsigned char *pattern(size_t len, unsigned int seed, int binary)
{
	unsigned char *p = malloc(len ? len : 1);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(3);
	}
	fill(p, len, seed, binary);
	return p;
}

/* ---------------------------------------------------------------- connections */

static struct conn *find(struct libwebsocket *wsi)
{
	int i;

	if (!wsi)
		return NULL;
	/* newest first: a freed connection's address can be reused */
	for (i = nconns - 1; i >= 0; i--)
		if (conns[i].wsi == wsi)
			return &conns[i];
	if (connecting && !connecting->wsi) {
		connecting->wsi = wsi;
		return connecting;
	}
	return NULL;
}

static void free_frames(struct conn *c)
{
	while (c->head) {
		struct frame *f = c->head;

		c->head = f->next;
		free(f->buf);
		free(f);
	}
	c->tail = NULL;
}

static void free_conn(struct conn *c)
{
	int i;

	free_frames(c);
	free(c->rx);
	for (i = 0; i < c->nmsgs; i++)
		free(c->msgs[i].data);
	free(c->msgs);
	memset(c, 0, sizeof(*c));
}

static struct conn *open_conn(const char *label, const char *h, int p, const char *path,
			      const char *protocol, int extended)
{
	struct conn *c;
	struct libwebsocket *wsi;
	char hosthdr[300];

	if (nconns >= MAX_CONNS) {
		fail("too many connections");
		return NULL;
	}
	c = &conns[nconns++];
	memset(c, 0, sizeof(*c));
	c->label = label;
	c->est_proto = -1;
	c->last_event_ms = now_ms();
	snprintf(hosthdr, sizeof(hosthdr), "%s:%d", h, p);
	connecting = c;
	if (extended) {
		c->userdata = c;
		wsi = libwebsocket_client_connect_extended(ctx, h, p, 0, path, hosthdr,
							   "http://lws-client-test", protocol, -1, c);
	} else {
		wsi = libwebsocket_client_connect(ctx, h, p, 0, path, hosthdr,
						  "http://lws-client-test", protocol, -1);
	}
	connecting = NULL;
	if (!wsi) {
		fail("%s: libwebsocket_client_connect returned NULL", label);
		return NULL;
	}
	if (c->wsi && c->wsi != wsi)
		fail("%s: callbacks before connect returned named another wsi", label);
	c->wsi = wsi;
	return c;
}

static int ended(const struct conn *c)
{
	return c->errors || c->closed;
}

/* services the context until pred(arg) is true; returns 0 then, -1 on timeout */
static int wait_for(int (*pred)(void *), void *arg, long timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (!pred(arg)) {
		if (now_ms() >= deadline)
			return -1;
		if (libwebsocket_service(ctx, 20) < 0) {
			fail("libwebsocket_service returned < 0");
			return -1;
		}
	}
	return 0;
}

/* services the context for ms milliseconds whatever happens */
static void settle(long ms)
{
	long long deadline = now_ms() + ms;

	while (now_ms() < deadline)
		if (libwebsocket_service(ctx, 20) < 0)
			break;
}

static int is_established_or_ended(void *arg)
{
	struct conn *c = arg;

	return c->established || ended(c);
}

static int is_ended(void *arg)
{
	return ended(arg);
}

static int wait_established(struct conn *c, long timeout_ms)
{
	if (wait_for(is_established_or_ended, c, timeout_ms)) {
		fail("%s: not established within %ld ms", c->label, timeout_ms);
		return -1;
	}
	if (!c->established) {
		fail("%s: ended before it was established (errors %d, closed %d)",
		     c->label, c->errors, c->closed);
		return -1;
	}
	return 0;
}

struct count_wait {
	struct conn *c;
	int n;
};

static int has_messages(void *arg)
{
	struct count_wait *w = arg;

	return w->c->nmsgs >= w->n || ended(w->c);
}

static int wait_messages(struct conn *c, int n, long timeout_ms)
{
	struct count_wait w = { c, n };

	if (wait_for(has_messages, &w, timeout_ms) || c->nmsgs < n) {
		fail("%s: %d of %d messages after %ld ms (closed %d, errors %d)", c->label,
		     c->nmsgs, n, timeout_ms, c->closed, c->errors);
		return -1;
	}
	return 0;
}

/* queues one frame; flags are LWS_WRITE_* values */
static void send_frame(struct conn *c, const void *data, size_t len, int flags)
{
	struct frame *f = calloc(1, sizeof(*f));

	if (!f || !(f->buf = malloc(LWS_SEND_BUFFER_PRE_PADDING + len +
				    LWS_SEND_BUFFER_POST_PADDING))) {
		fprintf(stderr, "out of memory\n");
		exit(3);
	}
	if (len)
		memcpy(f->buf + LWS_SEND_BUFFER_PRE_PADDING, data, len);
	f->len = len;
	f->flags = flags;
	if (c->tail)
		c->tail->next = f;
	else
		c->head = f;
	c->tail = f;
	libwebsocket_callback_on_writable(ctx, c->wsi);
}

static void send_msg(struct conn *c, const void *data, size_t len, int binary)
{
	send_frame(c, data, len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
}

static void close_conn(struct conn *c)
{
	c->close_now = 1;
	libwebsocket_callback_on_writable(ctx, c->wsi);
}

static int check_msg(struct conn *c, int idx, const unsigned char *want, size_t len, int binary,
		     const char *what)
{
	struct msg *m;
	size_t i;

	if (idx >= c->nmsgs) {
		fail("%s: %s: message %d missing", c->label, what, idx);
		return -1;
	}
	m = &c->msgs[idx];
	if (m->binary != binary) {
		fail("%s: %s: came back as %s", c->label, what, m->binary ? "binary" : "text");
		return -1;
	}
	if (m->len != len) {
		fail("%s: %s: %zu bytes came back instead of %zu", c->label, what, m->len, len);
		return -1;
	}
	if (len && memcmp(m->data, want, len)) {
		for (i = 0; i < len && m->data[i] == want[i]; i++)
			;
		fail("%s: %s: contents differ from byte %zu", c->label, what, i);
		return -1;
	}
	return 0;
}

/* drops received messages (after checking them) to keep memory low */
static void clear_msgs(struct conn *c)
{
	int i;

	for (i = 0; i < c->nmsgs; i++)
		free(c->msgs[i].data);
	c->nmsgs = 0;
}

/* ---------------------------------------------------------------- callbacks */

static void rx_append(struct conn *c, const void *in, size_t len)
{
	if (c->rx_len + len + 1 > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 1024;

		while (cap < c->rx_len + len + 1)
			cap *= 2;
		c->rx = realloc(c->rx, cap);
		if (!c->rx) {
			fprintf(stderr, "out of memory\n");
			exit(3);
		}
		c->rx_cap = cap;
	}
	if (len)
		memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
}

static void rx_complete(struct conn *c)
{
	struct msg *m;

	if (c->nmsgs == c->capmsgs) {
		c->capmsgs = c->capmsgs ? c->capmsgs * 2 : 16;
		c->msgs = realloc(c->msgs, (size_t)c->capmsgs * sizeof(*c->msgs));
		if (!c->msgs) {
			fprintf(stderr, "out of memory\n");
			exit(3);
		}
	}
	m = &c->msgs[c->nmsgs++];
	m->data = c->rx ? c->rx : malloc(1);
	m->len = c->rx_len;
	m->binary = c->rx_binary;
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
	c->rx_active = 0;
}

static int write_frames(struct conn *c, struct libwebsocket *wsi)
{
	if (c->close_now)
		return -1;
	while (c->head) {
		struct frame *f = c->head;
		int n = libwebsocket_write(wsi, f->buf + LWS_SEND_BUFFER_PRE_PADDING, f->len,
					   (enum libwebsocket_write_protocol)f->flags);
		size_t want = f->len;

		/* as v1.23: control frames count their 2-byte header and 4-byte mask */
		if (f->flags == LWS_WRITE_PING || f->flags == LWS_WRITE_PONG ||
		    f->flags == LWS_WRITE_CLOSE)
			want += 6;
		if (n < 0 || (size_t)n != want) {
			c->write_failed = 1;
			fail("%s: libwebsocket_write(%zu bytes, flags %#x) returned %d", c->label,
			     f->len, f->flags, n);
			return -1;
		}
		c->head = f->next;
		if (!c->head)
			c->tail = NULL;
		free(f->buf);
		free(f);
		if (c->head && lws_send_pipe_choked(wsi)) {
			libwebsocket_callback_on_writable(ctx, wsi);
			break;
		}
	}
	return 0;
}

static int on_event(struct libwebsocket *wsi, enum libwebsocket_callback_reasons reason,
		    void *user, void *in, size_t len, int proto)
{
	struct conn *c;
	size_t limit;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_CLIENT_RECEIVE:
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		break;
	default:
		return 0;
	}

	c = find(wsi);
	if (!c) {
		fprintf(stderr, "client_echo: callback %d for unknown wsi %p\n", (int)reason,
			(void *)wsi);
		stray++;
		return reason == LWS_CALLBACK_CLIENT_RECEIVE ||
		       reason == LWS_CALLBACK_CLIENT_WRITEABLE ? -1 : 0;
	}
	c->last_event_ms = now_ms();
	if (c->userdata && user != c->userdata && proto == 0)
		c->user_mismatch++;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		c->errors++;
		break;

	case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
		c->filter++;
		if (lws_hdr_copy(wsi, c->subprotocol, (int)sizeof(c->subprotocol),
				 WSI_TOKEN_PROTOCOL) < 0)
			c->subprotocol[0] = '\0';
		break;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->established++;
		c->est_proto = proto;
		c->est_user = user;
		break;

	case LWS_CALLBACK_CLOSED:
		c->closed++;
		free_frames(c);
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		limit = proto == 1 ? RX_SIZE_1 : RX_SIZE_0;
		if (len > limit)
			c->bad_chunk++;
		if (in && ((const char *)in)[len] != '\0')
			c->no_nul++;
		if (!c->rx_active) {
			c->rx_active = 1;
			c->rx_binary = lws_frame_is_binary(wsi);
		}
		rx_append(c, in, len);
		if (!libwebsockets_remaining_packet_payload(wsi) &&
		    libwebsocket_is_final_fragment(wsi))
			rx_complete(c);
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		c->pongs++;
		if (len >= sizeof(c->pong))
			len = sizeof(c->pong) - 1;
		if (len)
			memcpy(c->pong, in, len);
		c->pong[len] = '\0';
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return write_frames(c, wsi);

	default:
		break;
	}
	return 0;
}

static int callback_0(struct libwebsocket_context *context, struct libwebsocket *wsi,
		      enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)context;
	return on_event(wsi, reason, user, in, len, 0);
}

static int callback_1(struct libwebsocket_context *context, struct libwebsocket *wsi,
		      enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)context;
	return on_event(wsi, reason, user, in, len, 1);
}

static struct libwebsocket_protocols protocols[] = {
	{ "client-test-default", callback_0, 0, 0, 0, NULL, 0 },
	{ "lws-test-echo", callback_1, PSD_SIZE_1, RX_SIZE_1, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* ---------------------------------------------------------------- checks */

/* the checks every connection must pass when it is over */
static void check_conn_common(struct conn *c)
{
	CHECK(c->errors + c->established <= 1, "%s: %d CONNECTION_ERROR and %d ESTABLISHED",
	      c->label, c->errors, c->established);
	CHECK(c->closed <= 1, "%s: CLOSED delivered %d times", c->label, c->closed);
	CHECK(!c->bad_chunk, "%s: %d RECEIVE chunks larger than rx_buffer_size", c->label,
	      c->bad_chunk);
	CHECK(!c->no_nul, "%s: %d RECEIVE chunks without a NUL after the data", c->label,
	      c->no_nul);
	CHECK(!c->user_mismatch, "%s: %d callbacks with user != connect_extended userdata",
	      c->label, c->user_mismatch);
}

static void expect_error_once(struct conn *c, long timeout_ms)
{
	long long t0 = now_ms();

	if (!c)
		return;
	if (wait_for(is_ended, c, timeout_ms)) {
		fail("%s: no CONNECTION_ERROR within %ld ms", c->label, timeout_ms);
		return;
	}
	printf("%s: CONNECTION_ERROR after %lld ms\n", c->label, now_ms() - t0);
	settle(500);	/* a second callback would come now */
	CHECK(c->errors == 1, "%s: CONNECTION_ERROR delivered %d times", c->label, c->errors);
	CHECK(!c->established, "%s: ESTABLISHED delivered", c->label);
	CHECK(!c->closed, "%s: CLOSED delivered for a connection never established", c->label);
}

/* echo of one message of `len` bytes, checked */
static void echo_one(struct conn *c, size_t len, int binary, unsigned int seed)
{
	unsigned char *want = pattern(len, seed, binary);
	char what[64];
	long long t0 = now_ms();

	snprintf(what, sizeof(what), "%s %zu bytes", binary ? "binary" : "text", len);
	clear_msgs(c);
	send_msg(c, want, len, binary);
	if (!wait_messages(c, 1, 60000) && !check_msg(c, 0, want, len, binary, what))
		printf("%s: %s echoed in %lld ms\n", c->label, what, now_ms() - t0);
	clear_msgs(c);
	free(want);
}

static void finish(struct conn *c)
{
	if (!c->closed && !c->errors) {
		close_conn(c);
		if (wait_for(is_ended, c, 10000))
			fail("%s: no CLOSED within 10 s after returning -1", c->label);
	}
	CHECK(c->closed == 1, "%s: CLOSED delivered %d times", c->label, c->closed);
	check_conn_common(c);
}

static void scenario_sizes(void)
{
	static const size_t sizes[] = { 0, 125, 126, 65535, 65536, 1 << 20, 16 << 20 };
	struct conn *c = open_conn("sizes", host, port, "/echo", "lws-test-echo", 0);
	size_t i;
	int binary;

	if (!c || wait_established(c, 10000))
		return;
	CHECK(c->filter == 1, "FILTER_PRE_ESTABLISH delivered %d times", c->filter);
	CHECK(c->est_proto == 1, "ESTABLISHED came to protocols[%d], not [1]", c->est_proto);
	CHECK(!strcmp(c->subprotocol, "lws-test-echo"),
	      "Sec-WebSocket-Protocol at FILTER_PRE_ESTABLISH is '%s'", c->subprotocol);
	CHECK(c->est_user != NULL, "no per-session data for a protocol that asks for %d bytes",
	      PSD_SIZE_1);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !ended(c); i++)
		for (binary = 0; binary < 2 && !ended(c); binary++)
			echo_one(c, sizes[i], binary, (unsigned int)(i * 2 + (size_t)binary));
	finish(c);
}

static void scenario_short(void)
{
	static const size_t sizes[] = { 0, 5, 125, 126, 70000 };
	struct conn *c = open_conn("short", host, port, "/echo", "lws-test-echo", 0);
	size_t i;

	if (!c || wait_established(c, 10000))
		return;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !ended(c); i++) {
		echo_one(c, sizes[i], 0, (unsigned int)i);
		echo_one(c, sizes[i], 1, (unsigned int)i);
	}
	if (!ended(c)) {
		clear_msgs(c);
		send_frame(c, "split ", 6, LWS_WRITE_TEXT | LWS_WRITE_NO_FIN);
		send_frame(c, "message", 7, LWS_WRITE_CONTINUATION);
		if (!wait_messages(c, 1, 10000))
			check_msg(c, 0, (const unsigned char *)"split message", 13, 0,
				  "fragmented text");
	}
	finish(c);
}

static void scenario_fragments(void)
{
	static const unsigned char utf8[] = "caf\xc3\xa9 \xe2\x82\xac";	/* "café €" */
	struct conn *c = open_conn("fragments", host, port, "/echo", NULL, 0);
	unsigned char *big;
	size_t half = 70000;

	if (!c || wait_established(c, 10000))
		return;
	CHECK(c->est_proto == 0, "ESTABLISHED came to protocols[%d] without a subprotocol",
	      c->est_proto);
	CHECK(!c->subprotocol[0], "server named subprotocol '%s' though none was asked",
	      c->subprotocol);

	/* text in three frames, the middle one empty, a ping between them */
	send_frame(c, "Hello, ", 7, LWS_WRITE_TEXT | LWS_WRITE_NO_FIN);
	send_frame(c, "", 0, LWS_WRITE_CONTINUATION | LWS_WRITE_NO_FIN);
	send_frame(c, "mid", 3, LWS_WRITE_PING);
	send_frame(c, "fragmented world", 16, LWS_WRITE_CONTINUATION);
	/* binary in two big frames */
	big = pattern(2 * half, 77, 1);
	send_frame(c, big, half, LWS_WRITE_BINARY | LWS_WRITE_NO_FIN);
	send_frame(c, big + half, half, LWS_WRITE_CONTINUATION);
	/* a UTF-8 character split between frames */
	send_frame(c, utf8, 4, LWS_WRITE_TEXT | LWS_WRITE_NO_FIN);
	send_frame(c, utf8 + 4, sizeof(utf8) - 1 - 4, LWS_WRITE_CONTINUATION);
	/* a message of only empty frames */
	send_frame(c, "", 0, LWS_WRITE_BINARY | LWS_WRITE_NO_FIN);
	send_frame(c, "", 0, LWS_WRITE_CONTINUATION);

	if (!wait_messages(c, 4, 20000)) {
		check_msg(c, 0, (const unsigned char *)"Hello, fragmented world", 23, 0,
			  "three-frame text");
		check_msg(c, 1, big, 2 * half, 1, "two-frame binary");
		check_msg(c, 2, utf8, sizeof(utf8) - 1, 0, "split UTF-8 text");
		check_msg(c, 3, (const unsigned char *)"", 0, 1, "empty fragmented binary");
	}
	free(big);
	CHECK(c->pongs == 1 && !strcmp(c->pong, "mid"),
	      "ping between fragments: %d pongs, last '%s'", c->pongs, c->pong);
	finish(c);
}

static void scenario_inflight(void)
{
	struct conn *c = open_conn("inflight", host, port, "/echo", "lws-test-echo", 0);
	int i;

	if (!c || wait_established(c, 10000))
		return;
	for (i = 0; i < 100; i++) {
		size_t len = (size_t)(i * 97) % 3000;
		unsigned char *p = pattern(len, (unsigned int)i, i & 1);

		send_msg(c, p, len, i & 1);
		free(p);
	}
	if (!wait_messages(c, 100, 30000)) {
		for (i = 0; i < 100; i++) {
			size_t len = (size_t)(i * 97) % 3000;
			unsigned char *p = pattern(len, (unsigned int)i, i & 1);
			char what[32];

			snprintf(what, sizeof(what), "message %d", i);
			if (check_msg(c, i, p, len, i & 1, what)) {
				free(p);
				break;
			}
			free(p);
		}
		printf("inflight: 100 messages echoed in order\n");
	}
	finish(c);
}

static int got_pong(void *arg)
{
	struct conn *c = arg;

	return c->pongs || ended(c);
}

static void scenario_ping(void)
{
	struct conn *c = open_conn("ping", host, port, "/ping", "lws-test-echo", 0);

	if (!c || wait_established(c, 10000))
		return;
	if (!wait_messages(c, 1, 10000)) {
		check_msg(c, 0, (const unsigned char *)"pong-ok", 7, 0,
			  "server's report on its ping");
		clear_msgs(c);
	}
	send_frame(c, "client-ping", 11, LWS_WRITE_PING);
	if (wait_for(got_pong, c, 10000) || !c->pongs)
		fail("no CLIENT_RECEIVE_PONG within 10 s");
	else
		CHECK(c->pongs == 1 && !strcmp(c->pong, "client-ping"),
		      "%d pongs, payload '%s'", c->pongs, c->pong);
	echo_one(c, 10, 0, 5);
	finish(c);
}

static void scenario_server_close(void)
{
	struct conn *c = open_conn("server-close", host, port, "/close", "lws-test-echo", 0);

	if (!c || wait_established(c, 10000))
		return;
	if (wait_for(is_ended, c, 10000)) {
		fail("the server closed, but no CLOSED within 10 s");
		return;
	}
	settle(500);
	CHECK(c->nmsgs == 1, "%d messages before the close, expected 1 (\"bye\")", c->nmsgs);
	if (c->nmsgs)
		check_msg(c, 0, (const unsigned char *)"bye", 3, 0, "message before the close");
	CHECK(c->closed == 1, "CLOSED delivered %d times", c->closed);
	CHECK(!c->errors, "CONNECTION_ERROR delivered %d times", c->errors);
	check_conn_common(c);
}

static void scenario_client_close(void)
{
	char path[64], id[32];
	struct conn *c, *q;

	snprintf(id, sizeof(id), "%ld-%lld", (long)getpid(), now_ms());
	snprintf(path, sizeof(path), "/echo?id=%s", id);
	c = open_conn("client-close", host, port, path, "lws-test-echo", 0);
	if (!c || wait_established(c, 10000))
		return;
	echo_one(c, 1, 0, 1);
	close_conn(c);
	if (wait_for(is_ended, c, 10000))
		fail("no CLOSED within 10 s after returning -1 from WRITEABLE");
	settle(300);
	CHECK(c->closed == 1, "CLOSED delivered %d times", c->closed);
	check_conn_common(c);

	/* what did the server see? (it records it once its side has closed) */
	settle(500);
	snprintf(path, sizeof(path), "/lastclose?id=%s", id);
	q = open_conn("client-close query", host, port, path, "lws-test-echo", 0);
	if (!q || wait_established(q, 10000) || wait_messages(q, 1, 10000))
		return;
	q->msgs[0].data = realloc(q->msgs[0].data, q->msgs[0].len + 1);
	q->msgs[0].data[q->msgs[0].len] = '\0';
	printf("client-close: the server got close code %s\n", (char *)q->msgs[0].data);
	CHECK(!strcmp((char *)q->msgs[0].data, "1000") || !strcmp((char *)q->msgs[0].data, "1005"),
	      "the server saw close code '%s' (\"none\" = no close frame)",
	      (char *)q->msgs[0].data);
	wait_for(is_ended, q, 5000);
}

static int headers_field(const char *json, const char *name, char *out, size_t size)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\"%s\": \"", name);
	p = strstr(json, key);
	if (!p)
		return -1;
	p += strlen(key);
	e = strchr(p, '"');
	if (!e || (size_t)(e - p) >= size)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

static void scenario_headers(void)
{
	struct conn *c = open_conn("headers", host, port, "/headers?x=1", "lws-test-echo", 0);
	char value[256], want[300], *json;

	if (!c || wait_established(c, 10000) || wait_messages(c, 1, 10000))
		return;
	json = calloc(1, c->msgs[0].len + 1);
	memcpy(json, c->msgs[0].data, c->msgs[0].len);
	printf("headers: %s\n", json);
	CHECK(!headers_field(json, "path", value, sizeof(value)) && !strcmp(value, "/headers?x=1"),
	      "request path not /headers?x=1");
	snprintf(want, sizeof(want), "%s:%d", host, port);
	CHECK(!headers_field(json, "Host", value, sizeof(value)) && !strcmp(value, want),
	      "Host header not %s", want);
	CHECK(!headers_field(json, "Origin", value, sizeof(value)) &&
	      !strcmp(value, "http://lws-client-test"), "Origin header not as given");
	CHECK(!headers_field(json, "Sec-WebSocket-Protocol", value, sizeof(value)) &&
	      !strcmp(value, "lws-test-echo"), "Sec-WebSocket-Protocol not lws-test-echo");
	CHECK(!headers_field(json, "Sec-WebSocket-Version", value, sizeof(value)) &&
	      !strcmp(value, "13"), "Sec-WebSocket-Version not 13");
	free(json);
	finish(c);
}

static void scenario_forbidden(void)
{
	expect_error_once(open_conn("forbidden", host, port, "/forbidden", "lws-test-echo", 0),
			  10000);
}

static void scenario_closed_port(void)
{
	expect_error_once(open_conn("closed-port", host, port, "/", NULL, 0), 10000);
}

static void scenario_unresolvable(void)
{
	expect_error_once(open_conn("unresolvable", "no-such-host.invalid", 80, "/", NULL, 0),
			  15000);
}

static void scenario_bad_handshake(void)
{
	static const char *const paths[] = {
		"/badaccept", "/badproto", "/http200", "/hangup", "/garbage"
	};
	struct conn *c[5];
	size_t i;

	/* all at once: they are independent */
	for (i = 0; i < 5; i++)
		c[i] = open_conn(paths[i] + 1, host, raw_port, paths[i], "lws-test-echo", 0);
	for (i = 0; i < 5; i++)
		expect_error_once(c[i], 15000);
}

static void scenario_silent(void)
{
	expect_error_once(open_conn("silent", host, raw_port, "/silent", NULL, 0), 40000);
}

#define CONCURRENT 50
#define PER_CONN 20

static int all_done(void *arg)
{
	int i, first = *(int *)arg;

	for (i = first; i < first + CONCURRENT; i++)
		if (!ended(&conns[i]) && conns[i].nmsgs < PER_CONN)
			return 0;
	return 1;
}

static int all_established(void *arg)
{
	int i, first = *(int *)arg;

	for (i = first; i < first + CONCURRENT; i++)
		if (!conns[i].established && !ended(&conns[i]))
			return 0;
	return 1;
}

static void scenario_concurrent(void)
{
	int first = nconns, i, j, up = 0, complete = 0;
	char label[CONCURRENT][32];

	for (i = 0; i < CONCURRENT; i++) {
		snprintf(label[i], sizeof(label[i]), "concurrent #%d", i);
		if (!open_conn(label[i], host, port, "/echo", NULL, 1))
			return;
	}
	if (wait_for(all_established, &first, 20000))
		fail("not all %d connections established or failed within 20 s", CONCURRENT);
	for (i = first; i < first + CONCURRENT; i++) {
		struct conn *c = &conns[i];

		if (!c->established)
			continue;
		up++;
		CHECK(c->est_user == c, "%s: user at ESTABLISHED is not the userdata given",
		      c->label);
		for (j = 0; j < PER_CONN; j++) {
			char text[64];
			int n = snprintf(text, sizeof(text), "conn %d message %d", i - first, j);

			send_msg(c, text, (size_t)n, j & 1);
		}
	}
	CHECK(up == CONCURRENT, "%d of %d connections established", up, CONCURRENT);
	if (wait_for(all_done, &first, 30000))
		fail("echoes not complete within 30 s");
	for (i = first; i < first + CONCURRENT; i++) {
		struct conn *c = &conns[i];

		if (!c->established)
			continue;
		if (c->nmsgs != PER_CONN) {
			fail("%s: %d of %d echoes", c->label, c->nmsgs, PER_CONN);
			continue;
		}
		for (j = 0; j < PER_CONN; j++) {
			char text[64];
			int n = snprintf(text, sizeof(text), "conn %d message %d", i - first, j);

			if (check_msg(c, j, (const unsigned char *)text, (size_t)n, j & 1, text))
				break;
		}
		if (j == PER_CONN)
			complete++;
		close_conn(c);
	}
	printf("concurrent: %d connections, %d with all %d echoes right\n", up, complete,
	       PER_CONN);
	for (i = first; i < first + CONCURRENT; i++)
		if (conns[i].established && wait_for(is_ended, &conns[i], 10000))
			fail("%s: not closed within 10 s", conns[i].label);
	for (i = first; i < first + CONCURRENT; i++)
		check_conn_common(&conns[i]);
}

/* ---------------------------------------------------------------- main */

static const struct {
	const char *name;
	void (*run)(void);
} scenarios[] = {
	{ "sizes", scenario_sizes },
	{ "short", scenario_short },
	{ "fragments", scenario_fragments },
	{ "inflight", scenario_inflight },
	{ "ping", scenario_ping },
	{ "server-close", scenario_server_close },
	{ "client-close", scenario_client_close },
	{ "headers", scenario_headers },
	{ "forbidden", scenario_forbidden },
	{ "closed-port", scenario_closed_port },
	{ "unresolvable", scenario_unresolvable },
	{ "bad-handshake", scenario_bad_handshake },
	{ "silent", scenario_silent },
	{ "concurrent", scenario_concurrent },
};

static int run_scenario(const char *name)
{
	struct lws_context_creation_info info;
	size_t i;
	int before = failures, stray_before;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(scenarios[i].name, name))
			break;
	if (i == sizeof(scenarios) / sizeof(scenarios[0])) {
		fprintf(stderr, "client_echo: unknown scenario '%s'\n", name);
		return -1;
	}
	scenario = name;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	ctx = libwebsocket_create_context(&info);
	if (!ctx) {
		fail("libwebsocket_create_context failed");
		return 0;
	}
	if (proxy && libwebsocket_set_proxy(ctx, proxy)) {
		fail("libwebsocket_set_proxy(%s) failed", proxy);
		libwebsocket_context_destroy(ctx);
		return 0;
	}

	stray_before = stray;
	nconns = 0;
	scenarios[i].run();
	libwebsocket_context_destroy(ctx);
	ctx = NULL;
	CHECK(stray == stray_before, "%d callbacks for connections no longer known",
	      stray - stray_before);
	for (i = 0; i < (size_t)nconns; i++)
		free_conn(&conns[i]);
	nconns = 0;

	if (failures == before)
		printf("PASS %s\n", name);
	return 0;
}

static void usage(const char *prog)
{
	size_t i;

	fprintf(stderr, "Usage: %s [--host H] [--port P] [--raw-port P] [--proxy H:P] "
		"SCENARIO...\nscenarios:", prog);
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(stderr, " %s", scenarios[i].name);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "raw-port", required_argument, NULL, 'r' },
		{ "proxy", required_argument, NULL, 'x' },
		{ "debug", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 }
	};
	int c, i;

	while ((c = getopt_long(argc, argv, "H:p:r:x:d:", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'r':
			raw_port = atoi(optarg);
			break;
		case 'x':
			proxy = optarg;
			break;
		case 'd':
			lws_set_log_level(atoi(optarg), NULL);
			break;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	for (i = optind; i < argc; i++)
		if (run_scenario(argv[i])) {
			usage(argv[0]);
			return 2;
		}
	printf("client_echo: %d failed checks\n", failures);
	return failures ? 1 : 0;
}
