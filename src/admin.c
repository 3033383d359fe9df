/* admin.c - the admin socket and its command table. See admin.h. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "protocol.h"
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
};

/* ------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------ */

typedef void (*command_fn)(struct admin *a, const char *arg, struct jbuf *out);

struct command {
	const char *name;
	const char *arg;           /* NULL, or the argument's name */
	bool mutating;
	command_fn run;
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

static const struct command commands[] = {
	{ "help", NULL, false, cmd_help, "lists the commands" },
	{ "stats", NULL, false, cmd_stats, "the statistics (docs/admin.md explains every one)" },
	{ "config", NULL, false, cmd_config, "the effective configuration" },
	{ "flush", NULL, true, cmd_flush,
	  "closes the open window now; replies once its datagrams are handed to the upstream" },
	{ "age-gauges", NULL, false, cmd_age_gauges, "the tracked age gauge ids and the limit" },
	{ "forget-age-gauge", "ID", true, cmd_forget_age_gauge,
	  "frees the slot of one age gauge id (name,key=value,...)" },
	{ "forget-age-gauges", NULL, true, cmd_forget_age_gauges, "frees every age gauge slot" },
	{ "senders", NULL, false, cmd_senders, "the top senders by lines and by rejects" },
	{ "rejects", NULL, false, cmd_rejects,
	  "the last 100 refused lines: text (first 200 bytes), reason, sender, time" },
	{ "reload", NULL, true, cmd_reload, "re-reads the configuration file, as SIGHUP does" },
};

static void error(struct jbuf *out, const char *msg)
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
		jbuf_printf(out, ", \"privileged\": %s, \"help\": ", c->mutating ? "true" : "false");
		jbuf_cstring(out, c->help);
		jbuf_printf(out, "}");
	}
	jbuf_printf(out, "]}");
}

/* Live members of the stats groups, added where docs/admin.md puts them. */
static void stats_extra(void *ctx, const char *group, char *buf, size_t cap, size_t *n)
{
	struct daemon *d = ctx;
	struct upstream *up = &d->upstream;

	struct jbuf j;

	/* Text that a person chose (a path, a message) is escaped. */
	jbuf_init(&j);
	if (strcmp(group, "upstream") == 0) {
		jbuf_printf(&j, ", \"location\": ");
		jbuf_cstring(&j, up->url.text);
		jbuf_printf(&j, ", \"last_error\": ");
		jbuf_cstring(&j, up->last_error ? strerror(-up->last_error) : "");
		stats_put(buf, cap, n,
			  ", \"state\": \"%s\", \"up\": %s, \"pending_bytes\": %zu, "
			  "\"pending_lines\": %zu%s",
			  upstream_state_name(up), upstream_is_up(up) ? "true" : "false",
			  up->queue.bytes + up->partial.len - up->partial.off, up->queue.lines,
			  j.buf ? j.buf : "");
	} else if (strcmp(group, "spectatord") == 0) {
		jbuf_printf(&j, ", \"admin\": ");
		jbuf_cstring(&j, d->resync.url.text);
		jbuf_printf(&j, ", \"last_error\": ");
		jbuf_cstring(&j, d->resync.last_error);
		stats_put(buf, cap, n, ", \"age_gauge_limit\": %zu%s", d->window.ages.remote_limit,
			  j.buf ? j.buf : "");
	} else if (strcmp(group, "reload") == 0) {
		jbuf_printf(&j, ", \"last\": ");
		jbuf_cstring(&j, d->last_reload);
		stats_put(buf, cap, n, "%s", j.buf ? j.buf : "");
	}
	jbuf_free(&j);
}

