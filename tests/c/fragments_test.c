/*
 * fragments_test.c - fragmented messages sent and received the way v1.23
 * applications do it (the pattern of the original's test-fraggle: one fragment
 * per WRITEABLE callback, message ends found with libwebsocket_is_final_fragment).
 *
 * Each side sends NMSG messages, one fragment per WRITEABLE callback: the first
 * with LWS_WRITE_BINARY | LWS_WRITE_NO_FIN, the others with
 * LWS_WRITE_CONTINUATION (| LWS_WRITE_NO_FIN but the last), sizes from 0 to 8000
 * bytes (bigger than the default rx_buffer_size of 4096; some empty). Each message
 * is followed by a 12-byte binary trailer: byte sum, length and fragment count,
 * big-endian. The receiver ends a message where libwebsocket_is_final_fragment()
 * says so -- by itself, as test-fraggle did -- and compares with the trailer. At
 * every RECEIVE it also checks that:
 *  - is_final_fragment() is only true with libwebsockets_remaining_packet_payload()
 *    at 0;
 *  - a piece with more of its frame to come fills rx_buffer_size exactly;
 *  - with deflate-frame negotiated, each frame comes in one piece (as in v1.23).
 * libwebsocket_write must return the length for every data fragment (0 for the
 * empty ones). After its messages a side sends the text "done"; the server closes
 * the connection once it has sent and received "done".
 *
 * Usage:
 *   fragments_test                       self-test: server and client in this
 *                                        process over 127.0.0.1, with several
 *                                        extension sets
 *   fragments_test server PORT EXTS NMSG server for one connection (a test peer)
 *   fragments_test client PORT EXTS NMSG client of ws://127.0.0.1:PORT/
 * EXTS: none | internal | pmd | dframe. Exit status 0 when every check passed.
 */
#include <libwebsockets.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PROTO_NAME "fraggle-check"
#define MAX_FRAGS 32
#define MAX_FRAG 8000
#define TRAILER 12
#define SERVER_RX_BUFFER 3000
#define DEFAULT_RX_BUFFER 4096

static int failures;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			failures++;                                             \
			fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__,          \
				__LINE__, #cond);                               \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

enum send_phase { SEND_FRAGMENTS, SEND_TRAILER, SEND_DONE, SENT_DONE };

struct session {
	/* sending */
	enum send_phase phase;
	int msg;
	int frag;
	int nfrag;
	unsigned int sizes[MAX_FRAGS];
	unsigned long tx_sum;
	unsigned long tx_total;
	unsigned int rng;
	/* receiving */
	int in_trailer;
	int rx_msgs;
	int rx_pieces;
	unsigned long rx_sum;
	unsigned long rx_total;
	int peer_done;
};

/* What one side of the run expects and reports. */
struct side {
	const char *name;
	int nmsg;
	size_t rx_chunk;	/* the protocol's rx_buffer_size (or 4096) */
	int whole_frames;	/* deflate-frame negotiated: a frame per RECEIVE */
	int established;
	int closed;
	int sent_msgs;
	int sent_done;
	int rx_msgs;
	int rx_done;
};

static struct side server_side, client_side;

static unsigned int next_rand(unsigned int *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) & 0xffffff;
}

/* The fragment sizes of message `m`: the first four are fixed corner cases. */
static void plan_message(struct session *ss)
{
	static const unsigned int fixed[4][5] = {
		{1, MAX_FRAG},			/* one frame, bigger than the rx buffer */
		{2, 100, 5000},			/* last fragment bigger than the rx buffer */
		{2, 3000, 0},			/* empty final fragment */
		{4, 0, 4096, 4097, 1},		/* empty first, rx buffer size, one more */
	};
	int i;

	if (ss->msg < 4) {
		ss->nfrag = (int)fixed[ss->msg][0];
		for (i = 0; i < ss->nfrag; i++)
			ss->sizes[i] = fixed[ss->msg][i + 1];
	} else {
		ss->nfrag = 1 + (int)(next_rand(&ss->rng) % 24);
		for (i = 0; i < ss->nfrag; i++)
			ss->sizes[i] = next_rand(&ss->rng) % (MAX_FRAG + 1);
	}
	ss->frag = 0;
	ss->tx_sum = 0;
	ss->tx_total = 0;
}

static void put32(unsigned char *p, unsigned long v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static unsigned long get32(const unsigned char *p)
{
	return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) |
	       ((unsigned long)p[2] << 8) | (unsigned long)p[3];
}

