package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/phiguard/phiguard/internal/evidence"
)

// newSigner returns a fresh signing key and the keys that verify it.
func newSigner(t testing.TB) (evidence.Signer, evidence.PublicKeys) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := evidence.NewSigner(key)
	return s, evidence.PublicKeys{s.KeyID: pub}
}

// record returns a result record for workload n.
func record(n int, at time.Time) evidence.Record {
	return evidence.Record{
		Time: at, Kind: evidence.KindResult,
		Workload:  &evidence.Workload{Namespace: "clinic", Name: fmt.Sprintf("w%d", n), UID: fmt.Sprintf("uid-%d", n), Generation: 1},
		Safeguard: "NetworkIsolated", Section: "§164.312(e)(1)", Mode: "Enforce",
		Result: "True", Reason: "Isolated", Message: fmt.Sprintf("record %d", n),
	}
}

// sealed writes segments of perSegment records each into a directory sink,
// chained as a writer would, and returns the sink and its directory.
func sealed(t *testing.T, signer evidence.Signer, segments, perSegment int) (*evidence.DirSink, string) {
	t.Helper()
	dir := t.TempDir()
	sink, err := evidence.NewDirSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	var head evidence.Head
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for s := range segments {
		recs := make([]evidence.Record, perSegment)
		for i := range recs {
			recs[i] = record(s*perSegment+i+1, at.Add(time.Duration(s*perSegment+i)*time.Second))
		}
		data, next, err := evidence.Seal(head, "cluster-a", "controller", fmt.Sprintf("b%d", s), recs, at.Add(time.Duration(s+1)*time.Minute), signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Put(t.Context(), evidence.SegmentName("controller", next.Segment), data); err != nil {
			t.Fatal(err)
		}
		head = next
	}
	return sink, dir
}

// segmentFile is the file of the n-th segment in dir.
func segmentFile(dir string, n uint64) string {
	return filepath.Join(dir, filepath.FromSlash(evidence.SegmentName("controller", n)))
}

// rewrite replaces a read-only segment file's content.
func rewrite(t *testing.T, file string, edit func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, edit(data), 0o440); err != nil {
		t.Fatal(err)
	}
}

