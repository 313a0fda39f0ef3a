package safeguard

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The objects of the judgment's table tests, all in namespace ns and
// labelled app=records unless a case says otherwise.

var recordsLabels = map[string]string{"app": "records"}

func ownedBy(apiVersion, kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(kind + "/" + name), Controller: ptr.To(true)}}
}

func availPod(name, node string, owners []metav1.OwnerReference) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: recordsLabels, OwnerReferences: owners},
		Spec: corev1.PodSpec{NodeName: node}}
}

func recordsTemplate(mutate func(*corev1.PodSpec)) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: recordsLabels}}
	if mutate != nil {
		mutate(&t.Spec)
	}
	return t
}

// apiDeployment is the Deployment api, the owner of apiRS.
func apiDeployment(replicas int32, mutate func(*corev1.PodSpec)) appsv1.Deployment {
	return appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "api", UID: types.UID("Deployment/api")},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Template: recordsTemplate(mutate)}}
}

func availReplicaSet(name string, owners []metav1.OwnerReference) appsv1.ReplicaSet {
	return appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("ReplicaSet/" + name), OwnerReferences: owners},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Template: recordsTemplate(nil)}}
}

func availStatefulSet(name string, replicas int32, mutate func(*corev1.PodSpec)) appsv1.StatefulSet {
	return appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("StatefulSet/" + name)},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(replicas), Template: recordsTemplate(mutate)}}
}

func availAutoscaler(name, kind, target string, minReplicas int32) autoscalingv2.HorizontalPodAutoscaler {
	return autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: target},
			MinReplicas:    ptr.To(minReplicas), MaxReplicas: 10,
		}}
}

func availBudget(name string, selector *metav1.LabelSelector) policyv1.PodDisruptionBudget {
	return policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{Selector: selector, MaxUnavailable: ptr.To(intstr.FromInt32(1))}}
}

var (
	byRecordsLabels = &metav1.LabelSelector{MatchLabels: recordsLabels}
	ofAPI           = ownedBy("apps/v1", "ReplicaSet", "api-5d4f8")
	apiRS           = availReplicaSet("api-5d4f8", ownedBy("apps/v1", "Deployment", "api"))
)

// spreadOverHostnames declares a topologySpreadConstraint on hostnames over the records pods.
func spreadOverHostnames(s *corev1.PodSpec) {
	s.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: corev1.LabelHostname,
		WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: byRecordsLabels}}
}

