/* admin.c - the admin socket and its command table. See admin.h. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "log.h"
#include "sockutil.h"

struct conn {
	struct admin *a;
	struct conn *prev, *next;  /* in a->conns */
	uv_pipe_t pipe;
	uv_timer_t timer;
	uv_write_t wr;
	uv_shutdown_t sd;
	char req[ADMIN_MAX_REQUEST];
	size_t len;
	bool privileged;
	bool answered;
	int open;                  /* handles still to close */
	struct jbuf out;
	/* A stream (tap): the subscriber's number, or -1; events are moved
	 * from its ring to buf and written, one write at a time. */
	int tap;
	char *buf;                 /* owned: ADMIN_STREAM_CHUNK bytes */
	bool writing;
	bool ending;               /* its time is up: what it holds goes, then it closes */
};

/* Room for the longest event line (a 65536-byte line and its words). */
#define ADMIN_STREAM_CHUNK (128u << 10)

/* ------------------------------------------------------------------------
 * Commands
 *
 * Each reads a snapshot of the relay (snapshot.h) or acts through the ops
 * table its owner gave: admin knows no module but through those.
 * ------------------------------------------------------------------------ */

typedef void (*command_fn)(struct admin *a, const char *arg, struct jbuf *out);
/* A command that streams: it writes its first line to out and returns 0 to
 * keep the connection open, or writes an error and returns -errno. */
typedef int (*stream_fn)(struct conn *c, const char *arg, struct jbuf *out);

struct command {
	const char *name;
	const char *arg;           /* NULL, or the argument's name */
	const char *privileged;    /* NULL: open to all; else why it is not */
	command_fn run;
	stream_fn stream;          /* instead of run */
	const char *help;
};

