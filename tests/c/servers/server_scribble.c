/*
 * server_scribble: an echo server that uses all the room the receive buffer promises.
 *
 * On every RECEIVE it checks the NUL after the data, then overwrites the
 * LWS_SEND_BUFFER_PRE_PADDING bytes before `in`, the LWS_SEND_BUFFER_POST_PADDING
 * bytes and the NUL after it, and finally echoes the data with
 * libwebsocket_write(in) (v1.23 wrote the frame header into the PRE padding of
 * the buffer it was given). The peer sends many frames in one segment, so they
 * are parsed from the same read: none may be damaged by what this server wrote
 * around an earlier one. Reports on stderr when the connection closes:
 *
 *   server_scribble: closed rx=N nul_missing=N
 *
 * Usage: server_scribble --port N
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

struct scribble_session {
	int rx;
	int nul_missing;
};

static volatile sig_atomic_t stop_requested;

static int callback_scribble(struct libwebsocket_context *context, struct libwebsocket *wsi,
			     enum libwebsocket_callback_reasons reason, void *user,
			     void *in, size_t len)
{
	struct scribble_session *s = user;
	unsigned char *p = in;
	int n;

	(void)context;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		memset(s, 0, sizeof(*s));
		break;
	case LWS_CALLBACK_RECEIVE:
		/* one whole frame per call: the peer sends frames of at most 125 bytes */
		s->rx++;
		if (p[len] != 0)
			s->nul_missing++;
		memset(p - LWS_SEND_BUFFER_PRE_PADDING, 0xEE, LWS_SEND_BUFFER_PRE_PADDING);
		memset(p + len, 0xEE, LWS_SEND_BUFFER_POST_PADDING + 1);
		n = libwebsocket_write(wsi, p, len,
				       lws_frame_is_binary(wsi) ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		if (n < (int)len)
			return -1;
		/* and the data itself, after it was written */
		memset(p, 0xEE, len);
		break;
	case LWS_CALLBACK_CLOSED:
		fprintf(stderr, "server_scribble: closed rx=%d nul_missing=%d\n", s->rx,
			s->nul_missing);
		break;
	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "scribble", callback_scribble, sizeof(struct scribble_session), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	int c;

	memset(&info, 0, sizeof(info));
	info.port = 7691;
	while ((c = getopt_long(argc, argv, "p:", opts, NULL)) != -1)
		if (c == 'p')
			info.port = atoi(optarg);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	context = libwebsocket_create_context(&info);
	if (!context) {
		fprintf(stderr, "server_scribble: create_context failed\n");
		return 1;
	}
	fprintf(stderr, "server_scribble: listening on %d\n", info.port);
	while (!stop_requested && libwebsocket_service(context, 50) >= 0)
		;
	libwebsocket_context_destroy(context);
	return 0;
}
