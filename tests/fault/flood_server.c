/*
 * flood_server.c - a server that writes as fast as it can, with SIGPIPE left at its
 * default disposition (unlike test-echo, which ignores it), so a write to a peer that
 * has gone away would kill the process if the library ever raised SIGPIPE.
 *
 *   flood_server PORT FILE
 *
 * HTTP GET of any path serves FILE. The WebSocket protocol "flood" sends 64 KiB binary
 * messages to every connection for as long as it stays open. Runs until SIGTERM or
 * SIGINT; prints "flood_server: listening" once ready.
 */
#define _GNU_SOURCE 1

#include <libwebsockets.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (64 * 1024)

static volatile sig_atomic_t stop;
static const char *file;
static unsigned char msg[LWS_SEND_BUFFER_PRE_PADDING + CHUNK + LWS_SEND_BUFFER_POST_PADDING];

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static int cb_http(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		   enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (libwebsockets_serve_http_file(ctx, wsi, file, "application/octet-stream"))
			return -1;
		break;
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		return -1;
	default:
		break;
	}
	return 0;
}

static int cb_flood(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		    enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	int rounds = 0;

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		libwebsocket_callback_on_writable(ctx, wsi);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		while (!lws_send_pipe_choked(wsi) && rounds++ < 64) {
			if (libwebsocket_write(wsi, msg + LWS_SEND_BUFFER_PRE_PADDING, CHUNK,
					       LWS_WRITE_BINARY) < 0)
				return -1;
		}
		libwebsocket_callback_on_writable(ctx, wsi);
		break;
	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "http-only", cb_http, 0, 0, 0, NULL, 0 },
	{ "flood", cb_flood, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct libwebsocket_context *ctx;
	struct sigaction sa;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PORT FILE\n", argv[0]);
		return 2;
	}
	file = argv[2];
	memset(msg, 'x', sizeof(msg));

	/* SIGPIPE stays (is reset to) the default: terminate the process */
	signal(SIGPIPE, SIG_DFL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = atoi(argv[1]);
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	ctx = libwebsocket_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "flood_server: create_context failed\n");
		return 1;
	}
	fprintf(stderr, "flood_server: listening on %d\n", info.port);
	while (!stop && libwebsocket_service(ctx, 50) >= 0)
		;
	libwebsocket_context_destroy(ctx);
	fprintf(stderr, "flood_server: exited cleanly\n");
	return 0;
}
