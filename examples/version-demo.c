/*
 * version-demo.c - the smallest program against the library: prints the library
 * version, then a SHA-1 digest and its base64 round trip.
 *
 *   cc -Iinclude examples/version-demo.c -Ltarget/release -lwebsockets \
 *      -Wl,-rpath,$PWD/target/release -o version-demo && ./version-demo [text]
 */
#include <libwebsockets.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *text = argc > 1 ? argv[1] : "hello, libwebsockets";
	unsigned char digest[20];
	char b64[32], back[32];
	int i, n, m;

	printf("libwebsockets version: %s\n", lws_get_library_version());

	if (!libwebsockets_SHA1((const unsigned char *)text, strlen(text),
				digest)) {
		fprintf(stderr, "SHA-1 failed\n");
		return 1;
	}
	printf("SHA-1(\"%s\") = ", text);
	for (i = 0; i < 20; i++)
		printf("%02x", digest[i]);
	printf("\n");

	n = lws_b64_encode_string((const char *)digest, sizeof(digest), b64,
				  sizeof(b64));
	if (n < 0) {
		fprintf(stderr, "base64 encoding failed\n");
		return 1;
	}
	printf("base64 of the digest = %s (%d chars)\n", b64, n);

	m = lws_b64_decode_string(b64, back, sizeof(back));
	if (m != (int)sizeof(digest) || memcmp(back, digest, sizeof(digest))) {
		fprintf(stderr, "base64 round trip failed (%d bytes)\n", m);
		return 1;
	}
	printf("base64 decode gives the digest back: ok\n");
	return 0;
}