static void cmd_stats(struct admin *a, const char *arg, struct jbuf *out)
{
	struct daemon *d = a->d;
	char buf[16384];
	size_t n = 0;

	(void)arg;
	for (size_t i = 0; i < d->nlisteners; i++)
		listener_refresh(d->listeners[i]);
	stats_format_json(&d->stats, buf, sizeof(buf), &n, stats_extra, d);
	jbuf_printf(out, "{\"version\": \"%s\", \"uptime_seconds\": %llu, \"pid\": %d, ", RELAY_VERSION,
		    (unsigned long long)(daemon_uptime_ms(d) / 1000), (int)getpid());
	jbuf_printf(out, "%.*s", (int)(n < sizeof(buf) ? n : sizeof(buf) - 1), buf);
	jbuf_printf(out,
		    ", \"series\": {\"active\": %zu, \"max\": %llu, \"age_gauges\": %zu, "
		    "\"age_gauge_limit\": %zu}",
		    window_series(&d->window), (unsigned long long)d->cfg.max_series,
		    agg_ages_count(&d->window.ages), agg_ages_limit(&d->window.ages));
	jbuf_printf(out, ", \"senders\": {\"tracked\": %zu, \"evictions\": %llu}", d->senders.n,
		    (unsigned long long)d->senders.evictions);
	jbuf_printf(out, ", \"listeners\": [");
	for (size_t i = 0; i < d->nlisteners; i++) {
		const struct listener *l = d->listeners[i];
		jbuf_printf(out, "%s{\"url\": ", i ? ", " : "");
		jbuf_cstring(out, l->url.text);
		jbuf_printf(out,
			    ", \"transport\": \"%s\", \"systemd\": %s, \"datagrams\": %llu, "
			    "\"lines\": %llu, \"bytes\": %llu, \"kernel_drops\": %llu, "
			    "\"receive_buffer\": %zu, \"read_errors\": %llu}",
			    l->url.kind == URL_UDP ? "udp" : "unix", l->adopted ? "true" : "false",
			    (unsigned long long)l->st.datagrams, (unsigned long long)l->st.lines,
			    (unsigned long long)l->st.bytes, (unsigned long long)l->st.kernel_drops,
			    l->st.receive_buffer, (unsigned long long)l->st.read_errors);
	}
	jbuf_printf(out, "]}");
}

static void cmd_config(struct admin *a, const char *arg, struct jbuf *out)
{
	static char buf[16384];
	size_t n = config_format_json(&a->d->cfg, buf, sizeof(buf));

	(void)arg;
	jbuf_printf(out, "%.*s", (int)(n < sizeof(buf) ? n : sizeof(buf) - 1), buf);
}

static void cmd_flush(struct admin *a, const char *arg, struct jbuf *out)
{
	struct daemon *d = a->d;
	uint64_t before = d->stats.forwarded_lines;

	(void)arg;
	bool flushed = window_flush(&d->window);
	bool done = window_delivered(&d->window) && upstream_idle(&d->upstream);
	jbuf_printf(out,
		    "{\"flushed\": %s, \"delivered\": %s, \"forwarded_lines\": %llu, "
		    "\"upstream\": \"%s\"}",
		    flushed ? "true" : "false", done ? "true" : "false",
		    (unsigned long long)(d->stats.forwarded_lines - before),
		    upstream_state_name(&d->upstream));
}

static void cmd_age_gauges(struct admin *a, const char *arg, struct jbuf *out)
{
	const struct agg_ages *ages = &a->d->window.ages;

	(void)arg;
	jbuf_printf(out, "{\"limit\": %zu, \"count\": %zu, \"ids\": [", agg_ages_limit(ages),
		    agg_ages_count(ages));
	size_t pos = 0;
	struct keytab_entry *e;
	for (bool first = true; (e = keytab_next(&ages->kt, &pos)); first = false) {
		if (!first)
			jbuf_printf(out, ", ");
		jbuf_string(out, keytab_key(&ages->kt, e), e->key_len);
	}
	jbuf_printf(out, "]}");
}

/* The canonical form of an id typed by a person: "b=2,a=1" order and odd
 * bytes are normalised the way the parser does for lines. */
static int canonical_id(struct admin *a, const char *id, char *buf, size_t cap, size_t *len)
{
	char line[ADMIN_MAX_REQUEST + 8];
	struct sample s;
	int n = snprintf(line, sizeof(line), "A:%s:1", id);

	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	if (proto_parse_line(&a->d->ingest.ps, line, (size_t)n, &s) != REJECT_NONE || s.id_len > cap)
		return -EINVAL;
	memcpy(buf, s.id, s.id_len);
	*len = s.id_len;
	return 0;
}

