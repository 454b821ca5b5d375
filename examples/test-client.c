/*
 * test-client: a client for the two demo protocols of examples/test-server.c,
 * written for the libwebsockets v1.23 API.
 *
 * Two connections share one client-only context:
 *
 *   "dumb-increment-protocol"  the server sends a counter about every 50 ms;
 *                              each value is printed as "counter: N".
 *   "lws-mirror-protocol"      every --interval ms a random circle drawing
 *                              command ("c #RRGGBB x y r;") is sent; whatever
 *                              the server mirrors back is printed as
 *                              "mirror echo K: TEXT".
 *
 * Usage: test-client [--port N] [--ssl | --ssl-verify [--ca FILE]] [--count N]
 *                    [--timeout S] [--interval MS] [--debug LEVEL]
 *                    <server address>
 *
 * --ssl connects with TLS accepting any server certificate (ssl_connection 2,
 * "allow self-signed"); --ssl-verify (ssl_connection 1) verifies the server's
 * certificate chain against the system roots plus the --ca file, and that it
 * is valid for <server address>.
 *
 * Exit status: 0 when --count echoes arrived (or, without --count, when the
 * run ends by SIGINT, --timeout or the server closing), 1 on any failure.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

enum {
	PROTO_DUMB_INCREMENT,
	PROTO_MIRROR,
	PROTO_COUNT
};

#define MSG_MAX 4096

/* one complete-message assembler per connection */
struct assembler {
	char data[MSG_MAX + 1];
	size_t len;
	int overflow;
};

static volatile sig_atomic_t interrupted;
static struct libwebsocket *wsi_dumb;
static struct libwebsocket *wsi_mirror;
static int dumb_up, mirror_up;
static int failed;		/* a connection could not be made */
static int ended;		/* a connection ended */
static long echoes;		/* mirror messages received */
static long counters;		/* counter values received */
static long sent;		/* drawing commands sent */
static long want_echoes;	/* --count, 0 = no limit */
static struct assembler rx_dumb, rx_mirror;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Adds one RECEIVE chunk; returns 1 when it completed a message (then the text
 * is NUL-terminated in a->data and a->len is its length).
 */
static int assemble(struct assembler *a, struct libwebsocket *wsi, const void *in, size_t len)
{
	if (a->len + len > MSG_MAX) {
		a->overflow = 1;
	} else if (len) {
		memcpy(a->data + a->len, in, len);
		a->len += len;
	}
	if (libwebsockets_remaining_packet_payload(wsi) || !libwebsocket_is_final_fragment(wsi))
		return 0;
	a->data[a->len] = '\0';
	return 1;
}

static void reset(struct assembler *a)
{
	a->len = 0;
	a->overflow = 0;
}

static const char *which(struct libwebsocket *wsi)
{
	if (wsi && wsi == wsi_dumb)
		return "dumb-increment";
	if (wsi && wsi == wsi_mirror)
		return "mirror";
	return "unknown";
}

/* connection failures arrive here, at protocols[0], before any protocol is chosen */
static void connection_error(struct libwebsocket *wsi)
{
	fprintf(stderr, "test-client: %s connection failed\n", which(wsi));
	if (wsi == wsi_dumb)
		wsi_dumb = NULL;
	if (wsi == wsi_mirror)
		wsi_mirror = NULL;
	failed = 1;
}

static int callback_dumb_increment(struct libwebsocket_context *context,
				   struct libwebsocket *wsi,
				   enum libwebsocket_callback_reasons reason,
				   void *user, void *in, size_t len)
{
	(void)context;
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		connection_error(wsi);
		break;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		fprintf(stderr, "test-client: dumb-increment connection established\n");
		dumb_up = 1;
		reset(&rx_dumb);
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!assemble(&rx_dumb, wsi, in, len))
			break;
		if (rx_dumb.overflow)
			fprintf(stderr, "test-client: oversized counter message ignored\n");
		else {
			printf("counter: %s\n", rx_dumb.data);
			counters++;
		}
		reset(&rx_dumb);
		break;

	case LWS_CALLBACK_CLOSED:
		fprintf(stderr, "test-client: dumb-increment connection closed\n");
		if (wsi == wsi_dumb)
			wsi_dumb = NULL;
		dumb_up = 0;
		ended = 1;
		break;

	default:
		break;
	}
	return 0;
}

