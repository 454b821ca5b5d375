/*
 * openssl_coexist: this library's TLS and the system's OpenSSL in one process, for
 * tests/tls_behaviour.rs (built linked dynamically, and statically with
 * libwebsockets.a, both times with -lssl -lcrypto).
 *
 * Usage: openssl_coexist CERT KEY PORT
 *
 * A wss server context of this library on 127.0.0.1:PORT with the given certificate;
 * a thread of the same process connects to it with OpenSSL's own client (TLS 1.3,
 * then TLS 1.2), upgrades to WebSocket, sends a masked text message and reads the
 * server's echo; around it OpenSSL's SHA-256, SHA-1 and random bytes are checked
 * against known answers. A symbol of the library's crypto code colliding with
 * OpenSSL's would fail the static link, or make one of the two stacks call into the
 * other and fail a handshake or a known answer here.
 *
 * Prints "openssl_coexist: PASS ..." or "openssl_coexist: FAIL: why"; exit 0 on PASS.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <libwebsockets.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int client_done;
static char client_fail[256];
static char client_report[256];
static int server_echoes;

static const char msg[] = "hello from OpenSSL";

static int callback_echo(struct libwebsocket_context *context, struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 256 + LWS_SEND_BUFFER_POST_PADDING];

	(void)context;
	(void)user;
	if (reason != LWS_CALLBACK_RECEIVE)
		return 0;
	if (len > 256)
		return -1;
	memcpy(&buf[LWS_SEND_BUFFER_PRE_PADDING], in, len);
	if (libwebsocket_write(wsi, &buf[LWS_SEND_BUFFER_PRE_PADDING], len, LWS_WRITE_TEXT) <
	    (int)len)
		return -1;
	pthread_mutex_lock(&lock);
	server_echoes++;
	pthread_mutex_unlock(&lock);
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "coexist", callback_echo, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static int hex_is(const unsigned char *d, size_t n, const char *want)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(&hex[2 * i], 3, "%02x", d[i]);
	return strcmp(hex, want) == 0;
}

/* OpenSSL's own known answers: SHA-256 and SHA-1 of "abc", and random bytes */
static const char *openssl_known_answers(void)
{
	unsigned char d[EVP_MAX_MD_SIZE], r1[32], r2[32];

	SHA256((const unsigned char *)"abc", 3, d);
	if (!hex_is(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
		return "OpenSSL SHA-256 of \"abc\" is wrong";
	SHA1((const unsigned char *)"abc", 3, d);
	if (!hex_is(d, 20, "a9993e364706816aba3e25717850c26c9cd0d89d"))
		return "OpenSSL SHA-1 of \"abc\" is wrong";
	if (RAND_bytes(r1, sizeof(r1)) != 1 || RAND_bytes(r2, sizeof(r2)) != 1)
		return "OpenSSL RAND_bytes failed";
	if (!memcmp(r1, r2, sizeof(r1)))
		return "OpenSSL RAND_bytes gave the same 32 bytes twice";
	return NULL;
}

static int read_full(SSL *ssl, unsigned char *p, int n)
{
	int got = 0, r;

	while (got < n) {
		r = SSL_read(ssl, p + got, n - got);
		if (r <= 0)
			return -1;
		got += r;
	}
	return got;
}

/* one connection with OpenSSL's client at that protocol version; NULL on success */
static const char *one_connection(int port, int version, char *report, size_t report_size)
{
	static const char request[] =
		"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n";
	unsigned char frame[6 + sizeof(msg)], reply[2 + sizeof(msg)];
	const unsigned char mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	char head[1024];
	size_t n = strlen(msg), i;
	struct sockaddr_in sa;
	const char *why = NULL;
	SSL_CTX *ctx;
	SSL *ssl = NULL;
	int fd, hl = 0, r;

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return "SSL_CTX_new failed";
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_max_proto_version(ctx, version);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		why = "cannot connect to the server";
		goto out;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		why = "OpenSSL's handshake with the library's server failed";
		goto out;
	}
	if (SSL_write(ssl, request, (int)strlen(request)) != (int)strlen(request)) {
		why = "SSL_write of the upgrade request failed";
		goto out;
	}
	while (hl < (int)sizeof(head) - 1) {
		r = SSL_read(ssl, head + hl, 1);
		if (r <= 0)
			break;
		hl += r;
		head[hl] = '\0';
		if (hl >= 4 && !memcmp(head + hl - 4, "\r\n\r\n", 4))
			break;
	}
	head[hl] = '\0';
	if (strncmp(head, "HTTP/1.1 101", 12) || !strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
		why = "no 101 with the right Sec-WebSocket-Accept";
		goto out;
	}
	frame[0] = 0x81;
	frame[1] = (unsigned char)(0x80 | n);
	memcpy(&frame[2], mask, 4);
	for (i = 0; i < n; i++)
		frame[6 + i] = (unsigned char)msg[i] ^ mask[i % 4];
	if (SSL_write(ssl, frame, (int)(6 + n)) != (int)(6 + n)) {
		why = "SSL_write of the message failed";
		goto out;
	}
	if (read_full(ssl, reply, (int)(2 + n)) < 0 || reply[0] != 0x81 || reply[1] != n ||
	    memcmp(&reply[2], msg, n)) {
		why = "the echo did not come back unchanged";
		goto out;
	}
	snprintf(report, report_size, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	SSL_shutdown(ssl);
out:
	if (ssl)
		SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	SSL_CTX_free(ctx);
	return why;
}

static void *client_main(void *arg)
{
	int port = *(int *)arg;
	char r13[96] = "", r12[96] = "";
	const char *why;

	why = one_connection(port, TLS1_3_VERSION, r13, sizeof(r13));
	if (!why)
		why = one_connection(port, TLS1_2_VERSION, r12, sizeof(r12));
	if (!why)
		why = openssl_known_answers();
	pthread_mutex_lock(&lock);
	if (why)
		snprintf(client_fail, sizeof(client_fail), "%s", why);
	snprintf(client_report, sizeof(client_report), "%s; %s", r13, r12);
	client_done = 1;
	pthread_mutex_unlock(&lock);
	return NULL;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	const char *why;
	long long deadline;
	pthread_t thread;
	int port, done = 0, echoes;

	if (argc != 4) {
		fprintf(stderr, "usage: openssl_coexist CERT KEY PORT\n");
		return 2;
	}
	port = atoi(argv[3]);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	why = openssl_known_answers();
	if (why) {
		printf("openssl_coexist: FAIL: before the context: %s\n", why);
		return 1;
	}
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.ssl_cert_filepath = argv[1];
	info.ssl_private_key_filepath = argv[2];
	info.gid = -1;
	info.uid = -1;
	context = libwebsocket_create_context(&info);
	if (!context) {
		printf("openssl_coexist: FAIL: libwebsocket_create_context failed\n");
		return 1;
	}
	if (pthread_create(&thread, NULL, client_main, &port)) {
		printf("openssl_coexist: FAIL: pthread_create failed\n");
		return 1;
	}
	deadline = now_ms() + 20000;
	while (!done && now_ms() < deadline) {
		libwebsocket_service(context, 20);
		pthread_mutex_lock(&lock);
		done = client_done;
		pthread_mutex_unlock(&lock);
	}
	if (!done) {
		printf("openssl_coexist: FAIL: the OpenSSL client did not finish within 20 s\n");
		return 1;
	}
	pthread_join(thread, NULL);
	libwebsocket_context_destroy(context);
	echoes = server_echoes;
	if (client_fail[0]) {
		printf("openssl_coexist: FAIL: %s\n", client_fail);
		return 1;
	}
	if (echoes != 2) {
		printf("openssl_coexist: FAIL: %d echoes by the server, not 2\n", echoes);
		return 1;
	}
	why = openssl_known_answers();
	if (why) {
		printf("openssl_coexist: FAIL: after the context: %s\n", why);
		return 1;
	}
	printf("openssl_coexist: PASS %s; %s\n", OpenSSL_version(OPENSSL_VERSION), client_report);
	return 0;
}
