/*
 * lwsload: a WebSocket load generator written on this library's own client API
 * (the libwebsockets v1.23 libwebsocket_* names), for what ../shared/tools/wsload
 * cannot do: wss:// (TLS) and permessage-deflate. Its RESULT line uses wsload's
 * key=value format so the same scripts can read both.
 *
 *   lwsload echo      -u ws[s]://HOST:PORT/PATH -c CONNS -s BYTES -d DEPTH -t SECS [-w WARMUP]
 *                     [--ssl] [--compress] [--json]
 *   lwsload idle      -u ... -c CONNS -t HOLD_SECS [--compress] [--idle-msg -s BYTES [--json]]
 *   lwsload handshake -u ... -c WORKERS -t SECS [-w WARMUP] [--ssl] [--fresh-tls]
 *
 * Options common to all modes: -l LABEL (copied into the RESULT line),
 * --connect-batch N (connections being opened at once, default 256),
 * --rx-buffer BYTES (the client protocol's rx_buffer_size, default 65536).
 *
 * echo: CONNS connections, each keeping DEPTH messages of BYTES in flight
 *   (closed loop: a new message is written, from LWS_CALLBACK_CLIENT_WRITEABLE,
 *   when an echo completes). Binary frames, or with --json TEXT frames holding
 *   JSON-like records (deterministic, 16 different payloads, realistic
 *   redundancy). The clock starts WARMUP s (default 1) after the last connection
 *   is open and runs SECS s; "lwsload: measuring" goes to stderr when it starts.
 *   Binary payloads are pseudo-random bytes; the pool holds up to 16 payloads
 *   (4 MiB in all), so with --compress and context takeover small binary
 *   messages compress by finding earlier copies in the window: use --json to
 *   measure compression.
 *   Every echo is checked: opcode, length (bad_len) and full content (bad_data;
 *   each message carries its connection and sequence number, so a lost,
 *   duplicated or reordered echo is caught as well). Latency: from the write of
 *   a message to the last byte of its echo.
 * idle: opens CONNS connections (with --idle-msg each echoes one message of
 *   BYTES first), prints "READY conns=N errors=E" on stdout, holds them HOLD s.
 * handshake: WORKERS parallel loops of connect -> 101 -> close (the callback
 *   returns -1 from the CLIENT_WRITEABLE that follows CLIENT_ESTABLISHED: the
 *   library sends a close frame) -> wait for LWS_CALLBACK_DEL_POLL_FD for its
 *   descriptor (with CLOSED, v1.23's order: DEL_POLL_FD first; the application is
 *   done with the socket, the library finishes the close handshake and the TCP
 *   close out of its sight). A cycle not over within 5 s counts as a
 *   close_timeout. TLS: without --fresh-tls each worker uses its own host name
 *   (w<N>.lwsload.test, sent as SNI and Host), and the library's client resumes
 *   the TLS 1.3 session of the worker's previous connection from the tickets the
 *   server sent; --fresh-tls gives every connection a new host name, so the
 *   client has nothing to resume and every TLS handshake is a full one.
 *   hs_wire_out_B / hs_wire_in_B: mean bytes sent / received up to
 *   CLIENT_ESTABLISHED (TCP_INFO), which tell resumed (no certificate) from full.
 *
 * --ssl (or a wss:// URL) connects with ssl_connection 2 (TLS, any certificate
 * accepted). --compress registers libwebsocket_get_internal_extensions() in the
 * client context and allows only "permessage-deflate" to be offered (through
 * LWS_CALLBACK_CLIENT_CONFIRM_EXTENSION_SUPPORTED); every connection's 101 must
 * name it in Sec-WebSocket-Extensions (read with lws_hdr_copy in
 * CLIENT_FILTER_PRE_ESTABLISH), otherwise ext_mismatch counts it. Without
 * --compress no extension may be negotiated either.
 *
 * Wire bytes (echo): TCP_INFO tcpi_bytes_acked (sent by us and acknowledged by
 * the peer) and tcpi_bytes_received of every connection's socket
 * (libwebsocket_get_socket_fd), sampled at the start and end of the measured
 * window. They count everything on the TCP stream: WebSocket frame headers and
 * masking keys, compressed payload, TLS records and TLS overhead; not TCP/IP
 * headers. wire_ratio_out = wire_out_B / payload_out_B (client to server,
 * compressed by our client), wire_ratio_in = wire_in_B / payload_in_B (server to
 * client, compressed by the server). Payload bytes are counted when written and
 * when an echo completes, so messages in flight at the window's edges blur the
 * ratio by at most CONNS x DEPTH x BYTES.
 *
 * load_cpu_s / load_rq_wait_s (echo, handshake): this process's CPU time and the
 * time it was runnable but waiting for a CPU (/proc/self/schedstat) over the
 * window: a load generator short of CPU shows there.
 *
 * Exactly one "RESULT ..." line goes to stdout; diagnostics go to stderr. Every
 * loop is bounded by a deadline. Exit status 0 when the run was healthy (no
 * error counter set, every connection open), 1 otherwise, 2 for bad usage.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/tcp.h>

#include <libwebsockets.h>

#define PRE LWS_SEND_BUFFER_PRE_PADDING
#define POST LWS_SEND_BUFFER_POST_PADDING
#define TAGLEN 16
#define MAX_CONNS 200000
#define STALL_NS (3ull * 1000000000ull)
#define CYCLE_TIMEOUT_NS (5ull * 1000000000ull)

enum mode { M_ECHO, M_IDLE, M_HANDSHAKE };
enum cstate { C_NONE, C_CONNECTING, C_OPEN, C_CLOSED, C_FAILED };
enum hphase { H_IDLE, H_CONNECTING, H_WAIT_CLOSED, H_WAIT_FD };

/* ------------------------------------------------------------------ options */

