// Watch mode (--op watch): the same measurement as `rsbench watch`, on etcd.
//
// W watchers watch the prefix P from the revision just after setup; one
// writer puts at a fixed rate R for S seconds (open loop: each put runs in
// a goroutine of its own, so a slow commit does not slow the writer), each
// a single key P%04d (K keys written round-robin) whose value carries the
// write's sequence number and its send time.  Each watcher takes the
// latency of each event as now - send time (write -> commit -> delivery;
// put_p50_ms says how much of it the commit is) and checks that it sees
// every acknowledged write exactly once, in revision order, at the
// revision the writer was told.
//
// Connections: the watchers use --conns clientv3.Client instances (watcher
// i uses client i mod C; default 1).  clientv3 puts all the watches of one
// client on one gRPC stream, so C is the number of TCP connections the
// watches use; the writer has a client of its own.
//
// Setup barrier: the writer first puts P"ready" and waits until every
// watcher has it.  With --server-pids the servers' summed RSS is read before
// the watches start and after the barrier, and their CPU time over the
// timed phase is reported beside this process's own.
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

const watchValueMin = 16 // sequence number and send time

type watchPut struct {
	sent    time.Duration // since the run's base time
	acked   time.Duration
	version atomic.Int64 // mod revision, once acknowledged
	ok      atomic.Bool
}

type watcher struct {
	seen      []byte // bit per write sequence number
	last      atomic.Int64
	lastEvent atomic.Int64 // ns since base
	lat       []float32
	ready     bool
	ended     atomic.Bool
	endMsg    string
	// counted by the watcher's goroutine, read after it stopped
	reordered, duplicated, mismatched, outOfRange int64
}

type watchBench struct {
	base      time.Time
	prefix    string
	nKeys     int
	writes    int64
	puts      []watchPut
	nReady    atomic.Int64
	nEnded    atomic.Int64
	valueSize int
}

func (b *watchBench) key(seq int64) string {
	if seq == 0 {
		return b.prefix + "ready"
	}
	return fmt.Sprintf("%s%04d", b.prefix, seq%int64(b.nKeys))
}

func (b *watchBench) now() time.Duration { return time.Since(b.base) }

// check one PUT event for w.
func (b *watchBench) check(w *watcher, rev int64, val []byte) {
	now := b.now()
	if len(val) < watchValueMin {
		w.outOfRange++
		return
	}
	seq := int64(binary.LittleEndian.Uint64(val))
	sent := time.Duration(binary.LittleEndian.Uint64(val[8:]))
	if seq < 0 || seq > b.writes {
		w.outOfRange++
		return
	}
	if w.seen[seq/8]&(1<<(seq%8)) != 0 {
		w.duplicated++
		return
	}
	w.seen[seq/8] |= 1 << (seq % 8)
	if v := b.puts[seq].version.Load(); v != 0 && v != rev {
		w.mismatched++
	}
	if seq == 0 {
		w.ready = true
		b.nReady.Add(1)
		return
	}
	w.lastEvent.Store(int64(now))
	w.lat = append(w.lat, float32(float64(now-sent)/float64(time.Millisecond)))
}

func (b *watchBench) run(ctx context.Context, w *watcher, wch clientv3.WatchChan, done *sync.WaitGroup) {
	defer done.Done()
	for resp := range wch {
		if err := resp.Err(); err != nil || resp.Canceled {
			if ctx.Err() == nil && !w.ended.Swap(true) {
				w.endMsg = fmt.Sprintf("watch ended: %v", err)
				b.nEnded.Add(1)
			}
			return
		}
		for _, ev := range resp.Events {
			rev := ev.Kv.ModRevision
			if rev <= w.last.Load() {
				w.reordered++
			} else {
				w.last.Store(rev)
			}
			if ev.Type == clientv3.EventTypePut {
				b.check(w, rev, ev.Kv.Value)
			}
		}
	}
	if ctx.Err() == nil && !w.ended.Swap(true) {
		w.endMsg = "watch channel closed"
		b.nEnded.Add(1)
	}
}

func (b *watchBench) put(cli *clientv3.Client, seq int64, value []byte, timeout time.Duration) {
	p := &b.puts[seq]
	v := make([]byte, len(value))
	copy(v, value)
	p.sent = b.now()
	binary.LittleEndian.PutUint64(v, uint64(seq))
	binary.LittleEndian.PutUint64(v[8:], uint64(p.sent))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	resp, err := cli.Put(ctx, b.key(seq), string(v))
	cancel()
	p.acked = b.now()
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcdbench: put %d: %v\n", seq, err)
		return
	}
	p.version.Store(resp.Header.Revision)
	p.ok.Store(true)
}

