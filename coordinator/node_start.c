/*
 * node_start: how a node decides to start, and what it checks first
 * (node_internal.h).
 *
 * Every decision comes from durable state (node.h): cold or warm, the
 * members (the store's \xff/system/coordinators over --initial-cluster),
 * this node's own addresses.  Before Raft starts, c-raft's segments are
 * checked (a torn tail is cut, anything else refused) and the stored
 * layout must decode; after, c-raft's configuration must name the same
 * members.  A refusal returns a NODE_EXIT_* code with errmsg naming the
 * directory, key or node involved; nothing is repaired silently.
 *
 * Before any of that, the data dir is locked (DIR/LOCK, so a second
 * process on the same dir stops before it touches a file) and its identity
 * file says which node it belongs to (coordinator/identity.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/node_internal.h"
#include "director/tsl.h"
#include "raftstore/aiodefer.h"
#include "raftstore/lib/log.h"
#include "raftstore/lib/rs_error.h"
#include "raftstore/raftinfo.h"
#include "raftstore/raftio.h"
#include "raftstore/raftheap.h"
#include "raftstore/raftcommit.h"
#include "raftstore/raftmend.h"
#include "raftstore/raftresend.h"
#include "raftstore/raftvote.h"
#include "raftstore/rafttick.h"
#include "raftstore/raftseg.h"
#include "raftstore/segfill.h"
#include "raftstore/snapsync.h"
#include "storage/fileio.h"
#include "storage/store.h"

#define NODE_LOCK_FILE "LOCK"

/* The size of the Raft log's segment files (raft_uv_set_segment_size;
 * node_init_raft says why not raft_uv's 8 MiB). */
#define NODE_RAFT_SEGMENT_SIZE (1024u * 1024u)

/* The PID another process wrote into a lock file we could not take, or 0
 * (it has not written it yet). */
static long node_lock_holder(int fd)
{
	char buf[32];
	ssize_t got = pread(fd, buf, sizeof buf - 1, 0);

	if (got <= 0)
		return 0;
	buf[got] = '\0';
	return strtol(buf, NULL, 10);
}

int node_lock_data_dir(struct node *n, char *errmsg)
{
	const char *dir = n->cfg.data_dir;
	char path[PATH_MAX + 16], pid[32];
	int fd, len;

	n->lock_fd = -1;
	if (fileio_mkdir(dir, errmsg) != RS_OK) {
		rs_errmsg_wrapf(errmsg, "create data dir");
		return NODE_EXIT_FAILURE;
	}
	snprintf(path, sizeof path, "%s/%s", dir, NODE_LOCK_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rs_errmsg_errno(errmsg, errno, "open lock file %s", path);
		return NODE_EXIT_FAILURE;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		long holder = node_lock_holder(fd);
		close(fd);
		if (err != EWOULDBLOCK) {
			rs_errmsg_errno(errmsg, err, "lock %s", path);
			return NODE_EXIT_FAILURE;
		}
		if (holder > 0)
			rs_errmsg_printf(errmsg, "data dir %s is in use by another "
						 "raftstored (pid %ld)", dir, holder);
		else
			rs_errmsg_printf(errmsg, "data dir %s is in use by another "
						 "raftstored (pid not yet written "
						 "to %s)", dir, path);
		return NODE_EXIT_MISMATCH;
	}
	/* The PID is only a hint for the message above: the lock is held
	 * whether or not it can be written (a full disk, say). */
	len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
		log_warn("node.lock_pid_not_written", "file=%s error=\"%s\"", path,
			 strerror(errno));
	n->lock_fd = fd; /* held until the process exits */
	return RS_OK;
}

