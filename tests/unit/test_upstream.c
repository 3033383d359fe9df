/* test_upstream.c - delivery of datagrams, over a real loop and a real unix
 * datagram socket (the peer, standing in for SpectatorD) bound in a fresh
 * temporary directory: batching once per loop iteration, EAGAIN and the
 * writable wakeup, an absent peer and the window's retry, the bound on what
 * is held, a reload that is all or nothing, a shrinking max_datagram, the
 * last '\n' a datagram socket does not carry, and the tap.
 *
 * Nothing waits on time: the loop runs one non-blocking iteration at a time
 * (UV_RUN_NOWAIT), a bounded number of times, and the peer is read without
 * blocking. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "tap.h"
#include "testutil.h"
#include "upstream.h"

#define MAXD 1000 /* max_datagram of most tests */

static char dir[64], peer_path[128], peer2_path[128], file_path[128];
static uv_loop_t loop;
static struct stats stats;
static struct dgram_pool pool;
static struct upstream up;
static bool up_open;
static int peer = -1, peer2 = -1;

static int bind_peer(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void unbind_peer(int *fd, const char *path)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	unlink(path);
}

/* scheme ("unix://", "file://") and an absolute path. */
static struct url url_of(const char *scheme, const char *path)
{
	struct url u;
	char text[200], err[256];

	snprintf(text, sizeof(text), "%s%s", scheme, path);
	ck_assert_msg(url_parse(text, false, &u, err, sizeof(err)) == 0, "%s", err);
	return u;
}

static void open_upstream(const struct url *u, size_t max_datagram, size_t max_pending)
{
	char err[256];

	dgram_pool_init(&pool, max_datagram, 8);
	ck_assert_msg(upstream_open(&up, &loop, u, max_datagram, max_pending, &pool, &stats, err,
				    sizeof(err)) == 0,
		      "%s", err);
	up_open = true;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_upstream.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(peer_path, sizeof(peer_path), "%s/spectatord.unix", dir);
	snprintf(peer2_path, sizeof(peer2_path), "%s/second.unix", dir);
	snprintf(file_path, sizeof(file_path), "%s/lines.txt", dir);
	memset(&stats, 0, sizeof(stats));
	log_set_level(LOG_LVL_ERR); /* an upstream going down is expected here */
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	peer = bind_peer(peer_path);
	up_open = false;
}

static void closed_cb(struct upstream *u)
{
	(void)u;
	up_open = false;
}

static void teardown(void)
{
	if (up_open) {
		upstream_close(&up, closed_cb);
		for (int i = 0; i < 100 && up_open; i++)
			uv_run(&loop, UV_RUN_NOWAIT);
		ck_assert(!up_open);
	}
	ck_assert_int_eq(uv_loop_close(&loop), 0); /* every handle closed */
	dgram_pool_deinit(&pool);
	unbind_peer(&peer, peer_path);
	unbind_peer(&peer2, peer2_path);
	unlink(file_path);
	rmdir(dir);
}

/* One loop iteration that does not wait. */
static void spin(void)
{
	uv_run(&loop, UV_RUN_NOWAIT);
}

/* A datagram of these lines (each ending in '\n'), owned by the caller. */
static struct dgram *dg(const char *text)
{
	struct dgram *d = dgram_new(&pool);
	size_t n = strlen(text);

	ck_assert_ptr_nonnull(d);
	ck_assert_uint_le(n, d->cap + 1);
	memcpy(d->data, text, n);
	d->len = n;
	d->lines = 0;
	for (size_t i = 0; i < n; i++)
		d->lines += text[i] == '\n';
	return d;
}

