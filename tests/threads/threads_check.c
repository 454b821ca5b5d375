/*
 * threads_check: the any-thread calls (libwebsocket_callback_on_writable,
 * libwebsocket_callback_on_writable_all_protocol, libwebsocket_rx_flow_control)
 * made from threads that do not serve the context, checked over real loopback
 * connections from raw-socket WebSocket clients.
 *
 * Each server context is created and served by its own thread (libwebsocket_service
 * with a long timeout, or its own poll() loop with libwebsocket_service_fd), so a
 * request that does not wake the loop shows as a multi-second delay. Every callback
 * checks that it runs on the thread serving its context.
 *
 * Usage: threads_check [--slow] [--port N] [CHECK...]
 *   checks: wake wake_extpoll all_protocol rx_flow closed handover stress
 *   (default: all). --slow relaxes the time limits (for valgrind).
 * Prints "PASS name" / "FAIL name: why" per check; exit status 0 when all passed.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define MAX_CONNS 256

static int slow;		/* --slow: time limits x10 */
static int base_port = 23900;
static int failures;

static long limit_ms(long ms)
{
	return slow ? ms * 10 : ms;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

#define FAIL(...)                                                                  \
	do {                                                                       \
		printf("FAIL %s: ", check_name);                                   \
		printf(__VA_ARGS__);                                               \
		printf("\n");                                                      \
		fflush(stdout);                                                    \
		failures++;                                                        \
		ok = 0;                                                            \
		goto out;                                                          \
	} while (0)

/* --------------------------------------------------------------- servers */

struct server {
	int port;
	int extpoll;
	pthread_t thread;
	pthread_t self;		/* the thread serving the context (set by that thread) */
	struct libwebsocket_context *context;
	struct libwebsocket_protocols protocols[3];
	int created;		/* 1 created, -1 failed */
	int first_wait_ms;	/* the service thread's first wait (then 20 s) */
	int stop;
	/* under `lock` */
	struct libwebsocket *conns[MAX_CONNS];
	int nconns;
	unsigned long established, closed, writeables, receives, wrong_thread;
	unsigned long service_returns;
	/* extpoll poll set (service thread only) */
	struct pollfd fds[MAX_CONNS + 8];
	int nfds;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* check_closed's probe, under `lock`: the next SERVER_WRITEABLE (on the service thread)
 * calls the library on the closed connection `probe_wsi` and records what it returned */
static struct libwebsocket *probe_wsi;
static int probe_write = -2, probe_writable = -2, probe_flow = -2;
static unsigned long probe_done;

static void note_thread(struct server *s)
{
	if (!pthread_equal(pthread_self(), s->self)) {
		pthread_mutex_lock(&lock);
		s->wrong_thread++;
		pthread_mutex_unlock(&lock);
	}
}

static void poll_set(struct server *s, enum libwebsocket_callback_reasons reason, int fd,
		     int events)
{
	int i;

	for (i = 0; i < s->nfds; i++)
		if (s->fds[i].fd == fd)
			break;
	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
		if (i == s->nfds) {
			if (s->nfds == (int)(sizeof(s->fds) / sizeof(s->fds[0])))
				return;
			s->fds[s->nfds].fd = fd;
			s->fds[s->nfds].revents = 0;
			s->nfds++;
		}
		s->fds[i].events = (short)events;
		break;
	case LWS_CALLBACK_DEL_POLL_FD:
		if (i < s->nfds)
			s->fds[i] = s->fds[--s->nfds];
		break;
	case LWS_CALLBACK_SET_MODE_POLL_FD:
		if (i < s->nfds)
			s->fds[i].events |= (short)events;
		break;
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		if (i < s->nfds)
			s->fds[i].events &= (short)~events;
		break;
	default:
		break;
	}
}

static int cb_http(struct libwebsocket_context *context, struct libwebsocket *wsi,
		   enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	struct server *s = libwebsocket_context_user(context);

	(void)wsi;
	(void)user;
	if (!s)
		return 0;
	note_thread(s);
	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
	case LWS_CALLBACK_DEL_POLL_FD:
	case LWS_CALLBACK_SET_MODE_POLL_FD:
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		if (s->extpoll)
			poll_set(s, reason, (int)(long)in, (int)len);
		break;
	default:
		break;
	}
	return 0;
}

