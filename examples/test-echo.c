/*
 * test-echo: a WebSocket echo server written against the libwebsockets v1.23 API.
 *
 * Every message a client sends comes back to that client unchanged, with the
 * same opcode (text or binary), whatever its size or fragmentation, and in the
 * order received. Incoming pieces are gathered into whole messages with
 * libwebsockets_remaining_packet_payload() / libwebsocket_is_final_fragment(),
 * queued per connection, and written from LWS_CALLBACK_SERVER_WRITEABLE. When a
 * client sends faster than it reads, receiving is paused with
 * libwebsocket_rx_flow_control() until the queue drains.
 *
 * Usage: test-echo [--port N] [--interface IF] [--extpoll] [--debug LEVEL]
 *                  [--rx-buffer BYTES] [--lib-buffers-partials] [--no-extensions]
 *                  [--ssl [--cert FILE] [--key FILE]]
 *
 * With --ssl the port speaks only TLS (wss://); the certificate and key default
 * to examples/test-cert.pem and examples/test-key.pem, which are not part of
 * the sources (examples/gen-test-certs.sh makes a test set).
 *
 * Used by the project's conformance tests and benchmarks.
 */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

/* what --ssl uses without --cert / --key (not committed: see gen-test-certs.sh) */
#ifndef LWS_TEST_CERT
#define LWS_TEST_CERT "examples/test-cert.pem"
#endif
#ifndef LWS_TEST_KEY
#define LWS_TEST_KEY "examples/test-key.pem"
#endif

/* pause reading from a client above this many queued bytes, resume below the low mark */
#define QUEUE_HIGH_WATER (4u * 1024u * 1024u)
#define QUEUE_LOW_WATER (1u * 1024u * 1024u)

static volatile sig_atomic_t stop_requested;

/* one whole message waiting to be sent back; data has PRE padding in front */
struct echo_msg {
	struct echo_msg *next;
	unsigned char *data;	/* malloc'ed: PRE + len + POST bytes */
	size_t len;
	size_t sent;
	int binary;
};

struct echo_session {
	unsigned long id;
	unsigned long messages;	/* whole messages received (and queued for echo) */
	/* message being reassembled */
	unsigned char *rx;
	size_t rx_len;
	size_t rx_cap;
	int rx_binary;
	int rx_started;
	/* outgoing queue */
	struct echo_msg *head;
	struct echo_msg *tail;
	size_t queued_bytes;
	int rx_paused;
};

static unsigned long next_session_id = 1;

/* one stderr line per session opened and closed, unless --debug drops LLL_NOTICE */
static int log_sessions = 1;

/* ---- external poll table (only used with --extpoll) ---- */

static struct pollfd *ext_fds;
static int *ext_slot_of_fd;
static int ext_count;
static int ext_capacity;

static int ext_init(void)
{
	int i;
	long cap = sysconf(_SC_OPEN_MAX);

	if (cap <= 0 || cap > (1L << 20))
		cap = 1L << 20;
	ext_capacity = (int)cap;
	ext_fds = calloc((size_t)ext_capacity, sizeof(*ext_fds));
	ext_slot_of_fd = malloc((size_t)ext_capacity * sizeof(*ext_slot_of_fd));
	if (!ext_fds || !ext_slot_of_fd)
		return -1;
	for (i = 0; i < ext_capacity; i++)
		ext_slot_of_fd[i] = -1;
	return 0;
}

static int ext_poll_callback(enum libwebsocket_callback_reasons reason, int fd, int events)
{
	int slot;

	if (fd < 0 || fd >= ext_capacity)
		return 1;
	slot = ext_slot_of_fd[fd];

	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
		if (slot >= 0) {
			ext_fds[slot].events = (short)events;
			return 0;
		}
		if (ext_count >= ext_capacity)
			return 1;
		ext_fds[ext_count].fd = fd;
		ext_fds[ext_count].events = (short)events;
		ext_fds[ext_count].revents = 0;
		ext_slot_of_fd[fd] = ext_count++;
		break;
	case LWS_CALLBACK_DEL_POLL_FD:
		if (slot < 0)
			return 0;
		ext_count--;
		if (slot != ext_count) {
			ext_fds[slot] = ext_fds[ext_count];
			ext_slot_of_fd[ext_fds[slot].fd] = slot;
		}
		ext_slot_of_fd[fd] = -1;
		break;
	case LWS_CALLBACK_SET_MODE_POLL_FD:
		if (slot >= 0)
			ext_fds[slot].events |= (short)events;
		break;
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		if (slot >= 0)
			ext_fds[slot].events &= (short)~events;
		break;
	default:
		break;
	}
	return 0;
}

/* ---- echo protocol ---- */

