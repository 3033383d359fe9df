/* test_keytab.c - the hash table: find, insert, remove, clear and shrink. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytab.h"
#include "testutil.h"

struct rec {
	uint64_t v;
};

static int put(struct keytab *kt, uint8_t kind, const char *key, uint64_t v)
{
	struct keytab_entry *e;
	uint64_t h = keytab_hash(kind, key, strlen(key));

	if (keytab_find(kt, h, kind, key, strlen(key)))
		return -EEXIST;
	int r = keytab_insert(kt, h, kind, key, strlen(key), &e);
	if (r == 0)
		((struct rec *)keytab_val(e))->v = v;
	return r;
}

static long get(const struct keytab *kt, uint8_t kind, const char *key)
{
	struct keytab_entry *e = keytab_find(kt, keytab_hash(kind, key, strlen(key)), kind, key,
					     strlen(key));
	return e ? (long)((struct rec *)keytab_val(e))->v : -1;
}

START_TEST(insert_find_many)
{
	struct keytab kt;
	char key[32];

	ck_assert_int_eq(keytab_init(&kt, sizeof(struct rec), 1 << 30), 0);
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(put(&kt, 'c', key, (uint64_t)i), 0);
	}
	ck_assert_uint_eq(kt.count, 100000);
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(get(&kt, 'c', key), i);
		ck_assert_int_eq(get(&kt, 'C', key), -1); /* the kind is part of the key */
	}
	/* Iteration keeps insertion order. */
	size_t pos = 0, n = 0;
	struct keytab_entry *e;
	while ((e = keytab_next(&kt, &pos))) {
		snprintf(key, sizeof(key), "k%zu", n++);
		ck_assert(e->key_len == strlen(key) && memcmp(keytab_key(&kt, e), key, e->key_len) == 0);
	}
	ck_assert_uint_eq(n, 100000);
	ck_assert(keytab_done(&kt, pos));
	keytab_deinit(&kt);
}
END_TEST

START_TEST(remove_keeps_every_other_key)
{
	struct keytab kt;
	char key[32];
	const int n = 20000;

	ck_assert_int_eq(keytab_init(&kt, sizeof(struct rec), 1 << 30), 0);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "id.%d", i);
		ck_assert_int_eq(put(&kt, 'A', key, (uint64_t)i), 0);
	}
	for (int i = 0; i < n; i += 3) {
		snprintf(key, sizeof(key), "id.%d", i);
		ck_assert_int_eq(keytab_remove(&kt, keytab_hash('A', key, strlen(key)), 'A', key,
					       strlen(key)),
				 0);
	}
	ck_assert_int_eq(keytab_remove(&kt, keytab_hash('A', "nope", 4), 'A', "nope", 4), -ENOENT);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "id.%d", i);
		ck_assert_int_eq(get(&kt, 'A', key), i % 3 == 0 ? -1 : i);
	}
	/* Re-adding after removal works, and the arena does not grow without bound. */
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < n; i += 3) {
			snprintf(key, sizeof(key), "id.%d", i);
			ck_assert_int_eq(put(&kt, 'A', key, 1), 0);
		}
		for (int i = 0; i < n; i += 3) {
			snprintf(key, sizeof(key), "id.%d", i);
			ck_assert_int_eq(keytab_remove(&kt, keytab_hash('A', key, strlen(key)), 'A',
						       key, strlen(key)),
					 0);
		}
	}
	ck_assert_uint_lt(kt.arena_len, 4 * (size_t)n * 32);
	/* Iteration skips removed keys. */
	size_t pos = 0, live = 0;
	while (keytab_next(&kt, &pos))
		live++;
	ck_assert_uint_eq(live, kt.count);
	keytab_deinit(&kt);
}
END_TEST

START_TEST(key_limit_refuses_inserts)
{
	struct keytab kt;
	struct keytab_entry *e;

	ck_assert_int_eq(keytab_init(&kt, sizeof(struct rec), 10), 0);
	ck_assert_int_eq(keytab_insert(&kt, keytab_hash('c', "abcd", 4), 'c', "abcd", 4, &e), 0);
	ck_assert_int_eq(keytab_insert(&kt, keytab_hash('c', "efgh", 4), 'c', "efgh", 4, &e), 0);
	ck_assert_int_eq(keytab_insert(&kt, keytab_hash('c', "ijkl", 4), 'c', "ijkl", 4, &e),
			 -ENOSPC);
	keytab_deinit(&kt);
}
END_TEST

START_TEST(clear_shrinks_after_a_flood)
{
	struct keytab kt;
	char key[64];

	ck_assert_int_eq(keytab_init(&kt, sizeof(struct rec), 1 << 30), 0);
	for (int i = 0; i < 500000; i++) {
		snprintf(key, sizeof(key), "flood.series.%d", i);
		put(&kt, 'c', key, 1);
	}
	size_t flood = keytab_memory(&kt);
	keytab_clear(&kt); /* the flood window: peak was high, nothing shrinks */
	ck_assert_uint_eq(keytab_memory(&kt), flood);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "steady.%d", i);
		put(&kt, 'c', key, 1);
	}
	keytab_clear(&kt); /* a normal window: back to the working set */
	ck_assert_uint_lt(keytab_memory(&kt), flood / 50);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "steady.%d", i);
		ck_assert_int_eq(put(&kt, 'c', key, 1), 0);
	}
	size_t steady = keytab_memory(&kt);
	keytab_clear(&kt); /* a steady working set does not reallocate */
	ck_assert_uint_eq(keytab_memory(&kt), steady);
	keytab_deinit(&kt);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("keytab");
	TCase *tc = tcase_create("keytab");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, insert_find_many);
	tcase_add_test(tc, remove_keeps_every_other_key);
	tcase_add_test(tc, key_limit_refuses_inserts);
	tcase_add_test(tc, clear_shrinks_after_a_flood);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