int node_load_identity(struct node *n, bool *found, char *errmsg)
{
	int rv = identity_read(n->cfg.data_dir, &n->identity, errmsg);

	*found = rv == RS_OK;
	if (rv == RS_ENOTFOUND)
		return RS_OK;
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "refusing to start");
		return NODE_EXIT_MISMATCH;
	}
	if (n->identity.node_id != n->cfg.id) {
		rs_errmsg_printf(errmsg, "data dir %s belongs to node %" PRIu64
					 ", not --id %" PRIu64 " (%s/%s)",
				 n->cfg.data_dir, n->identity.node_id,
				 n->cfg.id, n->cfg.data_dir, IDENTITY_FILE);
		return NODE_EXIT_MISMATCH;
	}
	return RS_OK;
}

/* The founder draws the cluster ID: the member with the lowest id. */
static bool node_is_founder(const struct node *n)
{
	for (unsigned i = 0; i < n->n_peers; i++)
		if (n->peers[i].id < n->cfg.id)
			return false;
	return true;
}

int node_create_identity(struct node *n, bool cold, char *errmsg)
{
	char hex[IDENTITY_CLUSTER_HEX_SIZE];
	bool founder = cold && node_is_founder(n);

	memset(&n->identity, 0, sizeof n->identity);
	n->identity.node_id = n->cfg.id;
	if (n->join.cluster_known) {
		founder = false;
		memcpy(n->identity.cluster_id, n->join.cluster_id,
		       IDENTITY_CLUSTER_ID_SIZE);
	} else if (founder &&
	    identity_new_cluster_id(n->identity.cluster_id, errmsg) != RS_OK)
		return NODE_EXIT_FAILURE;
	if (identity_write(n->cfg.data_dir, &n->identity, errmsg) != RS_OK)
		return NODE_EXIT_FAILURE;
	identity_cluster_hex(&n->identity, hex);
	if (cold)
		log_info("identity.created", "node_id=%" PRIu64 " founder=%s "
			 "cluster_id=%s", n->identity.node_id,
			 founder ? "yes" : "no", hex[0] ? hex : "unknown");
	else
		log_warn("identity.created_for_existing_data", "node_id=%" PRIu64
			 " data_dir=%s cluster_id=unknown", n->identity.node_id,
			 n->cfg.data_dir);
	return RS_OK;
}

int node_adopt_cluster_id(struct node *n,
			  const uint8_t id[IDENTITY_CLUSTER_ID_SIZE],
			  char *errmsg)
{
	struct identity next = n->identity;
	char hex[IDENTITY_CLUSTER_HEX_SIZE];
	int rv;

	memcpy(next.cluster_id, id, IDENTITY_CLUSTER_ID_SIZE);
	if (!identity_cluster_known(&next)) {
		rs_errmsg_printf(errmsg, "adopt cluster ID: it is all zero");
		return RS_EINVAL;
	}
	if (memcmp(n->identity.cluster_id, id, IDENTITY_CLUSTER_ID_SIZE) == 0)
		return RS_OK; /* already ours, and durable */
	if (identity_cluster_known(&n->identity)) {
		identity_cluster_hex(&n->identity, hex);
		rs_errmsg_printf(errmsg, "adopt cluster ID: %s/%s already names "
					 "cluster %s", n->cfg.data_dir,
				 IDENTITY_FILE, hex);
		return RS_EEXIST;
	}
	rv = identity_write(n->cfg.data_dir, &next, errmsg);
	if (rv != RS_OK)
		return rv;
	n->identity = next;
	identity_cluster_hex(&n->identity, hex);
	log_info("identity.cluster_adopted", "cluster_id=%s", hex);
	return RS_OK;
}

static bool node_raft_state_exists(const char *dir)
{
	char p[PATH_MAX + 16];
	struct stat st;
	snprintf(p, sizeof p, "%s/metadata1", dir);
	if (stat(p, &st) == 0)
		return true;
	snprintf(p, sizeof p, "%s/metadata2", dir);
	return stat(p, &st) == 0;
}

static bool node_same_cluster(const struct config_peer *a, unsigned na,
			      const struct config_peer *b, unsigned nb)
{
	if (na != nb)
		return false;
	for (unsigned i = 0; i < na; i++) {
		bool found = false;
		for (unsigned j = 0; j < nb; j++)
			if (a[i].id == b[j].id &&
			    strcmp(a[i].raft_addr, b[j].raft_addr) == 0 &&
			    strcmp(a[i].client_addr, b[j].client_addr) == 0)
				found = true;
		if (!found)
			return false;
	}
	return true;
}

