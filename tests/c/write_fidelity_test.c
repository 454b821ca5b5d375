/*
 * write_fidelity_test.c - what libwebsocket_write returns and puts on the wire,
 * and the callbacks around it, as v1.23 applications rely on them.
 *
 *  - return values: len for TEXT / BINARY / CONTINUATION and HTTP (also when the
 *    socket cannot take it all at once); the whole frame for CLOSE / PING / PONG:
 *    len + 2 from a server, len + 6 from a client (4-byte mask key);
 *  - len 0: an empty message or an empty final fragment is sent (RFC 6455; v1.23
 *    sent nothing) and 0 is returned;
 *  - LWS_WRITE_CLIENT_IGNORE_XOR_MASK changes nothing: the frame stays masked (v1.23
 *    had no code for it), so servers accept it;
 *  - the return value of ESTABLISHED / CLIENT_ESTABLISHED is ignored (v1.23): a
 *    second connection, of protocol "established-check", answers -1 on both sides
 *    and must still carry a message;
 *  - libwebsocket_rx_flow_control(wsi, 0) inside ESTABLISHED holds RECEIVE back
 *    until reading is enabled again, and nothing is lost;
 *  - libwebsocket_callback_on_writable_all_protocol(&protocols[0]) also arms the
 *    HTTP connections (HTTP_WRITEABLE), as v1.23 did.
 *
 * The client sends: PING (4 bytes), PONG (3), "hello", "", "abc" + "" as two
 * fragments, 70000 bytes, "masked" with IGNORE_XOR_MASK, "bye". The server sends
 * PING (4), PONG (0), "hello", "", 1 MiB, "end" from its first WRITEABLE, and
 * answers "bye" with a CLOSE (status 1000).
 *
 * Usage:
 *   write_fidelity_test               self-test: server, client and an HTTP client
 *                                     in this process over 127.0.0.1
 *   write_fidelity_test server PORT   the server alone, for one WebSocket peer
 *   write_fidelity_test client PORT   the client alone, against ws://127.0.0.1:PORT/
 * Exit status 0 when every check passed.
 */
#include <libwebsockets.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PROTO_NAME "write-check"
#define BIG_IN 70000
#define BIG_OUT (1024 * 1024)
#define HOLD_SECS 0.3
#define MAX_MSGS 16

static int failures;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			failures++;                                             \
			fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__,          \
				__LINE__, #cond);                               \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

static double now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Messages as a receiver reassembles them (ends found with is_final_fragment). */
struct message {
	int binary;
	size_t len;
	int pieces;
	unsigned char head[8];
	int pattern_ok;
};

struct receiver {
	struct message msgs[MAX_MSGS];
	int count;
	int open; /* a message is being received */
};

static void receive_piece(struct receiver *r, struct libwebsocket *wsi,
			  const unsigned char *in, size_t len)
{
	struct message *m;
	size_t i;

	if (!r->open) {
		if (r->count == MAX_MSGS)
			return;
		m = &r->msgs[r->count++];
		memset(m, 0, sizeof(*m));
		m->binary = lws_frame_is_binary(wsi);
		m->pattern_ok = 1;
		r->open = 1;
	}
	m = &r->msgs[r->count - 1];
	for (i = 0; i < len; i++) {
		if (m->len + i < sizeof(m->head))
			m->head[m->len + i] = in[i];
		if (in[i] != (unsigned char)((m->len + i) * 7))
			m->pattern_ok = 0;
	}
	m->len += len;
	m->pieces++;
	if (libwebsocket_is_final_fragment(wsi))
		r->open = 0;
}

static int is_msg(const struct receiver *r, int i, int binary, const char *text,
		  size_t len)
{
	const struct message *m = &r->msgs[i];

	if (i >= r->count || m->binary != binary || m->len != len)
		return 0;
	if (text)
		return !memcmp(m->head, text, len < 8 ? len : 8);
	return m->pattern_ok;
}

static void fill_pattern(unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7);
}

/* ------------------------------------------------------------------ server */