static void cmd_help(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_stats(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_config(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_flush(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_age_gauges(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_forget_age_gauge(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_forget_age_gauges(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_senders(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_rejects(struct admin *a, const char *arg, struct jbuf *out);
static void cmd_reload(struct admin *a, const char *arg, struct jbuf *out);
static int cmd_tap(struct conn *c, const char *arg, struct jbuf *out);
static void cmd_top(struct admin *a, const char *arg, struct jbuf *out);

#define CHANGES "changes the relay"
#define SHOWS "shows every line the relay sees"

static const struct command commands[] = {
	{ "help", NULL, NULL, cmd_help, NULL, "lists the commands" },
	{ "stats", NULL, NULL, cmd_stats, NULL, "the statistics (docs/admin.md explains every one)" },
	{ "config", NULL, NULL, cmd_config, NULL, "the effective configuration" },
	{ "flush", NULL, CHANGES, cmd_flush, NULL,
	  "closes the open window now; replies once its datagrams are handed to the upstream" },
	{ "age-gauges", NULL, NULL, cmd_age_gauges, NULL, "the tracked age gauge ids and the limit" },
	{ "forget-age-gauge", "ID", CHANGES, cmd_forget_age_gauge, NULL,
	  "frees the slot of one age gauge id (name,key=value,...)" },
	{ "forget-age-gauges", NULL, CHANGES, cmd_forget_age_gauges, NULL,
	  "frees every age gauge slot" },
	{ "senders", NULL, NULL, cmd_senders, NULL, "the top senders by lines and by rejects" },
	{ "top", "[N]", NULL, cmd_top, NULL,
	  "the N (default 20) heaviest ids by lines received over the last window and the "
	  "open one, heaviest first" },
	{ "rejects", NULL, NULL, cmd_rejects, NULL,
	  "the last 100 refused lines: text (first 200 bytes), reason, sender, time" },
	{ "reload", NULL, CHANGES, cmd_reload, NULL,
	  "re-reads the configuration file, as SIGHUP does" },
	{ "tap", "[SECONDS] [PREFIX]", SHOWS, NULL, cmd_tap,
	  "streams the lines in, refused and out for ids starting with PREFIX, one event per "
	  "line, for SECONDS (0 or none: until the client closes)" },
};

static void reply_error(struct jbuf *out, const char *msg)
{
	jbuf_printf(out, "{\"error\": ");
	jbuf_cstring(out, msg);
	jbuf_printf(out, "}");
}

static void cmd_help(struct admin *a, const char *arg, struct jbuf *out)
{
	(void)a;
	(void)arg;
	jbuf_printf(out, "{\"commands\": [");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];
		char usage[64];
		snprintf(usage, sizeof(usage), "%s%s%s", c->name, c->arg ? " " : "", c->arg ? c->arg : "");
		jbuf_printf(out, "%s{\"command\": \"%s\", \"usage\": ", i ? ", " : "", c->name);
		jbuf_cstring(out, usage);
		jbuf_printf(out, ", \"privileged\": %s, \"help\": ", c->privileged ? "true" : "false");
		jbuf_cstring(out, c->help);
		jbuf_printf(out, "}");
	}
	jbuf_printf(out, "]}");
}

/* Live members of the stats groups, added where docs/admin.md puts them.
 * Text that a person chose (a path, a message) is escaped. */
static void stats_extra(void *ctx, const char *group, struct jbuf *out)
{
	const struct snapshot *s = ctx;

	if (strcmp(group, "upstream") == 0) {
		jbuf_printf(out, ", \"location\": ");
		jbuf_cstring(out, s->upstream.location);
		jbuf_printf(out, ", \"last_error\": ");
		jbuf_cstring(out, s->upstream.last_error);
		jbuf_printf(out,
			    ", \"state\": \"%s\", \"up\": %s, \"pending_bytes\": %zu, "
			    "\"pending_lines\": %zu",
			    s->upstream.state, s->upstream.up ? "true" : "false",
			    s->upstream.pending_bytes, s->upstream.pending_lines);
	} else if (strcmp(group, "spectatord") == 0) {
		jbuf_printf(out, ", \"age_gauge_limit\": %zu, \"admin\": ",
			    s->spectatord.age_gauge_limit);
		jbuf_cstring(out, s->spectatord.admin);
		jbuf_printf(out, ", \"last_error\": ");
		jbuf_cstring(out, s->spectatord.last_error);
	} else if (strcmp(group, "reload") == 0) {
		jbuf_printf(out, ", \"last\": ");
		jbuf_cstring(out, s->last_reload);
	}
}

static void cmd_stats(struct admin *a, const char *arg, struct jbuf *out)
{
	struct snapshot s;

	(void)arg;
	a->ops.snapshot(a->ops.ctx, &s);
	jbuf_printf(out, "{\"version\": \"%s\", \"uptime_seconds\": %llu, \"pid\": %d, ", RELAY_VERSION,
		    (unsigned long long)(s.uptime_ms / 1000), (int)getpid());
	stats_format_json(s.stats, out, stats_extra, &s);
	jbuf_printf(out,
		    ", \"series\": {\"active\": %zu, \"max\": %llu, \"age_gauges\": %zu, "
		    "\"age_gauge_limit\": %zu}",
		    s.series_active, (unsigned long long)s.cfg->max_series, agg_ages_count(s.ages),
		    agg_ages_limit(s.ages));
	jbuf_printf(out, ", \"senders\": {\"tracked\": %zu, \"evictions\": %llu}", s.senders->n,
		    (unsigned long long)s.senders->evictions);
	jbuf_printf(out, ", \"listeners\": [");
	for (size_t i = 0; i < s.nlisteners; i++) {
		const struct snapshot_listener *l = &s.listeners[i];
		jbuf_printf(out, "%s{\"url\": ", i ? ", " : "");
		jbuf_cstring(out, l->url);
		jbuf_printf(out,
			    ", \"transport\": \"%s\", \"systemd\": %s, \"datagrams\": %llu, "
			    "\"lines\": %llu, \"bytes\": %llu, \"kernel_drops\": %llu, "
			    "\"receive_buffer\": %zu, \"read_errors\": %llu}",
			    l->unix_socket ? "unix" : "udp", l->adopted ? "true" : "false",
			    (unsigned long long)l->st.datagrams, (unsigned long long)l->st.lines,
			    (unsigned long long)l->st.bytes, (unsigned long long)l->st.kernel_drops,
			    l->st.receive_buffer, (unsigned long long)l->st.read_errors);
	}
	jbuf_printf(out, "]}");
}

static void cmd_config(struct admin *a, const char *arg, struct jbuf *out)
{
	struct snapshot s;

	(void)arg;
	a->ops.snapshot(a->ops.ctx, &s);
	config_format_json(s.cfg, out);
}

static void cmd_flush(struct admin *a, const char *arg, struct jbuf *out)
{
	struct admin_flush f;

	(void)arg;
	a->ops.flush(a->ops.ctx, &f);
	jbuf_printf(out,
		    "{\"flushed\": %s, \"delivered\": %s, \"forwarded_lines\": %llu, "
		    "\"upstream\": \"%s\"}",
		    f.flushed ? "true" : "false", f.delivered ? "true" : "false",
		    (unsigned long long)f.forwarded_lines, f.upstream);
}

static void cmd_age_gauges(struct admin *a, const char *arg, struct jbuf *out)
{
	struct snapshot s;

	(void)arg;
	a->ops.snapshot(a->ops.ctx, &s);
	jbuf_printf(out, "{\"limit\": %zu, \"count\": %zu, \"ids\": [", agg_ages_limit(s.ages),
		    agg_ages_count(s.ages));
	size_t pos = 0;
	struct keytab_entry *e;
	for (bool first = true; (e = keytab_next(&s.ages->kt, &pos)); first = false) {
		if (!first)
			jbuf_printf(out, ", ");
		jbuf_string(out, keytab_key(&s.ages->kt, e), e->key_len);
	}
	jbuf_printf(out, "]}");
}

static void ages_reply(struct admin *a, size_t forgotten, struct jbuf *out)
{
	struct snapshot s;

	a->ops.snapshot(a->ops.ctx, &s);
	jbuf_printf(out, "{\"forgotten\": %zu, \"count\": %zu, \"limit\": %zu}", forgotten,
		    agg_ages_count(s.ages), agg_ages_limit(s.ages));
}

static void cmd_forget_age_gauge(struct admin *a, const char *arg, struct jbuf *out)
{
	char id[ADMIN_MAX_REQUEST], msg[ADMIN_MAX_REQUEST + 32];
	size_t len;

	if (!arg || !arg[0]) {
		reply_error(out, "usage: forget-age-gauge ID");
		return;
	}
	int r = a->ops.forget_age_gauge(a->ops.ctx, arg, id, sizeof(id), &len);
	if (r == -EINVAL) {
		reply_error(out, "not a valid id: expected name[,key=value...]");
	} else if (r != 0) {
		snprintf(msg, sizeof(msg), "not tracked: %.*s", (int)len, id);
		reply_error(out, msg);
	} else {
		ages_reply(a, 1, out);
	}
}

static void cmd_forget_age_gauges(struct admin *a, const char *arg, struct jbuf *out)
{
	(void)arg;
	ages_reply(a, a->ops.forget_age_gauges(a->ops.ctx), out);
}

static void sender_json(const struct sender_stats *e, struct jbuf *out)
{
	char who[128];
	enum reject_reason top = senders_top_reason(e);

	sender_format(&e->id, e->comm, who, sizeof(who));
	jbuf_printf(out, "{\"sender\": ");
	jbuf_cstring(out, who);
	jbuf_printf(out, ", \"transport\": \"%s\"", e->id.is_unix ? "unix" : "udp");
	if (e->id.is_unix && e->id.has_cred) {
		jbuf_printf(out, ", \"pid\": %d, \"uid\": %u, \"comm\": ", (int)e->id.pid,
			    (unsigned)e->id.uid);
		jbuf_cstring(out, e->comm);
	}
	jbuf_printf(out,
		    ", \"datagrams\": %llu, \"lines\": %llu, \"bytes\": %llu, \"rejects\": %llu, "
		    "\"top_reject\": ",
		    (unsigned long long)e->datagrams, (unsigned long long)e->lines,
		    (unsigned long long)e->bytes, (unsigned long long)e->rejects);
	if (top == REJECT_NONE)
		jbuf_printf(out, "null");
	else
		jbuf_printf(out, "\"%s\"", reject_reason_name[top]);
	jbuf_printf(out, ", \"first_seen\": %.3f, \"last_seen\": %.3f}", e->first_seen, e->last_seen);
}

static void cmd_senders(struct admin *a, const char *arg, struct jbuf *out)
{
	struct snapshot snap;
	size_t idx[SENDERS_MAX];

	(void)arg;
	a->ops.name_senders(a->ops.ctx);
	a->ops.snapshot(a->ops.ctx, &snap);
	const struct senders *s = snap.senders;
	jbuf_printf(out, "{\"tracked\": %zu, \"max\": %d, \"evictions\": %llu, \"by_lines\": [", s->n,
		    SENDERS_MAX, (unsigned long long)s->evictions);
	size_t n = senders_sorted(s, false, idx);
	for (size_t i = 0; i < n; i++) {
		if (i)
			jbuf_printf(out, ", ");
		sender_json(&s->e[idx[i]], out);
	}
	jbuf_printf(out, "], \"by_rejects\": [");
	n = senders_sorted(s, true, idx);
	for (size_t i = 0; i < n; i++) {
		if (i)
			jbuf_printf(out, ", ");
		sender_json(&s->e[idx[i]], out);
	}
	jbuf_printf(out, "]}");
}

static void cmd_rejects(struct admin *a, const char *arg, struct jbuf *out)
{
	struct snapshot snap;

	(void)arg;
	a->ops.snapshot(a->ops.ctx, &snap);
	const struct rejects *r = snap.rejects;
	jbuf_printf(out, "{\"count\": %zu, \"rejects\": [", r->n);
	for (size_t i = 0; i < r->n; i++) {
		const struct reject_entry *e = rejects_at(r, i);
		/* The sender as the senders table knows it, process name and all,
		 * while it is still tracked. */
		const struct sender_stats *known = senders_find(snap.senders, &e->from);
		char who[128];
		sender_format(&e->from, known ? known->comm : "", who, sizeof(who));
		jbuf_printf(out, "%s{\"time\": %.3f, \"reason\": \"%s\", \"sender\": ", i ? ", " : "",
			    e->when, reject_reason_name[e->reason]);
		jbuf_cstring(out, who);
		jbuf_printf(out, ", \"bytes\": %zu, \"line\": ", e->full_len);
		jbuf_string(out, e->text, e->len);
		jbuf_printf(out, "}");
	}
	jbuf_printf(out, "]}");
}

static void cmd_top(struct admin *a, const char *arg, struct jbuf *out)
{
	static struct top_entry top[TOP_MAX];
	struct snapshot s;
	unsigned long n = 20;

	if (arg) {
		char *end;
		n = strtoul(arg, &end, 10);
		if (*end || arg[0] < '0' || arg[0] > '9' || n == 0 || n > TOP_MAX) {
			reply_error(out, "usage: top [N], N from 1 to 1000");
			return;
		}
	}
	a->ops.snapshot(a->ops.ctx, &s);
	size_t k = top_collect(s.windows, s.sketches, top, n);
	double secs = s.windows_span_ms ? (double)s.windows_span_ms / 1000.0 : 1.0;
	jbuf_printf(out, "[");
	for (size_t i = 0; i < k; i++) {
		jbuf_printf(out, "%s{\"id\": ", i ? ", " : "");
		jbuf_string(out, top[i].id, top[i].len);
		jbuf_printf(out,
			    ", \"type\": \"%c\", \"lines\": %llu, \"lines_per_second\": %.1f, "
			    "\"merges\": %s}",
			    top[i].kind, (unsigned long long)top[i].lines, (double)top[i].lines / secs,
			    top[i].merged ? "true" : "false");
	}
	jbuf_printf(out, "]");
}

static void cmd_reload(struct admin *a, const char *arg, struct jbuf *out)
{
	char msg[1024];

	(void)arg;
	if (a->ops.reload(a->ops.ctx, msg, sizeof(msg)) != 0) {
		reply_error(out, msg);
		return;
	}
	jbuf_printf(out, "{\"ok\": true, \"message\": ");
	jbuf_cstring(out, msg);
	jbuf_printf(out, "}");
}

/* Runs one request line for connection c; the reply goes to out. Returns
 * true when the command streams, and the connection stays open. */
static bool run(struct conn *conn, const char *request, struct jbuf *out)
{
	char name[64];
	size_t n = strcspn(request, " \t");
	const char *arg = request + n;

	while (*arg == ' ' || *arg == '\t')
		arg++;
	if (n == 0 || n >= sizeof(name)) {
		reply_error(out, "empty or unknown command; try help");
		return false;
	}
	memcpy(name, request, n);
	name[n] = '\0';
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->name, name) != 0)
			continue;
		if (!c->arg && *arg) {
			char msg[128];
			snprintf(msg, sizeof(msg), "%s takes no argument", c->name);
			reply_error(out, msg);
			return false;
		}
		if (c->privileged && !conn->privileged) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "%s %s: it needs root, the relay's own user, or membership in "
				 "[admin] group",
				 c->name, c->privileged);
			reply_error(out, msg);
			return false;
		}
		if (c->stream)
			return c->stream(conn, *arg ? arg : NULL, out) == 0;
		c->run(conn->a, *arg ? arg : NULL, out);
		return false;
	}
	char msg[128];
	snprintf(msg, sizeof(msg), "unknown command '%s'; try help", name);
	reply_error(out, msg);
	return false;
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static bool peer_privileged(struct admin *a, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return false;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	if (!a->have_group)
		return false;
	if (cr.gid == a->group)
		return true;
	gid_t groups[256];
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == a->group)
			return true;
	return false;
}

static void conn_handle_closed_cb(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct admin *a = c->a;

	if (--c->open > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	jbuf_deinit(&c->out);
	free(c->buf);
	free(c);
	if (closes_done(&a->closes) && a->closed_cb)
		a->closed_cb(a);
}

static void idle_cb(uv_timer_t *t);
static void stream_begin(struct conn *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The slot is free at once (the descriptor closes now); the memory goes in
 * conn_handle_closed_cb(). */
static void conn_close(struct conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->pipe))
		return;
	c->a->nconns--;
	if (c->tap >= 0) {
		tap_unsubscribe(c->a->tap, c->tap);
		c->tap = -1;
	}
	uv_close((uv_handle_t *)&c->pipe, conn_handle_closed_cb);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	(void)status;
	conn_close(req->data);
}

static void write_cb(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	if (status != 0 || uv_shutdown(&c->sd, (uv_stream_t *)&c->pipe, shutdown_cb) != 0)
		conn_close(c);
}

/* Sends c->out, then closes. A reply that fits the socket's buffer (most
 * do) goes in one call and frees the slot at once; the rest is written as
 * the client reads, within ADMIN_IDLE_MS. */
static void send_reply(struct conn *c)
{
	uv_buf_t b = uv_buf_init(c->out.buf, (unsigned)c->out.len);
	int n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);

	if (n == (int)c->out.len || (n < 0 && n != UV_EAGAIN)) {
		conn_close(c);
		return;
	}
	if (n > 0)
		b = uv_buf_init(c->out.buf + n, (unsigned)(c->out.len - (size_t)n));
	c->wr.data = c;
	c->sd.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &b, 1, write_cb) != 0)
		conn_close(c);
}

