/*
 * test-threads: data produced on another thread reaching WebSocket clients, and one
 * context per core in one process.
 *
 * N service threads each create and serve their own context on the same port
 * (LWS_REUSEPORT=1 is set for N > 1, so the kernel spreads new connections over
 * them). A producer thread numbers messages 1, 2, 3... (one a second by default)
 * and, after each, calls libwebsocket_callback_on_writable_all_protocol() for the
 * "dumb-increment-protocol" of every context, from its own thread. The library
 * queues the request and wakes the service thread, which delivers
 * LWS_CALLBACK_SERVER_WRITEABLE; the callback sends each client every message it
 * has not had yet, in order (the text is the message number, padded with '.' to
 * --size bytes).
 *
 * With --per-connection the producer asks for each connection itself, with
 * libwebsocket_callback_on_writable(), walking a list of connections that the
 * service threads keep (added at ESTABLISHED, removed at CLOSED) under the same
 * mutex the producer holds while calling: so it never passes a connection whose
 * CLOSED callback has returned.
 *
 * With --extpoll each service thread runs its own poll() loop on the descriptors
 * announced through the POLL_FD callbacks (the library's wake-up eventfd among
 * them) and calls libwebsocket_service_fd().
 *
 * Every callback checks that it runs on the thread serving its context. On SIGINT
 * or SIGTERM the threads stop, each destroys its context, and a summary goes to
 * stdout:
 *   summary: threads=N produced=M connections=C writes=W wrong_thread=0
 *   thread i: connections=C writes=W
 *
 * Usage: test-threads [--port N] [--threads N] [--interval-ms MS] [--messages N]
 *                     [--wait-clients N] [--size BYTES] [--per-connection]
 *                     [--extpoll] [--debug LEVEL]
 *
 *   --messages N      stop producing after N messages (default: no limit)
 *   --wait-clients N  produce only once N clients are connected (over all threads)
 */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#define MAX_THREADS 16
#define MAX_MSG 4096
/* a service call waits at most this long: the producer's requests wake it earlier */
#define SERVICE_TIMEOUT_MS 1000

/* ------------------------------------------------------------ shared state */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* under `lock` */
static unsigned long latest;	/* last message produced */
static int stopping;		/* 1: producer stops; 2: service threads stop */
static int contexts_ready;
static int clients_now;		/* connected dumb-increment clients, all threads */

static int port = 7681;
static int nthreads = 1;
static long interval_ms = 1000;
static unsigned long max_messages;
static int wait_clients;
static size_t msg_size;
static int per_connection;
static int use_extpoll;

struct session {
	unsigned long next;	/* next message number to send */
};

struct service_thread {
	int index;
	pthread_t thread;	/* written by main */
	pthread_t self;		/* written by the thread itself, before its context exists */
	struct libwebsocket_context *context;
	/* this context's own copy of the protocols: the library writes owning_server
	 * into the array, so contexts must not share one */
	struct libwebsocket_protocols protocols[3];
	/* connections, for --per-connection (under `lock`) */
	struct libwebsocket **conns;
	int nconns;
	int capconns;
	/* statistics (written by this thread only; read after it has been joined) */
	unsigned long connections;
	unsigned long writes;
	unsigned long wrong_thread;
	/* --extpoll: this thread's poll set, changed only by callbacks on this thread */
	struct pollfd *fds;
	int nfds;
	int capfds;
};

static struct service_thread threads[MAX_THREADS];

static void check_thread(struct libwebsocket_context *context)
{
	struct service_thread *t = context ? libwebsocket_context_user(context) : NULL;

	if (t && !pthread_equal(pthread_self(), t->self))
		t->wrong_thread++;
}

/* message `seq`: its number in decimal, padded with '.' to msg_size bytes */
static size_t format_message(unsigned long seq, unsigned char *out)
{
	int n = snprintf((char *)out, 32, "%lu", seq);
	size_t len = (size_t)n;

	if (msg_size > len) {
		memset(out + len, '.', msg_size - len);
		len = msg_size;
	}
	return len;
}

/* ----------------------------------------------------- the extpoll poll set */

static int poll_set_update(struct service_thread *t, enum libwebsocket_callback_reasons reason,
			   int fd, int events)
{
	int i;

	for (i = 0; i < t->nfds; i++)
		if (t->fds[i].fd == fd)
			break;
	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
		if (i == t->nfds) {
			if (t->nfds == t->capfds) {
				int cap = t->capfds ? 2 * t->capfds : 64;
				struct pollfd *p = realloc(t->fds, (size_t)cap * sizeof(*p));

				if (!p)
					return 1;
				t->fds = p;
				t->capfds = cap;
			}
			t->fds[t->nfds].fd = fd;
			t->fds[t->nfds].revents = 0;
			t->nfds++;
		}
		t->fds[i].events = (short)events;
		break;
	case LWS_CALLBACK_DEL_POLL_FD:
		if (i < t->nfds)
			t->fds[i] = t->fds[--t->nfds];
		break;
	case LWS_CALLBACK_SET_MODE_POLL_FD:
		if (i < t->nfds)
			t->fds[i].events |= (short)events;
		break;
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		if (i < t->nfds)
			t->fds[i].events &= (short)~events;
		break;
	default:
		break;
	}
	return 0;
}

