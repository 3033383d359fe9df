/* window.c - see window.h. */
#include "window.h"

#include <errno.h>
#include <string.h>

#include "clock.h"

/* ------------------------------------------------------------------------
 * The upstream's source: the closed table, one datagram at a time
 * ------------------------------------------------------------------------ */

static bool source_next(void *ctx, struct packer *pk)
{
	struct window *w = ctx;
	const struct agg_table *t = w->closed;

	w->undo_cursor = w->cursor;
	while (!agg_cursor_done(t, &w->cursor)) {
		size_t dist;
		size_t lines = packer_add_table(pk, t, &w->cursor, &dist);
		if (lines > 0) {
			w->undo_lines = lines;
			w->undo_dist_lines = dist;
			w->stats->merged_lines_out += lines - dist;
			w->stats->timers_lines_out += dist;
			return true;
		}
		if (!agg_cursor_done(t, &w->cursor)) {
			/* One line longer than max_datagram: only possible after a
			 * reload shrank it. It can never be sent; an undo must not
			 * bring it back to be counted twice. */
			w->stats->dropped_upstream++;
			agg_cursor_skip_line(t, &w->cursor);
			w->undo_cursor = w->cursor;
		}
	}
	return false;
}

static void source_undo(void *ctx)
{
	struct window *w = ctx;

	w->cursor = w->undo_cursor;
	w->stats->merged_lines_out -= w->undo_lines - w->undo_dist_lines;
	w->stats->timers_lines_out -= w->undo_dist_lines;
	w->undo_lines = w->undo_dist_lines = 0;
}

/* ------------------------------------------------------------------------
 * Pass-through lines
 * ------------------------------------------------------------------------ */

static void pt_start(struct window *w)
{
	w->pt = dgram_new(w->pool);
	if (w->pt)
		packer_init(&w->pt_pk, w->pt->data, w->policy.max_datagram);
}

static void pt_push(struct window *w)
{
	if (!w->pt || w->pt_pk.lines == 0)
		return;
	w->pt->len = w->pt_pk.len;
	w->pt->lines = w->pt_pk.lines;
	upstream_push(w->up, w->pt);
	pt_start(w);
}

static void pt_record(struct window *w, const struct sample *s)
{
	if (w->pt && packer_add_sample(&w->pt_pk, s))
		return;
	pt_push(w);
	if (!w->pt)
		pt_start(w);
	if (!w->pt || !packer_add_sample(&w->pt_pk, s))
		w->stats->dropped_upstream++; /* out of memory: accepted, but lost */
}

/* ------------------------------------------------------------------------
 * Recording and closing
 * ------------------------------------------------------------------------ */

void window_prepare(struct window *w, struct sample *s)
{
	if (!admit_mergeable(&w->policy, s))
		return;
	s->hash = agg_key_hash(s);
	agg_table_prefetch(w->open, s);
}

static struct top_sketch *sketch_of(struct window *w, const struct agg_table *t)
{
	return &w->sketches[t == &w->tables[1]];
}

enum reject_reason window_record(struct window *w, const struct sample *s)
{
	struct admit a;
	double now = admit_needs_now(s) ? clock_realtime() : 0;
	enum reject_reason r = admit_line(w->open, &w->ages, &w->policy, s, now, &a);

	if (r != REJECT_NONE)
		return r;
	admit_count(w->stats, s, &a);
	/* A merged line counts in its record; this one has none. */
	if (!a.merged)
		top_sketch_add(sketch_of(w, w->open), (uint8_t)meter_symbol[s->type], s->id,
			       s->id_len, s->hash);
	for (size_t i = 0; i < a.nforward; i++)
		pt_record(w, &a.forward[i]);
	return REJECT_NONE;
}

bool window_closable(const struct window *w)
{
	struct agg_cursor c = w->cursor;

	return agg_cursor_done(w->closed, &c);
}

void window_top_view(const struct window *w, const struct agg_table *tables[2],
		     const struct top_sketch *sketches[2], uint64_t *span_ms)
{
	tables[0] = w->closed;
	tables[1] = w->open;
	sketches[0] = &w->sketches[w->closed == &w->tables[1]];
	sketches[1] = &w->sketches[w->open == &w->tables[1]];
	*span_ms = w->closed_span_ms + (uv_now(w->loop) - w->opened_ms);
}

size_t window_pending_lines(const struct window *w)
{
	struct agg_cursor start;

	agg_cursor_start(&start);
	return agg_table_pending(w->closed, &w->cursor) + agg_table_pending(w->open, &start);
}

