/* daemon.c - start-up, signals, reload and the shutdown sequence. */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sockutil.h"

/* At shutdown, how often to retry delivery until the deadline. */
#define STOP_RETRY_MS 10
#define TICK_MS 1000
/* At shutdown, read at most this many datagrams per socket: a sender that
 * never stops must not keep the relay from exiting. */
#define DRAIN_MAX (1u << 20)

enum {
	HAVE_LOOP = 1 << 0,
	HAVE_PARSER = 1 << 1,
	HAVE_UPSTREAM = 1 << 2,
	HAVE_WINDOW = 1 << 3,
	HAVE_HANDLES = 1 << 4, /* signals and timers */
	HAVE_ADMIN = 1 << 5,
	HAVE_RESYNC = 1 << 6,
};

static double realtime_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static void on_reject(void *ctx, const struct sender_id *from, const char *line, size_t len,
		      enum reject_reason r)
{
	struct daemon *d = ctx;
	double now = realtime_seconds();
	char who[96];
	struct sender_stats *e;

	d->now_s = now;
	e = sender(d, from, now);
	e->by_reason[r]++;
	sender_format(from, e->comm, who, sizeof(who));
	rejects_add(&d->rejects, line, len, r, who, now);
}

/* ------------------------------------------------------------------------
 * Listeners
 * ------------------------------------------------------------------------ */

static void listener_closed_cb(struct listener *l)
{
	free(l);
}

/* The descriptor systemd passed for u, or -1. */
static int adopt_fd(struct daemon *d, const struct url *u)
{
	for (size_t i = 0; i < d->sd_fds.n; i++) {
		if (!d->sd_fds.used[i] && sock_matches(d->sd_fds.fd[i], u)) {
			d->sd_fds.used[i] = true;
			return d->sd_fds.fd[i];
		}
	}
	return -1;
}

/* A built-in address the host has no family for (no IPv6 in many
 * containers) is skipped; one the operator wrote is not. */
static bool skippable(const struct config *cfg, int r)
{
	return cfg->listen_is_default && (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT);
}

/* Opens (or adopts) and wraps one listening socket: one path for both. */
static int open_listener(struct daemon *d, const struct config *cfg, const struct url *u,
			 char *err, size_t errlen)
{
	struct sock_opts o = { cfg->receive_buffer, (unsigned)cfg->unix_mode, cfg->unix_group };
	int fd = adopt_fd(d, u);
	bool adopted = fd >= 0;
	int r;

	if (adopted) {
		r = sock_prepare_adopted(fd, u);
		if (r != 0) {
			snprintf(err, errlen, "cannot use the socket systemd passed for %s: %s", u->text,
				 strerror(-r));
			return r;
		}
	} else {
		fd = sock_listen(u, &o, err, errlen);
		if (fd < 0)
			return fd;
	}
	struct listener *l = malloc(sizeof(*l));
	if (!l) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = listener_start(l, &d->loop, u, fd, adopted, &d->ingest, listener_closed_cb);
	if (r != 0) {
		snprintf(err, errlen, "cannot read %s: %s", u->text, uv_strerror(r));
		return r;
	}
	d->listeners[d->nlisteners++] = l;
	if (!url_is_loopback(u))
		log_warn("event=listen_not_loopback listener=%s reason=\"reachable from other hosts\"",
			 u->text);
	/* SO_RCVBUF reads back twice the size that was set: the kernel doubles
	 * it to cover its own bookkeeping (socket(7)). receive_buffer is the
	 * size set, in the units of [sockets] receive_buffer and of the socket
	 * unit's ReceiveBuffer=; kernel_rcvbuf is what the kernel reports, as
	 * the stats show it. */
	size_t set = l->st.receive_buffer / 2;
	log_info("event=listen listener=%s source=%s receive_buffer=%zu kernel_rcvbuf=%zu "
		 "note=\"the kernel reports SO_RCVBUF doubled, for its bookkeeping\"",
		 u->text, adopted ? "systemd" : "bound", set, l->st.receive_buffer);
	if (set < cfg->receive_buffer)
		log_warn("event=receive_buffer_capped listener=%s wanted=%llu granted=%zu "
			 "hint=\"raise net.core.rmem_max or grant CAP_NET_ADMIN\"",
			 u->text, (unsigned long long)cfg->receive_buffer, set);
	return 0;
}