static int cb_check(struct libwebsocket_context *context, struct libwebsocket *wsi,
		    enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	struct server *s = libwebsocket_context_user(context);
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 8 + LWS_SEND_BUFFER_POST_PADDING];
	int i;

	(void)user;
	(void)in;
	note_thread(s);
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		pthread_mutex_lock(&lock);
		if (s->nconns < MAX_CONNS)
			s->conns[s->nconns++] = wsi;
		s->established++;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		pthread_mutex_lock(&lock);
		s->writeables++;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		buf[LWS_SEND_BUFFER_PRE_PADDING] = 'W';
		pthread_mutex_lock(&lock);
		if (probe_wsi) {
			struct libwebsocket *closed = probe_wsi;

			probe_wsi = NULL;
			probe_write = libwebsocket_write(closed, buf + LWS_SEND_BUFFER_PRE_PADDING,
							 1, LWS_WRITE_TEXT);
			probe_writable = libwebsocket_callback_on_writable(context, closed);
			probe_flow = libwebsocket_rx_flow_control(closed, 0);
			libwebsocket_set_timeout(closed, PENDING_TIMEOUT_AWAITING_PING, 1);
			probe_done++;
			pthread_cond_broadcast(&cond);
		}
		pthread_mutex_unlock(&lock);
		if (libwebsocket_write(wsi, buf + LWS_SEND_BUFFER_PRE_PADDING, 1,
				       LWS_WRITE_TEXT) < 0)
			return -1;
		break;
	case LWS_CALLBACK_RECEIVE:
		pthread_mutex_lock(&lock);
		s->receives += len;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		break;
	case LWS_CALLBACK_CLOSED:
		pthread_mutex_lock(&lock);
		for (i = 0; i < s->nconns; i++)
			if (s->conns[i] == wsi) {
				s->conns[i] = s->conns[--s->nconns];
				break;
			}
		s->closed++;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		break;
	default:
		break;
	}
	return 0;
}

static int server_create(struct server *s)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	s->protocols[0].name = "http-only";
	s->protocols[0].callback = cb_http;
	s->protocols[1].name = "check";
	s->protocols[1].callback = cb_check;
	info.port = s->port;
	info.iface = "127.0.0.1";
	info.protocols = s->protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = s;
	s->context = libwebsocket_create_context(&info);
	return s->context ? 0 : -1;
}

/* one service step on the calling thread; waits up to `ms` */
static void server_step(struct server *s, int ms)
{
	if (s->extpoll) {
		int i, n = poll(s->fds, (nfds_t)s->nfds, ms);

		for (i = 0; n > 0 && i < s->nfds; i++) {
			struct pollfd p;

			if (!s->fds[i].revents)
				continue;
			p = s->fds[i];
			s->fds[i].revents = 0;
			libwebsocket_service_fd(s->context, &p);
		}
	} else {
		libwebsocket_service(s->context, ms);
	}
	pthread_mutex_lock(&lock);
	s->service_returns++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	int stop = 0;

	s->self = pthread_self();
	if (!s->context && server_create(s)) {
		pthread_mutex_lock(&lock);
		s->created = -1;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		return NULL;
	}
	pthread_mutex_lock(&lock);
	s->created = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	if (s->first_wait_ms >= 0)
		server_step(s, s->first_wait_ms);
	while (!stop) {
		/* long waits: only a wake-up from another thread ends them early */
		server_step(s, 20000);
		pthread_mutex_lock(&lock);
		stop = s->stop;
		pthread_mutex_unlock(&lock);
	}
	libwebsocket_context_destroy(s->context);
	s->context = NULL;
	return NULL;
}

