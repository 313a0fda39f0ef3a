package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/testenv"
)

// Covers what only a hand-driven reconcile can show exactly: a reconcile of an
// unchanged workload makes no write request at all, the requeue is timed to a
// decision's expiry, and moving the clock past it flips the result. The
// objects live in the namespace the running manager does not watch.
var _ = Describe("Reconciling by hand", func() {
	var (
		writes   *testenv.WriteCounter
		recorder *events.FakeRecorder
		fakeNow  *clocktesting.FakeClock
		r        *controller.PHIWorkloadReconciler
	)

	BeforeEach(func() {
		ensureNamespace(manualNamespace)
		writes = &testenv.WriteCounter{}
		counted, err := client.New(writes.Wrap(cfg), client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		recorder = events.NewFakeRecorder(100)
		fakeNow = clocktesting.NewFakeClock(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC))
		r = &controller.PHIWorkloadReconciler{
			Client: counted, Recorder: recorder, Clock: fakeNow,
			Registry: safeguard.New(safeguard.Options{}), ExemptNamespaces: []string{"kube-system"},
		}
	})

	reconcileOnce := func(w *phiguardv1alpha1.PHIWorkload) ctrl.Result {
		GinkgoHelper()
		res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w)})
		Expect(err).NotTo(HaveOccurred())
		return res
	}
	drain := func() (n int) {
		for {
			select {
			case <-recorder.Events:
				n++
			default:
				return n
			}
		}
	}

	It("makes zero write requests when nothing changed", func() {
		w := newWorkload(manualNamespace, "steady", nil)
		newPod(manualNamespace, "steady-0", map[string]string{"app": "records"})

		reconcileOnce(w)
		// The finalizer, the NetworkPolicy and the status (and the backup
		// Schedule when Velero's CRDs are installed by then), once each.
		Expect(writes.N()).To(BeNumerically(">=", 3))
		Expect(drain()).To(Equal(1), "one Event sums up the first evaluation")

		writes.Reset()
		reconcileOnce(w)
		reconcileOnce(w)
		Expect(writes.N()).To(BeZero(), "an unchanged workload must not be written")
		Expect(drain()).To(BeZero(), "an unchanged result must not be announced")
	})

	It("makes zero write requests for an unchanged NetworkPolicy of every shape", func() {
		w := newWorkload(manualNamespace, "every-shape", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector = metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "records"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"db", "cache"}}},
			}
			w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{
				Ingress: []phiguardv1alpha1.NetworkIngressRule{{
					From: []phiguardv1alpha1.NetworkPeer{
						{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
						{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: &metav1.LabelSelector{
							MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}}},
						{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}},
					},
					Ports: []phiguardv1alpha1.NetworkPort{
						{Port: ptr.To(intstr.FromString("http"))},
						{Protocol: corev1.ProtocolUDP, Port: ptr.To(intstr.FromInt32(8000)), EndPort: ptr.To[int32](8100)},
					},
				}},
				Egress: []phiguardv1alpha1.NetworkEgressRule{{
					To:    []phiguardv1alpha1.NetworkPeer{{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "2001:db8::/48"}}},
					Ports: []phiguardv1alpha1.NetworkPort{{Protocol: corev1.ProtocolSCTP}},
				}},
			}
		})

		reconcileOnce(w)
		Expect(writes.N()).To(BeNumerically(">=", 3), "the finalizer, the NetworkPolicy and the status")
		writes.Reset()
		reconcileOnce(w)
		reconcileOnce(w)
		Expect(writes.N()).To(BeZero(), "what phiguard applied reads back equal: no re-apply")
	})

	It("requeues at a decision's expiry and reports it expired once the clock passes it", func() {
		expires := metav1.NewTime(fakeNow.Now().Add(90 * time.Minute))
		w := newWorkload(manualNamespace, "expiring", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.EncryptionAtRest = &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff}
			w.Spec.Decisions = []phiguardv1alpha1.Decision{validDecision(phiguardv1alpha1.EncryptedAtRest, expires)}
		})

		Expect(reconcileOnce(w).RequeueAfter).To(Equal(90 * time.Minute))
		Expect(condition(Default, w, string(phiguardv1alpha1.EncryptedAtRest)).Reason).To(Equal(phiguardv1alpha1.ReasonDocumentedDecision))
		drain()

		fakeNow.Step(89 * time.Minute)
		writes.Reset()
		Expect(reconcileOnce(w).RequeueAfter).To(Equal(time.Minute))
		Expect(writes.N()).To(BeZero(), "nothing changed before the expiry")

		fakeNow.Step(time.Minute)
		Expect(reconcileOnce(w).RequeueAfter).To(BeZero(), "nothing left that expires")
		c := condition(Default, w, string(phiguardv1alpha1.EncryptedAtRest))
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonDecisionExpired))
		Expect(c.LastTransitionTime.Time).To(BeTemporally("==", fakeNow.Now()))
		Expect(writes.N()).To(BeEquivalentTo(1))
		Expect(recorder.Events).To(Receive(ContainSubstring("Warning DecisionExpired")))
		got := fetch(Default, w)
		Expect(got.Status.Compliance).To(Equal(phiguardv1alpha1.NonCompliant))
		Expect(meta.FindStatusCondition(got.Status.Conditions, phiguardv1alpha1.ReadyCondition)).To(And(
			HaveField("Reason", phiguardv1alpha1.SafeguardsFailingReason), HaveField("Message", ContainSubstring("failing: EncryptedAtRest"))))
	})
})