static struct {
	enum mode mode;
	char host[256];
	char path[512];
	int port;
	int ssl;
	int conns;
	size_t size;
	int depth;
	double secs;
	double warmup;
	const char *label;
	int compress;
	int json;
	int idle_msg;
	int fresh_tls;
	int connect_batch;
	size_t rx_buffer;
} opt;

/* ------------------------------------------------------------------ state */

struct conn {
	int idx;
	struct libwebsocket *wsi;
	enum cstate state;
	int fd;
	int ext_ok;	/* 101 named permessage-deflate */
	int ext_seen;	/* 101 named any extension */
	/* echo */
	uint64_t seq_sent, seq_recv;
	int inflight;
	uint64_t *t_sent;	/* send time of message seq % depth */
	size_t rx_len;
	int rx_started, rx_bad;
	uint64_t last_progress;
	int stalled;
	int idle_echoed;
	/* wire counters at the start of the window */
	uint64_t tcp_out0, tcp_in0;
	int tcp_ok;
	/* handshake worker */
	enum hphase ph;
	uint64_t t_phase;	/* when the current phase began */
	uint64_t t_connect;
};

static struct conn *conns;
static int *fd_owner;		/* fd -> conn index + 1 (handshake mode) */
static int fd_owner_cap;
static struct libwebsocket_context *context;

static int n_open, n_pending, n_failed_connect, n_established;
static int stopping;		/* no new messages; closes are ours */
static int measuring;
static volatile sig_atomic_t interrupted;

/* counters (in the measured window unless noted) */
static uint64_t c_msgs, c_payload_in, c_payload_out, c_compressed_echoes;
static uint64_t c_bad_len, c_bad_data, c_errors, c_peer_closes, c_ext_mismatch, c_stalled;
static uint64_t c_handshakes, c_failures, c_close_timeouts;
/* handshake mode: bytes on the wire up to CLIENT_ESTABLISHED, summed over measured cycles */
static uint64_t c_hs_wire_out, c_hs_wire_in, c_hs_wire_n;
static uint64_t c_negotiated;	/* whole run */
static uint64_t c_fresh_names;

/* payloads */
static unsigned char **pool;	/* each PRE + size + POST */
static int pool_n;
static size_t tag_off;
static int has_tag;

static char ext_example[256];

/* ------------------------------------------------------------------ time, histogram */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define HSUB 64
#define HBUCKETS (HSUB * 60)

struct hist {
	uint64_t b[HBUCKETS];
	uint64_t n, max;
};

static struct hist h_lat, h_upgrade, h_cycle;

static int hidx(uint64_t v)
{
	int msb, shift;

	if (v < 2 * HSUB)
		return (int)v;
	msb = 63 - __builtin_clzll(v);
	shift = msb - 6;
	return (shift + 1) * HSUB + (int)((v >> shift) - HSUB);
}