func waitFor(timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func pct32(v []float32, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return float64(v[int(p*float64(len(v)-1)+0.5)])
}

type watchOptions struct {
	endpoints           []string
	dial, opTimeout     time.Duration
	watchers, conns     int
	rate, duration      float64
	drain, readyTimeout time.Duration
	prefix, serverPids  string
	keys, valueSize     int
}

func runWatch(o watchOptions) int {
	b := &watchBench{base: time.Now(), prefix: o.prefix, nKeys: o.keys, valueSize: o.valueSize}
	b.writes = int64(o.rate * o.duration)
	if b.writes < 1 {
		b.writes = 1
	}
	b.puts = make([]watchPut, b.writes+1)
	newClient := func() *clientv3.Client {
		c, err := clientv3.New(clientv3.Config{Endpoints: o.endpoints, DialTimeout: o.dial})
		if err != nil {
			fail("connect %v: %v", o.endpoints, err)
		}
		return c
	}
	writer := newClient()
	defer writer.Close()
	clients := make([]*clientv3.Client, o.conns)
	for i := range clients {
		clients[i] = newClient()
		defer clients[i].Close()
	}
	ctx0, cancel0 := context.WithTimeout(context.Background(), o.opTimeout)
	head, err := writer.Get(ctx0, o.prefix+"ready")
	cancel0()
	if err != nil {
		fail("read the current revision: %v", err)
	}
	from := head.Header.Revision + 1
	rss0 := rssKiB(o.serverPids)
	fmt.Fprintf(os.Stderr, "etcdbench: %d watchers on %d clients (%v) from revision %d, %d writes at %.0f/s\n",
		o.watchers, o.conns, o.endpoints, from, b.writes, o.rate)

	ws := make([]watcher, o.watchers)
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	tSetup := time.Now()
	for i := range ws {
		ws[i].seen = make([]byte, b.writes/8+1)
		ws[i].lat = make([]float32, 0, b.writes)
		wch := clients[i%o.conns].Watch(ctx, o.prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
		running.Add(1)
		go b.run(ctx, &ws[i], wch, &running)
	}
	value := make([]byte, o.valueSize)
	for i := range value {
		value[i] = 'v'
	}
	b.put(writer, 0, value, o.opTimeout)
	ready := b.puts[0].ok.Load() && waitFor(o.readyTimeout, func() bool {
		return b.nReady.Load()+b.nEnded.Load() >= int64(o.watchers)
	})
	setup := time.Since(tSetup).Seconds()
	if !ready {
		fail("only %d of %d watchers started in %.0f s", b.nReady.Load(), o.watchers, setup)
	}
	rss1 := rssKiB(o.serverPids)
	fmt.Fprintf(os.Stderr, "etcdbench: %d watchers ready in %.2f s\n", b.nReady.Load(), setup)

	// The writer: write seq at t0 + (seq-1)/rate.
	var puts sync.WaitGroup
	serverCPU0, clientCPU0 := serversCPU(o.serverPids), cpuSeconds()
	t0 := b.now()
	for seq := int64(1); seq <= b.writes; seq++ {
		at := t0 + time.Duration(float64(seq-1)/o.rate*float64(time.Second))
		if d := at - b.now(); d > 0 {
			time.Sleep(d)
		}
		puts.Add(1)
		go func(seq int64) {
			defer puts.Done()
			b.put(writer, seq, value, o.opTimeout)
		}(seq)
	}
	puts.Wait()
	var maxVersion int64
	var putLat []float32
	var writeErrors int64
	for s := int64(1); s <= b.writes; s++ {
		p := &b.puts[s]
		if !p.ok.Load() {
			writeErrors++
			continue
		}
		if v := p.version.Load(); v > maxVersion {
			maxVersion = v
		}
		putLat = append(putLat, float32(float64(p.acked-p.sent)/float64(time.Millisecond)))
	}
	waitFor(o.drain, func() bool {
		for i := range ws {
			if !ws[i].ended.Load() && ws[i].last.Load() < maxVersion {
				return false
			}
		}
		return true
	})
	serverCPU := serversCPU(o.serverPids)
	if serverCPU >= 0 {
		serverCPU -= serverCPU0
	}
	clientCPU := cpuSeconds() - clientCPU0
	cancel()
	running.Wait()

	var all []float32
	var lost, reordered, duplicated, mismatched int64
	var lastEvent time.Duration
	firstEnd := ""
	for i := range ws {
		w := &ws[i]
		all = append(all, w.lat...)
		reordered += w.reordered
		duplicated += w.duplicated + w.outOfRange
		mismatched += w.mismatched
		if le := time.Duration(w.lastEvent.Load()); le > lastEvent {
			lastEvent = le
		}
		if w.ended.Load() {
			if firstEnd == "" {
				firstEnd = w.endMsg
			}
			continue
		}
		for s := int64(1); s <= b.writes; s++ {
			if b.puts[s].ok.Load() && w.seen[s/8]&(1<<(s%8)) == 0 {
				lost++
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	sort.Slice(putLat, func(i, j int) bool { return putLat[i] < putLat[j] })
	secs := (lastEvent - t0).Seconds()
	if lastEvent <= t0 {
		secs = (b.now() - t0).Seconds()
	}
	perWatcher := 0.0
	if rss0 >= 0 && rss1 >= 0 {
		perWatcher = float64(rss1-rss0) / float64(o.watchers)
	}
	ended := b.nEnded.Load()
	fmt.Printf("RESULT system=etcd op=watch watchers=%d conns=%d rate=%.0f writes=%d write_errors=%d events=%d secs=%.2f events_per_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f put_p50_ms=%.3f lost=%d reordered=%d duplicated=%d mismatched=%d ended=%d setup_s=%.2f server_rss_kib=%d kib_per_watcher=%.1f server_cpu_s=%.2f client_cpu_s=%.2f\n",
		o.watchers, o.conns, o.rate, b.writes, writeErrors, len(all), secs,
		float64(len(all))/secs, pct32(all, 0.50), pct32(all, 0.99), pct32(all, 0.999),
		pct32(putLat, 0.50), lost, reordered, duplicated, mismatched, ended, setup,
		rss1, perWatcher, serverCPU, clientCPU)
	if ended > 0 {
		fmt.Fprintf(os.Stderr, "etcdbench: %d watches ended early; first: %s\n", ended, firstEnd)
	}
	if lost+reordered+duplicated+mismatched+ended > 0 || len(all) == 0 {
		return 1
	}
	return 0
}