static void cmd_forget_age_gauge(struct admin *a, const char *arg, struct jbuf *out)
{
	struct agg_ages *ages = &a->d->window.ages;
	char id[ADMIN_MAX_REQUEST];
	size_t len;

	if (!arg || !arg[0]) {
		error(out, "usage: forget-age-gauge ID");
		return;
	}
	if (canonical_id(a, arg, id, sizeof(id), &len) != 0) {
		error(out, "not a valid id: expected name[,key=value...]");
		return;
	}
	if (agg_ages_forget(ages, id, len) != 0) {
		char msg[ADMIN_MAX_REQUEST + 32];
		snprintf(msg, sizeof(msg), "not tracked: %.*s", (int)len, id);
		error(out, msg);
		return;
	}
	log_info("event=age_gauge_forgotten id=%.*s", (int)len, id);
	jbuf_printf(out, "{\"forgotten\": 1, \"count\": %zu, \"limit\": %zu}", agg_ages_count(ages),
		    agg_ages_limit(ages));
}

static void cmd_forget_age_gauges(struct admin *a, const char *arg, struct jbuf *out)
{
	struct agg_ages *ages = &a->d->window.ages;
	size_t n = agg_ages_count(ages);

	(void)arg;
	agg_ages_forget_all(ages);
	log_info("event=age_gauges_forgotten count=%zu", n);
	jbuf_printf(out, "{\"forgotten\": %zu, \"count\": 0, \"limit\": %zu}", n,
		    agg_ages_limit(ages));
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

/* The name of a unix sender's process, read once, when first asked for. */
static void name_process(struct sender_stats *e)
{
	char path[64];
	FILE *f;

	if (!e->id.is_unix || !e->id.has_cred || e->comm[0])
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)e->id.pid);
	f = fopen(path, "re");
	if (!f)
		return; /* gone since: it stays a pid */
	if (fgets(e->comm, sizeof(e->comm), f))
		e->comm[strcspn(e->comm, "\n")] = '\0';
	fclose(f);
}

static void cmd_senders(struct admin *a, const char *arg, struct jbuf *out)
{
	struct senders *s = &a->d->senders;
	size_t idx[SENDERS_MAX];

	(void)arg;
	for (size_t i = 0; i < s->n; i++)
		name_process(&s->e[i]);
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
	const struct rejects *r = &a->d->rejects;

	(void)arg;
	jbuf_printf(out, "{\"count\": %zu, \"rejects\": [", r->n);
	for (size_t i = 0; i < r->n; i++) {
		const struct reject_entry *e = rejects_at(r, i);
		jbuf_printf(out, "%s{\"time\": %.3f, \"reason\": \"%s\", \"sender\": ", i ? ", " : "",
			    e->when, reject_reason_name[e->reason]);
		jbuf_cstring(out, e->sender);
		jbuf_printf(out, ", \"bytes\": %zu, \"line\": ", e->full_len);
		jbuf_string(out, e->text, e->len);
		jbuf_printf(out, "}");
	}
	jbuf_printf(out, "]}");
}

static void cmd_reload(struct admin *a, const char *arg, struct jbuf *out)
{
	char msg[1024];

	(void)arg;
	if (a->d->stopping) {
		error(out, "the relay is shutting down");
		return;
	}
	if (daemon_reload(a->d, msg, sizeof(msg)) != 0) {
		error(out, msg);
		return;
	}
	jbuf_printf(out, "{\"ok\": true, \"message\": ");
	jbuf_cstring(out, msg);
	jbuf_printf(out, "}");
}

void admin_run(struct admin *a, const char *request, bool privileged, struct jbuf *out)
{
	char name[64];
	size_t n = strcspn(request, " \t");
	const char *arg = request + n;

	while (*arg == ' ' || *arg == '\t')
		arg++;
	if (n == 0 || n >= sizeof(name)) {
		error(out, "empty or unknown command; try help");
		return;
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
			error(out, msg);
			return;
		}
		if (c->mutating && !privileged) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "%s changes the relay: it needs root, the relay's own user, or "
				 "membership in [admin] group",
				 c->name);
			error(out, msg);
			return;
		}
		c->run(a, *arg ? arg : NULL, out);
		return;
	}
	char msg[128];
	snprintf(msg, sizeof(msg), "unknown command '%s'; try help", name);
	error(out, msg);
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

static void conn_handle_closed(uv_handle_t *h)
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
	jbuf_free(&c->out);
	free(c);
	if (--a->open == 0 && a->closed_cb)
		a->closed_cb(a);
}

static void idle_cb(uv_timer_t *t);

/* The slot is free at once (the descriptor closes now); the memory goes in
 * conn_handle_closed(). */
