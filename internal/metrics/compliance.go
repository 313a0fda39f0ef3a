// Package metrics exports each PHIWorkload's compliance, as its status last
// reported it, for dashboards and alert rules.
package metrics

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// statuses are the values of the status label, one series each (the
// kube-state-metrics convention: the current one is 1, the others 0), so a
// dashboard can sum any of them without absent series.
var statuses = [...]metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}

// workloadLabels name the workload a series is about.
var workloadLabels = []string{"namespace", "workload"}

var (
	safeguardStatusDesc = prometheus.NewDesc("phiguard_safeguard_status",
		"Status of a PHIWorkload's safeguard condition: 1 for the current status (True, False or Unknown), 0 for the others.",
		append(workloadLabels[:2:2], "safeguard", "status"), nil)
	compliantDesc = prometheus.NewDesc("phiguard_workload_compliant",
		"1 when a PHIWorkload's compliance is Compliant, 0 when NonCompliant or Pending.",
		workloadLabels, nil)
	scoreDesc = prometheus.NewDesc("phiguard_workload_score_ratio",
		"Share of a PHIWorkload's safeguards that hold (status.score as a ratio, 0 to 1).",
		workloadLabels, nil)
	decisionExpiryDesc = prometheus.NewDesc("phiguard_decision_expiry_timestamp_seconds",
		"Expiry of a PHIWorkload's documented decision turning a safeguard off, in Unix seconds.",
		append(workloadLabels[:2:2], "safeguard"), nil)
)

// Compliance is a Prometheus collector of every PHIWorkload's last reported
// compliance. It keeps one snapshot per workload and builds the series at
// scrape time, so a safeguard or decision that goes away leaves no stale
// series behind. Its methods are safe for concurrent use, and a nil
// *Compliance records nothing.
type Compliance struct {
	mu        sync.RWMutex
	workloads map[types.NamespacedName]snapshot
}

// snapshot is what the series of one workload are built from.
type snapshot struct {
	compliance phiguardv1alpha1.Compliance
	safeguards []phiguardv1alpha1.SafeguardStatus
	// expiries are the decisions' expiry times, by safeguard.
	expiries map[phiguardv1alpha1.SafeguardName]metav1.Time
}

// NewCompliance creates the collector and registers it with reg (in the
// manager, controller-runtime's metrics registry).
func NewCompliance(reg prometheus.Registerer) (*Compliance, error) {
	c := &Compliance{workloads: map[types.NamespacedName]snapshot{}}
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("registering compliance metrics: %w", err)
	}
	return c, nil
}

// Record replaces a workload's series with those of status. The decisions'
// expiry times come from the spec, for the decisions the status lists.
func (c *Compliance) Record(w *phiguardv1alpha1.PHIWorkload, status *phiguardv1alpha1.PHIWorkloadStatus) {
	if c == nil {
		return
	}
	s := snapshot{
		compliance: status.Compliance,
		safeguards: append([]phiguardv1alpha1.SafeguardStatus(nil), status.Safeguards...),
		expiries:   map[phiguardv1alpha1.SafeguardName]metav1.Time{},
	}
	for _, d := range status.Decisions {
		if spec := w.Spec.Decision(d.Safeguard); spec != nil && !notRecognised(status, d.Safeguard) {
			s.expiries[d.Safeguard] = spec.Expires
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workloads[types.NamespacedName{Namespace: w.Namespace, Name: w.Name}] = s
}

// notRecognised says whether the status reports a safeguard's decision as
// not counting (the PHIPolicy's ruleset makes every safeguard Required): such
// a decision has no expiry to watch, and its series would raise the
// expiring-decision alert for nothing.
func notRecognised(status *phiguardv1alpha1.PHIWorkloadStatus, name phiguardv1alpha1.SafeguardName) bool {
	for _, sg := range status.Safeguards {
		if sg.Name == name {
			return sg.Reason == phiguardv1alpha1.ReasonDecisionNotRecognised
		}
	}
	return false
}

// Forget removes every series of a workload that is gone.
func (c *Compliance) Forget(key types.NamespacedName) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.workloads, key)
}

// Describe implements prometheus.Collector.
func (c *Compliance) Describe(ch chan<- *prometheus.Desc) {
	ch <- safeguardStatusDesc
	ch <- compliantDesc
	ch <- scoreDesc
	ch <- decisionExpiryDesc
}

// Collect implements prometheus.Collector.
func (c *Compliance) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for key, s := range c.workloads {
		ns, name := key.Namespace, key.Name
		holding := 0
		for _, sg := range s.safeguards {
			for _, st := range statuses {
				ch <- prometheus.MustNewConstMetric(safeguardStatusDesc, prometheus.GaugeValue,
					boolValue(sg.Status == st), ns, name, string(sg.Name), string(st))
			}
			if sg.Status == metav1.ConditionTrue {
				holding++
			}
		}
		ch <- prometheus.MustNewConstMetric(compliantDesc, prometheus.GaugeValue,
			boolValue(s.compliance == phiguardv1alpha1.Compliant), ns, name)
		if len(s.safeguards) > 0 {
			ch <- prometheus.MustNewConstMetric(scoreDesc, prometheus.GaugeValue,
				float64(holding)/float64(len(s.safeguards)), ns, name)
		}
		for sg, t := range s.expiries {
			ch <- prometheus.MustNewConstMetric(decisionExpiryDesc, prometheus.GaugeValue,
				float64(t.Unix()), ns, name, string(sg))
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