static int server_start(struct server *s, int port, int extpoll)
{
	memset(s, 0, sizeof(*s));
	s->port = port;
	s->extpoll = extpoll;
	s->first_wait_ms = -1;
	if (pthread_create(&s->thread, NULL, server_main, s))
		return -1;
	pthread_mutex_lock(&lock);
	while (!s->created)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return s->created == 1 ? 0 : -1;
}

/* stops the service thread: the wake-up is requested under `lock`, which the
 * thread takes before it may destroy the context */
static void server_stop(struct server *s)
{
	pthread_mutex_lock(&lock);
	s->stop = 1;
	libwebsocket_callback_on_writable_all_protocol(&s->protocols[1]);
	pthread_mutex_unlock(&lock);
	pthread_join(s->thread, NULL);
}

/* waits until *counter >= want (under `lock`); 0 on success */
static int wait_count(unsigned long *counter, unsigned long want, long ms)
{
	long deadline = now_ms() + ms;
	int r = 0;

	pthread_mutex_lock(&lock);
	while (*counter < want) {
		struct timespec ts;
		long left = deadline - now_ms();

		if (left <= 0) {
			r = -1;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&cond, &lock, &ts);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static unsigned long read_count(unsigned long *counter)
{
	unsigned long v;

	pthread_mutex_lock(&lock);
	v = *counter;
	pthread_mutex_unlock(&lock);
	return v;
}

/* the newest connection of s, or NULL */
static struct libwebsocket *last_conn(struct server *s)
{
	struct libwebsocket *w;

	pthread_mutex_lock(&lock);
	w = s->nconns ? s->conns[s->nconns - 1] : NULL;
	pthread_mutex_unlock(&lock);
	return w;
}

/* ------------------------------------------------------ raw-socket clients */

/* connects and upgrades; returns the socket or -1 */
static int client_open(int port)
{
	static const char req[] =
		"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: check\r\n\r\n";
	struct sockaddr_in a;
	char head[2048];
	size_t got = 0;
	int fd, one = 1;
	long deadline = now_ms() + limit_ms(3000);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
		close(fd);
		return -1;
	}
	/* read the response head byte by byte: nothing after it is consumed */
	while (got < sizeof(head) - 1) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = deadline - now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) <= 0 || recv(fd, head + got, 1, 0) != 1)
			break;
		got++;
		if (got >= 4 && !memcmp(head + got - 4, "\r\n\r\n", 4)) {
			head[got] = '\0';
			if (!strncmp(head, "HTTP/1.1 101", 12))
				return fd;
			break;
		}
	}
	close(fd);
	return -1;
}

/* sends one masked text frame (payload < 126 bytes) */
static int client_send(int fd, const char *text)
{
	unsigned char f[2 + 4 + 125];
	size_t n = strlen(text), i;

	f[0] = 0x81;
	f[1] = (unsigned char)(0x80 | n);
	memcpy(f + 2, "\x12\x34\x56\x78", 4);
	for (i = 0; i < n; i++)
		f[6 + i] = (unsigned char)text[i] ^ f[2 + (i & 3)];
	return send(fd, f, 6 + n, MSG_NOSIGNAL) == (ssize_t)(6 + n) ? 0 : -1;
}

/* reads one small unmasked frame from the server within `ms`; returns its first
 * payload byte (or 0 for an empty one), -1 on timeout, -2 on close or error */
static int client_read(int fd, long ms)
{
	unsigned char h[2], p[125];
	long deadline = now_ms() + ms;
	size_t need = 2, got = 0, plen = 0;
	int stage = 0;

	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		long left = deadline - now_ms();
		ssize_t r;

		if (left <= 0)
			return -1;
		if (poll(&pf, 1, (int)left) <= 0)
			return -1;
		r = recv(fd, stage ? p + got : h + got, need - got, 0);
		if (r <= 0)
			return -2;
		got += (size_t)r;
		if (got < need)
			continue;
		if (!stage) {
			plen = h[1] & 0x7f;
			if (plen > 125 || (h[1] & 0x80))
				return -2;
			if (!plen)
				return 0;
			stage = 1;
			need = plen;
			got = 0;
			continue;
		}
		return p[0];
	}
}

