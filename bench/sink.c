/* sink.c - the reference reader: recvmmsg() in a tight loop, counting lines.
 *
 *     sink -l udp://127.0.0.1:0 -d 30
 *
 * It does the least a reader can do with a datagram: it counts the '\n'
 * bytes in it (plus one for an unterminated last line) and parses nothing.
 * Whatever rate it sustains without a kernel drop is the ceiling that this
 * machine's kernel and the sender allow; bench/e2e.py measures it in the same
 * run as the relay and reports the relay as a ratio to it. The same program
 * is the counting fake SpectatorD that the relay forwards to.
 *
 * Unlike the relay, it does not turn on SO_PASSCRED on a unix socket: the
 * credentials the relay asks for are part of the relay's cost.
 *
 * Once bound it prints, and flushes,
 *
 *     sink: ready url=udp://127.0.0.1:PORT receive_buffer=N
 *
 * (port 0 asks for a free port; the line has the one it got). On SIGTERM or
 * SIGINT, or after -d seconds, it reads what the kernel has already queued,
 * then prints one line and exits 0:
 *
 *     sink: datagrams=N lines=N bytes=N drops=N seconds=S lines_per_sec=R
 *           bursts=N burst_lines_max=N burst_lines=A,B,C...
 *
 * `seconds` runs from the first datagram to the last. A burst is a run of
 * datagrams with no gap longer than -g milliseconds between them: behind the
 * relay, one burst is one window's flush. `drops` is the kernel's drop
 * counter for a UDP socket; a unix socket has none (its senders wait). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sockutil.h"
#include "url.h"

#define VLEN 64
#define SLOT 65536          /* a unix datagram of 65535 bytes fits whole */
#define MAX_SECONDS 3600.0
#define MAX_BURSTS_SHOWN 64
#define DRAIN_SECONDS 2.0
/* How often a blocked read looks at the stop flag and the deadline. */
#define POLL_US 50000

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct counts {
	uint64_t datagrams, lines, bytes;
	double first, last;      /* arrival of the first and the last datagram */
	uint64_t bursts, burst_lines, burst_max;
	uint64_t shown[MAX_BURSTS_SHOWN];
	double gap;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Lines as SpectatorD would find them, without looking inside one. */
static uint64_t count_lines(const char *p, size_t len)
{
	const char *end = p + len, *nl;
	uint64_t n = 0;

	if (len == 0)
		return 0;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p = nl + 1;
	}
	return n + (end[-1] != '\n');
}

static void end_burst(struct counts *c)
{
	if (c->burst_lines == 0)
		return;
	if (c->bursts < MAX_BURSTS_SHOWN)
		c->shown[c->bursts] = c->burst_lines;
	if (c->burst_lines > c->burst_max)
		c->burst_max = c->burst_lines;
	c->bursts++;
	c->burst_lines = 0;
}

/* Accounts for one recvmmsg() result, all of it stamped `now`. */
static void account(struct counts *c, struct mmsghdr *msgs, const struct iovec *iov, int n,
		    double now)
{
	uint64_t lines = 0, bytes = 0;

	for (int i = 0; i < n; i++) {
		lines += count_lines(iov[i].iov_base, msgs[i].msg_len);
		bytes += msgs[i].msg_len;
	}
	c->datagrams += (uint64_t)n;
	c->bytes += bytes;
	if (lines == 0)
		return; /* the relay's empty liveness probes are not traffic */
	if (c->lines == 0)
		c->first = now;
	else if (now - c->last > c->gap)
		end_burst(c);
	c->lines += lines;
	c->burst_lines += lines;
	c->last = now;
}

/* A bound datagram socket for u, with the receive buffer asked for. Returns
 * the descriptor or -errno, with a reason in err. */
