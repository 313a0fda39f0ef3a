package evidence_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/phiguard/phiguard/internal/evidence"
)

// flakySink fails every Put while down is set.
type flakySink struct {
	evidence.Sink
	down atomic.Bool
	puts atomic.Int32
}

func (f *flakySink) Put(ctx context.Context, name string, data []byte) error {
	if f.down.Load() {
		return errors.New("connection refused")
	}
	f.puts.Add(1)
	return f.Sink.Put(ctx, name, data)
}

// health remembers what a writer said about its sink.
type health struct {
	mu      sync.Mutex
	changes []bool
}

func (h *health) set(degraded bool, _ string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, degraded)
}

func (h *health) seen() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bool(nil), h.changes...)
}

// startWriter runs a writer until the returned stop is called.
func startWriter(t *testing.T, o evidence.WriterOptions) (*evidence.Writer, func()) {
	t.Helper()
	w, err := evidence.NewWriter(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("writer: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

// messages returns the messages of every stored record, in chain order.
func messages(t *testing.T, sink evidence.Sink) []string {
	t.Helper()
	recs, err := evidence.ReadRecords(t.Context(), sink, evidence.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Message)
	}
	return out
}

func numbered(to int) []string {
	out := make([]string, 0, to)
	for i := 1; i <= to; i++ {
		out = append(out, fmt.Sprintf("record %d", i))
	}
	return out
}

func TestWriterStoresWhatWasBufferedWhenTheSinkReturns(t *testing.T) {
	g := NewWithT(t)
	signer, keys := newSigner(t)
	dir, _ := evidence.NewDirSink(t.TempDir())
	sink := &flakySink{Sink: dir}
	sink.down.Store(true)
	h := &health{}
	w, stop := startWriter(t, evidence.WriterOptions{
		Sink: sink, Signer: signer, Cluster: "c", Shard: "controller", SpoolDir: t.TempDir(),
		SegmentInterval: 20 * time.Millisecond, OnHealth: h.set,
	})
	for i := 1; i <= 50; i++ {
		w.Record(record(i, time.Now()))
	}
	// Before the first record, an empty flush may have said healthy.
	g.Eventually(h.seen).Should(Or(Equal([]bool{true}), Equal([]bool{false, true})), "the writer says the sink is degraded")
	g.Consistently(sink.puts.Load, "100ms", "10ms").Should(BeZero())

	sink.down.Store(false)
	for i := 51; i <= 60; i++ {
		w.Record(record(i, time.Now()))
	}
	g.Eventually(func() []string { return messages(t, sink) }).Should(Equal(numbered(60)))
	g.Eventually(h.seen).Should(Or(Equal([]bool{true, false}), Equal([]bool{false, true, false})))
	stop()
	rep, err := evidence.Verify(t.Context(), sink, evidence.VerifyOptions{Keys: keys})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Broken).ToNot(HaveOccurred())
}

func TestANewWriterContinuesTheChain(t *testing.T) {
	g := NewWithT(t)
	signer, keys := newSigner(t)
	sink, _ := evidence.NewDirSink(t.TempDir())
	o := evidence.WriterOptions{Sink: sink, Signer: signer, Cluster: "c", Shard: "controller", SegmentInterval: 10 * time.Millisecond, LeaderOnly: true}

	// The first leader writes, and stops (or loses its lease).
	o.SpoolDir = t.TempDir()
	first, stop := startWriter(t, o)
	g.Expect(first.NeedLeaderElection()).To(BeTrue())
	for i := 1; i <= 10; i++ {
		first.Record(record(i, time.Now()))
	}
	g.Eventually(func() []string { return messages(t, sink) }).Should(Equal(numbered(10)))
	stop()

	// The next leader, on another replica with its own buffer, continues.
	o.SpoolDir = t.TempDir()
	next, _ := startWriter(t, o)
	for i := 11; i <= 20; i++ {
		next.Record(record(i, time.Now()))
	}
	g.Eventually(func() []string { return messages(t, sink) }).Should(Equal(numbered(20)))
	rep, err := evidence.Verify(t.Context(), sink, evidence.VerifyOptions{Keys: keys})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Broken).ToNot(HaveOccurred())
	g.Expect(rep.Shards[0].Seq).To(BeNumerically("==", 20))
	g.Expect(rep.Shards[0].Segments).To(BeNumerically(">=", 2))
}

func TestTwoWritersOnOneShardKeepOneChain(t *testing.T) {
	// During a leader change the old leader may still be storing while the
	// new one starts: a segment name taken is read again, never overwritten.
	g := NewWithT(t)
	signer, keys := newSigner(t)
	sink, _ := evidence.NewDirSink(t.TempDir())
	o := evidence.WriterOptions{Sink: sink, Signer: signer, Cluster: "c", Shard: "controller", SegmentInterval: 5 * time.Millisecond}
	o.SpoolDir = t.TempDir()
	a, _ := startWriter(t, o)
	o.SpoolDir = t.TempDir()
	b, _ := startWriter(t, o)
	for i := 1; i <= 200; i++ {
		if i%2 == 0 {
			a.Record(record(i, time.Now()))
		} else {
			b.Record(record(i, time.Now()))
		}
		if i%20 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	g.Eventually(func() int { return len(messages(t, sink)) }).Should(Equal(200))
	rep, err := evidence.Verify(t.Context(), sink, evidence.VerifyOptions{Keys: keys})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Broken).ToNot(HaveOccurred())
	g.Expect(messages(t, sink)).To(ConsistOf(numbered(200)))
}

