/*
 * hs-floor.c - the floor for the handshake benchmark: the least a server can do for
 * wsload's handshake cycle (connect, upgrade request, 101, masked close frame, close
 * reply, TCP close), so the harness can show how much of a handshake's server CPU is
 * the kernel's TCP work that any server pays.
 *
 * Not a WebSocket server: it answers every request that ends in a blank line with a
 * fixed 101 (no Sec-WebSocket-Accept computation, no header parsing), answers any
 * byte after that with a close frame (1000) and closes. Level-triggered epoll, one
 * thread, accept4 + EPOLL_CTL_ADD per connection, TCP_NODELAY inherited from the
 * listener.
 *
 *   hs-floor PORT
 */
#define _GNU_SOURCE 1
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536

static const char reply[] = "HTTP/1.1 101 Switching Protocols\r\n"
			    "Upgrade: websocket\r\n"
			    "Connection: Upgrade\r\n"
			    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
static const unsigned char close_frame[] = { 0x88, 0x02, 0x03, 0xe8 };

/* per descriptor: 0 = waiting for the request's blank line, 1 = upgraded */
static unsigned char upgraded[MAX_FD];
static volatile sig_atomic_t stop;

static void on_sig(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct epoll_event ev, evs[256];
	char buf[4096];
	int one = 1, lfd, ep, n, i;

	if (argc < 2) {
		fprintf(stderr, "usage: hs-floor PORT\n");
		return 2;
	}
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
		perror("hs-floor: bind/listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	fprintf(stderr, "hs-floor listening on %s\n", argv[1]);

	while (!stop) {
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t got;

			if (fd == lfd) {
				int c;

				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if (c >= MAX_FD) {
						close(c);
						continue;
					}
					upgraded[c] = 0;
					ev.events = EPOLLIN;
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			got = recv(fd, buf, sizeof buf, 0);
			if (got <= 0) {
				close(fd);
				continue;
			}
			if (!upgraded[fd]) {
				/* wsload sends the whole request in one write */
				if (got >= 4 && !memcmp(buf + got - 4, "\r\n\r\n", 4)) {
					upgraded[fd] = 1;
					send(fd, reply, sizeof reply - 1, MSG_NOSIGNAL);
				}
				continue;
			}
			send(fd, close_frame, sizeof close_frame, MSG_NOSIGNAL | MSG_MORE);
			close(fd);
		}
	}
	close(ep);
	close(lfd);
	return 0;
}