bool window_flush(struct window *w)
{
	uint64_t t0 = uv_hrtime();

	pt_push(w);
	if (!window_closable(w)) {
		upstream_kick(w->up);
		if (!window_closable(w)) {
			/* SpectatorD has not taken the last window yet (full or
			 * away). Closing this one too would mean holding, or
			 * dropping, a third table; instead it stays open and keeps
			 * merging: a longer window, nothing lost, order kept. */
			w->stats->windows_deferred++;
			return false;
		}
	}
	agg_table_clear(w->closed);

	struct agg_table *t = w->closed;
	w->closed = w->open;
	w->open = t;
	top_sketch_clear(sketch_of(w, w->open));
	uint64_t now = uv_now(w->loop);
	w->closed_span_ms = now - w->opened_ms;
	w->opened_ms = now;
	agg_ages_next_window(&w->ages);
	agg_cursor_start(&w->cursor);
	w->undo_cursor = w->cursor;
	w->undo_lines = w->undo_dist_lines = 0;
	upstream_fence(w->up);
	w->stats->windows_last_series = agg_table_count(w->closed);

	w->stats->windows_flushed++;
	upstream_kick(w->up);
	w->stats->windows_last_flush_duration_us = (uv_hrtime() - t0) / 1000;
	if (w->on_close)
		w->on_close(w->on_close_ctx);
	return true;
}

static void timer_cb(uv_timer_t *h)
{
	struct window *w = h->data;
	uint64_t now = uv_now(w->loop);

	if (now > w->due_ms && now - w->due_ms > w->stats->windows_max_loop_lag_us / 1000)
		w->stats->windows_max_loop_lag_us = (now - w->due_ms) * 1000;
	w->due_ms = now + w->period_ms;
	window_flush(w);
}

bool window_delivered(const struct window *w)
{
	return window_closable(w) && agg_table_count(w->open) == 0;
}

size_t window_series(const struct window *w)
{
	return agg_table_count(w->open);
}

/* ------------------------------------------------------------------------
 * Setup
 * ------------------------------------------------------------------------ */

static struct agg_limits limits_of(const struct config *cfg)
{
	struct agg_limits lim = { cfg->max_series, cfg->max_key_bytes, cfg->max_series_per_name,
				  cfg->max_datagram };

	return lim;
}

int window_open(struct window *w, uv_loop_t *loop, const struct config *cfg, struct stats *stats,
		struct upstream *up, struct dgram_pool *pool)
{
	memset(w, 0, sizeof(*w));
	w->loop = loop;
	w->stats = stats;
	w->up = up;
	w->pool = pool;
	w->period_ms = cfg->window_ms;
	w->policy = (struct admit_policy){ cfg->max_datagram, cfg->merge_timers };
	agg_cursor_start(&w->cursor);
	w->undo_cursor = w->cursor;
	struct agg_limits lim = limits_of(cfg);
	if (agg_table_init(&w->tables[0], &lim) != 0 || agg_table_init(&w->tables[1], &lim) != 0 ||
	    agg_ages_init(&w->ages, cfg->age_gauge_limit) != 0) {
		agg_table_deinit(&w->tables[0]);
		agg_table_deinit(&w->tables[1]);
		return -ENOMEM;
	}
	w->open = &w->tables[0];
	w->closed = &w->tables[1];
	w->opened_ms = uv_now(loop);
	pt_start(w);

	struct upstream_source src = { source_next, source_undo, w };
	upstream_set_source(up, &src);

	int r = uv_timer_init(loop, &w->timer);
	if (r != 0) {
		dgram_free(pool, w->pt);
		agg_table_deinit(&w->tables[0]);
		agg_table_deinit(&w->tables[1]);
		agg_ages_deinit(&w->ages);
		return r;
	}
	w->timer.data = w;
	w->due_ms = uv_now(loop) + w->period_ms;
	/* Fails only without a callback, or on a closing handle. */
	(void)uv_timer_start(&w->timer, timer_cb, w->period_ms, w->period_ms);
	return 0;
}

void window_reconfigure(struct window *w, const struct config *cfg)
{
	struct agg_limits lim = limits_of(cfg);
	agg_table_set_limits(&w->tables[0], &lim);
	agg_table_set_limits(&w->tables[1], &lim);
	w->ages.limit = cfg->age_gauge_limit;
	/* Series merged so far stay in the table and go out at its close;
	 * only lines from now on follow the new setting. */
	w->policy.merge_timers = cfg->merge_timers;
	if (cfg->max_datagram != w->policy.max_datagram) {
		/* Lines already packed were checked against the old size, which
		 * the upstream still accepts for this one datagram. */
		pt_push(w);
		w->policy.max_datagram = cfg->max_datagram;
		dgram_pool_set_cap(w->pool, cfg->max_datagram);
		dgram_free(w->pool, w->pt);
		pt_start(w);
	}
	if (cfg->window_ms != w->period_ms) {
		w->period_ms = cfg->window_ms;
		w->due_ms = uv_now(w->loop) + w->period_ms;
		uv_timer_start(&w->timer, timer_cb, w->period_ms, w->period_ms);
	}
}

static void timer_close_cb(uv_handle_t *h)
{
	struct window *w = h->data;

	if (w->closed_cb)
		w->closed_cb(w);
}

void window_close(struct window *w, void (*cb)(struct window *w))
{
	w->closed_cb = cb;
	dgram_free(w->pool, w->pt);
	w->pt = NULL;
	agg_table_deinit(&w->tables[0]);
	agg_table_deinit(&w->tables[1]);
	agg_ages_deinit(&w->ages);
	uv_close((uv_handle_t *)&w->timer, timer_close_cb);
}
