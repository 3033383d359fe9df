/* listener.c - see listener.h. */
#include "listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sockutil.h"

/* SpectatorD's read and one byte more: framing cuts a longer datagram where
 * SpectatorD would, and the extra byte tells a line that ends right at the
 * cut from one the cut splits (proto_lines_init()). UDP payloads never
 * exceed 65507. */
#define SLOT (PROTO_SPECTATORD_READ + 1)
/* Datagrams per recvmmsg() and recvmmsg() calls per readiness callback. */
#define BATCH 32u
#define CALLS_PER_WAKEUP 8u
/* libuv's recvmmsg mode reads 64 KiB slots, up to 20 of them per call. */
#define UV_SLOTS 20u
#define UV_SLOT 65536u

static void got(struct listener *l, const char *buf, size_t len, bool truncated,
		const struct sender_id *from)
{
	l->st.lines += ingest_datagram(l->in, buf, len, truncated, from);
	l->st.datagrams++;
	l->st.bytes += len;
}

/* ------------------------------------------------------------------------
 * Reading with recvmmsg(): unix sockets, and every socket at shutdown
 * ------------------------------------------------------------------------ */

static int alloc_batch(struct listener *l)
{
	l->buf = malloc((size_t)BATCH * SLOT);
	l->msgs = calloc(BATCH, sizeof(*l->msgs));
	l->iov = calloc(BATCH, sizeof(*l->iov));
	l->ctrl = calloc(BATCH, CMSG_SPACE(sizeof(struct ucred)));
	l->names = calloc(BATCH, sizeof(*l->names));
	if (!l->buf || !l->msgs || !l->iov || !l->ctrl || !l->names)
		return -ENOMEM;
	return 0;
}

static void free_batch(struct listener *l)
{
	free(l->buf);
	free(l->msgs);
	free(l->iov);
	free(l->ctrl);
	free(l->names);
	l->buf = NULL;
	l->msgs = NULL;
	l->iov = NULL;
	l->ctrl = NULL;
	l->names = NULL;
}

static void sender_of(const struct listener *l, const struct msghdr *mh, struct sender_id *from)
{
	memset(from, 0, sizeof(*from));
	from->is_unix = l->url.kind == URL_UNIX;
	if (!from->is_unix) {
		memcpy(&from->addr, mh->msg_name, mh->msg_namelen);
		return;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			from->has_cred = true;
			from->pid = cred.pid;
			from->uid = cred.uid;
			from->gid = cred.gid;
		}
	}
}

/* One recvmmsg(). Returns datagrams read, 0 when the queue is empty, or
 * -errno. */
static int read_batch(struct listener *l)
{
	size_t ctrl_len = CMSG_SPACE(sizeof(struct ucred));

	for (unsigned i = 0; i < BATCH; i++) {
		l->iov[i].iov_base = l->buf + (size_t)i * SLOT;
		l->iov[i].iov_len = SLOT;
		struct msghdr *mh = &l->msgs[i].msg_hdr;
		mh->msg_iov = &l->iov[i];
		mh->msg_iovlen = 1;
		mh->msg_name = &l->names[i];
		mh->msg_namelen = sizeof(l->names[i]);
		mh->msg_control = l->ctrl + i * ctrl_len;
		mh->msg_controllen = ctrl_len;
		mh->msg_flags = 0;
	}
	int n = recvmmsg(l->fd, l->msgs, BATCH, MSG_DONTWAIT, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct sender_id from;
		sender_of(l, &l->msgs[i].msg_hdr, &from);
		got(l, l->iov[i].iov_base, l->msgs[i].msg_len,
		    (l->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, &from);
	}
	return n;
}

static void read_error(struct listener *l, int r)
{
	l->st.read_errors++;
	log_debug("event=read_error listener=%s error=\"%s\"", l->url.text, strerror(-r));
}

static void poll_cb(uv_poll_t *h, int status, int events);

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct listener *l = h->data;

	(void)events;
	if (status < 0) {
		/* libuv stops a poll that failed (POLLERR). Take the socket's
		 * pending error, then listen again: a listener must not go deaf. */
		int err = 0;
		socklen_t len = sizeof(err);
		read_error(l, status);
		(void)getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		/* Should even that fail, the next refresh (each second) tries
		 * again. */
		l->deaf = l->reading && uv_poll_start(h, UV_READABLE, poll_cb) != 0;
		return;
	}
	for (unsigned call = 0; call < CALLS_PER_WAKEUP; call++) {
		int n = read_batch(l);
		if (n < 0)
			read_error(l, n);
		if (n < (int)BATCH)
			return;
	}
}

/* ------------------------------------------------------------------------
 * UDP through libuv
 * ------------------------------------------------------------------------ */

static void udp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct listener *l = h->data;

	(void)suggested;
	/* The same slots for every call: each datagram is parsed before the
	 * next recvmmsg() overwrites them. */
	*buf = uv_buf_init(l->buf, UV_SLOTS * UV_SLOT);
}