/* One WRITEABLE: one fragment, a trailer or "done". -1 closes. */
static int on_writeable(struct libwebsocket_context *context,
			struct libwebsocket *wsi, struct side *sd,
			struct session *ss)
{
	static unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + MAX_FRAG +
				 LWS_SEND_BUFFER_POST_PADDING];
	unsigned char *p = buf + LWS_SEND_BUFFER_PRE_PADDING;
	unsigned int size, i;
	int mode, n;

	switch (ss->phase) {
	case SEND_FRAGMENTS:
		if (!ss->frag)
			plan_message(ss);
		size = ss->sizes[ss->frag];
		if (size)
			libwebsockets_get_random(context, p, size);
		for (i = 0; i < size; i++)
			ss->tx_sum += p[i];
		ss->tx_total += size;
		mode = ss->frag ? LWS_WRITE_CONTINUATION : LWS_WRITE_BINARY;
		if (ss->frag + 1 < ss->nfrag)
			mode |= LWS_WRITE_NO_FIN;
		n = libwebsocket_write(wsi, p, size,
				       (enum libwebsocket_write_protocol)mode);
		CHECK(n == (int)size, "%s: write of fragment %d/%d (%u bytes, mode 0x%x) "
		      "returned %d", sd->name, ss->frag + 1, ss->nfrag, size, mode, n);
		if (n < 0)
			return -1;
		if (++ss->frag == ss->nfrag)
			ss->phase = SEND_TRAILER;
		break;

	case SEND_TRAILER:
		put32(p, ss->tx_sum);
		put32(p + 4, ss->tx_total);
		put32(p + 8, (unsigned long)ss->nfrag);
		n = libwebsocket_write(wsi, p, TRAILER, LWS_WRITE_BINARY);
		CHECK(n == TRAILER, "%s: trailer write returned %d", sd->name, n);
		if (n < 0)
			return -1;
		ss->frag = 0;
		sd->sent_msgs = ++ss->msg;
		ss->phase = ss->msg < sd->nmsg ? SEND_FRAGMENTS : SEND_DONE;
		break;

	case SEND_DONE:
		memcpy(p, "done", 4);
		n = libwebsocket_write(wsi, p, 4, LWS_WRITE_TEXT);
		CHECK(n == 4, "%s: write of \"done\" returned %d", sd->name, n);
		ss->phase = SENT_DONE;
		sd->sent_done = 1;
		if (sd == &server_side && ss->peer_done)
			break; /* one more WRITEABLE, which closes */
		return 0;

	case SENT_DONE:
		/* the server closes once both sides are done */
		return sd == &server_side && ss->peer_done ? -1 : 0;
	}
	libwebsocket_callback_on_writable(context, wsi);
	return 0;
}

static void on_receive(struct libwebsocket_context *context,
		       struct libwebsocket *wsi, struct side *sd,
		       struct session *ss, const unsigned char *in, size_t len)
{
	int final = libwebsocket_is_final_fragment(wsi);
	size_t rem = libwebsockets_remaining_packet_payload(wsi);
	size_t i;

	CHECK(!final || rem == 0,
	      "%s: is_final_fragment with %lu bytes of the frame still to come",
	      sd->name, (unsigned long)rem);
	CHECK(!sd->whole_frames || rem == 0,
	      "%s: deflate-frame frame delivered in pieces (%lu bytes to come)",
	      sd->name, (unsigned long)rem);
	CHECK(sd->whole_frames || rem == 0 || len == sd->rx_chunk,
	      "%s: piece of %lu bytes with %lu to come (rx buffer %lu)", sd->name,
	      (unsigned long)len, (unsigned long)rem, (unsigned long)sd->rx_chunk);
	CHECK(sd->whole_frames || len <= sd->rx_chunk,
	      "%s: piece of %lu bytes, rx buffer %lu", sd->name,
	      (unsigned long)len, (unsigned long)sd->rx_chunk);

