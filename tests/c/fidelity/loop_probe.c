/*
 * loop_probe: a v1.23-style application that logs what the library does on the
 * loop, poll and close path, one event per line on stdout, for tests/fidelity_loop.rs.
 *
 *   loop_probe server ext|int PORT   serve on 127.0.0.1:PORT until a peer sends "destroy"
 *   loop_probe client ext|int PORT   connect to ws://127.0.0.1:PORT/ before any service
 *                                    call, send "hello" from the first CLIENT_WRITEABLE
 *   loop_probe eintr                 libwebsocket_service interrupted by a signal;
 *                                    libwebsocket_service(NULL, 0)
 *
 * "ext" runs the application's own poll() loop, built only from the ADD / DEL /
 * SET_MODE / CLEAR_MODE callbacks, and calls libwebsocket_service_fd only for
 * descriptors poll() reported (never with NULL). "int" calls libwebsocket_service.
 *
 * Lines: "EV <what> key=value ...". Every run is bounded (20 s server, 10 s client).
 */

#include <libwebsockets.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define MAX_FDS 64

static struct pollfd fds[MAX_FDS];
static int nfds;
static int ext_loop;
static int creating;
static int stop;
static int client_done;
static int client_wrote;
static struct libwebsocket_context *ctx;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int slot_of(int fd)
{
	int i;

	for (i = 0; i < nfds; i++)
		if (fds[i].fd == fd)
			return i;
	return -1;
}

static const char *proto_of(struct libwebsocket *wsi)
{
	const struct libwebsocket_protocols *p;

	if (!wsi)
		return "-";
	p = libwebsockets_get_protocol(wsi);
	if (!p)
		return "null";
	return p->name ? p->name : "noname";
}

/* The POLL_FD callbacks: log them and keep the application's own poll table. */
static void poll_fd(struct libwebsocket_context *context, struct libwebsocket *wsi,
		    enum libwebsocket_callback_reasons reason, void *in, size_t len)
{
	int fd = (int)(long)in;
	int s = slot_of(fd);
	const char *what = reason == LWS_CALLBACK_ADD_POLL_FD ? "ADD" :
			   reason == LWS_CALLBACK_DEL_POLL_FD ? "DEL" :
			   reason == LWS_CALLBACK_SET_MODE_POLL_FD ? "SET" : "CLEAR";

	printf("EV %s fd=%d ev=%d wsi=%s getfd=%d proto=%s\n", what, fd, (int)len,
	       wsi ? "set" : "null", wsi ? libwebsocket_get_socket_fd(wsi) : -1,
	       proto_of(wsi));

	if (reason == LWS_CALLBACK_ADD_POLL_FD && creating && wsi) {
		/* the listener's own wsi: what the query functions make of it */
		unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 8 + LWS_SEND_BUFFER_POST_PADDING];
		char hdr[32];

		memset(buf, 'x', sizeof(buf));
		memset(hdr, 0, sizeof(hdr));
		printf("EV LISTENER write=%d on_writable=%d hdr_len=%d hdr_copy=%d "
		       "final=%d binary=%d remaining=%d choked=%d flow=%d\n",
		       libwebsocket_write(wsi, &buf[LWS_SEND_BUFFER_PRE_PADDING], 1,
					  LWS_WRITE_TEXT),
		       libwebsocket_callback_on_writable(context, wsi),
		       /* set PROBE_NO_LISTENER_HDR when comparing with the original
			* v1.23 library: it dereferenced the listener's absent header table */
		       getenv("PROBE_NO_LISTENER_HDR") ? 0 :
				lws_hdr_total_length(wsi, WSI_TOKEN_HOST),
		       getenv("PROBE_NO_LISTENER_HDR") ? -1 :
				lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HOST),
		       libwebsocket_is_final_fragment(wsi), lws_frame_is_binary(wsi),
		       (int)libwebsockets_remaining_packet_payload(wsi),
		       lws_send_pipe_choked(wsi), libwebsocket_rx_flow_control(wsi, 0));
	}

	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
		if (s < 0 && nfds < MAX_FDS) {
			fds[nfds].fd = fd;
			fds[nfds].events = (short)len;
			fds[nfds++].revents = 0;
		} else if (s >= 0) {
			fds[s].events = (short)len;
		}
		break;
	case LWS_CALLBACK_DEL_POLL_FD:
		if (s >= 0)
			fds[s] = fds[--nfds];
		break;
	case LWS_CALLBACK_SET_MODE_POLL_FD:
		if (s >= 0)
			fds[s].events |= (short)len;
		break;
	default:
		if (s >= 0)
			fds[s].events &= (short)~len;
		break;
	}
}

