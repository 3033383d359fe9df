/* blast.c - a bounded load generator for the relay and for bench/sink.
 *
 *     blast -t udp://127.0.0.1:1235 -l 20 -s 100000 -r 2000000 -n 10000000 -d 5
 *
 * Sends SpectatorD protocol lines with sendmmsg() to one loopback UDP address
 * or one unix datagram socket, and nowhere else: every other target is
 * refused before a socket is opened. Every run is bounded twice, by a line
 * count (-n) and by a duration (-d), whichever comes first.
 *
 * The datagrams are formatted once, before the clock starts, into a pool that
 * the send loop cycles through, so that what is measured is the socket path
 * and not snprintf(). The pool holds every series at least once, in a
 * shuffled order; each series keeps one meter type for the whole run, as a
 * real client's meters do: the production-like mix, or one type alone (-m).
 * Timer and distribution values have a spread like real ones: each series
 * has its own scale, and its samples spread log-uniformly over a factor of
 * 100 above it, about 30 percentile buckets. So that one pass over the pool
 * holds enough samples of each series to show that spread, a pool of one
 * such type alone holds up to SPREAD_SAMPLES lines per series.
 *
 * Sockets block, with a short send timeout so that the deadline is still
 * checked: a unix datagram receiver that falls behind slows the sender down
 * (that is how SpectatorD's thin clients behave), and a UDP receiver that
 * falls behind drops in the kernel, where the harness reads the counter.
 * With --nonblock, a full unix socket counts as an error instead.
 *
 * At the end it prints one line of key=value fields on stdout:
 *
 *     blast: lines_sent=N datagrams_sent=N errors=N seconds=S lines_per_sec=R
 *
 * Exit status: 0 when every line asked for was sent without an error, 1
 * when some were not (errors, or the deadline came first), 2 on bad usage or
 * a setup failure. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "url.h"

#define MAX_PROCS 16
#define MAX_SECONDS 600.0
#define MAX_BATCH 1024 /* UIO_MAXIOV */
#define MAX_DGRAM 65507
#define MIN_POOL_LINES 8192
/* The pool holds every series: 1M of them take about 100 MB. */
#define MAX_SERIES 1000000
#define LINE_MAX_LEN 160 /* every line format_line() writes is shorter */
/* Lines per series in the pool of a timer or distribution type alone, up to
 * MAX_POOL_LINES: about 30 buckets per series then have samples. */
#define SPREAD_SAMPLES 128
#define MAX_POOL_LINES 1000000
/* How long one blocked send may wait before the deadline is looked at. */
#define SEND_TIMEOUT_US 20000

struct opts {
	struct url target;
	unsigned lines_per_dgram; /* 0 when filling by bytes */
	unsigned dgram_bytes;     /* 0 when a fixed number of lines */
	uint64_t series;
	char only;                /* 0: the mix; else every series has this type */
	double rate;              /* lines per second, all senders; 0 = flat out */
	uint64_t count;           /* lines, all senders */
	double seconds;
	unsigned procs;
	unsigned batch;
	uint64_t seed;
	bool nonblock;
};

/* What one sender reports to the parent through a pipe. */
struct result {
	uint64_t lines, dgrams, errors;
	double seconds;
	int first_errno;
};

/* ------------------------------------------------------------------------
 * The workload: series, types and the datagram pool
 * ------------------------------------------------------------------------ */

/* splitmix64: a small, seedable generator; quality is ample for picking
 * series and values. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A series keeps its type for the whole run. The mix is mostly counters, as
 * in production: 70% c, 8% g, 5% m, 8% t, 4% d, 3% T, 2% D. */
static char series_type(uint64_t series, char only)
{
	if (only)
		return only;
	uint64_t h = series * 0x9e3779b97f4a7c15ull;
	unsigned r = (unsigned)((h >> 32) % 100);
	return r < 70   ? 'c'
	       : r < 78 ? 'g'
	       : r < 83 ? 'm'
	       : r < 91 ? 't'
	       : r < 95 ? 'd'
	       : r < 98 ? 'T'
			: 'D';
}

/* A timer or distribution sample of a series: its scale times a factor
 * from 1 to 100, log-uniform. The scale, from the series' number, is 0.2 to
 * 2 ms for t and T (a latency, sent in seconds with ns digits, as
 * spectator-go's Duration.Seconds() does) and 100 to 1000 for d and D (a
 * size in bytes, an integer). */
