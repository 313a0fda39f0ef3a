package evidence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Recorder takes evidence records. A nil *Writer is a Recorder that records
// nothing, for callers without an evidence trail (tests, the scale harness).
type Recorder interface {
	Record(r Record)
}

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Sink stores the segments.
	Sink Sink
	// Signer signs each segment's checkpoint.
	Signer Signer
	// Cluster is the cluster's identity, Shard the chain written.
	Cluster, Shard string
	// SpoolDir holds the on-disk buffer.
	SpoolDir string
	// MaxBufferBytes bounds the buffer (default 256 MiB); records beyond it
	// are dropped, counted and logged.
	MaxBufferBytes int64
	// SegmentInterval is how often a segment is cut (default one minute).
	SegmentInterval time.Duration
	// MaxSegmentRecords cuts a segment early when that many records wait
	// (default 10,000).
	MaxSegmentRecords int
	// LeaderOnly makes the Writer a runnable that only the elected leader
	// runs (the controllers' shard); otherwise every replica runs it (its
	// own admission shard).
	LeaderOnly bool
	// Clock is the time records are sealed at; tests move it.
	Clock clock.WithTicker
	// Metrics, when set, export the writer's progress.
	Metrics *Metrics
	// OnHealth, when set, is told whenever the sink turns degraded or
	// healthy again, with a message saying why.
	OnHealth func(degraded bool, message string)
}

// Writer buffers records on disk and stores them as signed segments, one
// segment per interval, continuing the chain the sink holds. Record never
// blocks on the sink.
type Writer struct {
	o     WriterOptions
	spool *spool
	log   logr.Logger
	kick  chan struct{}

	mu   sync.Mutex
	head Head
	// health is unknown until the first store or failure, then healthy or
	// degraded; OnHealth hears each change.
	health health
	last   int64 // the last batch id handed out
}

type health int

const (
	healthUnknown health = iota
	healthy
	isDegraded
)

// NewWriter opens the buffer; Start loads the chain head and writes.
func NewWriter(o WriterOptions) (*Writer, error) {
	if o.Sink == nil || o.Signer.Key == nil || o.Shard == "" {
		return nil, errors.New("an evidence writer needs a sink, a signing key and a shard")
	}
	if o.MaxBufferBytes <= 0 {
		o.MaxBufferBytes = 256 << 20
	}
	if o.SegmentInterval <= 0 {
		o.SegmentInterval = time.Minute
	}
	if o.MaxSegmentRecords <= 0 {
		o.MaxSegmentRecords = 10000
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	w := &Writer{o: o, kick: make(chan struct{}, 1), log: logf.Log.WithName("evidence").WithValues("shard", o.Shard)}
	sp, err := openSpool(o.SpoolDir, o.MaxBufferBytes, w.batchID)
	if err != nil {
		return nil, err
	}
	w.spool = sp
	w.updateGauges()
	return w, nil
}

// batchID returns a new batch id: the time in nanoseconds, increasing.
func (w *Writer) batchID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := w.o.Clock.Now().UnixNano()
	if id <= w.last {
		id = w.last + 1
	}
	w.last = id
	return fmt.Sprintf("%020d", id)
}