static void begin_reply(struct conn *c)
{
	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	/* The same deadline for the reply: a client that stops reading it is
	 * dropped too. */
	uv_timer_start(&c->timer, idle_cb, ADMIN_IDLE_MS, 0);
}

static void answer(struct conn *c)
{
	begin_reply(c);
	while (c->len > 0 && (c->req[c->len - 1] == '\n' || c->req[c->len - 1] == '\r' ||
			      c->req[c->len - 1] == ' '))
		c->len--;
	c->req[c->len] = '\0';
	bool streams = false;
	if (strlen(c->req) != c->len)
		reply_error(&c->out, "the request holds a NUL byte");
	else
		streams = run(c, c->req, &c->out);
	jbuf_printf(&c->out, "\n");
	if (c->out.failed) {
		conn_close(c);
		return;
	}
	if (streams)
		stream_begin(c);
	else
		send_reply(c);
}

/* Takes in nread more bytes of the request, already in c->req, or the end
 * of the stream (UV_EOF) or an error; answers once the request is whole. */
static void conn_got(struct conn *c, ssize_t nread)
{
	if (c->answered)
		return;
	if (nread < 0) {
		if (nread == UV_EOF && c->len > 0)
			answer(c); /* "printf stats | socat" sends no newline */
		else
			conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	char *nl = memchr(c->req, '\n', c->len);
	if (nl) {
		c->len = (size_t)(nl - c->req);
		answer(c);
	} else if (c->len >= sizeof(c->req) - 1) {
		c->len = 0;
		begin_reply(c);
		reply_error(&c->out, "request longer than 1024 bytes");
		jbuf_printf(&c->out, "\n");
		send_reply(c);
	}
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	/* A stream's client says nothing more; its leaving ends the stream. */
	if (c->tap >= 0) {
		if (nread < 0)
			conn_close(c);
		else
			c->len = 0;
		return;
	}
	conn_got(c, nread);
}

/* Reads what the client has sent so far, without waiting: at accept, where
 * the request is usually there already, and before a connection is
 * evicted, so that a request on its way is answered rather than dropped. */
static void conn_pull(struct conn *c)
{
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0)
		return;
	while (!c->answered && !uv_is_closing((uv_handle_t *)&c->pipe)) {
		ssize_t n = recv(fd, c->req + c->len, sizeof(c->req) - 1 - c->len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_got(c, n > 0 ? n : n == 0 ? UV_EOF : uv_translate_sys_error(errno));
		if (n <= 0)
			return;
	}
}

static void idle_cb(uv_timer_t *t)
{
	conn_close(t->data);
}

/* The open connection that came first, of those still waiting for their
 * request if waiting, and of the unprivileged ones if unprivileged; NULL if
 * none. a->conns is newest first. */
static struct conn *oldest(struct admin *a, bool waiting, bool unprivileged)
{
	struct conn *found = NULL;

	for (struct conn *c = a->conns; c; c = c->next)
		if (!uv_is_closing((uv_handle_t *)&c->pipe) && (!waiting || !c->answered) &&
		    (!unprivileged || !c->privileged))
			found = c;
	return found;
}

/* Every slot is taken and a client is connecting: it gets one, so that a
 * few idle connections cannot lock root out. The connection that has
 * waited longest for its request makes room, once what it sent is read (a
 * request already there is answered instead, which usually ends it at
 * once); an unprivileged one first, so that no one who may only read can
 * push root's spectator-relayctl out between its connect and its request.
 * Only when every slot is writing a reply does the oldest of those go.
 * Each turn answers or closes one connection, so the loop ends. */
static void make_room(struct admin *a)
{
	static const char msg[] =
		"{\"error\": \"too many admin connections; this one waited longest for its request\"}\n";

	while (a->nconns >= ADMIN_MAX_CLIENTS) {
		struct conn *c = oldest(a, true, true);
		if (!c)
			c = oldest(a, true, false);
		if (c) {
			conn_pull(c);
			if (c->answered || uv_is_closing((uv_handle_t *)&c->pipe))
				continue;
			uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);
			(void)uv_try_write((uv_stream_t *)&c->pipe, &b, 1); /* a courtesy */
		} else {
			c = oldest(a, false, false);
		}
		conn_close(c);
	}
}