/* Members: from storage if recorded there (they win over the flag, which
 * only seeds a new cluster); else --initial-cluster, or for a node joining
 * with --join, the cluster's own answer. */
static int node_members(struct node *n, char *errmsg)
{
	const uint8_t *val;
	uint32_t len;
	char list[2048];
	struct config_peer stored[CONFIG_PEERS_MAX];
	unsigned n_stored = 0;
	int rv = store_get(n->store, NODE_KEY_COORDINATORS,
			   strlen(NODE_KEY_COORDINATORS),
			   store_applied_version(n->store), &val, &len, NULL);

	if (rv != RS_OK && n->cfg.join[0])
		return n->join.cluster_known ? RS_OK : node_join_fetch(n, errmsg);
	if (rv != RS_OK) {
		memcpy(n->peers, n->cfg.peers, sizeof n->peers);
		n->n_peers = n->cfg.n_peers;
		n->peers_from_flags = true;
		return RS_OK;
	}
	snprintf(list, sizeof list, "%.*s", (int)len, (const char *)val);
	if (config_parse_cluster(list, stored, &n_stored, errmsg) != RS_OK) {
		rs_errmsg_wrapf(errmsg, "stored key \\xff/system/coordinators "
					"does not decode");
		return NODE_EXIT_MISMATCH;
	}
	if (n->cfg.n_peers > 0 &&
	    !node_same_cluster(stored, n_stored, n->cfg.peers, n->cfg.n_peers))
		log_warn("node.initial_cluster_ignored",
			 "reason=\"the members changed since; the stored ones "
			 "win\" stored=%s", list);
	memcpy(n->peers, stored, sizeof n->peers);
	n->n_peers = n_stored;
	return RS_OK;
}

/* Check that this node is one of the members, with these addresses. */
static int node_check_self(struct node *n, char *errmsg)
{
	const struct config_peer *me = node_peer(n, n->cfg.id);

	if (me == NULL) {
		rs_errmsg_printf(errmsg, "node id %llu is not a member of the cluster "
					 "recorded in %s",
				 (unsigned long long)n->cfg.id, n->cfg.data_dir);
		return NODE_EXIT_MISMATCH;
	}
	if ((n->cfg.raft_addr[0] && strcmp(n->cfg.raft_addr, me->raft_addr)) ||
	    (n->cfg.client_addr[0] && strcmp(n->cfg.client_addr, me->client_addr))) {
		rs_errmsg_printf(errmsg, "addresses %s/%s differ from the recorded "
					 "%s/%s for node %llu",
				 n->cfg.raft_addr, n->cfg.client_addr, me->raft_addr,
				 me->client_addr, (unsigned long long)n->cfg.id);
		return NODE_EXIT_MISMATCH;
	}
	snprintf(n->cfg.raft_addr, sizeof n->cfg.raft_addr, "%s", me->raft_addr);
	snprintf(n->cfg.client_addr, sizeof n->cfg.client_addr, "%s",
		 me->client_addr);
	return RS_OK;
}

int node_open_store(struct node *n, char *errmsg)
{
	struct store_options so = {.dir = n->store_dir,
				   .sync = JOURNAL_SYNC_NONE,
				   .apply_on_accept = true};
	struct store_open_report rep;
	int rv;

	rv = store_open(&n->store, &n->loop, &so, &rep, errmsg);
	if (rv != RS_OK)
		return rv;
	if (rep.journal.torn)
		log_warn("store.torn_tail", "file=%s offset=%" PRIu64
			 " bytes_cut=%" PRIu64,
			 rep.journal.torn_file, rep.journal.torn_offset,
			 rep.journal.torn_bytes);
	if (rep.checkpoint.skipped > 0)
		log_warn("store.checkpoint_skipped", "count=%u reason=\"%s\"",
			 rep.checkpoint.skipped, rep.checkpoint.skipped_error);
	log_info("store.opened", "dir=%s applied_version=%" PRIu64
		 " checkpoint=%" PRIu64 " replayed=%" PRIu64,
		 n->store_dir, rep.applied_version, rep.checkpoint_version,
		 rep.replayed);
	return RS_OK;
}