static int callback_lws_mirror(struct libwebsocket_context *context,
			       struct libwebsocket *wsi,
			       enum libwebsocket_callback_reasons reason,
			       void *user, void *in, size_t len)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 128 + LWS_SEND_BUFFER_POST_PADDING];
	char *text = (char *)buf + LWS_SEND_BUFFER_PRE_PADDING;
	int n;

	(void)context;
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		/* only if the library already chose this protocol */
		connection_error(wsi);
		break;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		fprintf(stderr, "test-client: mirror connection established\n");
		mirror_up = 1;
		reset(&rx_mirror);
		break;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		n = snprintf(text, 128, "c #%06X %d %d %d;",
			     (unsigned int)(random() & 0xffffff),
			     (int)(random() % 500), (int)(random() % 250),
			     (int)(random() % 24));
		if (libwebsocket_write(wsi, (unsigned char *)text, (size_t)n, LWS_WRITE_TEXT) < n) {
			fprintf(stderr, "test-client: mirror write failed\n");
			return -1;
		}
		sent++;
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!assemble(&rx_mirror, wsi, in, len))
			break;
		if (rx_mirror.overflow) {
			fprintf(stderr, "test-client: oversized mirror message ignored\n");
		} else {
			echoes++;
			printf("mirror echo %ld: %s\n", echoes, rx_mirror.data);
		}
		reset(&rx_mirror);
		break;

	case LWS_CALLBACK_CLOSED:
		fprintf(stderr, "test-client: mirror connection closed\n");
		if (wsi == wsi_mirror)
			wsi_mirror = NULL;
		mirror_up = 0;
		ended = 1;
		break;

	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	[PROTO_DUMB_INCREMENT] = {
		"dumb-increment-protocol", callback_dumb_increment, 0, 128, 0, NULL, 0
	},
	[PROTO_MIRROR] = {
		"lws-mirror-protocol", callback_lws_mirror, 0, 4096, 0, NULL, 0
	},
	[PROTO_COUNT] = { NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"Usage: %s [--port N] [--ssl | --ssl-verify [--ca FILE]] [--count N]\n"
		"          [--timeout S] [--interval MS] [--debug LEVEL] <server address>\n",
		prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "ssl", no_argument, NULL, 's' },
		{ "ssl-verify", no_argument, NULL, 'v' },
		{ "ca", required_argument, NULL, 'A' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "interval", required_argument, NULL, 'i' },
		{ "debug", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	struct sigaction sa;
	const char *address;
	const char *ca_path = NULL;
	long long start, last_send = 0;
	long timeout_s = 0, interval_ms = 50;
	int port = 7681, use_ssl = 0, c, status;

	while ((c = getopt_long(argc, argv, "p:sn:t:i:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			port = atoi(optarg);
			break;
		case 's':
			if (use_ssl == 1) {
				fprintf(stderr, "test-client: --ssl and --ssl-verify exclude each other\n");
				return 1;
			}
			use_ssl = 2;	/* allow self-signed */
			break;
		case 'v':
			if (use_ssl == 2) {
				fprintf(stderr, "test-client: --ssl and --ssl-verify exclude each other\n");
				return 1;
			}
			use_ssl = 1;	/* verify the chain and the name */
			break;
		case 'A':
			ca_path = optarg;
			break;
		case 'n':
			want_echoes = atol(optarg);
			break;
		case 't':
			timeout_s = atol(optarg);
			break;
		case 'i':
			interval_ms = atol(optarg);
			if (interval_ms < 1)
				interval_ms = 1;
			break;
		case 'd':
			lws_set_log_level(atoi(optarg), NULL);
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 1;
		}
	}
	if (optind != argc - 1 || port <= 0 || port > 65535) {
		usage(argv[0]);
		return 1;
	}
	address = argv[optind];
	if (ca_path && use_ssl != 1) {
		fprintf(stderr, "test-client: --ca is only used with --ssl-verify\n");
		return 1;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned int)(time(NULL) ^ getpid()));

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
#ifndef LWS_NO_EXTENSIONS
	info.extensions = libwebsocket_get_internal_extensions();
#endif
	info.gid = -1;
	info.uid = -1;
	/* the client's trust anchors, beside the system's, for ssl_connection 1 */
	info.ssl_ca_filepath = ca_path;

	context = libwebsocket_create_context(&info);
	if (!context) {
		fprintf(stderr, "test-client: creating the context failed\n");
		return 1;
	}

	wsi_dumb = libwebsocket_client_connect(context, address, port, use_ssl, "/", address,
					       address, protocols[PROTO_DUMB_INCREMENT].name, -1);
	wsi_mirror = libwebsocket_client_connect(context, address, port, use_ssl, "/", address,
						 address, protocols[PROTO_MIRROR].name, -1);
	if (!wsi_dumb || !wsi_mirror) {
		fprintf(stderr, "test-client: libwebsocket_client_connect failed\n");
		libwebsocket_context_destroy(context);
		return 1;
	}
	fprintf(stderr, "test-client: connecting to %s:%d%s\n", address, port,
		use_ssl == 1 ? " (TLS, verifying the server)" :
		use_ssl == 2 ? " (TLS, any server certificate)" : "");

	start = now_ms();
	while (!interrupted && !failed && !ended) {
		long long t = now_ms();

		if (want_echoes && echoes >= want_echoes)
			break;
		if (timeout_s && t - start >= timeout_s * 1000) {
			fprintf(stderr, "test-client: %lds timeout\n", timeout_s);
			break;
		}
		if (mirror_up && wsi_mirror && t - last_send >= interval_ms) {
			last_send = t;
			libwebsocket_callback_on_writable(context, wsi_mirror);
		}
		/* -1 also when a signal interrupted the wait (as in v1.23) */
		if (libwebsocket_service(context, 10) < 0 && !interrupted) {
			fprintf(stderr, "test-client: libwebsocket_service failed\n");
			failed = 1;
		}
	}

	status = 0;
	if (failed)
		status = 1;
	else if (want_echoes && echoes < want_echoes)
		status = 1;
	fprintf(stderr, "test-client: %ld counter values, %ld drawings sent, %ld mirror echoes; "
		"exit %d\n", counters, sent, echoes, status);

	libwebsocket_context_destroy(context);
	return status;
}