// lines splits a segment into its lines (without the final newline).
func lines(data []byte) [][]byte {
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func join(ls [][]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }

func TestVerifyAcceptsAnIntactChain(t *testing.T) {
	g := NewWithT(t)
	signer, keys := newSigner(t)
	sink, _ := sealed(t, signer, 3, 4)
	rep, err := evidence.Verify(t.Context(), sink, evidence.VerifyOptions{Keys: keys})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Broken).ToNot(HaveOccurred())
	g.Expect(rep.Shards).To(HaveLen(1))
	g.Expect(rep.Shards[0].Segments).To(Equal(3))
	g.Expect(rep.Shards[0].Records).To(Equal(12))
	g.Expect(rep.Shards[0].Seq).To(BeNumerically("==", 12))

	// A window checks only the records in it, anchored by the checkpoints before.
	from := time.Date(2026, 3, 1, 0, 0, 4, 0, time.UTC)
	rep, err = evidence.Verify(t.Context(), sink, evidence.VerifyOptions{Keys: keys, From: from, To: from.Add(3 * time.Second)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Broken).ToNot(HaveOccurred())
	g.Expect(rep.Shards[0].Records).To(Equal(4))

	recs, err := evidence.ReadRecords(t.Context(), sink, evidence.ReadOptions{From: from, To: from.Add(3 * time.Second)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(recs).To(HaveLen(4))
	g.Expect(recs[0].Message).To(Equal("record 5"))
}

// TestVerifyFindsEachTampering breaks an intact chain in each way an
// attacker with write access to the files could, and expects Verify to name
// the first broken link.
func TestVerifyFindsEachTampering(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		segment uint64
		seq     uint64
		problem string
	}{{
		name: "an edited record",
		tamper: func(t *testing.T, dir string) {
			rewrite(t, segmentFile(dir, 2), func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"result":"True"`), []byte(`"result":"False"`), 1)
			})
		},
		segment: 2, seq: 5, problem: "the record was edited",
	}, {
		name: "an edited record with its hash recomputed",
		tamper: func(t *testing.T, dir string) {
			rewrite(t, segmentFile(dir, 2), func(b []byte) []byte {
				ls := lines(b)
				var r evidence.Record
				if err := json.Unmarshal(ls[1], &r); err != nil {
					t.Fatal(err)
				}
				r.Message = "nothing happened"
				r.Hash, _ = r.ComputeHash()
				ls[1], _ = json.Marshal(r)
				return join(ls)
			})
		},
		segment: 2, seq: 7, problem: "previous hash does not match",
	}, {
		name: "a removed record",
		tamper: func(t *testing.T, dir string) {
			rewrite(t, segmentFile(dir, 2), func(b []byte) []byte {
				ls := lines(b)
				return join(append(ls[:1:1], ls[2:]...))
			})
		},
		segment: 2, seq: 7, problem: "records were removed",
	}, {
		name: "reordered records",
		tamper: func(t *testing.T, dir string) {
			rewrite(t, segmentFile(dir, 2), func(b []byte) []byte {
				ls := lines(b)
				ls[0], ls[1] = ls[1], ls[0]
				return join(ls)
			})
		},
		segment: 2, seq: 6, problem: "removed or reordered",
	}, {
		name: "reordered segments",
		tamper: func(t *testing.T, dir string) {
			two, _ := os.ReadFile(segmentFile(dir, 2))
			three, _ := os.ReadFile(segmentFile(dir, 3))
			rewrite(t, segmentFile(dir, 2), func([]byte) []byte { return three })
			rewrite(t, segmentFile(dir, 3), func([]byte) []byte { return two })
		},
		segment: 2, problem: "segments were reordered",
	}, {
		name: "a removed segment",
		tamper: func(t *testing.T, dir string) {
			if err := os.Remove(segmentFile(dir, 2)); err != nil {
				t.Fatal(err)
			}
		},
		segment: 3, problem: "a segment is missing",
	}, {
		name: "a truncated segment",
		tamper: func(t *testing.T, dir string) {
			rewrite(t, segmentFile(dir, 2), func(b []byte) []byte { return b[:len(b)/2] })
		},
		segment: 2, problem: "the segment was truncated",
	}, {
		name: "records cut from a segment's end",
		tamper: func(t *testing.T, dir string) {
			rewrite(t, segmentFile(dir, 3), func(b []byte) []byte {
				ls := lines(b)
				return join(append(ls[:2:2], ls[len(ls)-1]))
			})
		},
		segment: 3, problem: "records were removed or the segment truncated",
	}, {
		name: "a forged checkpoint",
		tamper: func(t *testing.T, dir string) {
			forger, _ := newSigner(t)
			rewrite(t, segmentFile(dir, 2), func(b []byte) []byte {
				ls := lines(b)
				var c evidence.Checkpoint
				if err := json.Unmarshal(ls[len(ls)-1], &c); err != nil {
					t.Fatal(err)
				}
				if err := forger.Sign(&c); err != nil {
					t.Fatal(err)
				}
				ls[len(ls)-1], _ = json.Marshal(c)
				return join(ls)
			})
		},
		segment: 2, problem: "not among the published keys",
	}, {
		name: "a checkpoint altered under the real key id",
		tamper: func(t *testing.T, dir string) {
			rewrite(t, segmentFile(dir, 2), func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"batch":"b1"`), []byte(`"batch":"b9"`), 1)
			})
		},
		segment: 2, problem: "signature does not match",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			signer, keys := newSigner(t)
			sink, dir := sealed(t, signer, 3, 4)
			tc.tamper(t, dir)
			rep, err := evidence.Verify(t.Context(), sink, evidence.VerifyOptions{Keys: keys})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rep.Broken).To(HaveOccurred(), "the tampering went unnoticed")
			g.Expect(rep.Broken.Segment).To(Equal(evidence.SegmentName("controller", tc.segment)))
			g.Expect(rep.Broken.Seq).To(Equal(tc.seq))
			g.Expect(rep.Broken.Problem).To(ContainSubstring(tc.problem))
		})
	}
}

func TestDirSinkNeverOverwrites(t *testing.T) {
	g := NewWithT(t)
	sink, err := evidence.NewDirSink(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(sink.Put(ctx, "segments/a/000000000001.jsonl", []byte("one\n"))).To(Succeed())
	err = sink.Put(ctx, "segments/a/000000000001.jsonl", []byte("two\n"))
	g.Expect(err).To(MatchError(evidence.ErrExists))
	data, err := sink.Get(ctx, "segments/a/000000000001.jsonl")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(data)).To(Equal("one\n"))
	g.Expect(sink.Put(ctx, "../escape", []byte("x"))).To(MatchError(ContainSubstring("leaves the directory")))
	entries, err := sink.List(ctx, "segments/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entries).To(Equal([]evidence.Entry{{Name: "segments/a/000000000001.jsonl", Versions: 1}}))
	g.Expect(strings.HasPrefix(sink.Location(), "dir:/")).To(BeTrue())
}