/* The next datagram the peer holds, NUL-terminated, or NULL. */
static const char *recv_one(int fd)
{
	static char buf[1 << 19];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static void expect_datagram(int fd, const char *want)
{
	const char *got = recv_one(fd);

	ck_assert_msg(got != NULL, "no datagram; wanted %s", want);
	ck_assert_str_eq(got, want);
}

static void expect_nothing(int fd)
{
	const char *got = recv_one(fd);

	ck_assert_msg(got == NULL, "unexpected datagram %s", got);
}

/* ------------------------------------------------------------------------
 * Batching
 * ------------------------------------------------------------------------ */

START_TEST(sent_once_per_loop_iteration)
{
	struct url u = url_of("unix://", peer_path);

	open_upstream(&u, MAXD, 1 << 20);
	upstream_push(&up, dg("c:a:1\n"));
	upstream_push(&up, dg("c:b:2\nc:c:3\n"));
	upstream_push(&up, dg("c:d:4\n"));
	/* Queued, not sent: nothing goes out from the push itself. */
	expect_nothing(peer);
	ck_assert_uint_eq(upstream_pending_lines(&up), 4);
	ck_assert_uint_eq(upstream_pending_bytes(&up), 24);
	ck_assert(!upstream_idle(&up));
	ck_assert_uint_eq(stats.forwarded_datagrams, 0);

	/* One iteration sends them all, in order, as they were. */
	spin();
	expect_datagram(peer, "c:a:1\n");
	expect_datagram(peer, "c:b:2\nc:c:3\n");
	expect_datagram(peer, "c:d:4\n");
	expect_nothing(peer);
	ck_assert(upstream_idle(&up));
	ck_assert_uint_eq(stats.forwarded_datagrams, 3);
	ck_assert_uint_eq(stats.forwarded_lines, 4);
	ck_assert_uint_eq(stats.forwarded_bytes, 24);
	ck_assert_uint_eq(stats.upstream_errors, 0);
	ck_assert_str_eq(upstream_state_name(&up), "up");
	/* With nothing queued the check stops, so that the loop may sleep. */
	ck_assert(!uv_is_active((uv_handle_t *)&up.check));

	upstream_push(&up, dg("c:e:5\n"));
	ck_assert(uv_is_active((uv_handle_t *)&up.check));
	expect_nothing(peer);
	spin();
	expect_datagram(peer, "c:e:5\n");
}
END_TEST

/* ------------------------------------------------------------------------
 * A full peer: EAGAIN, then the writable wakeup
 * ------------------------------------------------------------------------ */

START_TEST(blocked_until_the_peer_reads)
{
	struct url u = url_of("unix://", peer_path);
	enum { N = 3000 }; /* more than a unix socket queues, whatever its sysctls */
	char line[64];

	open_upstream(&u, MAXD, 1 << 20);
	for (int i = 0; i < N; i++) {
		snprintf(line, sizeof(line), "c:blocked,i=%04d:1\n", i);
		upstream_push(&up, dg(line));
	}
	/* The peer reads nothing: its queue fills, and sendto() says EAGAIN. */
	spin();
	ck_assert_str_eq(upstream_state_name(&up), "blocked");
	ck_assert_int_eq(up.last_error, -EAGAIN);
	ck_assert_str_eq(upstream_last_error(&up), strerror(EAGAIN));
	ck_assert_uint_ge(stats.upstream_errors, 1);
	ck_assert_uint_eq(stats.upstream_outages, 0); /* full is not down */
	ck_assert_uint_gt(upstream_pending_lines(&up), 0);
	ck_assert_uint_lt(stats.forwarded_datagrams, N);
	/* Blocked, the loop is not spun by the check: it waits for writable. */
	ck_assert(!uv_is_active((uv_handle_t *)&up.check));
	ck_assert_ptr_nonnull(up.poll);
	uint64_t errors = stats.upstream_errors;
	spin();
	ck_assert_uint_eq(stats.upstream_errors, errors); /* no retry without room */

	/* The peer reads; the wakeup resumes sending, without any kick. */
	int got = 0;
	for (int round = 0; round < 10 * N && got < N; round++) {
		const char *d;
		while ((d = recv_one(peer))) {
			snprintf(line, sizeof(line), "c:blocked,i=%04d:1\n", got++);
			ck_assert_str_eq(d, line); /* in order, none lost or repeated */
		}
		spin();
	}
	ck_assert_int_eq(got, N);
	expect_nothing(peer);
	ck_assert(upstream_idle(&up));
	ck_assert_str_eq(upstream_state_name(&up), "up");
	ck_assert_uint_eq(stats.forwarded_datagrams, N);
	ck_assert_uint_eq(stats.dropped_upstream, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * No peer: down until the window's kick finds it back
 * ------------------------------------------------------------------------ */

static int recoveries;

static void recovered_cb(void *ctx)
{
	(*(int *)ctx)++;
}

START_TEST(down_until_kicked)
{
	struct url u = url_of("unix://", peer_path);

	open_upstream(&u, MAXD, 1 << 20);
	recoveries = 0;
	up.recovered = recovered_cb;
	up.recovered_ctx = &recoveries;
	unbind_peer(&peer, peer_path);
	upstream_push(&up, dg("c:a:1\n"));
	spin();
	ck_assert_str_eq(upstream_state_name(&up), "down");
	ck_assert(!upstream_is_up(&up));
	ck_assert_str_eq(upstream_last_error(&up), strerror(ENOENT));
	ck_assert_uint_eq(stats.upstream_outages, 1);
	ck_assert_uint_eq(upstream_pending_lines(&up), 1); /* kept */

	/* Still down after more windows: one outage, however many tries. */
	upstream_kick(&up);
	upstream_push(&up, dg("c:b:2\n"));
	upstream_kick(&up);
	ck_assert_uint_eq(stats.upstream_outages, 1);
	ck_assert_uint_eq(stats.upstream_errors, 3);

	/* Back: nothing is tried until the next window's kick. */
	peer = bind_peer(peer_path);
	upstream_push(&up, dg("c:c:3\n"));
	spin();
	expect_nothing(peer);
	ck_assert_int_eq(recoveries, 0);
	upstream_kick(&up);
	expect_datagram(peer, "c:a:1\n");
	expect_datagram(peer, "c:b:2\n");
	expect_datagram(peer, "c:c:3\n");
	ck_assert_str_eq(upstream_state_name(&up), "up");
	ck_assert_str_eq(upstream_last_error(&up), "");
	ck_assert_int_eq(recoveries, 1);
	ck_assert_uint_eq(stats.dropped_upstream, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * A source that encodes on demand: what it could not deliver is undone
 * ------------------------------------------------------------------------ */

struct fake_source {
	const char *const *datagrams;
	size_t n, next, undone;
};

static bool fake_next(void *ctx, struct packer *pk)
{
	struct fake_source *f = ctx;

	if (f->next == f->n)
		return false;
	size_t len = strlen(f->datagrams[f->next]);
	memcpy(pk->buf, f->datagrams[f->next++], len);
	pk->len = len;
	pk->lines = 1;
	return true;
}

static void fake_undo(void *ctx)
{
	struct fake_source *f = ctx;

	f->next--;
	f->undone++;
}

START_TEST(source_undone_while_down_then_delivered_once)
{
	static const char *const lines[] = { "c:s1:1\n", "c:s2:2\n", "c:s3:3\n" };
	struct fake_source f = { lines, 3, 0, 0 };
	struct upstream_source src = { fake_next, fake_undo, &f };
	struct url u = url_of("unix://", peer_path);

	open_upstream(&u, MAXD, 1 << 20);
	upstream_set_source(&up, &src);
	upstream_push(&up, dg("x:queued:1\n"));
	upstream_fence(&up); /* the source took its lines after the push */
	unbind_peer(&peer, peer_path);
	upstream_kick(&up);
	/* The queue goes first and fails: the source is not even asked. */
	ck_assert_uint_eq(f.next, 0);
	ck_assert_uint_eq(f.undone, 0);

	/* Queue empty, peer absent: the source's datagram is given back. */
	peer = bind_peer(peer_path);
	upstream_kick(&up);
	expect_datagram(peer, "x:queued:1\n");
	expect_datagram(peer, "c:s1:1\n");
	expect_datagram(peer, "c:s2:2\n");
	expect_datagram(peer, "c:s3:3\n");
	f.next = 0;
	unbind_peer(&peer, peer_path);
	upstream_kick(&up);
	ck_assert_uint_eq(f.undone, 1);
	ck_assert_uint_eq(f.next, 0);
	upstream_kick(&up);
	ck_assert_uint_eq(f.undone, 2);
	peer = bind_peer(peer_path);
	upstream_kick(&up);
	expect_datagram(peer, "c:s1:1\n");
	expect_datagram(peer, "c:s2:2\n");
	expect_datagram(peer, "c:s3:3\n");
	expect_nothing(peer);
	ck_assert_uint_eq(f.undone, 2);
	ck_assert_uint_eq(stats.forwarded_datagrams, 7);
}
END_TEST

/* A split gauge's earlier value is pushed while the last window's lines are
 * still with the source; it must not overtake them. */
START_TEST(pushed_after_the_fence_goes_after_the_source)
{
	static const char *const lines[] = { "g,60:g:1\n", "c:s:1\n" };
	struct fake_source f = { lines, 2, 0, 0 };
	struct upstream_source src = { fake_next, fake_undo, &f };
	struct url u = url_of("unix://", peer_path);

	open_upstream(&u, MAXD, 1 << 20);
	upstream_set_source(&up, &src);
	upstream_push(&up, dg("X,1:before:1\n"));
	upstream_fence(&up); /* a window closed: the source holds its lines */
	upstream_push(&up, dg("g,120:g:2\n"));
	upstream_kick(&up);
	expect_datagram(peer, "X,1:before:1\n");
	expect_datagram(peer, "g,60:g:1\n");
	expect_datagram(peer, "c:s:1\n");
	expect_datagram(peer, "g,120:g:2\n");
	expect_nothing(peer);

	/* With the source drained, what is pushed goes at once. */
	upstream_push(&up, dg("X,2:after:1\n"));
	spin();
	expect_datagram(peer, "X,2:after:1\n");
	expect_nothing(peer);
}
END_TEST

/* ------------------------------------------------------------------------
 * What is held: max_pending_bytes, oldest dropped first and counted
 * ------------------------------------------------------------------------ */

START_TEST(max_pending_bytes_drops_oldest_first)
{
	struct url u = url_of("unix://", peer_path);

	/* 10 bytes a datagram; room for 25. */
	open_upstream(&u, MAXD, 25);
	upstream_push(&up, dg("c:a:1\nc:a:2\n")); /* 12 */
	upstream_push(&up, dg("c:b:1\nc:b:2\n")); /* 24 */
	ck_assert_uint_eq(stats.dropped_upstream, 0);
	upstream_push(&up, dg("c:c:1\nc:c:2\n")); /* 36: the oldest goes */
	ck_assert_uint_eq(stats.dropped_upstream, 2);
	ck_assert_uint_eq(upstream_pending_bytes(&up), 24);
	upstream_push(&up, dg("c:d:1\n")); /* 30: the oldest goes again */
	ck_assert_uint_eq(stats.dropped_upstream, 4);
	ck_assert_uint_eq(upstream_pending_lines(&up), 3);
	spin();
	expect_datagram(peer, "c:c:1\nc:c:2\n");
	expect_datagram(peer, "c:d:1\n");
	expect_nothing(peer);
	ck_assert_uint_eq(stats.forwarded_lines, 3);
	ck_assert_uint_eq(stats.dropped_upstream, 4);
}
END_TEST

/* ------------------------------------------------------------------------
 * Reload: all or nothing
 * ------------------------------------------------------------------------ */

START_TEST(reload_to_a_bad_target_changes_nothing)
{
	struct url u = url_of("unix://", peer_path);
	char err[256] = "", bad_path[160], want[300];

	open_upstream(&u, MAXD, 1 << 20);
	upstream_push(&up, dg("c:kept:1\n"));
	upstream_push(&up, dg("c:kept:2\n"));
	int fd = up.fd;
	char *pull = up.pull_buf;

	snprintf(bad_path, sizeof(bad_path), "%s/no/such/dir/lines.txt", dir);
	struct url bad = url_of("file://", bad_path);
	ck_assert_int_eq(upstream_reconfigure(&up, &bad, 512, 64 << 10, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "cannot open %s: No such file or directory", bad_path);
	ck_assert_str_eq(err, want);
	/* Not the url, not the sizes, not the socket, not the queue. */
	ck_assert_str_eq(up.url.text, u.text);
	ck_assert_int_eq(up.fd, fd);
	ck_assert_uint_eq(up.max_datagram, MAXD);
	ck_assert_ptr_eq(up.pull_buf, pull);
	ck_assert_uint_eq(up.max_pending_bytes, 1 << 20);
	ck_assert_uint_eq(upstream_pending_lines(&up), 2);
	ck_assert_uint_eq(stats.dropped_upstream, 0);
	spin();
	expect_datagram(peer, "c:kept:1\n");
	expect_datagram(peer, "c:kept:2\n");
}
END_TEST

START_TEST(reload_to_a_new_target_keeps_the_queue)
{
	struct url u = url_of("unix://", peer_path);
	char err[256];

	open_upstream(&u, MAXD, 1 << 20);
	peer2 = bind_peer(peer2_path);
	unbind_peer(&peer, peer_path);
	upstream_push(&up, dg("c:held:1\n"));
	spin();
	ck_assert_str_eq(upstream_state_name(&up), "down");

	struct url second = url_of("unix://", peer2_path);
	ck_assert_int_eq(upstream_reconfigure(&up, &second, MAXD, 1 << 20, err, sizeof(err)), 0);
	ck_assert_str_eq(up.url.text, second.text);
	ck_assert_str_eq(upstream_state_name(&up), "up"); /* a new target gets a fresh start */
	ck_assert_str_eq(upstream_last_error(&up), "");
	ck_assert_uint_eq(upstream_pending_lines(&up), 1);
	upstream_kick(&up);
	expect_datagram(peer2, "c:held:1\n");

	/* The same target again changes nothing but what was asked. */
	int fd = up.fd;
	ck_assert_int_eq(upstream_reconfigure(&up, &second, MAXD, 64 << 10, err, sizeof(err)), 0);
	ck_assert_int_eq(up.fd, fd);
	ck_assert_uint_eq(up.max_pending_bytes, 64 << 10);
}
END_TEST

/* A smaller max_pending_bytes applies to what is held already. */
START_TEST(reload_shrinking_max_pending_drops_oldest)
{
	struct url u = url_of("unix://", peer_path);
	char err[256];

	open_upstream(&u, MAXD, 1 << 20);
	upstream_push(&up, dg("c:a:1\n"));
	upstream_push(&up, dg("c:b:1\n"));
	upstream_push(&up, dg("c:c:1\n"));
	ck_assert_int_eq(upstream_reconfigure(&up, &u, MAXD, 12, err, sizeof(err)), 0);
	ck_assert_uint_eq(stats.dropped_upstream, 1);
	spin();
	expect_datagram(peer, "c:b:1\n");
	expect_datagram(peer, "c:c:1\n");
	expect_nothing(peer);
}
END_TEST

/* ------------------------------------------------------------------------
 * max_datagram
 * ------------------------------------------------------------------------ */

static void fill_line(char *buf, const char *name, size_t len)
{
	/* "c:NAME...:1\n", len bytes without the '\n' */
	size_t n = (size_t)snprintf(buf, len + 2, "c:%s", name);
	memset(buf + n, 'x', len - n - 2);
	memcpy(buf + len - 2, ":1\n", 4);
}

START_TEST(shrinking_max_datagram_recuts_the_queue)
{
	struct url u = url_of("unix://", peer_path);
	char err[256], text[MAXD + 2], l100[128], l150[200], l40[3][64];

	open_upstream(&u, MAXD, 1 << 20);
	fill_line(l100, "exact", 100);   /* as long as the new limit: kept */
	fill_line(l150, "toolong", 150); /* longer than the new limit: dropped */
	for (int i = 0; i < 3; i++) {
		char name[8];
		snprintf(name, sizeof(name), "s%d", i);
		fill_line(l40[i], name, 40);
	}
	snprintf(text, sizeof(text), "%s%s%s%s%s", l40[0], l150, l40[1], l100, l40[2]);
	upstream_push(&up, dg(text));
	upstream_push(&up, dg("c:after:1\n"));
	ck_assert_uint_eq(upstream_pending_lines(&up), 6);

	ck_assert_int_eq(upstream_reconfigure(&up, &u, 100, 1 << 20, err, sizeof(err)), 0);
	ck_assert_uint_eq(up.max_datagram, 100);
	ck_assert_uint_eq(stats.dropped_upstream, 1);
	ck_assert_uint_eq(upstream_pending_lines(&up), 5);
	for (struct dgram *d = up.queue.head; d; d = d->next)
		ck_assert_uint_le(d->len, 101);

	/* A datagram packed at the old size and pushed after the reload is
	 * cut the same way. */
	snprintf(text, sizeof(text), "%s%s", l40[0], l150);
	upstream_push(&up, dg(text));
	ck_assert_uint_eq(stats.dropped_upstream, 2);

	spin();
	char want[256];
	snprintf(want, sizeof(want), "%s%s", l40[0], l40[1]); /* 82 bytes */
	expect_datagram(peer, want);
	/* 100 bytes and its '\n': the '\n' stays behind. */
	snprintf(want, sizeof(want), "%.100s", l100);
	expect_datagram(peer, want);
	expect_datagram(peer, l40[2]);
	expect_datagram(peer, "c:after:1\n"); /* small enough as it was */
	expect_datagram(peer, l40[0]);
	expect_nothing(peer);
	ck_assert_uint_eq(stats.forwarded_lines, 6);
}
END_TEST

START_TEST(last_newline_past_max_datagram_stays_behind)
{
	struct url u = url_of("unix://", peer_path);
	char line[600], want[600];

	open_upstream(&u, 512, 1 << 20);
	fill_line(line, "full", 512); /* 512 bytes and '\n': the most a datagram holds */
	upstream_push(&up, dg(line));
	fill_line(line, "short", 511);
	upstream_push(&up, dg(line));
	spin();
	fill_line(want, "full", 512);
	want[512] = '\0';
	expect_datagram(peer, want);
	fill_line(want, "short", 511); /* within the limit, '\n' included */
	expect_datagram(peer, want);
	/* forwarded.bytes: the bytes sent, not the byte left behind. */
	ck_assert_uint_eq(stats.forwarded_bytes, 512 + 512);
}
END_TEST

/* A stream is not a datagram socket: every byte goes, '\n' included. */
START_TEST(a_file_gets_every_newline)
{
	struct url u = url_of("file://", file_path);
	char line[600], text[1300];
	size_t len;

	open_upstream(&u, 512, 1 << 20);
	fill_line(line, "full", 512);
	upstream_push(&up, dg(line));
	upstream_push(&up, dg("c:b:1\n"));
	spin();
	char *got = read_file(file_path, &len);
	ck_assert_ptr_nonnull(got);
	snprintf(text, sizeof(text), "%sc:b:1\n", line);
	ck_assert_str_eq(got, text);
	ck_assert_uint_eq(stats.forwarded_bytes, len);
	free(got);
}
END_TEST

/* A datagram the socket can never take is dropped and counted, not retried
 * forever ahead of the rest. */
START_TEST(a_datagram_too_large_for_the_socket_is_dropped)
{
	struct url u = url_of("unix://", peer_path);
	enum { BIG = 300000 }; /* past a unix socket's default send buffer */
	int sndbuf = 0;
	socklen_t len = sizeof(sndbuf);

	open_upstream(&u, BIG, 1 << 20);
	ck_assert_int_eq(getsockopt(up.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
	ck_assert_int_lt(sndbuf, BIG);
	struct dgram *d = dgram_new(&pool);
	ck_assert_ptr_nonnull(d);
	memset(d->data, 'x', BIG);
	memcpy(d->data, "c:", 2);
	memcpy(d->data + BIG - 3, ":1\n", 3);
	d->len = BIG;
	d->lines = 1;
	upstream_push(&up, d);
	upstream_push(&up, dg("c:small:1\n"));
	spin();
	expect_datagram(peer, "c:small:1\n");
	ck_assert_uint_eq(stats.dropped_upstream, 1);
	ck_assert_uint_eq(stats.upstream_errors, 1);
	ck_assert_str_eq(upstream_state_name(&up), "up");
}
END_TEST

/* ------------------------------------------------------------------------
 * The tap: told of what went out, and only of that
 * ------------------------------------------------------------------------ */

/* What subscriber id has waiting, NUL-terminated. */
static const char *take(struct tap *t, int id)
{
	static char buf[4096];
	size_t n = tap_take(t, id, buf, sizeof(buf) - 1);

	buf[n] = '\0';
	return buf;
}

START_TEST(tap_sees_what_was_sent)
{
	struct url u = url_of("unix://", peer_path);
	static struct tap tap;

	open_upstream(&u, MAXD, 1 << 20);
	tap_init(&tap);
	int all = tap_subscribe(&tap, "", 0);
	int b = tap_subscribe(&tap, "b", 1);
	ck_assert_int_ge(all, 0);
	ck_assert_int_ge(b, 0);
	up.tap = &tap;

	upstream_push(&up, dg("c:a:1\nc:b:2\n"));
	upstream_push(&up, dg("m:b.max:3\n"));
	spin();
	ck_assert_str_eq(take(&tap, all), "out c:a:1\nout c:b:2\nout m:b.max:3\n");
	ck_assert_str_eq(take(&tap, b), "out c:b:2\nout m:b.max:3\n");

	/* Not sent, not told. */
	unbind_peer(&peer, peer_path);
	upstream_push(&up, dg("c:c:3\n"));
	spin();
	ck_assert(!tap_pending(&tap, all));
	peer = bind_peer(peer_path);
	upstream_kick(&up);
	ck_assert_str_eq(take(&tap, all), "out c:c:3\n");
	up.tap = NULL;
	tap_deinit(&tap);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("upstream");
	TCase *tc = tcase_create("upstream");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sent_once_per_loop_iteration);
	tcase_add_test(tc, blocked_until_the_peer_reads);
	tcase_add_test(tc, down_until_kicked);
	tcase_add_test(tc, source_undone_while_down_then_delivered_once);
	tcase_add_test(tc, pushed_after_the_fence_goes_after_the_source);
	tcase_add_test(tc, max_pending_bytes_drops_oldest_first);
	tcase_add_test(tc, reload_to_a_bad_target_changes_nothing);
	tcase_add_test(tc, reload_to_a_new_target_keeps_the_queue);
	tcase_add_test(tc, reload_shrinking_max_pending_drops_oldest);
	tcase_add_test(tc, shrinking_max_datagram_recuts_the_queue);
	tcase_add_test(tc, last_newline_past_max_datagram_stays_behind);
	tcase_add_test(tc, a_file_gets_every_newline);
	tcase_add_test(tc, a_datagram_too_large_for_the_socket_is_dropped);
	tcase_add_test(tc, tap_sees_what_was_sent);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
