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
	gid_t gid;          /* unix sockets: group, or (gid_t)-1 to keep the relay's */
};

/* The file a unix socket was bound to, as found right after bind(). Modes
 * and groups are changed on that file only, never on whatever has taken its
 * path since: whoever can write the socket's directory can swap in a
 * symlink to any file, and the relay may run as root. */
struct sock_file {
	dev_t dev;
	ino_t ino;
};

/* A bound, non-blocking, close-on-exec datagram socket for a udp:// or
 * unix:// URL. For unix: creates the parent directory, removes a stale socket
 * file, refuses (-EADDRINUSE) if a live process is bound there, binds,
 * records the socket file in *file (see sock_file_claim()), applies mode and
 * group, and turns on SO_PASSCRED. file may be NULL for udp://. */
int sock_listen(const struct url *u, const struct sock_opts *o, struct sock_file *file, char *err,
		size_t errlen);

/* Before binding a unix socket of this type (SOCK_DGRAM, SOCK_STREAM) at
 * path: creates the directories above it, and removes a stale socket file
 * there. Refuses a socket something still accepts on (-EADDRINUSE) and a
 * file that is not a socket (-EEXIST). Returns 0 or -errno with err set. */
int sock_path_prepare(const char *path, int type, char *err, size_t errlen);

/* Whether fd is a datagram socket bound to u's address: a systemd-passed
 * descriptor is adopted for the listener it matches. */
bool sock_matches(int fd, const struct url *u);

/* Makes an adopted descriptor non-blocking and, for unix, turns on
 * SO_PASSCRED. Returns 0 or -errno. */
int sock_prepare_adopted(int fd, const struct url *u);

/* Sets SO_RCVBUF, with SO_RCVBUFFORCE first so that root or CAP_NET_ADMIN can
 * exceed rmem_max. *actual receives what the kernel granted. Returns 0 or -errno. */
int sock_set_rcvbuf(int fd, size_t bytes, size_t *actual);

/* Right after bind(): records in *f the file at path as the socket just
 * bound there. Refuses (-EPERM) a file that cannot be the one bind() made:
 * not a socket (a symlink included), another user's, or linked elsewhere
 * too. Returns 0 or -errno with err set. */
int sock_file_claim(const char *path, struct sock_file *f, char *err, size_t errlen);

/* Removes the socket file f at path, unless the file at path is no longer
 * f: what took the path since is not the relay's to remove. */
void sock_file_remove(const char *path, const struct sock_file *f);

/* Sets the mode and, unless gid is (gid_t)-1, the group of the socket file
 * f, found at path. Follows no symlink, and changes nothing (-ESTALE) when
 * the file at path is no longer f. Returns 0 or -errno with err set. */
int sock_file_chmod(const char *path, const struct sock_file *f, unsigned mode, gid_t gid,
		    char *err, size_t errlen);

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
