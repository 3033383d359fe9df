/* listener.h - one listening socket: datagrams in, samples into the window.
 *
 * The socket is opened (or adopted from systemd) by sockutil before a
 * listener wraps it; the listener then owns it. UDP sockets are read by a
 * uv_udp_t in recvmmsg mode. libuv has no handle for unix datagram sockets,
 * so those are watched with a uv_poll_t and read with recvmmsg() here, which
 * is also how each datagram's sender credentials (SO_PASSCRED) arrive.
 *
 * Each readiness callback reads a bounded number of datagrams, so that one
 * busy socket cannot starve the others, and does nothing but parse and
 * record: sending happens elsewhere, once per loop iteration. */
#ifndef RELAY_LISTENER_H
#define RELAY_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "ingest.h"
#include "senders.h"
#include "sockutil.h"
#include "stats.h"
#include "url.h"
#include "window.h"

struct listener {
	struct url url;
	int fd;                  /* owned */
	bool adopted;            /* from systemd: its path is systemd's to remove */
	struct sock_file file;   /* unix, bound by the relay: its socket file, for a
				    reload that changes the mode (set by the owner) */
	union {
		uv_udp_t udp;
		uv_poll_t poll;
	} h;
	struct ingest *in;       /* borrowed */
	struct listener_stats st;
	unsigned long inode;
	char *buf;               /* owned: BATCH receive slots */
	struct mmsghdr *msgs;    /* owned */
	struct iovec *iov;       /* owned */
	char *ctrl;              /* owned: credentials cmsg per slot */
	struct sockaddr_storage *names; /* owned */
	bool reading;
	bool deaf;               /* unix: reading, but its poll could not restart */
	void (*closed_cb)(struct listener *l);
};

/* Wraps fd and starts reading. Takes ownership of fd and of l: from now on
 * the listener is ended by listener_close(), and closed_cb(l) is how its
 * memory goes back. On failure (-errno) it has been ended already: closed_cb
 * has run, or will run from the loop; the caller frees nothing. */
int listener_open(struct listener *l, uv_loop_t *loop, const struct url *u, int fd, bool adopted,
		   struct ingest *in, void (*closed_cb)(struct listener *l));

/* Stops reading, then reads what the kernel already queued, up to max
 * datagrams. Returns the number read. */
size_t listener_drain(struct listener *l, size_t max);

/* Re-reads the kernel's drop counter and the granted receive buffer, and
 * listens again if a poll error stopped it (listener.c, poll_cb()). */
void listener_refresh(struct listener *l);

/* Closes the handle; for a socket the relay bound itself, also removes the
 * unix path. cb runs from the close callback; l's memory is the caller's. */
void listener_close(struct listener *l, void (*cb)(struct listener *l));

#endif