static int node_bootstrap(struct node *n, char *errmsg)
{
	struct raft_configuration conf;
	int rv;

	raft_configuration_init(&conf);
	for (unsigned i = 0; i < n->n_peers; i++) {
		rv = raft_configuration_add(&conf, n->peers[i].id,
					    n->peers[i].raft_addr, RAFT_VOTER);
		if (rv != 0)
			break;
	}
	if (rv == 0)
		rv = raft_bootstrap(&n->raft, &conf);
	raft_configuration_close(&conf);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "bootstrap Raft in %s: %s", n->raft_dir,
				 raft_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	log_info("raft.bootstrapped", "members=%u", n->n_peers);
	return RS_OK;
}

/* Log what raftseg found wrong in one segment (and what it cut). */
static void node_log_raft_segment(const struct raftseg_info *s)
{
	char q[RAFTSEG_WHY_SIZE + 64];

	log_quote(q, sizeof q, s->why);
	if (s->repaired)
		log_warn("raft.torn_tail", "file=%s offset=%" PRIu64
			 " bytes_cut=%" PRIu64 " entries_kept=%" PRIu64
			 " first_lost_index=%" PRIu64 " reason=%s", s->name,
			 s->size_bytes, s->cut_bytes, s->entries, s->bad_index, q);
	else if (s->verdict == RAFTSEG_CORRUPT)
		log_error("raft.segment_corrupt", "file=%s offset=%" PRIu64
			  " index=%" PRIu64 " batch=%" PRIu32 " entries_valid=%"
			  PRIu64 " reason=%s", s->name, s->bad_offset,
			  s->bad_index, s->bad_batch, s->entries, q);
}

/* c-raft 0.15 aborts on a cut open segment and silently drops damaged
 * ones (docs/storage-format.md, "c-raft's segments, as raftstore checks
 * them"): check the segments before raft_start, cut a torn tail, refuse
 * anything else. */
int node_check_raft_segments(struct node *n, char *errmsg)
{
	struct raftseg_report rep;
	int rv = raftseg_check_dir(n->raft_dir, &rep, errmsg);

	if (rv == RS_ETORN)
		rv = raftseg_repair(n->raft_dir, &rep, errmsg);
	if (rv == RS_OK || rv == RS_ECORRUPT)
		for (size_t i = 0; i < rep.n; i++)
			node_log_raft_segment(&rep.segs[i]);
	raftseg_report_free(&rep);
	return rv == RS_OK ? RS_OK : NODE_EXIT_FAILURE;
}

/* ---- the Raft handshake's questions (raftguard_peer_ops) ---- */

static bool node_guard_is_member(void *ctx, uint64_t id)
{
	return node_is_member(ctx, id);
}

/* The founder drew the cluster ID at its first start: the lowest id of the
 * members (those of --initial-cluster, read back from storage since). */
static uint64_t node_guard_founder(void *ctx)
{
	const struct node *n = ctx;
	uint64_t low = 0;

	for (unsigned i = 0; i < n->n_peers; i++)
		if (low == 0 || n->peers[i].id < low)
			low = n->peers[i].id;
	return low;
}

static int node_guard_adopt(void *ctx, const uint8_t id[16], char *errmsg)
{
	return node_adopt_cluster_id(ctx, id, errmsg);
}

static void node_guard_peer_closed(void *ctx, uint64_t id)
{
	node_peer_closed(ctx, (raft_id)id);
}

