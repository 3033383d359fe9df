/* daemon.c - start-up, signals, the views and operations the reporting
 * modules get, and the shutdown sequence. */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "errmsg.h"
#include "log.h"
#include "reload.h"
#include "sdnotify.h"

/* At shutdown, how often to retry delivery until the deadline. */
#define STOP_RETRY_MS 10
#define TICK_MS 1000
/* At shutdown, read at most this many datagrams per socket: a sender that
 * never stops must not keep the relay from exiting. */
#define DRAIN_MAX (1u << 20)

enum {
	HAVE_LOOP = 1 << 0,
	HAVE_INGEST = 1 << 1,
	HAVE_UPSTREAM = 1 << 2,
	HAVE_WINDOW = 1 << 3,
	HAVE_HANDLES = 1 << 4, /* signals and timers */
	HAVE_ADMIN = 1 << 5,
	HAVE_RESYNC = 1 << 6,
};

/* ------------------------------------------------------------------------
 * Who sends what: the ingest observers
 * ------------------------------------------------------------------------ */

/* The process name of a unix sender is read when `senders` asks, not here:
 * with more senders than slots, new entries come with most datagrams. */
static struct sender_stats *sender(struct daemon *d, const struct sender_id *from, double now)
{
	bool is_new;

	return senders_get(&d->senders, from, now, &is_new);
}

static void on_datagram(void *ctx, const struct sender_id *from, size_t bytes, size_t lines,
			size_t rejected)
{
	struct daemon *d = ctx;
	double now = d->now_s;
	struct sender_stats *e = sender(d, from, now);

	e->datagrams++;
	e->bytes += bytes;
	e->lines += lines;
	e->rejects += rejected;
	e->last_seen = now;
}

/* Per refused line: a copy into the ring and a count, nothing formatted. */
static void on_reject(void *ctx, const struct sender_id *from, const char *line, size_t len,
		      enum reject_reason r)
{
	struct daemon *d = ctx;
	double now = clock_realtime_coarse();

	sender(d, from, now)->by_reason[r]++;
	rejects_add(&d->rejects, line, len, r, from, now);
}

/* ------------------------------------------------------------------------
 * What the reporting modules see, and may do
 * ------------------------------------------------------------------------ */

void daemon_snapshot(struct daemon *d, struct snapshot *s)
{
	const struct listeners *ls = &d->listeners;

	listeners_refresh(&d->listeners);
	memset(s, 0, sizeof(*s));
	s->uptime_ms = uv_now(&d->loop) - d->start_ms;
	s->cfg = &d->cfg;
	s->stats = &d->stats;
	s->last_reload = d->last_reload;
	s->upstream.location = d->upstream.url.text;
	s->upstream.state = upstream_state_name(&d->upstream);
	s->upstream.up = upstream_is_up(&d->upstream);
	s->upstream.last_error = upstream_last_error(&d->upstream);
	s->upstream.pending_bytes = upstream_pending_bytes(&d->upstream);
	s->upstream.pending_lines = upstream_pending_lines(&d->upstream);
	s->spectatord.admin = resync_admin(&d->resync);
	s->spectatord.last_error = resync_last_error(&d->resync);
	s->spectatord.age_gauge_limit = d->window.ages.remote_limit;
	s->series_active = window_series(&d->window);
	window_top_view(&d->window, s->windows, s->sketches, &s->windows_span_ms);
	s->ages = &d->window.ages;
	s->senders = &d->senders;
	s->rejects = &d->rejects;
	s->nlisteners = ls->n;
	for (size_t i = 0; i < ls->n; i++) {
		const struct listener *l = ls->l[i];
		s->listeners[i] = (struct snapshot_listener){ l->url.text, l->url.kind == URL_UNIX,
							      l->adopted, l->st };
	}
	listeners_totals(ls, s->by_transport);
}

static void snapshot_op(void *ctx, struct snapshot *out)
{
	daemon_snapshot(ctx, out);
}

