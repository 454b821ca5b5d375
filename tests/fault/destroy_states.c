/*
 * destroy_states.c - libwebsocket_context_destroy() with connections in every state.
 *
 *   destroy_states PORT BIGFILE
 *
 * One context listens on 127.0.0.1:PORT and also makes client connections. Before the
 * context is destroyed it holds:
 *
 *   hdrs     server, HTTP request head half received          -> no callback
 *   file     server, HTTP file transfer of BIGFILE in progress -> CLOSED_HTTP
 *   ws       server, established WebSocket (raw peer, idle)     -> CLOSED
 *   closing  server, WebSocket closing (we returned -1; the raw peer never answers
 *            the close): CLOSED was already delivered when the close began
 *   loop     a client connection of this context to itself: client side and
 *            server side established                            -> CLOSED each
 *   connect  client, TCP connect pending (target's accept queue is full)
 *                                                                -> CLIENT_CONNECTION_ERROR
 *   reply    client, upgrade sent, server never answers         -> CLIENT_CONNECTION_ERROR
 *
 * Raw peers are plain sockets of this program. Every callback is counted; after
 * destroy the counts must be exactly as above and PROTOCOL_DESTROY must have run once
 * per protocol. Prints "destroy_states: ok" and exits 0, or prints what differs and
 * exits 1. Meant to run under valgrind (tests/fault_behaviour.rs).
 */
#define _GNU_SOURCE 1

#include <libwebsockets.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct counts {
	int http;
	int closed_http;
	int file_completion;
	int established;
	int client_established;
	int closed;
	int client_error;
	int protocol_destroy;
	int closing_started;
};

static struct counts n;
static const char *bigfile;

struct pss {
	int is_client;
};

static int cb(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
	      enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	struct pss *p = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		n.http++;
		if (in && !strcmp((const char *)in, "/big")) {
			if (libwebsockets_serve_http_file(ctx, wsi, bigfile,
							  "application/octet-stream"))
				return -1;
			return 0;
		}
		return -1;
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		n.file_completion++;
		return -1;
	case LWS_CALLBACK_CLOSED_HTTP:
		n.closed_http++;
		break;
	case LWS_CALLBACK_ESTABLISHED:
		n.established++;
		if (p)
			p->is_client = 0;
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		n.client_established++;
		if (p)
			p->is_client = 1;
		break;
	case LWS_CALLBACK_RECEIVE:
		if (len == 8 && !memcmp(in, "close-me", 8)) {
			n.closing_started++;
			return -1;
		}
		break;
	case LWS_CALLBACK_CLOSED:
		n.closed++;
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		n.client_error++;
		break;
	case LWS_CALLBACK_PROTOCOL_DESTROY:
		n.protocol_destroy++;
		break;
	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "http-only", cb, sizeof(struct pss), 0, 0, NULL, 0 },
	{ "ws", cb, sizeof(struct pss), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("socket");
		exit(2);
	}
	return fd;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* a blocking connect to 127.0.0.1:port, then non-blocking */
static int raw_connect(int port)
{
	int fd = tcp_socket();
	struct sockaddr_in a = loopback(port);

	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(2);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("send");
			exit(2);
		}
		p += w;
		len -= (size_t)w;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* a listener on an ephemeral port; returns its fd and port */