/* Until it knows the cluster ID, a node that is not the founder asks the
 * founder for it (one HELLO exchange every NODE_PROBE_MS, none while one is
 * in flight): a follower with a zero ID refuses its leader until it has
 * adopted the founder's (docs/protocol.md, "Raft connection HELLO"). */
#define NODE_PROBE_MS 250u

void node_probe_founder(struct node *n)
{
	uint64_t founder = node_guard_founder(n);
	const struct config_peer *p = node_peer(n, (raft_id)founder);
	uint64_t now = uv_now(&n->loop);

	if (!n->raft_started || n->stopping || p == NULL ||
	    founder == n->cfg.id || identity_cluster_known(&n->identity) ||
	    n->guard.probes > 0 || now - n->probe_ms < NODE_PROBE_MS)
		return;
	n->probe_ms = now;
	if (raftguard_probe(&n->guard, founder, p->raft_addr) != RS_OK)
		log_debug("raft.probe_not_started", "founder=%llu addr=%s",
			  (unsigned long long)founder, p->raft_addr);
}

/* c-raft's TCP transport wrapped by the cluster-ID handshake. */
static int node_init_transport(struct node *n, char *errmsg)
{
	struct raftguard_peer_ops ops = {
		.ctx = n,
		.self_id = n->cfg.id,
		.is_member = node_guard_is_member,
		.founder = node_guard_founder,
		.cluster_id = node_cluster_id,
		.adopt = node_guard_adopt,
		.peer_closed = node_guard_peer_closed,
	};
	int rv = raft_uv_tcp_init(&n->transport, &n->loop);

	if (rv != 0) {
		rs_errmsg_printf(errmsg, "init Raft transport: %s",
				 raft_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	rv = raftguard_init(&n->guard, &n->transport, &ops, errmsg);
	if (rv != RS_OK) {
		rs_errmsg_wrapf(errmsg, "init Raft handshake");
		return NODE_EXIT_FAILURE;
	}
	return RS_OK;
}

#ifdef RS_FAULT_HOOKS
/* RS_FAULT_RAFT_SET_TERM=fail (tests): every term change c-raft asks of
 * raft_uv fails, as a full disk would fail its metadata write; c-raft 0.15
 * then turns unavailable for good, and the node must stop. */
static int node_fault_set_term(struct raft_io *io, raft_term term)
{
	(void)term;
	snprintf(io->errmsg, sizeof io->errmsg,
		 "injected by RS_FAULT_RAFT_SET_TERM: metadata write failed");
	return RAFT_IOERR;
}
#endif

int node_init_raft(struct node *n, bool cold, char *errmsg)
{
	const struct config *c = &n->cfg;
	int rv;

	_Static_assert(IDENTITY_CLUSTER_ID_SIZE == RAFTGUARD_CLUSTER_ID_SIZE,
		       "one cluster ID size");
	/* c-raft's allocations through raftheap: the frees of a snapshot's
	 * compacted entries go to a worker (raftheap.h). */
	raftheap_install();
	rv = node_init_transport(n, errmsg);
	if (rv != RS_OK)
		return rv;
	/* raft_uv's io_destroy stalls the loop 30-50 ms (aiodefer.h). */
	{
		char why[RS_ERRMSG_SIZE];
		if (aiodefer_enable(why) != RS_OK)
			log_warn("raft.aio_defer_off", "error=\"%s\" "
				 "effect=\"each Raft log segment closed stalls "
				 "the loop\"", why);
	}
	rv = raft_uv_init(&n->io, &n->loop, n->raft_dir, &n->guard.transport);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "init Raft I/O in %s: %s", n->raft_dir,
				 raft_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	/* Open segments written with zeros, not only allocated: an append
	 * then waits for no journal commit of the filesystem (segfill.h). */
	{
		char why[RS_ERRMSG_SIZE];
		if (segfill_enable(n->raft_dir, why) != RS_OK)
			log_warn("raft.segment_fill_off", "error=\"%s\" "
				 "effect=\"each Raft log append waits for a "
				 "filesystem journal commit\"", why);
	}
	/* A snapshot's file written back in pieces before raft_uv's fsync,
	 * not in one burst every log append on the disk waits behind
	 * (snapsync.h). */
	{
		char why[RS_ERRMSG_SIZE];
		if (snapsync_enable(n->raft_dir, why) != RS_OK)
			log_warn("raft.snapshot_pacing_off", "error=\"%s\" "
				 "effect=\"each Raft snapshot written stalls "
				 "the log appends on its disk\"", why);
#ifdef RS_FAULT_HOOKS
		if (getenv("RS_FAULT_SNAPSHOT_SYNC_DELAY_MS") != NULL)
			snapsync_set_fault_delay_ms((unsigned)strtoul(
				getenv("RS_FAULT_SNAPSHOT_SYNC_DELAY_MS"), NULL,
				10));
#endif
	}
	raft_uv_set_snapshot_compression(&n->io, true);
	/* Segments of 1 MiB, not raft_uv's 8 MiB.  A restarted node reads
	 * its open segments whole, then truncates the one in use and deletes
	 * and re-creates (and segfill writes) the two prepared ones: 56 MiB
	 * of I/O at 8 MiB, on the disk the other nodes' log appends wait on
	 * (issue 13's benchmark: every commit stalled 20-23 ms at a
	 * follower's restart, 9-12 ms with 1 MiB; puts/s unchanged).  A
	 * larger batch still goes into one segment (raft_uv 0.15 lets it
	 * grow past the size). */
	raft_uv_set_segment_size(&n->io, NODE_RAFT_SEGMENT_SIZE);
	/* raft_uv retries a failed connection after 1 s: a leader reached a
	 * restarted follower up to 1 s after it listened (issue 13's
	 * benchmark: re-admitted 0.55 s after its start).  A refused connect
	 * costs a SYN; retry at the heartbeat's pace, at most 20 a second. */
	raft_uv_set_connect_retry_delay(&n->io, c->heartbeat_timeout_ms > 50
							? c->heartbeat_timeout_ms
							: 50);
	/* never rename damaged segments away silently: raftseg refuses them */
	raft_uv_set_auto_recovery(&n->io, false);
	/* c-raft does not stop on a failed log write (#321): we do. */
	raftio_guard_install(&n->io, &n->loop, n->raft_dir, node_fatal, n);
	/* raft_uv 0.15 drops the message whose write found a connection
	 * broken (c-raft guard 16): send it again once.  Under raftmend,
	 * whose reply cap must apply to the second try too. */
	rv = raftresend_install(&n->io);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "guard Raft sends: %s",
				 rs_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
#ifdef RS_FAULT_HOOKS
	if (getenv("RS_FAULT_RAFT_SET_TERM") != NULL &&
	    strcmp(getenv("RS_FAULT_RAFT_SET_TERM"), "fail") == 0)
		n->io.set_term = node_fault_set_term;
#endif
	rv = raft_init(&n->raft, &n->io, &n->fsm.raft, c->id, c->raft_addr);
	if (rv != 0) {
		rs_errmsg_printf(errmsg, "init Raft: %s", raft_errmsg(&n->raft));
		return NODE_EXIT_FAILURE;
	}
	n->raft.data = n;
	/* c-raft 0.15 turns unavailable on an AppendEntries that reaches below
	 * its snapshot (c-raft guard 12): mend those before it sees them. */
	rv = raftmend_install(&n->io);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "guard Raft messages: %s",
				 rs_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	/* c-raft 0.15 sees its timers run out only on its tick, every
	 * heartbeat timeout, and nodes started together tick together
	 * (c-raft guard 14): tick ten times as often. */
	rv = rafttick_install(&n->io,
			      rafttick_pace_ms(c->heartbeat_timeout_ms));
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "pace Raft's tick: %s",
				 rs_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	/* c-raft 0.15 refuses votes while it knows a leader, however long
	 * gone; a follower that saw its leader's connection end judges them
	 * (c-raft guard 17), so the first survivor to stand can win. */
	rv = raftvote_install(&n->io, &n->raft, node_leader_gone, n);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "guard Raft votes: %s",
				 rs_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	/* c-raft 0.15 commits a follower's answer only up to the leader's own
	 * last stored index, and counts an older term's entries (c-raft
	 * guard 21): commit by Raft's rule instead. */
	rv = raftcommit_install(&n->io, &n->raft);
	if (rv != RS_OK) {
		rs_errmsg_printf(errmsg, "guard Raft commits: %s",
				 rs_strerror(rv));
		return NODE_EXIT_FAILURE;
	}
	raft_set_election_timeout(&n->raft, c->election_timeout_ms);
	raft_set_heartbeat_timeout(&n->raft, c->heartbeat_timeout_ms);
	fsm_snapshot_by_bytes(&n->fsm, &n->raft,
			      (uint64_t)c->snapshot_log_mib << 20,
			      c->snapshot_threshold);
	/* Each node its own cuts, each start new ones (snappolicy.h). */
	fsm_snapshot_jitter(&n->fsm, ((uint64_t)c->id << 48) ^ uv_hrtime() ^
					     ((uint64_t)getpid() << 20));
	raft_set_snapshot_trailing(&n->raft, c->snapshot_trailing);
	raft_set_pre_vote(&n->raft, true);
	/* c-raft 0.15 drops an InstallSnapshot that arrives while the follower
	 * takes its own snapshot (RAFT_BUSY) and the leader only resends after
	 * this timeout (30 s by default): keep it short. */
	raft_set_install_snapshot_timeout(&n->raft,
					  c->election_timeout_ms * 5 > 2000
						  ? c->election_timeout_ms * 5
						  : 2000);
	/* A joining node has no configuration of its own: the leader sends
	 * it one (in a snapshot or the log) once it is a member. */
	return cold && !n->cfg.join[0] ? node_bootstrap(n, errmsg) : RS_OK;
}

int node_decide(struct node *n, bool *cold, char *errmsg)
{
	bool raft_state = node_raft_state_exists(n->raft_dir);
	uint64_t applied = store_applied_version(n->store);
	int rv;

	if (!raft_state && applied > 0) {
		rs_errmsg_printf(errmsg,
				 "%s holds data up to version %" PRIu64 " but %s has no "
				 "Raft state; refusing to start a new cluster over it",
				 n->store_dir, applied, n->raft_dir);
		return NODE_EXIT_MISMATCH;
	}
	*cold = !raft_state;
	rv = node_members(n, errmsg);
	if (rv != RS_OK)
		return rv;
	if (n->n_peers == 0) {
		rs_errmsg_printf(errmsg, *cold ? "--initial-cluster (or --join) is required on a "
						 "cold start (empty data dir)"
					       : "the cluster members are not "
						 "recorded in %s yet; pass "
						 "--initial-cluster",
				 n->store_dir);
		return *cold ? NODE_EXIT_USAGE : NODE_EXIT_MISMATCH;
	}
	log_info("node.start_mode", "mode=%s applied_version=%" PRIu64,
		 *cold ? "cold" : "warm", applied);
	return node_check_self(n, errmsg);
}

/* c-raft 0.15 says only "I/O error" when its listener cannot be bound:
 * bind the Raft address ourselves to learn why.  The errno, or 0 if the
 * address binds (or is not one this probe can try). */
static int node_probe_listen(const char *addr)
{
	char host[CONFIG_ADDR_MAX];
	const char *colon = strrchr(addr, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd, one = 1, err = 0;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
		return 0;
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1"
							       : host,
		      &sa.sin_addr) != 1)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	/* as libuv binds: a port in TIME_WAIT is not "in use" */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(fd, 1) != 0)
		err = errno;
	close(fd);
	return err;
}

