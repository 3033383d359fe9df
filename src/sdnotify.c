/* sdnotify.c - see sdnotify.h. */
#include "sdnotify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

int sdnotify_take_fds(struct sdnotify_fds *fds)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);

	memset(fds, 0, sizeof(*fds));
	if (n <= 0) {
		free(names);
		return n;
	}
	for (int i = 0; i < n; i++) {
		if ((size_t)i < SDNOTIFY_MAX_FDS) {
			fds->fd[i] = SD_LISTEN_FDS_START + i;
			snprintf(fds->name[i], sizeof(fds->name[i]), "%s",
				 names && names[i] ? names[i] : "");
			fds->n++;
		}
		if (names)
			free(names[i]);
	}
	free(names);
	return (int)fds->n;
}

bool sdnotify_fds_unsupported(void)
{
	return false;
}

void sdnotify_send(const char *state)
{
	(void)sd_notify(0, state);
}

uint64_t sdnotify_watchdog_usec(void)
{
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

#else

int sdnotify_take_fds(struct sdnotify_fds *fds)
{
	memset(fds, 0, sizeof(*fds));
	return 0;
}

bool sdnotify_fds_unsupported(void)
{
	return getenv("LISTEN_FDS") != NULL;
}

void sdnotify_send(const char *state)
{
	(void)state;
}

uint64_t sdnotify_watchdog_usec(void)
{
	return 0;
}

#endif