static struct {
	int established;
	double established_at;
	struct libwebsocket *wsi;
	int resumed;
	int rx_while_held;
	struct receiver rx;
	int answered;
	int closed;
	/* the connection whose ESTABLISHED answers -1 */
	int est_established;
	int est_received;
	int est_closed;
	/* HTTP */
	int http_requests;
	int http_ticks;
	int http_closed;
} srv;

static unsigned char big[LWS_SEND_BUFFER_PRE_PADDING + BIG_OUT +
			 LWS_SEND_BUFFER_POST_PADDING];

static int write_check(struct libwebsocket *wsi, const char *what,
		       unsigned char *p, size_t len, int mode, int want)
{
	int n = libwebsocket_write(wsi, p, len, (enum libwebsocket_write_protocol)mode);

	CHECK(n == want, "%s: libwebsocket_write returned %d, want %d", what, n, want);
	return n;
}

static void server_answer(struct libwebsocket *wsi)
{
	unsigned char *p = big + LWS_SEND_BUFFER_PRE_PADDING;

	memcpy(p, "ping", 4);
	write_check(wsi, "server PING 4", p, 4, LWS_WRITE_PING, 4 + 2);
	write_check(wsi, "server PONG 0", p, 0, LWS_WRITE_PONG, 0 + 2);
	memcpy(p, "hello", 5);
	write_check(wsi, "server TEXT 5", p, 5, LWS_WRITE_TEXT, 5);
	write_check(wsi, "server TEXT 0", p, 0, LWS_WRITE_TEXT, 0);
	fill_pattern(p, BIG_OUT);
	write_check(wsi, "server BINARY 1 MiB", p, BIG_OUT, LWS_WRITE_BINARY, BIG_OUT);
	memcpy(p, "end", 3);
	write_check(wsi, "server TEXT 3", p, 3, LWS_WRITE_TEXT, 3);
}

static void server_close(struct libwebsocket *wsi)
{
	unsigned char *p = big + LWS_SEND_BUFFER_PRE_PADDING;

	p[0] = 1000 >> 8;
	p[1] = 1000 & 0xff;
	write_check(wsi, "server CLOSE 2", p, 2, LWS_WRITE_CLOSE, 2 + 2);
}

static int server_ws_cb(struct libwebsocket_context *context,
			struct libwebsocket *wsi,
			enum libwebsocket_callback_reasons reason, void *user,
			void *in, size_t len)
{
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		srv.established++;
		srv.wsi = wsi;
		srv.established_at = now();
		/* hold everything back until the main loop enables reading again */
		libwebsocket_rx_flow_control(wsi, 0);
		/* the answer goes out meanwhile */
		libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_RECEIVE:
		if (!srv.resumed)
			srv.rx_while_held++;
		receive_piece(&srv.rx, wsi, (const unsigned char *)in, len);
		if (!srv.rx.open && is_msg(&srv.rx, srv.rx.count - 1, 0, "bye", 3))
			libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!srv.answered) {
			srv.answered = 1;
			server_answer(wsi);
		}
		if (srv.answered == 1 && srv.rx.count == 6 && !srv.rx.open) {
			srv.answered = 2;
			server_close(wsi);
		}
		break;
	case LWS_CALLBACK_CLOSED:
		srv.closed++;
		srv.wsi = NULL;
		break;
	default:
		break;
	}
	return 0;
}

static int server_http_cb(struct libwebsocket_context *context,
			  struct libwebsocket *wsi,
			  enum libwebsocket_callback_reasons reason, void *user,
			  void *in, size_t len)
{
	static const char head[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n";
	char line[32];
	int n;

	(void)context;
	(void)user;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (strcmp((const char *)in, "/stream"))
			return -1;
		srv.http_requests++;
		n = libwebsocket_write(wsi, (unsigned char *)head, strlen(head),
				       LWS_WRITE_HTTP);
		CHECK(n == (int)strlen(head), "HTTP header write returned %d", n);
		return 0; /* the body comes from HTTP_WRITEABLE */
	case LWS_CALLBACK_HTTP_WRITEABLE:
		n = snprintf(line, sizeof(line), "tick %d\n", ++srv.http_ticks);
		CHECK(libwebsocket_write(wsi, (unsigned char *)line, (size_t)n,
					 LWS_WRITE_HTTP) == n,
		      "HTTP body write");
		return srv.http_ticks == 3 ? -1 : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		srv.http_closed++;
		break;
	default:
		break;
	}
	return 0;
}