/* ------------------------------------------------------------------ checks */

static const char *check_name;

/* callback_on_writable from this (non-service) thread wakes the loop at once */
static int check_wake(int extpoll)
{
	struct server s;
	struct libwebsocket *wsi;
	int fd = -1, ok = 1, i, r;
	long worst = 0;

	if (server_start(&s, base_port + (extpoll ? 1 : 0), extpoll)) {
		printf("FAIL %s: no server\n", check_name);
		failures++;
		return 0;
	}
	fd = client_open(s.port);
	if (fd < 0)
		FAIL("cannot connect");
	if (wait_count(&s.established, 1, limit_ms(3000)))
		FAIL("no ESTABLISHED");
	wsi = last_conn(&s);
	for (i = 0; i < 20; i++) {
		long t0 = now_ms(), dt;

		/* alternately with the context and with NULL */
		r = libwebsocket_callback_on_writable(i & 1 ? NULL : s.context, wsi);
		if (r != 1)
			FAIL("callback_on_writable from another thread returned %d, want 1", r);
		r = client_read(fd, limit_ms(2000));
		dt = now_ms() - t0;
		if (r != 'W')
			FAIL("request %d: no WRITEABLE within %ld ms (service timeout 20 s): %d", i,
			     limit_ms(2000), r);
		if (dt > worst)
			worst = dt;
	}
	if (read_count(&s.writeables) != 20)
		FAIL("%lu WRITEABLE callbacks for 20 requests", read_count(&s.writeables));
	/* the service thread itself may still ask */
	printf("  %s: slowest wake-up to WRITEABLE %ld ms\n", check_name, worst);
out:
	if (fd >= 0)
		close(fd);
	server_stop(&s);
	if (s.wrong_thread) {
		printf("FAIL %s: %lu callbacks on another thread\n", check_name, s.wrong_thread);
		failures++;
		ok = 0;
	}
	return ok;
}

/* all_protocol from another thread reaches only that protocol's context, and wakes a
 * loop that has no connection at all */
static int check_all_protocol(void)
{
	struct server a, b;
	int fa = -1, fb = -1, ok = 1, r;
	unsigned long before;

	if (server_start(&a, base_port + 2, 0) || server_start(&b, base_port + 3, 1)) {
		printf("FAIL %s: no servers\n", check_name);
		failures++;
		return 0;
	}
	/* no connection yet: the request still wakes the service call */
	sleep_ms(100);
	before = read_count(&a.service_returns);
	r = libwebsocket_callback_on_writable_all_protocol(&a.protocols[1]);
	if (r != 0)
		FAIL("all_protocol from another thread returned %d, want 0", r);
	if (wait_count(&a.service_returns, before + 1, limit_ms(2000)))
		FAIL("the request did not wake the service call (20 s timeout)");

	fa = client_open(a.port);
	fb = client_open(b.port);
	if (fa < 0 || fb < 0)
		FAIL("cannot connect");
	if (wait_count(&a.established, 1, limit_ms(3000)) ||
	    wait_count(&b.established, 1, limit_ms(3000)))
		FAIL("no ESTABLISHED");
	libwebsocket_callback_on_writable_all_protocol(&a.protocols[1]);
	if ((r = client_read(fa, limit_ms(2000))) != 'W')
		FAIL("context A: no WRITEABLE (%d)", r);
	if ((r = client_read(fb, 300)) != -1)
		FAIL("context B got something for A's protocol (%d)", r);
	libwebsocket_callback_on_writable_all_protocol(&b.protocols[1]);
	if ((r = client_read(fb, limit_ms(2000))) != 'W')
		FAIL("context B (external poll): no WRITEABLE (%d)", r);
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	server_stop(&a);
	server_stop(&b);
	if (a.wrong_thread || b.wrong_thread) {
		printf("FAIL %s: callbacks on another thread\n", check_name);
		failures++;
		ok = 0;
	}
	return ok;
}

