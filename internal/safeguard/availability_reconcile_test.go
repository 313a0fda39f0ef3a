package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// newReplicatedDeployment stores a Deployment api of replicas, its
// ReplicaSet and one pod per node given (labelled app=records, bound to the
// node by spec.nodeName), as the controller-manager and the scheduler, which
// envtest does not run, would make them.
func newReplicatedDeployment(t *testing.T, ns string, replicas int32, nodes ...string) {
	t.Helper()
	labels := map[string]string{"app": "records"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}}},
		},
	}
	create(t, dep)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api-5d4f8"},
		Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), Selector: dep.Spec.Selector, Template: dep.Spec.Template},
	}
	controlledBy(rs, "Deployment", dep)
	create(t, rs)
	for i, node := range nodes {
		newPod(t, ns, "api-5d4f8-x"+string(rune('1'+i)), labels, func(p *corev1.Pod) {
			controlledBy(p, "ReplicaSet", rs)
			p.Spec.NodeName = node
		})
	}
}

func enforceAvailability(w *phiguardv1alpha1.PHIWorkload) {
	w.Spec.Availability = &phiguardv1alpha1.AvailabilitySpec{Mode: phiguardv1alpha1.ModeEnforce}
}

func userBudget(ns, name string, selector map[string]string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: selector}}}
}

func TestAvailableEnforceGeneratesItsBudgetAndThenWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, enforceAvailability)
	newReplicatedDeployment(t, ns, 2, "node-a", "node-b")
	c, writes := countingClient(t)

	r := Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonRedundant))
	g.Expect(r.Message).To(Equal("the 2 selected pods belong to Deployment api (2 replicas), each at least availability.minReplicas 2; " +
		"PodDisruptionBudgets cover every pod, one each (phiguard-records); spread: Deployment api runs on nodes node-a, node-b"))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonDisruptionBudgetCreated}))
	g.Expect(r.Events[0].Message).To(Equal("created PodDisruptionBudget phiguard-records (maxUnavailable: 1) for the selected pods"))
	g.Expect(writes.N()).To(Equal(int64(1)), "one apply")

	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	get(t, pdb)
	g.Expect(pdb.Spec.MaxUnavailable).To(HaveValue(Equal(intstr.FromInt32(1))))
	g.Expect(pdb.Spec.MinAvailable).To(BeNil())
	g.Expect(pdb.Spec.Selector).To(HaveValue(Equal(metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}})))
	g.Expect(pdb.OwnerReferences).To(Equal([]metav1.OwnerReference{{
		APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload", Name: "records", UID: w.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}))
	g.Expect(pdb.Labels).To(HaveKeyWithValue(phiguardv1alpha1.ManagedByLabel, phiguardv1alpha1.ManagedByValue))
	g.Expect(pdb.ManagedFields).To(ContainElement(HaveField("Manager", "phiguard")))
	g.Expect(r.Events[0].Related).To(HaveValue(And(HaveField("UID", pdb.UID), HaveField("ResourceVersion", pdb.ResourceVersion))),
		"the Event refers to the version the apply left")

	again := Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(again.Err).NotTo(HaveOccurred())
	g.Expect(again.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(again.Message).To(Equal(r.Message), "judged from the budget the apiserver holds")
	g.Expect(again.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)), "a steady reconcile makes no write")
}

func TestAvailableEnforceRemovesItsBudgetWhenAUsersComesToCoverThePods(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, enforceAvailability)
	newReplicatedDeployment(t, ns, 2, "node-a", "node-b")
	c, writes := countingClient(t)
	r := Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonDisruptionBudgetCreated}))
	ours := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	get(t, ours)

	create(t, userBudget(ns, "records-pdb", map[string]string{"app": "records"}))
	writes.Reset()
	r = Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonDisruptionBudgetRemoved}))
	g.Expect(r.Events[0].Message).To(Equal("removed PodDisruptionBudget phiguard-records, which phiguard generated: " +
		"PodDisruptionBudget records-pdb covers selected pods, and a pod matched by two budgets cannot be evicted at all"))
	g.Expect(r.Events[0].Related).To(HaveValue(HaveField("UID", ours.UID)))
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue), "judged with the user's budget alone")
	g.Expect(r.Message).To(ContainSubstring("PodDisruptionBudgets cover every pod, one each (records-pdb)"))
	g.Expect(writes.N()).To(Equal(int64(1)), "one delete")
	err := k8s.Get(t.Context(), client.ObjectKeyFromObject(ours), &policyv1.PodDisruptionBudget{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "phiguard's budget is gone: %v", err)

	r = Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)), "nothing generated beside the user's budget")
}