// Record buffers r. It never waits for the sink: a full buffer drops the
// record, counted in phiguard_evidence_records_dropped_total and logged.
func (w *Writer) Record(r Record) {
	if w == nil {
		return
	}
	if r.Time.IsZero() {
		r.Time = w.o.Clock.Now()
	}
	r.Time = r.Time.UTC()
	if err := w.spool.append(r); err != nil {
		w.o.Metrics.dropped(r.Kind)
		w.log.Error(err, "evidence record dropped", "kind", r.Kind, "workload", r.Workload, "safeguard", r.Safeguard, "result", r.Result)
		w.setHealth(true, fmt.Sprintf("records are being dropped: %v", err))
		return
	}
	w.o.Metrics.recorded(r.Kind)
	records, bytes, current := w.spool.held()
	w.o.Metrics.buffered(w.o.Shard, records, bytes)
	if current >= w.o.MaxSegmentRecords {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (w *Writer) NeedLeaderElection() bool { return w.o.LeaderOnly }

// Start stores segments until ctx ends, then stores what is buffered once
// more (best effort) and closes the buffer.
func (w *Writer) Start(ctx context.Context) error {
	ticker := w.o.Clock.NewTicker(w.o.SegmentInterval)
	defer ticker.Stop()
	loaded := false
	for {
		if !loaded {
			loaded = w.loadHead(ctx)
		}
		if loaded {
			w.flush(ctx)
		}
		select {
		case <-ctx.Done():
			if loaded {
				// A last segment for what was buffered, within the manager's
				// graceful shutdown; what does not make it waits on disk.
				stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				w.flush(stop)
				cancel()
			}
			return w.spool.close()
		case <-ticker.C():
		case <-w.kick:
		}
	}
}

// loadHead reads where the chain stands, and drops a buffered batch that a
// previous process stored but could not remove.
func (w *Writer) loadHead(ctx context.Context) bool {
	head, err := LoadHead(ctx, w.o.Sink, w.o.Shard)
	if err != nil {
		w.storeFailed(err)
		return false
	}
	w.mu.Lock()
	w.head = head
	w.mu.Unlock()
	return true
}

// flush cuts the current batch and stores every batch, oldest first, until
// one fails.
func (w *Writer) flush(ctx context.Context) {
	if err := w.spool.cut(w.batchID()); err != nil {
		w.storeFailed(err)
		return
	}
	ids, err := w.spool.batches()
	if err != nil {
		w.storeFailed(err)
		return
	}
	for _, id := range ids {
		if err := w.store(ctx, id); err != nil {
			w.storeFailed(err)
			return
		}
	}
	w.updateGauges()
	if records, _, _ := w.spool.held(); records <= w.o.MaxSegmentRecords {
		w.setHealth(false, "")
	}
}

// store seals one batch onto the chain and stores it. A batch the sink
// already holds (stored before a crash, not yet removed) is only removed.
// When another writer stored the next segment first (a leader change), the
// head is read again and the batch sealed after it.
func (w *Writer) store(ctx context.Context, id string) error {
	recs, size, err := w.spool.read(id)
	if err != nil {
		return err
	}
	w.mu.Lock()
	head := w.head
	w.mu.Unlock()
	if head.Batch == id || len(recs) == 0 {
		return w.spool.remove(id, len(recs), size)
	}
	for attempt := 0; ; attempt++ {
		data, next, err := Seal(head, w.o.Cluster, w.o.Shard, id, recs, w.o.Clock.Now(), w.o.Signer)
		if err != nil {
			return err
		}
		name := SegmentName(w.o.Shard, next.Segment)
		err = w.o.Sink.Put(ctx, name, data)
		if errors.Is(err, ErrExists) && attempt < 3 {
			if head, err = LoadHead(ctx, w.o.Sink, w.o.Shard); err != nil {
				return err
			}
			if head.Batch == id {
				break
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("storing evidence segment %s in %s: %w", name, w.o.Sink.Location(), err)
		}
		head = next
		w.o.Metrics.stored(len(recs), len(data), w.o.Clock.Now())
		w.log.V(1).Info("evidence segment stored", "segment", name, "records", len(recs), "bytes", len(data))
		break
	}
	w.mu.Lock()
	w.head = head
	w.mu.Unlock()
	return w.spool.remove(id, len(recs), size)
}

func (w *Writer) storeFailed(err error) {
	w.o.Metrics.failed()
	w.updateGauges()
	w.log.Error(err, "evidence not stored yet; it waits in the buffer")
	w.setHealth(true, fmt.Sprintf("evidence cannot be stored in %s: %v", w.o.Sink.Location(), err))
}

func (w *Writer) setHealth(degraded bool, msg string) {
	next := healthy
	if degraded {
		next = isDegraded
	}
	w.mu.Lock()
	changed := w.health != next
	w.health = next
	w.mu.Unlock()
	w.o.Metrics.setDegraded(w.o.Shard, degraded)
	if changed && w.o.OnHealth != nil {
		w.o.OnHealth(degraded, msg)
	}
}

func (w *Writer) updateGauges() {
	records, bytes, _ := w.spool.held()
	w.o.Metrics.buffered(w.o.Shard, records, bytes)
}

// Head returns where the chain stands after the last stored segment.
func (w *Writer) Head() Head {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.head
}

// Pending returns how many records wait in the buffer, not yet stored.
func (w *Writer) Pending() int {
	records, _, _ := w.spool.held()
	return records
}
