/*
 * An extension defined by the application (v1.23 extension API): "x-test-flip"
 * flips bit 0x20 of every payload byte on transmit and back on receive. A server
 * context and a client context in this process both register it; the client sends
 * a message, the server echoes it. Checks: negotiation and the construct/destroy
 * calls, PAYLOAD_TX/PAYLOAD_RX on both sides, the bytes on the wire really flipped
 * (seen by the server's RECEIVE only after its extension ran), and the round trip.
 * Self-checking: exit 0 when every check passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libwebsockets.h>

#define MSG "Hello, Extension!"

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

struct ext_counts {
	int ctx_construct, ctx_destruct, construct, client_construct, destroy, payload_tx, payload_rx;
	int any_established, confirm_okay, client_confirm;
};
static struct ext_counts srv, cli;
static int server_got, client_got, client_established, client_closed;
static char server_msg[64], client_msg[64];

struct flip_session { int magic; };

static void flip(struct lws_tokens *t)
{
	int i;
	for (i = 0; i < t->token_len; i++)
		t->token[i] ^= 0x20;
}

static int flip_ext(struct libwebsocket_context *context, struct libwebsocket_extension *ext,
		    struct libwebsocket *wsi, enum libwebsocket_extension_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	struct ext_counts *c = (struct ext_counts *)ext->per_context_private_data;
	struct flip_session *s = (struct flip_session *)user;
	(void)context; (void)wsi; (void)len;

	switch (reason) {
	case LWS_EXT_CALLBACK_SERVER_CONTEXT_CONSTRUCT:
	case LWS_EXT_CALLBACK_CLIENT_CONTEXT_CONSTRUCT:
		c->ctx_construct++;
		break;
	case LWS_EXT_CALLBACK_SERVER_CONTEXT_DESTRUCT:
	case LWS_EXT_CALLBACK_CLIENT_CONTEXT_DESTRUCT:
		c->ctx_destruct++;
		break;
	case LWS_EXT_CALLBACK_CONSTRUCT:
		c->construct++;
		if (s) s->magic = 0x5eed;
		break;
	case LWS_EXT_CALLBACK_CLIENT_CONSTRUCT:
		c->client_construct++;
		if (s) s->magic = 0x5eed;
		break;
	case LWS_EXT_CALLBACK_DESTROY:
		c->destroy++;
		CHECK(s && s->magic == 0x5eed, "DESTROY got the session data");
		break;
	case LWS_EXT_CALLBACK_ANY_WSI_ESTABLISHED:
		c->any_established++;
		break;
	case LWS_EXT_CALLBACK_PAYLOAD_TX:
		c->payload_tx++;
		flip((struct lws_tokens *)in);
		break;
	case LWS_EXT_CALLBACK_PAYLOAD_RX:
		c->payload_rx++;
		flip((struct lws_tokens *)in);
		break;
	default:
		break;
	}
	return 0;
}

static int server_cb(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 64 + LWS_SEND_BUFFER_POST_PADDING];
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY:
		srv.confirm_okay++;
		CHECK(in && !strcmp((char *)in, "x-test-flip"), "CONFIRM_EXTENSION_OKAY names the extension");
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (len < sizeof(server_msg)) {
			memcpy(server_msg, in, len);
			server_msg[len] = '\0';
		}
		server_got++;
		memcpy(buf + LWS_SEND_BUFFER_PRE_PADDING, in, len);
		libwebsocket_write(wsi, buf + LWS_SEND_BUFFER_PRE_PADDING, len, LWS_WRITE_TEXT);
		(void)ctx;
		break;
	default:
		break;
	}
	return 0;
}

static int client_cb(struct libwebsocket_context *ctx, struct libwebsocket *wsi,
		     enum libwebsocket_callback_reasons reason, void *user, void *in, size_t len)
{
	unsigned char buf[LWS_SEND_BUFFER_PRE_PADDING + 64 + LWS_SEND_BUFFER_POST_PADDING];
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONFIRM_EXTENSION_SUPPORTED:
		cli.client_confirm++;
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		client_established = 1;
		libwebsocket_callback_on_writable(ctx, wsi);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		memcpy(buf + LWS_SEND_BUFFER_PRE_PADDING, MSG, strlen(MSG));
		libwebsocket_write(wsi, buf + LWS_SEND_BUFFER_PRE_PADDING, strlen(MSG), LWS_WRITE_TEXT);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (len < sizeof(client_msg)) {
			memcpy(client_msg, in, len);
			client_msg[len] = '\0';
		}
		client_got++;
		return -1; /* done: close */
	case LWS_CALLBACK_CLOSED:
		client_closed = 1;
		break;
	default:
		break;
	}
	return 0;
}

