/* test_tap.c - what a tap subscriber receives: whole event lines for the
 * ids of its prefix, through a bounded ring that wraps, with the events it
 * could not hold counted and announced by a "lost N" line, never more than
 * TAP_MAX_SUBSCRIBERS at once. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

static struct tap t;
static char *got; /* what tap_take() moved, NUL-terminated */

static void setup(void)
{
	tap_init(&t);
	got = malloc(2 * TAP_RING_BYTES + 1);
	ck_assert_ptr_nonnull(got);
}

static void teardown(void)
{
	tap_deinit(&t);
	free(got);
}

static void line(enum tap_event ev, enum reject_reason why, const char *text)
{
	tap_line(&t, ev, why, text, strlen(text));
}

/* Everything subscriber id holds, in calls of at most cap bytes; bounded:
 * every call that returns 0 with events waiting would repeat forever. */
static const char *take_all(int id, size_t cap)
{
	size_t n = 0;

	for (int i = 0; i < 100000 && tap_pending(&t, id); i++) {
		size_t m = tap_take(&t, id, got + n, cap);
		ck_assert_msg(m > 0, "tap_take() moved nothing with events waiting");
		n += m;
		ck_assert_uint_le(n, 2 * TAP_RING_BYTES);
	}
	ck_assert(!tap_pending(&t, id));
	got[n] = '\0';
	return got;
}

/* ------------------------------------------------------------------------
 * Matching and the event lines
 * ------------------------------------------------------------------------ */

START_TEST(nothing_to_do_without_a_subscriber)
{
	ck_assert(!tap_on(&t));
	line(TAP_IN, REJECT_NONE, "c:a:1"); /* no ring to write: must not crash */
	int id = tap_subscribe(&t, "", 0);
	ck_assert_int_ge(id, 0);
	ck_assert(tap_on(&t));
	ck_assert(!tap_pending(&t, id)); /* what came before is not kept */
}
END_TEST

START_TEST(a_prefix_matches_the_name_after_the_first_colon)
{
	int id = tap_subscribe(&t, "srv.", 4);

	ck_assert_int_ge(id, 0);
	line(TAP_IN, REJECT_NONE, "c:srv.requests,status=200:1");   /* yes */
	line(TAP_IN, REJECT_NONE, "g,60:srv.gauge:2");              /* yes: after the extra */
	line(TAP_IN, REJECT_NONE, "X,1700000000:srv.x:3");          /* yes */
	line(TAP_IN, REJECT_NONE, "c:srv.:4");                      /* yes: the prefix alone */
	line(TAP_IN, REJECT_NONE, "c:other.srv.requests:5");        /* no: not at the start */
	line(TAP_IN, REJECT_NONE, "c:Srv.requests:6");              /* no: bytes, case and all */
	line(TAP_IN, REJECT_NONE, "c:srv:7");                       /* no: "srv:7" */
	line(TAP_IN, REJECT_NONE, "c:sr");                          /* no: shorter than it */
	line(TAP_REJECT, REJECT_BAD_TYPE, "srv.requests");          /* no: no ':' at all */
	line(TAP_REJECT, REJECT_MISSING_SEPARATOR, "srv.x");        /* no */
	line(TAP_REJECT, REJECT_BAD_TYPE, "srv.c:other:8");         /* no: the name is "other" */
	ck_assert_str_eq(take_all(id, TAP_RING_BYTES),
			 "in c:srv.requests,status=200:1\n"
			 "in g,60:srv.gauge:2\n"
			 "in X,1700000000:srv.x:3\n"
			 "in c:srv.:4\n");
}
END_TEST

START_TEST(the_empty_prefix_matches_every_line)
{
	int id = tap_subscribe(&t, "", 0);

	line(TAP_IN, REJECT_NONE, "c:a:1");
	line(TAP_REJECT, REJECT_BAD_TYPE, "garbage without a colon");
	line(TAP_OUT, REJECT_NONE, "c:a:1");
	ck_assert_str_eq(take_all(id, TAP_RING_BYTES),
			 "in c:a:1\n"
			 "reject bad-type garbage without a colon\n"
			 "out c:a:1\n");
}
END_TEST