static void connection_cb(uv_stream_t *server, int status)
{
	struct admin *a = server->data;
	struct conn *c;

	if (status != 0)
		return;
	/* Room first: the descriptors the relay needs (a reload's file, its
	 * sockets) stay its, whatever the number of clients. */
	make_room(a);
	if (!(c = calloc(1, sizeof(*c))))
		return;
	c->a = a;
	c->tap = -1;
	uv_pipe_init(server->loop, &c->pipe, 0);
	uv_timer_init(server->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->open = 2;
	closes_add(&a->closes, 1);
	a->nconns++;
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
	uv_os_fd_t fd;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0) {
		conn_close(c);
		return;
	}
	c->privileged = peer_privileged(a, fd);
	uv_timer_start(&c->timer, idle_cb, ADMIN_IDLE_MS, 0);
	conn_pull(c);
	if (!c->answered && !uv_is_closing((uv_handle_t *)&c->pipe) &&
	    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) != 0)
		conn_close(c);
}

/* ------------------------------------------------------------------------
 * Streams: tap
 *
 * A stream's connection holds a tap subscriber (tap.h). Once per loop
 * iteration, while any stream is open, what each subscriber's ring holds
 * goes out in one write, and the next write waits for that one to end: a
 * slow client holds one chunk here and its ring there, never more.
 * ------------------------------------------------------------------------ */

