/* senders.h - who sends what: a bounded table of the heaviest senders. Pure.
 *
 * A UDP sender is its source address and port (one socket, usually one
 * process); a unix sender is its process, from SO_PASSCRED credentials. The
 * table holds at most SENDERS_MAX entries and never grows with the number of
 * clients: a new sender replaces the one with the fewest lines (the
 * Space-Saving scheme, so heavy hitters stay). Unix senders' process names
 * (comm) are filled in by whoever shows them (a /proc read), not here. */
#ifndef RELAY_SENDERS_H
#define RELAY_SENDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "metric.h"

#define SENDERS_MAX 64

struct sender_id {
	bool is_unix;
	bool has_cred;
	struct sockaddr_storage addr; /* UDP; zero-filled beyond the address */
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

struct sender_stats {
	struct sender_id id;
	char comm[17];            /* unix: the process name, once looked up */
	uint64_t datagrams, lines, bytes, rejects;
	uint64_t by_reason[REJECT_REASON_COUNT];
	double first_seen, last_seen; /* epoch seconds */
	bool used;
};

struct senders {
	struct sender_stats e[SENDERS_MAX];
	size_t n;
	size_t last;              /* the entry hit last: consecutive datagrams
				     usually come from the same sender */
	uint64_t evictions;
};

void senders_init(struct senders *s);

/* Finds or makes the entry for id; *is_new tells the caller to fill comm. */
struct sender_stats *senders_get(struct senders *s, const struct sender_id *id, double now,
				 bool *is_new);

/* The entry for id, or NULL; changes nothing. */
const struct sender_stats *senders_find(const struct senders *s, const struct sender_id *id);

/* The reason this sender was refused for most often, or REJECT_NONE. */
enum reject_reason senders_top_reason(const struct sender_stats *e);

/* "127.0.0.1:51234", "[::1]:40000", "pid 123 uid 1000 (python3)". */
void sender_format(const struct sender_id *id, const char *comm, char *buf, size_t cap);

/* Indexes of the entries, heaviest first by lines (by_rejects: by rejects,
 * skipping senders with none). Returns how many were written to idx. */
size_t senders_sorted(const struct senders *s, bool by_rejects, size_t *idx);

#endif