/* Closes a listener, after reading what the kernel holds for it if drain.
 * At shutdown the sockets were drained before the final flush; reading
 * again then would record lines into a window nobody closes. */
static void close_listener_at(struct daemon *d, size_t i, bool drain)
{
	struct listener *l = d->listeners[i];

	if (drain)
		listener_drain(l, DRAIN_MAX);
	listener_refresh(l);
	struct listener_stats *r = &d->retired[l->url.kind == URL_UNIX];
	r->datagrams += l->st.datagrams;
	r->lines += l->st.lines;
	r->bytes += l->st.bytes;
	r->kernel_drops += l->st.kernel_drops;
	r->read_errors += l->st.read_errors;
	listener_close(l, listener_closed_cb);
	d->listeners[i] = d->listeners[--d->nlisteners];
	d->listeners[d->nlisteners] = NULL;
}

/* ------------------------------------------------------------------------
 * Periodic work
 * ------------------------------------------------------------------------ */

/* STATUS= after each window: what `systemctl status` shows. */
static void window_closed(void *ctx)
{
	struct daemon *d = ctx;
	uint64_t now = uv_now(&d->loop);
	uint64_t in = d->stats.received_lines, out = d->stats.forwarded_lines;
	double secs = (double)(now - d->last_status_ms) / 1000.0;
	char status[160];

	if (d->stats.windows_last_flush_duration_us > d->self.max_flush_us)
		d->self.max_flush_us = d->stats.windows_last_flush_duration_us;
	d->now_s = realtime_seconds();
	if (secs <= 0)
		return;
	snprintf(status, sizeof(status),
		 "STATUS=in %.0f lines/s, out %.0f lines/s, rejected %llu, upstream %s",
		 (double)(in - d->last_status_in) / secs, (double)(out - d->last_status_out) / secs,
		 (unsigned long long)stats_rejected_total(&d->stats),
		 upstream_state_name(&d->upstream));
	sd_notify_str(status);
	d->last_status_ms = now;
	d->last_status_in = in;
	d->last_status_out = out;
}

static void self_cb(uv_timer_t *h)
{
	struct daemon *d = h->data;

	if (d->cfg.self_metrics)
		selfmetrics_emit(&d->self, d);
	else
		selfmetrics_reset(&d->self, d);
}

static void tick_cb(uv_timer_t *h)
{
	struct daemon *d = h->data;

	if (d->watchdog_ms)
		sd_notify_str("WATCHDOG=1");
	for (size_t i = 0; i < d->nlisteners; i++)
		listener_refresh(d->listeners[i]);
}

/* ------------------------------------------------------------------------
 * Shutdown
 * ------------------------------------------------------------------------ */

static void noop_close_cb(uv_handle_t *h)
{
	(void)h;
}

static void window_closed_cb(struct window *w)
{
	(void)w;
}

static void upstream_closed_cb(struct upstream *up)
{
	(void)up;
}

static void admin_closed_cb(struct admin *a)
{
	(void)a;
}

static void resync_closed_cb(struct resync *r)
{
	(void)r;
}

/* Closes every handle that is open; the loop then ends by itself. */
static void close_all(struct daemon *d)
{
	while (d->nlisteners)
		close_listener_at(d, d->nlisteners - 1, false);
	if (d->started & HAVE_ADMIN) {
		admin_close(&d->admin, admin_closed_cb);
		d->started &= ~(unsigned)HAVE_ADMIN;
	}
	if (d->started & HAVE_RESYNC) {
		resync_close(&d->resync, resync_closed_cb);
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
		d->stats.dropped_upstream += agg_table_pending(d->window.closed, d->window.cursor) +
					     agg_table_pending(d->window.open, 0);
		window_close(&d->window, window_closed_cb);
		d->started &= ~(unsigned)HAVE_WINDOW;
	}
	if (d->started & HAVE_UPSTREAM) {
		upstream_close(&d->upstream, upstream_closed_cb);
		d->started &= ~(unsigned)HAVE_UPSTREAM;
	}
}