static int open_listener(const struct url *u, size_t rcvbuf, size_t *granted, char *err,
			 size_t errlen)
{
	int fd = socket(u->kind == URL_UNIX ? AF_UNIX : u->addr.sa.sa_family,
			SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 0, .tv_usec = POLL_US };
	struct stat st;
	int r;

	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-r));
		return r;
	}
	if (u->kind == URL_UNIX && lstat(u->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(u->path); /* a stale socket from an earlier run */
	if (bind(fd, &u->addr.sa, u->addrlen) != 0) {
		r = -errno;
		snprintf(err, errlen, "cannot bind %s: %s", u->text, strerror(-r));
		close(fd);
		return r;
	}
	if ((r = sock_set_rcvbuf(fd, rcvbuf, granted)) != 0 ||
	    (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 && (r = -errno))) {
		snprintf(err, errlen, "setsockopt on %s: %s", u->text, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sink -l URL [options]\n"
		   "  -l, --listen URL    udp://127.0.0.1:PORT, udp://[::1]:PORT or unix:///PATH;\n"
		   "                      port 0 takes a free port; only loopback is accepted\n"
		   "  -d, --seconds S     exit after S seconds at most (default 60, at most 3600)\n"
		   "  -R, --rcvbuf BYTES  receive buffer (default 16777216)\n"
		   "  -g, --gap MS        a gap this long ends a burst (default 100)\n"
		   "It exits on SIGTERM or SIGINT too, after reading what is queued.\n");
}

static bool parse_double(const char *s, double min, double max, double *out)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE || !(v >= min) || v > max)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' }, { "seconds", required_argument, NULL, 'd' },
		{ "rcvbuf", required_argument, NULL, 'R' }, { "gap", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 }
	};
	static struct mmsghdr msgs[VLEN];
	static struct iovec iov[VLEN];
	struct counts c = { .gap = 0.1 };
	const char *listen = NULL;
	double seconds = 60, rcvbuf = 16 << 20, gap_ms = 100;
	struct url u;
	char err[256];
	size_t granted = 0;
	int opt, fd;

	while ((opt = getopt_long(argc, argv, "l:d:R:g:h", longopts, NULL)) != -1) {
		bool ok = true;
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'd':
			ok = parse_double(optarg, 0.001, MAX_SECONDS, &seconds);
			break;
		case 'R':
			ok = parse_double(optarg, 4096, 1 << 30, &rcvbuf);
			break;
		case 'g':
			ok = parse_double(optarg, 1, 60000, &gap_ms);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "sink: -%c %s: not a valid value\n", opt, optarg);
			return 2;
		}
	}
	if (optind != argc || !listen) {
		usage(stderr);
		return 2;
	}
	if (url_parse(listen, true, &u, err, sizeof(err)) != 0) {
		fprintf(stderr, "sink: %s\n", err);
		return 2;
	}
	if (!url_is_loopback(&u)) {
		fprintf(stderr, "sink: %s: refused, only loopback addresses and unix sockets\n",
			listen);
		return 2;
	}
	c.gap = gap_ms / 1000.0;

	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: reads return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	fd = open_listener(&u, (size_t)rcvbuf, &granted, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "sink: %s\n", err);
		return 2;
	}
	char *buf = malloc((size_t)VLEN * SLOT);
	if (!buf) {
		fprintf(stderr, "sink: out of memory\n");
		return 2;
	}
	for (int i = 0; i < VLEN; i++) {
		iov[i].iov_base = buf + (size_t)i * SLOT;
		iov[i].iov_len = SLOT;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	if (u.kind == URL_UDP) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char host[64];
		getsockname(fd, (struct sockaddr *)&ss, &len);
		if (ss.ss_family == AF_INET6)
			printf("sink: ready url=udp://[%s]:%u receive_buffer=%zu\n",
			       inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
					 sizeof(host)),
			       ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), granted);
		else
			printf("sink: ready url=udp://%s:%u receive_buffer=%zu\n",
			       inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
					 sizeof(host)),
			       ntohs(((struct sockaddr_in *)&ss)->sin_port), granted);
	} else {
		printf("sink: ready url=%s receive_buffer=%zu\n", u.text, granted);
	}
	fflush(stdout);

	/* The loop: block for the first datagram, take whatever else is queued
	 * with it, count, repeat. Once asked to stop, read what is queued
	 * without waiting, for at most DRAIN_SECONDS: a sender that never
	 * stops must not keep the sink running. */
	double deadline = now_s() + seconds;
	int flags = MSG_WAITFORONE;
	for (;;) {
		int n = recvmmsg(fd, msgs, VLEN, flags, NULL);
		double now = now_s();
		if (n > 0)
			account(&c, msgs, iov, n, now);
		else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			fprintf(stderr, "sink: recvmmsg: %s\n", strerror(errno));
		if (flags == MSG_DONTWAIT) {
			if (n <= 0 || now >= deadline)
				break;
		} else if (stop_requested || now >= deadline) {
			flags = MSG_DONTWAIT;
			deadline = now + DRAIN_SECONDS;
		}
	}
	end_burst(&c);

	uint64_t drops = 0;
	if (u.kind == URL_UDP)
		sock_udp_drops(sock_inode(fd), &drops);
	double span = c.last - c.first;
	printf("sink: datagrams=%" PRIu64 " lines=%" PRIu64 " bytes=%" PRIu64 " drops=%" PRIu64
	       " seconds=%.3f lines_per_sec=%.0f bursts=%" PRIu64 " burst_lines_max=%" PRIu64
	       " burst_lines=",
	       c.datagrams, c.lines, c.bytes, drops, span, span > 0 ? (double)c.lines / span : 0.0,
	       c.bursts, c.burst_max);
	for (uint64_t i = 0; i < c.bursts && i < MAX_BURSTS_SHOWN; i++)
		printf("%s%" PRIu64, i ? "," : "", c.shown[i]);
	printf("\n");
	close(fd);
	if (u.kind == URL_UNIX)
		unlink(u.path);
	free(buf);
	return 0;
}