/* rx_flow_control from another thread pauses and resumes receiving, in order with
 * the other requests */
static int check_rx_flow(void)
{
	struct server s;
	struct libwebsocket *wsi;
	int fd = -1, ok = 1, r;

	if (server_start(&s, base_port + 4, 0)) {
		printf("FAIL %s: no server\n", check_name);
		failures++;
		return 0;
	}
	fd = client_open(s.port);
	if (fd < 0 || wait_count(&s.established, 1, limit_ms(3000)))
		FAIL("no connection");
	wsi = last_conn(&s);
	if ((r = libwebsocket_rx_flow_control(wsi, 0)) != 0)
		FAIL("rx_flow_control(0) from another thread returned %d, want 0", r);
	/* requests are applied in order: once this WRITEABLE came, the pause is in force */
	libwebsocket_callback_on_writable(s.context, wsi);
	if (client_read(fd, limit_ms(2000)) != 'W')
		FAIL("no WRITEABLE after the pause request");
	if (client_send(fd, "hello"))
		FAIL("send");
	if (!wait_count(&s.receives, 1, 500))
		FAIL("RECEIVE while paused from another thread");
	if ((r = libwebsocket_rx_flow_control(wsi, 1)) != 0)
		FAIL("rx_flow_control(1) from another thread returned %d, want 0", r);
	if (wait_count(&s.receives, 5, limit_ms(2000)))
		FAIL("nothing received after resuming (%lu bytes)", read_count(&s.receives));
out:
	if (fd >= 0)
		close(fd);
	server_stop(&s);
	if (s.wrong_thread) {
		printf("FAIL %s: %lu callbacks on another thread\n", check_name, s.wrong_thread);
		failures++;
		ok = 0;
	}
	return ok;
}

/* a connection closed since is reported, never dereferenced as a live one: from other
 * threads and (the probe, from another connection's WRITEABLE) on the service thread;
 * under valgrind a read of freed memory would show as an invalid read */
static int check_closed(void)
{
	struct server s;
	struct libwebsocket *wsi, *keeper;
	int fd = -1, keep_fd = -1, ok = 1, r;

	if (server_start(&s, base_port + 5, 0)) {
		printf("FAIL %s: no server\n", check_name);
		failures++;
		return 0;
	}
	/* open while the other one closes, so that its entry stays vacant */
	keep_fd = client_open(s.port);
	if (keep_fd < 0 || wait_count(&s.established, 1, limit_ms(3000)))
		FAIL("no first connection");
	keeper = last_conn(&s);
	fd = client_open(s.port);
	if (fd < 0 || wait_count(&s.established, 2, limit_ms(3000)))
		FAIL("no connection");
	wsi = last_conn(&s);
	close(fd);
	fd = -1;
	if (wait_count(&s.closed, 1, limit_ms(3000)))
		FAIL("no CLOSED");
	sleep_ms(100); /* CLOSED has returned; the connection is gone */
	if ((r = libwebsocket_callback_on_writable(s.context, wsi)) != -1)
		FAIL("callback_on_writable on a closed connection returned %d, want -1", r);
	if ((r = libwebsocket_callback_on_writable(NULL, wsi)) != -1)
		FAIL("callback_on_writable(NULL, closed) returned %d, want -1", r);
	if ((r = libwebsocket_rx_flow_control(wsi, 0)) != -1)
		FAIL("rx_flow_control on a closed connection returned %d, want -1", r);
	if ((r = libwebsocket_callback_on_writable(s.context, NULL)) != -1)
		FAIL("callback_on_writable(ctx, NULL) returned %d, want -1", r);
	if ((r = libwebsocket_rx_flow_control((struct libwebsocket *)&r, 1)) != -1)
		FAIL("rx_flow_control on a pointer that never was a connection returned %d", r);
	pthread_mutex_lock(&lock);
	probe_wsi = wsi;
	pthread_mutex_unlock(&lock);
	if ((r = libwebsocket_callback_on_writable(s.context, keeper)) != 1)
		FAIL("callback_on_writable on the open connection returned %d, want 1", r);
	if (wait_count(&probe_done, 1, limit_ms(3000)))
		FAIL("the open connection got no WRITEABLE");
	pthread_mutex_lock(&lock);
	r = probe_write;
	pthread_mutex_unlock(&lock);
	if (r != -1)
		FAIL("libwebsocket_write on a closed connection (service thread) returned %d", r);
	pthread_mutex_lock(&lock);
	r = probe_writable;
	pthread_mutex_unlock(&lock);
	if (r != -1)
		FAIL("callback_on_writable on a closed connection (service thread) returned %d",
		     r);
	pthread_mutex_lock(&lock);
	r = probe_flow;
	pthread_mutex_unlock(&lock);
	if (r != -1)
		FAIL("rx_flow_control on a closed connection (service thread) returned %d", r);
out:
	if (fd >= 0)
		close(fd);
	if (keep_fd >= 0)
		close(keep_fd);
	server_stop(&s);
	return ok;
}

