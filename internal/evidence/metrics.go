package evidence

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics' labels.
const (
	labelShard = "shard"
	labelKind  = "kind"
)

// Metrics export the evidence trail's progress. A nil *Metrics records
// nothing.
type Metrics struct {
	records      *prometheus.CounterVec
	droppedRecs  *prometheus.CounterVec
	pending      *prometheus.GaugeVec
	bufferBytes  *prometheus.GaugeVec
	segments     prometheus.Counter
	storedRecs   prometheus.Counter
	storedBytes  prometheus.Counter
	errors       prometheus.Counter
	lastStored   prometheus.Gauge
	degradedSink *prometheus.GaugeVec
}

// NewMetrics registers the evidence metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phiguard_evidence_records_total",
			Help: "Evidence records taken, by kind.",
		}, []string{labelKind}),
		droppedRecs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phiguard_evidence_records_dropped_total",
			Help: "Evidence records dropped because the on-disk buffer was full or could not be written, by kind.",
		}, []string{labelKind}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "phiguard_evidence_records_pending",
			Help: "Evidence records taken but not yet stored in the sink, by shard.",
		}, []string{labelShard}),
		bufferBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "phiguard_evidence_buffer_bytes",
			Help: "Bytes the on-disk evidence buffer holds, by shard.",
		}, []string{labelShard}),
		segments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phiguard_evidence_segments_stored_total",
			Help: "Evidence segments stored in the sink.",
		}),
		storedRecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phiguard_evidence_records_stored_total",
			Help: "Evidence records stored in the sink.",
		}),
		storedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phiguard_evidence_stored_bytes_total",
			Help: "Bytes of evidence segments stored in the sink.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phiguard_evidence_store_errors_total",
			Help: "Attempts to store evidence that failed (the records wait in the buffer).",
		}),
		lastStored: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "phiguard_evidence_last_stored_timestamp_seconds",
			Help: "When an evidence segment was last stored, as a Unix time.",
		}),
		degradedSink: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "phiguard_evidence_sink_degraded",
			Help: "1 while evidence cannot be stored or records are dropped, by shard.",
		}, []string{labelShard}),
	}
	for _, c := range []prometheus.Collector{m.records, m.droppedRecs, m.pending, m.bufferBytes, m.segments,
		m.storedRecs, m.storedBytes, m.errors, m.lastStored, m.degradedSink} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the evidence metrics: %w", err)
		}
	}
	// Every kind's series exists from the start, so that a first drop is an
	// increase an alert sees.
	for _, k := range Kinds {
		m.records.WithLabelValues(string(k))
		m.droppedRecs.WithLabelValues(string(k))
	}
	return m, nil
}

func (m *Metrics) recorded(k Kind) {
	if m != nil {
		m.records.WithLabelValues(string(k)).Inc()
	}
}

func (m *Metrics) dropped(k Kind) {
	if m != nil {
		m.droppedRecs.WithLabelValues(string(k)).Inc()
	}
}

func (m *Metrics) stored(records, bytes int, now time.Time) {
	if m != nil {
		m.segments.Inc()
		m.storedRecs.Add(float64(records))
		m.storedBytes.Add(float64(bytes))
		m.lastStored.Set(float64(now.Unix()))
	}
}

func (m *Metrics) failed() {
	if m != nil {
		m.errors.Inc()
	}
}

func (m *Metrics) buffered(shard string, records int, bytes int64) {
	if m != nil {
		m.pending.WithLabelValues(shard).Set(float64(records))
		m.bufferBytes.WithLabelValues(shard).Set(float64(bytes))
	}
}

func (m *Metrics) setDegraded(shard string, degraded bool) {
	if m != nil {
		v := 0.0
		if degraded {
			v = 1
		}
		m.degradedSink.WithLabelValues(shard).Set(v)
	}
}
