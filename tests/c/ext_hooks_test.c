/*
 * The v1.23 extension callbacks beyond PAYLOAD_RX/TX, delivered to an extension the
 * application implements ("x-hooks"), between a server context and a client context
 * of this library over 127.0.0.1. The client drives one conversation step by step on
 * the "hooks" protocol; other connections (one per protocol) cover timeouts and an
 * extension handing back bad lws_tokens; a raw socket reads the handshake reply.
 *
 *   HANDSHAKE_REPLY_TX   the server extension sends its own reply with an extra
 *                        header line (seen on the raw socket; our client accepts it)
 *   PACKET_RX_PREPARSE   the server sees the raw masked frame bytes; the client
 *                        substitutes a received frame and injects a second one
 *                        (return 1, then the NULL/0 round)
 *   PACKET_TX_PRESEND    the server rewrites a frame, and spills two more frames
 *                        after one (return 1); the client sees masked frames and
 *                        replaces one with a reserved-opcode frame
 *   EXTENDED_PAYLOAD_RX  the server extension receives that frame's payload
 *   PACKET_TX_DO_SEND    the server extension sees the reply and each frame, sends one
 *                        frame itself, and takes 3 bytes of another (the rest must be
 *                        offered again, then sent by the library)
 *   IS_WRITEABLE         answering 1 three times gives four WRITEABLE callbacks
 *   REQUEST_ON_WRITEABLE answering 1 takes the request: no WRITEABLE follows
 *   CHECK_OK_TO_REALLY_CLOSE  defers a close asked by RECEIVE returning -1 (the
 *                        connection keeps working), then lets the second one go; and
 *                        defers a timeout, which is retried about a second later
 *   FLUSH_PENDING_TX     two frames the server extension still held arrive before
 *                        the close
 *   CAN_PROXY_CLIENT_CONNECTION  the client extension claims a connection: no socket
 *                        activity, CLIENT_CONNECTION_ERROR after the wait
 *   bad tokens           NULL with a length (PAYLOAD_RX), a negative length
 *                        (PACKET_RX_PREPARSE), a huge length (PACKET_TX_PRESEND):
 *                        the connection is closed, nothing crashes
 *
 * With EXT_HOOKS_CERT and EXT_HOOKS_KEY set (PEM files) the server speaks TLS and the
 * clients connect with TLS (tests/tls_behaviour.rs runs it so); the raw-socket reply
 * check and the DO_SEND cases where the extension writes to the socket itself (which
 * would break the TLS stream) are then left out.
 *
 * Self-checking: exit 0 when every check passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <libwebsockets.h>

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/* ------------------------------------------------------------------ state */

struct side {
	int is_server;
	int prepare, presend, presend_unmasked, do_send, flush, reply_tx, ext_rx;
	int is_writeable, request_on_writeable, can_proxy, check_close;
};
static struct side srv = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
static struct side cli = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

struct sess {
	int stage;                  /* server PRESEND spill / client PREPARSE inject */
	int flush_stage;
	unsigned char buf[128];     /* bytes handed back through lws_tokens */
};

/* server observations */
static unsigned char srv_raw[2];
static int srv_raw_seen;
static char srv_ext_payload[64];
static int srv_reply_units, srv_do_send_taken, srv_partial_stage;
static size_t srv_partial_len1, srv_partial_len2;
static int srv_hooks_vetoes, srv_timeout_checks, srv_badrx_received, srv_badtx_write = 1;
static double srv_timeout_check_at[2];

/* client */
static struct libwebsocket *c_main, *c_timeout, *c_badrx, *c_badpre, *c_badtx, *c_proxied;
static int main_closed, timeout_closed, badrx_closed, badpre_closed, badtx_closed;
static int main_established, proxied_error, proxied_can_proxy;
static double proxied_at, proxied_error_at;
static int use_tls;
static char rx_log[1024];
static int phase, rearm_left, take_request, w7, w8, stray_writeable, closing_count;
static int replace_next, request_taken_ret = -1, phase8_iter;

static const char *proto_name(struct libwebsocket *wsi)
{
	const struct libwebsocket_protocols *p = libwebsockets_get_protocol(wsi);
	return p && p->name ? p->name : "";
}

