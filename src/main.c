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
#include "log.h"

static const char usage[] =
	"usage: spectator-relay [--config FILE] [--check-config | --print-config]\n"
	"                       [--version] [--help]\n"
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
	"  -V, --version       print the version and exit\n"
	"  -h, --help          print this help and exit\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "print-config", no_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool check = false, print = false;
	int c;

	while ((c = getopt_long(argc, argv, "c:tpVh", opts, NULL)) != -1) {
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
		static char text[16384];
		config_format_ini(&cfg, text, sizeof(text));
		fputs(text, stdout);
	}
	if (check || print)
		return 0;

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
