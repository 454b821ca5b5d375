/*
 * header_test.c - the header used the way existing v1.23 programs use it.
 *
 *  - included twice (directly and through another header of the application), which
 *    must be harmless in C and in C++;
 *  - <poll.h>, <unistd.h> and <assert.h> come with it (programs rely on that: no
 *    other include precedes the uses below except <stdio.h>/<string.h>);
 *  - callbacks declared through the callback_function typedef, protocol and
 *    extension arrays initialised positionally, as the test programs do;
 *  - constant macros usable in array sizes and case labels.
 */
#include <libwebsockets.h>
#include <libwebsockets.h>

#include <stdio.h>
#include <string.h>

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

static callback_function http_callback;
static callback_function echo_callback;

static int calls;

static int http_callback(struct libwebsocket_context *context,
			 struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user,
			 void *in, size_t len)
{
	(void)context;
	(void)wsi;
	(void)user;
	(void)in;
	(void)len;
	calls++;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return 1;
	case LWS_CALLBACK_ADD_POLL_FD:
	case LWS_CALLBACK_DEL_POLL_FD:
		return 0;
	default:
		return 0;
	}
}

static int echo_callback(struct libwebsocket_context *context,
			 struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user,
			 void *in, size_t len)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 64 +
			  LWS_SEND_BUFFER_POST_PADDING];

	(void)context;
	(void)user;
	calls++;
	if (reason == LWS_CALLBACK_RECEIVE && len <= 64 && wsi) {
		memcpy(&buf[LWS_SEND_BUFFER_PRE_PADDING], in, len);
		return libwebsocket_write(wsi, &buf[LWS_SEND_BUFFER_PRE_PADDING],
					  len, LWS_WRITE_TEXT) < 0;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{"http-only", http_callback, 0, 0, 0, NULL, 0},
	{"echo", echo_callback, 16, 4096, 1, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

#ifndef LWS_NO_EXTENSIONS
static extension_callback_function ext_callback;

static int ext_callback(struct libwebsocket_context *context,
			struct libwebsocket_extension *ext,
			struct libwebsocket *wsi,
			enum libwebsocket_extension_callback_reasons reason,
			void *user, void *in, size_t len)
{
	(void)context;
	(void)ext;
	(void)wsi;
	(void)reason;
	(void)user;
	(void)in;
	(void)len;
	return 0;
}

static struct libwebsocket_extension extensions[] = {
	{"x-test-ext", ext_callback, 8, NULL},
	{NULL, NULL, 0, NULL},
};
#endif

int main(void)
{
	struct lws_context_creation_info info;
	struct pollfd pfd; /* from <poll.h> through the header */
	pid_t me = getpid(); /* from <unistd.h> through the header */

	assert(me > 0); /* from <assert.h> through the header */

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.iface = NULL;
	info.protocols = protocols;
#ifndef LWS_NO_EXTENSIONS
	info.extensions = extensions;
	CHECK(extensions[0].callback == ext_callback,
	      "extension array initialised out of order");
#endif
	info.gid = -1;
	info.uid = -1;
	info.options = LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME;
	info.ka_time = 0;

	pfd.fd = -1;
	pfd.events = POLLIN | POLLOUT;
	pfd.revents = 0;
	CHECK(pfd.events == (POLLIN | POLLOUT), "struct pollfd unusable");

	CHECK(protocols[1].per_session_data_size == 16 &&
		      protocols[1].rx_buffer_size == 4096 &&
		      protocols[1].no_buffer_all_partial_tx == 1,
	      "positional initialisation of libwebsocket_protocols is off");
	CHECK(protocols[0].callback(NULL, NULL, LWS_CALLBACK_HTTP, NULL, NULL,
				    0) == 1,
	      "calling through libwebsocket_protocols.callback failed");
	CHECK(protocols[1].callback(NULL, NULL, LWS_CALLBACK_CLOSED, NULL, NULL,
				    0) == 0,
	      "calling the echo callback failed");
	CHECK(calls == 2, "callbacks called %d times", calls);
	CHECK(protocols[2].callback == NULL, "terminator callback not NULL");

	if (failures) {
		fprintf(stderr, "header_test: %d checks FAILED\n", failures);
		return 1;
	}
	printf("header_test: all checks passed\n");
	return 0;
}