	if (ss->in_trailer) {
		CHECK(len == TRAILER && final,
		      "%s: message %d: trailer of %lu bytes, final %d", sd->name,
		      ss->rx_msgs + 1, (unsigned long)len, final);
		if (len == TRAILER) {
			unsigned long sum = get32(in), total = get32(in + 4);
			int nfrag = (int)get32(in + 8);

			CHECK(sum == (ss->rx_sum & 0xffffffffUL) &&
				      total == ss->rx_total,
			      "%s: message %d: received %lu bytes sum 0x%lX, "
			      "peer sent %lu bytes sum 0x%lX", sd->name,
			      ss->rx_msgs + 1, ss->rx_total,
			      ss->rx_sum & 0xffffffffUL, total, sum);
			CHECK(!sd->whole_frames || ss->rx_pieces == nfrag,
			      "%s: message %d: %d RECEIVE calls for %d frames",
			      sd->name, ss->rx_msgs + 1, ss->rx_pieces, nfrag);
		}
		ss->in_trailer = 0;
		ss->rx_sum = 0;
		ss->rx_total = 0;
		ss->rx_pieces = 0;
		sd->rx_msgs = ++ss->rx_msgs;
		return;
	}
	if (!ss->rx_pieces && !lws_frame_is_binary(wsi)) {
		CHECK(len == 4 && final && !memcmp(in, "done", 4),
		      "%s: unexpected text message of %lu bytes", sd->name,
		      (unsigned long)len);
		ss->peer_done = 1;
		sd->rx_done = 1;
		if (sd == &server_side && ss->phase == SENT_DONE)
			libwebsocket_callback_on_writable(context, wsi);
		return;
	}
	for (i = 0; i < len; i++)
		ss->rx_sum += in[i];
	ss->rx_total += len;
	ss->rx_pieces++;
	if (final)
		ss->in_trailer = 1;
}

static int session_cb(struct libwebsocket_context *context,
		    struct libwebsocket *wsi,
		    enum libwebsocket_callback_reasons reason, struct side *sd,
		    struct session *ss, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		memset(ss, 0, sizeof(*ss));
		ss->rng = sd == &server_side ? 0x5eed : 0xc11e;
		sd->established++;
		libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(context, wsi, sd, ss);
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_CLIENT_RECEIVE:
		on_receive(context, wsi, sd, ss, (const unsigned char *)in, len);
		break;
	case LWS_CALLBACK_CLOSED:
		sd->closed++;
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "%s: connection error\n", sd->name);
		sd->closed++;
		break;
	default:
		break;
	}
	return 0;
}

static int server_cb(struct libwebsocket_context *context,
		     struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user,
		     void *in, size_t len)
{
	return session_cb(context, wsi, reason, &server_side,
			(struct session *)user, in, len);
}

static int client_cb(struct libwebsocket_context *context,
		     struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user,
		     void *in, size_t len)
{
	return session_cb(context, wsi, reason, &client_side,
			(struct session *)user, in, len);
}