static void session_free_all(struct echo_session *s)
{
	struct echo_msg *m = s->head;

	while (m) {
		struct echo_msg *next = m->next;

		free(m->data);
		free(m);
		m = next;
	}
	s->head = s->tail = NULL;
	s->queued_bytes = 0;
	free(s->rx);
	s->rx = NULL;
	s->rx_len = s->rx_cap = 0;
	s->rx_started = 0;
}

/* append len bytes to the message under reassembly; returns -1 when out of memory */
static int rx_append(struct echo_session *s, const void *in, size_t len)
{
	size_t need = LWS_SEND_BUFFER_PRE_PADDING + s->rx_len + len +
		      LWS_SEND_BUFFER_POST_PADDING;

	if (need > s->rx_cap) {
		size_t cap = s->rx_cap ? s->rx_cap : 256;
		unsigned char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(s->rx, cap);
		if (!p)
			return -1;
		s->rx = p;
		s->rx_cap = cap;
	}
	if (len)
		memcpy(s->rx + LWS_SEND_BUFFER_PRE_PADDING + s->rx_len, in, len);
	s->rx_len += len;
	return 0;
}

/* the reassembled message moves to the end of the send queue */
static int rx_finish(struct echo_session *s)
{
	struct echo_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return -1;
	if (!s->rx && rx_append(s, NULL, 0)) {
		free(m);
		return -1;
	}
	m->data = s->rx;
	m->len = s->rx_len;
	m->binary = s->rx_binary;
	s->rx = NULL;
	s->rx_len = s->rx_cap = 0;
	s->rx_started = 0;

	if (s->tail)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	s->queued_bytes += m->len;
	s->messages++;
	return 0;
}

static int echo_writeable(struct libwebsocket_context *context,
			  struct libwebsocket *wsi, struct echo_session *s)
{
	while (s->head) {
		struct echo_msg *m = s->head;
		size_t left = m->len - m->sent;
		int n;

		n = libwebsocket_write(wsi, m->data + LWS_SEND_BUFFER_PRE_PADDING + m->sent,
				       left, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		if (n < 0) {
			lwsl_err("echo: write failed on session %lu\n", s->id);
			return -1;
		}
		if ((size_t)n < left) {
			/* the kernel took part of it: send the rest when writeable again */
			m->sent += (size_t)n;
			libwebsocket_callback_on_writable(context, wsi);
			return 0;
		}
		s->head = m->next;
		if (!s->head)
			s->tail = NULL;
		s->queued_bytes -= m->len;
		free(m->data);
		free(m);

		if (s->rx_paused && s->queued_bytes < QUEUE_LOW_WATER) {
			s->rx_paused = 0;
			libwebsocket_rx_flow_control(wsi, 1);
		}
		if (s->head && lws_send_pipe_choked(wsi)) {
			libwebsocket_callback_on_writable(context, wsi);
			return 0;
		}
	}
	return 0;
}

static int callback_echo(struct libwebsocket_context *context,
			 struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct echo_session *s = user;

	switch (reason) {
	case LWS_CALLBACK_ADD_POLL_FD:
	case LWS_CALLBACK_DEL_POLL_FD:
	case LWS_CALLBACK_SET_MODE_POLL_FD:
	case LWS_CALLBACK_CLEAR_MODE_POLL_FD:
		if (!ext_fds)
			return 0;
		return ext_poll_callback(reason, (int)(long)in, (int)len);

	case LWS_CALLBACK_ESTABLISHED:
		if (!s)
			return -1;
		memset(s, 0, sizeof(*s));
		s->id = next_session_id++;
		if (log_sessions)
			fprintf(stderr, "test-echo: established session %lu\n", s->id);
		break;

	case LWS_CALLBACK_RECEIVE:
		if (!s)
			return -1;
		if (!s->rx_started) {
			s->rx_started = 1;
			s->rx_binary = lws_frame_is_binary(wsi);
		}
		if (rx_append(s, in, len)) {
			lwsl_err("echo: out of memory on session %lu\n", s->id);
			return -1;
		}
		if (libwebsockets_remaining_packet_payload(wsi) == 0 &&
		    libwebsocket_is_final_fragment(wsi)) {
			if (rx_finish(s))
				return -1;
			libwebsocket_callback_on_writable(context, wsi);
			if (!s->rx_paused && s->queued_bytes > QUEUE_HIGH_WATER) {
				s->rx_paused = 1;
				libwebsocket_rx_flow_control(wsi, 0);
			}
		}
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!s)
			return -1;
		return echo_writeable(context, wsi, s);

	case LWS_CALLBACK_CLOSED:
		if (!s)
			break;
		if (log_sessions)
			fprintf(stderr, "test-echo: LWS_CALLBACK_CLOSED session %lu (%lu messages)\n",
				s->id, s->messages);
		session_free_all(s);
		break;

	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{
		"echo",				/* name; also what clients without a subprotocol get */
		callback_echo,			/* callback */
		sizeof(struct echo_session),	/* per_session_data_size */
		0,				/* rx_buffer_size: library default */
		0,				/* no_buffer_all_partial_tx */
		NULL, 0
	},
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"Usage: %s [--port N] [--interface IF] [--extpoll] [--debug LEVEL]\n"
		"          [--rx-buffer BYTES] [--lib-buffers-partials] [--no-extensions]\n"
		"          [--ssl [--cert FILE] [--key FILE]]\n", prog);
}