/* The name of each unix sender's process, read once, when first asked for. */
static void name_senders_op(void *ctx)
{
	struct daemon *d = ctx;

	for (size_t i = 0; i < d->senders.n; i++) {
		struct sender_stats *e = &d->senders.e[i];
		char path[64];
		if (!e->id.is_unix || !e->id.has_cred || e->comm[0])
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)e->id.pid);
		FILE *f = fopen(path, "re");
		if (!f)
			continue; /* gone since: it stays a pid */
		if (fgets(e->comm, sizeof(e->comm), f))
			e->comm[strcspn(e->comm, "\n")] = '\0';
		fclose(f);
	}
}

static bool all_delivered(struct daemon *d)
{
	return window_delivered(&d->window) && upstream_idle(&d->upstream);
}

static void flush_op(void *ctx, struct admin_flush *out)
{
	struct daemon *d = ctx;
	uint64_t before = d->stats.forwarded_lines;

	out->flushed = window_flush(&d->window);
	out->delivered = all_delivered(d);
	out->forwarded_lines = d->stats.forwarded_lines - before;
	out->upstream = upstream_state_name(&d->upstream);
}

static int reload(struct daemon *d, char *msg, size_t cap)
{
	const struct reload_target t = {
		.config_path = d->config_path,
		.cfg = &d->cfg,
		.stats = &d->stats,
		.upstream = &d->upstream,
		.window = &d->window,
		.resync = &d->resync,
		.listeners = &d->listeners,
		.last = d->last_reload,
		.last_cap = sizeof(d->last_reload),
	};

	return reload_run(&t, msg, cap);
}

static int reload_op(void *ctx, char *msg, size_t cap)
{
	struct daemon *d = ctx;

	if (d->stopping)
		return errmsg(msg, cap, -ESHUTDOWN, "the relay is shutting down");
	return reload(d, msg, cap);
}

static int forget_age_gauge_op(void *ctx, const char *typed, char *id, size_t cap, size_t *len)
{
	struct daemon *d = ctx;

	*len = 0;
	if (ingest_canonical_id(&d->ingest, typed, id, cap, len) != 0)
		return -EINVAL;
	if (agg_ages_forget(&d->window.ages, id, *len) != 0)
		return -ENOENT;
	log_info("event=age_gauge_forgotten id=%.*s", (int)*len, id);
	return 0;
}

static size_t forget_age_gauges_op(void *ctx)
{
	struct daemon *d = ctx;
	size_t n = agg_ages_count(&d->window.ages);

	agg_ages_forget_all(&d->window.ages);
	log_info("event=age_gauges_forgotten count=%zu", n);
	return n;
}

static void record_self_line(void *ctx, const char *line, size_t len)
{
	struct daemon *d = ctx;

	ingest_line(&d->ingest, line, len);
}

/* ------------------------------------------------------------------------
 * Periodic work
 * ------------------------------------------------------------------------ */

/* After each window: the self-metrics' longest close, and the STATUS= line
 * `systemctl status` shows. */
static void window_closed_cb(void *ctx)
{
	struct daemon *d = ctx;
	uint64_t now = uv_now(&d->loop);
	uint64_t in = d->stats.received_lines, out = d->stats.forwarded_lines;
	double secs = (double)(now - d->last_status_ms) / 1000.0;
	char status[160];

	selfmetrics_note_flush(&d->self, d->stats.windows_last_flush_duration_us);
	d->now_s = clock_realtime();
	if (secs <= 0)
		return;
	snprintf(status, sizeof(status),
		 "STATUS=in %.0f lines/s, out %.0f lines/s, rejected %llu, upstream %s",
		 (double)(in - d->last_status_in) / secs, (double)(out - d->last_status_out) / secs,
		 (unsigned long long)stats_rejected_total(&d->stats),
		 upstream_state_name(&d->upstream));
	sdnotify_send(status);
	d->last_status_ms = now;
	d->last_status_in = in;
	d->last_status_out = out;
}

static void self_cb(uv_timer_t *h)
{
	struct daemon *d = h->data;
	struct snapshot s;

	daemon_snapshot(d, &s);
	if (d->cfg.self_metrics)
		selfmetrics_emit(&d->self, &s, record_self_line, d);
	else
		selfmetrics_reset(&d->self, &s);
}

/* Every loss the stats count, as running totals; kernel drops as of the
 * listeners' last refresh, closed listeners included. */