func TestAFullBufferDropsVisibly(t *testing.T) {
	g := NewWithT(t)
	signer, _ := newSigner(t)
	dir, _ := evidence.NewDirSink(t.TempDir())
	sink := &flakySink{Sink: dir}
	sink.down.Store(true)
	h := &health{}
	w, err := evidence.NewWriter(evidence.WriterOptions{Sink: sink, Signer: signer, Cluster: "c", Shard: "s",
		SpoolDir: t.TempDir(), MaxBufferBytes: 2048, OnHealth: h.set})
	g.Expect(err).NotTo(HaveOccurred())
	for i := 1; i <= 20; i++ {
		w.Record(record(i, time.Now()))
	}
	g.Expect(h.seen()).To(Equal([]bool{true}), "dropping is reported as degraded")
}

// The helper process of TestKilledWhileWritingLeavesAVerifiableChain: it
// records numbered records as fast as it can until it is killed.
func TestMain(m *testing.M) {
	logf.SetLogger(logr.Discard())
	if dir := os.Getenv("EVIDENCE_KILL_DIR"); dir != "" {
		os.Exit(writeUntilKilled(dir))
	}
	os.Exit(m.Run())
}

func writeUntilKilled(dir string) int { //nolint:unparam // it returns only when it fails; a kill ends it
	raw, err := hex.DecodeString(os.Getenv("EVIDENCE_KILL_KEY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sink, err := evidence.NewDirSink(filepath.Join(dir, "sink"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w, err := evidence.NewWriter(evidence.WriterOptions{Sink: sink, Signer: evidence.NewSigner(ed25519.PrivateKey(raw)),
		Cluster: "c", Shard: "controller", SpoolDir: filepath.Join(dir, "spool"), SegmentInterval: 3 * time.Millisecond, MaxSegmentRecords: 40})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go func() { _ = w.Start(context.Background()) }()
	start, _ := strconv.Atoi(os.Getenv("EVIDENCE_KILL_FROM"))
	for i := start; ; i++ {
		w.Record(record(i, time.Now()))
		if i == start+200 {
			// Tell the test that writing is under way.
			_ = os.WriteFile(filepath.Join(dir, "started"), nil, 0o600)
		}
	}
}

// TestKilledWhileWritingLeavesAVerifiableChain SIGKILLs a process that is
// writing evidence, three times, restarting it each time on the same buffer
// and sink: the chain verifies, and the records stored are a gap-free prefix
// of those recorded in each life (no torn record, none lost in between).
func TestKilledWhileWritingLeavesAVerifiableChain(t *testing.T) {
	g := NewWithT(t)
	signer, keys := newSigner(t)
	dir := t.TempDir()
	sink, err := evidence.NewDirSink(filepath.Join(dir, "sink"))
	g.Expect(err).NotTo(HaveOccurred())
	from := 1
	for life := range 3 {
		_ = os.Remove(filepath.Join(dir, "started"))
		// #nosec G204 -- the test binary itself
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "EVIDENCE_KILL_DIR="+dir, "EVIDENCE_KILL_KEY="+hex.EncodeToString(signer.Key),
			"EVIDENCE_KILL_FROM="+strconv.Itoa(from))
		cmd.Stderr = os.Stderr
		g.Expect(cmd.Start()).To(Succeed())
		g.Eventually(func() error { _, err := os.Stat(filepath.Join(dir, "started")); return err }, "20s").Should(Succeed(), "life %d", life)
		time.Sleep(time.Duration(20+life*30) * time.Millisecond)
		g.Expect(cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		_ = cmd.Wait()
		from += 1000000
	}

	// A last writer on the same buffer stores what the killed ones left.
	w, stop := startWriter(t, evidence.WriterOptions{Sink: sink, Signer: signer, Cluster: "c", Shard: "controller",
		SpoolDir: filepath.Join(dir, "spool"), SegmentInterval: 10 * time.Millisecond})
	g.Eventually(func() int { return w.Pending() }, "10s").Should(BeZero())
	stop()

	rep, err := evidence.Verify(t.Context(), sink, evidence.VerifyOptions{Keys: keys})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Broken).ToNot(HaveOccurred())
	got := messages(t, sink)
	g.Expect(len(got)).To(BeNumerically(">", 600))
	// Each life's records are numbered from its own start: each is a prefix.
	lives := map[int][]int{}
	for _, m := range got {
		var n int
		_, err := fmt.Sscanf(m, "record %d", &n)
		g.Expect(err).NotTo(HaveOccurred())
		lives[n/1000000] = append(lives[n/1000000], n)
	}
	g.Expect(lives).To(HaveLen(3))
	for life, ns := range lives {
		for i, n := range ns {
			g.Expect(n).To(Equal(life*1000000+1+i), "life %d lost or reordered a record", life)
		}
	}
}
