/* sockutil.c - see sockutil.h. */
#include "sockutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "errmsg.h"

/* "what arg: strerror(e)", returning -e. */
static int fail(char *err, size_t errlen, int e, const char *what, const char *arg)
{
	return errmsg(err, errlen, -e, "%s %s: %s", what, arg, strerror(e));
}

int sock_set_rcvbuf(int fd, size_t bytes, size_t *actual)
{
	int v = bytes > INT32_MAX / 2 ? INT32_MAX / 2 : (int)bytes;
	socklen_t len = sizeof(v);

	/* SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it, SO_RCVBUF is capped
	 * at net.core.rmem_max. Either way the kernel doubles the value. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) != 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) != 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0)
		return -errno;
	*actual = (size_t)v;
	return 0;
}

static int mkdir_parents(const char *path)
{
	char dir[sizeof(((struct url *)0)->path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');

	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket file is stale if nothing accepts a connection on it. */
static int remove_stale(const char *path, int type, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : fail(err, errlen, errno, "cannot stat", path);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	if (strlen(path) >= sizeof(a.sun_path))
		return fail(err, errlen, ENAMETOOLONG, "cannot probe", path);
	strcpy(a.sun_path, path);
	int probe = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return fail(err, errlen, errno, "socket for", path);
	int r = connect(probe, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	close(probe);
	if (r == 0) {
		snprintf(err, errlen, "another process is bound to %s", path);
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED)
		return fail(err, errlen, e, "cannot probe", path);
	if (unlink(path) != 0 && errno != ENOENT)
		return fail(err, errlen, errno, "cannot remove stale socket", path);
	return 0;
}

int sock_path_prepare(const char *path, int type, char *err, size_t errlen)
{
	int r = mkdir_parents(path);

	if (r != 0)
		return fail(err, errlen, -r, "cannot create the directory of", path);
	return remove_stale(path, type, err, errlen);
}

/* An O_PATH descriptor of the file at path itself, a symlink included:
 * what it refers to cannot change under the caller, as a path can. */
static int open_file(const char *path, struct stat *st, char *err, size_t errlen)
{
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return fail(err, errlen, errno, "cannot open", path);
	if (fstat(fd, st) != 0) {
		int r = fail(err, errlen, errno, "cannot stat", path);
		close(fd);
		return r;
	}
	return fd;
}

int sock_file_claim(const char *path, struct sock_file *f, char *err, size_t errlen)
{
	struct stat st;
	int fd = open_file(path, &st, err, errlen);

	if (fd < 0)
		return fd;
	close(fd);
	/* bind() made a socket of our own with one link. Someone who swapped
	 * the path since could only offer a socket of theirs, or a link to
	 * another's; root is the one user who could fake all three. */
	if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		snprintf(err, errlen, "%s is not the socket the relay bound: it was replaced", path);
		return -EPERM;
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	return 0;
}

void sock_file_remove(const char *path, const struct sock_file *f)
{
	struct stat st;

	/* Between the check and the unlink a swap is still possible; it needs
	 * write access to the directory, and then the file was the swapper's
	 * to lose anyway. What this refuses is removing what is plainly not
	 * ours: a file put at the path after ours was removed or replaced. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == f->dev &&
	    st.st_ino == f->ino)
		unlink(path);
}

int sock_file_chmod(const char *path, const struct sock_file *f, unsigned mode, gid_t gid,
		    char *err, size_t errlen)
{
	struct stat st;
	char self[64];
	int fd = open_file(path, &st, err, errlen);
	int r = 0;

	if (fd < 0)
		return fd;
	if (!S_ISSOCK(st.st_mode) || st.st_dev != f->dev || st.st_ino != f->ino) {
		snprintf(err, errlen, "%s is no longer the socket the relay bound; mode and group "
				      "left alone", path);
		close(fd);
		return -ESTALE;
	}
	/* Both act on the descriptor's inode, not on the path again. fchmod()
	 * refuses an O_PATH descriptor and chmod() has no flag for it, but
	 * /proc/self/fd/N leads to that very inode. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (chmod(self, (mode_t)mode) != 0)
		r = fail(err, errlen, errno, "cannot chmod", path);
	else if (gid != (gid_t)-1 && fchownat(fd, "", (uid_t)-1, gid, AT_EMPTY_PATH) != 0)
		r = fail(err, errlen, errno, "cannot chgrp", path);
	close(fd);
	return r;
}

int sock_listen(const struct url *u, const struct sock_opts *o, struct sock_file *file, char *err,
		size_t errlen)
{
	int family = u->kind == URL_UNIX ? AF_UNIX : u->addr.sa.sa_family;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, r;
	size_t granted;

	if (fd < 0)
		return fail(err, errlen, errno, "cannot create a socket for", u->text);
	if (u->kind == URL_UNIX) {
		r = sock_path_prepare(u->path, SOCK_DGRAM, err, errlen);
		if (r != 0) {
			close(fd);
			return r;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
			r = fail(err, errlen, errno, "SO_PASSCRED on", u->text);
			close(fd);
			return r;
		}
	} else if (family == AF_INET6 &&
		   setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
		/* [::1] means IPv6 only; 127.0.0.1 is a listener of its own. */
		r = fail(err, errlen, errno, "IPV6_V6ONLY on", u->text);
		close(fd);
		return r;
	}
	if (bind(fd, &u->addr.sa, u->addrlen) != 0) {
		r = fail(err, errlen, errno, "cannot bind", u->text);
		close(fd);
		return r;
	}
	if (u->kind == URL_UNIX) {
		r = sock_file_claim(u->path, file, err, errlen);
		if (r != 0) {
			close(fd); /* what is at the path now is not ours to remove */
			return r;
		}
		r = sock_file_chmod(u->path, file, o->mode, o->gid, err, errlen);
		if (r != 0) {
			sock_file_remove(u->path, file);
			close(fd);
			return r;
		}
	}
	r = sock_set_rcvbuf(fd, o->rcvbuf, &granted);
	if (r != 0) {
		r = fail(err, errlen, -r, "cannot set SO_RCVBUF on", u->text);
		if (u->kind == URL_UNIX)
			sock_file_remove(u->path, file);
		close(fd);
		return r;
	}
	return fd;
}

bool sock_matches(int fd, const struct url *u)
{
	int type = 0;
	socklen_t len = sizeof(type);
	struct url bound;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_DGRAM)
		return false;
	memset(&bound, 0, sizeof(bound));
	len = sizeof(bound.addr);
	if (getsockname(fd, &bound.addr.sa, &len) != 0)
		return false;
	if (bound.addr.sa.sa_family == AF_UNIX) {
		if (u->kind != URL_UNIX)
			return false;
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		return n > 0 && strnlen(bound.addr.un.sun_path, n) == strlen(u->path) &&
		       memcmp(bound.addr.un.sun_path, u->path, strlen(u->path)) == 0;
	}
	if (u->kind != URL_UDP || len != u->addrlen)
		return false;
	return memcmp(&bound.addr, &u->addr, len) == 0;
}