static struct libwebsocket_protocols server_protocols[] = {
	{PROTO_NAME, server_cb, sizeof(struct session), SERVER_RX_BUFFER, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static struct libwebsocket_protocols client_protocols[] = {
	{PROTO_NAME, client_cb, sizeof(struct session), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Extension sets: a copy of the wanted entries of the internal list per context. */
static struct libwebsocket_extension ext_sets[2][4];

static struct libwebsocket_extension *extensions(int slot, const char *which)
{
	struct libwebsocket_extension *all = libwebsocket_get_internal_extensions();
	int n = 0, i;

	if (!strcmp(which, "none"))
		return NULL;
	if (!strcmp(which, "internal"))
		return all;
	memset(ext_sets[slot], 0, sizeof(ext_sets[slot]));
	for (i = 0; all && all[i].callback && n < 3; i++) {
		if ((!strcmp(which, "pmd") && !strcmp(all[i].name, "permessage-deflate")) ||
		    (!strcmp(which, "dframe") && !strcmp(all[i].name, "deflate-frame")))
			ext_sets[slot][n++] = all[i];
	}
	CHECK(n == 1, "no internal extension for \"%s\"", which);
	return ext_sets[slot];
}

static int has_dframe(const char *which)
{
	return !strcmp(which, "internal") || !strcmp(which, "dframe");
}

static struct libwebsocket_context *make_context(int port, int slot,
						 const char *exts,
						 struct libwebsocket_protocols *protocols)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = port;
	info.protocols = protocols;
	info.extensions = extensions(slot, exts);
	info.gid = -1;
	info.uid = -1;
	return libwebsocket_create_context(&info);
}

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &alen))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static double now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void reset_side(struct side *sd, const char *name, int nmsg, size_t chunk,
		       int whole)
{
	memset(sd, 0, sizeof(*sd));
	sd->name = name;
	sd->nmsg = nmsg;
	sd->rx_chunk = chunk;
	sd->whole_frames = whole;
}

static void check_side(const struct side *sd, const char *what)
{
	CHECK(sd->established == 1, "%s %s: established %d times", what, sd->name,
	      sd->established);
	CHECK(sd->sent_msgs == sd->nmsg && sd->sent_done,
	      "%s %s: sent %d of %d messages, done %d", what, sd->name,
	      sd->sent_msgs, sd->nmsg, sd->sent_done);
	CHECK(sd->rx_msgs == sd->nmsg && sd->rx_done,
	      "%s %s: received %d of %d messages, done %d", what, sd->name,
	      sd->rx_msgs, sd->nmsg, sd->rx_done);
	CHECK(sd->closed == 1, "%s %s: closed %d times", what, sd->name, sd->closed);
}

/* Server and client of this library in one process. */
static void self_test(const char *srv_exts, const char *cli_exts, int nmsg)
{
	struct libwebsocket_context *srv, *cli;
	int port = free_port(), whole = has_dframe(srv_exts) && has_dframe(cli_exts);
	int before = failures;
	char what[64];
	double deadline;

	snprintf(what, sizeof(what), "[server %s, client %s]", srv_exts, cli_exts);
	reset_side(&server_side, "server", nmsg, SERVER_RX_BUFFER, whole);
	reset_side(&client_side, "client", nmsg, DEFAULT_RX_BUFFER, whole);
	CHECK(port > 0, "no free port");
	srv = make_context(port, 0, srv_exts, server_protocols);
	cli = make_context(CONTEXT_PORT_NO_LISTEN, 1, cli_exts, client_protocols);
	CHECK(srv && cli, "%s: context creation failed", what);
	if (!srv || !cli)
		return;
	CHECK(libwebsocket_client_connect(cli, "127.0.0.1", port, 0, "/", "127.0.0.1",
					  "origin", PROTO_NAME, -1) != NULL,
	      "%s: client connect failed", what);
	deadline = now() + 40;
	while (!(server_side.closed && client_side.closed) && now() < deadline) {
		libwebsocket_service(srv, 2);
		libwebsocket_service(cli, 2);
	}
	check_side(&server_side, what);
	check_side(&client_side, what);
	libwebsocket_context_destroy(cli);
	libwebsocket_context_destroy(srv);
	printf("%s %s: %d messages each way\n", failures == before ? "ok" : "FAILED",
	       what, nmsg);
}

/* One side, for a peer that is not this library. */
static void one_side(int is_server, int port, const char *exts, int nmsg)
{
	struct libwebsocket_context *ctx;
	struct side *sd = is_server ? &server_side : &client_side;
	double deadline;

	reset_side(sd, is_server ? "server" : "client", nmsg,
		   is_server ? SERVER_RX_BUFFER : DEFAULT_RX_BUFFER, 0);
	ctx = make_context(is_server ? port : CONTEXT_PORT_NO_LISTEN, 0, exts,
			   is_server ? server_protocols : client_protocols);
	CHECK(ctx != NULL, "context creation failed");
	if (!ctx)
		return;
	if (is_server) {
		printf("listening %d\n", port);
		fflush(stdout);
	} else {
		CHECK(libwebsocket_client_connect(ctx, "127.0.0.1", port, 0, "/",
						  "127.0.0.1", "origin", PROTO_NAME,
						  -1) != NULL,
		      "client connect failed");
	}
	deadline = now() + 60;
	while (!sd->closed && now() < deadline)
		libwebsocket_service(ctx, 10);
	check_side(sd, exts);
	libwebsocket_context_destroy(ctx);
}

int main(int argc, char **argv)
{
	if (argc == 5) {
		int is_server = !strcmp(argv[1], "server");

		if (!is_server && strcmp(argv[1], "client")) {
			fprintf(stderr, "usage: %s [server|client PORT EXTS NMSG]\n", argv[0]);
			return 2;
		}
		one_side(is_server, atoi(argv[2]), argv[3], atoi(argv[4]));
	} else if (argc == 1) {
		/* deflate-frame negotiated: whole frames, as v1.23 delivered them */
		self_test("internal", "internal", 12);
		/* no extension: pieces of at most rx_buffer_size */
		self_test("none", "internal", 12);
		/* permessage-deflate (fragmented messages go out uncompressed) */
		self_test("pmd", "internal", 8);
	} else {
		fprintf(stderr, "usage: %s [server|client PORT EXTS NMSG]\n", argv[0]);
		return 2;
	}
	printf("fragments_test: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
