// etcdbench: a closed-loop load generator for etcd 3.4, used to benchmark
// raftstore side by side with etcd (see README.md beside this file).
//
// Each of --clients goroutines runs a closed loop (issue one request, wait
// for its reply, issue the next). The goroutines share --conns
// clientv3.Client connections round-robin (client i uses connection i%conns).
// Every successful op's latency is recorded; at the end one line is printed:
//
//	RESULT system=etcd op=<op> clients=<N> ops=<count> secs=<elapsed> ops_per_s=<x>
//	       p50_ms=<x> p99_ms=<x> p999_ms=<x> client_cpu_s=<x> errors=<n>
//
// (on a single line). --op watch measures watch fan-out instead (watch.go),
// and --idle N holds N idle connections open during the run (idle.go).
// --timeline FILE also writes every completed request (timeline.go), for
// scripts/bench-recovery.py's commit-gap analysis.
// Build offline from Debian's packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$OUT/etcdbench"
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

const (
	keyLen   = 16
	valueLen = 256
)

var (
	endpointsFlag = flag.String("endpoints", "127.0.0.1:2379", "comma-separated etcd client endpoints")
	opFlag        = flag.String("op", "put", "operation: put | get (linearizable) | sget (serializable) | watch (see watch.go)")
	clientsFlag   = flag.Int("clients", 1, "number of concurrent closed-loop clients (goroutines)")
	connsFlag     = flag.Int("conns", 0, "number of clientv3.Client connections shared round-robin (default min(clients,8))")
	durationFlag  = flag.Float64("duration", 10, "run length in seconds (ignored when --count is set)")
	keysFlag      = flag.Int("keys", 10000, "get/sget: number of keys preloaded and read at random")
	countFlag     = flag.Int64("count", 0, "stop after this many ops in total (0 = run for --duration)")
	prefixFlag    = flag.String("prefix", "", "key prefix (default \"k\" for put, \"r\" for get/sget); keys are padded to 16 bytes")
	timeoutFlag   = flag.Float64("op-timeout", 10, "per-op timeout in seconds")
	dialFlag      = flag.Float64("dial-timeout", 5, "connection dial timeout in seconds")
	watchersFlag  = flag.Int("watchers", 100, "watch: number of watchers on the prefix")
	rateFlag      = flag.Float64("rate", 100, "watch: puts per second, at a fixed rate")
	valueSizeFlag = flag.Int("value-size", 64, "watch: value bytes (at least 16)")
	drainFlag     = flag.Float64("drain", 10, "watch: seconds to wait for the last deliveries")
	readyFlag     = flag.Float64("ready-timeout", 120, "watch: seconds for every watcher to start")
	serversFlag   = flag.String("server-pids", "", "comma-separated server PIDs whose summed VmRSS and CPU time are reported")
	idleFlag      = flag.Int("idle", 0, "put/get/sget: idle client connections held open during the run")
	timelineFlag  = flag.String("timeline", "", "put/get/sget: after the run, write every completed request to FILE (timeline.go); SIGINT then ends the run early")
	routeFlag     = flag.String("route", "leader", "leader: find the leader among --endpoints and send every request to it; all: give clientv3 all endpoints (its balancer round-robins requests over them, followers forward writes)")
)

