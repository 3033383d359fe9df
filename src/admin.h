/* admin.h - the admin socket: one command line in, one JSON document and a
 * newline out, then the connection closes. So
 *
 *     echo stats | socat - UNIX-CONNECT:/run/spectator-relay/admin.sock | jq
 *
 * works in scripts; `tap` alone streams, until the client leaves. Commands
 * live in one table (admin.c) with their usage;
 * `help` is generated from it. Admin knows the rest of the relay only
 * through what its owner hands it: a snapshot to read (snapshot.h) and a
 * table of operations for the commands that act. Read-only commands are open to whoever can
 * connect (the socket's mode and group decide); mutating ones (flush,
 * reload, forget-*) also need the peer to be root, the relay's own user, or
 * a member of [admin] group (SO_PEERCRED, SO_PEERGROUPS).
 *
 * A client that says nothing, or does not read its reply, is dropped after
 * ADMIN_IDLE_MS, and at most ADMIN_MAX_CLIENTS are open at once. A new
 * client is always taken: when every slot is in use, the connection that
 * has waited longest for its request makes room (see make_room()). Nothing
 * an admin client does can block the loop or lock others out. */
#ifndef RELAY_ADMIN_H
#define RELAY_ADMIN_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "closes.h"
#include "config.h"
#include "json.h"
#include "snapshot.h"
#include "sockutil.h"
#include "tap.h"

#define ADMIN_IDLE_MS 5000      /* to send a request, and to read the reply */
#define ADMIN_MAX_REQUEST 1024
#define ADMIN_MAX_CLIENTS 32    /* connections open at once */

struct conn;

/* What `flush` did. */
struct admin_flush {
	bool flushed;              /* the open window closed; false when the last one
				      was not delivered yet (it then stays open) */
	bool delivered;            /* every line of it went out */
	uint64_t forwarded_lines;  /* sent during the flush */
	const char *upstream;      /* the upstream's state, static text */
};

/* The relay as the admin socket sees it. Each function gets ctx first and
 * runs on the loop, within one command. */
struct admin_ops {
	void *ctx;
	/* Fills a snapshot; its pointers are valid until the command returns. */
	void (*snapshot)(void *ctx, struct snapshot *out);
	/* Reads the process name of every unix sender not named yet. */
	void (*name_senders)(void *ctx);
	void (*flush)(void *ctx, struct admin_flush *out);
	/* Re-reads the configuration: 0 or -errno, and msg (cap bytes) says
	 * what changed or why not, either way. */
	int (*reload)(void *ctx, char *msg, size_t cap);
	/* Frees the slot of the age gauge a person named: its canonical form
	 * goes to id (cap bytes, *len). Returns 0, -EINVAL (not an id) or
	 * -ENOENT (not tracked). */
	int (*forget_age_gauge)(void *ctx, const char *typed, char *id, size_t cap, size_t *len);
	/* Frees every slot; returns how many there were. */
	size_t (*forget_age_gauges)(void *ctx);
};

struct admin {
	struct admin_ops ops;
	struct tap *tap;           /* borrowed: what `tap` streams */
	uv_check_t pump;           /* active while a stream is open */
	uv_pipe_t server;
	char path[108];
	struct sock_file file;     /* what path was bound to; zero until claimed */
	bool have_group;
	gid_t group;               /* [admin] group: may run mutating commands */
	struct conn *conns;        /* connections, newest first, each freed when closed */
	struct closes closes;      /* server and connections not yet closed */
	int nconns;                /* connections holding a slot: not closing */
	void (*closed_cb)(struct admin *a);
};

/* Binds the socket at cfg's [admin] socket (a live one there is an error, a
 * stale one is replaced), applies its mode and group, and listens. ops is
 * copied; its ctx, and tap, must outlive the admin. Returns 0 or -errno
 * with err set. */
int admin_open(struct admin *a, uv_loop_t *loop, const struct config *cfg,
		const struct admin_ops *ops, struct tap *tap, char *err, size_t errlen);

/* Stops listening, closes open connections, removes the socket file; cb
 * runs when every handle is closed. The memory is the caller's. */
void admin_close(struct admin *a, void (*cb)(struct admin *a));

#endif