struct opener {
	pthread_t thread;
	int port;
	int fd;
};

static void *opener_main(void *arg)
{
	struct opener *o = arg;

	o->fd = client_open(o->port);
	return NULL;
}

/* the service thread is the one that last entered the service loop: after this
 * thread served the context and handed it to another thread, its calls are queued
 * for that thread */
static int check_handover(void)
{
	struct server s;
	struct libwebsocket *wsi;
	int fd = -1, ok = 1, r;
	unsigned long before;
	struct opener opener;
	long t0;

	memset(&s, 0, sizeof(s));
	s.port = base_port + 6;
	s.self = pthread_self();
	if (server_create(&s)) {
		printf("FAIL %s: no server\n", check_name);
		failures++;
		return 0;
	}
	/* the client connects from another thread while this one serves */
	opener.port = s.port;
	opener.fd = -1;
	if (pthread_create(&opener.thread, NULL, opener_main, &opener))
		FAIL("pthread_create");
	t0 = now_ms();
	while (!read_count(&s.established) && now_ms() - t0 < limit_ms(3000))
		server_step(&s, 50);
	pthread_join(opener.thread, NULL);
	fd = opener.fd;
	wsi = last_conn(&s);
	if (fd < 0)
		FAIL("cannot connect");
	if (!wsi)
		FAIL("no connection");
	/* on the service thread (between service calls): the direct path */
	if ((r = libwebsocket_callback_on_writable(s.context, wsi)) != 1)
		FAIL("on-thread callback_on_writable returned %d", r);
	server_step(&s, 0);
	if (client_read(fd, limit_ms(2000)) != 'W')
		FAIL("no WRITEABLE on this thread");
	/* hand over: a new thread serves; this one calls nothing on the context until
	 * the new one has been through a service call */
	s.created = 1;
	s.first_wait_ms = 0;
	before = read_count(&s.service_returns);
	if (pthread_create(&s.thread, NULL, server_main, &s))
		FAIL("pthread_create");
	if (wait_count(&s.service_returns, before + 1, limit_ms(3000)))
		FAIL("the new thread did not serve");
	if ((r = libwebsocket_callback_on_writable(s.context, wsi)) != 1)
		FAIL("callback_on_writable after the hand-over returned %d", r);
	if (client_read(fd, limit_ms(2000)) != 'W')
		FAIL("no WRITEABLE from the new service thread");
	server_stop(&s);
	s.context = NULL;
out:
	if (fd >= 0)
		close(fd);
	if (s.context) {
		libwebsocket_context_destroy(s.context);
		s.context = NULL;
	}
	if (s.wrong_thread) {
		printf("FAIL %s: %lu callbacks on another thread\n", check_name, s.wrong_thread);
		failures++;
		ok = 0;
	}
	return ok;
}