static int swrite(struct libwebsocket *wsi, const char *txt)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 64 + LWS_SEND_BUFFER_POST_PADDING];
	size_t n = strlen(txt);

	memcpy(&buf[LWS_SEND_BUFFER_PRE_PADDING], txt, n);
	return libwebsocket_write(wsi, &buf[LWS_SEND_BUFFER_PRE_PADDING], n, LWS_WRITE_TEXT);
}

static void log_text(const char *what, struct libwebsocket *wsi, void *in, size_t len)
{
	printf("EV %s fd=%d text=%.*s\n", what, libwebsocket_get_socket_fd(wsi),
	       (int)(len > 200 ? 200 : len), (const char *)in);
}

static int server_cb(struct libwebsocket_context *context, struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	char name[128], rip[128], hdr[128];
	int n;

	(void)context;
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
	case LWS_CALLBACK_DEL_POLL_FD:
	case LWS_CALLBACK_SET_MODE_POLL_FD:
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		poll_fd(context, wsi, reason, in, len);
		break;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		strcpy(name, "unset");
		strcpy(rip, "unset");
		libwebsockets_get_peer_addresses(context, wsi, (int)(long)in, name,
						 sizeof(name), rip, sizeof(rip));
		printf("EV FILTER_NETWORK wsi=%s getfd=%d accepted=%d name='%s' rip='%s'\n",
		       wsi ? "set" : "null", wsi ? libwebsocket_get_socket_fd(wsi) : -1,
		       (int)(long)in, name, rip);
		break;
	case LWS_CALLBACK_HTTP:
		printf("EV HTTP fd=%d uri=%s\n", libwebsocket_get_socket_fd(wsi),
		       (const char *)in);
		{
			static const char resp[] =
				"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
				"Content-Length: 2\r\n\r\nok";
			unsigned char b[LWS_SEND_BUFFER_PRE_PADDING + sizeof(resp)];

			memcpy(&b[LWS_SEND_BUFFER_PRE_PADDING], resp, sizeof(resp) - 1);
			libwebsocket_write(wsi, &b[LWS_SEND_BUFFER_PRE_PADDING],
					   sizeof(resp) - 1, LWS_WRITE_HTTP);
		}
		return -1;
	case LWS_CALLBACK_CLOSED_HTTP:
		printf("EV CLOSED_HTTP fd=%d\n", libwebsocket_get_socket_fd(wsi));
		break;
	case LWS_CALLBACK_ESTABLISHED:
		printf("EV ESTABLISHED fd=%d\n", libwebsocket_get_socket_fd(wsi));
		memset(hdr, 0, sizeof(hdr));
		n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_ORIGIN);
		printf("EV HDR origin ret=%d total=%d value='%s'\n", n,
		       lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN), n >= 0 ? hdr : "");
		strcpy(hdr, "untouched");
		n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_DRAFT);
		printf("EV HDR absent ret=%d total=%d value='%s'\n", n,
		       lws_hdr_total_length(wsi, WSI_TOKEN_DRAFT), hdr);
		printf("EV ON_WRITABLE ret=%d\n", libwebsocket_callback_on_writable(context, wsi));
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		printf("EV SERVER_WRITEABLE fd=%d\n", libwebsocket_get_socket_fd(wsi));
		swrite(wsi, "hi");
		break;
	case LWS_CALLBACK_RECEIVE:
		log_text("RECEIVE", wsi, in, len);
		if (len == 3 && !memcmp(in, "die", 3))
			return -1;
		if (len == 7 && !memcmp(in, "destroy", 7))
			stop = 1;
		break;
	case LWS_CALLBACK_CLOSED:
		printf("EV CLOSED fd=%d\n", libwebsocket_get_socket_fd(wsi));
		break;
	case LWS_CALLBACK_PROTOCOL_DESTROY:
		printf("EV PROTOCOL_DESTROY\n");
		break;
	default:
		break;
	}
	fflush(stdout);
	return 0;
}

