/*
 * server_flow: receive flow-control test server (v1.23 API).
 *
 * After every whole message it receives, the server echoes it back and turns
 * receiving off with libwebsocket_rx_flow_control(wsi, 0); the main loop turns
 * it on again 200 ms later. It checks that no message arrives while receiving
 * is off and reports per connection, on stderr, when the connection closes:
 *
 *   server_flow: closed rx=N pauses=N resumes=N violations=N min_gap_ms=N
 *
 * Usage: server_flow --port N
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#define PAUSE_MS 200
#define MAX_SESSIONS 64
#define MAX_PENDING 128
#define MAX_MSG 1024

struct flow_session {
	struct libwebsocket *wsi;
	int paused;
	long long paused_at;
	int rx;
	int pauses;
	int resumes;
	int violations;
	long long min_gap;	/* shortest pause-to-next-message time seen */
	/* echo queue */
	unsigned char out[MAX_PENDING][LWS_SEND_BUFFER_PRE_PADDING + MAX_MSG +
					LWS_SEND_BUFFER_POST_PADDING];
	size_t out_len[MAX_PENDING];
	int out_head;
	int out_tail;
	/* message being reassembled */
	unsigned char in[MAX_MSG];
	size_t in_len;
};

static struct flow_session *sessions[MAX_SESSIONS];
static volatile sig_atomic_t stop_requested;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int callback_flow(struct libwebsocket_context *context, struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user,
			 void *in, size_t len)
{
	struct flow_session *s = user;
	int i;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		memset(s, 0, sizeof(*s));
		s->wsi = wsi;
		s->min_gap = -1;
		for (i = 0; i < MAX_SESSIONS; i++)
			if (!sessions[i]) {
				sessions[i] = s;
				break;
			}
		fprintf(stderr, "server_flow: established\n");
		break;

	case LWS_CALLBACK_RECEIVE:
		if (s->paused) {
			s->violations++;
			fprintf(stderr, "server_flow: VIOLATION: data while paused\n");
		}
		if (s->in_len + len > MAX_MSG)
			return -1;
		memcpy(s->in + s->in_len, in, len);
		s->in_len += len;
		if (libwebsockets_remaining_packet_payload(wsi) || !libwebsocket_is_final_fragment(wsi))
			break;

		s->rx++;
		if (s->pauses) {
			long long gap = now_ms() - s->paused_at;

			if (s->min_gap < 0 || gap < s->min_gap)
				s->min_gap = gap;
			fprintf(stderr, "server_flow: rx #%d, %lld ms after the last pause\n",
				s->rx, gap);
		} else {
			fprintf(stderr, "server_flow: rx #%d\n", s->rx);
		}
		if ((s->out_head + 1) % MAX_PENDING == s->out_tail)
			return -1;
		memcpy(s->out[s->out_head] + LWS_SEND_BUFFER_PRE_PADDING, s->in, s->in_len);
		s->out_len[s->out_head] = s->in_len;
		s->out_head = (s->out_head + 1) % MAX_PENDING;
		s->in_len = 0;

		s->paused = 1;
		s->paused_at = now_ms();
		s->pauses++;
		libwebsocket_rx_flow_control(wsi, 0);
		libwebsocket_callback_on_writable(context, wsi);
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		while (s->out_tail != s->out_head) {
			int n = libwebsocket_write(wsi, s->out[s->out_tail] + LWS_SEND_BUFFER_PRE_PADDING,
						   s->out_len[s->out_tail], LWS_WRITE_TEXT);

			if (n < (int)s->out_len[s->out_tail])
				return -1;
			s->out_tail = (s->out_tail + 1) % MAX_PENDING;
		}
		break;

	case LWS_CALLBACK_CLOSED:
		for (i = 0; i < MAX_SESSIONS; i++)
			if (sessions[i] == s)
				sessions[i] = NULL;
		fprintf(stderr, "server_flow: closed rx=%d pauses=%d resumes=%d violations=%d "
			"min_gap_ms=%lld\n", s->rx, s->pauses, s->resumes, s->violations, s->min_gap);
		break;

	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "flow", callback_flow, sizeof(struct flow_session), 0, 0, NULL, 0 },
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
	int c, i;

	memset(&info, 0, sizeof(info));
	info.port = 7690;
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
		fprintf(stderr, "server_flow: create_context failed\n");
		return 1;
	}
	fprintf(stderr, "server_flow listening on port %d\n", info.port);

	while (!stop_requested) {
		long long t = now_ms();

		for (i = 0; i < MAX_SESSIONS; i++) {
			struct flow_session *s = sessions[i];

			if (!s || !s->paused || t - s->paused_at < PAUSE_MS)
				continue;
			s->paused = 0;
			s->resumes++;
			libwebsocket_rx_flow_control(s->wsi, 1);
			/* a callback on this connection lets the change take effect */
			libwebsocket_callback_on_writable(context, s->wsi);
		}
		if (libwebsocket_service(context, 10) < 0)
			break;
	}

	libwebsocket_context_destroy(context);
	return 0;
}
