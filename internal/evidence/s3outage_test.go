package evidence_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/objectstore/objectstoretest"
)

// switchable is a TCP proxy to the store that can be taken down (its port
// refuses connections, open ones are cut) and brought back on the same port.
type switchable struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func (s *switchable) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.ln, s.addr = ln, ln.Addr().String()
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", s.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			s.mu.Lock()
			s.conns = append(s.conns, c, up)
			s.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

func (s *switchable) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.ln.Close()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// TestS3OutageLosesNothing stores evidence in a bucket with Object Lock
// through a connection that goes down for 60 s while records keep coming:
// the writer reports the sink degraded, buffers them on disk, and stores
// every one once the bucket is reachable again, in one chain that verifies.
func TestS3OutageLosesNothing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(t.Context(), "evidence", locked)).To(Succeed())
	target, err := url.Parse(srv.Endpoint)
	g.Expect(err).NotTo(HaveOccurred())
	proxy := &switchable{addr: "127.0.0.1:0", target: target.Host}
	proxy.up(t)
	sink := newS3Sink(t, srv, "http://"+proxy.addr, "evidence", "phiguard")
	g.Expect(sink.Check(t.Context(), 2192*24*time.Hour)).To(Succeed())

	signer, keys := newSigner(t)
	h := &health{}
	w, stop := startWriter(t, evidence.WriterOptions{Sink: sink, Signer: signer, Cluster: "c", Shard: "controllers",
		SpoolDir: t.TempDir(), SegmentInterval: time.Second, OnHealth: h.set})
	for i := 1; i <= 100; i++ {
		w.Record(record(i, time.Now()))
	}
	g.Eventually(w.Pending, "20s").Should(BeZero())
	g.Expect(h.seen()).To(Equal([]bool{false}))

	proxy.down()
	outage := time.Now()
	recorded := 100
	for time.Since(outage) < 60*time.Second {
		recorded++
		w.Record(record(recorded, time.Now()))
		if recorded == 200 {
			g.Eventually(h.seen, "20s").Should(Equal([]bool{false, true}), "the writer says the sink is degraded")
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.Expect(w.Pending()).To(Equal(recorded-100), "every record of the outage waits in the buffer")

	proxy.up(t)
	g.Eventually(w.Pending, "30s").Should(BeZero())
	g.Eventually(h.seen, "10s").Should(Equal([]bool{false, true, false}))
	stop()

	rep, err := evidence.Verify(t.Context(), sink, evidence.VerifyOptions{Keys: keys})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Broken).ToNot(HaveOccurred())
	g.Expect(messages(t, sink)).To(Equal(numbered(recorded)), "every record, in order, none lost")
}
