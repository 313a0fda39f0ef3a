package cli_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// ephiNow is the time the risk tests judge decisions at (--at).
var ephiNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// ephiWorld is a clinic for risk and inventory, its names prefixed so that
// each test has its own:
//
//   - <p>-clinic, labelled phiguard.io/ephi (no workload generated: no
//     manager runs): PHIWorkload records (two pods of Deployment records through
//     a ReplicaSet, one with the audit sidecar and one without; ServiceAccount
//     records; an encrypted claim and one on an unencrypted class; Service and
//     Ingress records; a Velero Schedule; decisions expiring in 10 days and
//     expired 3 days ago) and PHIWorkload intake (a bare pod opted out of the
//     sidecar, the default ServiceAccount, a hostPath volume, no backup, a
//     decision expiring in 5 months);
//   - labelled objects: Deployment records (covered by the hand-written
//     workload), Deployment reports (no workload generated: no manager runs),
//     Service legacy (no selector), Deployment billing (labelled "yes");
//   - NetworkPolicies: default-deny (ingress, every pod), allow-web (records:
//     in from frontend pods of namespaces labelled team=web on https, and from
//     any pod of them on 9090-9091; out to 10.20.0.0/16 on 5432 and to
//     kube-dns), allow-same (records from records), allow-metrics (records
//     from anywhere on 9100);
//   - <p>-web (team=web): two frontend pods;
//   - RBAC: a Role letting alice@clinic.example exec and port-forward in <p>-clinic;
//   - StorageClasses <p>-encrypted (EBS, encrypted) and <p>-plain (local-path);
//   - <p>-velero: Velero's namespace for these workloads, with a BackupStorageLocation.
type ephiWorld struct {
	clinic, web, velero string
	encrypted, plain    string
}

