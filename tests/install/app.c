/*
 * Built by tests/install_behaviour.rs against an installed libwebsockets (found
 * through pkg-config or CMake). One process, one context: a server on the port
 * given as argv[1] and a client connecting to it; the client sends a message, the
 * server echoes it, the client checks it. Prints the library version first
 * ("version: 1.3 <hash>"), "echo ok" at the end; exit status 0 only on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define MSG "hello from an installed libwebsockets"

static int done;	/* 1: echo checked, -1: failure */

static int callback_echo(struct libwebsocket_context *context, struct libwebsocket *wsi,
			 enum libwebsocket_callback_reasons reason, void *user,
			 void *in, size_t len)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 256 + LWS_SEND_BUFFER_POST_PADDING];
	unsigned char *p = buf + LWS_SEND_BUFFER_PRE_PADDING;

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_RECEIVE:	/* server side: send it back */
		if (len > 256)
			return -1;
		memcpy(p, in, len);
		if (libwebsocket_write(wsi, p, len, LWS_WRITE_TEXT) != (int)len)
			return -1;
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		libwebsocket_callback_on_writable(context, wsi);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		memcpy(p, MSG, strlen(MSG));
		if (libwebsocket_write(wsi, p, strlen(MSG), LWS_WRITE_TEXT) != (int)strlen(MSG))
			return -1;
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (len == strlen(MSG) && !memcmp(in, MSG, len)) {
			done = 1;
		} else {
			fprintf(stderr, "app: wrong echo (%zu bytes)\n", len);
			done = -1;
		}
		return -1;	/* close the client */
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		fprintf(stderr, "app: client connection error\n");
		done = -1;
		break;
	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols protocols[] = {
	{ "echo", callback_echo, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	struct libwebsocket_context *context;
	unsigned char md[20];
	int port = argc > 1 ? atoi(argv[1]) : 7690;
	int i;

	printf("version: %s\n", lws_get_library_version());
	if (!libwebsockets_SHA1((const unsigned char *)"abc", 3, md) || md[0] != 0xa9) {
		fprintf(stderr, "app: SHA-1 wrong\n");
		return 1;
	}

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	context = libwebsocket_create_context(&info);
	if (!context) {
		fprintf(stderr, "app: libwebsocket_create_context failed\n");
		return 1;
	}
	if (!libwebsocket_client_connect(context, "127.0.0.1", port, 0, "/", "127.0.0.1",
					 "127.0.0.1", "echo", -1)) {
		fprintf(stderr, "app: libwebsocket_client_connect failed\n");
		libwebsocket_context_destroy(context);
		return 1;
	}
	for (i = 0; i < 200 && !done; i++)	/* at most about 10 s */
		libwebsocket_service(context, 50);
	libwebsocket_context_destroy(context);
	if (done != 1) {
		fprintf(stderr, "app: no echo\n");
		return 1;
	}
	printf("echo ok\n");
	return 0;
}
