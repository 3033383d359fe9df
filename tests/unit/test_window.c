/* test_window.c - the merge window over a real loop and a real upstream: a
 * unix datagram socket (the peer, standing in for SpectatorD) bound in a
 * fresh temporary directory. Lines are recorded, windows closed with
 * window_flush() (the timer's window is 5 s, longer than any test here,
 * unless a test sets it), and what the peer receives is checked: merged
 * lines once per window, pass-through lines as they fill a datagram, a
 * window held open and merging on while the last one is undelivered, and
 * the settings a reload changes.
 *
 * Nothing waits on time: the loop runs one non-blocking iteration at a
 * time, and the peer is read without blocking. The one exception is the
 * test of the timer itself, which runs the loop until the timer has closed
 * a window (a bounded number of iterations). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "protocol.h"
#include "testutil.h"
#include "upstream.h"
#include "window.h"

static char dir[64], peer_path[128];
static uv_loop_t loop;
static struct config cfg;
static struct stats stats;
static struct dgram_pool pool;
static struct upstream up;
static struct window win;
static struct proto_parser ps;
static int open_handles; /* the upstream's and the window's, until closed */
static int peer = -1;

static void bind_peer(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	peer = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(peer, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", peer_path);
	ck_assert_int_eq(bind(peer, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void unbind_peer(void)
{
	if (peer >= 0)
		close(peer);
	peer = -1;
	unlink(peer_path);
}

static void setup(void)
{
	char text[200], err[256];

	snprintf(dir, sizeof(dir), "/tmp/test_window.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(peer_path, sizeof(peer_path), "%s/spectatord.unix", dir);
	memset(&stats, 0, sizeof(stats));
	log_set_level(LOG_LVL_ERR);
	ck_assert_int_eq(proto_parser_init(&ps), 0);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	bind_peer();

	config_defaults(&cfg);
	cfg.window_ms = 5000;
	cfg.max_datagram = 1000;
	snprintf(text, sizeof(text), "unix://%s", peer_path);
	ck_assert_int_eq(url_parse(text, false, &cfg.upstream, err, sizeof(err)), 0);
	dgram_pool_init(&pool, cfg.max_datagram, 8);
	ck_assert_msg(upstream_open(&up, &loop, &cfg.upstream, cfg.max_datagram,
				    cfg.max_pending_bytes, &pool, &stats, err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_int_eq(window_open(&win, &loop, &cfg, &stats, &up, &pool), 0);
	open_handles = 2;
}

static void window_closed_cb(struct window *w)
{
	(void)w;
	open_handles--;
}

static void upstream_closed_cb(struct upstream *u)
{
	(void)u;
	open_handles--;
}

static void teardown(void)
{
	window_close(&win, window_closed_cb);
	upstream_close(&up, upstream_closed_cb);
	for (int i = 0; i < 100 && open_handles; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(open_handles, 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	dgram_pool_deinit(&pool);
	proto_parser_deinit(&ps);
	unbind_peer();
	rmdir(dir);
}

static void spin(void)
{
	uv_run(&loop, UV_RUN_NOWAIT);
}

/* Parses and records one line, as the listener does. */
static enum reject_reason record(const char *line)
{
	struct sample s;

	ck_assert_msg(proto_parse_line(&ps, line, strlen(line), &s) == REJECT_NONE, "%s", line);
	window_prepare(&win, &s);
	return window_record(&win, &s);
}

static void record_ok(const char *line)
{
	ck_assert_int_eq(record(line), REJECT_NONE);
}

/* Every datagram the peer holds now, each as received, joined by "|". */
static const char *received(void)
{
	static char all[1 << 16];
	char buf[70000];
	size_t n = 0;
	ssize_t got;

	all[0] = '\0';
	while ((got = recv(peer, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
		buf[got] = '\0';
		ck_assert_uint_lt(n + (size_t)got + 2, sizeof(all));
		n += (size_t)snprintf(all + n, sizeof(all) - n, "%s%s", n ? "|" : "", buf);
	}
	ck_assert_int_eq(errno, EAGAIN);
	return all;
}

/* The lines of what the peer holds now, sorted, each followed by '\n'. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *received_sorted(void)
{
	static char out[1 << 16];
	char *copy = strdup(received()), *lines[1024], *save = NULL;
	size_t n = 0, len = 0;

	for (char *l = strtok_r(copy, "\n|", &save); l; l = strtok_r(NULL, "\n|", &save)) {
		ck_assert_uint_lt(n, 1024);
		lines[n++] = l;
	}
	qsort(lines, n, sizeof(lines[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s\n", lines[i]);
	free(copy);
	return out;
}

/* ------------------------------------------------------------------------
 * Recording, merging, forwarding
 * ------------------------------------------------------------------------ */

START_TEST(record_merges_and_flush_forwards)
{
	record_ok("c:a:1");
	record_ok("c:a:2");
	record_ok("g:b:5");
	record_ok("g:b:7");
	record_ok("m:m:3");
	record_ok("m:m:2");
	record_ok("t:lat:0.5");
	record_ok("X,1543160297100:x:1"); /* never merged: forwarded as it came */
	ck_assert_uint_eq(window_series(&win), 4);
	ck_assert_uint_eq(stats.merged_lines_in, 6);
	ck_assert_uint_eq(stats.timers_lines_in, 1);
	ck_assert_uint_eq(window_pending_lines(&win), 4);
	/* Nothing goes before the window closes; the X line waits in a
	 * datagram that is not full. */
	spin();
	ck_assert_str_eq(received(), "");

	ck_assert(window_flush(&win));
	ck_assert_uint_eq(stats.windows_flushed, 1);
	ck_assert_uint_eq(stats.windows_last_series, 4);
	ck_assert_str_eq(received_sorted(),
			 "X,1543160297100:x:1\nc:a:3\ng:b:7\nm:m:3\nt:lat:0.5\n");
	ck_assert_uint_eq(stats.merged_lines_out, 3);
	ck_assert_uint_eq(stats.timers_lines_out, 1);
	ck_assert_uint_eq(stats.forwarded_lines, 5);
	ck_assert_uint_eq(window_pending_lines(&win), 0);
	ck_assert(window_delivered(&win));
}
END_TEST

/* Lines forwarded as they came go out as each datagram fills, not at the
 * window's end. */
START_TEST(pass_through_goes_as_datagrams_fill)
{
	char line[64];
	size_t n = 0, len = strlen("X,1543160297100:pass.through,i=000:1\n");
	size_t per = (cfg.max_datagram + 1) / len; /* the last '\n' may go past */

	while (stats.forwarded_datagrams == 0 && n < 1000) {
		snprintf(line, sizeof(line), "X,1543160297100:pass.through,i=%03zu:1", n++);
		record_ok(line);
		spin();
	}
	/* The line that did not fit sent the full datagram on its way. */
	ck_assert_uint_eq(n, per + 1);
	ck_assert_uint_eq(stats.forwarded_lines, per);
	ck_assert_uint_eq(stats.windows_flushed, 0);
	const char *got = received();
	ck_assert_uint_eq(strlen(got), per * len);
	snprintf(line, sizeof(line), "X,1543160297100:pass.through,i=%03zu:1\n", per - 1);
	ck_assert_str_eq(got + strlen(got) - len, line);
}
END_TEST

START_TEST(flush_swaps_in_an_empty_table)
{
	struct agg_table *open = win.open, *closed = win.closed;

	record_ok("c:a:1");
	ck_assert(window_flush(&win));
	ck_assert_ptr_eq(win.closed, open);
	ck_assert_ptr_eq(win.open, closed);
	ck_assert_uint_eq(window_series(&win), 0);
	ck_assert_str_eq(received(), "c:a:1\n");

	/* A new window starts from nothing: counters are per window. */
	record_ok("c:a:1");
	record_ok("c:b:1");
	ck_assert(window_flush(&win));
	ck_assert_str_eq(received_sorted(), "c:a:1\nc:b:1\n");
	/* An empty window sends nothing, and still counts as flushed. */
	ck_assert(window_flush(&win));
	ck_assert_str_eq(received(), "");
	ck_assert_uint_eq(stats.windows_flushed, 3);
	ck_assert_uint_eq(stats.windows_last_series, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * The last window undelivered: the open one stays open, merging on
 * ------------------------------------------------------------------------ */

START_TEST(flush_deferred_while_the_last_window_is_undelivered)
{
	record_ok("c:a:1");
	record_ok("g:g:1");
	unbind_peer();
	/* The first close goes through; its delivery fails and is undone. */
	ck_assert(window_flush(&win));
	ck_assert_uint_eq(stats.windows_flushed, 1);
	ck_assert_str_eq(upstream_state_name(&up), "down");
	ck_assert_uint_eq(stats.merged_lines_out, 0); /* nothing went */
	ck_assert_uint_eq(window_pending_lines(&win), 2);
	ck_assert(!window_closable(&win));

	/* The next close is put off: the open window keeps merging. */
	record_ok("c:a:2");
	record_ok("g:g:2");
	ck_assert(!window_flush(&win));
	ck_assert_uint_eq(stats.windows_deferred, 1);
	ck_assert_uint_eq(stats.windows_flushed, 1);
	record_ok("c:a:3");
	record_ok("g:g:3");
	ck_assert_uint_eq(window_series(&win), 2);
	ck_assert_uint_eq(window_pending_lines(&win), 4);
	ck_assert(!window_flush(&win));
	ck_assert_uint_eq(stats.windows_deferred, 2);
	ck_assert_uint_eq(stats.merged_lines_out, 0);
	ck_assert(!window_delivered(&win));

	/* Back: the older window first, then the longer one, each once. */
	bind_peer();
	ck_assert(window_flush(&win));
	ck_assert_uint_eq(stats.windows_flushed, 2);
	const char *got = received();
	ck_assert_msg(!strcmp(got, "c:a:1\ng:g:1\n|c:a:5\ng:g:3\n") ||
			      !strcmp(got, "g:g:1\nc:a:1\n|g:g:3\nc:a:5\n"),
		      "%s", got);
	ck_assert_uint_eq(stats.merged_lines_out, 4);
	ck_assert_uint_eq(stats.forwarded_lines, 4);
	ck_assert_uint_eq(stats.dropped_upstream, 0);
	ck_assert(window_delivered(&win));
	ck_assert_str_eq(upstream_state_name(&up), "up");
}
END_TEST

/* Blocked rather than away: the same, and the writable wakeup is enough to
 * deliver the last window before the next close. */
START_TEST(flush_deferred_while_the_peer_is_full)
{
	char line[64];

	/* Pass-through datagrams until the peer's queue is full. */
	for (int i = 0; i < 100000 && upstream_is_up(&up); i++) {
		snprintf(line, sizeof(line), "X,1543160297100:fill,i=%06d:1", i);
		record_ok(line);
		spin();
	}
	ck_assert_str_eq(upstream_state_name(&up), "blocked");
	record_ok("c:held:1");
	ck_assert(window_flush(&win)); /* closes; its lines wait behind the queue */
	record_ok("c:held:2");
	ck_assert(!window_flush(&win));
	ck_assert_uint_eq(stats.windows_deferred, 1);

	/* The peer reads; the writable wakeup delivers queue and window. */
	char all[8];
	int rounds = 0;
	while (!window_closable(&win) && rounds++ < 100000) {
		while (recv(peer, all, sizeof(all), MSG_DONTWAIT) >= 0)
			;
		spin();
	}
	ck_assert(window_closable(&win));
	ck_assert(window_flush(&win));
	ck_assert_uint_eq(stats.windows_deferred, 1);
	ck_assert_uint_eq(stats.dropped_upstream, 0);
}
END_TEST

/* A gauge whose earlier TTL cannot share a line with its new value sends
 * the series as it stood first, as a line of its own. While the last window
 * is undelivered, that line must wait for it: SpectatorD keeps the TTL it
 * reads last, and the last window's TTL is the older one. */
START_TEST(split_gauge_waits_for_the_undelivered_window)
{
	char id[977], a[1024], b[1024], c[1024], want[4096] = "";

	/* 976 bytes of id: "g,120:" and this value make 1002 bytes, over
	 * max_datagram (1000); "g:" and it make 998. */
	memset(id, 'i', 976);
	id[976] = '\0';
	snprintf(a, sizeof(a), "g,60:%s:1", id);
	snprintf(b, sizeof(b), "g,120:%s:2", id);
	snprintf(c, sizeof(c), "g:%s:0.30000000000000004", id);
	record_ok(a);
	unbind_peer();
	ck_assert(window_flush(&win)); /* a's window closes; it cannot go */
	record_ok(b);
	record_ok(c); /* b goes alone, c starts the series again */
	ck_assert(!window_flush(&win));
	ck_assert_uint_eq(stats.windows_deferred, 1);
	bind_peer();
	ck_assert(window_flush(&win));
	/* What arrived, with the id written as ID, to be readable. */
	const char *got = received();
	size_t n = 0;
	for (const char *p = got; *p; p++) {
		if (strncmp(p, id, 976) == 0) {
			n += (size_t)snprintf(want + n, sizeof(want) - n, "ID");
			p += 975;
		} else if (n + 1 < sizeof(want)) {
			want[n++] = *p;
			want[n] = '\0';
		}
	}
	ck_assert_str_eq(want, "g,60:ID:1\n|g,120:ID:2\n|g:ID:0.30000000000000004\n");
	ck_assert_uint_eq(stats.dropped_upstream, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * Reload: merge_timers, max_datagram, window
 * ------------------------------------------------------------------------ */

START_TEST(reconfigure_merge_timers)
{
	record_ok("t:lat:1");
	record_ok("t:lat:2");
	ck_assert_uint_eq(stats.timers_lines_in, 2);

	cfg.merge_timers = false;
	window_reconfigure(&win, &cfg);
	/* The series merged so far stays merged; new lines go as they came. */
	record_ok("t:lat:3");
	record_ok("d:size:4");
	ck_assert_uint_eq(stats.timers_lines_in, 2);
	ck_assert_uint_eq(stats.timers_unmerged, 2);
	ck_assert(window_flush(&win));
	ck_assert_str_eq(received_sorted(), "d:size:4\nt:lat:1\nt:lat:2\nt:lat:3\n");

	cfg.merge_timers = true;
	window_reconfigure(&win, &cfg);
	record_ok("t:lat:5");
	ck_assert_uint_eq(stats.timers_lines_in, 3);
	ck_assert_uint_eq(stats.timers_unmerged, 2);
}
END_TEST

START_TEST(reconfigure_max_datagram)
{
	char line[64], err[256];

	/* 700 bytes of pass-through lines packed at 1000, not yet sent. */
	for (int i = 0; i < 20; i++) {
		snprintf(line, sizeof(line), "X,1543160297100:before,i=%02d:1", i);
		record_ok(line);
	}
	record_ok("c:merged:1");
	ck_assert_uint_eq(stats.forwarded_datagrams, 0);

	/* As reload.c does: the upstream first, then the window. */
	cfg.max_datagram = 512;
	ck_assert_int_eq(upstream_reconfigure(&up, &cfg.upstream, 512, cfg.max_pending_bytes, err,
					      sizeof(err)),
			 0);
	window_reconfigure(&win, &cfg);
	ck_assert_uint_eq(win.policy.max_datagram, 512);
	ck_assert_uint_eq(pool.cap, 512);
	for (int i = 0; i < 40; i++) {
		snprintf(line, sizeof(line), "X,1543160297100:after,i=%02d:1", i);
		record_ok(line);
	}
	ck_assert(window_flush(&win));

	/* Every line once, and no datagram past the new size. */
	char buf[2048];
	ssize_t n;
	size_t lines = 0, datagrams = 0;
	while ((n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		ck_assert_int_le(n, 512);
		datagrams++;
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
		lines += buf[n - 1] != '\n'; /* a last '\n' left behind */
	}
	ck_assert_uint_eq(lines, 20 + 40 + 1);
	ck_assert_uint_eq(stats.forwarded_lines, 61);
	ck_assert_uint_ge(datagrams, 4);
	ck_assert_uint_eq(stats.dropped_upstream, 0);
	/* A line that no longer fits any datagram is refused from now on. */
	char longer[600];
	memset(longer, 'x', sizeof(longer));
	memcpy(longer, "c:", 2);
	memcpy(longer + 520, ":1", 3);
	ck_assert_int_eq(record(longer), REJECT_TOO_LONG);
}
END_TEST

/* A merged line longer than a shrunk max_datagram can never go: the
 * source drops it once, and an undo does not bring it back to be counted
 * again. */
START_TEST(line_too_long_after_a_shrink_is_dropped_once)
{
	char longer[800], err[256];

	memset(longer, 'x', sizeof(longer));
	memcpy(longer, "c:", 2);
	memcpy(longer + 700, ":1", 3);
	record_ok(longer);
	record_ok("c:short:1");
	cfg.max_datagram = 512;
	ck_assert_int_eq(upstream_reconfigure(&up, &cfg.upstream, 512, cfg.max_pending_bytes, err,
					      sizeof(err)),
			 0);
	window_reconfigure(&win, &cfg);

	unbind_peer();
	ck_assert(window_flush(&win));
	ck_assert(!window_flush(&win));
	ck_assert(!window_flush(&win));
	ck_assert_uint_eq(stats.dropped_upstream, 1);
	bind_peer();
	ck_assert(window_flush(&win));
	ck_assert_str_eq(received(), "c:short:1\n");
	ck_assert_uint_eq(stats.dropped_upstream, 1);
	ck_assert_uint_eq(stats.merged_lines_out, 1);
	ck_assert(window_delivered(&win));
}
END_TEST

START_TEST(reconfigure_window)
{
	ck_assert_uint_eq(uv_timer_get_repeat(&win.timer), 5000);
	cfg.window_ms = 100;
	window_reconfigure(&win, &cfg);
	ck_assert_uint_eq(uv_timer_get_repeat(&win.timer), 100);
	ck_assert_uint_le(uv_timer_get_due_in(&win.timer), 100);

	/* The timer closes the window by itself. */
	record_ok("c:timed:1");
	for (int i = 0; i < 1000 && stats.windows_flushed == 0; i++)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_uint_eq(stats.windows_flushed, 1);
	ck_assert_str_eq(received(), "c:timed:1\n");
	/* The same window again changes nothing. */
	uint64_t due = uv_timer_get_due_in(&win.timer);
	window_reconfigure(&win, &cfg);
	ck_assert_uint_le(uv_timer_get_due_in(&win.timer), due);
}
END_TEST

/* Limits apply to both tables at once, from the next line on. */
START_TEST(reconfigure_limits)
{
	record_ok("c:a:1");
	record_ok("c:b:1");
	cfg.max_series = 2;
	window_reconfigure(&win, &cfg);
	record_ok("c:a:1");
	ck_assert_int_eq(record("c:c:1"), REJECT_SERIES_LIMIT);
	ck_assert(window_flush(&win));
	ck_assert_int_eq(record("c:c:1"), REJECT_NONE); /* a new window, room again */
	ck_assert_int_eq(record("c:d:1"), REJECT_NONE);
	ck_assert_int_eq(record("c:e:1"), REJECT_SERIES_LIMIT);
	ck_assert_str_eq(received_sorted(), "c:a:2\nc:b:1\n");
}
END_TEST

int main(void)
{
	Suite *su = suite_create("window");
	TCase *tc = tcase_create("window");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, record_merges_and_flush_forwards);
	tcase_add_test(tc, pass_through_goes_as_datagrams_fill);
	tcase_add_test(tc, flush_swaps_in_an_empty_table);
	tcase_add_test(tc, flush_deferred_while_the_last_window_is_undelivered);
	tcase_add_test(tc, flush_deferred_while_the_peer_is_full);
	tcase_add_test(tc, split_gauge_waits_for_the_undelivered_window);
	tcase_add_test(tc, reconfigure_merge_timers);
	tcase_add_test(tc, reconfigure_max_datagram);
	tcase_add_test(tc, line_too_long_after_a_shrink_is_dropped_once);
	tcase_add_test(tc, reconfigure_window);
	tcase_add_test(tc, reconfigure_limits);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