static int server_frame(unsigned char *out, const char *txt)
{
	size_t n = strlen(txt);
	out[0] = 0x81;
	out[1] = (unsigned char)n;
	memcpy(out + 2, txt, n);
	return (int)n + 2;
}

/* A client frame masked with the all-zero key (so the payload reads as is). */
static int client_frame(unsigned char *out, unsigned char opcode, const char *txt)
{
	size_t n = strlen(txt);
	out[0] = (unsigned char)(0x80 | opcode);
	out[1] = (unsigned char)(0x80 | n);
	memset(out + 2, 0, 4);
	memcpy(out + 6, txt, n);
	return (int)n + 6;
}

static int is_server_frame(const char *tok, int len, const char *txt)
{
	size_t n = strlen(txt);
	return len == (int)n + 2 && (unsigned char)tok[0] == 0x81 &&
	       (unsigned char)tok[1] == n && !memcmp(tok + 2, txt, n);
}

/* ------------------------------------------------------------------ extension */

static int server_ext(struct libwebsocket_context *context, struct libwebsocket *wsi,
		      enum libwebsocket_extension_callback_reasons reason, struct sess *s,
		      void *in, size_t len)
{
	struct lws_tokens *t = (struct lws_tokens *)in;
	const char *proto = wsi ? proto_name(wsi) : "";
	(void)context;

	switch (reason) {
	case LWS_EXT_CALLBACK_HANDSHAKE_REPLY_TX: {
		char *reply = (char *)in;
		char out[1024];
		int n;
		srv.reply_tx++;
		if (len < 4 || len > 900 || memcmp(reply + len - 4, "\r\n\r\n", 4))
			return 0;
		memcpy(out, reply, len - 2);
		n = (int)len - 2;
		n += sprintf(out + n, "X-Hooks: reply-tx\r\n\r\n");
		if (libwebsocket_write(wsi, (unsigned char *)out, n, LWS_WRITE_HTTP) != n)
			return -1;
		return 1; /* sent it ourselves */
	}
	case LWS_EXT_CALLBACK_PACKET_RX_PREPARSE:
		srv.prepare++;
		if (!strcmp(proto, "hooks") && !srv_raw_seen && t->token && t->token_len >= 2) {
			memcpy(srv_raw, t->token, 2);
			srv_raw_seen = 1;
		}
		if (!strcmp(proto, "badpre"))
			t->token_len = -1;
		return 0;
	case LWS_EXT_CALLBACK_PAYLOAD_RX:
		if (!strcmp(proto, "badrx")) {
			t->token = NULL;
			t->token_len = 5;
		}
		return 0;
	case LWS_EXT_CALLBACK_PACKET_TX_PRESEND:
		srv.presend++;
		if (!strcmp(proto, "badtx")) {
			t->token = (char *)s->buf;
			t->token_len = 0x7fffffff;
			return 0;
		}
		if (!t->token) { /* spill round */
			if (s->stage == 1) {
				t->token = (char *)s->buf;
				t->token_len = server_frame(s->buf, "spill-1");
				s->stage = 2;
				return 1;
			}
			if (s->stage == 2) {
				t->token = (char *)s->buf;
				t->token_len = server_frame(s->buf, "spill-2");
				s->stage = 0;
			}
			return 0;
		}
		if (is_server_frame(t->token, t->token_len, "presend-me")) {
			t->token = (char *)s->buf;
			t->token_len = server_frame(s->buf, "rewritten-by-presend");
			return 0;
		}
		if (is_server_frame(t->token, t->token_len, "spill-me")) {
			s->stage = 1;
			return 1; /* more to come */
		}
		return 0;
	case LWS_EXT_CALLBACK_PACKET_TX_DO_SEND: {
		unsigned char *b = *(unsigned char **)in;
		int fd = libwebsocket_get_socket_fd(wsi);
		srv.do_send++;
		if (len > 12 && !memcmp(b, "HTTP/1.1 101", 12) &&
		    memmem(b, len, "X-Hooks: reply-tx\r\n", 19))
			srv_reply_units++;
		if (use_tls)
			return 0; /* raw bytes on the socket would break TLS */
		if (is_server_frame((const char *)b, (int)len, "do-send-me")) {
			if (send(fd, b, len, 0) != (ssize_t)len)
				return -1;
			srv_do_send_taken++;
			return (int)len;
		}
		if (srv_partial_stage == 0 && is_server_frame((const char *)b, (int)len, "partial-me")) {
			srv_partial_len1 = len;
			srv_partial_stage = 1;
			if (send(fd, b, 3, 0) != 3)
				return -1;
			return 3; /* took only the first 3 bytes */
		}
		if (srv_partial_stage == 1) {
			srv_partial_len2 = len;
			srv_partial_stage = 2;
		}
		return 0;
	}
	case LWS_EXT_CALLBACK_EXTENDED_PAYLOAD_RX:
		srv.ext_rx++;
		if (t->token_len > 0 && t->token_len < (int)sizeof(srv_ext_payload)) {
			memcpy(srv_ext_payload, t->token, t->token_len);
			srv_ext_payload[t->token_len] = '\0';
		}
		return 1;
	case LWS_EXT_CALLBACK_FLUSH_PENDING_TX:
		srv.flush++;
		if (strcmp(proto, "hooks"))
			return 0;
		if (s->flush_stage == 0) {
			t->token = (char *)s->buf;
			t->token_len = server_frame(s->buf, "flushed-1");
			s->flush_stage = 1;
			return 1;
		}
		if (s->flush_stage == 1) {
			t->token = (char *)s->buf;
			t->token_len = server_frame(s->buf, "flushed-2");
			s->flush_stage = 2;
		}
		return 0;
	case LWS_EXT_CALLBACK_CHECK_OK_TO_REALLY_CLOSE:
		srv.check_close++;
		if (!strcmp(proto, "hooks") && srv_hooks_vetoes == 0) {
			srv_hooks_vetoes++;
			return 1;
		}
		if (!strcmp(proto, "timeout")) {
			if (srv_timeout_checks < 2)
				srv_timeout_check_at[srv_timeout_checks] = now_s();
			return srv_timeout_checks++ == 0;
		}
		return 0;
	default:
		return 0;
	}
}

