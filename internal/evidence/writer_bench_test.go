package evidence_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phiguard/phiguard/internal/evidence"
)

// benchWorkloads is the scale the benchmarks record for.
const benchWorkloads = 10000

// attestation is the daily record of a workload with eight safeguards, the
// largest record phiguard takes.
func attestation(n int, at time.Time) evidence.Record {
	r := evidence.Record{
		Time: at, Kind: evidence.KindAttestation, Result: "NonCompliant", Reason: "SafeguardsFailing",
		Workload: &evidence.Workload{Namespace: fmt.Sprintf("ns-%d", n%500), Name: fmt.Sprintf("workload-%d", n),
			UID: "0f6e1c1e-8a52-4c3b-9a57-7d1f3e0c2b4a", Generation: 3},
		Message: "Ready is False: 2 of 8 safeguards do not hold (score 6/8, 3 pods matched, policy \"default\")",
		Actor:   "phiguard",
	}
	for _, sg := range []string{"NetworkIsolated", "EncryptedAtRest", "BackupScheduled", "AuditLogging",
		"TransmissionSecure", "AccessControlled", "IntegrityProtected", "Available"} {
		r.Safeguards = append(r.Safeguards, evidence.SafeguardResult{Safeguard: sg, Section: "§164.312(e)(1)", Mode: "Enforce",
			Result: "True", Reason: "PolicyApplied", Message: "NetworkPolicy phiguard-workload isolates the 3 selected pods in both directions"})
	}
	return r
}

// BenchmarkEvidence10000Workloads records what 10,000 workloads leave in a
// day, the first evaluation of each (eight results) and an attestation of
// each, and stores it all as signed segments in a directory: records/s end
// to end (buffer, chain, sign, store) and the bytes each record takes.
func BenchmarkEvidence10000Workloads(b *testing.B) {
	signer, _ := newSigner(b)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var records, stored int64
	start := time.Now()
	for b.Loop() {
		dir := b.TempDir()
		sink, err := evidence.NewDirSink(filepath.Join(dir, "sink"))
		if err != nil {
			b.Fatal(err)
		}
		w, err := evidence.NewWriter(evidence.WriterOptions{Sink: sink, Signer: signer, Cluster: "c", Shard: "controllers",
			SpoolDir: filepath.Join(dir, "buffer"), SegmentInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Start(ctx) }()
		for n := range benchWorkloads {
			for i := range 8 {
				r := record(n, at)
				r.Safeguard = fmt.Sprintf("Safeguard%d", i)
				w.Record(r)
			}
			w.Record(attestation(n, at))
		}
		// Stopping stores what is buffered, as the manager does on shutdown.
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if n := w.Pending(); n > 0 {
			b.Fatalf("%d records not stored", n)
		}
		records += benchWorkloads * 9
		stored += dirSize(b, filepath.Join(dir, "sink"))
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64(stored)/float64(records), "bytes/record")
}

// BenchmarkRecordAttestation is the cost to a caller of taking one record:
// what a reconcile or an admission request pays.
func BenchmarkRecordAttestation(b *testing.B) {
	signer, _ := newSigner(b)
	sink, err := evidence.NewDirSink(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	w, err := evidence.NewWriter(evidence.WriterOptions{Sink: sink, Signer: signer, Cluster: "c", Shard: "s",
		SpoolDir: b.TempDir(), MaxBufferBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	r := attestation(1, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		w.Record(r)
	}
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
