/* sdnotify.h - the systemd protocol: readiness, status, watchdog, and
 * sockets passed by socket activation.
 *
 * Built on libsystemd when pkg-config finds it (HAVE_LIBSYSTEMD). Without
 * it, notifications are no-ops and no descriptors are adopted; the relay
 * says so at startup if systemd tried to pass any. */
#ifndef RELAY_SDNOTIFY_H
#define RELAY_SDNOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SDNOTIFY_MAX_FDS 32

struct sdnotify_fds {
	int fd[SDNOTIFY_MAX_FDS];
	char name[SDNOTIFY_MAX_FDS][64];
	bool used[SDNOTIFY_MAX_FDS];   /* adopted by a listener */
	size_t n;
};

/* Collects LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES and unsets them, so that
 * children never see them. Returns the count, 0 when not socket-activated,
 * or -errno. */
int sdnotify_take_fds(struct sdnotify_fds *fds);

/* Whether systemd passed descriptors that this build cannot take. */
bool sdnotify_fds_unsupported(void);

/* Sends one notification ("READY=1", "STATUS=...", ...). Quietly does
 * nothing when not run by systemd. */
void sdnotify_send(const char *state);

/* The watchdog interval in microseconds, 0 when WATCHDOG_USEC is not set
 * for this process. */
uint64_t sdnotify_watchdog_usec(void);

#endif
