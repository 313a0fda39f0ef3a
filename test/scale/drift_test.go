package scale

import (
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// TestDriftHeal measures how long phiguard takes to put its NetworkPolicy back
// after someone edits or deletes it: the time from the drifting write's
// response to the first read that shows the policy restored. It checks every
// heal happens (within a bound far above the expected latency, so that a slow
// machine does not fail it) and logs the median, 90th percentile and maximum.
//
//	PHIGUARD_DRIFT_EVENTS=100 go test ./test/scale/ -run TestDriftHeal -v
func TestDriftHeal(t *testing.T) {
	g := NewWithT(t)
	events := envInt(t, "PHIGUARD_DRIFT_EVENTS", 20) // of each kind: edits and deletes
	k8s, _ := startControlPlaneAndManager(t)
	ctx := t.Context()

	const ns = "drift"
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}},
	})).To(Succeed())
	key := types.NamespacedName{Namespace: ns, Name: safeguard.NetworkPolicyName("records")}
	keys := make([]types.NamespacedName, events)
	for i := range keys {
		keys[i] = key
	}
	edits, deletes := drift(t, k8s, keys)
	all := slices.Concat(edits, deletes)
	t.Logf("drift: %d heals (%d edits, %d deletes)", len(all), len(edits), len(deletes))
	t.Logf("drift: all    %s", summary(all))
	t.Logf("drift: edit   %s", summary(edits))
	t.Logf("drift: delete %s", summary(deletes))
}

// measureDrift is drift, edits and deletes together.
func measureDrift(t *testing.T, k8s client.Client, keys []types.NamespacedName) []time.Duration {
	t.Helper()
	edits, deletes := drift(t, k8s, keys)
	return slices.Concat(edits, deletes)
}

// drift edits, then deletes, each of phiguard's NetworkPolicies keys names
// (one after the other) and returns how long each took to be healed: from
// the drifting write's response to the first read that shows the policy as
// it was.
func drift(t *testing.T, k8s client.Client, keys []types.NamespacedName) (edits, deletes []time.Duration) {
	t.Helper()
	g := NewWithT(t)
	ctx := t.Context()
	edits, deletes = make([]time.Duration, 0, len(keys)), make([]time.Duration, 0, len(keys))
	for i, key := range keys {
		var want networkingv1.NetworkPolicySpec
		g.Eventually(func(g Gomega) {
			var np networkingv1.NetworkPolicy
			g.Expect(k8s.Get(ctx, key, &np)).To(Succeed())
			want = np.Spec
		}, 30*time.Second, 10*time.Millisecond).Should(Succeed())

		// healed polls until the policy is back as phiguard wants it, and returns how long that took.
		healed := func(since time.Time, uid types.UID) time.Duration {
			t.Helper()
			var took time.Duration
			g.Eventually(func(g Gomega) {
				var np networkingv1.NetworkPolicy
				g.Expect(k8s.Get(ctx, key, &np)).To(Succeed())
				g.Expect(equality.Semantic.DeepEqual(np.Spec, want)).To(BeTrue(), "not healed yet")
				if uid != "" {
					g.Expect(np.UID).NotTo(Equal(uid), "not re-created yet")
				}
				took = time.Since(since)
			}, 30*time.Second, 2*time.Millisecond).Should(Succeed())
			return took
		}

		var np networkingv1.NetworkPolicy
		g.Expect(k8s.Get(ctx, key, &np)).To(Succeed())
		// Open ingress to everyone: the kind of edit isolation exists to undo.
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		g.Expect(k8s.Update(ctx, &np, client.FieldOwner(fmt.Sprintf("editor-%d", i)))).To(Succeed())
		edits = append(edits, healed(time.Now(), ""))

		g.Expect(k8s.Get(ctx, key, &np)).To(Succeed())
		g.Expect(k8s.Delete(ctx, &np)).To(Succeed())
		deletes = append(deletes, healed(time.Now(), np.UID))
	}
	return edits, deletes
}

// percentile is the q-th quantile (0..1) of d, by the nearest rank below.
func percentile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func summary(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1))].Round(100 * time.Microsecond) }
	return fmt.Sprintf("median %s, p90 %s, max %s", at(0.5), at(0.9), s[len(s)-1].Round(100*time.Microsecond))
}
