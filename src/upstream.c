/* upstream.c - see upstream.h. */
#include "upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "sockutil.h"

static void pump(struct upstream *up);

const char *upstream_last_error(const struct upstream *up)
{
	return up->last_error ? strerror(-up->last_error) : "";
}

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

/* stdout and file:// are byte streams: a write may take part of a datagram.
 * They must never block the loop (a pipe nobody reads would stall the
 * daemon, signals and admin included), so they are written without waiting
 * and the rest of a datagram is kept in up->partial for the next try:
 * resending it whole would repeat lines. A regular file never makes a write
 * wait; a socket (journald's, under systemd) takes MSG_DONTWAIT per call;
 * anything else (a pipe, a terminal) is reopened through /proc with
 * O_NONBLOCK, a description of its own, so that the flag does not leak into
 * whoever shares fd 1 (stderr under systemd, the shell on a terminal). */
static int open_stdout(int *fd, int *out_fd, bool *stream_sock, char *err, size_t errlen)
{
	struct stat st;

	*fd = -1;
	*out_fd = STDOUT_FILENO;
	if (fstat(STDOUT_FILENO, &st) != 0) {
		int e = errno;
		snprintf(err, errlen, "stdout: %s", strerror(e));
		return -e;
	}
	if (S_ISREG(st.st_mode))
		return 0;
	if (S_ISSOCK(st.st_mode)) {
		*stream_sock = true;
		return 0;
	}
	*fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot reopen stdout without blocking: %s", strerror(e));
		return -e;
	}
	*out_fd = *fd;
	return 0;
}

