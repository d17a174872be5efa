// timeline.go: --timeline FILE, every completed request of a put/get/sget
// run, for scripts/bench-recovery.py (the commit gaps around an etcd
// follower's SIGKILL and restart, measured as rsbench's --timeline is).
//
// The file, written after the run, sorted by completion:
//
//	# etcdbench timeline v1: done_mono_ns latency_us status
//	<done CLOCK_MONOTONIC ns> <latency us> <ok | timeout | error>
//
// CLOCK_MONOTONIC is the clock of Python's time.monotonic() and of
// rsbench's timeline, so a script lines the requests up with the moments
// it killed and restarted a member.  Go's monotonic clock is the same on
// Linux; its zero is not exposed, so one clock_gettime at the start gives
// the offset.  With --timeline, SIGINT (or SIGTERM) ends the run early:
// the loops stop, the file is written and the RESULT line printed.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

type tlEvent struct {
	done   time.Time
	lat    time.Duration
	status string
}

type timeline struct {
	path     string
	events   [][]tlEvent // per client
	stopping int32
	monoBase int64     // CLOCK_MONOTONIC ns at goBase
	goBase   time.Time // with Go's monotonic reading
}

// clockMonotonicNs reads CLOCK_MONOTONIC (1) with the raw system call.
func clockMonotonicNs() (int64, error) {
	var ts syscall.Timespec
	_, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1,
		uintptr(unsafe.Pointer(&ts)), 0)
	if e != 0 {
		return 0, e
	}
	return ts.Nano(), nil
}

// newTimeline returns nil when path is empty: record, stopped and write
// are then no-ops.
func newTimeline(path string, clients int) *timeline {
	if path == "" {
		return nil
	}
	f, err := os.Create(path) // fail before the run, not after
	if err != nil {
		fail("--timeline: %v", err)
	}
	f.Close()
	t := &timeline{path: path, events: make([][]tlEvent, clients)}
	t.goBase = time.Now()
	if t.monoBase, err = clockMonotonicNs(); err != nil {
		fail("--timeline: clock_gettime: %v", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		atomic.StoreInt32(&t.stopping, 1)
	}()
	return t
}

func (t *timeline) stopped() bool {
	return t != nil && atomic.LoadInt32(&t.stopping) != 0
}

// record is called by client c only, so its slice needs no lock.
func (t *timeline) record(c int, done time.Time, lat time.Duration, err error) {
	if t == nil {
		return
	}
	st := "ok"
	if errors.Is(err, context.DeadlineExceeded) {
		st = "timeout"
	} else if err != nil {
		st = "error"
	}
	t.events[c] = append(t.events[c], tlEvent{done, lat, st})
}

func (t *timeline) write() error {
	if t == nil {
		return nil
	}
	var all []tlEvent
	for _, e := range t.events {
		all = append(all, e...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a].done.Before(all[b].done) })
	f, err := os.Create(t.path)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, "# etcdbench timeline v1: done_mono_ns latency_us status")
	for _, e := range all {
		mono := t.monoBase + e.done.Sub(t.goBase).Nanoseconds()
		fmt.Fprintf(f, "%d %d %s\n", mono, e.lat.Microseconds(), e.status)
	}
	return f.Close()
}