/* ------------------------------------------------------------ protocols */

static int callback_http(struct libwebsocket_context *context, struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	static const char page[] =
		"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
		"test-threads\n";
	struct service_thread *t = libwebsocket_context_user(context);

	(void)user;
	(void)len;
	check_thread(context);
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		libwebsocket_write(wsi, (unsigned char *)page, sizeof(page) - 1, LWS_WRITE_HTTP);
		return -1;
	case LWS_CALLBACK_ADD_POLL_FD:
	case LWS_CALLBACK_DEL_POLL_FD:
	case LWS_CALLBACK_SET_MODE_POLL_FD:
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		if (use_extpoll && t)
			return poll_set_update(t, reason, (int)(long)in, (int)len);
		break;
	default:
		break;
	}
	return 0;
}

/* the --per-connection list of a thread's connections (caller holds `lock`) */
static void list_add(struct service_thread *t, struct libwebsocket *wsi)
{
	if (t->nconns == t->capconns) {
		int cap = t->capconns ? 2 * t->capconns : 64;
		struct libwebsocket **p = realloc(t->conns, (size_t)cap * sizeof(*p));

		if (!p)
			return;
		t->conns = p;
		t->capconns = cap;
	}
	t->conns[t->nconns++] = wsi;
}

static void list_remove(struct service_thread *t, struct libwebsocket *wsi)
{
	int i;

	for (i = 0; i < t->nconns; i++)
		if (t->conns[i] == wsi) {
			t->conns[i] = t->conns[--t->nconns];
			return;
		}
}

static int callback_dumb_increment(struct libwebsocket_context *context,
				   struct libwebsocket *wsi,
				   enum libwebsocket_callback_reasons reason, void *user,
				   void *in, size_t len)
{
	struct service_thread *t = libwebsocket_context_user(context);
	struct session *s = user;
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + MAX_MSG + LWS_SEND_BUFFER_POST_PADDING];
	unsigned long last;
	size_t n;

	(void)in;
	(void)len;
	check_thread(context);
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		pthread_mutex_lock(&lock);
		s->next = latest + 1;
		if (per_connection)
			list_add(t, wsi);
		clients_now++;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		t->connections++;
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		pthread_mutex_lock(&lock);
		last = latest;
		pthread_mutex_unlock(&lock);
		while (s->next <= last) {
			if (lws_send_pipe_choked(wsi)) {
				/* the rest when the socket drains */
				libwebsocket_callback_on_writable(context, wsi);
				break;
			}
			n = format_message(s->next, buf + LWS_SEND_BUFFER_PRE_PADDING);
			if (libwebsocket_write(wsi, buf + LWS_SEND_BUFFER_PRE_PADDING, n,
					       LWS_WRITE_TEXT) < 0)
				return -1;
			s->next++;
			t->writes++;
		}
		break;

	case LWS_CALLBACK_CLOSED:
		pthread_mutex_lock(&lock);
		if (per_connection)
			list_remove(t, wsi);
		clients_now--;
		pthread_mutex_unlock(&lock);
		break;

	default:
		break;
	}
	return 0;
}

/* ------------------------------------------------------------ threads */

static void *service_main(void *arg)
{
	struct service_thread *t = arg;
	struct lws_context_creation_info info;
	int stop = 0;

	t->self = pthread_self();
	memset(&info, 0, sizeof(info));
	t->protocols[0].name = "http-only";
	t->protocols[0].callback = callback_http;
	t->protocols[1].name = "dumb-increment-protocol";
	t->protocols[1].callback = callback_dumb_increment;
	t->protocols[1].per_session_data_size = sizeof(struct session);
	info.port = port;
	info.protocols = t->protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = t;
	/* created on the thread that serves it: every callback runs here */
	t->context = libwebsocket_create_context(&info);

	pthread_mutex_lock(&lock);
	contexts_ready++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	if (!t->context) {
		fprintf(stderr, "test-threads: thread %d: context creation failed\n", t->index);
		return NULL;
	}

	while (!stop) {
		if (use_extpoll) {
			int i, n = poll(t->fds, (nfds_t)t->nfds, SERVICE_TIMEOUT_MS);

			for (i = 0; n > 0 && i < t->nfds; i++) {
				struct pollfd p;

				if (!t->fds[i].revents)
					continue;
				p = t->fds[i];
				t->fds[i].revents = 0;
				libwebsocket_service_fd(t->context, &p);
			}
			libwebsocket_service_fd(t->context, NULL);
		} else if (libwebsocket_service(t->context, SERVICE_TIMEOUT_MS) < 0) {
			break;
		}
		pthread_mutex_lock(&lock);
		stop = stopping == 2;
		pthread_mutex_unlock(&lock);
	}
	libwebsocket_context_destroy(t->context);
	return NULL;
}