static void format_spread(char *w, size_t len, char type, uint64_t series, uint64_t r)
{
	double scale = pow(10.0, (double)((series * 0xd1b54a32d192ed03ull) >> 11) / 0x1p53);
	double spread = pow(100.0, (double)(r >> 11) / 0x1p53);

	if (type == 't' || type == 'T') {
		unsigned long long ns = (unsigned long long)(200000.0 * scale * spread);
		snprintf(w, len, "%llu.%09llu", ns / 1000000000ull, ns % 1000000000ull);
	} else {
		snprintf(w, len, "%llu", (unsigned long long)(100.0 * scale * spread));
	}
}

/* One line for a series into w (LINE_MAX_LEN bytes); returns its
 * length including the '\n'. Ids look like thin clients' ids: a few names,
 * a handful of tags, half of them in unsorted order. */
static int format_line(char *w, uint64_t series, char only, uint64_t *rng)
{
	static const char *const names[] = { "server.requestCount", "server.requestLatency",
					     "db.queryTime",        "cache.hits",
					     "queue.depth",         "http.client.bytes" };
	static const char *const status[] = { "200", "404", "500", "503" };
	char type = series_type(series, only);
	const char *name = names[series % 6];
	unsigned long long inst = (unsigned long long)(series / 6);
	char head[8];
	char value[32];
	uint64_t r = next_rand(rng);

	if (type == 'g' && series % 2 == 0)
		snprintf(head, sizeof(head), "g,60");
	else
		snprintf(head, sizeof(head), "%c", type);
	switch (type) {
	case 'c':
		snprintf(value, sizeof(value), "%u", (unsigned)(1 + r % 3));
		break;
	case 't':
	case 'T':
	case 'd':
	case 'D':
		format_spread(value, sizeof(value), type, series, r);
		break;
	default:
		snprintf(value, sizeof(value), "%u.%u", (unsigned)(r % 1000), (unsigned)(r >> 40) % 10);
		break;
	}
	if (series % 2 == 0)
		return snprintf(w, LINE_MAX_LEN,
				"%s:%s,instance=i-%06llu,method=GET,nf.app=shop,status=%s:%s\n", head,
				name, inst, status[(series / 6) % 4], value);
	return snprintf(w, LINE_MAX_LEN,
			"%s:%s,status=%s,nf.app=shop,method=POST,instance=i-%06llu:%s\n", head, name,
			status[(series / 6) % 4], inst, value);
}

struct pool {
	char *buf;
	struct iovec *iov;     /* one per datagram */
	unsigned *lines;       /* lines in each datagram */
	size_t ndgrams;
	size_t max_len;        /* longest datagram, in bytes */
	struct mmsghdr *msgs;  /* ndgrams + batch entries; the tail repeats the
				* head so that every batch is one slice */
};

static void pool_free(struct pool *p)
{
	free(p->buf);
	free(p->iov);
	free(p->lines);
	free(p->msgs);
	memset(p, 0, sizeof(*p));
}

/* Lines the pool holds: every series once, at least MIN_POOL_LINES, and for
 * a timer or distribution type alone SPREAD_SAMPLES per series up to
 * MAX_POOL_LINES. */
static size_t pool_lines(const struct opts *o)
{
	size_t want = o->series > MIN_POOL_LINES ? (size_t)o->series : MIN_POOL_LINES;

	if (o->only && strchr("tTdD", o->only)) {
		uint64_t spread = o->series * SPREAD_SAMPLES;
		if (spread > MAX_POOL_LINES)
			spread = MAX_POOL_LINES;
		if (spread > want)
			want = (size_t)spread;
	}
	return want;
}

/* Formats at least pool_lines() lines into whole datagrams. Returns 0 or
 * -ENOMEM. */