func TestAvailableEnforceGeneratesNoBudgetBesideAUsersCoveringSomePods(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, enforceAvailability)
	newReplicatedDeployment(t, ns, 2, "node-a", "node-b")
	newPod(t, ns, "canary", map[string]string{"app": "records", "track": "canary"}, nil)
	create(t, userBudget(ns, "canary-pdb", map[string]string{"track": "canary"}))
	c, writes := countingClient(t)

	r := Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonNoReplicatedOwner), "the bare canary pod is the first finding")
	g.Expect(r.Message).To(ContainSubstring("canary (no owner)"))
	g.Expect(r.Message).To(ContainSubstring("2 of 3 selected pods are covered by no PodDisruptionBudget, so a node drain may evict them all at once: " +
		"api-5d4f8-x1, api-5d4f8-x2; PodDisruptionBudget canary-pdb covers the others, so phiguard generates none"))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(BeZero())
	err := k8s.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "phiguard-records"}, &policyv1.PodDisruptionBudget{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no overlapping budget: %v", err)
}

func TestAvailableEnforceLeavesABudgetOfItsNameItDoesNotOwn(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, enforceAvailability)
	newReplicatedDeployment(t, ns, 2, "node-a", "node-b")
	theirs := userBudget(ns, "phiguard-records", map[string]string{"app": "payments"})
	create(t, theirs)
	c, writes := countingClient(t)

	r := Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonDisruptionBudgetNameTaken))
	g.Expect(writes.N()).To(BeZero())
	stored := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	get(t, stored)
	g.Expect(stored.ResourceVersion).To(Equal(theirs.ResourceVersion), "left untouched")
}

// Audit reports and writes nothing; leaving Enforce removes the budget
// phiguard generated, once.
func TestAvailableAuditReportsAndRemovesOnlyWhatEnforceGenerated(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newReplicatedDeployment(t, ns, 1, "node-a")
	c, writes := countingClient(t)

	r := Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonTooFewReplicas))
	g.Expect(r.Message).To(Equal("1 owner runs below availability.minReplicas 2: Deployment api (1 replica); " +
		"raise spec.replicas (or the HorizontalPodAutoscaler's minReplicas) to at least 2; " +
		"1 of 1 selected pods are covered by no PodDisruptionBudget, so a node drain may evict them all at once: api-5d4f8-x1; " +
		"add a PodDisruptionBudget (maxUnavailable: 1) selecting them, or set availability.mode to Enforce for phiguard to generate one; " +
		"1 owner runs every selected pod on one node, so losing that node loses them all: Deployment api (all 1 selected pods on node node-a); " +
		"spread them with a topologySpreadConstraint or a podAntiAffinity on kubernetes.io/hostname in the pod template"))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(BeZero(), "Audit only reports")

	updateWorkload(t, w, enforceAvailability)
	r = Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonDisruptionBudgetCreated}))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonTooFewReplicas), "phiguard never scales the user's workload")
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"}}
	get(t, dep)
	g.Expect(dep.Spec.Replicas).To(HaveValue(BeEquivalentTo(1)))

	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) { w.Spec.Availability = nil })
	writes.Reset()
	r = Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonDisruptionBudgetRemoved}))
	g.Expect(r.Events[0].Message).To(Equal("removed PodDisruptionBudget phiguard-records, which phiguard generated: availability.mode is Audit"))
	g.Expect(r.Message).To(ContainSubstring("1 of 1 selected pods are covered by no PodDisruptionBudget"))
	g.Expect(writes.N()).To(Equal(int64(1)))

	r = Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)), "a steady Audit reconcile writes nothing")
}

func TestAvailableEnforceRevertsAHandEditOfItsBudget(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, enforceAvailability)
	newReplicatedDeployment(t, ns, 2, "node-a", "node-b")
	c, writes := countingClient(t)
	r := Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonDisruptionBudgetCreated}))

	// Someone lets every pod go at once.
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	g.Expect(k8s.Patch(t.Context(), pdb, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"maxUnavailable":"100%"}}`)),
		client.FieldOwner("kubectl-edit"))).To(Succeed())
	writes.Reset()

	r = Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonDisruptionBudgetUpdated}))
	g.Expect(r.Events[0].Warning).To(BeTrue(), "a repair is a Warning")
	g.Expect(r.Events[0].Message).To(Equal("reverted changes that kubectl-edit made to PodDisruptionBudget phiguard-records (maxUnavailable: 1, the workload's selector)"))
	g.Expect(writes.N()).To(Equal(int64(1)))
	get(t, pdb)
	g.Expect(pdb.Spec.MaxUnavailable).To(HaveValue(Equal(intstr.FromInt32(1))))

	r = Availability{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)), "reverted, it is phiguard's again")
}