func newEPHIWorld(t *testing.T, prefix string) ephiWorld {
	t.Helper()
	w := ephiWorld{clinic: prefix + "-clinic", web: prefix + "-web", velero: prefix + "-velero",
		encrypted: prefix + "-encrypted", plain: prefix + "-plain"}
	ns := w.clinic
	ephiCreate(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.clinic, Labels: map[string]string{phiguardv1alpha1.EPHILabel: "true"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.web, Labels: map[string]string{"team": "web"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.velero}},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: w.encrypted}, Provisioner: "ebs.csi.aws.com",
			Parameters: map[string]string{"type": "gp3", "encrypted": "true"}},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: w.plain}, Provisioner: "rancher.io/local-path"},
		ephiClaim(ns, "records-data", w.encrypted),
		ephiClaim(ns, "scratch", w.plain),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "records"},
			Ports:    []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromString("https")}}}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}, Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"records.clinic.example"}, SecretName: "records-tls"}},
			Rules: []networkingv1.IngressRule{{Host: "records.clinic.example", IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "records", Port: networkingv1.ServiceBackendPort{Name: "https"}}}}}}}}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy",
			Labels: map[string]string{phiguardv1alpha1.EPHILabel: "true"}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		ephiDeployment(ns, "reports", "true"),
		ephiDeployment(ns, "billing", "yes"),
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "debug-pods"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/portforward"}, Verbs: []string{"create"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-debugs"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "debug-pods"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice@clinic.example"}}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default-deny"}, Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-web"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "web"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "frontend"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("https"))}}}, {
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "web"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(9090)), EndPort: ptr.To[int32](9091)}}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.0/16", Except: []string{"10.20.5.0/24"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(5432))}}},
				{To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}}}},
					Ports: []networkingv1.NetworkPolicyPort{
						{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))},
						{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(53))}}}}}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-same"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}}}}}}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-metrics"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(9100))}}}}}},
		ephiPod(w.web, "frontend-0", "frontend", nil),
		ephiPod(w.web, "frontend-1", "frontend", nil),
		&velerov1.BackupStorageLocation{ObjectMeta: metav1.ObjectMeta{Namespace: w.velero, Name: "clinic-backups"},
			Spec: velerov1.BackupStorageLocationSpec{Provider: "aws", StorageType: velerov1.StorageType{
				ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: "clinic-backups", Prefix: ns}}}},
	)

	// Deployment records, labelled, its ReplicaSet and its two pods.
	deploy := ephiDeployment(ns, "records", "true")
	ephiCreate(t, deploy)
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-6d5f7", Labels: map[string]string{"app": "records"},
		OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", deploy)}},
		Spec: appsv1.ReplicaSetSpec{Selector: deploy.Spec.Selector, Template: deploy.Spec.Template}}
	ephiCreate(t, rs)
	records := func(name, image string) *corev1.Pod {
		p := ephiPod(ns, name, "records", []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs)})
		p.Spec.ServiceAccountName = "records"
		p.Spec.Containers[0].Image = image
		p.Spec.Volumes = []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "records-data"}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "scratch"}}},
		}
		return p
	}
	withSidecar := records("records-0", "registry.example/records@sha256:1111111111111111111111111111111111111111111111111111111111111111")
	withSidecar.Annotations = map[string]string{safeguard.AuditInjectedAnnotation: "records/" + safeguard.DefaultAuditSidecarImage}
	withSidecar.Spec.InitContainers = []corev1.Container{{Name: safeguard.AuditSidecarName, Image: safeguard.DefaultAuditSidecarImage,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
	byTag := records("records-1", "registry.example/records:1.4")
	intake := ephiPod(ns, "intake-0", "intake", nil)
	intake.Annotations = map[string]string{safeguard.AuditOptOutAnnotation: "false"}
	intake.Spec.Volumes = []corev1.Volume{{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log/intake"}}}}
	ephiCreate(t, withSidecar, byTag, intake)
	// The kubelet's report of the digest the tagged image resolved to.
	byTag.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: byTag.Spec.Containers[0].Image,
		ImageID: "registry.example/records@sha256:2222222222222222222222222222222222222222222222222222222222222222"}}
	if err := k8sClient.Status().Update(t.Context(), byTag); err != nil {
		t.Fatalf("writing the status of pod %s: %v", byTag.Name, err)
	}

	// The two PHIWorkloads, and the status phiguard would have written.
	recordsW := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
				Backup:               &phiguardv1alpha1.BackupSpec{VeleroNamespace: w.velero, StorageLocation: "clinic-backups"},
				EncryptionAtRest:     &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff},
				TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff},
			},
			Decisions: []phiguardv1alpha1.Decision{
				ephiDecision(phiguardv1alpha1.EncryptedAtRest, ephiNow.Add(-3*24*time.Hour)),
				ephiDecision(phiguardv1alpha1.TransmissionSecure, ephiNow.Add(10*24*time.Hour)),
			}}}
	intakeW := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "intake"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "intake"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
				Backup:               &phiguardv1alpha1.BackupSpec{VeleroNamespace: w.velero},
				TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff},
			},
			Decisions: []phiguardv1alpha1.Decision{ephiDecision(phiguardv1alpha1.TransmissionSecure, ephiNow.Add(150*24*time.Hour))}}}
	ephiCreate(t, recordsW, intakeW)
	ephiStatus(t, recordsW, 2, map[phiguardv1alpha1.SafeguardName][2]string{
		phiguardv1alpha1.EncryptedAtRest: {phiguardv1alpha1.ReasonDecisionExpired, "the decision (kind Alternative) approved by security-officer@clinic.example expired at 2029-12-29T00:00:00Z"},
		phiguardv1alpha1.AuditLogging:    {phiguardv1alpha1.ReasonPodsWithoutSidecar, "1 of 2 selected pods lack the audit sidecar: records-1 (no phiguard-audit container)"},
	}, nil)
	ephiStatus(t, intakeW, 1, map[phiguardv1alpha1.SafeguardName][2]string{
		phiguardv1alpha1.AccessControlled: {phiguardv1alpha1.ReasonDefaultServiceAccount, "ServiceAccount default (pods intake-0) is the namespace's default"},
	}, []phiguardv1alpha1.SafeguardName{phiguardv1alpha1.Available})

	// phiguard's Schedule for records, as Enforce keeps it.
	ephiCreate(t, &velerov1.Schedule{ObjectMeta: metav1.ObjectMeta{Namespace: w.velero, Name: safeguard.ScheduleName(recordsW),
		Labels: safeguard.ScheduleLabels(recordsW)},
		Spec: velerov1.ScheduleSpec{Schedule: "0 2 * * *", Template: velerov1.BackupSpec{
			IncludedNamespaces: []string{ns}, StorageLocation: "clinic-backups",
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}}}})
	return w
}