/* ------------------------------------------------------------------ stress */

struct stress {
	struct server *servers;
	int nservers;
	long until;
	int clients;			/* raw clients per churn thread */
	unsigned long calls, queued, refused, bad_returns, cycles;
};

/* opens clients, sends, reads what comes, closes; over and over */
static void *churn_main(void *arg)
{
	struct stress *st = arg;
	int fds[64], n = st->clients, i, k;
	unsigned long cycles = 0;
	unsigned int seed = (unsigned int)(size_t)&fds;

	for (i = 0; i < n; i++)
		fds[i] = -1;
	while (now_ms() < st->until) {
		for (i = 0; i < n; i++) {
			if (fds[i] >= 0 && (rand_r(&seed) & 3) == 0) {
				close(fds[i]);
				fds[i] = -1;
			}
			if (fds[i] < 0)
				fds[i] = client_open(st->servers[0].port);
			if (fds[i] >= 0)
				client_send(fds[i], "x");
		}
		/* drain what the server wrote (WRITEABLE answers 'W') */
		for (k = 0; k < 4; k++)
			for (i = 0; i < n; i++)
				if (fds[i] >= 0 && client_read(fds[i], 1) == -2) {
					close(fds[i]);
					fds[i] = -1;
				}
		cycles++;
	}
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_lock(&lock);
	st->cycles += cycles;
	pthread_mutex_unlock(&lock);
	return NULL;
}

/*
 * Calls the any-thread functions on connections that may be closing at the same
 * moment: half of the calls under `lock` (which CLOSED takes, so the connection is
 * live), half on a copy of the list taken earlier (it may have closed since; its
 * address may even belong to a newer connection by now).
 */