static int client_ext(struct libwebsocket_context *context, struct libwebsocket *wsi,
		      enum libwebsocket_extension_callback_reasons reason, void *user,
		      struct sess *s, void *in, size_t len)
{
	struct lws_tokens *t = (struct lws_tokens *)in;
	(void)context;

	switch (reason) {
	case LWS_EXT_CALLBACK_CAN_PROXY_CLIENT_CONNECTION:
		cli.can_proxy++;
		if (in && !strcmp((const char *)in, "proxy.invalid")) {
			CHECK(len == 4242, "CAN_PROXY gets the port in len (%d)", (int)len);
			CHECK(user == NULL, "CAN_PROXY gets the extension's index (0) in user");
			proxied_can_proxy++;
			return 1;
		}
		return 0;
	case LWS_EXT_CALLBACK_PACKET_TX_PRESEND:
		cli.presend++;
		if (!t->token || t->token_len < 2 || !((unsigned char)t->token[1] & 0x80))
			cli.presend_unmasked++;
		if (wsi == c_main && replace_next) {
			replace_next = 0;
			t->token = (char *)s->buf;
			t->token_len = client_frame(s->buf, 0x3, "ext-opcode-payload");
		}
		return 0;
	case LWS_EXT_CALLBACK_PACKET_RX_PREPARSE:
		cli.prepare++;
		if (wsi != c_main)
			return 0;
		if (!t->token) {
			if (s->stage == 1) {
				t->token = (char *)s->buf;
				t->token_len = server_frame(s->buf, "injected");
				s->stage = 0;
			}
			return 0;
		}
		if (is_server_frame(t->token, t->token_len, "inject-after")) {
			t->token = (char *)s->buf;
			t->token_len = server_frame(s->buf, "substituted");
			s->stage = 1;
			return 1;
		}
		return 0;
	case LWS_EXT_CALLBACK_IS_WRITEABLE:
		if (wsi != c_main || phase != 7)
			return 0;
		cli.is_writeable++;
		if (rearm_left > 0) {
			rearm_left--;
			return 1;
		}
		return 0;
	case LWS_EXT_CALLBACK_REQUEST_ON_WRITEABLE:
		if (wsi == c_main && take_request) {
			cli.request_on_writeable++;
			return 1;
		}
		return 0;
	default:
		return 0;
	}
}