// findLeader asks each endpoint for its status and returns the endpoint whose
// member is the raft leader, retrying for up to timeout (e.g. during an election).
func findLeader(endpoints []string, dial, timeout time.Duration) (string, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: dial})
	if err != nil {
		return "", err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		for _, ep := range endpoints {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := cli.Status(ctx, ep)
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			if st.Leader != 0 && st.Header != nil && st.Header.MemberId == st.Leader {
				return ep, nil
			}
		}
		if time.Now().After(deadline) {
			if lastErr == nil {
				lastErr = fmt.Errorf("no member reports itself as leader")
			}
			return "", lastErr
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// makeKey returns a 16-byte key: prefix followed by a zero-padded decimal index.
func makeKey(prefix string, i int64) string {
	w := keyLen - len(prefix)
	if w < 1 {
		fmt.Fprintf(os.Stderr, "etcdbench: prefix %q too long for %d-byte keys\n", prefix, keyLen)
		os.Exit(2)
	}
	k := fmt.Sprintf("%s%0*d", prefix, w, i)
	if len(k) != keyLen {
		fmt.Fprintf(os.Stderr, "etcdbench: key index %d does not fit in %d bytes with prefix %q\n", i, keyLen, prefix)
		os.Exit(2)
	}
	return k
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func percentileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	// nearest-rank: the smallest value with at least p of the samples <= it
	idx := int(float64(len(sorted))*p+0.999999999) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= len(sorted) {
		idx = len(sorted) - 1
	}
	return float64(sorted[idx]) / float64(time.Millisecond)
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcdbench: "+format+"\n", a...)
	os.Exit(1)
}

// preload puts keys prefix000..prefix(K-1) unless they are already all there.
func preload(conns []*clientv3.Client, prefix string, k int, value string, opTimeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	resp, err := conns[0].Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err == nil && resp.Count >= int64(k) {
		fmt.Fprintf(os.Stderr, "etcdbench: %d keys with prefix %q already present, skipping preload\n", resp.Count, prefix)
		return
	}
	start := time.Now()
	var next int64 = -1
	var errs int64
	var wg sync.WaitGroup
	workers := 64
	if workers > k {
		workers = k
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cli := conns[w%len(conns)]
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(k) {
					return
				}
				key := makeKey(prefix, i)
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
					_, err = cli.Put(ctx, key, value)
					cancel()
					if err == nil {
						break
					}
				}
				if err != nil {
					if atomic.AddInt64(&errs, 1) == 1 {
						fmt.Fprintf(os.Stderr, "etcdbench: preload put %s: %v\n", key, err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	if errs > 0 {
		fail("preload failed for %d of %d keys", errs, k)
	}
	fmt.Fprintf(os.Stderr, "etcdbench: preloaded %d keys in %.2fs\n", k, time.Since(start).Seconds())
}

func main() {
	flag.Parse()
	op := *opFlag
	if op != "put" && op != "get" && op != "sget" && op != "watch" {
		fail("--op must be put, get, sget or watch (got %q)", op)
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	nClients := *clientsFlag
	if nClients < 1 {
		fail("--clients must be >= 1")
	}
	nConns := *connsFlag
	if op == "watch" && nConns <= 0 {
		nConns = 1
	} else if nConns <= 0 {
		nConns = nClients
		if nConns > 8 {
			nConns = 8
		}
	}
	if op != "watch" && nConns > nClients {
		nConns = nClients
	}
	var endpoints []string
	for _, e := range strings.Split(*endpointsFlag, ",") {
		if e = strings.TrimSpace(e); e != "" {
			endpoints = append(endpoints, e)
		}
	}
	if len(endpoints) == 0 {
		fail("--endpoints is empty")
	}
	count := *countFlag
	duration := time.Duration(*durationFlag * float64(time.Second))
	if count <= 0 && duration <= 0 {
		fail("need --duration > 0 or --count > 0")
	}
	if (op == "get" || op == "sget") && *keysFlag < 1 {
		fail("--keys must be >= 1")
	}
	prefix := *prefixFlag
	if prefix == "" {
		if op == "put" {
			prefix = "k"
		} else if op == "watch" {
			prefix = "w/"
		} else {
			prefix = "r"
		}
	}
	opTimeout := time.Duration(*timeoutFlag * float64(time.Second))

	// One fixed 256-byte value (contents do not matter to etcd).
	vb := make([]byte, valueLen)
	for i := range vb {
		vb[i] = 'a' + byte(i%26)
	}
	value := string(vb)

	dial := time.Duration(*dialFlag * float64(time.Second))
	connEndpoints := endpoints
	switch *routeFlag {
	case "all":
	case "leader":
		if len(endpoints) > 1 {
			leader, err := findLeader(endpoints, dial, 10*time.Second)
			if err != nil {
				fail("finding the leader among %v: %v", endpoints, err)
			}
			connEndpoints = []string{leader}
		}
	default:
		fail("--route must be leader or all (got %q)", *routeFlag)
	}
	if op == "watch" {
		keys := 16
		if set["keys"] {
			keys = *keysFlag
		}
		if *watchersFlag < 1 || *rateFlag <= 0 || *durationFlag <= 0 || keys < 1 ||
			*valueSizeFlag < watchValueMin || nConns > *watchersFlag {
			fail("watch: --watchers, --rate, --duration and --keys must be positive, --value-size at least %d, --conns at most --watchers", watchValueMin)
		}
		os.Exit(runWatch(watchOptions{
			endpoints: connEndpoints, dial: dial, opTimeout: opTimeout,
			watchers: *watchersFlag, conns: nConns, rate: *rateFlag,
			duration: *durationFlag, keys: keys, valueSize: *valueSizeFlag,
			drain:        time.Duration(*drainFlag * float64(time.Second)),
			readyTimeout: time.Duration(*readyFlag * float64(time.Second)),
			prefix:       prefix, serverPids: *serversFlag,
		}))
	}
	fmt.Fprintf(os.Stderr, "etcdbench: op=%s clients=%d conns=%d route=%s endpoints=%s\n",
		op, nClients, nConns, *routeFlag, strings.Join(connEndpoints, ","))

	conns := make([]*clientv3.Client, nConns)
	for i := range conns {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   connEndpoints,
			DialTimeout: dial,
		})
		if err != nil {
			fail("connect %v: %v", endpoints, err)
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	if op == "get" || op == "sget" {
		preload(conns, prefix, *keysFlag, value, opTimeout)
	}
	rssBefore := rssKiB(*serversFlag)
	idle := openIdle(*idleFlag, connEndpoints, dial, opTimeout)
	defer closeAll(idle)
	rssOpen := rssKiB(*serversFlag)
	if *idleFlag > 0 {
		fmt.Fprintf(os.Stderr, "etcdbench: %d idle connections open\n", *idleFlag)
	}

	// Preallocate latency buffers: an upper estimate of ops per client.
	perClient := 0
	if count > 0 {
		perClient = int(count/int64(nClients)) + 1
	} else {
		est := int(duration.Seconds()*50000) / nClients // generous for a 2-core box
		if est > 4000000 {
			est = 4000000
		}
		perClient = est + 1024
	}
	lats := make([][]time.Duration, nClients)
	for i := range lats {
		lats[i] = make([]time.Duration, 0, perClient)
	}
	errCounts := make([]int64, nClients)
	tl := newTimeline(*timelineFlag, nClients)

	var next int64 = -1 // op index claim counter (also key index for put)
	var firstErr atomic.Value
	var getOpts []clientv3.OpOption
	if op == "sget" {
		getOpts = append(getOpts, clientv3.WithSerializable())
	}

	var wg sync.WaitGroup
	startGate := make(chan struct{})
	cpu0 := cpuSeconds()
	start := time.Now()
	deadline := start.Add(duration)
	for c := 0; c < nClients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cli := conns[c%nConns]
			rng := rand.New(rand.NewSource(int64(c)*7919 + time.Now().UnixNano()))
			my := lats[c]
			var myErrs int64
			<-startGate
			for {
				var i int64
				if tl.stopped() {
					break
				}
				if count > 0 {
					i = atomic.AddInt64(&next, 1)
					if i >= count {
						break
					}
				} else {
					if !time.Now().Before(deadline) {
						break
					}
					if op == "put" {
						i = atomic.AddInt64(&next, 1)
					}
				}
				var key string
				if op == "put" {
					key = makeKey(prefix, i)
				} else {
					key = makeKey(prefix, int64(rng.Intn(*keysFlag)))
				}
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				t0 := time.Now()
				var err error
				if op == "put" {
					_, err = cli.Put(ctx, key, value)
				} else {
					var resp *clientv3.GetResponse
					resp, err = cli.Get(ctx, key, getOpts...)
					if err == nil && len(resp.Kvs) != 1 {
						err = fmt.Errorf("get %s: key not found", key)
					}
				}
				lat := time.Since(t0)
				cancel()
				tl.record(c, t0.Add(lat), lat, err)
				if err != nil {
					myErrs++
					firstErr.Store(err.Error())
					continue
				}
				my = append(my, lat)
			}
			lats[c] = my
			errCounts[c] = myErrs
		}(c)
	}
	close(startGate)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	if err := tl.write(); err != nil {
		fail("--timeline: %v", err)
	}

	total := 0
	for _, l := range lats {
		total += len(l)
	}
	all := make([]time.Duration, 0, total)
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	var nErr int64
	for _, e := range errCounts {
		nErr += e
	}

	extra := ""
	if *idleFlag > 0 || *serversFlag != "" {
		extra = idleFields(*idleFlag, rssBefore, rssOpen, rssKiB(*serversFlag))
	}
	fmt.Printf("RESULT system=etcd op=%s clients=%d ops=%d secs=%.3f ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f client_cpu_s=%.3f errors=%d%s\n",
		op, nClients, len(all), elapsed, float64(len(all))/elapsed,
		percentileMs(all, 0.50), percentileMs(all, 0.99), percentileMs(all, 0.999),
		cpu, nErr, extra)
	if nErr > 0 {
		if s, ok := firstErr.Load().(string); ok {
			fmt.Fprintf(os.Stderr, "etcdbench: %d errors, e.g.: %s\n", nErr, s)
		}
	}
	if len(all) == 0 {
		for _, c := range conns {
			c.Close()
		}
		os.Exit(1)
	}
}