static void upstream_recovered(void *ctx)
{
	struct daemon *d = ctx;

	if (d->started & HAVE_RESYNC) /* not while shutting down */
		resync_now(&d->resync);
}

static bool delivered(struct daemon *d)
{
	return window_delivered(&d->window) && upstream_idle(&d->upstream);
}

static void stop_timer_cb(uv_timer_t *h)
{
	struct daemon *d = h->data;
	uint64_t now = uv_now(&d->loop);

	if (!delivered(d) && now < d->stop_deadline_ms) {
		/* Blocked waits for writable; down is retried here; a window
		 * whose close was put off closes once the last one is out. */
		if (d->upstream.state == UPSTREAM_DOWN)
			upstream_kick(&d->upstream);
		if (window_closable(&d->window) && window_series(&d->window) > 0)
			window_flush(&d->window);
		return;
	}
	uv_timer_stop(h);
	if (!delivered(d))
		log_warn("event=shutdown_undelivered upstream=%s state=%s pending_lines=%zu",
			 d->upstream.url.text, upstream_state_name(&d->upstream),
			 d->upstream.queue.lines +
				 agg_table_pending(d->window.closed, d->window.cursor) +
				 agg_table_pending(d->window.open, 0));
	close_all(d);
	log_info("event=stopped received_lines=%llu forwarded_lines=%llu dropped_upstream=%llu",
		 (unsigned long long)d->stats.received_lines,
		 (unsigned long long)d->stats.forwarded_lines,
		 (unsigned long long)d->stats.dropped_upstream);
}

void daemon_stop(struct daemon *d)
{
	size_t drained = 0;

	if (d->stopping)
		return;
	d->stopping = true;
	sd_notify_str("STOPPING=1");
	log_info("event=stopping");

	/* Stop receiving, but first take in what the kernel already holds for
	 * us: it was sent before we were asked to stop. */
	for (size_t i = 0; i < d->nlisteners; i++)
		drained += listener_drain(d->listeners[i], DRAIN_MAX);
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
			daemon_reload(d, msg, sizeof(msg));
		return;
	}
	log_info("event=signal signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	daemon_stop(d);
}