func TestAvailabilityJudgement(t *testing.T) {
	antiAffinity := func(selector *metav1.LabelSelector, key string) func(*corev1.PodSpec) {
		return func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
					PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: selector}}},
			}}
		}
	}
	for _, tc := range []struct {
		name    string
		pods    []corev1.Pod
		in      availabilityInputs
		enforce bool
		status  metav1.ConditionStatus
		reason  string
		message string
	}{{
		name: "a Deployment of two replicas on two nodes with a budget holds",
		pods: []corev1.Pod{availPod("api-x2", "node-b", ofAPI), availPod("api-x1", "node-a", ofAPI)},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS}, Deployments: []appsv1.Deployment{apiDeployment(2, nil)},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("api", byRecordsLabels)}},
		status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonRedundant,
		message: "the 2 selected pods belong to Deployment api (2 replicas), each at least availability.minReplicas 2; " +
			"PodDisruptionBudgets cover every pod, one each (api); spread: Deployment api runs on nodes node-a, node-b",
	}, {
		name: "a StatefulSet whose template spreads it holds before its pods are scheduled; an empty budget selector covers every pod",
		pods: []corev1.Pod{availPod("db-0", "", ownedBy("apps/v1", "StatefulSet", "db")), availPod("db-1", "", ownedBy("apps/v1", "StatefulSet", "db"))},
		in: availabilityInputs{StatefulSets: []appsv1.StatefulSet{availStatefulSet("db", 3, spreadOverHostnames)},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("everything", &metav1.LabelSelector{})}},
		status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonRedundant,
		message: "the 2 selected pods belong to StatefulSet db (3 replicas), each at least availability.minReplicas 2; " +
			"PodDisruptionBudgets cover every pod, one each (everything); spread: StatefulSet db declares a topologySpreadConstraint on kubernetes.io/hostname",
	}, {
		name: "an autoscaler's minReplicas is what counts, even above spec.replicas; an anti-affinity over zones spreads",
		pods: []corev1.Pod{availPod("api-x1", "node-a", ofAPI)},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS},
			Deployments: []appsv1.Deployment{apiDeployment(1, antiAffinity(byRecordsLabels, corev1.LabelTopologyZone))},
			Autoscalers: []autoscalingv2.HorizontalPodAutoscaler{availAutoscaler("api", "Deployment", "api", 3), availAutoscaler("other", "Deployment", "other", 1)},
			Budgets:     []policyv1.PodDisruptionBudget{availBudget("api", byRecordsLabels)}},
		status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonRedundant,
		message: "the 1 selected pods belong to Deployment api (at least 3 replicas, the minReplicas of HorizontalPodAutoscaler api), each at least availability.minReplicas 2; " +
			"PodDisruptionBudgets cover every pod, one each (api); spread: Deployment api declares a preferred podAntiAffinity on topology.kubernetes.io/zone",
	}, {
		name: "a bare pod, a Job's, a DaemonSet's and a ReplicaSet of another controller's have no replicated owner",
		pods: []corev1.Pod{
			availPod("bare", "node-a", nil),
			availPod("job-x", "node-a", ownedBy("batch/v1", "Job", "migrate")),
			availPod("agent-x", "node-a", ownedBy("apps/v1", "DaemonSet", "agent")),
			availPod("canary-x", "node-a", ownedBy("apps/v1", "ReplicaSet", "canary-7f")),
		},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{availReplicaSet("canary-7f", ownedBy("argoproj.io/v1alpha1", "Rollout", "canary"))},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("all", byRecordsLabels)}},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonNoReplicatedOwner,
		message: "4 of 4 selected pods belong to no Deployment or StatefulSet, so nothing replaces them when they are lost: " +
			"agent-x (owned by DaemonSet agent), bare (no owner), " +
			"canary-x (its ReplicaSet canary-7f is controlled by Rollout canary, which phiguard does not judge), job-x (owned by Job migrate); " +
			"run them from a Deployment or StatefulSet of at least 2 replicas",
	}, {
		name: "a ReplicaSet nothing controls is an owner of its own; an autoscaler may scale a Deployment below minReplicas",
		pods: []corev1.Pod{availPod("solo-x", "node-a", ownedBy("apps/v1", "ReplicaSet", "solo")), availPod("api-x1", "node-b", ofAPI)},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{availReplicaSet("solo", nil), apiRS},
			Deployments: []appsv1.Deployment{apiDeployment(4, spreadOverHostnames)},
			Autoscalers: []autoscalingv2.HorizontalPodAutoscaler{availAutoscaler("api", "Deployment", "api", 1)},
			Budgets:     []policyv1.PodDisruptionBudget{availBudget("all", byRecordsLabels)}, MinReplicas: 3},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonTooFewReplicas,
		message: "2 owners run below availability.minReplicas 3: Deployment api (at least 1 replica, the minReplicas of HorizontalPodAutoscaler api), ReplicaSet solo (2 replicas); " +
			"raise spec.replicas (or the HorizontalPodAutoscaler's minReplicas) to at least 3; " +
			"1 owner runs every selected pod on one node, so losing that node loses them all: ReplicaSet solo (all 1 selected pods on node node-a); " +
			"spread them with a topologySpreadConstraint or a podAntiAffinity on kubernetes.io/hostname in the pod template",
	}, {
		name: "a declared spread does not outweigh pods the scheduler placed on one node",
		pods: []corev1.Pod{availPod("api-x1", "node-a", ofAPI), availPod("api-x2", "node-a", ofAPI)},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS}, Deployments: []appsv1.Deployment{apiDeployment(2, spreadOverHostnames)},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("api", byRecordsLabels)}},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonPodsOnOneNode,
		message: "1 owner runs every selected pod on one node, so losing that node loses them all: Deployment api (all 2 scheduled pods on node node-a, " +
			"although it declares a topologySpreadConstraint on kubernetes.io/hostname, which the scheduler applies only when it places a pod: delete one of them to have it placed again); " +
			"spread them with a topologySpreadConstraint or a podAntiAffinity on kubernetes.io/hostname in the pod template",
	}, {
		name: "in Audit, pods no budget covers are named with the fix; a budget without a selector covers nothing",
		pods: []corev1.Pod{availPod("api-x1", "node-a", ofAPI), availPod("api-x2", "node-b", ofAPI)},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS}, Deployments: []appsv1.Deployment{apiDeployment(2, nil)},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("no-selector", nil), availBudget("other", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}})}},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonNoDisruptionBudget,
		message: "2 of 2 selected pods are covered by no PodDisruptionBudget, so a node drain may evict them all at once: api-x1, api-x2; " +
			"add a PodDisruptionBudget (maxUnavailable: 1) selecting them, or set availability.mode to Enforce for phiguard to generate one",
	}, {
		name: "in Enforce, a user's budget covering some pods is named and phiguard generates none",
		pods: []corev1.Pod{availPod("api-x1", "node-a", ofAPI), func() corev1.Pod {
			p := availPod("api-x2", "node-b", ofAPI)
			p.Labels = map[string]string{"app": "records", "tier": "canary"}
			return p
		}()},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS}, Deployments: []appsv1.Deployment{apiDeployment(2, nil)},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("canary", &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "canary"}})}},
		enforce: true,
		status:  metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonNoDisruptionBudget,
		message: "1 of 2 selected pods are covered by no PodDisruptionBudget, so a node drain may evict them all at once: api-x1; " +
			"PodDisruptionBudget canary covers the others, so phiguard generates none (a pod matched by two budgets cannot be evicted at all): widen it to cover these pods",
	}, {
		name: "a pod two budgets match cannot be evicted",
		pods: []corev1.Pod{availPod("api-x1", "node-a", ofAPI), availPod("api-x2", "node-b", ofAPI)},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS}, Deployments: []appsv1.Deployment{apiDeployment(2, nil)},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("a", byRecordsLabels), availBudget("b", &metav1.LabelSelector{})}},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonOverlappingDisruptionBudgets,
		message: "2 of 2 selected pods are matched by more than one PodDisruptionBudget, and the eviction API refuses to evict such a pod at all (a node drain stalls): " +
			"api-x1 (a, b), api-x2 (a, b); keep one budget per pod",
	}, {
		name: "an anti-affinity that selects other pods does not spread these; all on one node fails",
		pods: []corev1.Pod{availPod("api-x1", "node-a", ofAPI), availPod("api-x2", "node-a", ofAPI)},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS},
			Deployments: []appsv1.Deployment{apiDeployment(2, antiAffinity(&metav1.LabelSelector{MatchLabels: map[string]string{"app": "cache"}}, corev1.LabelHostname))},
			Budgets:     []policyv1.PodDisruptionBudget{availBudget("api", byRecordsLabels)}},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonPodsOnOneNode,
		message: "1 owner runs every selected pod on one node, so losing that node loses them all: Deployment api (all 2 selected pods on node node-a); " +
			"spread them with a topologySpreadConstraint or a podAntiAffinity on kubernetes.io/hostname in the pod template",
	}, {
		name: "pods not yet scheduled with no declared spread are Unknown",
		pods: []corev1.Pod{availPod("api-x1", "node-a", ofAPI), availPod("api-x2", "", ofAPI)},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS}, Deployments: []appsv1.Deployment{apiDeployment(2, nil)},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("api", byRecordsLabels)}},
		status: metav1.ConditionUnknown, reason: phiguardv1alpha1.ReasonPodsNotScheduled,
		message: "the spread of 1 owner cannot be judged yet: their pods are seen on fewer than two nodes, some are not scheduled, and their pod templates declare no spread: " +
			"Deployment api (pods api-x2 not scheduled yet)",
	}, {
		name: "an owner not in the cluster is Unknown, or named beside what fails",
		pods: []corev1.Pod{availPod("api-x1", "node-a", ofAPI), availPod("db-0", "node-b", ownedBy("apps/v1", "StatefulSet", "db"))},
		in: availabilityInputs{ReplicaSets: []appsv1.ReplicaSet{apiRS},
			Budgets: []policyv1.PodDisruptionBudget{availBudget("api", byRecordsLabels)}},
		status: metav1.ConditionUnknown, reason: phiguardv1alpha1.ReasonOwnerNotFound,
		message: "the owners of 2 selected pods are not found, so their replicas cannot be judged: " +
			"api-x1 (the Deployment api of its ReplicaSet api-5d4f8 is not found), db-0 (its StatefulSet db is not found)",
	}, {
		name:   "False wins over Unknown, and the message keeps both",
		pods:   []corev1.Pod{availPod("bare", "node-a", nil), availPod("db-0", "node-b", ownedBy("apps/v1", "StatefulSet", "db"))},
		in:     availabilityInputs{Budgets: []policyv1.PodDisruptionBudget{availBudget("all", byRecordsLabels)}},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonNoReplicatedOwner,
		message: "1 of 2 selected pods belong to no Deployment or StatefulSet, so nothing replaces them when they are lost: bare (no owner); " +
			"run them from a Deployment or StatefulSet of at least 2 replicas; " +
			"the owners of 1 selected pods are not found, so their replicas cannot be judged: db-0 (its StatefulSet db is not found)",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			if tc.in.MinReplicas == 0 {
				tc.in.MinReplicas = 2
			}
			r := judgeAvailability(tc.pods, tc.in).result(tc.enforce, "")
			g.Expect(r.Status).To(Equal(tc.status))
			g.Expect(r.Reason).To(Equal(tc.reason))
			g.Expect(r.Message).To(Equal(tc.message))
		})
	}
}

