/*
 * threads_wake: latency from libwebsocket_callback_on_writable() called on another
 * thread to the LWS_CALLBACK_SERVER_WRITEABLE callback on the service thread.
 *
 * One context served by its own thread, idle between requests (blocked in
 * libwebsocket_service with a 1 s timeout, or in its own poll() with --extpoll), and
 * one connection from a raw-socket client. The requesting thread takes the time,
 * makes the request, and waits until the callback has run; the callback takes the
 * time again. Requests are spaced by --gap-us so that the service thread is asleep
 * when each one arrives.
 *
 * usage: threads_wake [--samples N] [--gap-us US] [--extpoll] [--port P] [--label L]
 * Prints one line:
 *   RESULT mode=wake label=L loop=service|extpoll samples=N p50_us=.. p90_us=..
 *          p99_us=.. p999_us=.. max_us=.. mean_us=.. errors=E
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static int use_extpoll;
static int port = 7690;
static struct libwebsocket_protocols protocols[3];
static struct libwebsocket_context *context;

/* under `lock` */
static struct libwebsocket *conn;
static unsigned long done;	/* WRITEABLE callbacks so far */
static long long stamp_ns;	/* time the last callback ran */
static int created, stopping;

/* the service thread's poll set (--extpoll) */
static struct pollfd fds[16];
static int nfds;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void poll_set(enum libwebsocket_callback_reasons reason, int fd, int events)
{
	int i;

	for (i = 0; i < nfds; i++)
		if (fds[i].fd == fd)
			break;
	if (reason == LWS_CALLBACK_ADD_POLL_FD && i == nfds && nfds < 16) {
		fds[nfds].fd = fd;
		fds[nfds++].events = (short)events;
	} else if (reason == LWS_CALLBACK_DEL_POLL_FD && i < nfds) {
		fds[i] = fds[--nfds];
	} else if (reason == LWS_CALLBACK_SET_MODE_POLL_FD && i < nfds) {
		fds[i].events |= (short)events;
	} else if (reason == LWS_CALLBACK_CLEAR_MODE_POLL_FD && i < nfds) {
		fds[i].events &= (short)~events;
	}
}

static int cb_http(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		   enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)ctx;
	(void)wsi;
	(void)user;
	if (use_extpoll && reason >= LWS_CALLBACK_ADD_POLL_FD &&
	    reason <= LWS_CALLBACK_CLEAR_MODE_POLL_FD)
		poll_set(reason, (int)(long)in, (int)len);
	return 0;
}

static int cb_wake(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		   enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	long long t = now_ns();

	(void)ctx;
	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		pthread_mutex_lock(&lock);
		conn = wsi;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		pthread_mutex_lock(&lock);
		stamp_ns = t;
		done++;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		break;
	case LWS_CALLBACK_CLOSED:
		pthread_mutex_lock(&lock);
		conn = NULL;
		pthread_mutex_unlock(&lock);
		break;
	default:
		break;
	}
	return 0;
}

static void *service_main(void *arg)
{
	struct lws_context_creation_info info;
	int stop = 0, i, n;

	(void)arg;
	protocols[0].name = "http-only";
	protocols[0].callback = cb_http;
	protocols[1].name = "wake";
	protocols[1].callback = cb_wake;
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	context = libwebsocket_create_context(&info);
	pthread_mutex_lock(&lock);
	created = context ? 1 : -1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	if (!context)
		return NULL;
	while (!stop) {
		if (use_extpoll) {
			n = poll(fds, (nfds_t)nfds, 1000);
			for (i = 0; n > 0 && i < nfds; i++) {
				struct pollfd p = fds[i];

				if (!p.revents)
					continue;
				fds[i].revents = 0;
				libwebsocket_service_fd(context, &p);
			}
		} else {
			libwebsocket_service(context, 1000);
		}
		pthread_mutex_lock(&lock);
		stop = stopping;
		pthread_mutex_unlock(&lock);
	}
	libwebsocket_context_destroy(context);
	return NULL;
}

static int raw_client(void)
{
	static const char req[] =
		"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wake\r\n\r\n";
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
		close(fd);
		return -1;
	}
	return fd; /* the response is never read: the callback writes nothing */
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static double pct(long long *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);

	return v[i] / 1000.0;
}

int main(int argc, char **argv)
{
	int samples = 10000, gap_us = 200, i, fd = -1, errors = 0;
	const char *label = "wake";
	struct libwebsocket *wsi;
	long long *lat, sum = 0;
	pthread_t service;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--samples") && i + 1 < argc)
			samples = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--gap-us") && i + 1 < argc)
			gap_us = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--label") && i + 1 < argc)
			label = argv[++i];
		else if (!strcmp(argv[i], "--extpoll"))
			use_extpoll = 1;
		else {
			fprintf(stderr, "usage: threads_wake [--samples N] [--gap-us US] "
					"[--extpoll] [--port P] [--label L]\n");
			return 2;
		}
	}
	if (samples < 1)
		samples = 1;
	lat = calloc((size_t)samples, sizeof(*lat));
	if (!lat)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR, NULL);
	if (pthread_create(&service, NULL, service_main, NULL))
		return 1;
	pthread_mutex_lock(&lock);
	while (!created)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	if (created < 0) {
		fprintf(stderr, "threads_wake: no context on port %d\n", port);
		return 1;
	}
	fd = raw_client();
	pthread_mutex_lock(&lock);
	for (i = 0; fd >= 0 && !conn && i < 500; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&cond, &lock, &ts);
	}
	wsi = conn;
	pthread_mutex_unlock(&lock);
	if (!wsi) {
		fprintf(stderr, "threads_wake: no connection\n");
		errors++;
		samples = 0;
	}

	for (i = 0; i < samples; i++) {
		struct timespec gap = { 0, gap_us * 1000L };
		unsigned long before;
		long long t0;
		int waited = 0;

		nanosleep(&gap, NULL);
		pthread_mutex_lock(&lock);
		before = done;
		pthread_mutex_unlock(&lock);
		t0 = now_ns();
		if (libwebsocket_callback_on_writable(context, wsi) != 1) {
			errors++;
			break;
		}
		pthread_mutex_lock(&lock);
		while (done == before && waited < 200) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&cond, &lock, &ts);
			waited++;
		}
		if (done == before) {
			errors++;
			pthread_mutex_unlock(&lock);
			break;
		}
		lat[i] = stamp_ns - t0;
		pthread_mutex_unlock(&lock);
		sum += lat[i];
	}
	samples = i;

	pthread_mutex_lock(&lock);
	stopping = 1;
	libwebsocket_callback_on_writable_all_protocol(&protocols[1]);
	pthread_mutex_unlock(&lock);
	pthread_join(service, NULL);
	if (fd >= 0)
		close(fd);

	if (samples) {
		qsort(lat, (size_t)samples, sizeof(*lat), cmp);
		printf("RESULT mode=wake label=%s loop=%s samples=%d gap_us=%d p50_us=%.1f "
		       "p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f errors=%d\n",
		       label, use_extpoll ? "extpoll" : "service", samples, gap_us,
		       pct(lat, samples, 0.5), pct(lat, samples, 0.9), pct(lat, samples, 0.99),
		       pct(lat, samples, 0.999), lat[samples - 1] / 1000.0,
		       sum / 1000.0 / samples, errors);
	} else {
		printf("RESULT mode=wake label=%s loop=%s samples=0 errors=%d\n", label,
		       use_extpoll ? "extpoll" : "service", errors + 1);
	}
	free(lat);
	return errors ? 1 : 0;
}