START_TEST(events_name_what_happened_and_why)
{
	int id = tap_subscribe(&t, "n", 1);

	line(TAP_IN, REJECT_NONE, "c:n.a,b=1:1");
	line(TAP_REJECT, REJECT_NEGATIVE, "c:n.neg:-1");
	line(TAP_REJECT, REJECT_SERIES_LIMIT, "g:n.new:1");
	line(TAP_OUT, REJECT_NONE, "c:n.a,b=1:3");
	ck_assert_str_eq(take_all(id, TAP_RING_BYTES),
			 "in c:n.a,b=1:1\n"
			 "reject negative c:n.neg:-1\n"
			 "reject series-limit g:n.new:1\n"
			 "out c:n.a,b=1:3\n");
}
END_TEST

START_TEST(a_datagram_out_is_one_event_per_line_of_the_prefix)
{
	int id = tap_subscribe(&t, "keep", 4);
	const char dg[] = "c:keep.a:1\nc:drop.b:2\n\nm:keep.c:3\nc:keep.d:4"; /* no final '\n' */

	tap_datagram(&t, dg, strlen(dg));
	tap_datagram(&t, "c:keep.e:5\n", 11);
	tap_datagram(&t, "", 0);
	tap_datagram(&t, "\n\n", 2);
	ck_assert_str_eq(take_all(id, TAP_RING_BYTES),
			 "out c:keep.a:1\n"
			 "out m:keep.c:3\n"
			 "out c:keep.d:4\n"
			 "out c:keep.e:5\n");
}
END_TEST

START_TEST(each_subscriber_sees_its_own_prefix)
{
	int a = tap_subscribe(&t, "a.", 2), b = tap_subscribe(&t, "b.", 2),
	    all = tap_subscribe(&t, "", 0);

	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	ck_assert_int_ge(all, 0);
	ck_assert_int_ne(a, b);
	line(TAP_IN, REJECT_NONE, "c:a.x:1");
	line(TAP_IN, REJECT_NONE, "c:b.x:2");
	line(TAP_IN, REJECT_NONE, "c:c.x:3");
	ck_assert_str_eq(take_all(a, TAP_RING_BYTES), "in c:a.x:1\n");
	ck_assert_str_eq(take_all(b, TAP_RING_BYTES), "in c:b.x:2\n");
	ck_assert_str_eq(take_all(all, TAP_RING_BYTES), "in c:a.x:1\nin c:b.x:2\nin c:c.x:3\n");
}
END_TEST

/* ------------------------------------------------------------------------
 * Taking: whole lines only, the ring wrapping
 * ------------------------------------------------------------------------ */

START_TEST(take_moves_whole_lines_only)
{
	int id = tap_subscribe(&t, "", 0);

	line(TAP_IN, REJECT_NONE, "c:abc:1");  /* "in c:abc:1\n": 11 bytes */
	line(TAP_IN, REJECT_NONE, "c:defg:2"); /* 12 bytes */
	ck_assert_uint_eq(tap_take(&t, id, got, 10), 0); /* not even the first fits */
	ck_assert(tap_pending(&t, id));
	ck_assert_uint_eq(tap_take(&t, id, got, 22), 11); /* the first, not a part of the next */
	ck_assert(memcmp(got, "in c:abc:1\n", 11) == 0);
	ck_assert_uint_eq(tap_take(&t, id, got, 12), 12);
	ck_assert(memcmp(got, "in c:defg:2\n", 12) == 0);
	ck_assert(!tap_pending(&t, id));
	ck_assert_uint_eq(tap_take(&t, id, got, 100), 0);
}
END_TEST

/* A line whose event "in LINE\n" is exactly size bytes, in buf. */
static const char *line_for_event(char *buf, size_t size)
{
	size_t len = size - strlen("in \n");

	memset(buf, 'v', len);
	memcpy(buf, "c:", 2);
	memcpy(buf + len - 2, ":1", 2);
	buf[len] = '\0';
	return buf;
}

/* Events of one size, numbered; the ring is filled, half drained, filled
 * again so that the next events wrap around its end, and drained in takes
 * of an odd size: every event arrives whole, once, in order. */