func TestAvailabilityNamesABudgetNameTakenInsteadOfUncoveredPods(t *testing.T) {
	g := NewWithT(t)
	j := judgeAvailability([]corev1.Pod{availPod("api-x1", "node-a", ofAPI), availPod("api-x2", "node-b", ofAPI)}, availabilityInputs{
		ReplicaSets: []appsv1.ReplicaSet{apiRS}, Deployments: []appsv1.Deployment{apiDeployment(2, nil)}, MinReplicas: 2})
	r := j.result(true, "phiguard-records")
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonDisruptionBudgetNameTaken))
	g.Expect(r.Message).To(Equal("PodDisruptionBudget phiguard-records exists, is not phiguard's and covers none of the selected pods; " +
		"rename or delete it so that phiguard can generate its budget"))
}

// Two workloads selecting the same pods: the budget of the first name stays.
func TestAvailabilityYieldsToTheBudgetOfTheFirstName(t *testing.T) {
	g := NewWithT(t)
	workload := func(name string) *phiguardv1alpha1.PHIWorkload {
		return &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name)}}
	}
	generated := func(w *phiguardv1alpha1.PHIWorkload) policyv1.PodDisruptionBudget {
		b := availBudget(DisruptionBudgetName(w.Name), byRecordsLabels)
		b.OwnerReferences = []metav1.OwnerReference{{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload",
			Name: w.Name, UID: w.UID, Controller: ptr.To(true)}}
		return b
	}
	a, b := workload("a"), workload("b")
	users := availBudget("users", &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "x"}})
	ofA, ofB := generated(a), generated(b)

	// a keeps its own: b's, of a later name, does not count against it.
	g.Expect(yieldTo(a, []policyv1.PodDisruptionBudget{ofA}, []policyv1.PodDisruptionBudget{ofB, users})).To(Equal([]policyv1.PodDisruptionBudget{users}))
	// b yields to a's.
	g.Expect(yieldTo(b, []policyv1.PodDisruptionBudget{ofB}, []policyv1.PodDisruptionBudget{ofA, users})).To(Equal([]policyv1.PodDisruptionBudget{ofA, users}))
	// Without a budget of its own, a generates none beside b's.
	g.Expect(yieldTo(a, nil, []policyv1.PodDisruptionBudget{ofB})).To(Equal([]policyv1.PodDisruptionBudget{ofB}))
}