static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
			const struct sockaddr *addr, unsigned flags)
{
	struct listener *l = h->data;

	if (nread < 0) {
		read_error(l, (int)nread);
		return;
	}
	if (addr == NULL)
		return; /* queue empty, or libuv releasing a recvmmsg buffer */
	struct sender_id from = { .is_unix = false };
	memcpy(&from.addr, addr,
	       addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	got(l, buf->base, (size_t)nread, (flags & UV_UDP_PARTIAL) != 0, &from);
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

static void close_cb(uv_handle_t *h);

int listener_open(struct listener *l, uv_loop_t *loop, const struct url *u, int fd, bool adopted,
		   struct ingest *in, void (*closed_cb)(struct listener *l))
{
	int r, off = 0;

	memset(l, 0, sizeof(*l));
	l->url = *u;
	l->fd = fd;
	l->adopted = adopted;
	l->in = in;
	l->closed_cb = closed_cb;
	l->inode = sock_inode(fd);
	if (alloc_batch(l) != 0) {
		r = -ENOMEM;
		goto fail_unwrapped;
	}
	if (u->kind == URL_UNIX) {
		r = uv_poll_init(loop, &l->h.poll, fd);
		if (r != 0)
			goto fail_unwrapped;
		l->h.poll.data = l;
		r = uv_poll_start(&l->h.poll, UV_READABLE, poll_cb);
		if (r != 0)
			goto fail_wrapped;
	} else {
		/* libuv's recvmmsg mode wants its own, larger slots. */
		free(l->buf);
		l->buf = malloc((size_t)UV_SLOTS * UV_SLOT);
		if (!l->buf) {
			r = -ENOMEM;
			goto fail_unwrapped;
		}
		r = uv_udp_init_ex(loop, &l->h.udp, AF_UNSPEC | UV_UDP_RECVMMSG);
		if (r != 0)
			goto fail_unwrapped;
		l->h.udp.data = l;
		r = uv_udp_open(&l->h.udp, fd);
		if (r != 0) {
			/* The handle is not the descriptor's owner yet. */
			uv_close((uv_handle_t *)&l->h.udp, close_cb);
			l->fd = -1;
			close(fd);
			return r;
		}
		/* uv_udp_open() turns SO_REUSEADDR on, which would let any local
		 * process bind the same address and take the clients' datagrams;
		 * the socket is bound already and needs it no more. */
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof(off)) != 0) {
			r = -errno;
			goto fail_wrapped;
		}
		r = uv_udp_recv_start(&l->h.udp, udp_alloc_cb, udp_recv_cb);
		if (r != 0)
			goto fail_wrapped;
	}
	l->reading = true;
	listener_refresh(l);
	return 0;

fail_wrapped:
	listener_close(l, closed_cb);
	return r;
fail_unwrapped:
	free_batch(l);
	close(fd);
	closed_cb(l);
	return r;
}

size_t listener_drain(struct listener *l, size_t max)
{
	size_t total = 0;

	if (l->reading) {
		if (l->url.kind == URL_UDP)
			uv_udp_recv_stop(&l->h.udp);
		else
			uv_poll_stop(&l->h.poll);
		l->reading = false;
	}
	if (l->url.kind == URL_UDP) {
		/* recvmmsg() below reads SLOT bytes a datagram; UDP fits. */
		free(l->buf);
		l->buf = malloc((size_t)BATCH * SLOT);
		if (!l->buf)
			return 0;
	}
	while (total < max) {
		int n = read_batch(l);
		if (n <= 0) {
			if (n < 0)
				read_error(l, n);
			break;
		}
		total += (size_t)n;
	}
	return total;
}

void listener_refresh(struct listener *l)
{
	if (l->deaf && l->reading && uv_poll_start(&l->h.poll, UV_READABLE, poll_cb) == 0)
		l->deaf = false;
	int v = 0;
	socklen_t len = sizeof(v);
	uint64_t drops;

	if (getsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0)
		l->st.receive_buffer = (size_t)v;
	if (l->url.kind == URL_UDP && sock_udp_drops(l->inode, &drops) == 0)
		l->st.kernel_drops = drops;
}

static void close_cb(uv_handle_t *h)
{
	struct listener *l = h->data;

	free_batch(l);
	if (l->closed_cb)
		l->closed_cb(l);
}

void listener_close(struct listener *l, void (*cb)(struct listener *l))
{
	l->closed_cb = cb;
	l->reading = false;
	if (l->url.kind == URL_UNIX && !l->adopted)
		sock_file_remove(l->url.path, &l->file);
	/* uv_udp_t closes its descriptor itself; a uv_poll_t does not. */
	if (l->url.kind == URL_UDP) {
		uv_close((uv_handle_t *)&l->h.udp, close_cb);
	} else {
		uv_close((uv_handle_t *)&l->h.poll, close_cb);
		close(l->fd);
	}
	l->fd = -1;
}