static void conn_close(struct conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->pipe))
		return;
	c->a->nconns--;
	uv_close((uv_handle_t *)&c->pipe, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
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
	if (strlen(c->req) != c->len)
		error(&c->out, "the request holds a NUL byte");
	else
		admin_run(c->a, c->req, c->privileged, &c->out);
	jbuf_printf(&c->out, "\n");
	if (c->out.failed) {
		conn_close(c);
		return;
	}
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
		error(&c->out, "request longer than 1024 bytes");
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
	(void)buf;
	conn_got(s->data, nread);
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
 * request if waiting; NULL if none. a->conns is newest first. */
static struct conn *oldest(struct admin *a, bool waiting)
{
	struct conn *found = NULL;

	for (struct conn *c = a->conns; c; c = c->next)
		if (!uv_is_closing((uv_handle_t *)&c->pipe) && (!waiting || !c->answered))
			found = c;
	return found;
}

/* Every slot is taken and a client is connecting: it gets one, so that a
 * few idle connections cannot lock root out. The connection that has
 * waited longest for its request makes room, once what it sent is read (a
 * request already there is answered instead, which usually ends it at
 * once). Only when every slot is writing a reply does the oldest of those
 * go. Each turn answers or closes one connection, so the loop ends. */
static void make_room(struct admin *a)
{
	static const char msg[] =
		"{\"error\": \"too many admin connections; this one waited longest for its request\"}\n";

	while (a->nconns >= ADMIN_MAX_CLIENTS) {
		struct conn *c = oldest(a, true);
		if (c) {
			conn_pull(c);
			if (c->answered || uv_is_closing((uv_handle_t *)&c->pipe))
				continue;
			uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);
			(void)uv_try_write((uv_stream_t *)&c->pipe, &b, 1); /* a courtesy */
		} else {
			c = oldest(a, false);
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
	uv_pipe_init(server->loop, &c->pipe, 0);
	uv_timer_init(server->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->open = 2;
	a->open++;
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
	if (!c->answered && !uv_is_closing((uv_handle_t *)&c->pipe))
		uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

/* A socket file nobody accepts on is stale. */
static int clear_path(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct url u;
	char why[128];

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	char text[160];
	snprintf(text, sizeof(text), "unix://%s", path);
	if (url_parse(text, true, &u, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "admin socket %s: %s", path, why);
		return -EINVAL;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, &u.addr.sa, u.addrlen);
	close(fd);
	if (r == 0) {
		snprintf(err, errlen, "another process is serving %s", path);
		return -EADDRINUSE;
	}
	unlink(path);
	return 0;
}

int admin_start(struct admin *a, struct daemon *d, char *err, size_t errlen)
{
	const char *path = d->cfg.admin_socket;
	int r;

	memset(a, 0, sizeof(*a));
	a->d = d;
	snprintf(a->path, sizeof(a->path), "%s", path);
	if (d->cfg.admin_group.name[0]) {
		a->have_group = true;
		a->group = d->cfg.admin_group.gid;
	}
	char dir[sizeof(a->path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			r = -errno;
			snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-r));
			return r;
		}
	}
	r = clear_path(path, err, errlen);
	if (r != 0)
		return r;
	uv_pipe_init(&d->loop, &a->server, 0);
	a->server.data = a;
	a->open = 1;
	r = uv_pipe_bind(&a->server, path);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&a->server, 16, connection_cb);
	struct sock_file file;
	if (r != 0)
		snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(r));
	else if ((r = sock_file_claim(path, &file, err, errlen)) == 0)
		r = sock_file_chmod(path, &file, (unsigned)d->cfg.admin_mode, d->cfg.admin_group.gid,
				    err, errlen);
	if (r != 0) {
		/* The handle is open: close it, so that the loop can end. */
		admin_close(a, NULL);
		return r;
	}
	log_info("event=admin socket=%s mode=%04llo", path, (unsigned long long)d->cfg.admin_mode);
	return 0;
}

static void server_closed(uv_handle_t *h)
{
	struct admin *a = h->data;

	if (--a->open == 0 && a->closed_cb)
		a->closed_cb(a);
}

void admin_close(struct admin *a, void (*cb)(struct admin *a))
{
	a->closed_cb = cb;
	for (struct conn *c = a->conns; c; c = c->next)
		conn_close(c);
	if (!uv_is_closing((uv_handle_t *)&a->server)) {
		uv_close((uv_handle_t *)&a->server, server_closed);
		unlink(a->path);
	}
}
