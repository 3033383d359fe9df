/* url.c - see url.h. */
#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

static int parse_port(const char *s, uint16_t *port)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	unsigned long v = strtoul(s, &end, 10);
	if (*end != '\0' || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* HOST:PORT of a udp:// or http:// URL (u->kind says which) into u->addr. */
static int parse_udp(const char *hostport, struct url *u, char *err, size_t errlen)
{
	const char *scheme = u->kind == URL_HTTP ? "http" : "udp";
	char host[64];
	const char *colon;
	uint16_t port;

	if (hostport[0] == '[') {
		const char *close = strchr(hostport, ']');
		if (!close || close[1] != ':')
			return errmsg(err, errlen, -EINVAL, "%s: expected %s://[IPv6]:PORT", u->text, scheme);
		size_t n = (size_t)(close - hostport - 1);
		if (n >= sizeof(host))
			return errmsg(err, errlen, -EINVAL, "%s: address too long", u->text);
		memcpy(host, hostport + 1, n);
		host[n] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(hostport, ':');
		if (!colon)
			return errmsg(err, errlen, -EINVAL, "%s: expected %s://HOST:PORT", u->text, scheme);
		size_t n = (size_t)(colon - hostport);
		if (n >= sizeof(host))
			return errmsg(err, errlen, -EINVAL, "%s: address too long", u->text);
		memcpy(host, hostport, n);
		host[n] = '\0';
	}
	if (parse_port(colon + 1, &port) != 0)
		return errmsg(err, errlen, -EINVAL, "%s: port must be a number from 0 to 65535", u->text);

	memset(&u->addr, 0, sizeof(u->addr));
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &u->addr.in.sin_addr) == 1) {
		u->addr.in.sin_family = AF_INET;
		u->addr.in.sin_port = htons(port);
		u->addrlen = sizeof(u->addr.in);
	} else if (inet_pton(AF_INET6, host, &u->addr.in6.sin6_addr) == 1 && hostport[0] == '[') {
		u->addr.in6.sin6_family = AF_INET6;
		u->addr.in6.sin6_port = htons(port);
		u->addrlen = sizeof(u->addr.in6);
	} else {
		return errmsg(err, errlen, -EINVAL, "%s: host must be an IPv4 address, [IPv6 address] or localhost", u->text);
	}
	return 0;
}

static int parse_path(const char *path, struct url *u, char *err, size_t errlen)
{
	if (path[0] != '/')
		return errmsg(err, errlen, -EINVAL, "%s: the path must be absolute (three slashes)", u->text);
	if (strlen(path) >= sizeof(u->path))
		return errmsg(err, errlen, -EINVAL, "%s: path longer than a unix socket address allows",
			    u->text);
	strcpy(u->path, path);
	return 0;
}

int url_parse(const char *s, bool listen, struct url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (strlen(s) >= sizeof(u->text))
		return errmsg(err, errlen, -EINVAL, "%.40s...: too long", s);
	strcpy(u->text, s);

	if (strncmp(s, "udp://", 6) == 0) {
		u->kind = URL_UDP;
		return parse_udp(s + 6, u, err, errlen);
	}
	if (strncmp(s, "unix://", 7) == 0) {
		int r = parse_path(s + 7, u, err, errlen);
		if (r != 0)
			return r;
		u->kind = URL_UNIX;
		u->addr.un.sun_family = AF_UNIX;
		strcpy(u->addr.un.sun_path, u->path);
		u->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(u->path) + 1);
		return 0;
	}
	if (!listen && strncmp(s, "file://", 7) == 0) {
		int r = parse_path(s + 7, u, err, errlen);
		u->kind = URL_FILE;
		return r;
	}
	if (!listen && strcmp(s, "stdout") == 0) {
		u->kind = URL_STDOUT;
		return 0;
	}
	return errmsg(err, errlen, -EINVAL, listen ? "%s: expected udp://HOST:PORT or unix:///PATH"
			   : "%s: expected udp://HOST:PORT, unix:///PATH, file:///PATH or stdout",
		    s);
}

int url_parse_http(const char *s, struct url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (strlen(s) >= sizeof(u->text))
		return errmsg(err, errlen, -EINVAL, "%.40s...: too long", s);
	strcpy(u->text, s);
	if (strncmp(s, "http://", 7) != 0)
		return errmsg(err, errlen, -EINVAL, "%s: expected http://HOST:PORT", s);
	u->kind = URL_HTTP;
	return parse_udp(s + 7, u, err, errlen);
}

bool url_is_loopback(const struct url *u)
{
	if (u->kind != URL_UDP && u->kind != URL_HTTP)
		return true;
	if (u->addr.sa.sa_family == AF_INET)
		return (ntohl(u->addr.in.sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&u->addr.in6.sin6_addr);
}

bool url_same_address(const struct url *a, const struct url *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == URL_UDP || a->kind == URL_HTTP)
		return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
	if (a->kind == URL_STDOUT)
		return true;
	return strcmp(a->path, b->path) == 0;
}