/* ------------------------------------------------------------------------
 * Start and cleanup
 * ------------------------------------------------------------------------ */

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
	if (r != 0) {
		snprintf(err, errlen, "cannot create the event loop: %s", uv_strerror(r));
		return r;
	}
	d->started |= HAVE_LOOP;
	d->start_ms = d->last_status_ms = uv_now(&d->loop);
	dgram_pool_init(&d->pool, cfg->max_datagram, 64);

	r = proto_parser_init(&d->ingest.ps, cfg->max_datagram);
	if (r != 0) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	d->started |= HAVE_PARSER;
	d->ingest.stats = &d->stats;
	d->ingest.window = &d->window;
	d->ingest.on_datagram = on_datagram;
	d->ingest.on_reject = on_reject;
	d->ingest.observer = d;
	d->now_s = realtime_seconds();
	senders_init(&d->senders);

	r = upstream_open(&d->upstream, &d->loop, &cfg->upstream, cfg->max_datagram,
			  cfg->max_pending_bytes, &d->pool, &d->stats, err, errlen);
	if (r != 0)
		return r;
	d->started |= HAVE_UPSTREAM;
	r = window_init(&d->window, &d->loop, cfg, &d->stats, &d->upstream, &d->pool);
	if (r != 0) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	d->started |= HAVE_WINDOW;
	d->window.on_close = window_closed;
	d->window.on_close_ctx = d;

	uv_signal_init(&d->loop, &d->sigterm);
	uv_signal_init(&d->loop, &d->sigint);
	uv_signal_init(&d->loop, &d->sighup);
	uv_timer_init(&d->loop, &d->stop_timer);
	uv_timer_init(&d->loop, &d->tick);
	uv_timer_init(&d->loop, &d->self_timer);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	d->stop_timer.data = d->tick.data = d->self_timer.data = d;
	d->started |= HAVE_HANDLES;

	r = sd_fds_take(&d->sd_fds);
	if (r < 0) {
		snprintf(err, errlen, "cannot read LISTEN_FDS: %s", strerror(-r));
		return r;
	}
	if (sd_fds_unsupported())
		log_warn("event=socket_activation_unsupported reason=\"built without libsystemd\"");
	d->cfg.nlisten = 0;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		r = open_listener(d, cfg, &cfg->listen[i], err, errlen);
		if (r != 0 && skippable(cfg, r)) {
			log_warn("event=listen_skipped error=\"%s\" reason=\"a default address this host "
				 "cannot bind\"",
				 err);
			continue;
		}
		if (r != 0)
			return r;
		d->cfg.listen[d->cfg.nlisten++] = cfg->listen[i];
	}
	if (d->nlisteners == 0) {
		snprintf(err, errlen, "no address to listen on");
		return -EADDRNOTAVAIL;
	}
	for (size_t i = 0; i < d->sd_fds.n; i++)
		if (!d->sd_fds.used[i])
			log_warn("event=unused_socket fd=%d name=%s reason=\"matches no listen address\"",
				 d->sd_fds.fd[i], d->sd_fds.name[i]);

	resync_start(&d->resync, &d->loop, &cfg->spectatord_admin, cfg->resync_interval_ms,
		     &d->window.ages, &d->ingest.ps, &d->stats);
	d->started |= HAVE_RESYNC;
	d->upstream.recovered = upstream_recovered;
	d->upstream.recovered_ctx = d;

	if (cfg->admin_socket[0]) {
		r = admin_start(&d->admin, d, err, errlen);
		if (r != 0)
			return r;
		d->started |= HAVE_ADMIN;
	}

	uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&d->sigint, signal_cb, SIGINT);
	uv_signal_start(&d->sighup, signal_cb, SIGHUP);
	d->watchdog_ms = sd_watchdog_usec() / 1000;
	uint64_t tick = TICK_MS;
	if (d->watchdog_ms && d->watchdog_ms / 2 < tick)
		tick = d->watchdog_ms / 2 ? d->watchdog_ms / 2 : 1;
	uv_timer_start(&d->tick, tick_cb, tick, tick);
	selfmetrics_reset(&d->self, d);
	uv_timer_start(&d->self_timer, self_cb, SELFMETRICS_PERIOD_MS, SELFMETRICS_PERIOD_MS);

	log_info("event=ready version=%s config=%s upstream=%s window_ms=%llu listeners=%zu",
		 RELAY_VERSION, cfg->path[0] ? cfg->path : "built-in", cfg->upstream.text,
		 (unsigned long long)cfg->window_ms, d->nlisteners);
	sd_notify_str("READY=1");
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
	if (d->started & HAVE_PARSER)
		proto_parser_deinit(&d->ingest.ps);
	dgram_pool_deinit(&d->pool);
	d->started = 0;
}

uint64_t daemon_uptime_ms(const struct daemon *d)
{
	return uv_now(&d->loop) - d->start_ms;
}

/* ------------------------------------------------------------------------
 * Reload
 * ------------------------------------------------------------------------ */

static bool listed(const struct config *c, const struct url *u)
{
	for (size_t i = 0; i < c->nlisten; i++)
		if (url_same_address(&c->listen[i], u))
			return true;
	return false;
}

/* Opens the listeners next adds and closes those it drops. Addresses that
 * cannot be opened are left out of next and reported in problems. */