int sock_prepare_adopted(int fd, const struct url *u)
{
	int flags = fcntl(fd, F_GETFL);
	int one = 1;

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
		return -errno;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
		return -errno;
	if (u->kind == URL_UNIX && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0)
		return -errno;
	return 0;
}

unsigned long sock_inode(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

static int drops_in(const char *file, unsigned long inode, uint64_t *drops)
{
	FILE *f = fopen(file, "re");
	char line[512];

	if (!f)
		return -ENOENT;
	/* "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref ptr drops" */
	while (fgets(line, sizeof(line), f)) {
		unsigned long ino;
		unsigned long long d;
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu %*s %*s %llu", &ino, &d) == 2 &&
		    ino == inode) {
			fclose(f);
			*drops = d;
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}

int sock_udp_drops(unsigned long inode, uint64_t *drops)
{
	if (drops_in("/proc/net/udp", inode, drops) == 0)
		return 0;
	return drops_in("/proc/net/udp6", inode, drops);
}

int sock_upstream(const struct url *u, char *err, size_t errlen)
{
	int family = u->kind == URL_UNIX ? AF_UNIX : u->addr.sa.sa_family;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return fail(err, errlen, errno, "cannot create a socket for", u->text);
	if (u->kind == URL_UDP && connect(fd, &u->addr.sa, u->addrlen) != 0) {
		int r = fail(err, errlen, errno, "cannot connect to", u->text);
		close(fd);
		return r;
	}
	return fd;
}