static void hadd(struct hist *h, uint64_t v)
{
	h->b[hidx(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

/* value (ns) below which a fraction p of the samples lie: the bucket's middle */
static double hpct(const struct hist *h, double p)
{
	uint64_t want, acc = 0;
	int i;

	if (!h->n)
		return 0;
	want = (uint64_t)(p * (double)h->n);
	if (want < 1)
		want = 1;
	for (i = 0; i < HBUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want) {
			int shift;
			uint64_t low;

			if (i < 2 * HSUB)
				return i;
			shift = i / HSUB - 1;
			low = (uint64_t)(i % HSUB + HSUB) << shift;
			return (double)low + (double)(1ull << shift) / 2.0;
		}
	}
	return (double)h->max;
}

/* ------------------------------------------------------------------ payloads */

static uint32_t rng_state;

static uint32_t rng(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return rng_state >> 8;
}

static const char *const first_names[] = {
	"ada", "bruno", "chen", "dmitri", "elena", "farah", "gustav", "hana", "ivan", "jules",
	"kofi", "lena", "mateo", "nadia", "oscar", "priya", "quinn", "rosa", "sven", "tariq",
	"uma", "victor", "wen", "ximena", "yusuf", "zoe", "amir", "bea", "carlos", "dana"
};
static const char *const last_names[] = {
	"alvarez", "becker", "costa", "dubois", "eriksen", "fischer", "garcia", "horvat",
	"ito", "jansen", "kowalski", "lindqvist", "moreau", "novak", "okafor", "petrov",
	"quispe", "rossi", "schmidt", "tanaka", "ueda", "varga", "weber", "xu", "yilmaz",
	"zhang", "mbeki", "nilsen", "oliveira", "park"
};
static const char *const cities[] = {
	"Lisbon", "Oslo", "Nairobi", "Lima", "Osaka", "Quebec", "Tbilisi", "Porto", "Hanoi",
	"Accra", "Bergen", "Cusco", "Dakar", "Graz", "Izmir", "Kyoto", "Leeds", "Malmo"
};
static const char *const tlds[] = { "org", "com", "net", "io", "dev" };
static const char *const tags[] = {
	"alpha", "beta", "ops", "billing", "mobile", "web", "eu", "us", "apac", "trial",
	"pro", "admin", "beta-tester", "vip", "support", "churn-risk"
};
static const char *const plans[] = { "free", "basic", "team", "enterprise" };

#define PICK(a) (a)[rng() % (sizeof(a) / sizeof((a)[0]))]

/*
 * One JSON-like text of exactly `size` bytes:
 *   {"seq":"<16 tag chars>","records":[{"id":..,"name":..,...},...]   }
 * records of user-like data (names, e-mails, numbers, dates, tags) drawn from
 * small vocabularies, as in typical API traffic; spaces pad to the size.
 */
static void fill_json(unsigned char *p, size_t size, unsigned int seed)
{
	static const char head[] = "{\"seq\":\"0000000000000000\",\"records\":[";
	size_t hl = sizeof(head) - 1, n = 0;
	char rec[512];
	int first = 1;

	rng_state = 0x2545f491u ^ (seed * 2654435761u);
	if (size < hl + 2) {
		for (n = 0; n < size; n++)
			p[n] = (unsigned char)('a' + (seed + n) % 26);
		return;
	}
	memcpy(p, head, hl);
	n = hl;
	for (;;) {
		const char *fn = PICK(first_names), *ln = PICK(last_names);
		unsigned int id = 100000 + rng() % 900000;
		int k = snprintf(rec, sizeof(rec),
				 "%s{\"id\":%u,\"name\":\"%c%s %c%s\",\"email\":\"%s.%s%u@example.%s\","
				 "\"city\":\"%s\",\"plan\":\"%s\",\"score\":%u.%02u,\"visits\":%u,"
				 "\"active\":%s,\"tags\":[\"%s\",\"%s\"],"
				 "\"created\":\"20%02u-%02u-%02uT%02u:%02u:%02uZ\"}",
				 first ? "" : ",", id,
				 fn[0] - 32, fn + 1, ln[0] - 32, ln + 1, fn, ln, rng() % 100, PICK(tlds),
				 PICK(cities), PICK(plans), rng() % 100, rng() % 100, rng() % 5000,
				 (rng() & 1) ? "true" : "false", PICK(tags), PICK(tags),
				 10 + rng() % 15, 1 + rng() % 12, 1 + rng() % 28, rng() % 24, rng() % 60,
				 rng() % 60);

		if (k <= 0 || n + (size_t)k + 2 > size)
			break;
		memcpy(p + n, rec, (size_t)k);
		n += (size_t)k;
		first = 0;
	}
	while (n < size - 2)
		p[n++] = ' ';
	p[n++] = ']';
	p[n++] = '}';
}

static void fill_binary(unsigned char *p, size_t size, unsigned int seed)
{
	size_t n;

	rng_state = 0x9e3779b9u ^ (seed * 2246822519u);
	for (n = 0; n < size; n++)
		p[n] = (unsigned char)(rng() >> 16);	/* the LCG's high bits */
}

static int make_pool(void)
{
	size_t budget = 4u << 20;
	int i;

	pool_n = opt.size ? (int)(budget / opt.size) : 16;
	if (pool_n > 16)
		pool_n = 16;
	if (pool_n < 1)
		pool_n = 1;
	pool = calloc((size_t)pool_n, sizeof(*pool));
	if (!pool)
		return -1;
	tag_off = opt.json ? 8 : 0;
	has_tag = opt.size >= tag_off + TAGLEN;
	for (i = 0; i < pool_n; i++) {
		pool[i] = malloc(PRE + opt.size + POST + 1);
		if (!pool[i])
			return -1;
		if (opt.json)
			fill_json(pool[i] + PRE, opt.size, (unsigned int)i);
		else
			fill_binary(pool[i] + PRE, opt.size, (unsigned int)i);
	}
	return 0;
}

/* the 16 tag characters of message seq on connection idx */
static void make_tag(char *tag, int idx, uint64_t seq)
{
	static const char hex[] = "0123456789abcdef";
	/* 20 bits of connection index, 44 bits of sequence number, as 16 hex digits */
	uint64_t v = ((uint64_t)((unsigned int)idx & 0xfffffu) << 44) | (seq & 0xfffffffffffull);
	int i;

	for (i = TAGLEN - 1; i >= 0; i--) {
		tag[i] = hex[v & 15];
		v >>= 4;
	}
}

/* does chunk `in` (offset `off` of the message, `len` bytes) equal message seq's bytes? */
static int chunk_matches(const unsigned char *in, size_t off, size_t len,
			 const unsigned char *ref, const char *tag)
{
	size_t tag_end = tag_off + TAGLEN, end = off + len, i, s;

	if (!tag || end <= tag_off || off >= tag_end)
		return !memcmp(in, ref + off, len);
	if (off < tag_off && memcmp(in, ref + off, tag_off - off))
		return 0;
	for (i = off > tag_off ? off : tag_off; i < tag_end && i < end; i++)
		if (in[i - off] != (unsigned char)tag[i - tag_off])
			return 0;
	if (end > tag_end) {
		s = tag_end > off ? tag_end : off;
		if (memcmp(in + (s - off), ref + s, end - s))
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ TCP_INFO */

static int tcp_bytes(int fd, uint64_t *out, uint64_t *in)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return -1;
	if (l < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return -1;
	*out = ti.tcpi_bytes_acked;
	*in = ti.tcpi_bytes_received;
	return 0;
}

/* ------------------------------------------------------------------ own CPU */

/*
 * This process's CPU time and the time it was runnable but waiting for a CPU
 * (/proc/self/schedstat: run ns, run-queue wait ns), so that a RESULT shows when
 * the load generator was short of CPU; -1 when unavailable.
 */
static void self_sched(double *run_s, double *wait_s)
{
	unsigned long long run = 0, wait = 0;
	FILE *f = fopen("/proc/self/schedstat", "r");

	*run_s = *wait_s = -1;
	if (!f)
		return;
	if (fscanf(f, "%llu %llu", &run, &wait) == 2) {
		*run_s = (double)run / 1e9;
		*wait_s = (double)wait / 1e9;
	}
	fclose(f);
}

static double sched_run0 = -1, sched_wait0 = -1, sched_run1 = -1, sched_wait1 = -1;

static void sched_mark(int end)
{
	if (end)
		self_sched(&sched_run1, &sched_wait1);
	else
		self_sched(&sched_run0, &sched_wait0);
}

static void print_sched(void)
{
	if (sched_run0 < 0 || sched_run1 < 0)
		printf(" load_cpu_s=-1 load_rq_wait_s=-1");
	else
		printf(" load_cpu_s=%.3f load_rq_wait_s=%.3f", sched_run1 - sched_run0,
		       sched_wait1 - sched_wait0);
}

/* ------------------------------------------------------------------ sending */

static int send_one(struct conn *c)
{
	unsigned char *buf = pool[c->seq_sent % (uint64_t)pool_n] + PRE;
	int n;

	if (has_tag)
		make_tag((char *)buf + tag_off, c->idx, c->seq_sent);
	n = libwebsocket_write(c->wsi, buf, opt.size, opt.json ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
	if (n < 0 || (size_t)n != opt.size) {
		fprintf(stderr, "lwsload: conn %d: libwebsocket_write returned %d for %zu bytes\n",
			c->idx, n, opt.size);
		c_errors++;
		return -1;
	}
	c->t_sent[c->seq_sent % (uint64_t)opt.depth] = now_ns();
	c->last_progress = c->t_sent[c->seq_sent % (uint64_t)opt.depth];
	c->seq_sent++;
	c->inflight++;
	if (measuring)
		c_payload_out += opt.size;
	return 0;
}

/* ------------------------------------------------------------------ receiving */

static void echo_receive(struct conn *c, struct libwebsocket *wsi, const unsigned char *in, size_t len)
{
	char tag[TAGLEN];
	const unsigned char *ref;

	if (!c->rx_started) {
		c->rx_started = 1;
		c->rx_len = 0;
		c->rx_bad = 0;
		if (c->inflight <= 0)
			c->rx_bad = 1;	/* an echo nobody asked for */
		if (lws_frame_is_binary(wsi) != !opt.json)
			c->rx_bad = 1;
		if (libwebsocket_get_reserved_bits(wsi) & 0x40)
			if (measuring)
				c_compressed_echoes++;
	}
	if (!c->rx_bad && c->rx_len + len <= opt.size) {
		ref = pool[c->seq_recv % (uint64_t)pool_n] + PRE;
		if (has_tag)
			make_tag(tag, c->idx, c->seq_recv);
		if (len && !chunk_matches(in, c->rx_len, len, ref, has_tag ? tag : NULL))
			c->rx_bad = 1;
	}
	c->rx_len += len;
	c->last_progress = now_ns();
	if (libwebsockets_remaining_packet_payload(wsi) || !libwebsocket_is_final_fragment(wsi))
		return;

	/* a whole echo */
	c->rx_started = 0;
	if (c->rx_len != opt.size) {
		if (!c_bad_len)
			fprintf(stderr, "lwsload: conn %d: echo %" PRIu64 " has %zu bytes, sent %zu\n",
				c->idx, c->seq_recv, c->rx_len, opt.size);
		c_bad_len++;
	} else if (c->rx_bad) {
		if (!c_bad_data)
			fprintf(stderr, "lwsload: conn %d: echo %" PRIu64 " differs from message sent\n",
				c->idx, c->seq_recv);
		c_bad_data++;
	}
	if (c->inflight > 0) {
		uint64_t t = c->t_sent[c->seq_recv % (uint64_t)opt.depth];

		if (measuring) {
			hadd(&h_lat, c->last_progress - t);
			c_msgs++;
			c_payload_in += c->rx_len;
		}
		c->inflight--;
		c->seq_recv++;
	}
}

/* ------------------------------------------------------------------ callback */

static struct conn *conn_of(void *user)
{
	return user;
}

static void start_window_wire(void)
{
	int i;

	for (i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];

		c->tcp_ok = c->state == C_OPEN &&
			    !tcp_bytes(c->fd, &c->tcp_out0, &c->tcp_in0);
	}
}

static int lwsload_callback(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		    enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	struct conn *c = conn_of(user);

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONFIRM_EXTENSION_SUPPORTED:
		/* offer only permessage-deflate (the table also has deflate-frame) */
		return !(in && !strcmp((const char *)in, "permessage-deflate"));

	case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH: {
		char ext[256];
		int n;

		if (!c)
			return -1;
		n = lws_hdr_copy(wsi, ext, sizeof(ext), WSI_TOKEN_EXTENSIONS);
		c->ext_seen = n > 0;
		c->ext_ok = n > 0 && !strncmp(ext, "permessage-deflate", 18);
		if (c->ext_ok && !ext_example[0])
			snprintf(ext_example, sizeof(ext_example), "%s", ext);
		if (opt.compress ? !c->ext_ok : c->ext_seen) {
			if (!c_ext_mismatch)
				fprintf(stderr, "lwsload: conn %d: Sec-WebSocket-Extensions '%s'\n", c->idx,
					n > 0 ? ext : "(none)");
			c_ext_mismatch++;
		}
		if (c->ext_ok)
			c_negotiated++;
		return 0;
	}

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!c)
			return -1;
		c->fd = libwebsocket_get_socket_fd(wsi);
		if (opt.mode == M_HANDSHAKE) {
			uint64_t t = now_ns(), o, n;

			if (measuring) {
				hadd(&h_upgrade, t - c->t_connect);
				if (!tcp_bytes(c->fd, &o, &n)) {
					c_hs_wire_out += o;
					c_hs_wire_in += n;
					c_hs_wire_n++;
				}
			}
			if (c->fd >= 0 && c->fd < fd_owner_cap)
				fd_owner[c->fd] = c->idx + 1;
			c->ph = H_WAIT_CLOSED;
			c->t_phase = t;
			/*
			 * Close from the CLIENT_WRITEABLE that follows (as in v1.23,
			 * CLIENT_ESTABLISHED's return value is ignored).
			 */
			libwebsocket_callback_on_writable(ctx, wsi);
			return 0;
		}
		c->state = C_OPEN;
		n_open++;
		n_established++;
		n_pending--;
		c->last_progress = now_ns();
		if (opt.mode == M_ECHO || (opt.mode == M_IDLE && opt.idle_msg))
			libwebsocket_callback_on_writable(ctx, wsi);
		break;

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!c)
			break;
		if (opt.mode == M_HANDSHAKE) {
			if (measuring)
				c_failures++;
			c->ph = H_IDLE;
			break;
		}
		if (!n_failed_connect)
			fprintf(stderr, "lwsload: conn %d: connection failed\n", c->idx);
		n_failed_connect++;
		c_errors++;
		c->state = C_FAILED;
		n_pending--;
		break;

	case LWS_CALLBACK_CLOSED:
		if (!c)
			break;
		if (opt.mode == M_HANDSHAKE) {
			if (c->ph == H_WAIT_CLOSED) {
				c->ph = H_WAIT_FD;
				c->t_phase = now_ns();
			}
			break;
		}
		if (c->state == C_OPEN)
			n_open--;
		c->state = C_CLOSED;
		if (!stopping) {
			if (!c_peer_closes)
				fprintf(stderr, "lwsload: conn %d closed by the peer\n", c->idx);
			c_peer_closes++;
		}
		break;

	case LWS_CALLBACK_DEL_POLL_FD: {
		int fd = (int)(long)in, w;

		if (opt.mode != M_HANDSHAKE || fd < 0 || fd >= fd_owner_cap || !fd_owner[fd])
			break;
		w = fd_owner[fd] - 1;
		fd_owner[fd] = 0;
		c = &conns[w];
		/* DEL_POLL_FD comes before CLOSED (v1.23's order) */
		if ((c->ph == H_WAIT_FD || c->ph == H_WAIT_CLOSED) && c->fd == fd) {
			uint64_t t = now_ns();

			if (measuring) {
				c_handshakes++;
				hadd(&h_cycle, t - c->t_connect);
			}
			c->ph = H_IDLE;
		}
		break;
	}

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c && opt.mode == M_HANDSHAKE)
			/* close: the library sends a close frame */
			return c->ph == H_WAIT_CLOSED ? -1 : 0;
		if (!c || stopping || c->state != C_OPEN)
			break;
		if (opt.mode == M_IDLE) {
			/* one WRITEABLE follows CLIENT_ESTABLISHED unasked (v1.23) */
			if (opt.idle_msg && c->seq_sent == 0 && send_one(c))
				return -1;
			break;
		}
		while (c->inflight < opt.depth) {
			if (send_one(c))
				return -1;
			if (c->inflight < opt.depth && lws_send_pipe_choked(wsi)) {
				libwebsocket_callback_on_writable(ctx, wsi);
				break;
			}
		}
		break;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!c || c->state != C_OPEN)
			break;
		echo_receive(c, wsi, in, len);
		if (!c->rx_started) {
			if (opt.mode == M_IDLE)
				c->idle_echoed = c->seq_recv > 0;
			else if (!stopping)
				libwebsocket_callback_on_writable(ctx, wsi);
		}
		break;

	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "lwsload", lwsload_callback, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* ------------------------------------------------------------------ connecting */

static struct libwebsocket *connect_one(struct conn *c)
{
	char fresh[96];
	const char *host = opt.host;

	if (opt.fresh_tls) {
		/* a name the client never used: nothing to resume (sent as SNI and Host) */
		snprintf(fresh, sizeof(fresh), "c%" PRIu64 ".w%d.lwsload.test", c_fresh_names++, c->idx);
		host = fresh;
	} else if (opt.ssl && opt.mode == M_HANDSHAKE) {
		/*
		 * One name per worker: each worker resumes from the tickets of its own
		 * previous connection (the client keeps at most 8 per name, so workers
		 * sharing one name would run short and fall back to full handshakes)
		 */
		snprintf(fresh, sizeof(fresh), "w%d.lwsload.test", c->idx);
		host = fresh;
	}
	c->t_connect = now_ns();
	c->fd = -1;
	c->wsi = libwebsocket_client_connect_extended(context, opt.host, opt.port, opt.ssl ? 2 : 0,
						      opt.path, host, host, NULL, -1, c);
	return c->wsi;
}

/* opens connections until all are open or failed, or the deadline; 0 when all opened */
static int open_all(uint64_t deadline)
{
	int next = 0;

	while (!interrupted && now_ns() < deadline) {
		while (next < opt.conns && n_pending < opt.connect_batch) {
			struct conn *c = &conns[next++];

			c->state = C_CONNECTING;
			n_pending++;
			if (!connect_one(c)) {
				c->state = C_FAILED;
				n_pending--;
				n_failed_connect++;
				c_errors++;
			}
		}
		if (next >= opt.conns && n_pending == 0)
			break;
		if (libwebsocket_service(context, 10) < 0) {
			c_errors++;
			break;
		}
	}
	return n_open == opt.conns ? 0 : -1;
}

static int service_until(uint64_t t_end)
{
	while (!interrupted && now_ns() < t_end)
		if (libwebsocket_service(context, 10) < 0) {
			c_errors++;
			return -1;
		}
	return 0;
}

/* ------------------------------------------------------------------ modes */

static const char *transport(void)
{
	static char t[64];

	snprintf(t, sizeof(t), "%s-%s%s", opt.ssl ? "wss" : "ws", opt.json ? "text" : "binary",
		 opt.compress ? "-pmd" : "");
	return t;
}

static int run_echo(void)
{
	uint64_t t0, t_start, t_end, last_check, wire_out = 0, wire_in = 0;
	double secs = 0;
	int i, tcp_conns = 0;

	if (make_pool()) {
		fprintf(stderr, "lwsload: out of memory\n");
		return 1;
	}
	for (i = 0; i < opt.conns; i++) {
		conns[i].t_sent = calloc((size_t)opt.depth, sizeof(uint64_t));
		if (!conns[i].t_sent) {
			fprintf(stderr, "lwsload: out of memory\n");
			return 1;
		}
	}
	t0 = now_ns();
	open_all(t0 + (uint64_t)(30 + opt.conns / 100) * 1000000000ull);
	fprintf(stderr, "all %d of %d connections open (%d failed) in %.2f s\n", n_open, opt.conns,
		n_failed_connect, (double)(now_ns() - t0) / 1e9);
	if (n_open == 0) {
		stopping = 1;
		goto result;
	}
	service_until(now_ns() + (uint64_t)(opt.warmup * 1e9));

	start_window_wire();
	sched_mark(0);
	measuring = 1;
	t_start = now_ns();
	t_end = t_start + (uint64_t)(opt.secs * 1e9);
	last_check = t_start;
	fprintf(stderr, "lwsload: measuring\n");
	while (!interrupted && now_ns() < t_end) {
		uint64_t t;

		if (libwebsocket_service(context, 10) < 0) {
			c_errors++;
			break;
		}
		t = now_ns();
		if (t - last_check > 250000000ull) {
			last_check = t;
			for (i = 0; i < opt.conns; i++) {
				struct conn *c = &conns[i];

				if (c->state == C_OPEN && c->inflight > 0 && !c->stalled &&
				    t - c->last_progress > STALL_NS) {
					c->stalled = 1;
					c_stalled++;
					fprintf(stderr, "lwsload: conn %d: no progress for %.1f s with %d in flight "
						"(%" PRIu64 " echoed)\n", c->idx,
						(double)(t - c->last_progress) / 1e9, c->inflight, c->seq_recv);
				}
			}
		}
	}
	measuring = 0;
	t_end = now_ns();
	sched_mark(1);
	for (i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		uint64_t o, n;

		if (c->tcp_ok && c->state == C_OPEN && !tcp_bytes(c->fd, &o, &n)) {
			wire_out += o - c->tcp_out0;
			wire_in += n - c->tcp_in0;
			tcp_conns++;
		}
	}
	stopping = 1;
	secs = (double)(t_end - t_start) / 1e9;

result:
	{
		double rate = secs > 0 ? (double)c_msgs / secs : 0;

		printf("RESULT mode=echo label=%s transport=%s conns=%d open=%d size=%zu depth=%d secs=%.2f "
		       "msgs=%" PRIu64 " msgs_per_s=%.0f MB_per_s=%.2f p50_us=%.0f p90_us=%.0f p99_us=%.0f "
		       "max_us=%.0f bad_len=%" PRIu64 " bad_data=%" PRIu64 " peer_closes=%" PRIu64
		       " errors=%" PRIu64 " stalled=%" PRIu64 " ext_mismatch=%" PRIu64
		       " compress=%d negotiated=%" PRIu64 " compressed_echoes=%" PRIu64
		       " payload_out_B=%" PRIu64 " payload_in_B=%" PRIu64 " wire_out_B=%" PRIu64
		       " wire_in_B=%" PRIu64 " wire_conns=%d wire_ratio_out=%.4f wire_ratio_in=%.4f"
		       " wire_ratio=%.4f",
		       opt.label, transport(), opt.conns, n_established, opt.size, opt.depth,
		       secs, c_msgs, rate, secs > 0 ? (double)c_payload_in / secs / 1e6 : 0,
		       hpct(&h_lat, 0.50) / 1e3, hpct(&h_lat, 0.90) / 1e3, hpct(&h_lat, 0.99) / 1e3,
		       (double)h_lat.max / 1e3, c_bad_len, c_bad_data, c_peer_closes, c_errors,
		       c_stalled, c_ext_mismatch, opt.compress, c_negotiated, c_compressed_echoes,
		       c_payload_out, c_payload_in, wire_out, wire_in, tcp_conns,
		       c_payload_out ? (double)wire_out / (double)c_payload_out : 0,
		       c_payload_in ? (double)wire_in / (double)c_payload_in : 0,
		       c_payload_out + c_payload_in ?
		       (double)(wire_out + wire_in) / (double)(c_payload_out + c_payload_in) : 0);
		print_sched();
		printf("\n");
	}
	if (ext_example[0])
		fprintf(stderr, "lwsload: negotiated: %s\n", ext_example);
	return !(n_established == opt.conns && !c_bad_len && !c_bad_data && !c_peer_closes && !c_errors &&
		 !c_stalled && !c_ext_mismatch && c_msgs > 0);
}

static int run_idle(void)
{
	uint64_t t0, deadline, held0;
	int ready = 0, i, echoed = 0;

	if (opt.idle_msg) {
		if (make_pool()) {
			fprintf(stderr, "lwsload: out of memory\n");
			return 1;
		}
		opt.depth = 1;
		for (i = 0; i < opt.conns; i++) {
			conns[i].t_sent = calloc(1, sizeof(uint64_t));
			if (!conns[i].t_sent)
				return 1;
		}
	}
	t0 = now_ns();
	deadline = t0 + (uint64_t)(30 + opt.conns / 100) * 1000000000ull;
	open_all(deadline);
	/* with --idle-msg: each connection's one message echoed */
	while (opt.idle_msg && !interrupted && now_ns() < deadline) {
		echoed = 0;
		for (i = 0; i < opt.conns; i++)
			echoed += conns[i].idle_echoed;
		if (echoed >= n_open)
			break;
		if (libwebsocket_service(context, 10) < 0)
			break;
	}
	if (opt.idle_msg) {
		echoed = 0;
		for (i = 0; i < opt.conns; i++)
			echoed += conns[i].idle_echoed;
		if (echoed < n_open)
			c_errors += (uint64_t)(n_open - echoed);
	}
	ready = n_open == opt.conns;
	fprintf(stderr, "lwsload: %d of %d connections open in %.2f s\n", n_open, opt.conns,
		(double)(now_ns() - t0) / 1e9);
	printf("READY conns=%d errors=%" PRIu64 "\n", n_open, c_errors + c_bad_len + c_bad_data);
	fflush(stdout);
	held0 = now_ns();
	stopping = 0;
	service_until(held0 + (uint64_t)(opt.secs * 1e9));
	stopping = 1;
	printf("RESULT mode=idle label=%s transport=%s conns=%d open=%d held_s=%.2f ready=%d "
	       "msg_size=%zu peer_closes=%" PRIu64 " errors=%" PRIu64 " bad_len=%" PRIu64
	       " bad_data=%" PRIu64 " ext_mismatch=%" PRIu64 " compress=%d negotiated=%" PRIu64 "\n",
	       opt.label, transport(), opt.conns, n_open, (double)(now_ns() - held0) / 1e9, ready,
	       opt.idle_msg ? opt.size : 0, c_peer_closes, c_errors, c_bad_len, c_bad_data,
	       c_ext_mismatch, opt.compress, c_negotiated);
	if (ext_example[0])
		fprintf(stderr, "lwsload: negotiated: %s\n", ext_example);
	return !(ready && !c_peer_closes && !c_errors && !c_bad_len && !c_bad_data && !c_ext_mismatch);
}

static int run_handshake(void)
{
	uint64_t t0, t_start = 0, t_end, t;
	struct rlimit rl;
	int i;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576)
		fd_owner_cap = 1048576;
	else
		fd_owner_cap = (int)rl.rlim_cur;
	fd_owner = calloc((size_t)fd_owner_cap, sizeof(int));
	if (!fd_owner)
		return 1;
	t0 = now_ns();
	t_end = t0 + (uint64_t)((opt.warmup + opt.secs) * 1e9);
	while (!interrupted) {
		t = now_ns();
		if (!measuring && t >= t0 + (uint64_t)(opt.warmup * 1e9)) {
			measuring = 1;
			t_start = t;
			sched_mark(0);
			fprintf(stderr, "lwsload: measuring\n");
		}
		if (t >= t_end)
			break;
		for (i = 0; i < opt.conns; i++) {
			struct conn *c = &conns[i];

			if (c->ph != H_IDLE && t - c->t_phase > CYCLE_TIMEOUT_NS) {
				/* the library's own timeouts reclaim the connection */
				if (measuring)
					c_close_timeouts++;
				if (c->fd >= 0 && c->fd < fd_owner_cap && fd_owner[c->fd] == c->idx + 1)
					fd_owner[c->fd] = 0;
				c->ph = H_IDLE;
			}
			if (c->ph == H_IDLE) {
				c->ph = H_CONNECTING;
				c->t_phase = t;
				if (!connect_one(c)) {
					if (measuring)
						c_failures++;
					c->ph = H_IDLE;
				}
			}
		}
		if (libwebsocket_service(context, 10) < 0) {
			c_errors++;
			break;
		}
	}
	t = now_ns();
	measuring = 0;
	stopping = 1;
	sched_mark(1);
	{
		double secs = t_start ? (double)(t - t_start) / 1e9 : 0;

		printf("RESULT mode=handshake label=%s transport=%s workers=%d secs=%.2f handshakes=%" PRIu64
		       " hs_per_s=%.0f upgrade_p50_us=%.0f upgrade_p99_us=%.0f cycle_p50_us=%.0f"
		       " cycle_p99_us=%.0f close_timeouts=%" PRIu64 " failures=%" PRIu64
		       " errors=%" PRIu64 " ext_mismatch=%" PRIu64 " fresh_tls=%d"
		       " hs_wire_out_B=%.0f hs_wire_in_B=%.0f",
		       opt.label, transport(), opt.conns, secs, c_handshakes,
		       secs > 0 ? (double)c_handshakes / secs : 0, hpct(&h_upgrade, 0.5) / 1e3,
		       hpct(&h_upgrade, 0.99) / 1e3, hpct(&h_cycle, 0.5) / 1e3,
		       hpct(&h_cycle, 0.99) / 1e3, c_close_timeouts, c_failures, c_errors,
		       c_ext_mismatch, opt.fresh_tls,
		       c_hs_wire_n ? (double)c_hs_wire_out / (double)c_hs_wire_n : 0,
		       c_hs_wire_n ? (double)c_hs_wire_in / (double)c_hs_wire_n : 0);
		print_sched();
		printf("\n");
	}
	return !(c_handshakes > 0 && !c_close_timeouts && !c_failures && !c_errors && !c_ext_mismatch);
}