int node_raft_start_failed(struct node *n, int rv, char *errmsg)
{
	const char *why[] = {n->transport.errmsg, n->io.errmsg,
			     raft_errmsg(&n->raft)};
	const char *cause = raft_strerror(rv);
	int err = node_probe_listen(n->cfg.raft_addr);

	if (err != 0) {
		rs_errmsg_errno(errmsg, err, "start Raft from %s: listen on %s",
				n->raft_dir, n->cfg.raft_addr);
		return NODE_EXIT_MISMATCH;
	}
	for (int i = 2; i >= 0; i--)
		if (why[i] != NULL && why[i][0] != '\0')
			cause = why[i];
	rs_errmsg_printf(errmsg, "start Raft from %s: %s", n->raft_dir, cause);
	return NODE_EXIT_FAILURE;
}

/* After raft_start: every server of the configuration c-raft loaded is a
 * member, at the same Raft address.  When the members come from storage
 * (or a --join answer), the two may differ by a member while a change is
 * under way (node_members.c): a member recorded and not yet in Raft, or a
 * server whose record this node's store has not applied yet; that is
 * logged, not refused.  Members taken from --initial-cluster (a store that
 * has not recorded any yet) must match the configuration exactly: the
 * flags are then the only other witness.  A server whose address differs
 * is always refused. */
