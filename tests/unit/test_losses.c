/* test_losses.c - the journal hears of every loss, promptly after a quiet
 * spell and at most once per kind per interval in a flood, with counts that
 * add up to the stats. A fake clock: milliseconds chosen by each test. */
#include <check.h>
#include <string.h>

#include "losses.h"
#include "testutil.h"

static uint64_t totals[LOSS_KIND_COUNT];
static struct loss_report out[LOSS_KIND_COUNT];

static void setup(void)
{
	memset(totals, 0, sizeof(totals));
}

START_TEST(nothing_lost_nothing_said)
{
	struct losses l;

	losses_init(&l, totals, 0);
	for (uint64_t t = 0; t <= 60000; t += 1000)
		ck_assert_uint_eq(losses_check(&l, totals, t, false, out), 0);
	ck_assert_uint_eq(losses_check(&l, totals, 61000, true, out), 0);
}
END_TEST

START_TEST(first_loss_is_reported_at_the_next_check)
{
	struct losses l;

	losses_init(&l, totals, 5000);
	totals[LOSS_SERIES_LIMIT] = 4;
	ck_assert_uint_eq(losses_check(&l, totals, 6000, false, out), 1);
	ck_assert_int_eq(out[0].kind, LOSS_SERIES_LIMIT);
	ck_assert_uint_eq(out[0].count, 4);
	ck_assert_uint_eq(out[0].period_ms, 1000);
	ck_assert_uint_eq(losses_check(&l, totals, 7000, false, out), 0); /* said once */
}
END_TEST

START_TEST(what_was_lost_before_the_start_is_not_reported)
{
	struct losses l;

	totals[LOSS_KERNEL] = 1000;
	losses_init(&l, totals, 0);
	ck_assert_uint_eq(losses_check(&l, totals, 1000, false, out), 0);
	totals[LOSS_KERNEL] = 1003;
	ck_assert_uint_eq(losses_check(&l, totals, 2000, false, out), 1);
	ck_assert_uint_eq(out[0].count, 3);
}
END_TEST

/* A loss every second for a minute: one report per interval, and the counts
 * add up to the total. */
START_TEST(a_flood_is_reported_once_per_interval)
{
	struct losses l;
	uint64_t said = 0, reports = 0, last_at = 0;

	losses_init(&l, totals, 0);
	for (uint64_t t = 1000; t <= 60000; t += 1000) {
		totals[LOSS_UPSTREAM] += 1000;
		size_t n = losses_check(&l, totals, t, false, out);
		ck_assert_uint_le(n, 1);
		if (n == 0)
			continue;
		if (reports++)
			ck_assert_uint_ge(t - last_at, LOSSES_INTERVAL_MS);
		last_at = t;
		said += out[0].count;
	}
	ck_assert_uint_eq(reports, 6); /* at 1 s, 11 s, ..., 51 s */
	ck_assert_uint_eq(losses_check(&l, totals, 60500, true, out), 1);
	said += out[0].count;
	ck_assert_uint_eq(said, totals[LOSS_UPSTREAM]);
	ck_assert_uint_eq(out[0].period_ms, 60500 - 51000);
}
END_TEST

START_TEST(a_loss_after_a_quiet_spell_is_reported_at_once)
{
	struct losses l;

	losses_init(&l, totals, 0);
	totals[LOSS_TRUNCATED] = 1;
	ck_assert_uint_eq(losses_check(&l, totals, 1000, false, out), 1);
	/* Within the interval: held back until its end. */
	totals[LOSS_TRUNCATED] = 2;
	ck_assert_uint_eq(losses_check(&l, totals, 5000, false, out), 0);
	ck_assert_uint_eq(losses_check(&l, totals, 10999, false, out), 0);
	ck_assert_uint_eq(losses_check(&l, totals, 11000, false, out), 1);
	ck_assert_uint_eq(out[0].count, 1);
	/* Quiet for a minute, then one loss: the next check says so. */
	totals[LOSS_TRUNCATED] = 3;
	ck_assert_uint_eq(losses_check(&l, totals, 71000, false, out), 1);
	ck_assert_uint_eq(out[0].count, 1);
	ck_assert_uint_eq(out[0].period_ms, 60000);
}
END_TEST

START_TEST(kinds_are_independent)
{
	struct losses l;

	losses_init(&l, totals, 0);
	totals[LOSS_NAME_LIMIT] = 5;
	ck_assert_uint_eq(losses_check(&l, totals, 1000, false, out), 1);
	/* Another kind's first loss is not held back by this one's interval. */
	totals[LOSS_NAME_LIMIT] = 6;
	totals[LOSS_AGE_GAUGE_LIMIT] = 1;
	totals[LOSS_KERNEL] = 7;
	size_t n = losses_check(&l, totals, 2000, false, out);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(out[0].kind, LOSS_KERNEL);
	ck_assert_uint_eq(out[0].count, 7);
	ck_assert_int_eq(out[1].kind, LOSS_AGE_GAUGE_LIMIT);
	ck_assert_uint_eq(out[1].count, 1);
	/* The final check says what is left, whatever the interval. */
	n = losses_check(&l, totals, 2500, true, out);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(out[0].kind, LOSS_NAME_LIMIT);
	ck_assert_uint_eq(out[0].count, 1);
}
END_TEST

START_TEST(a_total_that_goes_back_does_not_wrap)
{
	struct losses l;

	totals[LOSS_UPSTREAM] = 10;
	losses_init(&l, totals, 0);
	totals[LOSS_UPSTREAM] = 4;
	ck_assert_uint_eq(losses_check(&l, totals, 1000, false, out), 0);
	totals[LOSS_UPSTREAM] = 6;
	ck_assert_uint_eq(losses_check(&l, totals, 2000, false, out), 1);
	ck_assert_uint_eq(out[0].count, 2);
}
END_TEST

START_TEST(names_units_and_stats)
{
	ck_assert_str_eq(loss_kind_name[LOSS_UPSTREAM], "upstream");
	ck_assert_str_eq(loss_kind_unit[LOSS_KERNEL], "datagrams");
	ck_assert_str_eq(loss_kind_stat[LOSS_AGE_GAUGE_LIMIT], "dropped.age_gauge_limit");
	for (int k = 0; k < LOSS_KIND_COUNT; k++)
		ck_assert(loss_kind_name[k] && loss_kind_unit[k] && loss_kind_stat[k]);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("losses");
	TCase *tc = tcase_create("losses");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, nothing_lost_nothing_said);
	tcase_add_test(tc, first_loss_is_reported_at_the_next_check);
	tcase_add_test(tc, what_was_lost_before_the_start_is_not_reported);
	tcase_add_test(tc, a_flood_is_reported_once_per_interval);
	tcase_add_test(tc, a_loss_after_a_quiet_spell_is_reported_at_once);
	tcase_add_test(tc, kinds_are_independent);
	tcase_add_test(tc, a_total_that_goes_back_does_not_wrap);
	tcase_add_test(tc, names_units_and_stats);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