static int client_cb(struct libwebsocket_context *context, struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	(void)context;
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
	case LWS_CALLBACK_DEL_POLL_FD:
	case LWS_CALLBACK_SET_MODE_POLL_FD:
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		poll_fd(context, wsi, reason, in, len);
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		printf("EV CLIENT_ESTABLISHED fd=%d\n", libwebsocket_get_socket_fd(wsi));
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		printf("EV CLIENT_WRITEABLE fd=%d\n", libwebsocket_get_socket_fd(wsi));
		if (!client_wrote) {
			client_wrote = 1;
			printf("EV WROTE ret=%d\n", swrite(wsi, "hello"));
		}
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		log_text("CLIENT_RECEIVE", wsi, in, len);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		printf("EV CLIENT_CONNECTION_ERROR\n");
		client_done = 1;
		break;
	case LWS_CALLBACK_CLOSED:
		printf("EV CLOSED fd=%d\n", libwebsocket_get_socket_fd(wsi));
		client_done = 1;
		break;
	default:
		break;
	}
	fflush(stdout);
	return 0;
}

static struct libwebsocket_protocols server_protocols[] = {
	{ "probe", server_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct libwebsocket_protocols client_protocols[] = {
	{ "probe", client_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* One turn of the loop; -1 when the library asks the loop to end. */
static int turn(void)
{
	int i, n;

	if (!ext_loop)
		return libwebsocket_service(ctx, 50) < 0 ? -1 : 0;
	n = poll(fds, (nfds_t)nfds, 50);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (i = nfds - 1; n > 0 && i >= 0; i--) {
		if (i >= nfds || !fds[i].revents)
			continue;
		if (libwebsocket_service_fd(ctx, &fds[i]) < 0)
			return -1;
		if (i < nfds)
			fds[i].revents = 0;
	}
	return 0;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static int run_eintr(void)
{
	struct lws_context_creation_info info;
	struct sigaction sa;
	struct itimerval it;
	long long t0;
	int r;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	info.gid = -1;
	info.uid = -1;
	ctx = libwebsocket_create_context(&info);
	if (!ctx)
		return 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;	/* poll()/epoll_wait() are interrupted anyway */
	sigaction(SIGALRM, &sa, NULL);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_usec = 200 * 1000;
	setitimer(ITIMER_REAL, &it, NULL);

	t0 = now_ms();
	r = libwebsocket_service(ctx, 3000);
	printf("EV SERVICE_EINTR ret=%d ms=%lld\n", r, now_ms() - t0);
	printf("EV SERVICE_NULL ret=%d\n", libwebsocket_service(NULL, 0));
	fflush(stdout);
	libwebsocket_context_destroy(ctx);
	return 0;
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct libwebsocket *wsi;
	long long deadline;
	int server;

	setvbuf(stdout, NULL, _IOLBF, 0);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	if (argc == 2 && !strcmp(argv[1], "eintr"))
		return run_eintr();
	if (argc != 4 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr, "usage: %s server|client ext|int PORT | eintr\n", argv[0]);
		return 2;
	}
	server = !strcmp(argv[1], "server");
	ext_loop = !strcmp(argv[2], "ext");

	memset(&info, 0, sizeof(info));
	info.port = server ? atoi(argv[3]) : CONTEXT_PORT_NO_LISTEN;
	info.iface = NULL; /* dual-stack here: peers on 127.0.0.1 arrive IPv4-mapped */
	info.protocols = server ? server_protocols : client_protocols;
	info.gid = -1;
	info.uid = -1;
	creating = 1;
	ctx = libwebsocket_create_context(&info);
	creating = 0;
	if (!ctx) {
		printf("EV CREATE_FAILED\n");
		return 1;
	}

	if (server) {
		printf("EV READY\n");
		deadline = now_ms() + 20000;
		while (!stop && now_ms() < deadline)
			if (turn() < 0)
				break;
	} else {
		wsi = libwebsocket_client_connect(ctx, "127.0.0.1", atoi(argv[3]), 0, "/",
						  "127.0.0.1", "127.0.0.1", "probe", -1);
		printf("EV CONNECT wsi=%s\n", wsi ? "set" : "null");
		deadline = now_ms() + 10000;
		while (!client_done && now_ms() < deadline)
			if (turn() < 0)
				break;
		printf("EV LOOP_END done=%d\n", client_done);
	}
	printf("EV DESTROYING\n");
	libwebsocket_context_destroy(ctx);
	printf("EV DESTROYED\n");
	return 0;
}