int node_check_raft_config(struct node *n, char *errmsg)
{
	const struct raft_configuration *conf = raftinfo_configuration(&n->raft);
	bool strict = n->peers_from_flags && conf->n > 0;

	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *sv = &conf->servers[i];
		const struct config_peer *p = node_peer(n, sv->id);

		if ((p != NULL && strcmp(p->raft_addr, sv->address) != 0) ||
		    (p == NULL && strict)) {
			rs_errmsg_printf(errmsg,
					 "the Raft configuration stored in %s has "
					 "node %llu at %s; the members (%s) %s%s",
					 n->raft_dir,
					 (unsigned long long)sv->id, sv->address,
					 n->coordinators,
					 p ? "have it at " : "do not name it",
					 p ? p->raft_addr : "");
			return NODE_EXIT_MISMATCH;
		}
		if (p == NULL)
			log_warn("node.member_not_recorded_yet",
				 "node=%llu raft_addr=%s members=%s",
				 (unsigned long long)sv->id, sv->address,
				 n->coordinators);
	}
	if (strict && conf->n != n->n_peers) {
		rs_errmsg_printf(errmsg, "the members %s differ from the Raft "
					 "configuration stored in %s (%u servers)",
				 n->coordinators, n->raft_dir, conf->n);
		return NODE_EXIT_MISMATCH;
	}
	if (conf->n != n->n_peers)
		log_info("node.members_differ", "raft_servers=%u members=%u "
			 "reason=\"a member change is under way or this node "
			 "is joining\"", conf->n, n->n_peers);
	return RS_OK;
}

