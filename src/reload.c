/* reload.c - see reload.h. */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sdnotify.h"

int reload_run(const struct reload_target *t, char *msg, size_t cap)
{
	struct config *cur = t->cfg;
	struct config next;
	char err[512], live[512], restart[512], problems[512] = "";
	int r;

	config_defaults(&next);
	if (t->config_path && (r = config_load(&next, t->config_path, err, sizeof(err))) != 0) {
		t->stats->reload_failed++;
		snprintf(msg, cap, "%s", err);
		snprintf(t->last, t->last_cap, "failed: %s", err);
		log_err("event=reload_failed error=\"%s\"", err);
		return r;
	}
	char notify[64];
	snprintf(notify, sizeof(notify), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)(uv_hrtime() / 1000));
	sdnotify_send(notify);

	log_set_level((enum log_level)next.log_level);
	/* The upstream first: the window's datagrams are cut to its size. */
	r = upstream_reconfigure(t->upstream, &next.upstream, next.max_datagram,
				 next.max_pending_bytes, err, sizeof(err));
	if (r != 0) {
		snprintf(problems, sizeof(problems), "upstream kept: %s", err);
		next.upstream = cur->upstream;
		next.max_datagram = cur->max_datagram;
		next.max_pending_bytes = cur->max_pending_bytes;
	}
	window_reconfigure(t->window, &next);
	resync_reconfigure(t->resync, &next.spectatord_admin, next.resync_interval_ms);
	listeners_apply(t->listeners, &next, cur, problems, sizeof(problems));
	/* After the parts were applied: what could not be (an upstream, an
	 * address, a default address this host lacks) did not change. */
	config_diff(cur, &next, live, sizeof(live), restart, sizeof(restart));
	/* Settings that need a restart keep their running values, so that
	 * `config` shows what is in effect. */
	config_keep_restart_only(&next, cur);
	*cur = next;
	t->stats->reload_ok++;

	snprintf(msg, cap, "reloaded %s; changed: %s; restart required for: %s%s%s",
		 t->config_path ? t->config_path : "built-in defaults", live[0] ? live : "nothing",
		 restart[0] ? restart : "nothing", problems[0] ? "; problems: " : "", problems);
	snprintf(t->last, t->last_cap, "%s", msg);
	log_info("event=reload changed=\"%s\" restart_required=\"%s\" problems=\"%s\"", live, restart,
		 problems);
	sdnotify_send("READY=1");
	return 0;
}