static void stream_pump(struct conn *c);

static void stream_write_cb(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	c->writing = false;
	if (status != 0) {
		conn_close(c);
		return;
	}
	/* The next chunk goes now: the check handle runs only after the loop
	 * wakes for something else, a second away on a quiet relay. */
	stream_pump(c);
}

static void stream_write(struct conn *c, char *buf, size_t len)
{
	uv_buf_t b = uv_buf_init(buf, (unsigned)len);

	c->wr.data = c;
	c->writing = true;
	if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &b, 1, stream_write_cb) != 0) {
		c->writing = false;
		conn_close(c);
	}
}

/* Writes what c's ring holds, unless a write is under way; closes a stream
 * whose time is up once all of it is out. */
static void stream_pump(struct conn *c)
{
	if (c->tap < 0 || uv_is_closing((uv_handle_t *)&c->pipe) || c->writing)
		return;
	if (!tap_pending(c->a->tap, c->tap)) {
		if (c->ending)
			conn_close(c);
		return;
	}
	size_t n = tap_take(c->a->tap, c->tap, c->buf, ADMIN_STREAM_CHUNK);
	if (n)
		stream_write(c, c->buf, n);
}

/* A tap's SECONDS are up: no more events, but a client that is behind
 * still gets what the ring holds and how many it lost, within
 * ADMIN_IDLE_MS, as a reply would. */