/* ESTABLISHED answers -1, which v1.23 ignored: one message must still come. */
static int server_est_cb(struct libwebsocket_context *context,
			 struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user,
			 void *in, size_t len)
{
	(void)context;
	(void)wsi;
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		srv.est_established++;
		return -1;
	case LWS_CALLBACK_RECEIVE:
		CHECK(len == 10 && !memcmp(in, "still here", 10),
		      "established-check: unexpected message of %lu bytes",
		      (unsigned long)len);
		srv.est_received++;
		return -1; /* done: close */
	case LWS_CALLBACK_CLOSED:
		srv.est_closed++;
		break;
	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols server_protocols[] = {
	{"http-only", server_http_cb, 0, 0, 0, NULL, 0},
	{PROTO_NAME, server_ws_cb, 16, 0, 0, NULL, 0},
	{"established-check", server_est_cb, 16, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The main loop's part: resume reading HOLD_SECS after ESTABLISHED. */
static void server_tick(void)
{
	if (srv.wsi && !srv.resumed && now() - srv.established_at > HOLD_SECS) {
		CHECK(srv.rx_while_held == 0,
		      "%d RECEIVE calls while reading was disabled from ESTABLISHED",
		      srv.rx_while_held);
		srv.resumed = 1;
		libwebsocket_rx_flow_control(srv.wsi, 1);
	}
}

static void check_server(int with_client_of_ours)
{
	CHECK(srv.established == 1, "server: established %d times", srv.established);
	CHECK(srv.resumed, "server: reading never resumed");
	CHECK(srv.rx.count == 6, "server: %d messages received, want 6", srv.rx.count);
	CHECK(is_msg(&srv.rx, 0, 0, "hello", 5), "server: message 1 is not \"hello\"");
	CHECK(is_msg(&srv.rx, 1, 0, "", 0), "server: message 2 is not the empty text");
	CHECK(is_msg(&srv.rx, 2, 1, "abc", 3), "server: message 3 is not \"abc\"");
	if (with_client_of_ours)
		CHECK(srv.rx.count > 2 && srv.rx.msgs[2].pieces == 2,
		      "server: \"abc\" + empty final fragment came in %d pieces",
		      srv.rx.msgs[2].pieces);
	CHECK(is_msg(&srv.rx, 3, 1, NULL, BIG_IN), "server: message 4 is not %d bytes",
	      BIG_IN);
	CHECK(is_msg(&srv.rx, 4, 0, "masked", 6),
	      "server: message 5 is not \"masked\" (IGNORE_XOR_MASK)");
	CHECK(is_msg(&srv.rx, 5, 0, "bye", 3), "server: message 6 is not \"bye\"");
	CHECK(srv.answered == 2, "server: answered %d times, want 2", srv.answered);
	CHECK(srv.closed == 1, "server: closed %d times", srv.closed);
}

/* ------------------------------------------------------------------ client */

static struct {
	int established;
	int sent;
	struct receiver rx;
	int pongs;
	int closed;
	int errors;
} cli;

static void client_send(struct libwebsocket *wsi)
{
	unsigned char *p = big + LWS_SEND_BUFFER_PRE_PADDING;

	memcpy(p, "ping", 4);
	write_check(wsi, "client PING 4", p, 4, LWS_WRITE_PING, 4 + 6);
	memcpy(p, "pon", 3);
	write_check(wsi, "client PONG 3", p, 3, LWS_WRITE_PONG, 3 + 6);
	memcpy(p, "hello", 5);
	write_check(wsi, "client TEXT 5", p, 5, LWS_WRITE_TEXT, 5);
	write_check(wsi, "client TEXT 0", p, 0, LWS_WRITE_TEXT, 0);
	memcpy(p, "abc", 3);
	write_check(wsi, "client BINARY|NO_FIN 3", p, 3,
		    LWS_WRITE_BINARY | LWS_WRITE_NO_FIN, 3);
	write_check(wsi, "client CONTINUATION 0", p, 0, LWS_WRITE_CONTINUATION, 0);
	fill_pattern(p, BIG_IN);
	write_check(wsi, "client BINARY 70000", p, BIG_IN, LWS_WRITE_BINARY, BIG_IN);
	memcpy(p, "masked", 6);
	write_check(wsi, "client TEXT|IGNORE_XOR_MASK 6", p, 6,
		    LWS_WRITE_TEXT | LWS_WRITE_CLIENT_IGNORE_XOR_MASK, 6);
	memcpy(p, "bye", 3);
	write_check(wsi, "client TEXT 3", p, 3, LWS_WRITE_TEXT, 3);
}

static int client_cb(struct libwebsocket_context *context,
		     struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user,
		     void *in, size_t len)
{
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		cli.established++;
		libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!cli.sent) {
			cli.sent = 1;
			client_send(wsi);
		}
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		receive_piece(&cli.rx, wsi, (const unsigned char *)in, len);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		cli.pongs++;
		break;
	case LWS_CALLBACK_CLOSED:
		cli.closed++;
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		cli.errors++;
		break;
	default:
		break;
	}
	return 0;
}

static struct {
	int established;
	int sent;
	int closed;
} cli_est;

/* CLIENT_ESTABLISHED answers -1, which v1.23 ignored. */
static int client_est_cb(struct libwebsocket_context *context,
			 struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user,
			 void *in, size_t len)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 16 + LWS_SEND_BUFFER_POST_PADDING];

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		cli_est.established++;
		libwebsocket_callback_on_writable(context, wsi);
		return -1;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!cli_est.sent++) {
			memcpy(buf + LWS_SEND_BUFFER_PRE_PADDING, "still here", 10);
			libwebsocket_write(wsi, buf + LWS_SEND_BUFFER_PRE_PADDING, 10,
					   LWS_WRITE_TEXT);
		}
		break;
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		cli_est.closed++;
		break;
	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols client_protocols[] = {
	{PROTO_NAME, client_cb, 16, 0, 0, NULL, 0},
	{"established-check", client_est_cb, 16, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static void check_client(int with_server_of_ours)
{
	CHECK(cli.established == 1, "client: established %d times", cli.established);
	CHECK(cli.errors == 0, "client: connection error");
	CHECK(cli.sent, "client: never sent");
	if (with_server_of_ours) {
		CHECK(cli.rx.count == 4, "client: %d messages received, want 4", cli.rx.count);
		CHECK(is_msg(&cli.rx, 0, 0, "hello", 5), "client: message 1 is not \"hello\"");
		CHECK(is_msg(&cli.rx, 1, 0, "", 0), "client: message 2 is not the empty text");
		CHECK(is_msg(&cli.rx, 2, 1, NULL, BIG_OUT), "client: message 3 is not 1 MiB");
		CHECK(is_msg(&cli.rx, 3, 0, "end", 3), "client: message 4 is not \"end\"");
	}
	CHECK(cli.closed == 1, "client: closed %d times", cli.closed);
}

/* ------------------------------------------------------------------ plumbing */

static struct libwebsocket_context *make_context(int port,
						 struct libwebsocket_protocols *p)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = port;
	info.protocols = p;
	info.gid = -1;
	info.uid = -1;
	return libwebsocket_create_context(&info);
}

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &alen))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A plain HTTP client on a non-blocking socket, read from the main loop. */
static int http_connect(int port)
{
	static const char req[] = "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		CHECK(0, "HTTP client: connect/send failed: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Reads what is there; 1 at EOF. */
static int http_read(int fd, char *buf, size_t size, size_t *have)
{
	for (;;) {
		ssize_t n = read(fd, buf + *have, size - 1 - *have);

		if (n > 0) {
			*have += (size_t)n;
			buf[*have] = '\0';
			if (*have + 1 >= size)
				return 1;
			continue;
		}
		return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
	}
}

static void self_test(void)
{
	struct libwebsocket_context *s, *c;
	int port = free_port(), http_fd, http_eof = 0;
	char body[1024];
	size_t have = 0;
	double deadline;

	s = make_context(port, server_protocols);
	c = make_context(CONTEXT_PORT_NO_LISTEN, client_protocols);
	CHECK(s && c, "context creation failed");
	if (!s || !c)
		return;
	CHECK(libwebsocket_client_connect(c, "127.0.0.1", port, 0, "/", "127.0.0.1",
					  "origin", PROTO_NAME, -1) != NULL,
	      "client connect failed");
	CHECK(libwebsocket_client_connect(c, "127.0.0.1", port, 0, "/", "127.0.0.1",
					  "origin", "established-check", -1) != NULL,
	      "client connect (established-check) failed");
	http_fd = http_connect(port);
	deadline = now() + 20;
	while (now() < deadline &&
	       !(srv.closed && cli.closed && http_eof && cli_est.closed)) {
		libwebsocket_service(s, 2);
		libwebsocket_service(c, 2);
		server_tick();
		if (http_fd >= 0 && !http_eof) {
			/* as v1.23: this reaches the HTTP connections of protocols[0] */
			libwebsocket_callback_on_writable_all_protocol(&server_protocols[0]);
			http_eof = http_read(http_fd, body, sizeof(body), &have);
		}
	}
	check_server(1);
	check_client(1);
	CHECK(srv.http_requests == 1, "HTTP: %d requests", srv.http_requests);
	CHECK(http_eof && strstr(body, "\r\n\r\ntick 1\ntick 2\ntick 3\n"),
	      "HTTP: response %s (eof %d) is not the header then three ticks "
	      "(HTTP_WRITEABLE from callback_on_writable_all_protocol)",
	      have ? body : "(nothing)", http_eof);
	CHECK(srv.http_closed == 1, "HTTP: CLOSED_HTTP %d times", srv.http_closed);
	CHECK(srv.est_established == 1 && cli_est.established == 1 &&
		      srv.est_received == 1 && srv.est_closed == 1 && cli_est.closed == 1,
	      "established-check: ESTABLISHED %d/%d, message %d, closed %d/%d: a -1 "
	      "from (CLIENT_)ESTABLISHED must be ignored",
	      srv.est_established, cli_est.established, srv.est_received,
	      srv.est_closed, cli_est.closed);
	if (http_fd >= 0)
		close(http_fd);
	libwebsocket_context_destroy(c);
	libwebsocket_context_destroy(s);
}

static void one_side(int is_server, int port)
{
	struct libwebsocket_context *ctx;
	double deadline;

	ctx = make_context(is_server ? port : CONTEXT_PORT_NO_LISTEN,
			   is_server ? server_protocols : client_protocols);
	CHECK(ctx != NULL, "context creation failed");
	if (!ctx)
		return;
	if (is_server) {
		printf("listening %d\n", port);
		fflush(stdout);
	} else {
		CHECK(libwebsocket_client_connect(ctx, "127.0.0.1", port, 0, "/",
						  "127.0.0.1", "origin", PROTO_NAME,
						  -1) != NULL,
		      "client connect failed");
	}
	deadline = now() + 30;
	while (now() < deadline && !(is_server ? srv.closed : cli.closed)) {
		libwebsocket_service(ctx, 10);
		server_tick();
	}
	if (is_server)
		check_server(0);
	else
		check_client(0);
	libwebsocket_context_destroy(ctx);
}

int main(int argc, char **argv)
{
	if (argc == 1) {
		self_test();
	} else if (argc == 3 && (!strcmp(argv[1], "server") || !strcmp(argv[1], "client"))) {
		one_side(!strcmp(argv[1], "server"), atoi(argv[2]));
	} else {
		fprintf(stderr, "usage: %s [server PORT | client PORT]\n", argv[0]);
		return 2;
	}
	printf("write_fidelity_test: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