static void *hammer_main(void *arg)
{
	struct stress *st = arg;
	struct libwebsocket *copy[MAX_CONNS];
	unsigned long calls = 0, queued = 0, refused = 0, bad = 0;
	int ncopy, i, j, r, round = 0;

	while (now_ms() < st->until) {
		for (j = 0; j < st->nservers; j++) {
			struct server *s = &st->servers[j];

			pthread_mutex_lock(&lock);
			ncopy = s->nconns;
			memcpy(copy, s->conns, (size_t)ncopy * sizeof(copy[0]));
			if (round & 1) {
				for (i = 0; i < s->nconns; i++) {
					r = libwebsocket_callback_on_writable(s->context,
									      s->conns[i]);
					calls++;
					if (r == 1)
						queued++;
					else
						bad++; /* live under the lock: must be queued */
				}
			}
			pthread_mutex_unlock(&lock);
			sleep_ms(1);
			for (i = 0; i < ncopy; i++) {
				switch (i % 3) {
				case 0:
					r = libwebsocket_callback_on_writable(NULL, copy[i]);
					if (r != 1 && r != -1)
						bad++;
					break;
				case 1:
					/* pause and resume: applied in this order */
					r = libwebsocket_rx_flow_control(copy[i], 0);
					if (r == 0)
						r = libwebsocket_rx_flow_control(copy[i], 1);
					if (r != 0 && r != -1)
						bad++;
					r = r == 0 ? 1 : -1;
					break;
				default:
					r = libwebsocket_callback_on_writable_all_protocol(
						&s->protocols[1]);
					if (r != 0)
						bad++;
					r = 1;
					break;
				}
				calls++;
				if (r == 1)
					queued++;
				else
					refused++;
			}
		}
		round++;
	}
	pthread_mutex_lock(&lock);
	st->calls += calls;
	st->queued += queued;
	st->refused += refused;
	st->bad_returns += bad;
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* two contexts on one port (LWS_REUSEPORT=1), each on its own thread, under churn
 * and requests from two other threads */
static int check_stress(void)
{
	struct server sv[2];
	struct stress st;
	pthread_t churn[2], hammer[2];
	int ok = 1, i, started = 0;
	unsigned long est = 0, wrong = 0;

	memset(&st, 0, sizeof(st));
	memset(sv, 0, sizeof(sv));
	setenv("LWS_REUSEPORT", "1", 1);
	for (i = 0; i < 2; i++)
		if (server_start(&sv[i], base_port + 7, 0)) {
			printf("FAIL %s: server %d did not start\n", check_name, i);
			failures++;
			for (; i > 0; i--)
				server_stop(&sv[i - 1]);
			unsetenv("LWS_REUSEPORT");
			return 0;
		}
	unsetenv("LWS_REUSEPORT");
	st.servers = sv;
	st.nservers = 2;
	st.clients = slow ? 4 : 16;
	st.until = now_ms() + (slow ? 3000 : 3000);
	for (i = 0; i < 2; i++) {
		if (pthread_create(&churn[i], NULL, churn_main, &st) ||
		    pthread_create(&hammer[i], NULL, hammer_main, &st))
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(churn[i], NULL);
		pthread_join(hammer[i], NULL);
	}
	for (i = 0; i < 2; i++)
		server_stop(&sv[i]);
	for (i = 0; i < 2; i++) {
		est += sv[i].established;
		wrong += sv[i].wrong_thread;
	}
	printf("  %s: %lu connections (%lu + %lu), %lu client cycles, %lu calls: %lu queued, "
	       "%lu refused (closed), %lu WRITEABLE\n",
	       check_name, est, sv[0].established, sv[1].established, st.cycles, st.calls,
	       st.queued, st.refused, sv[0].writeables + sv[1].writeables);
	if (started != 2)
		FAIL("threads did not start");
	if (wrong)
		FAIL("%lu callbacks on another thread", wrong);
	if (st.bad_returns)
		FAIL("%lu calls returned an unexpected value", st.bad_returns);
	if (!sv[0].established || !sv[1].established)
		FAIL("SO_REUSEPORT: one context got no connection (%lu, %lu)", sv[0].established,
		     sv[1].established);
	if (!st.queued || !sv[0].writeables || !sv[1].writeables)
		FAIL("no request went through");
out:
	return ok;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	static const char *all[] = { "wake", "wake_extpoll", "all_protocol", "rx_flow",
				     "closed", "handover", "stress" };
	const char *want[16];
	int nwant = 0, i, passed = 0;

	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR, NULL);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--slow"))
			slow = 1;
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			base_port = atoi(argv[++i]);
		else if (nwant < 16)
			want[nwant++] = argv[i];
	}
	if (!nwant)
		for (i = 0; i < (int)(sizeof(all) / sizeof(all[0])); i++)
			want[nwant++] = all[i];
	for (i = 0; i < nwant; i++) {
		int ok;

		check_name = want[i];
		if (!strcmp(want[i], "wake"))
			ok = check_wake(0);
		else if (!strcmp(want[i], "wake_extpoll"))
			ok = check_wake(1);
		else if (!strcmp(want[i], "all_protocol"))
			ok = check_all_protocol();
		else if (!strcmp(want[i], "rx_flow"))
			ok = check_rx_flow();
		else if (!strcmp(want[i], "closed"))
			ok = check_closed();
		else if (!strcmp(want[i], "handover"))
			ok = check_handover();
		else if (!strcmp(want[i], "stress"))
			ok = check_stress();
		else {
			printf("FAIL %s: no such check\n", want[i]);
			failures++;
			continue;
		}
		if (ok) {
			printf("PASS %s\n", want[i]);
			passed++;
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failures);
	return failures ? 1 : 0;
}
