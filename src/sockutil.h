/* sockutil.h - create, bind and inspect sockets, outside libuv.
 *
 * Listening sockets are made here (or handed over by systemd) and only then
 * wrapped by the listener, so that both take exactly the same path. Every
 * function returns a descriptor or 0 on success and a negative errno on
 * failure; those that can fail for a reason worth telling write it to err. */
#ifndef RELAY_SOCKUTIL_H
#define RELAY_SOCKUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "url.h"

struct sock_opts {
	size_t rcvbuf;      /* SO_RCVBUF wanted */
	unsigned mode;      /* unix sockets: file mode */
	const char *group;  /* unix sockets: group name, or "" */
};

/* A bound, non-blocking, close-on-exec datagram socket for a udp:// or
 * unix:// URL. For unix: creates the parent directory, removes a stale socket
 * file, refuses (-EADDRINUSE) if a live process is bound there, binds, then
 * applies mode and group, and turns on SO_PASSCRED. */
int sock_listen(const struct url *u, const struct sock_opts *o, char *err, size_t errlen);

/* Whether fd is a datagram socket bound to u's address: a systemd-passed
 * descriptor is adopted for the listener it matches. */
bool sock_matches(int fd, const struct url *u);

/* Makes an adopted descriptor non-blocking and, for unix, turns on
 * SO_PASSCRED. Returns 0 or -errno. */
int sock_prepare_adopted(int fd, const struct url *u);

/* Sets SO_RCVBUF, with SO_RCVBUFFORCE first so that root or CAP_NET_ADMIN can
 * exceed rmem_max. *actual receives what the kernel granted. Returns 0 or -errno. */
int sock_set_rcvbuf(int fd, size_t bytes, size_t *actual);

/* chmod and, if group is not empty, chgrp of a unix socket path. */
int sock_chmod(const char *path, unsigned mode, const char *group, char *err, size_t errlen);

/* The socket's inode, to find it in /proc/net/udp{,6}; 0 on failure. */
unsigned long sock_inode(int fd);

/* Kernel drop count of the UDP socket with this inode, from /proc/net/udp and
 * /proc/net/udp6. Returns 0 or -ENOENT. */
int sock_udp_drops(unsigned long inode, uint64_t *drops);

/* A non-blocking datagram socket for sending to an upstream. udp: connected,
 * so that an ICMP port-unreachable surfaces as ECONNREFUSED; unix: unbound
 * and unconnected, the address goes with every sendto(). */
int sock_upstream(const struct url *u, char *err, size_t errlen);

#endif
