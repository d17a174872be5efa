// Idle connections (--idle N) and the servers' memory (--rss-pids).
//
// --idle N opens N clientv3.Client instances before the timed run, each
// with one serializable Get so that its connection is really up, and keeps
// them open and unused until the run has ended.  Each is one gRPC
// connection, so one TCP connection, to the endpoint the run uses.  With
// --rss-pids the servers' summed RSS is read before they open, after they
// are open and after the run: the first difference over N is the memory
// per idle connection.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

// rssKiB sums VmRSS (KiB) of the processes in pids ("1,2,3"); -1 if pids
// is empty or one of them cannot be read.
func rssKiB(pids string) int64 {
	if pids == "" {
		return -1
	}
	var total int64
	for _, p := range strings.Split(pids, ",") {
		f, err := os.Open("/proc/" + strings.TrimSpace(p) + "/status")
		if err != nil {
			return -1
		}
		kib := int64(-1)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "VmRSS:" {
				kib, _ = strconv.ParseInt(fields[1], 10, 64)
			}
		}
		f.Close()
		if kib < 0 {
			return -1
		}
		total += kib
	}
	return total
}

// openIdle opens n clients on endpoints, 64 at a time; each has answered
// one serializable Get when it returns.
func openIdle(n int, endpoints []string, dial, opTimeout time.Duration) []*clientv3.Client {
	clients := make([]*clientv3.Client, n)
	var next int64 = -1
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 64 && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(n) {
					return
				}
				c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: dial})
				if err == nil {
					ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
					_, err = c.Get(ctx, "idle", clientv3.WithSerializable())
					cancel()
				}
				if err != nil {
					firstErr.Store(err.Error())
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(string); ok {
		fail("opening %d idle connections: %s", n, e)
	}
	return clients
}

func closeAll(clients []*clientv3.Client) {
	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
}

// idleFields are the RESULT fields of a run with --idle or --rss-pids.
func idleFields(n int, before, open, after int64) string {
	per := 0.0
	if n > 0 && before >= 0 && open >= 0 {
		per = float64(open-before) / float64(n)
	}
	return fmt.Sprintf(" idle=%d server_rss_kib=%d idle_rss_kib=%d kib_per_idle_conn=%.1f", n, after, open, per)
}
