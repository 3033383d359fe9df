/* url.h - the locations clients put in SPECTATOR_OUTPUT_LOCATION, and the
 * relay's own upstream. Pure: parsing only, no sockets.
 *
 *     udp://127.0.0.1:1235   udp://[::1]:1235   udp://localhost:1235
 *     unix:///run/spectator-relay/relay.unix
 *     file:///var/tmp/lines.txt   stdout          (upstream only) */
#ifndef RELAY_URL_H
#define RELAY_URL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

enum url_kind { URL_UDP, URL_UNIX, URL_FILE, URL_STDOUT, URL_HTTP };

struct url {
	enum url_kind kind;
	char text[160];                /* as written, for logs and stats */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
		struct sockaddr_storage ss;
	} addr;                        /* udp and unix */
	socklen_t addrlen;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix and file */
};

/* Parses s. listen: only udp and unix are allowed. Returns 0, or -EINVAL with
 * a reason in err (no file or key prefix: the caller adds its context). */
int url_parse(const char *s, bool listen, struct url *out, char *err, size_t errlen);

/* http://HOST:PORT, the address of SpectatorD's admin server; HOST as for
 * udp. Returns 0 or -EINVAL with a reason in err. */
int url_parse_http(const char *s, struct url *out, char *err, size_t errlen);

/* Whether a udp URL's address is loopback (127.0.0.0/8, ::1). */
bool url_is_loopback(const struct url *u);

/* Same socket address (kind, address and port, or path). */
bool url_same_address(const struct url *a, const struct url *b);

#endif