static void loss_totals(const struct daemon *d, uint64_t t[LOSS_KIND_COUNT])
{
	struct listener_stats by[2];

	listeners_totals(&d->listeners, by);
	t[LOSS_UPSTREAM] = d->stats.dropped_upstream;
	t[LOSS_KERNEL] = by[0].kernel_drops + by[1].kernel_drops;
	t[LOSS_SERIES_LIMIT] = d->stats.rejected[REJECT_SERIES_LIMIT];
	t[LOSS_NAME_LIMIT] = d->stats.rejected[REJECT_NAME_LIMIT];
	t[LOSS_AGE_GAUGE_LIMIT] = d->stats.rejected[REJECT_AGE_GAUGE_LIMIT];
	t[LOSS_TRUNCATED] = d->stats.received_truncated;
}

/* A warning per kind of loss since the last one, at most one per kind
 * every LOSSES_INTERVAL_MS (losses.h); final: the rest, at shutdown. */
static void report_losses(struct daemon *d, bool final)
{
	uint64_t t[LOSS_KIND_COUNT];
	struct loss_report out[LOSS_KIND_COUNT];

	loss_totals(d, t);
	size_t n = losses_check(&d->losses, t, uv_now(&d->loop), final, out);
	for (size_t i = 0; i < n; i++)
		log_warn("event=%s_lost kind=%s count=%llu since_s=%.1f stat=%s",
			 loss_kind_unit[out[i].kind], loss_kind_name[out[i].kind],
			 (unsigned long long)out[i].count, (double)out[i].period_ms / 1000.0,
			 loss_kind_stat[out[i].kind]);
}

static void tick_cb(uv_timer_t *h)
{
	struct daemon *d = h->data;

	if (d->watchdog_ms)
		sdnotify_send("WATCHDOG=1");
	listeners_refresh(&d->listeners);
	report_losses(d, false);
}

static void upstream_recovered(void *ctx)
{
	struct daemon *d = ctx;

	if (d->started & HAVE_RESYNC) /* not while shutting down */
		resync_now(&d->resync);
}

/* ------------------------------------------------------------------------
 * Shutdown
 * ------------------------------------------------------------------------ */

static void noop_close_cb(uv_handle_t *h)
{
	(void)h;
}

static void window_close_cb(struct window *w)
{
	(void)w;
}

static void upstream_close_cb(struct upstream *up)
{
	(void)up;
}

static void admin_close_cb(struct admin *a)
{
	(void)a;
}

static void resync_close_cb(struct resync *r)
{
	(void)r;
}

/* Closes every handle that is open; the loop then ends by itself. */
static void close_all(struct daemon *d)
{
	listeners_close(&d->listeners);
	if (d->started & HAVE_ADMIN) {
		admin_close(&d->admin, admin_close_cb);
		d->started &= ~(unsigned)HAVE_ADMIN;
	}
	if (d->started & HAVE_RESYNC) {
		resync_close(&d->resync, resync_close_cb);
		d->started &= ~(unsigned)HAVE_RESYNC;
	}
	if (d->started & HAVE_HANDLES) {
		uv_close((uv_handle_t *)&d->sigterm, noop_close_cb);
		uv_close((uv_handle_t *)&d->sigint, noop_close_cb);
		uv_close((uv_handle_t *)&d->sighup, noop_close_cb);
		uv_close((uv_handle_t *)&d->tick, noop_close_cb);
		uv_close((uv_handle_t *)&d->self_timer, noop_close_cb);
		uv_close((uv_handle_t *)&d->stop_timer, noop_close_cb);
		d->started &= ~(unsigned)HAVE_HANDLES;
	}
	if (d->started & HAVE_WINDOW) {
		/* Whatever is still undelivered now is lost: count it. */
		d->stats.dropped_upstream += window_pending_lines(&d->window);
		window_close(&d->window, window_close_cb);
		d->started &= ~(unsigned)HAVE_WINDOW;
	}
	if (d->started & HAVE_UPSTREAM) {
		upstream_close(&d->upstream, upstream_close_cb);
		d->started &= ~(unsigned)HAVE_UPSTREAM;
	}
}

