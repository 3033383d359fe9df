/* window.h - the merge window: a timer, two tables, and the hand-off.
 *
 * Lines are recorded into the open table. Every `window` the timer closes it:
 * the open table becomes the closed one, an empty table takes its place, and
 * the upstream pulls the closed table's lines as datagrams (the window is its
 * source). If the upstream has not taken all of the last window when the
 * next one is due (SpectatorD full or away), the open window is not closed
 * but stays open, merging on: counters keep summing, last values stay last,
 * the older window still goes first, and nothing is dropped. Memory stays
 * bounded by the two tables.
 *
 * Timers and distribution summaries are merged into their statistics
 * ([relay] merge_timers). Lines that are not merged (X lines, those lines
 * when merge_timers is off, and any line agg_table_record() says to forward
 * as it came) are packed as they arrive and each full datagram is pushed to
 * the upstream at once, so that SpectatorD sees a steady stream rather than
 * a burst per window.
 *
 * The age-gauge set lives here too: it outlives windows and reloads. */
#ifndef RELAY_WINDOW_H
#define RELAY_WINDOW_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "admit.h"
#include "aggregate.h"
#include "buf.h"
#include "config.h"
#include "encode.h"
#include "stats.h"
#include "top.h"
#include "upstream.h"

struct window {
	uv_loop_t *loop;
	uv_timer_t timer;
	struct stats *stats;            /* borrowed from the daemon */
	struct upstream *up;            /* borrowed */
	struct dgram_pool *pool;        /* borrowed */
	struct agg_table tables[2];
	struct agg_table *open;         /* lines go here */
	struct agg_table *closed;       /* being delivered */
	struct top_sketch sketches[2];  /* lines forwarded as they came, by id,
					   for each table (top.h) */
	uint64_t opened_ms;             /* uv_now() when the open window opened */
	uint64_t closed_span_ms;        /* how long the closed one was open */
	struct agg_cursor cursor;       /* the first line of closed not yet delivered */
	struct agg_cursor undo_cursor;  /* cursor before the last datagram pulled */
	size_t undo_lines, undo_dist_lines;
	struct agg_ages ages;
	struct dgram *pt;               /* owned until pushed: pass-through lines */
	struct packer pt_pk;
	uint64_t period_ms;
	uint64_t due_ms;                /* when the timer should fire next (uv_now) */
	struct admit_policy policy;     /* max_datagram and merge_timers */
	void (*on_close)(void *ctx);    /* after each close: status, self-metrics */
	void *on_close_ctx;
	bool closing_handles;
	void (*closed_cb)(struct window *w);
};

/* Allocates the tables and starts the timer. Returns 0 or -ENOMEM. */
int window_open(struct window *w, uv_loop_t *loop, const struct config *cfg, struct stats *stats,
		struct upstream *up, struct dgram_pool *pool);

/* Hashes s's key into s->hash and starts loading what recording it will
 * touch: call it for the next line before recording the current one. */
void window_prepare(struct window *w, struct sample *s);

/* Records one accepted sample (borrowed for the call). For A lines whose
 * value is 0 the receive time is taken now. Returns REJECT_NONE, or the
 * window limit that refused it. */
enum reject_reason window_record(struct window *w, const struct sample *s);

/* Closes the open window now and hands it to the upstream (the timer, the
 * admin `flush`, shutdown). Returns false if the last window has not been
 * delivered yet: then the open one stays open. */
bool window_flush(struct window *w);

/* The last window is out, so the open one can close. */
bool window_closable(const struct window *w);

/* Nothing left to deliver: the last window is out and the open one empty. */
bool window_delivered(const struct window *w);

/* Series in the open table. */
size_t window_series(const struct window *w);

/* What `top` ranks: the closed window's table and sketch, then the open
 * one's, and how many milliseconds they cover. */
void window_top_view(const struct window *w, const struct agg_table *tables[2],
		     const struct top_sketch *sketches[2], uint64_t *span_ms);

/* Lines of the last window not yet delivered, and of the open one. */
size_t window_pending_lines(const struct window *w);

/* Applies window, limits, max_datagram and merge_timers from cfg, keeping
 * the open table and the age-gauge set. */
void window_reconfigure(struct window *w, const struct config *cfg);

/* Stops the timer and frees the tables; cb runs once the timer is closed. */
void window_close(struct window *w, void (*cb)(struct window *w));

#endif