/* a readable file, or a message saying what is missing; returns 0 when fine */
static int check_readable(const char *what, const char *path)
{
	if (!access(path, R_OK))
		return 0;
	fprintf(stderr, "test-echo: --ssl: cannot read the %s file '%s': %s\n",
		what, path, strerror(errno));
	fprintf(stderr, "test-echo: make a test set with examples/gen-test-certs.sh and pass\n"
		"           --cert DIR/server.pem --key DIR/server-key.pem\n");
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "interface", required_argument, NULL, 'i' },
		{ "extpoll", no_argument, NULL, 'e' },
		{ "debug", required_argument, NULL, 'd' },
		{ "rx-buffer", required_argument, NULL, 'r' },
		{ "lib-buffers-partials", no_argument, NULL, 'b' },
		{ "no-extensions", no_argument, NULL, 'n' },
		{ "ssl", no_argument, NULL, 's' },
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	struct sigaction sa;
	char iface[128] = "";
	int use_extpoll = 0;
	int use_extensions = 1;
	int debug_level = LLL_ERR | LLL_WARN | LLL_NOTICE;
	int use_ssl = 0;
	const char *cert_path = NULL, *key_path = NULL;
	int c;

	memset(&info, 0, sizeof(info));
	info.port = 9000;

	while ((c = getopt_long(argc, argv, "p:i:ed:r:bnsh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			info.port = atoi(optarg);
			break;
		case 'i':
			snprintf(iface, sizeof(iface), "%s", optarg);
			info.iface = iface;
			break;
		case 'e':
			use_extpoll = 1;
			break;
		case 'd':
			debug_level = atoi(optarg);
			break;
		case 'r':
			protocols[0].rx_buffer_size = (size_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			use_extensions = 0;
			break;
		case 'b':
			protocols[0].no_buffer_all_partial_tx = 1;
			break;
		case 's':
			use_ssl = 1;
			break;
		case 'C':
			cert_path = optarg;
			break;
		case 'K':
			key_path = optarg;
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 1;
		}
	}

	if (!use_ssl && (cert_path || key_path)) {
		fprintf(stderr, "test-echo: --cert and --key need --ssl\n");
		return 1;
	}
	if (use_ssl) {
		if (!cert_path)
			cert_path = LWS_TEST_CERT;
		if (!key_path)
			key_path = LWS_TEST_KEY;
		if (check_readable("certificate", cert_path) || check_readable("key", key_path))
			return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lws_set_log_level(debug_level, NULL);
	log_sessions = !!(debug_level & LLL_NOTICE);

	if (use_extpoll && ext_init()) {
		fprintf(stderr, "test-echo: out of memory for the poll table\n");
		return 1;
	}

	info.protocols = protocols;
	/* the library's compression extensions (permessage-deflate, deflate-frame) */
	info.extensions = use_extensions ? libwebsocket_get_internal_extensions() : NULL;
	info.gid = -1;
	info.uid = -1;
	if (use_ssl) {
		info.ssl_cert_filepath = cert_path;
		info.ssl_private_key_filepath = key_path;
	}

	context = libwebsocket_create_context(&info);
	if (!context) {
		fprintf(stderr, "test-echo: libwebsocket_create_context failed\n");
		free(ext_fds);
		free(ext_slot_of_fd);
		return 1;
	}
	fprintf(stderr, "test-echo listening on port %d%s%s\n", info.port,
		use_ssl ? " (TLS only)" : "", use_extpoll ? " (external poll)" : "");

	while (!stop_requested) {
		if (use_extpoll) {
			int n = poll(ext_fds, (nfds_t)ext_count, 50);
			int i;

			if (n < 0 && errno != EINTR)
				break;
			/*
			 * Walk backwards: a DEL_POLL_FD during service moves the last
			 * entry, which has already been seen, into the freed slot.
			 */
			for (i = ext_count - 1; n > 0 && i >= 0; i--) {
				if (i >= ext_count || !ext_fds[i].revents)
					continue;
				if (libwebsocket_service_fd(context, &ext_fds[i]) < 0) {
					stop_requested = 1;
					break;
				}
				if (i < ext_count)
					ext_fds[i].revents = 0;
			}
			/* lets the library run its timeouts */
			libwebsocket_service_fd(context, NULL);
		} else if (libwebsocket_service(context, 50) < 0) {
			break;
		}
	}

	libwebsocket_context_destroy(context);
	free(ext_fds);
	free(ext_slot_of_fd);
	fprintf(stderr, "test-echo exited cleanly\n");
	return 0;
}