static int listener(int backlog, int *port)
{
	int fd = tcp_socket();
	struct sockaddr_in a = loopback(0);
	socklen_t l = sizeof(a);

	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&a, &l)) {
		perror("listener");
		exit(2);
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static const char upgrade_fmt[] =
	"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ws\r\n\r\n";

/* reads a raw peer's socket until the 101 head is in; 1 when seen */
static int saw_101(int fd, char *acc, size_t cap, size_t *have)
{
	ssize_t r;

	while (*have + 1 < cap && (r = recv(fd, acc + *have, cap - 1 - *have, 0)) > 0)
		*have += (size_t)r;
	acc[*have] = 0;
	return strstr(acc, "\r\n\r\n") && !strncmp(acc, "HTTP/1.1 101", 12);
}

static int check(const char *what, int got, int want)
{
	if (got == want)
		return 0;
	fprintf(stderr, "destroy_states: %s: got %d, want %d\n", what, got, want);
	return 1;
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct libwebsocket_context *ctx;
	struct libwebsocket *c_loop, *c_connect, *c_reply;
	char acc_ws[1024], acc_closing[1024];
	size_t have_ws = 0, have_closing = 0;
	int port, hdrs, file, ws, closing;
	int full_port, full_l, filler1, filler2;
	int mute_port, mute_l;
	int ws_up = 0, closing_up = 0, closing_sent = 0;
	struct counts before;
	double deadline;
	int bad = 0;
	/* "close-me", masked with a zero key: FIN|text, MASK|8, key, payload */
	static const unsigned char close_me[] = {
		0x81, 0x88, 0, 0, 0, 0, 'c', 'l', 'o', 's', 'e', '-', 'm', 'e'
	};

	if (argc != 3) {
		fprintf(stderr, "usage: %s PORT BIGFILE\n", argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	bigfile = argv[2];

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = NULL;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	ctx = libwebsocket_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "destroy_states: create_context failed\n");
		return 2;
	}

	/* a target whose accept queue is full: our connect stays pending */
	full_l = listener(0, &full_port);
	filler1 = tcp_socket();
	filler2 = tcp_socket();
	{
		struct sockaddr_in a = loopback(full_port);

		fcntl(filler1, F_SETFL, O_NONBLOCK);
		fcntl(filler2, F_SETFL, O_NONBLOCK);
		(void)connect(filler1, (struct sockaddr *)&a, sizeof(a));
		(void)connect(filler2, (struct sockaddr *)&a, sizeof(a));
	}
	/* a target that completes TCP (kernel) but never accepts or answers */
	mute_l = listener(16, &mute_port);

	file = raw_connect(port);
	{
		int small = 4096;

		setsockopt(file, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	send_str(file, "GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
	ws = raw_connect(port);
	send_all(ws, upgrade_fmt, sizeof(upgrade_fmt) - 1);
	closing = raw_connect(port);
	send_all(closing, upgrade_fmt, sizeof(upgrade_fmt) - 1);

	c_loop = libwebsocket_client_connect(ctx, "127.0.0.1", port, 0, "/", "127.0.0.1",
					     "127.0.0.1", "ws", -1);
	c_connect = libwebsocket_client_connect(ctx, "127.0.0.1", full_port, 0, "/",
						"127.0.0.1", "127.0.0.1", "ws", -1);
	c_reply = libwebsocket_client_connect(ctx, "127.0.0.1", mute_port, 0, "/",
					      "127.0.0.1", "127.0.0.1", "ws", -1);
	if (!c_loop || !c_connect || !c_reply) {
		fprintf(stderr, "destroy_states: client_connect returned NULL\n");
		return 2;
	}

	/* service until every connection is where we want it (bounded) */
	deadline = now() + 20.0;
	for (;;) {
		if (now() > deadline) {
			fprintf(stderr,
				"destroy_states: setup timed out: http %d established %d "
				"client_established %d closing %d closed %d ws_up %d "
				"closing_up %d\n",
				n.http, n.established, n.client_established,
				n.closing_started, n.closed, ws_up, closing_up);
			return 1;
		}
		libwebsocket_service(ctx, 20);
		if (!ws_up)
			ws_up = saw_101(ws, acc_ws, sizeof(acc_ws), &have_ws);
		if (!closing_up)
			closing_up = saw_101(closing, acc_closing, sizeof(acc_closing),
					     &have_closing);
		if (closing_up && !closing_sent) {
			send_all(closing, close_me, sizeof(close_me));
			closing_sent = 1;
		}
		if (ws_up && closing_up && n.http >= 1 && n.established == 3 &&
		    n.client_established == 1 && n.closing_started == 1 && n.closed == 1)
			break;
	}
	/*
	 * The half request last (the head has a few seconds' timeout), then a little
	 * more service so it is read and the file transfer is well under way.
	 */
	hdrs = raw_connect(port);
	send_str(hdrs, "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag");
	deadline = now() + 0.3;
	while (now() < deadline)
		libwebsocket_service(ctx, 20);

	before = n;
	bad |= check("CLOSED_HTTP before destroy", before.closed_http, 0);
	bad |= check("CLIENT_CONNECTION_ERROR before destroy", before.client_error, 0);
	bad |= check("HTTP_FILE_COMPLETION before destroy", before.file_completion, 0);

	libwebsocket_context_destroy(ctx);

	/* 4 WebSocket connections: closing (already notified), ws, loop x2 */
	bad |= check("CLOSED total", n.closed, 4);
	bad |= check("CLOSED_HTTP", n.closed_http, 1);
	bad |= check("CLIENT_CONNECTION_ERROR", n.client_error, 2);
	bad |= check("HTTP_FILE_COMPLETION", n.file_completion, 0);
	bad |= check("HTTP callbacks", n.http, 1);
	bad |= check("PROTOCOL_DESTROY", n.protocol_destroy, 2);

	close(hdrs);
	close(file);
	close(ws);
	close(closing);
	close(filler1);
	close(filler2);
	close(full_l);
	close(mute_l);
	if (bad)
		return 1;
	printf("destroy_states: ok (closed %d, closed_http %d, client_error %d)\n", n.closed,
	       n.closed_http, n.client_error);
	return 0;
}
