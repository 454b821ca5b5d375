/*
 * tls_threads: TLS contexts on several threads at once, for tests/tls_behaviour.rs
 * (run under helgrind and drd).
 *
 * Usage: tls_threads CERT KEY PORT
 *
 * Three threads, released together by a barrier, each create their own context: a
 * wss server on 127.0.0.1:PORT+i with CERT and KEY (and its own protocols array).
 * Each then connects three times, one after the other, as a wss client of its own
 * server (ssl_connection 2), sends "ping", gets it echoed, and closes; then it
 * destroys its context. The first uses of the TLS code in the process (certificate
 * and key parsing, handshakes, record protection) thus happen on several threads at
 * the same moment.
 *
 * Prints "tls_threads: PASS" or "tls_threads: FAIL: ..."; exit 0 on PASS.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define THREADS 3
#define ROUNDS 3

static const char *cert, *key;
static pthread_barrier_t barrier;

struct per_thread {
	int port, done, echoes, errors;
	struct libwebsocket_protocols protocols[2];
};

static int callback_echo(struct libwebsocket_context *context, struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct per_thread *t = libwebsocket_context_user(context);
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 64 + LWS_SEND_BUFFER_POST_PADDING];
	unsigned char *p = &buf[LWS_SEND_BUFFER_PRE_PADDING];

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_RECEIVE:
		if (len > 64)
			return -1;
		memcpy(p, in, len);
		if (libwebsocket_write(wsi, p, len, LWS_WRITE_TEXT) < (int)len)
			return -1;
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		memcpy(p, "ping", 4);
		if (libwebsocket_write(wsi, p, 4, LWS_WRITE_TEXT) < 4)
			return -1;
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (len == 4 && !memcmp(in, "ping", 4))
			t->echoes++;
		else
			t->errors++;
		t->done = 1;
		return -1;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		t->errors++;
		t->done = 1;
		break;
	default:
		break;
	}
	return 0;
}

static void *thread_main(void *arg)
{
	struct per_thread *t = arg;
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	int round, i;

	t->protocols[0].name = "echo";
	t->protocols[0].callback = callback_echo;
	memset(&info, 0, sizeof(info));
	info.port = t->port;
	info.iface = "127.0.0.1";
	info.protocols = t->protocols;
	info.ssl_cert_filepath = cert;
	info.ssl_private_key_filepath = key;
	info.gid = -1;
	info.uid = -1;
	info.user = t;
	pthread_barrier_wait(&barrier);
	context = libwebsocket_create_context(&info);
	if (!context) {
		t->errors++;
		return NULL;
	}
	for (round = 0; round < ROUNDS; round++) {
		t->done = 0;
		if (!libwebsocket_client_connect(context, "127.0.0.1", t->port, 2, "/", "localhost",
						 "localhost", "echo", -1)) {
			t->errors++;
			break;
		}
		/* at most 60 s a round (valgrind is slow) */
		for (i = 0; i < 3000 && !t->done; i++)
			libwebsocket_service(context, 20);
	}
	for (i = 0; i < 10; i++)
		libwebsocket_service(context, 10);
	libwebsocket_context_destroy(context);
	return NULL;
}

int main(int argc, char **argv)
{
	static struct per_thread t[THREADS];
	pthread_t threads[THREADS];
	int i, bad = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: tls_threads CERT KEY PORT\n");
		return 2;
	}
	cert = argv[1];
	key = argv[2];
	lws_set_log_level(LLL_ERR, NULL);
	pthread_barrier_init(&barrier, NULL, THREADS);
	for (i = 0; i < THREADS; i++) {
		t[i].port = atoi(argv[3]) + i;
		if (pthread_create(&threads[i], NULL, thread_main, &t[i])) {
			printf("tls_threads: FAIL: pthread_create\n");
			return 1;
		}
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		printf("thread %d: %d echoes, %d errors\n", i, t[i].echoes, t[i].errors);
		if (t[i].echoes != ROUNDS || t[i].errors)
			bad = 1;
	}
	printf("tls_threads: %s\n", bad ? "FAIL: not every round echoed" : "PASS");
	return bad;
}