static void stream_time_up_cb(uv_timer_t *t)
{
	struct conn *c = t->data;

	tap_stop(c->a->tap, c->tap);
	c->ending = true;
	uv_timer_start(&c->timer, idle_cb, ADMIN_IDLE_MS, 0);
	stream_pump(c);
}

static void pump_cb(uv_check_t *h)
{
	struct admin *a = h->data;
	bool streams = false;

	for (struct conn *c = a->conns; c; c = c->next) {
		if (c->tap < 0 || uv_is_closing((uv_handle_t *)&c->pipe))
			continue;
		streams = true;
		stream_pump(c);
	}
	if (!streams)
		uv_check_stop(h);
}

/* The command's first line is in c->out: send it, then keep the connection
 * until the client leaves, the deadline (c->timer, set by the command)
 * passes, or the relay stops. */
static void stream_begin(struct conn *c)
{
	stream_write(c, c->out.buf, c->out.len);
	if (c->tap < 0)
		return; /* closed meanwhile */
	c->len = 0;
	if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) != 0) {
		conn_close(c);
		return;
	}
	if (!uv_is_active((uv_handle_t *)&c->a->pump))
		uv_check_start(&c->a->pump, pump_cb);
}

/* tap [SECONDS] [PREFIX] */
static int cmd_tap(struct conn *c, const char *arg, struct jbuf *out)
{
	const char *prefix = arg ? arg : "";
	unsigned long long seconds = 0;

	if (arg && arg[0] >= '0' && arg[0] <= '9') {
		char *end;
		errno = 0;
		seconds = strtoull(arg, &end, 10);
		if (*end == '\0' || *end == ' ' || *end == '\t') {
			if (errno != 0 || seconds > 86400ull * 366) {
				reply_error(out, "SECONDS: at most a year (0: until the client closes)");
				return -EINVAL;
			}
			for (prefix = end; *prefix == ' ' || *prefix == '\t'; prefix++)
				;
		} else {
			seconds = 0; /* a prefix that starts with a digit */
		}
	}
	if (strpbrk(prefix, " \t")) {
		reply_error(out, "usage: tap [SECONDS] [PREFIX]; a prefix holds no blank");
		return -EINVAL;
	}
	c->buf = malloc(ADMIN_STREAM_CHUNK);
	int id = c->buf ? tap_subscribe(c->a->tap, prefix, strlen(prefix)) : -ENOMEM;
	if (id < 0) {
		reply_error(out, id == -EBUSY ? "too many taps at once (4)" :
				 id == -ENAMETOOLONG ? "prefix too long" : "out of memory");
		return id;
	}
	c->tap = id;
	if (seconds)
		uv_timer_start(&c->timer, stream_time_up_cb, seconds * 1000, 0);
	else
		uv_timer_stop(&c->timer);
	jbuf_printf(out, "{\"tap\": true, \"seconds\": %llu, \"prefix\": ", seconds);
	jbuf_cstring(out, prefix);
	jbuf_printf(out, "}");
	return 0;
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

static void server_closed_cb(uv_handle_t *h);

int admin_open(struct admin *a, uv_loop_t *loop, const struct config *cfg,
		const struct admin_ops *ops, struct tap *tap, char *err, size_t errlen)
{
	const char *path = cfg->admin_socket;
	int r;

	memset(a, 0, sizeof(*a));
	a->ops = *ops;
	a->tap = tap;
	snprintf(a->path, sizeof(a->path), "%s", path);
	if (cfg->admin_group.name[0]) {
		a->have_group = true;
		a->group = cfg->admin_group.gid;
	}
	r = sock_path_prepare(path, SOCK_STREAM, err, errlen);
	if (r != 0)
		return r;
	r = uv_pipe_init(loop, &a->server, 0);
	if (r != 0)
		return errmsg(err, errlen, r, "cannot listen on %s: %s", path, uv_strerror(r));
	a->server.data = a;
	closes_add(&a->closes, 1);
	if ((r = uv_check_init(loop, &a->pump)) != 0) {
		uv_close((uv_handle_t *)&a->server, server_closed_cb);
		return errmsg(err, errlen, r, "cannot listen on %s: %s", path, uv_strerror(r));
	}
	a->pump.data = a;
	closes_add(&a->closes, 1);
	r = uv_pipe_bind(&a->server, path);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&a->server, 16, connection_cb);
	if (r != 0)
		snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(r));
	else if ((r = sock_file_claim(path, &a->file, err, errlen)) == 0)
		r = sock_file_chmod(path, &a->file, (unsigned)cfg->admin_mode, cfg->admin_group.gid,
				    err, errlen);
	if (r != 0) {
		/* The handle is open: close it, so that the loop can end. */
		admin_close(a, NULL);
		return r;
	}
	log_info("event=admin socket=%s mode=%04llo", path, (unsigned long long)cfg->admin_mode);
	return 0;
}

static void server_closed_cb(uv_handle_t *h)
{
	struct admin *a = h->data;

	if (closes_done(&a->closes) && a->closed_cb)
		a->closed_cb(a);
}

void admin_close(struct admin *a, void (*cb)(struct admin *a))
{
	a->closed_cb = cb;
	for (struct conn *c = a->conns; c; c = c->next)
		conn_close(c);
	if (!uv_is_closing((uv_handle_t *)&a->server)) {
		uv_close((uv_handle_t *)&a->server, server_closed_cb);
		uv_close((uv_handle_t *)&a->pump, server_closed_cb);
		sock_file_remove(a->path, &a->file);
	}
}
