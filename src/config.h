/* config.h - the relay's settings: one table of options, read from an INI
 * file with inih. Pure: no sockets, no logging; errors are written into a
 * caller's buffer as "FILE:LINE: key: reason", the same text for
 * --check-config, at startup and after a failed reload. */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"
#include "url.h"

#define CONFIG_DEFAULT_PATH "/etc/spectator-relay/relay.ini"
#define CONFIG_MAX_LISTEN 16

/* A group named in the file, resolved to its id when the file is read, so
 * that --check-config, start and reload refuse the same unknown name. */
struct config_group {
	char name[64];          /* "" for none */
	gid_t gid;              /* (gid_t)-1 when name is "" */
};

struct config {
	char path[256];         /* the file read, or "" for built-in defaults */

	/* [relay] */
	struct url listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	bool listen_is_default;  /* not set by the file: see daemon_start() */
	struct url upstream;
	uint64_t window_ms;
	uint64_t shutdown_timeout_ms;
	bool merge_timers;

	/* [limits] */
	uint64_t max_series;
	uint64_t max_key_bytes;
	uint64_t max_series_per_name;
	uint64_t age_gauge_limit;
	uint64_t max_datagram;
	uint64_t max_pending_bytes;

	/* [sockets] */
	uint64_t receive_buffer;
	uint64_t unix_mode;
	struct config_group unix_group;

	/* [admin] */
	char admin_socket[108];   /* an absolute path, or "" for none */
	uint64_t admin_mode;
	struct config_group admin_group;

	/* [spectatord] */
	struct url spectatord_admin;   /* kind URL_HTTP, or text "" when off */
	uint64_t resync_interval_ms;

	/* [self_metrics] */
	bool self_metrics;
	char self_metrics_tags[256];

	/* [log] */
	uint64_t log_level;     /* a syslog priority, as log.h's enum log_level:
				   3 error, 4 warn, 6 info, 7 debug */
};

enum config_type {
	CONF_URL_LIST,  /* listen: URLs separated by spaces or commas */
	CONF_URL,       /* upstream */
	CONF_DURATION,  /* "250ms", "1s", "2m"; stored in milliseconds */
	CONF_SIZE,      /* "512", "64KiB", "16MiB", "1GiB"; stored in bytes */
	CONF_COUNT,     /* a decimal integer */
	CONF_MODE,      /* octal file mode such as 0666 */
	CONF_BOOL,      /* true/false, yes/no, on/off */
	CONF_PATH,      /* an absolute path, or empty for none */
	CONF_GROUP,     /* a group name that exists, or empty; struct config_group */
	CONF_LEVEL,     /* error, warn, info, debug */
	CONF_TAGS,      /* key=value,key=value with [-._A-Za-z0-9~^] bytes */
	CONF_HTTP,      /* http://HOST:PORT, or empty for none */
};

struct config_option {
	const char *section;
	const char *name;
	enum config_type type;
	size_t offset;          /* into struct config */
	size_t size;            /* of the field: strings' buffer size */
	const char *def;        /* default, written as in the file */
	uint64_t min, max;      /* bounds for numbers, in stored units */
	bool reloadable;        /* SIGHUP applies a change without a restart */
	const char *help;       /* one line: meaning, unit and range */
};

extern const struct config_option config_options[];
extern const size_t config_noptions;

/* Fills c with the built-in defaults. */
void config_defaults(struct config *c);

/* Reads path over the defaults. Returns 0, or a negative errno with the
 * reason in err: "relay.ini:12: window: must be between 100ms and 5s".
 * Only a file that cannot be read at all ("relay.ini: No such file or
 * directory", larger than 64 KiB) has no line. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

/* The effective configuration as INI text (which config_load() reads back
 * as the same configuration) or as a JSON object, appended to out (json.h;
 * out->failed says whether memory ran out). */
void config_format_ini(const struct config *c, struct jbuf *out);
void config_format_json(const struct config *c, struct jbuf *out);

/* The longest text config_value_text() writes, NUL included: a listen list
 * of CONFIG_MAX_LISTEN addresses as long as a URL may be. */
#define CONFIG_VALUE_MAX (CONFIG_MAX_LISTEN * sizeof(((struct url *)0)->text))

/* One option's value as text, in the file's syntax; cut to cap bytes (a
 * buffer of CONFIG_VALUE_MAX holds any). */
void config_value_text(const struct config *c, const struct config_option *o, char *buf,
		       size_t cap);

/* Copies into next the options a reload cannot change (reloadable false),
 * from the configuration running: what is in effect after a reload. */
void config_keep_restart_only(struct config *next, const struct config *running);

/* Compares two configurations; for each option that differs, appends
 * "section.name" to buf (space-separated) and counts it. Options that need a
 * restart are listed in restart, the others in live. */
void config_diff(const struct config *a, const struct config *b, char *live, size_t live_cap,
		 char *restart, size_t restart_cap);

#endif