static struct libwebsocket_protocols server_protocols[] = {
	{ "flip", server_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};
static struct libwebsocket_protocols client_protocols[] = {
	{ "flip", client_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};
static struct libwebsocket_extension server_exts[] = {
	{ "x-test-flip", flip_ext, sizeof(struct flip_session), &srv },
	{ NULL, NULL, 0, NULL }
};
static struct libwebsocket_extension client_exts[] = {
	{ "x-test-flip", flip_ext, sizeof(struct flip_session), &cli },
	{ NULL, NULL, 0, NULL }
};

int main(void)
{
	struct lws_context_creation_info info;
	struct libwebsocket_context *sctx = NULL, *cctx;
	struct libwebsocket *wsi;
	int port = 0, n, tries;

	lws_set_log_level(LLL_ERR, NULL);
	for (tries = 0; tries < 50 && !sctx; tries++) {
		port = 20000 + (int)((getpid() * 7 + tries * 131) % 20000);
		memset(&info, 0, sizeof info);
		info.port = port;
		info.iface = "127.0.0.1";
		info.protocols = server_protocols;
		info.extensions = server_exts;
		info.gid = -1;
		info.uid = -1;
		sctx = libwebsocket_create_context(&info);
	}
	CHECK(sctx != NULL, "server context");
	if (!sctx)
		return 1;

	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	info.extensions = client_exts;
	info.gid = -1;
	info.uid = -1;
	cctx = libwebsocket_create_context(&info);
	CHECK(cctx != NULL, "client context");
	if (!cctx)
		return 1;

	wsi = libwebsocket_client_connect(cctx, "127.0.0.1", port, 0, "/", "localhost", "localhost", "flip", -1);
	CHECK(wsi != NULL, "client connect");
	for (n = 0; n < 400 && !client_closed; n++) {
		libwebsocket_service(sctx, 5);
		libwebsocket_service(cctx, 5);
	}
	for (n = 0; n < 20; n++)
		libwebsocket_service(sctx, 5);

	CHECK(client_established, "client established");
	CHECK(srv.confirm_okay == 1, "server CONFIRM_EXTENSION_OKAY once (%d)", srv.confirm_okay);
	CHECK(cli.client_confirm >= 1, "client CONFIRM_EXTENSION_SUPPORTED (%d)", cli.client_confirm);
	CHECK(srv.construct == 1, "server CONSTRUCT once (%d)", srv.construct);
	CHECK(cli.client_construct == 1, "client CLIENT_CONSTRUCT once (%d)", cli.client_construct);
	CHECK(srv.any_established >= 1 && cli.any_established >= 1, "ANY_WSI_ESTABLISHED");
	CHECK(cli.payload_tx >= 1 && srv.payload_rx >= 1, "client TX / server RX hooks");
	CHECK(srv.payload_tx >= 1 && cli.payload_rx >= 1, "server TX / client RX hooks");
	CHECK(server_got == 1 && !strcmp(server_msg, MSG), "server saw the original text ('%s')", server_msg);
	CHECK(client_got == 1 && !strcmp(client_msg, MSG), "client got the echo ('%s')", client_msg);
	CHECK(cli.destroy == 1, "client DESTROY once (%d)", cli.destroy);
	CHECK(srv.destroy == 1, "server DESTROY once (%d)", srv.destroy);

	libwebsocket_context_destroy(cctx);
	libwebsocket_context_destroy(sctx);
	CHECK(srv.ctx_construct == 1 && srv.ctx_destruct == 1, "server context construct/destruct");
	CHECK(cli.ctx_construct == 1 && cli.ctx_destruct == 1, "client context construct/destruct");

	if (failures) {
		fprintf(stderr, "ext_app_test: %d failure(s)\n", failures);
		return 1;
	}
	printf("ext_app_test: all checks passed\n");
	return 0;
}