/* Warm start: the stored layout (the next director's input) must decode.
 * A layout that does not is never silently replaced, unless the operator
 * says so with --ignore-bad-layout. */
int node_check_layout(struct node *n, char *errmsg)
{
	const uint8_t *val;
	uint32_t len;
	uint64_t written = 0;
	struct tsl t;
	char inner[RS_ERRMSG_SIZE];
	int rv = store_get(n->store, DIRECTOR_KEY_LAYOUT,
			   strlen(DIRECTOR_KEY_LAYOUT),
			   store_applied_version(n->store), &val, &len, &written);

	if (rv != RS_OK)
		return RS_OK; /* none yet */
	rv = tsl_decode(val, len, &t, inner);
	if (rv == RS_OK)
		return RS_OK;
	if (n->cfg.ignore_bad_layout) {
		log_warn("node.bad_layout_ignored", "key=\"\\xff/system/layout\" "
			 "version=%" PRIu64 " error=\"%s\"", written, inner);
		return RS_OK;
	}
	rs_errmsg_printf(errmsg,
			 "stored key \\xff/system/layout (written at version %" PRIu64
			 ") does not decode: %s; refusing to start (pass "
			 "--ignore-bad-layout to let the next recovery replace it)",
			 written, inner);
	return NODE_EXIT_MISMATCH;
}