static void stop_timer_cb(uv_timer_t *h)
{
	struct daemon *d = h->data;
	uint64_t now = uv_now(&d->loop);

	if (!all_delivered(d) && now < d->stop_deadline_ms) {
		/* Blocked waits for writable; down is retried here; a window
		 * whose close was put off closes once the last one is out. */
		if (d->upstream.state == UPSTREAM_DOWN)
			upstream_kick(&d->upstream);
		if (window_closable(&d->window) && window_series(&d->window) > 0)
			window_flush(&d->window);
		return;
	}
	uv_timer_stop(h);
	if (!all_delivered(d))
		log_warn("event=shutdown_undelivered upstream=%s state=%s pending_lines=%zu",
			 d->upstream.url.text, upstream_state_name(&d->upstream),
			 upstream_pending_lines(&d->upstream) + window_pending_lines(&d->window));
	close_all(d);
	report_losses(d, true);
	log_info("event=stopped received_lines=%llu forwarded_lines=%llu dropped_upstream=%llu",
		 (unsigned long long)d->stats.received_lines,
		 (unsigned long long)d->stats.forwarded_lines,
		 (unsigned long long)d->stats.dropped_upstream);
}

void daemon_stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	sdnotify_send("STOPPING=1");
	log_info("event=stopping");

	/* Stop receiving, but first take in what the kernel already holds for
	 * us: it was sent before we were asked to stop. */
	size_t drained = listeners_drain(&d->listeners, DRAIN_MAX);
	uv_timer_stop(&d->window.timer);
	uv_timer_stop(&d->tick);
	uv_timer_stop(&d->self_timer);
	window_flush(&d->window);
	log_info("event=final_flush drained_datagrams=%zu", drained);

	d->stop_deadline_ms = uv_now(&d->loop) + d->cfg.shutdown_timeout_ms;
	uv_timer_start(&d->stop_timer, stop_timer_cb, 0, STOP_RETRY_MS);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	if (signum == SIGHUP) {
		char msg[1024];
		if (d->stopping)
			log_info("event=reload_ignored reason=\"shutting down\"");
		else
			reload(d, msg, sizeof(msg));
		return;
	}
	log_info("event=signal signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	daemon_stop(d);
}

/* ------------------------------------------------------------------------
 * Start and cleanup
 * ------------------------------------------------------------------------ */

/* The signals and timers the daemon owns. Returns 0 or a libuv error;
 * those set up before an error are closed again. */
static int start_handles(struct daemon *d)
{
	uv_handle_t *h[] = {
		(uv_handle_t *)&d->sigterm, (uv_handle_t *)&d->sigint,
		(uv_handle_t *)&d->sighup,  (uv_handle_t *)&d->stop_timer,
		(uv_handle_t *)&d->tick,    (uv_handle_t *)&d->self_timer,
	};
	size_t n = sizeof(h) / sizeof(h[0]), i;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		r = i < 3 ? uv_signal_init(&d->loop, (uv_signal_t *)h[i])
			  : uv_timer_init(&d->loop, (uv_timer_t *)h[i]);
		h[i]->data = d;
	}
	if (r != 0) {
		for (size_t k = 0; k + 1 < i; k++)
			uv_close(h[k], noop_close_cb);
		return r;
	}
	d->started |= HAVE_HANDLES;
	return 0;
}

