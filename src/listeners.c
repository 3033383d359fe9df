/* listeners.c - see listeners.h. */
#include "listeners.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"
#include "log.h"
#include "sockutil.h"

/* A listener closed by a reload reads what its kernel queue holds first:
 * at most this many datagrams, so that a sender that never stops cannot
 * hold the loop. */
#define DRAIN_MAX (1u << 20)

int listeners_init(struct listeners *ls, uv_loop_t *loop, struct ingest *in, char *err,
		   size_t errlen)
{
	memset(ls, 0, sizeof(*ls));
	ls->loop = loop;
	ls->in = in;
	int r = sdnotify_take_fds(&ls->fds);
	if (r < 0)
		return errmsg(err, errlen, r, "cannot read LISTEN_FDS: %s", strerror(-r));
	if (sdnotify_fds_unsupported())
		log_warn("event=socket_activation_unsupported reason=\"built without libsystemd\"");
	return 0;
}

static void listener_closed_cb(struct listener *l)
{
	free(l);
}

/* The descriptor systemd passed for u, or -1. */
static int adopt_fd(struct listeners *ls, const struct url *u)
{
	for (size_t i = 0; i < ls->fds.n; i++) {
		if (!ls->fds.used[i] && sock_matches(ls->fds.fd[i], u)) {
			ls->fds.used[i] = true;
			return ls->fds.fd[i];
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
static int open_one(struct listeners *ls, const struct config *cfg, const struct url *u, char *err,
		    size_t errlen)
{
	struct sock_opts o = { cfg->receive_buffer, (unsigned)cfg->unix_mode, cfg->unix_group.gid };
	struct sock_file file = { 0 };
	int fd = adopt_fd(ls, u);
	bool adopted = fd >= 0;
	int r;

	if (adopted) {
		r = sock_prepare_adopted(fd, u);
		if (r != 0)
			return errmsg(err, errlen, r, "cannot use the socket systemd passed for %s: %s",
				      u->text, strerror(-r));
	} else {
		fd = sock_listen(u, &o, &file, err, errlen);
		if (fd < 0)
			return fd;
	}
	struct listener *l = malloc(sizeof(*l));
	if (!l) {
		close(fd);
		return errmsg(err, errlen, -ENOMEM, "out of memory");
	}
	r = listener_open(l, ls->loop, u, fd, adopted, ls->in, listener_closed_cb);
	if (r != 0)
		return errmsg(err, errlen, r, "cannot read %s: %s", u->text, uv_strerror(r));
	l->file = file;
	ls->l[ls->n++] = l;
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

int listeners_open(struct listeners *ls, struct config *cfg, char *err, size_t errlen)
{
	size_t kept = 0;

	for (size_t i = 0; i < cfg->nlisten; i++) {
		int r = open_one(ls, cfg, &cfg->listen[i], err, errlen);
		if (r != 0 && skippable(cfg, r)) {
			log_warn("event=listen_skipped error=\"%s\" reason=\"a default address this host "
				 "cannot bind\"",
				 err);
			continue;
		}
		if (r != 0)
			return r;
		cfg->listen[kept++] = cfg->listen[i];
	}
	cfg->nlisten = kept;
	if (ls->n == 0)
		return errmsg(err, errlen, -EADDRNOTAVAIL, "no address to listen on");
	for (size_t i = 0; i < ls->fds.n; i++)
		if (!ls->fds.used[i])
			log_warn("event=unused_socket fd=%d name=%s reason=\"matches no listen address\"",
				 ls->fds.fd[i], ls->fds.name[i]);
	return 0;
}

/* Closes listener i, after reading what the kernel holds for it if drain.
 * At shutdown the sockets were drained before the final flush; reading
 * again then would record lines into a window nobody closes. */
static void close_at(struct listeners *ls, size_t i, bool drain)
{
	struct listener *l = ls->l[i];

	if (drain)
		listener_drain(l, DRAIN_MAX);
	listener_refresh(l);
	struct listener_stats *r = &ls->retired[l->url.kind == URL_UNIX];
	r->datagrams += l->st.datagrams;
	r->lines += l->st.lines;
	r->bytes += l->st.bytes;
	r->kernel_drops += l->st.kernel_drops;
	r->read_errors += l->st.read_errors;
	listener_close(l, listener_closed_cb);
	ls->l[i] = ls->l[--ls->n];
	ls->l[ls->n] = NULL;
}

static bool listed(const struct config *c, const struct url *u)
{
	for (size_t i = 0; i < c->nlisten; i++)
		if (url_same_address(&c->listen[i], u))
			return true;
	return false;
}

static void problem(char *problems, size_t cap, const char *what)
{
	size_t n = strlen(problems);

	snprintf(problems + n, n < cap ? cap - n : 0, "%s%s", n ? "; " : "", what);
}

void listeners_apply(struct listeners *ls, struct config *next, const struct config *cur,
		     char *problems, size_t cap)
{
	char err[256];

	for (size_t i = ls->n; i-- > 0;) {
		if (!listed(next, &ls->l[i]->url)) {
			log_info("event=unlisten listener=%s", ls->l[i]->url.text);
			close_at(ls, i, true);
		}
	}
	size_t kept = 0;
	for (size_t i = 0; i < next->nlisten; i++) {
		const struct url *u = &next->listen[i];
		bool have = false;
		for (size_t j = 0; j < ls->n; j++)
			have |= url_same_address(&ls->l[j]->url, u);
		int r = have ? 0 : open_one(ls, next, u, err, sizeof(err));
		if (r != 0 && skippable(next, r))
			continue;
		if (r != 0) {
			log_err("event=listen_failed listener=%s error=\"%s\"", u->text, err);
			problem(problems, cap, err);
			continue;
		}
		next->listen[kept++] = *u;
	}
	next->nlisten = kept;

	for (size_t i = 0; i < ls->n; i++) {
		struct listener *l = ls->l[i];
		size_t granted;
		if (next->receive_buffer != cur->receive_buffer)
			sock_set_rcvbuf(l->fd, next->receive_buffer, &granted);
		if (l->url.kind == URL_UNIX && !l->adopted &&
		    (next->unix_mode != cur->unix_mode ||
		     strcmp(next->unix_group.name, cur->unix_group.name)) &&
		    sock_file_chmod(l->url.path, &l->file, (unsigned)next->unix_mode,
				    next->unix_group.gid, err, sizeof(err)) != 0) {
			log_err("event=socket_mode_failed listener=%s error=\"%s\"", l->url.text, err);
			problem(problems, cap, err);
		}
		listener_refresh(l);
	}
}

void listeners_refresh(struct listeners *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		listener_refresh(ls->l[i]);
}

size_t listeners_drain(struct listeners *ls, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ls->n; i++)
		n += listener_drain(ls->l[i], max);
	return n;
}

void listeners_totals(const struct listeners *ls, struct listener_stats by[2])
{
	memcpy(by, ls->retired, sizeof(ls->retired));
	for (size_t i = 0; i < ls->n; i++) {
		const struct listener *l = ls->l[i];
		struct listener_stats *t = &by[l->url.kind == URL_UNIX];
		t->datagrams += l->st.datagrams;
		t->lines += l->st.lines;
		t->bytes += l->st.bytes;
		t->kernel_drops += l->st.kernel_drops;
		t->read_errors += l->st.read_errors;
	}
}

void listeners_close(struct listeners *ls)
{
	while (ls->n)
		close_at(ls, ls->n - 1, false);
}