static int hooks_ext(struct libwebsocket_context *context, struct libwebsocket_extension *ext,
		     struct libwebsocket *wsi, enum libwebsocket_extension_callback_reasons reason,
		     void *user, void *in, size_t len)
{
	struct side *side = (struct side *)ext->per_context_private_data;
	struct sess *s = (struct sess *)user;
	if (side->is_server)
		return server_ext(context, wsi, reason, s, in, len);
	return client_ext(context, wsi, reason, user, s, in, len);
}

/* ------------------------------------------------------------------ server */

static int swrite(struct libwebsocket *wsi, const char *txt)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 64 + LWS_SEND_BUFFER_POST_PADDING];
	size_t n = strlen(txt);
	memcpy(buf + LWS_SEND_BUFFER_PRE_PADDING, txt, n);
	return libwebsocket_write(wsi, buf + LWS_SEND_BUFFER_PRE_PADDING, n, LWS_WRITE_TEXT);
}

static int server_cb(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	char msg[64];
	const char *proto = proto_name(wsi);
	(void)ctx; (void)user;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		if (!strcmp(proto, "timeout"))
			libwebsocket_set_timeout(wsi, PENDING_TIMEOUT_AWAITING_PING, 1);
		if (!strcmp(proto, "badtx"))
			srv_badtx_write = swrite(wsi, "x");
		break;
	case LWS_CALLBACK_RECEIVE:
		if (strcmp(proto, "hooks")) {
			if (!strcmp(proto, "badrx"))
				srv_badrx_received++;
			break;
		}
		if (len >= sizeof(msg))
			break;
		memcpy(msg, in, len);
		msg[len] = '\0';
		if (!strcmp(msg, "hello") || !strcmp(msg, "rearm-done"))
			swrite(wsi, msg);
		else if (!strcmp(msg, "please-inject"))
			swrite(wsi, "inject-after");
		else if (!strcmp(msg, "presend-me") || !strcmp(msg, "spill-me") ||
			 !strcmp(msg, "do-send-me") || !strcmp(msg, "partial-me"))
			swrite(wsi, msg);
		else if (!strcmp(msg, "after-ext"))
			swrite(wsi, !strcmp(srv_ext_payload, "ext-opcode-payload") ?
				    "after-ext:ok" : "after-ext:missing");
		else if (!strcmp(msg, "close-me")) {
			swrite(wsi, "closing");
			return -1;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------ client */

static void log_rx(const char *m)
{
	if (strlen(rx_log) + strlen(m) + 2 < sizeof(rx_log)) {
		if (rx_log[0])
			strcat(rx_log, "|");
		strcat(rx_log, m);
	}
}

static int client_cb(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	char msg[64];
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (wsi == c_main) {
			main_established = 1;
			libwebsocket_callback_on_writable(ctx, wsi);
		}
		if (wsi == c_badrx || wsi == c_badpre)
			libwebsocket_callback_on_writable(ctx, wsi);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (wsi == c_proxied) {
			proxied_error++;
			proxied_error_at = now_s();
		}
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (wsi == c_badrx || wsi == c_badpre) {
			swrite(wsi, "x");
			break;
		}
		if (wsi != c_main)
			break;
		if (phase == 0) {
			swrite(wsi, "hello");
			phase = 1;
		} else if (phase == 7) {
			if (++w7 == 4)
				swrite(wsi, "rearm-done");
		} else if (phase == 8) {
			w8++;
			CHECK(!take_request, "no WRITEABLE while an extension holds the request");
			swrite(wsi, "close-me");
			phase = 9;
		} else
			stray_writeable++;
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (wsi != c_main || len >= sizeof(msg))
			break;
		memcpy(msg, in, len);
		msg[len] = '\0';
		log_rx(msg);
		if (!strcmp(msg, "hello"))
			swrite(wsi, "please-inject");
		else if (!strcmp(msg, "injected"))
			swrite(wsi, "presend-me");
		else if (!strcmp(msg, "rewritten-by-presend"))
			swrite(wsi, "spill-me");
		else if (!strcmp(msg, "spill-2"))
			swrite(wsi, "do-send-me");
		else if (!strcmp(msg, "do-send-me"))
			swrite(wsi, "partial-me");
		else if (!strcmp(msg, "partial-me")) {
			replace_next = 1;
			swrite(wsi, "send-ext-frame");
			swrite(wsi, "after-ext");
		} else if (!strncmp(msg, "after-ext:", 10)) {
			phase = 7;
			rearm_left = 3;
			libwebsocket_callback_on_writable(ctx, wsi);
		} else if (!strcmp(msg, "rearm-done")) {
			phase = 8;
			take_request = 1;
			request_taken_ret = libwebsocket_callback_on_writable(ctx, wsi);
		} else if (!strcmp(msg, "closing")) {
			if (++closing_count == 1)
				swrite(wsi, "close-me"); /* the first close was deferred */
		}
		break;
	case LWS_CALLBACK_CLOSED:
		if (wsi == c_main) main_closed = 1;
		if (wsi == c_timeout) timeout_closed = 1;
		if (wsi == c_badrx) badrx_closed = 1;
		if (wsi == c_badpre) badpre_closed = 1;
		if (wsi == c_badtx) badtx_closed = 1;
		break;
	default:
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------ tables */

static struct libwebsocket_protocols server_protocols[] = {
	{ "hooks", server_cb, 0, 0, 0, NULL, 0 },
	{ "timeout", server_cb, 0, 0, 0, NULL, 0 },
	{ "badrx", server_cb, 0, 0, 0, NULL, 0 },
	{ "badpre", server_cb, 0, 0, 0, NULL, 0 },
	{ "badtx", server_cb, 0, 0, 0, NULL, 0 },
	{ "raw", server_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};
static struct libwebsocket_protocols client_protocols[] = {
	{ "hooks", client_cb, 0, 0, 0, NULL, 0 },
	{ "timeout", client_cb, 0, 0, 0, NULL, 0 },
	{ "badrx", client_cb, 0, 0, 0, NULL, 0 },
	{ "badpre", client_cb, 0, 0, 0, NULL, 0 },
	{ "badtx", client_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};
static struct libwebsocket_extension server_exts[] = {
	{ "x-hooks", hooks_ext, sizeof(struct sess), &srv },
	{ NULL, NULL, 0, NULL }
};
static struct libwebsocket_extension client_exts[] = {
	{ "x-hooks", hooks_ext, sizeof(struct sess), &cli },
	{ NULL, NULL, 0, NULL }
};

/* The 101 reply as a plain TCP client sees it. */
static void raw_handshake(struct libwebsocket_context *sctx, int port, char *reply, size_t room)
{
	static const char req[] =
		"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: raw\r\n"
		"Sec-WebSocket-Extensions: x-hooks\r\n\r\n";
	struct sockaddr_in sa;
	size_t got = 0;
	int fd, n;

	reply[0] = '\0';
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    send(fd, req, sizeof req - 1, 0) == (ssize_t)(sizeof req - 1)) {
		for (n = 0; n < 400 && !strstr(reply, "\r\n\r\n"); n++) {
			ssize_t r;
			libwebsocket_service(sctx, 5);
			r = recv(fd, reply + got, room - 1 - got, MSG_DONTWAIT);
			if (r > 0) {
				got += (size_t)r;
				reply[got] = '\0';
			} else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				break;
		}
	}
	close(fd);
}

int main(void)
{
	struct lws_context_creation_info info;
	struct libwebsocket_context *sctx = NULL, *cctx;
	char reply[2048];
	int port = 0, n, tries;

	const char *cert = getenv("EXT_HOOKS_CERT"), *key = getenv("EXT_HOOKS_KEY");

	use_tls = cert && key;
	/* The wait for an extension-claimed client connection (and HTTP heads). */
	setenv("LWS_HANDSHAKE_TIMEOUT", use_tls ? "4" : "2", 1);
	lws_set_log_level(LLL_ERR, NULL);
	for (tries = 0; tries < 50 && !sctx; tries++) {
		port = 20000 + (int)((getpid() * 11 + tries * 137) % 20000);
		memset(&info, 0, sizeof info);
		info.port = port;
		info.iface = "127.0.0.1";
		info.protocols = server_protocols;
		info.extensions = server_exts;
		info.gid = -1;
		info.uid = -1;
		if (use_tls) {
			info.ssl_cert_filepath = cert;
			info.ssl_private_key_filepath = key;
		}
		sctx = libwebsocket_create_context(&info);
	}
	CHECK(sctx != NULL, "server context");
	if (!sctx)
		return 1;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	info.extensions = client_exts;
	info.gid = -1;
	info.uid = -1;
	cctx = libwebsocket_create_context(&info);
	CHECK(cctx != NULL, "client context");
	if (!cctx)
		return 1;

	if (!use_tls) {
		raw_handshake(sctx, port, reply, sizeof reply);
		CHECK(strstr(reply, "HTTP/1.1 101") != NULL, "raw client got 101 ('%s')", reply);
		CHECK(strstr(reply, "\r\nX-Hooks: reply-tx\r\n\r\n") != NULL,
		      "HANDSHAKE_REPLY_TX: the extension's header is in the reply ('%s')", reply);
		CHECK(strstr(reply, "Sec-WebSocket-Extensions: x-hooks\r\n") != NULL,
		      "the reply accepts x-hooks");
	}

	proxied_at = now_s();
	c_proxied = libwebsocket_client_connect(cctx, "proxy.invalid", 4242, 0, "/", "x", "x", "hooks", -1);
	CHECK(c_proxied != NULL, "a connection claimed by an extension still gets a handle");
	CHECK(proxied_can_proxy == 1, "CAN_PROXY_CLIENT_CONNECTION asked (%d)", proxied_can_proxy);

	c_main = libwebsocket_client_connect(cctx, "127.0.0.1", port, use_tls ? 2 : 0, "/", "localhost", "localhost", "hooks", -1);
	c_timeout = libwebsocket_client_connect(cctx, "127.0.0.1", port, use_tls ? 2 : 0, "/", "localhost", "localhost", "timeout", -1);
	c_badrx = libwebsocket_client_connect(cctx, "127.0.0.1", port, use_tls ? 2 : 0, "/", "localhost", "localhost", "badrx", -1);
	c_badpre = libwebsocket_client_connect(cctx, "127.0.0.1", port, use_tls ? 2 : 0, "/", "localhost", "localhost", "badpre", -1);
	c_badtx = libwebsocket_client_connect(cctx, "127.0.0.1", port, use_tls ? 2 : 0, "/", "localhost", "localhost", "badtx", -1);
	CHECK(c_main && c_timeout && c_badrx && c_badpre && c_badtx, "client connects");
	CHECK(cli.can_proxy == 6, "CAN_PROXY asked at every connect (%d)", cli.can_proxy);

	for (n = 0; n < 3000; n++) {
		if (main_closed && timeout_closed && badrx_closed && badpre_closed &&
		    badtx_closed && proxied_error)
			break;
		libwebsocket_service(sctx, 2);
		libwebsocket_service(cctx, 2);
		if (phase == 8 && take_request && ++phase8_iter > 30) {
			/* No WRITEABLE came while the extension held the request; ask again. */
			take_request = 0;
			libwebsocket_callback_on_writable(cctx, c_main);
		}
	}
	for (n = 0; n < 20; n++) {
		libwebsocket_service(sctx, 2);
		libwebsocket_service(cctx, 2);
	}

	CHECK(main_established, "main connection established (with the extension's own reply)");
	CHECK(!strcmp(rx_log, "hello|substituted|injected|rewritten-by-presend|spill-me|spill-1|"
			      "spill-2|do-send-me|partial-me|after-ext:ok|rearm-done|closing|"
			      "closing|flushed-1|flushed-2"),
	      "client received, in order: '%s'", rx_log);
	/* PACKET_RX_PREPARSE */
	CHECK(srv_raw_seen && srv_raw[0] == 0x81 && (srv_raw[1] & 0x80),
	      "server PREPARSE saw the raw masked frame (%02x %02x)", srv_raw[0], srv_raw[1]);
	CHECK(srv.prepare > 5 && cli.prepare > 5, "PREPARSE calls (%d, %d)", srv.prepare, cli.prepare);
	/* PACKET_TX_PRESEND */
	CHECK(srv.presend > 5 && cli.presend > 5, "PRESEND calls (%d, %d)", srv.presend, cli.presend);
	CHECK(cli.presend_unmasked == 0, "client PRESEND saw whole masked frames (%d not)", cli.presend_unmasked);
	/* EXTENDED_PAYLOAD_RX */
	CHECK(srv.ext_rx == 1 && !strcmp(srv_ext_payload, "ext-opcode-payload"),
	      "EXTENDED_PAYLOAD_RX got the reserved-opcode payload (%d, '%s')", srv.ext_rx, srv_ext_payload);
	/* PACKET_TX_DO_SEND */
	CHECK(srv_reply_units >= 2, "DO_SEND offered the handshake replies (%d)", srv_reply_units);
	CHECK(srv.do_send > 20, "DO_SEND offered each unit (%d)", srv.do_send);
	if (!use_tls) {
		CHECK(srv_do_send_taken == 1, "DO_SEND: the extension sent one frame itself (%d)",
		      srv_do_send_taken);
		CHECK(srv_partial_stage == 2 && srv_partial_len1 == 12 && srv_partial_len2 == 9,
		      "DO_SEND: after taking 3 of 12 bytes the remaining 9 were offered again (%d: %d, %d)",
		      srv_partial_stage, (int)srv_partial_len1, (int)srv_partial_len2);
	}
	/* IS_WRITEABLE */
	CHECK(w7 == 4, "IS_WRITEABLE 1,1,1,0: four WRITEABLE callbacks from one request (%d)", w7);
	CHECK(cli.is_writeable == 4, "IS_WRITEABLE asked before each (%d)", cli.is_writeable);
	/* REQUEST_ON_WRITEABLE */
	CHECK(cli.request_on_writeable == 1 && request_taken_ret == 1,
	      "REQUEST_ON_WRITEABLE took the request (%d, returned %d)", cli.request_on_writeable, request_taken_ret);
	CHECK(w8 == 1, "one WRITEABLE after the request was made again (%d)", w8);
	CHECK(stray_writeable == 0, "no stray WRITEABLE (%d)", stray_writeable);
	/* CHECK_OK_TO_REALLY_CLOSE + FLUSH_PENDING_TX */
	CHECK(srv_hooks_vetoes == 1 && closing_count == 2, "first close deferred, second done (%d, %d)",
	      srv_hooks_vetoes, closing_count);
	CHECK(main_closed, "main connection closed");
	CHECK(srv.flush >= 2, "FLUSH_PENDING_TX called until drained (%d)", srv.flush);
	CHECK(srv_timeout_checks == 2 && timeout_closed,
	      "timeout close deferred once, then done (%d checks, closed %d)", srv_timeout_checks, timeout_closed);
	if (srv_timeout_checks == 2)
		CHECK(srv_timeout_check_at[1] - srv_timeout_check_at[0] > 0.7,
		      "deferred timeout retried about a second later (%.2f s)",
		      srv_timeout_check_at[1] - srv_timeout_check_at[0]);
	/* bad tokens */
	CHECK(badrx_closed && srv_badrx_received == 0, "PAYLOAD_RX with NULL token: closed, nothing delivered");
	CHECK(badpre_closed, "PACKET_RX_PREPARSE with a negative length: closed");
	CHECK(badtx_closed && srv_badtx_write == -1, "PACKET_TX_PRESEND with a huge length: write -1 (%d), closed",
	      srv_badtx_write);
	/* CAN_PROXY_CLIENT_CONNECTION */
	CHECK(proxied_error == 1, "claimed connection ends in CLIENT_CONNECTION_ERROR (%d)", proxied_error);
	if (proxied_error)
		CHECK(proxied_error_at - proxied_at > 1.5, "after the wait for the extension (%.2f s)",
		      proxied_error_at - proxied_at);

	libwebsocket_context_destroy(cctx);
	libwebsocket_context_destroy(sctx);

	if (failures) {
		fprintf(stderr, "ext_hooks_test: %d failure(s)\n", failures);
		return 1;
	}
	printf("ext_hooks_test: all checks passed\n");
	return 0;
}