// ephiCreate creates objects, failing the test on the first error.
func ephiCreate(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8sClient.Create(t.Context(), o); err != nil {
			t.Fatalf("creating %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err)
		}
	}
}

func ephiClaim(ns, name, class string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(class),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
}

// ephiDeployment is a Deployment of app=name labelled phiguard.io/ephi=label.
func ephiDeployment(ns, name, label string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{phiguardv1alpha1.EPHILabel: label}},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/" + name + ":1"}}}}}}
}

// ephiPod is a pod of app=app with one container, app, listening on https (8443).
func ephiPod(ns, name, app string, owners []metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}, OwnerReferences: owners},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/" + app + ":1",
			Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 8443}}}}}}
}

func controllerRef(apiVersion, kind string, owner client.Object) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(), Controller: ptr.To(true)}
}

func ephiDecision(sg phiguardv1alpha1.SafeguardName, expires time.Time) phiguardv1alpha1.Decision {
	return phiguardv1alpha1.Decision{Safeguard: sg, Kind: phiguardv1alpha1.DecisionAlternative,
		AlternativeMeasure: "volumes and traffic are encrypted by the platform below the pods",
		Justification:      "documented in the clinic's risk register, entry 42",
		ApprovedBy:         "security-officer@clinic.example", Expires: metav1.NewTime(expires)}
}

// ephiStatus writes the status phiguard would have written: every safeguard
// True except those failing (False, with reason and message) and those
// pending (no condition yet); decisions recorded by admin@clinic.example.
func ephiStatus(t *testing.T, w *phiguardv1alpha1.PHIWorkload, pods int32,
	failing map[phiguardv1alpha1.SafeguardName][2]string, pending []phiguardv1alpha1.SafeguardName) {
	t.Helper()
	st := &w.Status
	st.ObservedGeneration, st.MatchedPods, st.Policy = w.Generation, pods, phiguardv1alpha1.DefaultPolicyName
	registry := safeguard.New(safeguard.Options{})
	holding := 0
	for _, name := range registry.Names() {
		rule := registry.Rule(name)
		c := metav1.Condition{Type: string(name), Status: metav1.ConditionTrue, Reason: "Holds", Message: string(name) + " holds"}
		if f, ok := failing[name]; ok {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, f[0], f[1]
		} else if slices.Contains(pending, name) {
			continue
		} else {
			holding++
		}
		meta.SetStatusCondition(&st.Conditions, c)
		st.Safeguards = append(st.Safeguards, phiguardv1alpha1.SafeguardStatus{Name: name, Section: rule.Section,
			Specification: rule.Specification, Mode: phiguardv1alpha1.ModeAudit, ModeSource: phiguardv1alpha1.SourceDefault,
			Status: c.Status, Reason: c.Reason})
	}
	st.Compliance, st.Score = phiguardv1alpha1.NonCompliant, fmt.Sprintf("%d/%d", holding, len(registry.Names()))
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: phiguardv1alpha1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: "NonCompliant", Message: "some safeguards do not hold"})
	for _, d := range w.Spec.Decisions {
		st.Decisions = append(st.Decisions, phiguardv1alpha1.DecisionStatus{Safeguard: d.Safeguard, ApprovedBy: d.ApprovedBy, RecordedBy: "admin@clinic.example"})
	}
	if err := k8sClient.Status().Update(t.Context(), w); err != nil {
		t.Fatalf("writing the status of %s/%s: %v", w.Namespace, w.Name, err)
	}
}
