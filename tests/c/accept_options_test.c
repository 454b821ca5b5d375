/*
 * accept_options_test.c - accepted connections carry TCP_NODELAY and the context's
 * keepalive settings (ka_time / ka_probes / ka_interval), whatever way the library
 * applies them. Checked from LWS_CALLBACK_FILTER_NETWORK_CONNECTION, which receives
 * the accepted descriptor in `in`, for a plain TCP connection made by this program
 * to its own server context on 127.0.0.1.
 *
 * Built by tests/c_api.rs as C and as C++, with and without -D_DEBUG, linked
 * dynamically and statically. Exits 0 when every check passes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <libwebsockets.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int seen;
static int nodelay, keepalive, keepidle, keepcnt, keepintvl;

static int get_opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof v;

	if (getsockopt(fd, level, name, &v, &l) < 0)
		return -1;
	return v;
}

static int filter_callback(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
			   enum libwebsocket_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	int fd;

	(void)ctx;
	(void)wsi;
	(void)user;
	(void)len;
	if (reason != LWS_CALLBACK_FILTER_NETWORK_CONNECTION)
		return 0;
	fd = (int)(long)in;
	seen++;
	nodelay = get_opt(fd, IPPROTO_TCP, TCP_NODELAY);
	keepalive = get_opt(fd, SOL_SOCKET, SO_KEEPALIVE);
	keepidle = get_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE);
	keepcnt = get_opt(fd, IPPROTO_TCP, TCP_KEEPCNT);
	keepintvl = get_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL);
	return 1; /* refuse: the test only needs the descriptor */
}

int main(void)
{
	static struct libwebsocket_protocols protocols[2];
	struct lws_context_creation_info info;
	struct libwebsocket_context *ctx = NULL;
	struct sockaddr_in sa;
	int port = 0, i, fd, failures = 0;

	lws_set_log_level(LLL_ERR, NULL);
	memset(protocols, 0, sizeof protocols);
	protocols[0].name = "http";
	protocols[0].callback = filter_callback;
	for (i = 0; i < 50 && !ctx; i++) {
		port = 20000 + (int)((getpid() * 7 + i * 131) % 30000);
		memset(&info, 0, sizeof info);
		info.port = port;
		info.iface = "127.0.0.1";
		info.protocols = protocols;
		info.gid = -1;
		info.uid = -1;
		info.ka_time = 77;
		info.ka_probes = 5;
		info.ka_interval = 9;
		ctx = libwebsocket_create_context(&info);
	}
	if (!ctx) {
		fprintf(stderr, "FAIL: no context on any tried port\n");
		return 1;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "FAIL: connect to 127.0.0.1:%d\n", port);
		return 1;
	}
	for (i = 0; i < 200 && !seen; i++)
		libwebsocket_service(ctx, 10);
	close(fd);
	libwebsocket_context_destroy(ctx);

	if (seen != 1) {
		fprintf(stderr, "FAIL: FILTER_NETWORK_CONNECTION seen %d times\n", seen);
		return 1;
	}
	if (nodelay != 1) {
		fprintf(stderr, "FAIL: TCP_NODELAY %d\n", nodelay);
		failures++;
	}
	if (keepalive != 1 || keepidle != 77 || keepcnt != 5 || keepintvl != 9) {
		fprintf(stderr, "FAIL: keepalive %d idle %d cnt %d intvl %d (want 1 77 5 9)\n",
			keepalive, keepidle, keepcnt, keepintvl);
		failures++;
	}
	printf("accept_options_test: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
