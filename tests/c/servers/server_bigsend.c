/*
 * server_bigsend: partial-write test server (v1.23 API).
 *
 * When a connection is established the server sends it MSG_COUNT binary
 * messages of MSG_SIZE bytes each, from LWS_CALLBACK_SERVER_WRITEABLE, checking
 * lws_send_pipe_choked() between writes. Message k is made of little-endian
 * 32-bit words; word j holds (k << 24) + j, so a lost, repeated or shifted byte
 * is visible to the client.
 *
 * Two protocols:
 *   "bigsend"           no_buffer_all_partial_tx = 0: when libwebsocket_write()
 *                       takes only part of the payload, the rest is written
 *                       later by this code.
 *   "bigsend-buffered"  no_buffer_all_partial_tx = 1: the library keeps what the
 *                       kernel did not take; this code only waits for WRITEABLE.
 *
 * stderr gets "server_bigsend: done <protocol> partial_writes=N" after the
 * last message, and "server_bigsend: closed" when the connection ends.
 *
 * Usage: server_bigsend --port N
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define MSG_COUNT 20
#define MSG_SIZE (1024 * 1024)

struct bigsend_session {
	unsigned char *buf;	/* PRE padding + MSG_SIZE + POST padding */
	int index;		/* message being sent */
	size_t sent;		/* bytes of it already accepted */
	int partial_writes;
	int writes;
	int done;
};

static volatile sig_atomic_t stop_requested;

static void fill_message(unsigned char *p, int k)
{
	unsigned int j;

	for (j = 0; j < MSG_SIZE / 4; j++) {
		unsigned int v = ((unsigned int)k << 24) + j;

		p[4 * j] = (unsigned char)v;
		p[4 * j + 1] = (unsigned char)(v >> 8);
		p[4 * j + 2] = (unsigned char)(v >> 16);
		p[4 * j + 3] = (unsigned char)(v >> 24);
	}
}

static int send_more(struct libwebsocket_context *context, struct libwebsocket *wsi,
		     struct bigsend_session *s)
{
	while (s->index < MSG_COUNT) {
		unsigned char *payload = s->buf + LWS_SEND_BUFFER_PRE_PADDING;
		size_t left = MSG_SIZE - s->sent;
		int n;

		if (!s->sent)
			fill_message(payload, s->index);
		n = libwebsocket_write(wsi, payload + s->sent, left, LWS_WRITE_BINARY);
		s->writes++;
		if (n < 0) {
			fprintf(stderr, "server_bigsend: write failed\n");
			return -1;
		}
		if ((size_t)n < left) {
			s->partial_writes++;
			s->sent += (size_t)n;
			libwebsocket_callback_on_writable(context, wsi);
			return 0;
		}
		s->sent = 0;
		s->index++;
		if (s->index < MSG_COUNT && lws_send_pipe_choked(wsi)) {
			libwebsocket_callback_on_writable(context, wsi);
			return 0;
		}
	}
	if (!s->done) {
		s->done = 1;
		fprintf(stderr, "server_bigsend: done %s partial_writes=%d writes=%d\n",
			libwebsockets_get_protocol(wsi)->name, s->partial_writes, s->writes);
	}
	return 0;
}

static int callback_bigsend(struct libwebsocket_context *context, struct libwebsocket *wsi,
			    enum libwebsocket_callback_reasons reason, void *user,
			    void *in, size_t len)
{
	struct bigsend_session *s = user;

	(void)in;
	(void)len;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		memset(s, 0, sizeof(*s));
		s->buf = malloc(LWS_SEND_BUFFER_PRE_PADDING + MSG_SIZE + LWS_SEND_BUFFER_POST_PADDING);
		if (!s->buf)
			return -1;
		fprintf(stderr, "server_bigsend: established (%s)\n",
			libwebsockets_get_protocol(wsi)->name);
		libwebsocket_callback_on_writable(context, wsi);
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!s->buf)
			return -1;
		return send_more(context, wsi, s);

	case LWS_CALLBACK_CLOSED:
		fprintf(stderr, "server_bigsend: closed after %d messages\n", s->index);
		free(s->buf);
		s->buf = NULL;
		break;

	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "bigsend", callback_bigsend, sizeof(struct bigsend_session), 0, 0, NULL, 0 },
	{ "bigsend-buffered", callback_bigsend, sizeof(struct bigsend_session), 0, 1, NULL, 0 },
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
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	context = libwebsocket_create_context(&info);
	if (!context) {
		fprintf(stderr, "server_bigsend: create_context failed\n");
		return 1;
	}
	fprintf(stderr, "server_bigsend listening on port %d\n", info.port);

	while (!stop_requested)
		if (libwebsocket_service(context, 50) < 0)
			break;

	libwebsocket_context_destroy(context);
	return 0;
}
