//go:build e2e

package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/safeguard"
)

const timeout, poll = 2 * time.Minute, 250 * time.Millisecond

func labels(app string) map[string]string { return map[string]string{"app": app} }

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels(app)},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptrTo(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.example/" + app + ":1"}},
		},
	}
}

func deployment(ns, name string, replicas int32, objLabels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: objLabels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels(name)},
			Template: podTemplate(name),
		},
	}
}

func workload(ns, name, app string) *phiguardv1alpha1.PHIWorkload {
	return &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: labels(app)}},
	}
}

func get(g Gomega, key types.NamespacedName) *phiguardv1alpha1.PHIWorkload {
	var w phiguardv1alpha1.PHIWorkload
	g.ExpectWithOffset(1, k8s.Get(ctx, key, &w)).To(Succeed())
	return &w
}

func conditionStatus(w *phiguardv1alpha1.PHIWorkload, typ phiguardv1alpha1.SafeguardName) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(w.Status.Conditions, string(typ)); c != nil {
		return c.Status
	}
	return ""
}

// runningPods returns the app's pods that are not being deleted.
func runningPods(g Gomega, ns, app string) []corev1.Pod {
	var list corev1.PodList
	g.ExpectWithOffset(1, k8s.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels(labels(app)))).To(Succeed())
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func hasSidecar(p corev1.Pod) bool {
	for _, c := range p.Spec.InitContainers {
		if c.Name == safeguard.AuditSidecarName {
			return true
		}
	}
	return false
}

