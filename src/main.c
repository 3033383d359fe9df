/* main.c - spectator-relay: arguments, configuration, run, cleanup. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "errmsg.h"
#include "log.h"
#include "replay.h"

static const char usage[] =
	"usage: spectator-relay [--config FILE] [--check-config | --print-config]\n"
	"                       [--version] [--help]\n"
	"       spectator-relay [--config FILE] --replay FILE\n"
	"\n"
	"Receives SpectatorD protocol lines, merges them per window and forwards them\n"
	"to SpectatorD. Runs in the foreground and logs to stderr.\n"
	"\n"
	"  -c, --config FILE   read FILE (default " CONFIG_DEFAULT_PATH
	"; built-in\n"
	"                      defaults apply when that file does not exist)\n"
	"  -t, --check-config  validate the configuration and exit; quiet unless it\n"
	"                      is bad\n"
	"  -p, --print-config  validate it, print the effective configuration (every\n"
	"                      key, defaults filled in), and exit\n"
	"  -r, --replay FILE   run the protocol lines of FILE (- for standard input)\n"
	"                      through the relay's parser, window and encoder as one\n"
	"                      window, print the lines it would forward, count the\n"
	"                      refused ones by reason on standard error, and exit;\n"
	"                      uses [limits] and [relay] merge_timers, opens no socket\n"
	"  -V, --version       print the version and exit\n"
	"  -h, --help          print this help and exit\n";

/* --replay: lines from FILE to standard output, refusals by reason to
 * standard error. Exit 0 once every line was read, 1 when FILE cannot be. */
static int run_replay(const struct config *cfg, const char *file)
{
	FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	struct replay_result res;
	char err[256];

	if (!in) {
		fprintf(stderr, "spectator-relay: %s: %s\n", file, strerror(errno));
		return 1;
	}
	int r = replay_run(in, stdout, cfg, &res, err, sizeof(err));
	if (in != stdin)
		fclose(in);
	if (fflush(stdout) != 0 && r == 0)
		r = errmsg(err, sizeof(err), -EIO, "cannot write the forwarded lines");
	if (r != 0) {
		fprintf(stderr, "spectator-relay: %s\n", err);
		return 1;
	}
	uint64_t refused = 0;
	for (int k = 1; k < REJECT_REASON_COUNT; k++) {
		refused += res.rejected[k];
		if (res.rejected[k])
			fprintf(stderr, "rejected %s %llu\n", reject_reason_name[k],
				(unsigned long long)res.rejected[k]);
	}
	fprintf(stderr, "replayed %llu lines: %llu refused, %llu lines forwarded\n",
		(unsigned long long)res.lines, (unsigned long long)refused,
		(unsigned long long)res.forwarded);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "print-config", no_argument, NULL, 'p' },
		{ "replay", required_argument, NULL, 'r' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *replay = NULL;
	bool check = false, print = false;
	int c;

	while ((c = getopt_long(argc, argv, "c:tpr:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'p':
			print = true;
			break;
		case 'r':
			replay = optarg;
			break;
		case 'V':
			printf("spectator-relay %s\n", RELAY_VERSION);
			return 0;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "spectator-relay: unexpected argument '%s'\n%s", argv[optind], usage);
		return 2;
	}

	/* Tables are large and short-lived under a flood: serve them from
	 * mmap so that their memory goes back to the system when they shrink. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);

	static struct config cfg;
	char err[512];
	config_defaults(&cfg);
	if (!path && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		path = CONFIG_DEFAULT_PATH;
	if (path && config_load(&cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* The check is quiet: systemd runs it before every start and reload,
	 * and a listing there would fill the journal. */
	if (print) {
		struct jbuf text;
		bool failed;
		jbuf_init(&text);
		config_format_ini(&cfg, &text);
		failed = text.failed || !text.buf || fputs(text.buf, stdout) == EOF || fflush(stdout) != 0;
		jbuf_deinit(&text);
		if (failed) {
			fprintf(stderr, "spectator-relay: cannot print the configuration\n");
			return 1;
		}
	}
	if (check || print)
		return 0;

	if (replay)
		return run_replay(&cfg, replay);

	static struct daemon d;
	int status = 1;
	if (daemon_start(&d, &cfg, path, err, sizeof(err)) != 0) {
		/* The log is standard error: one line, for a terminal and the journal. */
		log_err("event=start_failed error=\"%s\"", err);
		goto out;
	}
	status = daemon_run(&d);
out:
	daemon_cleanup(&d);
	return status;
}