START_TEST(the_ring_wraps_around_its_end)
{
	int id = tap_subscribe(&t, "", 0);
	char text[64], want[64];
	const size_t ev = strlen("in c:wrap.0000000:1\n"); /* 20 bytes per event */
	unsigned next_in = 0, next_out = 0;
	size_t wrapped = 0;

	/* TAP_RING_BYTES is not a multiple of 20: a wrap splits an event. */
	ck_assert_uint_ne(TAP_RING_BYTES % ev, 0);
	for (int round = 0; round < 5; round++) {
		/* Fill to the last whole event that fits. */
		while (t.sub[id].len + ev <= TAP_RING_BYTES) {
			size_t end = (t.sub[id].head + t.sub[id].len) % TAP_RING_BYTES;
			wrapped += end + ev > TAP_RING_BYTES;
			snprintf(text, sizeof(text), "c:wrap.%07u:1", next_in++);
			line(TAP_IN, REJECT_NONE, text);
		}
		ck_assert_uint_eq(t.sub[id].lost, 0);
		/* Drain about half. */
		for (size_t moved = 0; moved < TAP_RING_BYTES / 2;) {
			size_t n = tap_take(&t, id, got, 997);
			ck_assert_uint_gt(n, 0);
			ck_assert_uint_eq(n % ev, 0);
			for (size_t off = 0; off < n; off += ev) {
				snprintf(want, sizeof(want), "in c:wrap.%07u:1\n", next_out++);
				ck_assert_msg(memcmp(got + off, want, ev) == 0, "event %u: %.20s",
					      next_out - 1, got + off);
			}
			moved += n;
		}
	}
	/* And the rest. */
	const char *rest = take_all(id, 4096);
	for (size_t off = 0; rest[off]; off += ev) {
		snprintf(want, sizeof(want), "in c:wrap.%07u:1\n", next_out++);
		ck_assert_msg(memcmp(rest + off, want, ev) == 0, "event %u", next_out - 1);
	}
	ck_assert_uint_eq(next_out, next_in);
	ck_assert_uint_ge(wrapped, 2); /* events split across the end */
	ck_assert_uint_gt((size_t)next_in * ev, 3 * (size_t)TAP_RING_BYTES); /* round and round */
}
END_TEST

/* ------------------------------------------------------------------------
 * A slow reader: events dropped, counted, announced
 * ------------------------------------------------------------------------ */

START_TEST(a_full_ring_drops_and_counts_whole_events)
{
	int id = tap_subscribe(&t, "", 0);
	char text[2048];
	const size_t events = TAP_RING_BYTES / 1024;

	for (size_t i = 0; i < events; i++)
		line(TAP_IN, REJECT_NONE, line_for_event(text, 1024));
	ck_assert_uint_eq(t.sub[id].len, TAP_RING_BYTES); /* full to the byte */
	ck_assert(!t.sub[id].lost);
	line(TAP_IN, REJECT_NONE, text);
	line(TAP_IN, REJECT_NONE, "c:v:2"); /* even a short one: no room at all */
	line(TAP_OUT, REJECT_NONE, "c:v:1");
	ck_assert_uint_eq(t.sub[id].lost, 3);
	ck_assert_uint_eq(t.sub[id].len, TAP_RING_BYTES); /* nothing half-written */

	/* The first event goes; the ring still holds events older than the
	 * lost ones, so "lost 3" waits. */
	ck_assert_uint_eq(tap_take(&t, id, got, 7 + 1024), 1024);
	ck_assert(memcmp(got, "in c:vvv", 8) == 0);
	ck_assert_uint_eq(t.sub[id].lost, 3);
	/* The next event takes it in first: 7 + 10 + 1003 bytes fit in 1024;
	 * then 4 are left, too few for another. */
	line(TAP_OUT, REJECT_NONE, "c:v:1");
	ck_assert(!t.sub[id].lost);
	line(TAP_IN, REJECT_NONE, line_for_event(text, 1003));
	ck_assert(!t.sub[id].lost);
	line(TAP_IN, REJECT_NONE, text);
	ck_assert_uint_eq(t.sub[id].lost, 1);

	const char *all = take_all(id, 128 << 10);
	size_t n = strlen(all);
	ck_assert_uint_eq(n, (events - 1) * 1024 + 7 + 10 + 1003 + 7);
	/* Each loss where it happened: after the events before it. */
	ck_assert(memcmp(all + (events - 1) * 1024, "lost 3\nout c:v:1\nin c:vvv", 25) == 0);
	ck_assert_str_eq(all + n - 7, "lost 1\n");
	/* Said once: nothing more is lost. */
	ck_assert(!tap_pending(&t, id));
	line(TAP_IN, REJECT_NONE, "c:v:1");
	ck_assert_str_eq(take_all(id, 100), "in c:v:1\n");
}
END_TEST

