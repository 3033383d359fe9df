/* admin.h - the admin socket: one command line in, one JSON document and a
 * newline out, then the connection closes. So
 *
 *     echo stats | socat - UNIX-CONNECT:/run/spectator-relay/admin.sock | jq
 *
 * works in scripts. Commands live in one table (admin.c) with their usage;
 * `help` is generated from it. Read-only commands are open to whoever can
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

#include "json.h"

#define ADMIN_IDLE_MS 5000      /* to send a request, and to read the reply */
#define ADMIN_MAX_REQUEST 1024
#define ADMIN_MAX_CLIENTS 32    /* connections open at once */

struct daemon;
struct conn;

struct admin {
	struct daemon *d;          /* borrowed: the owner */
	uv_pipe_t server;
	char path[108];
	bool have_group;
	gid_t group;               /* [admin] group: may run mutating commands */
	struct conn *conns;        /* connections, newest first, each freed when closed */
	int open;                  /* server and connections not yet closed */
	int nconns;                /* connections holding a slot: not closing */
	void (*closed_cb)(struct admin *a);
};

/* Binds the socket at d->cfg.admin_socket (a live one there is an error, a
 * stale one is replaced), applies mode and group, and listens. Returns 0 or
 * -errno with err set. */
int admin_start(struct admin *a, struct daemon *d, char *err, size_t errlen);

/* Runs one command as if a privileged client had sent it; the reply goes to
 * out (owned by the caller). For tests and for the docs check. */
void admin_run(struct admin *a, const char *request, bool privileged, struct jbuf *out);

/* Stops listening, closes open connections, removes the socket file; cb
 * runs when every handle is closed. The memory is the caller's. */
void admin_close(struct admin *a, void (*cb)(struct admin *a));

#endif