int daemon_start(struct daemon *d, const struct config *cfg, const char *config_path, char *err,
		 size_t errlen)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->config_path = config_path;
	log_set_level((enum log_level)cfg->log_level);
	signal(SIGPIPE, SIG_IGN);

	r = uv_loop_init(&d->loop);
	if (r != 0)
		return errmsg(err, errlen, r, "cannot create the event loop: %s", uv_strerror(r));
	d->started |= HAVE_LOOP;
	d->start_ms = d->last_status_ms = uv_now(&d->loop);
	d->now_s = clock_realtime();
	dgram_pool_init(&d->pool, cfg->max_datagram, 64);
	senders_init(&d->senders);
	tap_init(&d->tap);

	r = upstream_open(&d->upstream, &d->loop, &cfg->upstream, cfg->max_datagram,
			  cfg->max_pending_bytes, &d->pool, &d->stats, err, errlen);
	if (r != 0)
		return r;
	d->started |= HAVE_UPSTREAM;
	d->upstream.recovered = upstream_recovered;
	d->upstream.recovered_ctx = d;
	d->upstream.tap = &d->tap;
	r = window_open(&d->window, &d->loop, cfg, &d->stats, &d->upstream, &d->pool);
	if (r != 0)
		return errmsg(err, errlen, r, "out of memory");
	d->started |= HAVE_WINDOW;
	d->window.on_close = window_closed_cb;
	d->window.on_close_ctx = d;
	if ((r = ingest_init(&d->ingest, &d->window, &d->stats, &d->tap)) != 0)
		return errmsg(err, errlen, r, "out of memory");
	d->started |= HAVE_INGEST;
	d->ingest.on_datagram = on_datagram;
	d->ingest.on_reject = on_reject;
	d->ingest.observer = d;

	if ((r = start_handles(d)) != 0)
		return errmsg(err, errlen, r, "cannot set up signals and timers: %s", uv_strerror(r));

	if ((r = listeners_init(&d->listeners, &d->loop, &d->ingest, err, errlen)) != 0)
		return r;
	if ((r = listeners_open(&d->listeners, &d->cfg, err, errlen)) != 0)
		return r;
	/* From here on: drops a socket from systemd had before are in its
	 * kernel_drops, not news for the journal. */
	uint64_t totals[LOSS_KIND_COUNT];
	loss_totals(d, totals);
	losses_init(&d->losses, totals, uv_now(&d->loop));

	r = resync_open(&d->resync, &d->loop, &cfg->spectatord_admin, cfg->resync_interval_ms,
			 &d->window.ages, &d->stats);
	if (r != 0)
		return errmsg(err, errlen, r, "cannot set up timers: %s", uv_strerror(r));
	d->started |= HAVE_RESYNC;

	if (cfg->admin_socket[0]) {
		const struct admin_ops ops = {
			.ctx = d,
			.snapshot = snapshot_op,
			.name_senders = name_senders_op,
			.flush = flush_op,
			.reload = reload_op,
			.forget_age_gauge = forget_age_gauge_op,
			.forget_age_gauges = forget_age_gauges_op,
		};
		r = admin_open(&d->admin, &d->loop, cfg, &ops, &d->tap, err, errlen);
		if (r != 0)
			return r;
		d->started |= HAVE_ADMIN;
	}

	if ((r = uv_signal_start(&d->sigterm, signal_cb, SIGTERM)) != 0 ||
	    (r = uv_signal_start(&d->sigint, signal_cb, SIGINT)) != 0 ||
	    (r = uv_signal_start(&d->sighup, signal_cb, SIGHUP)) != 0)
		return errmsg(err, errlen, r, "cannot catch signals: %s", uv_strerror(r));
	d->watchdog_ms = sdnotify_watchdog_usec() / 1000;
	uint64_t tick = TICK_MS;
	if (d->watchdog_ms && d->watchdog_ms / 2 < tick)
		tick = d->watchdog_ms / 2 ? d->watchdog_ms / 2 : 1;
	uv_timer_start(&d->tick, tick_cb, tick, tick);
	struct snapshot s;
	daemon_snapshot(d, &s);
	selfmetrics_reset(&d->self, &s);
	uv_timer_start(&d->self_timer, self_cb, SELFMETRICS_PERIOD_MS, SELFMETRICS_PERIOD_MS);

	log_info("event=ready version=%s config=%s upstream=%s window_ms=%llu listeners=%zu",
		 RELAY_VERSION, cfg->path[0] ? cfg->path : "built-in", cfg->upstream.text,
		 (unsigned long long)cfg->window_ms, d->listeners.n);
	sdnotify_send("READY=1");
	return 0;
}

int daemon_run(struct daemon *d)
{
	uv_run(&d->loop, UV_RUN_DEFAULT);
	return 0;
}

void daemon_cleanup(struct daemon *d)
{
	if (d->started & HAVE_LOOP) {
		close_all(d); /* after a failed start; a no-op after a clean stop */
		uv_run(&d->loop, UV_RUN_DEFAULT);
		int r = uv_loop_close(&d->loop);
		if (r != 0)
			log_err("event=loop_not_closed error=\"%s\"", uv_strerror(r));
	}
	if (d->started & HAVE_INGEST)
		ingest_deinit(&d->ingest);
	tap_deinit(&d->tap);
	dgram_pool_deinit(&d->pool);
	d->started = 0;
}