START_TEST(the_lost_line_waits_for_room)
{
	int id = tap_subscribe(&t, "", 0);
	char text[256];

	line_for_event(text, 200);
	for (int i = 0; i < 100000 && t.sub[id].lost < 12345; i++)
		line(TAP_IN, REJECT_NONE, text);
	ck_assert_uint_eq(t.sub[id].lost, 12345);
	/* The events held go first; a buffer they fill leaves the count. */
	size_t held = t.sub[id].len;
	static char big[TAP_RING_BYTES];
	ck_assert_uint_eq(tap_take(&t, id, big, held), held);
	ck_assert_uint_eq(t.sub[id].lost, 12345);
	ck_assert(tap_pending(&t, id)); /* the count is still to say */
	/* "lost 12345\n" is 11 bytes: a smaller buffer takes nothing. */
	ck_assert_uint_eq(tap_take(&t, id, got, 10), 0);
	ck_assert_uint_eq(t.sub[id].lost, 12345);
	ck_assert_uint_eq(tap_take(&t, id, got, 11), 11);
	ck_assert(memcmp(got, "lost 12345\n", 11) == 0);
	ck_assert(!t.sub[id].lost);
	ck_assert(!tap_pending(&t, id));
}
END_TEST

START_TEST(a_slow_subscriber_costs_the_others_nothing)
{
	int slow = tap_subscribe(&t, "", 0), fast = tap_subscribe(&t, "", 0);
	char text[64], want[80];
	unsigned n = 0;

	/* Four ring-fulls of events; the fast one reads after each. */
	for (size_t bytes = 0; bytes < 4 * (size_t)TAP_RING_BYTES; n++) {
		snprintf(text, sizeof(text), "c:slow.%u:1", n);
		line(TAP_IN, REJECT_NONE, text);
		bytes += strlen(text) + 4;
		size_t m = tap_take(&t, fast, got, 4096);
		int w = snprintf(want, sizeof(want), "in %s\n", text);
		ck_assert_uint_eq(m, (size_t)w);
		ck_assert(memcmp(got, want, m) == 0);
	}
	ck_assert(!tap_pending(&t, fast));
	ck_assert_uint_gt(t.sub[slow].lost, 0);
	/* What the slow one holds plus what it lost is every event: the
	 * first ones, whole; the rest are counted. */
	const char *all = take_all(slow, 128 << 10);
	unsigned lost = 0, kept = 0;
	const char *p = all;
	for (; strncmp(p, "lost ", 5) != 0; p = strchr(p, '\n') + 1) {
		snprintf(want, sizeof(want), "in c:slow.%u:1\n", kept++);
		ck_assert(strncmp(p, want, strlen(want)) == 0);
	}
	ck_assert_int_eq(sscanf(p, "lost %u\n", &lost), 1);
	ck_assert_str_eq(strchr(p, '\n'), "\n"); /* the last line */
	ck_assert_uint_eq(lost + kept, n);
}
END_TEST

START_TEST(a_stopped_subscriber_keeps_what_it_holds)
{
	int id = tap_subscribe(&t, "", 0);
	char text[256];

	line(TAP_IN, REJECT_NONE, "c:held:1");
	line_for_event(text, 200);
	for (int i = 0; i < 100000 && !t.sub[id].lost; i++)
		line(TAP_IN, REJECT_NONE, text);
	tap_stop(&t, id);
	line(TAP_IN, REJECT_NONE, "c:after:1"); /* neither kept nor lost */
	tap_datagram(&t, "c:after:2\n", 10);
	ck_assert_uint_eq(t.sub[id].lost, 1);
	const char *all = take_all(id, 128 << 10);
	ck_assert(strncmp(all, "in c:held:1\n", 12) == 0);
	ck_assert_str_eq(all + strlen(all) - 7, "lost 1\n");
	ck_assert_ptr_null(strstr(all, "after"));
	ck_assert(!tap_pending(&t, id));
	/* Its slot stays taken until it is unsubscribed; then it is new. */
	ck_assert_uint_eq(t.active, 1);
	tap_unsubscribe(&t, id);
	ck_assert_int_eq(tap_subscribe(&t, "", 0), id);
	line(TAP_IN, REJECT_NONE, "c:again:1");
	ck_assert_str_eq(take_all(id, 100), "in c:again:1\n");
}
END_TEST

/* ------------------------------------------------------------------------
 * Subscribing
 * ------------------------------------------------------------------------ */

