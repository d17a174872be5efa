// Idle connections (--idle N) and the servers' memory and CPU time
// (--server-pids).
//
// --idle N opens N clientv3.Client instances before the timed run, each
// with one serializable Get so that its connection is really up, and keeps
// them open and unused until the run has ended.  Each is one gRPC
// connection, so one TCP connection, to the endpoint the run uses.  With
// --server-pids the servers' summed RSS is read before they open, after they
// are open and after the run: the first difference over N is the memory
// per idle connection.
package main

import (
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

// sumPids sums one(pid) over the processes in pids ("1,2,3"); -1 if pids
// is empty or one says -1.
func sumPids(pids string, one func(pid string) float64) float64 {
	if pids == "" {
		return -1
	}
	var total float64
	for _, p := range strings.Split(pids, ",") {
		v := one(strings.TrimSpace(p))
		if v < 0 {
			return -1
		}
		total += v
	}
	return total
}

// rssKiB sums VmRSS (KiB) of the processes in pids; -1 if one cannot be
// read.
func rssKiB(pids string) int64 {
	return int64(sumPids(pids, func(pid string) float64 {
		b, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			return -1
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				if kib, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return float64(kib)
				}
			}
		}
		return -1
	}))
}

// serversCPU sums the user+system CPU seconds of the processes in pids
// since they started (/proc/PID/stat); -1 if one cannot be read.
func serversCPU(pids string) float64 {
	return sumPids(pids, func(pid string) float64 {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return -1
		}
		// After "pid (comm)": state and 10 more fields, then utime and
		// stime (fields 14 and 15 of proc(5)), in clock ticks.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			return -1
		}
		u, err1 := strconv.ParseFloat(f[11], 64)
		st, err2 := strconv.ParseFloat(f[12], 64)
		if err1 != nil || err2 != nil {
			return -1
		}
		return (u + st) / clockTicks
	})
}

// clockTicks is sysconf(_SC_CLK_TCK), 100 on every Linux architecture Go
// builds for (the kernel's USER_HZ).
const clockTicks = 100

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

// idleFields are the RESULT fields of a run with --idle or --server-pids.
func idleFields(n int, before, open, after int64) string {
	per := 0.0
	if n > 0 && before >= 0 && open >= 0 {
		per = float64(open-before) / float64(n)
	}
	return fmt.Sprintf(" idle=%d server_rss_kib=%d idle_rss_kib=%d kib_per_idle_conn=%.1f", n, after, open, per)
}