static int open_target(const struct url *url, int *fd, int *out_fd, bool *stream_sock, char *err,
		       size_t errlen)
{
	*stream_sock = false;
	switch (url->kind) {
	case URL_STDOUT:
		return open_stdout(fd, out_fd, stream_sock, err, errlen);
	case URL_FILE:
		/* O_NONBLOCK matters for a FIFO only: regular files ignore it. */
		*fd = open(url->path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0644);
		if (*fd < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot open %s: %s", url->path,
				 e == ENXIO ? "a FIFO with no reader" : strerror(e));
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
	/* A datagram's last '\n' may go one byte past its size (encode.h). */
	up->pull_buf = malloc(max_datagram + 1);
	/* Streams keep the unwritten rest of one datagram (see open_stdout). */
	up->partial.buf = malloc(max_datagram + 1);
	up->partial.cap = max_datagram;
	if (!up->pull_buf || !up->partial.buf) {
		free(up->pull_buf);
		free(up->partial.buf);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = open_target(url, &up->fd, &up->out_fd, &up->stream_sock, err, errlen);
	if (r != 0) {
		free(up->pull_buf);
		free(up->partial.buf);
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

/* The bytes of a datagram of len that go out, as forwarded.bytes counts
 * them: all of them to a stream; on a datagram socket, all but a last '\n'
 * past max_datagram (encode.h), which it need not carry. */
static size_t sent_len(const struct upstream *up, size_t len)
{
	bool dgram_sock = up->url.kind == URL_UNIX || up->url.kind == URL_UDP;

	return dgram_sock && len > up->max_datagram ? len - 1 : len;
}

/* Bytes taken (all of them, for datagrams; perhaps fewer, for streams), or
 * -errno. */
static ssize_t send_one(struct upstream *up, const char *buf, size_t len)
{
	ssize_t n;
	size_t dlen = sent_len(up, len);

	switch (up->url.kind) {
	case URL_UNIX:
		n = sendto(up->fd, buf, dlen, MSG_DONTWAIT | MSG_NOSIGNAL, &up->url.addr.sa,
			   up->url.addrlen);
		break;
	case URL_UDP:
		n = send(up->fd, buf, dlen, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	default:
		do {
			n = up->stream_sock ? send(up->out_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
					    : write(up->out_fd, buf, len);
		} while (n < 0 && errno == EINTR);
		return n < 0 ? -errno : n;
	}
	/* A datagram goes whole or not at all. */
	return n < 0 ? -errno : (ssize_t)len;
}

/* A stream took only the first `taken` bytes: keep the rest, to go first. */
static void keep_rest(struct upstream *up, const char *buf, size_t len, size_t taken,
		      size_t lines)
{
	up->partial.head = taken;
	up->partial.len = len - taken;
	up->partial.off = 0;
	up->partial.lines = lines;
	memcpy(up->partial.buf, buf + taken, up->partial.len);
}

static void count_delivered(struct upstream *up, size_t bytes, size_t lines)
{
	up->stats->forwarded_datagrams++;
	up->stats->forwarded_bytes += bytes;
	up->stats->forwarded_lines += lines;
	if (up->outage) {
		up->outage = false;
		log_info("event=upstream_up upstream=%s", up->url.text);
		if (up->recovered)
			up->recovered(up->recovered_ctx);
	}
	up->last_error = 0;
}

static void poll_close_cb(uv_handle_t *h)
{
	struct upstream *up = h->data;

	free(h);
	if (up && closes_done(&up->closes) && up->closed_cb)
		up->closed_cb(up);
}

static void stop_poll(struct upstream *up)
{
	if (up->poll) {
		closes_add(&up->closes, 1);
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
	if (up->poll)
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
	/* A regular file cannot be polled, but never makes a write wait. */
	if (uv_poll_init(up->loop, up->poll, up->out_fd) != 0) {
		free(up->poll);
		up->poll = NULL;
		return;
	}
	up->poll->data = up;
	if (uv_poll_start(up->poll, UV_WRITABLE, writable_cb) != 0)
		stop_poll(up); /* the next window's kick retries */
}

static void send_failed(struct upstream *up, int r)
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

/* The rest of a stream's datagram: 0 once it is all out, or -errno. */
static int finish_partial(struct upstream *up)
{
	while (up->partial.len) {
		ssize_t n = send_one(up, up->partial.buf + up->partial.off,
				     up->partial.len - up->partial.off);
		if (n < 0)
			return (int)n;
		up->partial.off += (size_t)n;
		if (up->partial.off == up->partial.len) {
			count_delivered(up, up->partial.head + up->partial.len, up->partial.lines);
			up->partial.len = up->partial.off = 0;
		}
	}
	return 0;
}

/* A datagram was taken (a stream may have taken its first part only: the
 * rest follows, or is counted as dropped). */
static void tell_tap(struct upstream *up, const char *buf, size_t len)
{
	if (up->tap && tap_on(up->tap))
		tap_datagram(up->tap, buf, len);
}

/* Sends the queue's head. Returns 1 to go on, 0 when the stream is full, or
 * -errno. */
static int send_queued(struct upstream *up)
{
	struct dgram *d = up->queue.head;
	ssize_t n = send_one(up, d->data, d->len);

	if (n == -EMSGSIZE) { /* cannot ever go: do not retry it forever */
		up->stats->upstream_errors++;
		drop_head(up);
		return 1;
	}
	if (n < 0)
		return (int)n;
	tell_tap(up, d->data, d->len);
	if ((size_t)n < d->len)
		keep_rest(up, d->data, d->len, (size_t)n, d->lines);
	else
		count_delivered(up, sent_len(up, d->len), d->lines);
	dgram_free(up->pool, dgram_queue_pop(&up->queue));
	return up->partial.len ? 0 : 1;
}

/* Sends the datagram the source just filled; like send_queued(). What could
 * not go at all goes back to the source. */
static int send_pulled(struct upstream *up, const struct packer *pk)
{
	ssize_t n = send_one(up, pk->buf, pk->len);

	if (n == -EMSGSIZE) {
		up->stats->upstream_errors++;
		up->stats->dropped_upstream += pk->lines;
		return 1;
	}
	if (n < 0) {
		up->source.undo(up->source.ctx);
		return (int)n;
	}
	tell_tap(up, pk->buf, pk->len);
	if ((size_t)n < pk->len) {
		keep_rest(up, pk->buf, pk->len, (size_t)n, pk->lines);
		return 0;
	}
	count_delivered(up, sent_len(up, pk->len), pk->lines);
	return 1;
}

/* Sends until everything is out, the peer is full, or it is gone. */
static void pump(struct upstream *up)
{
	struct packer pk;
	int r;

	if (up->state != UPSTREAM_UP)
		goto out;
	/* A connected UDP socket reports an earlier ICMP "port unreachable" on
	 * its next send, and that send's data is gone. An empty datagram takes
	 * the report instead of a datagram of lines (SpectatorD ignores empty
	 * reads), so the lines wait for the next window while it is down. */
	if (up->url.kind == URL_UDP && send(up->fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		send_failed(up, -errno);
		goto out;
	}
	if ((r = finish_partial(up)) != 0) {
		send_failed(up, r);
		goto out;
	}
	packer_init(&pk, up->pull_buf, up->max_datagram);
	do {
		struct dgram *d = up->queue.head;

		r = 0;
		if (!d || d->fence == up->fence) { /* the source's lines go first */
			packer_reset(&pk);
			if (up->source.next && up->source.next(up->source.ctx, &pk))
				r = send_pulled(up, &pk);
			else if (d)
				r = send_queued(up);
		} else {
			r = send_queued(up);
		}
	} while (r > 0);
	if (r < 0)
		send_failed(up, r);
	/* A stream that took part of a datagram is full for now. */
	if (up->partial.len && up->state == UPSTREAM_UP) {
		up->state = UPSTREAM_BLOCKED;
		wait_writable(up);
	}
out:
	if (up->queue.count == 0 || up->state != UPSTREAM_UP)
		uv_check_stop(&up->check);
}

static void enqueue(struct upstream *up, struct dgram *d)
{
	/* Packed before a reload shrank max_datagram: what the relay holds
	 * goes out at the size in force. */
	if (d->len > up->max_datagram + 1)
		up->stats->dropped_upstream += dgram_recut(up->pool, d, up->max_datagram, &up->queue);
	else
		dgram_queue_push(&up->queue, d);
	while (up->queue.bytes > up->max_pending_bytes)
		drop_head(up);
}

void upstream_push(struct upstream *up, struct dgram *d)
{
	d->fence = up->fence;
	enqueue(up, d);
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
	return up->queue.count == 0 && up->partial.len == 0;
}

/* The rest of a stream's datagram can go nowhere else (the stream is being
 * closed or replaced, and the rest alone would start with a torn line): the
 * lines it finished count as forwarded, the others as dropped. */
static void drop_partial(struct upstream *up)
{
	const char *p = up->partial.buf + up->partial.off, *end = up->partial.buf + up->partial.len;
	size_t unfinished = 0;

	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		unfinished++;
		p++;
	}
	up->stats->forwarded_datagrams++; /* its first part went out */
	up->stats->forwarded_bytes += up->partial.head + up->partial.off;
	up->stats->forwarded_lines += up->partial.lines - unfinished;
	up->stats->dropped_upstream += unfinished;
	up->partial.len = up->partial.off = up->partial.lines = 0;
}

/* Re-cuts every queued datagram larger than max_datagram now allows. */
static void recut_queue(struct upstream *up)
{
	struct dgram_queue old = up->queue;
	struct dgram *d;

	memset(&up->queue, 0, sizeof(up->queue));
	while ((d = dgram_queue_pop(&old)))
		enqueue(up, d);
}

int upstream_reconfigure(struct upstream *up, const struct url *url, size_t max_datagram,
			 size_t max_pending_bytes, char *err, size_t errlen)
{
	bool new_target = strcmp(url->text, up->url.text) != 0;
	int fd = -1, out_fd = -1;
	bool stream_sock = false;
	char *pull = NULL, *rest = NULL;

	/* Everything that can fail first, so that a failure changes nothing. */
	if (new_target) {
		int r = open_target(url, &fd, &out_fd, &stream_sock, err, errlen);
		if (r != 0)
			return r;
	}
	if (max_datagram != up->max_datagram)
		pull = malloc(max_datagram + 1);
	if (max_datagram > up->partial.cap) /* never shrunk: it may hold a rest */
		rest = malloc(max_datagram + 1);
	if ((max_datagram != up->max_datagram && !pull) || (max_datagram > up->partial.cap && !rest)) {
		free(pull);
		free(rest);
		if (fd >= 0)
			close(fd);
		return errmsg(err, errlen, -ENOMEM, "out of memory");
	}

	if (pull) {
		free(up->pull_buf);
		up->pull_buf = pull;
		up->max_datagram = max_datagram;
		recut_queue(up);
	}
	if (rest) {
		memcpy(rest, up->partial.buf, up->partial.len);
		free(up->partial.buf);
		up->partial.buf = rest;
		up->partial.cap = max_datagram;
	}
	up->max_pending_bytes = max_pending_bytes;
	while (up->queue.bytes > up->max_pending_bytes)
		drop_head(up);
	if (new_target) {
		stop_poll(up);
		if (up->partial.len)
			drop_partial(up);
		up->stream_sock = stream_sock;
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

	if (closes_done(&up->closes) && up->closed_cb)
		up->closed_cb(up);
}

void upstream_close(struct upstream *up, void (*cb)(struct upstream *up))
{
	up->closed_cb = cb;
	while (up->queue.count)
		drop_head(up);
	if (up->partial.len)
		drop_partial(up);
	stop_poll(up);
	if (up->fd >= 0) {
		close(up->fd);
		up->fd = -1;
	}
	free(up->pull_buf);
	up->pull_buf = NULL;
	free(up->partial.buf);
	up->partial.buf = NULL;
	closes_add(&up->closes, 1);
	uv_close((uv_handle_t *)&up->check, check_close_cb);
}
