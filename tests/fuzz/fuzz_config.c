/*
 * fuzz_config: raftstored's config file and cluster list
 * (coordinator/config.h).
 *
 * The input is a config file, read through config_parse's --config (it
 * only reads files, so the input sits in an in-memory file).  The same
 * bytes, up to a NUL, are also parsed as an --initial-cluster list.
 * Invariants: every string the parser fills is NUL-terminated inside its
 * field; a parsed cluster list has at most CONFIG_PEERS_MAX members, and
 * formatting it and parsing the text again gives the same members.
 * config_validate runs on every config that parsed (it must not crash on
 * any of them).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/config.h"
#include "raftstore/lib/rs_error.h"
#include "tests/fuzz/fuzz.h"

#define CLUSTER_TEXT_MAX (CONFIG_PEERS_MAX * (24 + 2 * CONFIG_ADDR_MAX))

#define CHECK_TERMINATED(field) \
	FUZZ_CHECK(memchr((field), '\0', sizeof(field)) != NULL)

static void check_peers(const struct config_peer *peers, unsigned n)
{
	char errmsg[RS_ERRMSG_SIZE];
	char text[CLUSTER_TEXT_MAX];
	struct config_peer again[CONFIG_PEERS_MAX];
	unsigned n_again = 0;

	FUZZ_CHECK(n <= CONFIG_PEERS_MAX);
	for (unsigned i = 0; i < n; i++) {
		CHECK_TERMINATED(peers[i].raft_addr);
		CHECK_TERMINATED(peers[i].client_addr);
	}
	if (n == 0)
		return;
	config_format_cluster(peers, n, text, sizeof text);
	FUZZ_CHECK(config_parse_cluster(text, again, &n_again, errmsg) ==
		   RS_OK);
	FUZZ_CHECK(n_again == n);
	for (unsigned i = 0; i < n; i++) {
		FUZZ_CHECK(again[i].id == peers[i].id);
		FUZZ_CHECK(strcmp(again[i].raft_addr, peers[i].raft_addr) == 0);
		FUZZ_CHECK(strcmp(again[i].client_addr, peers[i].client_addr) ==
			   0);
	}
}

static void fuzz_file_parse(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	char arg0[] = "raftstored", arg1[] = "--config";
	char *argv[] = {arg0, arg1, (char *)fuzz_file(data, size), NULL};
	struct config *c = malloc(sizeof *c);

	FUZZ_CHECK(c != NULL);
	config_defaults(c);
	if (config_parse(c, 3, argv, errmsg) == RS_OK) {
		CHECK_TERMINATED(c->data_dir);
		CHECK_TERMINATED(c->raft_addr);
		CHECK_TERMINATED(c->client_addr);
		CHECK_TERMINATED(c->metrics_addr);
		CHECK_TERMINATED(c->log_level);
		check_peers(c->peers, c->n_peers);
		(void)config_validate(c, errmsg);
	}
	free(c);
}

static void fuzz_cluster(const uint8_t *data, size_t size)
{
	char errmsg[RS_ERRMSG_SIZE];
	struct config_peer peers[CONFIG_PEERS_MAX];
	unsigned n = 0;
	char *text = malloc(size + 1);

	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_parse_cluster(text, peers, &n, errmsg) == RS_OK)
		check_peers(peers, n);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_file_parse(data, size);
	fuzz_cluster(data, size);
	return 0;
}