static int pool_make(struct pool *p, const struct opts *o, uint64_t seed)
{
	uint64_t rng = seed;
	uint64_t nseries = o->series;
	size_t want = pool_lines(o);
	/* Upper bounds: a line is under LINE_MAX_LEN bytes, and the last
	 * datagram may overshoot `want` by one datagram's worth of lines. */
	size_t max_lines = want + (o->lines_per_dgram ? o->lines_per_dgram : o->dgram_bytes);
	size_t max_dgrams = want + 1;
	uint64_t *perm = malloc(nseries * sizeof(*perm));
	size_t used = 0, lines = 0;
	char line[LINE_MAX_LEN];

	memset(p, 0, sizeof(*p));
	p->buf = malloc(max_lines * LINE_MAX_LEN);
	p->iov = malloc(max_dgrams * sizeof(*p->iov));
	p->lines = malloc(max_dgrams * sizeof(*p->lines));
	p->msgs = calloc(max_dgrams + o->batch, sizeof(*p->msgs));
	if (!perm || !p->buf || !p->iov || !p->lines || !p->msgs) {
		free(perm);
		pool_free(p);
		return -ENOMEM;
	}
	/* Fisher-Yates: each pass over the pool meets every series once, in an
	 * order that no hash table can be lucky with. */
	for (uint64_t i = 0; i < nseries; i++)
		perm[i] = i;
	for (uint64_t i = nseries - 1; i > 0; i--) {
		uint64_t j = next_rand(&rng) % (i + 1);
		uint64_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	while (lines < want) {
		char *start = p->buf + used;
		unsigned n = 0;
		for (;;) {
			int len = format_line(line, perm[lines % nseries], o->only, &rng);
			if (o->dgram_bytes && n > 0 && (size_t)(p->buf + used - start) + (size_t)len >
							  o->dgram_bytes)
				break; /* that line starts the next datagram */
			memcpy(p->buf + used, line, (size_t)len);
			used += (size_t)len;
			lines++;
			n++;
			if (o->lines_per_dgram && n == o->lines_per_dgram)
				break;
		}
		p->iov[p->ndgrams].iov_base = start;
		p->iov[p->ndgrams].iov_len = (size_t)(p->buf + used - start);
		if (p->iov[p->ndgrams].iov_len > p->max_len)
			p->max_len = p->iov[p->ndgrams].iov_len;
		p->lines[p->ndgrams] = n;
		p->ndgrams++;
	}
	free(perm);
	for (size_t i = 0; i < p->ndgrams + o->batch; i++) {
		p->msgs[i].msg_hdr.msg_iov = &p->iov[i % p->ndgrams];
		p->msgs[i].msg_hdr.msg_iovlen = 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * One sender
 * ------------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts = { .tv_sec = (time_t)t };

	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* A connected datagram socket for the target. Returns it or -errno. */
static int open_target(const struct opts *o)
{
	int flags = SOCK_DGRAM | SOCK_CLOEXEC | (o->nonblock ? SOCK_NONBLOCK : 0);
	int fd = socket(o->target.addr.sa.sa_family, flags, 0);
	struct timeval tv = { .tv_sec = 0, .tv_usec = SEND_TIMEOUT_US };

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, &o->target.addr.sa, o->target.addrlen) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Sends `count` lines at `rate` lines/s (0: flat out) until done or for at
 * most o->seconds, and fills *res. */
static void send_loop(const struct opts *o, const struct pool *p, int fd, size_t pos,
		      uint64_t count, double rate, struct result *res)
{
	uint64_t attempted = 0;
	double start = now_s(), deadline = start + o->seconds;

	for (;;) {
		double now = now_s();
		if (attempted >= count || now >= deadline)
			break;
		if (rate > 0) {
			double due = start + (double)attempted / rate;
			if (due > now) {
				if (due >= deadline)
					break;
				sleep_until(due);
			}
		}
		/* As many datagrams as the batch holds and the count still wants. */
		unsigned n = 0;
		uint64_t want = 0;
		while (n < o->batch && attempted + want < count)
			want += p->lines[(pos + n++) % p->ndgrams];

		int r = sendmmsg(fd, &p->msgs[pos], n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !o->nonblock)
			continue; /* a blocked send timed out: look at the deadline */
		if (r < 0) {
			/* The first datagram of the batch failed: count it as
			 * an error, as a client that drops it would, and go on. */
			if (res->errors++ == 0)
				res->first_errno = errno;
			attempted += p->lines[pos];
			pos = (pos + 1) % p->ndgrams;
			continue;
		}
		uint64_t sent = 0;
		for (int i = 0; i < r; i++)
			sent += p->lines[(pos + (size_t)i) % p->ndgrams];
		res->lines += sent;
		attempted += sent;
		res->dgrams += (uint64_t)r;
		pos = (pos + (size_t)r) % p->ndgrams;
	}
	res->seconds = now_s() - start;
}

/* A child process: one socket, its share of the load, starting at its own
 * place in the pool it shares (copy-on-write) with the others. Writes its
 * result to `out` and exits. */
static void sender_main(const struct opts *o, const struct pool *p, unsigned idx, int out)
{
	struct result res = { 0 };
	uint64_t count = o->count / o->procs + (idx < o->count % o->procs ? 1 : 0);
	double rate = o->rate / o->procs;
	int fd;

	/* Never outlive the parent, whatever happens to it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Pacing sleeps are short; the default 50us slack would blur them. */
	prctl(PR_SET_TIMERSLACK, 1000UL);
	if ((fd = open_target(o)) < 0) {
		res.first_errno = -fd;
		res.errors = 1;
	} else {
		send_loop(o, p, fd, (size_t)idx * (p->ndgrams / o->procs), count, rate, &res);
		close(fd);
	}
	ssize_t w = write(out, &res, sizeof(res));
	_exit(w == (ssize_t)sizeof(res) ? 0 : 3);
}

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: blast -t TARGET [options]\n"
		"  -t, --target URL     udp://127.0.0.1:PORT, udp://[::1]:PORT or unix:///PATH;\n"
		"                       anything that is not loopback or a local path is refused\n"
		"  -l, --lines N        lines per datagram (default 1)\n"
		"  -B, --bytes N        instead of -l: whole lines up to N bytes per datagram\n"
		"  -s, --series N       distinct series (default 1000, at most 1M)\n"
		"  -m, --mix KIND       mix (70%% c, and g m t d T D), counters, or one type alone:\n"
		"                       c, t, T, d or D (default mix)\n"
		"  -r, --rate N         lines per second over all senders; 0 = flat out (default 0)\n"
		"  -n, --count N        lines to send over all senders (default 1M)\n"
		"  -d, --seconds S      stop after S seconds even if -n is not reached (default 10,\n"
		"                       at most 600)\n"
		"  -p, --procs N        sender processes, each with its own socket (default 1)\n"
		"  -b, --batch N        datagrams per sendmmsg() (default 64, at most 1024)\n"
		"  -S, --seed N         seed of the series order and values (default 1)\n"
		"      --nonblock       unix: count a full socket as an error instead of waiting\n"
		"Counts take k, M and G suffixes (powers of 1000).\n");
}

/* A count with an optional k, M or G suffix; returns 0 or -EINVAL. */
static int parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	uint64_t scale = 1;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -EINVAL;
	if (*end == 'k')
		scale = 1000, end++;
	else if (*end == 'M')
		scale = 1000000, end++;
	else if (*end == 'G')
		scale = 1000000000, end++;
	if (*end != '\0' || v > max / scale || v * scale < min)
		return -EINVAL;
	*out = v * scale;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE || !(v > 0) || v > MAX_SECONDS)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "target", required_argument, NULL, 't' }, { "lines", required_argument, NULL, 'l' },
		{ "bytes", required_argument, NULL, 'B' },  { "series", required_argument, NULL, 's' },
		{ "mix", required_argument, NULL, 'm' },    { "rate", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'n' },  { "seconds", required_argument, NULL, 'd' },
		{ "procs", required_argument, NULL, 'p' },  { "batch", required_argument, NULL, 'b' },
		{ "seed", required_argument, NULL, 'S' },   { "nonblock", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 }
	};
	const char *target = NULL;
	char err[256];
	uint64_t v;
	int c;

	*o = (struct opts){ .lines_per_dgram = 1, .series = 1000, .count = 1000000,
			    .seconds = 10, .procs = 1, .batch = 64, .seed = 1 };
	while ((c = getopt_long(argc, argv, "t:l:B:s:m:r:n:d:p:b:S:h", longopts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case 't':
			target = optarg;
			break;
		case 'l':
			r = parse_count(optarg, 1, 10000, &v);
			o->lines_per_dgram = (unsigned)v;
			o->dgram_bytes = 0;
			break;
		case 'B':
			r = parse_count(optarg, 64, MAX_DGRAM, &v);
			o->dgram_bytes = (unsigned)v;
			o->lines_per_dgram = 0;
			break;
		case 's':
			r = parse_count(optarg, 1, MAX_SERIES, &o->series);
			break;
		case 'm':
			if (strcmp(optarg, "mix") == 0)
				o->only = 0;
			else if (strcmp(optarg, "counters") == 0)
				o->only = 'c';
			else if (strlen(optarg) == 1 && strchr("ctTdD", optarg[0]))
				o->only = optarg[0];
			else
				r = -EINVAL;
			break;
		case 'r':
			r = parse_count(optarg, 0, 10000000000ull, &v);
			o->rate = (double)v;
			break;
		case 'n':
			r = parse_count(optarg, 1, 100000000000ull, &o->count);
			break;
		case 'd':
			r = parse_seconds(optarg, &o->seconds);
			break;
		case 'p':
			r = parse_count(optarg, 1, MAX_PROCS, &v);
			o->procs = (unsigned)v;
			break;
		case 'b':
			r = parse_count(optarg, 1, MAX_BATCH, &v);
			o->batch = (unsigned)v;
			break;
		case 'S':
			r = parse_count(optarg, 0, UINT64_MAX, &o->seed);
			break;
		case 'N':
			o->nonblock = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (r != 0) {
			fprintf(stderr, "blast: -%c %s: not a valid value\n", c, optarg);
			return -EINVAL;
		}
	}
	if (optind != argc || !target) {
		usage(stderr);
		return -EINVAL;
	}
	if (url_parse(target, true, &o->target, err, sizeof(err)) != 0) {
		fprintf(stderr, "blast: %s\n", err);
		return -EINVAL;
	}
	/* The whole point of this check: load goes to this machine only. */
	if (!url_is_loopback(&o->target)) {
		fprintf(stderr, "blast: %s: refused, only loopback addresses and unix sockets\n",
			target);
		return -EINVAL;
	}
	if (o->target.kind == URL_UDP && o->target.addr.in.sin_port == 0) {
		fprintf(stderr, "blast: %s: a port is needed\n", target);
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * main: fork the senders, add up what they report
 * ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	struct opts o;
	struct result total = { 0 };
	struct pool pool;
	pid_t pids[MAX_PROCS];
	int fds[MAX_PROCS];
	bool failed = false;

	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	if (pool_make(&pool, &o, o.seed) != 0) {
		fprintf(stderr, "blast: out of memory for %" PRIu64 " series\n", o.series);
		return 2;
	}
	/* Refuse datagrams the target could never take before sending any. */
	if (pool.max_len > MAX_DGRAM) {
		fprintf(stderr, "blast: %u lines make datagrams of %zu bytes, over %d\n",
			o.lines_per_dgram, pool.max_len, MAX_DGRAM);
		pool_free(&pool);
		return 2;
	}

	for (unsigned i = 0; i < o.procs; i++) {
		int pfd[2];
		if (pipe2(pfd, O_CLOEXEC) != 0) {
			perror("blast: pipe");
			return 2;
		}
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("blast: fork");
			return 2;
		}
		if (pids[i] == 0) {
			close(pfd[0]);
			sender_main(&o, &pool, i, pfd[1]);
		}
		close(pfd[1]);
		fds[i] = pfd[0];
	}
	for (unsigned i = 0; i < o.procs; i++) {
		struct result r;
		ssize_t n;
		int status;
		while ((n = read(fds[i], &r, sizeof(r))) < 0 && errno == EINTR)
			;
		close(fds[i]);
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof(r) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "blast: sender %u failed\n", i);
			failed = true;
			continue;
		}
		total.lines += r.lines;
		total.dgrams += r.dgrams;
		total.errors += r.errors;
		if (r.seconds > total.seconds)
			total.seconds = r.seconds;
		if (r.errors && !total.first_errno)
			total.first_errno = r.first_errno;
	}
	if (total.first_errno)
		fprintf(stderr, "blast: first error: %s\n", strerror(total.first_errno));
	printf("blast: lines_sent=%" PRIu64 " datagrams_sent=%" PRIu64 " errors=%" PRIu64
	       " seconds=%.3f lines_per_sec=%.0f\n",
	       total.lines, total.dgrams, total.errors, total.seconds,
	       total.seconds > 0 ? (double)total.lines / total.seconds : 0.0);
	pool_free(&pool);
	if (failed)
		return 2;
	return total.errors == 0 && total.lines >= o.count ? 0 : 1;
}
