/*
 * echo-threads: WebSocket echo server on the libwebsockets v1.23 API with N service
 * threads, each creating and serving its own context on the same port
 * (LWS_REUSEPORT=1, set here when N > 1): the kernel spreads connections over them.
 *
 * Echo semantics as benchmark servers usually have them: every message is echoed
 * whole, with its opcode, in order; messages are queued per connection and written
 * from LWS_CALLBACK_SERVER_WRITEABLE; receiving pauses (libwebsocket_rx_flow_control)
 * while 64 messages are queued and resumes at 16.
 *
 * usage: echo-threads PORT [THREADS [LOG_LEVEL]]
 * Stops on SIGINT/SIGTERM; prints "echo-threads: N threads on port P" when listening
 * and "thread i: connections=C messages=M" per thread at exit.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define PRE LWS_SEND_BUFFER_PRE_PADDING
#define POST LWS_SEND_BUFFER_POST_PADDING
#define HIGH 64
#define LOW 16
#define MAX_THREADS 16

struct message {
	struct message *next;
	size_t len;
	int binary;
	unsigned char data[]; /* PRE + len + POST */
};

struct session {
	struct message *head, *tail;
	unsigned char *rx;	/* message being gathered: PRE + payload + POST */
	size_t rx_len, rx_cap;
	int rx_binary;
	int queued, paused;
};

struct worker {
	int index;
	pthread_t thread;
	struct libwebsocket_protocols protocols[2];
	struct libwebsocket_context *context;
	int created;
	unsigned long connections, messages;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stopping, ready;
static int port;
static struct worker workers[MAX_THREADS];

static int gather(struct session *s, const void *in, size_t len)
{
	size_t need = PRE + s->rx_len + len + POST;

	if (need > s->rx_cap) {
		size_t cap = s->rx_cap ? 2 * s->rx_cap : 256;
		unsigned char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(s->rx, cap);
		if (!p)
			return -1;
		s->rx = p;
		s->rx_cap = cap;
	}
	memcpy(s->rx + PRE + s->rx_len, in, len);
	s->rx_len += len;
	return 0;
}

static int echo(struct libwebsocket_context *context, struct libwebsocket *wsi,
		enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	struct worker *w = libwebsocket_context_user(context);
	struct session *s = user;
	struct message *m;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		memset(s, 0, sizeof(*s));
		w->connections++;
		break;
	case LWS_CALLBACK_RECEIVE:
		if (!s->rx_len)
			s->rx_binary = lws_frame_is_binary(wsi);
		if (gather(s, in, len))
			return -1;
		if (!libwebsocket_is_final_fragment(wsi) ||
		    libwebsockets_remaining_packet_payload(wsi))
			break;
		m = malloc(sizeof(*m) + PRE + s->rx_len + POST);
		if (!m)
			return -1;
		m->next = NULL;
		m->len = s->rx_len;
		m->binary = s->rx_binary;
		memcpy(m->data + PRE, s->rx + PRE, s->rx_len);
		s->rx_len = 0;
		if (s->tail)
			s->tail->next = m;
		else
			s->head = m;
		s->tail = m;
		w->messages++;
		if (++s->queued >= HIGH && !s->paused) {
			s->paused = 1;
			libwebsocket_rx_flow_control(wsi, 0);
		}
		libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		while ((m = s->head)) {
			if (libwebsocket_write(wsi, m->data + PRE, m->len,
					       m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < 0)
				return -1;
			s->head = m->next;
			if (!s->head)
				s->tail = NULL;
			free(m);
			s->queued--;
			if (s->head && lws_send_pipe_choked(wsi)) {
				libwebsocket_callback_on_writable(context, wsi);
				break;
			}
		}
		if (s->paused && s->queued <= LOW) {
			s->paused = 0;
			libwebsocket_rx_flow_control(wsi, 1);
		}
		break;
	case LWS_CALLBACK_CLOSED:
		while ((m = s->head)) {
			s->head = m->next;
			free(m);
		}
		free(s->rx);
		s->rx = NULL;
		break;
	default:
		break;
	}
	return 0;
}

static void *serve(void *arg)
{
	struct worker *w = arg;
	struct lws_context_creation_info info;
	int stop = 0;

	w->protocols[0].name = "echo";
	w->protocols[0].callback = echo;
	w->protocols[0].per_session_data_size = sizeof(struct session);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.protocols = w->protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = w;
	w->context = libwebsocket_create_context(&info);
	pthread_mutex_lock(&lock);
	w->created = w->context ? 1 : -1;
	ready++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	if (!w->context)
		return NULL;
	while (!stop) {
		libwebsocket_service(w->context, 1000);
		pthread_mutex_lock(&lock);
		stop = stopping;
		pthread_mutex_unlock(&lock);
	}
	libwebsocket_context_destroy(w->context);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 1, i, sig, failed = 0;
	sigset_t sigs;

	port = argc > 1 ? atoi(argv[1]) : 7681;
	if (n < 1 || n > MAX_THREADS) {
		fprintf(stderr, "usage: echo-threads PORT [THREADS (1..%d) [LOG_LEVEL]]\n",
			MAX_THREADS);
		return 1;
	}
	lws_set_log_level(argc > 3 ? atoi(argv[3]) : (LLL_ERR | LLL_WARN), NULL);
	if (n > 1)
		setenv("LWS_REUSEPORT", "1", 1);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < n; i++) {
		workers[i].index = i;
		if (pthread_create(&workers[i].thread, NULL, serve, &workers[i]))
			return 1;
	}
	pthread_mutex_lock(&lock);
	while (ready < n)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < n; i++)
		if (workers[i].created != 1)
			failed = 1;
	if (!failed) {
		fprintf(stderr, "echo-threads: %d threads on port %d\n", n, port);
		sigwait(&sigs, &sig);
	}
	/* the wake-up below is made under `lock`, which a thread takes before it may
	 * destroy its context */
	pthread_mutex_lock(&lock);
	stopping = 1;
	for (i = 0; i < n; i++)
		if (workers[i].created == 1)
			libwebsocket_callback_on_writable_all_protocol(&workers[i].protocols[0]);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < n; i++) {
		pthread_join(workers[i].thread, NULL);
		fprintf(stderr, "thread %d: connections=%lu messages=%lu\n", i,
			workers[i].connections, workers[i].messages);
	}
	return failed;
}