static void apply_listeners(struct daemon *d, struct config *next, char *problems, size_t cap)
{
	size_t n = strlen(problems);

	for (size_t i = d->nlisteners; i-- > 0;) {
		if (!listed(next, &d->listeners[i]->url)) {
			log_info("event=unlisten listener=%s", d->listeners[i]->url.text);
			close_listener_at(d, i, true);
		}
	}
	size_t kept = 0;
	for (size_t i = 0; i < next->nlisten; i++) {
		const struct url *u = &next->listen[i];
		bool have = false;
		for (size_t j = 0; j < d->nlisteners; j++)
			have |= url_same_address(&d->listeners[j]->url, u);
		char err[256];
		int r = have ? 0 : open_listener(d, next, u, err, sizeof(err));
		if (r != 0 && skippable(next, r))
			continue;
		if (r != 0) {
			log_err("event=listen_failed listener=%s error=\"%s\"", u->text, err);
			n += (size_t)snprintf(problems + n, n < cap ? cap - n : 0, "%s%s", n ? "; " : "", err);
			continue;
		}
		next->listen[kept++] = *u;
	}
	next->nlisten = kept;
}

int daemon_reload(struct daemon *d, char *msg, size_t msglen)
{
	struct config next;
	char err[512], live[512], restart[512], problems[512] = "";
	int r;

	config_defaults(&next);
	if (d->config_path && (r = config_load(&next, d->config_path, err, sizeof(err))) != 0) {
		d->stats.reload_failed++;
		snprintf(msg, msglen, "%s", err);
		snprintf(d->last_reload, sizeof(d->last_reload), "failed: %s", err);
		log_err("event=reload_failed error=\"%s\"", err);
		return r;
	}
	char notify[64];
	snprintf(notify, sizeof(notify), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)(uv_hrtime() / 1000));
	sd_notify_str(notify);

	log_set_level((enum log_level)next.log_level);
	proto_parser_set_max_line(&d->ingest.ps, next.max_datagram);
	r = upstream_reconfigure(&d->upstream, &next.upstream, next.max_datagram,
				 next.max_pending_bytes, err, sizeof(err));
	if (r != 0) {
		snprintf(problems, sizeof(problems), "upstream kept: %s", err);
		next.upstream = d->cfg.upstream;
	}
	window_reconfigure(&d->window, &next);
	resync_reconfigure(&d->resync, &next.spectatord_admin, next.resync_interval_ms);
	apply_listeners(d, &next, problems, sizeof(problems));
	for (size_t i = 0; i < d->nlisteners; i++) {
		struct listener *l = d->listeners[i];
		size_t granted;
		if (next.receive_buffer != d->cfg.receive_buffer)
			sock_set_rcvbuf(l->fd, next.receive_buffer, &granted);
		if (l->url.kind == URL_UNIX && !l->adopted &&
		    (next.unix_mode != d->cfg.unix_mode || strcmp(next.unix_group, d->cfg.unix_group)) &&
		    sock_chmod(l->url.path, (unsigned)next.unix_mode, next.unix_group, err,
			       sizeof(err)) != 0)
			snprintf(problems + strlen(problems), sizeof(problems) - strlen(problems), "%s%s",
				 problems[0] ? "; " : "", err);
		listener_refresh(l);
	}
	/* After the parts were applied: what could not be (an upstream, an
	 * address, a default address this host lacks) did not change. */
	config_diff(&d->cfg, &next, live, sizeof(live), restart, sizeof(restart));
	/* Settings that need a restart keep their running values, so that
	 * `config` shows what is in effect. */
	snprintf(next.admin_socket, sizeof(next.admin_socket), "%s", d->cfg.admin_socket);
	next.admin_mode = d->cfg.admin_mode;
	snprintf(next.admin_group, sizeof(next.admin_group), "%s", d->cfg.admin_group);
	d->cfg = next;
	d->stats.reload_ok++;

	snprintf(msg, msglen, "reloaded %s; changed: %s; restart required for: %s%s%s",
		 d->config_path ? d->config_path : "built-in defaults", live[0] ? live : "nothing",
		 restart[0] ? restart : "nothing", problems[0] ? "; problems: " : "", problems);
	snprintf(d->last_reload, sizeof(d->last_reload), "%s", msg);
	log_info("event=reload changed=\"%s\" restart_required=\"%s\" problems=\"%s\"", live, restart,
		 problems);
	sd_notify_str("READY=1");
	return 0;
}