START_TEST(at_most_four_subscribers)
{
	int ids[TAP_MAX_SUBSCRIBERS];

	ck_assert_int_eq(TAP_MAX_SUBSCRIBERS, 4); /* what docs/admin.md promises */
	for (int i = 0; i < TAP_MAX_SUBSCRIBERS; i++) {
		ids[i] = tap_subscribe(&t, "p", 1);
		ck_assert_int_ge(ids[i], 0);
		ck_assert_int_lt(ids[i], TAP_MAX_SUBSCRIBERS);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(ids[i], ids[j]);
	}
	ck_assert_uint_eq(t.active, TAP_MAX_SUBSCRIBERS);
	ck_assert_int_eq(tap_subscribe(&t, "p", 1), -EBUSY);
	ck_assert_int_eq(tap_subscribe(&t, "", 0), -EBUSY);
	ck_assert_uint_eq(t.active, TAP_MAX_SUBSCRIBERS);

	/* One leaves: its slot is free again, and it starts empty. */
	line(TAP_IN, REJECT_NONE, "c:p:1");
	tap_unsubscribe(&t, ids[2]);
	ck_assert_uint_eq(t.active, TAP_MAX_SUBSCRIBERS - 1);
	ck_assert(!tap_pending(&t, ids[2]));
	ck_assert_uint_eq(tap_take(&t, ids[2], got, 100), 0);
	tap_unsubscribe(&t, ids[2]); /* twice: no-op */
	ck_assert_uint_eq(t.active, TAP_MAX_SUBSCRIBERS - 1);
	int again = tap_subscribe(&t, "q", 1);
	ck_assert_int_eq(again, ids[2]);
	ck_assert(!tap_pending(&t, again));
	line(TAP_IN, REJECT_NONE, "c:q:1");
	ck_assert_str_eq(take_all(again, 100), "in c:q:1\n");
	ck_assert_str_eq(take_all(ids[0], 100), "in c:p:1\n");

	for (int i = 0; i < TAP_MAX_SUBSCRIBERS; i++)
		tap_unsubscribe(&t, ids[i]);
	ck_assert(!tap_on(&t));
	line(TAP_IN, REJECT_NONE, "c:p:1");
}
END_TEST

START_TEST(a_prefix_of_256_bytes_is_refused)
{
	char prefix[TAP_PREFIX_MAX + 1];

	memset(prefix, 'p', sizeof(prefix));
	ck_assert_int_eq(tap_subscribe(&t, prefix, TAP_PREFIX_MAX), -ENAMETOOLONG);
	ck_assert_int_eq(tap_subscribe(&t, prefix, TAP_PREFIX_MAX + 1), -ENAMETOOLONG);
	ck_assert(!tap_on(&t));
	int id = tap_subscribe(&t, prefix, TAP_PREFIX_MAX - 1);
	ck_assert_int_ge(id, 0);

	/* The whole prefix is compared, to its last byte. */
	char text[TAP_PREFIX_MAX + 8] = "c:";
	memcpy(text + 2, prefix, TAP_PREFIX_MAX - 1);
	strcpy(text + 2 + TAP_PREFIX_MAX - 1, ":1");
	line(TAP_IN, REJECT_NONE, text);
	text[2 + TAP_PREFIX_MAX - 2] = 'q';
	line(TAP_IN, REJECT_NONE, text);
	ck_assert_uint_eq(strlen(take_all(id, TAP_RING_BYTES)), 3 + strlen(text) + 1);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("tap");
	TCase *tc = tcase_create("tap");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, nothing_to_do_without_a_subscriber);
	tcase_add_test(tc, a_prefix_matches_the_name_after_the_first_colon);
	tcase_add_test(tc, the_empty_prefix_matches_every_line);
	tcase_add_test(tc, events_name_what_happened_and_why);
	tcase_add_test(tc, a_datagram_out_is_one_event_per_line_of_the_prefix);
	tcase_add_test(tc, each_subscriber_sees_its_own_prefix);
	tcase_add_test(tc, take_moves_whole_lines_only);
	tcase_add_test(tc, the_ring_wraps_around_its_end);
	tcase_add_test(tc, a_full_ring_drops_and_counts_whole_events);
	tcase_add_test(tc, the_lost_line_waits_for_room);
	tcase_add_test(tc, a_slow_subscriber_costs_the_others_nothing);
	tcase_add_test(tc, a_stopped_subscriber_keeps_what_it_holds);
	tcase_add_test(tc, at_most_four_subscribers);
	tcase_add_test(tc, a_prefix_of_256_bytes_is_refused);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