// The cases share one cluster and one manager, and the last one kills it:
// they run in order.
var _ = Describe("phiguard on a full cluster", Ordered, func() {
	It("reports every safeguard's condition for a PHIWorkload over a plain Deployment", func() {
		ns := newNamespace("e2e-ready")
		key := client.ObjectKeyFromObject(workload(ns, "records", "records"))
		Expect(k8s.Create(ctx, workload(ns, "records", "records"))).To(Succeed())
		Expect(k8s.Create(ctx, deployment(ns, "records", 2, nil))).To(Succeed())
		By("Velero (played by the test) completes a backup of phiguard's Schedule")
		completeBackup(workload(ns, "records", "records"))
		Eventually(func(g Gomega) {
			w := get(g, key)
			g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation))
			g.Expect(w.Status.MatchedPods).To(Equal(int32(2)))
			for _, name := range []phiguardv1alpha1.SafeguardName{phiguardv1alpha1.NetworkIsolated,
				phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.BackupScheduled, phiguardv1alpha1.AuditLogging} {
				g.Expect(conditionStatus(w, name)).To(Equal(metav1.ConditionTrue), "%s", name)
			}
			ready := meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			// A plain Deployment meets the other four only in part: no Service
			// declares TLS and no mesh runs (TransmissionSecure), its pods run
			// as the namespace's default ServiceAccount (AccessControlled),
			// the app container is neither hardened nor pinned by digest
			// (IntegrityProtected), and no PodDisruptionBudget covers the pods
			// (Available, in Audit, its built-in mode, generates none).
			g.Expect(w.Status.Compliance).To(Equal(phiguardv1alpha1.NonCompliant))
			g.Expect(ready.Message).To(Equal("failing: TransmissionSecure, AccessControlled, IntegrityProtected, Available"))
			g.Expect(w.Status.Score).To(Equal("4/8"))
			for name, reason := range map[phiguardv1alpha1.SafeguardName]string{
				phiguardv1alpha1.TransmissionSecure: phiguardv1alpha1.ReasonNoInClusterEncryption,
				phiguardv1alpha1.AccessControlled:   phiguardv1alpha1.ReasonDefaultServiceAccount,
				phiguardv1alpha1.Available:          phiguardv1alpha1.ReasonNoDisruptionBudget,
			} {
				c := meta.FindStatusCondition(w.Status.Conditions, string(name))
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Status).To(Equal(metav1.ConditionFalse), "%s", name)
				g.Expect(c.Reason).To(Equal(reason), "%s: %s", name, c.Message)
			}
		}, timeout, poll).Should(Succeed())
		Eventually(func(g Gomega) {
			pods := runningPods(g, ns, "records")
			g.Expect(pods).To(HaveLen(2))
			integrity := meta.FindStatusCondition(get(g, key).Status.Conditions, string(phiguardv1alpha1.IntegrityProtected))
			g.Expect(integrity).NotTo(BeNil())
			g.Expect(integrity.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(integrity.Reason).To(Equal(phiguardv1alpha1.ReasonContainersMutable))
			g.Expect(integrity.Message).To(HavePrefix("2 of 2 selected pods run containers that could alter their own software: "))
			for _, p := range pods {
				g.Expect(metav1.GetControllerOf(&p).Kind).To(Equal("ReplicaSet"), "pods come from the Deployment's ReplicaSet")
				g.Expect(p.Spec.NodeName).NotTo(BeEmpty(), "scheduled")
				g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
				g.Expect(hasSidecar(p)).To(BeTrue(), "pod %s was injected", p.Name)
				// The injected sidecar is not judged; the app container fails every check.
				g.Expect(integrity.Message).To(ContainSubstring(p.Name + ` (container app: allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), ` +
					`unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), ` +
					`runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), ` +
					`seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"), ` +
					`root filesystem not read-only (securityContext.readOnlyRootFilesystem must be true), image registry.example/records:1 not pinned by digest)`))
			}
		}, timeout, poll).Should(Succeed())
	})

	It("removes the NetworkPolicy by garbage collection when the PHIWorkload is deleted, and keeps Velero's Backups", func() {
		ns := newNamespace("e2e-delete")
		w := workload(ns, "records", "records")
		Expect(k8s.Create(ctx, w)).To(Succeed())
		schedule := safeguard.ScheduleName(w)
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "phiguard-records"}, &networkingv1.NetworkPolicy{})).To(Succeed())
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: "velero", Name: schedule}, &velerov1.Schedule{})).To(Succeed())
		}, timeout, poll).Should(Succeed())
		backup := &velerov1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: schedule + "-20261123020000",
			Labels: map[string]string{velerov1.ScheduleNameLabel: schedule}}}
		Expect(k8s.Create(ctx, backup)).To(Succeed())

		Expect(k8s.Delete(ctx, w)).To(Succeed())
		Eventually(func(g Gomega) {
			err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "phiguard-records"}, &networkingv1.NetworkPolicy{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "NetworkPolicy still there: %v", err)
			err = k8s.Get(ctx, types.NamespacedName{Namespace: "velero", Name: schedule}, &velerov1.Schedule{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Schedule still there: %v", err)
		}, timeout, poll).Should(Succeed())
		Consistently(func() error {
			return k8s.Get(ctx, client.ObjectKeyFromObject(backup), &velerov1.Backup{})
		}, 3*time.Second, poll).Should(Succeed(), "deleting a PHIWorkload never deletes a backup")
	})

	It("replaces a Deployment's pods that predate the PHIWorkload with injected ones (restartNonCompliant)", func() {
		ns := newNamespace("e2e-restart")
		Expect(k8s.Create(ctx, deployment(ns, "billing", 2, nil))).To(Succeed())
		var before []string
		Eventually(func(g Gomega) {
			pods := runningPods(g, ns, "billing")
			g.Expect(pods).To(HaveLen(2))
			before = make([]string, 0, len(pods))
			for _, p := range pods {
				g.Expect(hasSidecar(p)).To(BeFalse())
				g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
				before = append(before, p.Name)
			}
		}, timeout, poll).Should(Succeed())

		w := workload(ns, "billing", "billing")
		w.Spec.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{RestartNonCompliant: ptrTo(true)}
		Expect(k8s.Create(ctx, w)).To(Succeed())
		Eventually(func(g Gomega) {
			pods := runningPods(g, ns, "billing")
			g.Expect(pods).To(HaveLen(2))
			for _, p := range pods {
				g.Expect(before).NotTo(ContainElement(p.Name), "an old pod is still running")
				g.Expect(hasSidecar(p)).To(BeTrue())
				g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
			}
			g.Expect(conditionStatus(get(g, client.ObjectKeyFromObject(w)), phiguardv1alpha1.AuditLogging)).To(Equal(metav1.ConditionTrue))
		}, timeout, poll).Should(Succeed())
	})

	It("denies a StatefulSet whose claims would be unencrypted, and creates the PVCs of one on an encrypted class", func() {
		ns := newNamespace("e2e-storage")
		for _, sc := range []*storagev1.StorageClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "e2e-plain"}, Provisioner: "rancher.io/local-path"},
			{ObjectMeta: metav1.ObjectMeta{Name: "e2e-encrypted"}, Provisioner: "ebs.csi.aws.com",
				Parameters: map[string]string{"type": "gp3", "encrypted": "true"}},
		} {
			Expect(k8s.Create(ctx, sc)).To(Succeed())
		}
		Expect(k8s.Create(ctx, workload(ns, "db", "db"))).To(Succeed())
		// The webhook judges from the manager's cache: wait until the manager
		// has seen the workload (it reported on it).
		Eventually(func(g Gomega) {
			g.Expect(get(g, types.NamespacedName{Namespace: ns, Name: "db"}).Status.ObservedGeneration).To(Equal(int64(1)))
		}, timeout, poll).Should(Succeed())
		statefulSet := func(class string) *appsv1.StatefulSet {
			return &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
				Spec: appsv1.StatefulSetSpec{
					Replicas: ptrTo(int32(1)),
					Selector: &metav1.LabelSelector{MatchLabels: labels("db")},
					Template: podTemplate("db"),
					VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
						ObjectMeta: metav1.ObjectMeta{Name: "data"},
						Spec: corev1.PersistentVolumeClaimSpec{
							StorageClassName: ptrTo(class),
							AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
							Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
								corev1.ResourceStorage: resource.MustParse("1Gi")}},
						},
					}},
				},
			}
		}
		err := k8s.Create(ctx, statefulSet("e2e-plain"))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(And(ContainSubstring("StorageClass e2e-plain is not encrypted"), ContainSubstring("e2e-encrypted")))

		Expect(k8s.Create(ctx, statefulSet("e2e-encrypted"))).To(Succeed())
		Eventually(func() error {
			return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "data-db-0"}, &corev1.PersistentVolumeClaim{})
		}, timeout, poll).Should(Succeed(), "the StatefulSet controller created the claim")
	})

	It("covers a Deployment labelled phiguard.io/ephi without any hand-written PHIWorkload", func() {
		ns := newNamespace("e2e-label")
		Expect(k8s.Create(ctx, deployment(ns, "portal", 2, map[string]string{phiguardv1alpha1.EPHILabel: "true"}))).To(Succeed())
		key := types.NamespacedName{Namespace: ns, Name: "deploy-portal"}
		Eventually(func(g Gomega) {
			w := get(g, key)
			g.Expect(w.Labels).To(HaveKeyWithValue(phiguardv1alpha1.GeneratedFromLabel, "Deployment"))
			g.Expect(w.Status.MatchedPods).To(Equal(int32(2)))
			g.Expect(conditionStatus(w, phiguardv1alpha1.NetworkIsolated)).To(Equal(metav1.ConditionTrue))
			// Its first pods started before the workload existed; the policy's
			// restartNonCompliant replaced them with injected ones.
			g.Expect(conditionStatus(w, phiguardv1alpha1.AuditLogging)).To(Equal(metav1.ConditionTrue))
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "phiguard-deploy-portal"}, &networkingv1.NetworkPolicy{})).To(Succeed())
		}, timeout, poll).Should(Succeed())

		By("deleting the Deployment removes its PHIWorkload")
		Expect(k8s.Delete(ctx, deployment(ns, "portal", 2, nil))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, key, &phiguardv1alpha1.PHIWorkload{}))
		}, timeout, poll).Should(BeTrue())
	})

	It("turns NetworkIsolated False while an allow-all NetworkPolicy opens the pods, and True once it is gone", func() {
		ns := newNamespace("e2e-bypass")
		key := types.NamespacedName{Namespace: ns, Name: "records"}
		Expect(k8s.Create(ctx, workload(ns, "records", "records"))).To(Succeed())
		Expect(k8s.Create(ctx, deployment(ns, "records", 1, nil))).To(Succeed())
		isolated := func(g Gomega) *metav1.Condition {
			c := meta.FindStatusCondition(get(g, key).Status.Conditions, string(phiguardv1alpha1.NetworkIsolated))
			g.ExpectWithOffset(1, c).NotTo(BeNil())
			return c
		}
		Eventually(func(g Gomega) {
			g.Expect(get(g, key).Status.MatchedPods).To(Equal(int32(1)))
			g.Expect(isolated(g)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", phiguardv1alpha1.ReasonPolicyApplied)))
		}, timeout, poll).Should(Succeed())

		By("a NetworkPolicy that lets anything in and out of every pod of the namespace")
		allowAll := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-all"},
			Spec: networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
				Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			},
		}
		start := time.Now()
		Expect(k8s.Create(ctx, allowAll)).To(Succeed())
		Eventually(func(g Gomega) {
			pods := runningPods(g, ns, "records")
			g.Expect(pods).To(HaveLen(1))
			c := isolated(g)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonIsolationBypassed))
			g.Expect(c.Message).To(Equal("NetworkPolicy phiguard-records is applied, but NetworkPolicy " + ns + "/allow-all opens ingress from anywhere " +
				"on any port for 1 of 1 selected pods (" + pods[0].Name + "), wider than networkIsolation declares; NetworkPolicies add up, " +
				"so narrow or remove it, or declare what it opens in networkIsolation"))
		}).WithTimeout(5 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
		AddReportEntry("NetworkIsolated False after an allow-all policy", time.Since(start).String())

		By("deleting it")
		start = time.Now()
		Expect(k8s.Delete(ctx, allowAll)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(isolated(g)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", phiguardv1alpha1.ReasonPolicyApplied)))
		}).WithTimeout(5 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
		AddReportEntry("NetworkIsolated True after the allow-all policy is deleted", time.Since(start).String())
	})

	It("converges every one of 200 PHIWorkloads after the manager is killed half way, with no duplicates", func() {
		ns := newNamespace("e2e-kill")
		const workloads, labelled = 200, 20
		for i := range workloads {
			Expect(k8s.Create(ctx, workload(ns, fmt.Sprintf("w-%03d", i), fmt.Sprintf("w-%03d", i)))).To(Succeed())
		}
		for i := range labelled {
			Expect(k8s.Create(ctx, deployment(ns, fmt.Sprintf("api-%02d", i), 1, map[string]string{phiguardv1alpha1.EPHILabel: "true"}))).To(Succeed())
		}
		// Kill it once some, but not all, have a status.
		Eventually(func(g Gomega) {
			var list phiguardv1alpha1.PHIWorkloadList
			g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			done := 0
			for _, w := range list.Items {
				if w.Status.ObservedGeneration == w.Generation {
					done++
				}
			}
			g.Expect(done).To(BeNumerically(">=", 10))
		}, timeout, 50*time.Millisecond).Should(Succeed())
		Expect(manager.Kill()).To(Succeed())
		var list phiguardv1alpha1.PHIWorkloadList
		Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		settled := 0
		for _, w := range list.Items {
			if w.Status.ObservedGeneration == w.Generation {
				settled++
			}
		}
		AddReportEntry("settled when killed", fmt.Sprintf("%d of %d", settled, len(list.Items)))

		startManager()
		Eventually(func(g Gomega) {
			var list phiguardv1alpha1.PHIWorkloadList
			g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(HaveLen(workloads+labelled), "one generated workload per labelled Deployment, no more")
			for _, w := range list.Items {
				g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation), w.Name)
				// The hand-written workloads select no pod: nothing to judge.
				isolated := meta.FindStatusCondition(w.Status.Conditions, string(phiguardv1alpha1.NetworkIsolated))
				g.Expect(isolated).NotTo(BeNil(), w.Name)
				if _, generated := w.Labels[phiguardv1alpha1.GeneratedFromLabel]; generated {
					g.Expect(isolated.Status).To(Equal(metav1.ConditionTrue), w.Name)
				} else {
					g.Expect(isolated.Reason).To(Equal(phiguardv1alpha1.ReasonNoPodsSelected), w.Name)
				}
				backup := meta.FindStatusCondition(w.Status.Conditions, string(phiguardv1alpha1.BackupScheduled))
				g.Expect(backup).NotTo(BeNil(), w.Name)
				g.Expect(backup.Reason).To(Equal(phiguardv1alpha1.ReasonAwaitingFirstBackup), w.Name)
			}
			var policies networkingv1.NetworkPolicyList
			g.Expect(k8s.List(ctx, &policies, client.InNamespace(ns))).To(Succeed())
			g.Expect(policies.Items).To(HaveLen(workloads+labelled), "one NetworkPolicy per workload")
			var schedules velerov1.ScheduleList
			g.Expect(k8s.List(ctx, &schedules, client.InNamespace("velero"),
				client.MatchingLabels{"phiguard.io/workload-namespace": ns})).To(Succeed())
			g.Expect(schedules.Items).To(HaveLen(workloads+labelled), "one Schedule per workload")
		}, 5*time.Minute, time.Second).Should(Succeed())

		By("the evidence trail, written by both lives of the manager, verifies and holds every workload's results")
		Eventually(func(g Gomega) {
			recs := verifiedEvidence(g, ns)
			seen := map[string]bool{}
			for _, r := range recs {
				if r.Kind == evidence.KindResult {
					seen[r.Workload.Name] = true
				}
			}
			g.Expect(seen).To(HaveLen(workloads + labelled))
		}, time.Minute, time.Second).Should(Succeed())
	})
})

// verifiedEvidence verifies the manager's evidence trail with the keys it
// published, and returns the records about workloads in ns.
func verifiedEvidence(g Gomega, ns string) []evidence.Record {
	var cm corev1.ConfigMap
	g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: managerNamespace, Name: evidence.ConfigMapName}, &cm)).To(Succeed())
	pub, err := evidence.ParsePublished(cm.Data)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pub.Sink).To(Equal(evidence.SinkDir))
	sink, err := evidence.NewDirSink(pub.Dir)
	g.Expect(err).NotTo(HaveOccurred())
	rep, err := evidence.Verify(ctx, sink, evidence.VerifyOptions{Keys: pub.Keys})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rep.Broken).ToNot(HaveOccurred())
	recs, err := evidence.ReadRecords(ctx, sink, evidence.ReadOptions{Namespace: ns})
	g.Expect(err).NotTo(HaveOccurred())
	return recs
}