static void *producer_main(void *arg)
{
	struct timespec next;
	unsigned long seq = 0;
	int i, j;

	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping && clients_now < wait_clients)
		pthread_cond_wait(&cond, &lock);
	if (wait_clients && !stopping)
		printf("producer: starting with %d clients\n", clients_now);
	pthread_mutex_unlock(&lock);
	fflush(stdout);

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!max_messages || seq < max_messages) {
		next.tv_nsec += (interval_ms % 1000) * 1000000L;
		next.tv_sec += interval_ms / 1000 + next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		pthread_mutex_lock(&lock);
		if (stopping) {
			pthread_mutex_unlock(&lock);
			break;
		}
		latest = ++seq;
		if (per_connection) {
			/* holding `lock`, which CLOSED also takes: every wsi listed is live */
			for (i = 0; i < nthreads; i++)
				for (j = 0; j < threads[i].nconns; j++)
					libwebsocket_callback_on_writable(threads[i].context,
									  threads[i].conns[j]);
			pthread_mutex_unlock(&lock);
		} else {
			pthread_mutex_unlock(&lock);
			for (i = 0; i < nthreads; i++)
				if (threads[i].context)
					libwebsocket_callback_on_writable_all_protocol(
						&threads[i].protocols[1]);
		}
	}
	if (max_messages && seq == max_messages) {
		printf("producer: done, %lu messages\n", seq);
		fflush(stdout);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "messages", required_argument, NULL, 'm' },
		{ "wait-clients", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 's' },
		{ "per-connection", no_argument, NULL, 'c' },
		{ "extpoll", no_argument, NULL, 'e' },
		{ "debug", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long connections = 0, writes = 0, wrong = 0;
	pthread_t producer;
	sigset_t sigs;
	int i, sig, opt, failed = 0;

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	while ((opt = getopt_long(argc, argv, "p:t:i:m:w:s:ced:", options, NULL)) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'i': interval_ms = atol(optarg); break;
		case 'm': max_messages = strtoul(optarg, NULL, 10); break;
		case 'w': wait_clients = atoi(optarg); break;
		case 's': msg_size = strtoul(optarg, NULL, 10); break;
		case 'c': per_connection = 1; break;
		case 'e': use_extpoll = 1; break;
		case 'd': lws_set_log_level(atoi(optarg), NULL); break;
		default:
			fprintf(stderr, "usage: test-threads [--port N] [--threads N] "
					"[--interval-ms MS] [--messages N] [--wait-clients N] "
					"[--size BYTES] [--per-connection] [--extpoll] "
					"[--debug LEVEL]\n");
			return 1;
		}
	}
	if (nthreads < 1 || nthreads > MAX_THREADS || interval_ms < 1 || msg_size > MAX_MSG) {
		fprintf(stderr, "test-threads: 1..%d threads, interval >= 1 ms, size <= %d\n",
			MAX_THREADS, MAX_MSG);
		return 1;
	}
	/* several contexts on one port: before any thread exists (setenv is not
	 * thread-safe) */
	if (nthreads > 1)
		setenv("LWS_REUSEPORT", "1", 1);

	/* signals are taken by sigwait() below, never by the service threads */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < nthreads; i++) {
		threads[i].index = i;
		if (pthread_create(&threads[i].thread, NULL, service_main, &threads[i])) {
			fprintf(stderr, "test-threads: cannot start thread %d\n", i);
			return 1;
		}
	}
	pthread_mutex_lock(&lock);
	while (contexts_ready < nthreads)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < nthreads; i++)
		if (!threads[i].context)
			failed = 1;
	if (!failed) {
		printf("test-threads: %d thread%s on port %d, a message every %ld ms%s%s\n",
		       nthreads, nthreads > 1 ? "s" : "", port, interval_ms,
		       per_connection ? ", per connection" : "",
		       use_extpoll ? ", external poll" : "");
		fflush(stdout);
	}
	if (failed || pthread_create(&producer, NULL, producer_main, NULL)) {
		pthread_mutex_lock(&lock);
		stopping = 2;
		pthread_mutex_unlock(&lock);
		for (i = 0; i < nthreads; i++)
			pthread_join(threads[i].thread, NULL);
		return 1;
	}

	sigwait(&sigs, &sig);

	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(producer, NULL);
	/*
	 * Then the service threads. The request below wakes each one at once, also
	 * without any connection; it is made while holding `lock`, which a service
	 * thread takes before it may destroy its context: no call reaches a context
	 * being destroyed.
	 */
	pthread_mutex_lock(&lock);
	stopping = 2;
	for (i = 0; i < nthreads; i++)
		libwebsocket_callback_on_writable_all_protocol(&threads[i].protocols[1]);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i].thread, NULL);

	for (i = 0; i < nthreads; i++) {
		connections += threads[i].connections;
		writes += threads[i].writes;
		wrong += threads[i].wrong_thread;
	}
	printf("summary: threads=%d produced=%lu connections=%lu writes=%lu wrong_thread=%lu\n",
	       nthreads, latest, connections, writes, wrong);
	for (i = 0; i < nthreads; i++) {
		printf("thread %d: connections=%lu writes=%lu\n", i, threads[i].connections,
		       threads[i].writes);
		free(threads[i].conns);
		free(threads[i].fds);
	}
	return wrong ? 2 : 0;
}