/* ------------------------------------------------------------------ main */

static int parse_url(const char *u)
{
	const char *p, *slash, *colon;
	size_t hl;

	if (!strncmp(u, "ws://", 5)) {
		p = u + 5;
	} else if (!strncmp(u, "wss://", 6)) {
		p = u + 6;
		opt.ssl = 1;
	} else {
		return -1;
	}
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	if (!colon)
		return -1;
	hl = (size_t)(colon - p);
	if (!hl || hl >= sizeof(opt.host))
		return -1;
	memcpy(opt.host, p, hl);
	opt.host[hl] = 0;
	opt.port = atoi(colon + 1);
	snprintf(opt.path, sizeof(opt.path), "%s", *slash ? slash : "/");
	return opt.port > 0 && opt.port < 65536 ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: lwsload echo|idle|handshake -u ws[s]://HOST:PORT/[PATH] [-c N] [-s BYTES]\n"
		"               [-d DEPTH] [-t SECS] [-w WARMUP] [-l LABEL] [--ssl] [--compress]\n"
		"               [--json] [--idle-msg] [--fresh-tls] [--connect-batch N]\n"
		"               [--rx-buffer BYTES]\n");
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "ssl", no_argument, NULL, 'S' },
		{ "compress", no_argument, NULL, 'Z' },
		{ "json", no_argument, NULL, 'J' },
		{ "idle-msg", no_argument, NULL, 'I' },
		{ "fresh-tls", no_argument, NULL, 'F' },
		{ "connect-batch", required_argument, NULL, 'B' },
		{ "rx-buffer", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct lws_context_creation_info info;
	struct sigaction sa;
	struct rlimit rl;
	const char *url = NULL;
	int c, rc;

	if (argc < 2) {
		usage();
		return 2;
	}
	if (!strcmp(argv[1], "echo"))
		opt.mode = M_ECHO;
	else if (!strcmp(argv[1], "idle"))
		opt.mode = M_IDLE;
	else if (!strcmp(argv[1], "handshake"))
		opt.mode = M_HANDSHAKE;
	else {
		usage();
		return 2;
	}
	opt.conns = 100;
	opt.size = 64;
	opt.depth = 1;
	opt.secs = 10;
	opt.warmup = 1;
	opt.label = "-";
	opt.connect_batch = 256;
	opt.rx_buffer = 65536;
	optind = 2;
	while ((c = getopt_long(argc, argv, "u:c:s:d:t:w:l:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'u': url = optarg; break;
		case 'c': opt.conns = atoi(optarg); break;
		case 's': opt.size = (size_t)strtoull(optarg, NULL, 10); break;
		case 'd': opt.depth = atoi(optarg); break;
		case 't': opt.secs = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'l': opt.label = optarg; break;
		case 'S': opt.ssl = 1; break;
		case 'Z': opt.compress = 1; break;
		case 'J': opt.json = 1; break;
		case 'I': opt.idle_msg = 1; break;
		case 'F': opt.fresh_tls = 1; break;
		case 'B': opt.connect_batch = atoi(optarg); break;
		case 'R': opt.rx_buffer = (size_t)strtoull(optarg, NULL, 10); break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (!url || parse_url(url)) {
		fprintf(stderr, "lwsload: -u ws://HOST:PORT/ or wss://HOST:PORT/ is required\n");
		return 2;
	}
	if (opt.conns < 1 || opt.conns > MAX_CONNS || opt.depth < 1 || opt.depth > 4096 ||
	    opt.secs < 0 || opt.secs > 86400 || opt.warmup < 0 || opt.warmup > 3600 ||
	    opt.connect_batch < 1 || opt.size > (256u << 20)) {
		fprintf(stderr, "lwsload: an option is out of range\n");
		return 2;
	}
	if (opt.mode == M_HANDSHAKE && (opt.json || opt.idle_msg)) {
		fprintf(stderr, "lwsload: handshake mode sends no messages\n");
		return 2;
	}
	if (opt.fresh_tls && !opt.ssl) {
		fprintf(stderr, "lwsload: --fresh-tls needs --ssl\n");
		return 2;
	}
	if (opt.mode == M_IDLE && !opt.idle_msg)
		opt.size = 0;
	protocols[0].rx_buffer_size = opt.rx_buffer;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	conns = calloc((size_t)opt.conns, sizeof(*conns));
	if (!conns) {
		fprintf(stderr, "lwsload: out of memory\n");
		return 1;
	}
	for (c = 0; c < opt.conns; c++) {
		conns[c].idx = c;
		conns[c].fd = -1;
	}

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.extensions = opt.compress ? libwebsocket_get_internal_extensions() : NULL;
	info.gid = -1;
	info.uid = -1;
	context = libwebsocket_create_context(&info);
	if (!context) {
		fprintf(stderr, "lwsload: libwebsocket_create_context failed\n");
		return 1;
	}

	switch (opt.mode) {
	case M_ECHO: rc = run_echo(); break;
	case M_IDLE: rc = run_idle(); break;
	default: rc = run_handshake(); break;
	}
	fflush(stdout);
	stopping = 1;
	libwebsocket_context_destroy(context);
	return rc;
}
