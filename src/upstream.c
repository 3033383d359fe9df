/* upstream.c - see upstream.h. */
#include "upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockutil.h"

static void pump(struct upstream *up);

const char *upstream_state_name(const struct upstream *up)
{
	/* Retried after an outage but not yet proven back: still down. */
	if (up->outage)
		return "down";
	switch (up->state) {
	case UPSTREAM_UP:
		return "up";
	case UPSTREAM_BLOCKED:
		return "blocked";
	case UPSTREAM_DOWN:
		return "down";
	}
	return "?";
}

/* A file or stdout takes whole datagrams, blocking: a partial write retried
 * whole would repeat lines. Those upstreams are for people and tests. */
static void make_blocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0 && (flags & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

static int open_target(const struct url *url, int *fd, int *out_fd, char *err, size_t errlen)
{
	switch (url->kind) {
	case URL_STDOUT:
		*fd = -1;
		*out_fd = STDOUT_FILENO;
		make_blocking(*out_fd);
		return 0;
	case URL_FILE:
		*fd = open(url->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (*fd < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot open %s: %s", url->path, strerror(e));
			return -e;
		}
		*out_fd = *fd;
		return 0;
	case URL_UDP:
	case URL_UNIX:
		*fd = sock_upstream(url, err, errlen);
		if (*fd < 0)
			return *fd;
		*out_fd = *fd;
		return 0;
	case URL_HTTP:
		break; /* not a place to send lines; the config never makes one */
	}
	snprintf(err, errlen, "%s is not an upstream", url->text);
	return -EINVAL;
}

static void check_cb(uv_check_t *h)
{
	pump(h->data);
}

int upstream_open(struct upstream *up, uv_loop_t *loop, const struct url *url, size_t max_datagram,
		  size_t max_pending_bytes, struct dgram_pool *pool, struct stats *stats,
		  char *err, size_t errlen)
{
	memset(up, 0, sizeof(*up));
	up->loop = loop;
	up->stats = stats;
	up->pool = pool;
	up->url = *url;
	up->max_datagram = max_datagram;
	up->max_pending_bytes = max_pending_bytes;
	up->state = UPSTREAM_UP;
	up->rl.burst = 5;
	up->rl.interval_ms = 60000;
	up->pull_buf = malloc(max_datagram);
	if (!up->pull_buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = open_target(url, &up->fd, &up->out_fd, err, errlen);
	if (r != 0) {
		free(up->pull_buf);
		return r;
	}
	uv_check_init(loop, &up->check);
	up->check.data = up;
	return 0;
}

void upstream_set_source(struct upstream *up, const struct upstream_source *src)
{
	up->source = *src;
}

/* ------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------ */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_one(struct upstream *up, const char *buf, size_t len)
{
	ssize_t n;

	switch (up->url.kind) {
	case URL_UNIX:
		n = sendto(up->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, &up->url.addr.sa,
			   up->url.addrlen);
		break;
	case URL_UDP:
		n = send(up->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	default:
		return write_all(up->out_fd, buf, len);
	}
	if (n < 0)
		return -errno;
	return 0;
}

static void delivered(struct upstream *up, size_t bytes, size_t lines)
{
	up->stats->forwarded_datagrams++;
	up->stats->forwarded_bytes += bytes;
	up->stats->forwarded_lines += lines;
	if (up->outage) {
		up->outage = false;
		log_info("event=upstream_up upstream=%s", up->url.text);
	}
	up->last_error = 0;
}

static void poll_close_cb(uv_handle_t *h)
{
	struct upstream *up = h->data;

	free(h);
	if (up && --up->pending_closes == 0 && up->closed_cb)
		up->closed_cb(up);
}

static void stop_poll(struct upstream *up)
{
	if (up->poll) {
		up->pending_closes++;
		uv_close((uv_handle_t *)up->poll, poll_close_cb);
		up->poll = NULL;
	}
}

static void writable_cb(uv_poll_t *h, int status, int events)
{
	struct upstream *up = h->data;

	(void)status;
	(void)events;
	stop_poll(up);
	if (up->state == UPSTREAM_BLOCKED) {
		up->state = UPSTREAM_UP;
		pump(up);
	}
}

static void wait_writable(struct upstream *up)
{
	if (up->poll || up->fd < 0)
		return;
	/* An unconnected unix datagram socket polls writable whenever its own
	 * buffer has room, not when the peer's queue drains. Connecting it
	 * makes poll() watch the peer; sends still name the path, so a
	 * SpectatorD restart is never missed. */
	if (up->url.kind == URL_UNIX)
		(void)connect(up->fd, &up->url.addr.sa, up->url.addrlen);
	up->poll = malloc(sizeof(*up->poll));
	if (!up->poll)
		return; /* the next window's kick retries */
	if (uv_poll_init(up->loop, up->poll, up->fd) != 0) {
		free(up->poll);
		up->poll = NULL;
		return;
	}
	up->poll->data = up;
	uv_poll_start(up->poll, UV_WRITABLE, writable_cb);
}

static void failed(struct upstream *up, int r)
{
	uint64_t suppressed = 0;

	up->stats->upstream_errors++;
	up->last_error = r;
	if (r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS) {
		up->state = UPSTREAM_BLOCKED;
		wait_writable(up);
		return;
	}
	/* One outage lasts until a datagram gets through again, however many
	 * windows retry meanwhile. */
	if (!up->outage) {
		up->outage = true;
		up->stats->upstream_outages++;
		if (log_ratelimit_pass(&up->rl, uv_now(up->loop), &suppressed))
			log_warn("event=upstream_down upstream=%s error=\"%s\" suppressed=%llu",
				 up->url.text, strerror(-r), (unsigned long long)suppressed);
	}
	up->state = UPSTREAM_DOWN;
}

static void drop_head(struct upstream *up)
{
	struct dgram *d = dgram_queue_pop(&up->queue);

	up->stats->dropped_upstream += d->lines;
	dgram_free(up->pool, d);
}

/* Sends until everything is out, the peer is full, or it is gone. */
static void pump(struct upstream *up)
{
	struct packer pk;

	if (up->state != UPSTREAM_UP)
		goto out;
	if (up->url.kind == URL_UDP && send(up->fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		failed(up, -errno);
		goto out;
	}
	packer_init(&pk, up->pull_buf, up->max_datagram);
	for (;;) {
		struct dgram *d = up->queue.head;
		int r;

		if (d) {
			r = send_one(up, d->data, d->len);
			if (r == 0) {
				delivered(up, d->len, d->lines);
				dgram_free(up->pool, dgram_queue_pop(&up->queue));
				continue;
			}
			if (r == -EMSGSIZE) { /* cannot ever go: do not retry it forever */
				up->stats->upstream_errors++;
				drop_head(up);
				continue;
			}
		} else if (up->source.next) {
			packer_reset(&pk);
			if (!up->source.next(up->source.ctx, &pk))
				break;
			r = send_one(up, pk.buf, pk.len);
			if (r == 0) {
				delivered(up, pk.len, pk.lines);
				continue;
			}
			if (r == -EMSGSIZE) {
				up->stats->upstream_errors++;
				up->stats->dropped_upstream += pk.lines;
				continue;
			}
			up->source.undo(up->source.ctx);
		} else {
			break;
		}
		failed(up, r);
		break;
	}
out:
	if (up->queue.count == 0 || up->state != UPSTREAM_UP)
		uv_check_stop(&up->check);
}

void upstream_push(struct upstream *up, struct dgram *d)
{
	dgram_queue_push(&up->queue, d);
	while (up->queue.bytes > up->max_pending_bytes)
		drop_head(up);
	if (up->state == UPSTREAM_UP && !uv_is_active((uv_handle_t *)&up->check))
		uv_check_start(&up->check, check_cb);
}

void upstream_kick(struct upstream *up)
{
	/* Blocked waits for writable, but a window is also the safety net
	 * should that wakeup never come. */
	if (up->state != UPSTREAM_UP) {
		stop_poll(up);
		up->state = UPSTREAM_UP;
	}
	pump(up);
}

bool upstream_idle(const struct upstream *up)
{
	return up->queue.count == 0;
}

int upstream_reconfigure(struct upstream *up, const struct url *url, size_t max_datagram,
			 size_t max_pending_bytes, char *err, size_t errlen)
{
	if (max_datagram != up->max_datagram) {
		char *b = realloc(up->pull_buf, max_datagram);
		if (!b) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		up->pull_buf = b;
		up->max_datagram = max_datagram;
	}
	up->max_pending_bytes = max_pending_bytes;
	while (up->queue.bytes > up->max_pending_bytes)
		drop_head(up);
	if (strcmp(url->text, up->url.text) != 0) {
		int fd, out_fd;
		int r = open_target(url, &fd, &out_fd, err, errlen);
		if (r != 0)
			return r;
		stop_poll(up);
		if (up->fd >= 0)
			close(up->fd);
		up->fd = fd;
		up->out_fd = out_fd;
		up->url = *url;
		up->state = UPSTREAM_UP;
		up->outage = false;
		up->last_error = 0;
	}
	return 0;
}

static void check_close_cb(uv_handle_t *h)
{
	struct upstream *up = h->data;

	if (--up->pending_closes == 0 && up->closed_cb)
		up->closed_cb(up);
}

void upstream_close(struct upstream *up, void (*cb)(struct upstream *up))
{
	up->closed_cb = cb;
	while (up->queue.count)
		drop_head(up);
	stop_poll(up);
	if (up->fd >= 0) {
		close(up->fd);
		up->fd = -1;
	}
	free(up->pull_buf);
	up->pull_buf = NULL;
	up->pending_closes++;
	uv_close((uv_handle_t *)&up->check, check_close_cb);
}
