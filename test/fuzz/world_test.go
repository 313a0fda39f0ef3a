package fuzz

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/storageclass"
	phiwebhook "github.com/phiguard/phiguard/internal/webhook"
)

// The little cluster the webhooks decide in: the manager's cache, as a fake
// client. Namespace clinic holds two PHIWorkloads, records (every safeguard
// in Enforce, app=records) and portal (Audit, tier=web and app in [portal]),
// with their pods, a claim, a Deployment and ServiceAccounts; ward is covered
// namespace-wide; sandbox is exempt by the PHIPolicy; kube-system and
// phiguard-system are exempt always. StorageClasses are encrypted by each
// way phiguard knows, and not.

// exemptNamespaces are the namespaces the manager never acts on.
var exemptNamespaces = []string{"kube-system", "phiguard-system"}

// now is the time the webhooks decide at: before the seeded decisions expire.
var now = time.Date(2030, time.January, 15, 9, 0, 0, 0, time.UTC)

// fixedClock returns the clock the webhooks decide with.
func fixedClock() *clocktesting.FakePassiveClock { return clocktesting.NewFakePassiveClock(now) }

// world selects the cluster's PHIPolicy.
type world int

const (
	// worldWithPolicy has the PHIPolicy default: minimum modes, approvers, an
	// exempt namespace, an allow-listed StorageClass, approval to unlabel.
	worldWithPolicy world = iota
	// worldWithoutPolicy has no PHIPolicy: built-in defaults only.
	worldWithoutPolicy
)

// newScheme is the manager's scheme.
func newScheme() (*runtime.Scheme, error) {
	s, err := phischeme.New()
	if err != nil {
		return nil, err
	}
	if err := safeguard.New(safeguard.Options{}).AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding the safeguards' kinds: %w", err)
	}
	return s, nil
}

// newWorld returns a reader of the little cluster.
func newWorld(w world) (client.Reader, error) {
	s, err := newScheme()
	if err != nil {
		return nil, err
	}
	objs := worldObjects()
	if w == worldWithPolicy {
		objs = append(objs, policy())
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build(), nil
}

// policy is the PHIPolicy of worldWithPolicy.
func policy() *phiguardv1alpha1.PHIPolicy {
	return &phiguardv1alpha1.PHIPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
		Spec: phiguardv1alpha1.PHIPolicySpec{
			Defaults: phiguardv1alpha1.SafeguardSettings{
				AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{Mode: phiguardv1alpha1.ModeEnforce},
				AccessControl: &phiguardv1alpha1.AccessControlSpec{
					EmergencyAccessGroups: []string{"oncall"},
				},
			},
			Storage: &phiguardv1alpha1.StoragePolicy{EncryptedStorageClasses: []string{"allow-listed"}},
			Decisions: &phiguardv1alpha1.DecisionPolicy{
				Approvers:   &phiguardv1alpha1.Approvers{Users: []string{"security-officer@clinic.example"}, Groups: []string{"compliance"}},
				MaxLifetime: &metav1.Duration{Duration: 8760 * time.Hour},
			},
			MinimumModes: []phiguardv1alpha1.MinimumMode{
				{Safeguard: phiguardv1alpha1.IntegrityProtected, Mode: phiguardv1alpha1.ModeAudit},
				{Safeguard: phiguardv1alpha1.NetworkIsolated, Mode: phiguardv1alpha1.ModeEnforce},
			},
			ExemptNamespaces:         []string{"sandbox"},
			RequireApprovalToUnlabel: true,
		},
	}
}

// worldObjects are the objects of both worlds.
func worldObjects() []client.Object {
	ephi := map[string]string{phiguardv1alpha1.EPHILabel: phiguardv1alpha1.EPHILabelValue}
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: mergeLabels(labels, map[string]string{corev1.LabelMetadataName: name})}}
	}
	pod := func(namespace, name, serviceAccount string, labels map[string]string, claim string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
			Spec: corev1.PodSpec{ServiceAccountName: serviceAccount, Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/app@sha256:" + digest,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}}},
		}
		if claim != "" {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
		}
		return p
	}
	class := func(name, provisioner string, parameters, annotations map[string]string) *storagev1.StorageClass {
		return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Provisioner: provisioner, Parameters: parameters}
	}
	records := map[string]string{"app": "records"}
	return []client.Object{
		ns("clinic", ephi), ns("ward", ephi), ns("open", nil), ns("sandbox", ephi),
		ns("kube-system", nil), ns("phiguard-system", nil),
		recordsWorkload(), portalWorkload(), wardWorkload(),
		pod("clinic", "records-0", "records", records, "data-records-0"),
		pod("clinic", "portal-0", "default", map[string]string{"app": "portal", "tier": "web"}, ""),
		pod("clinic", "other-0", "default", map[string]string{"app": "other"}, ""),
		pod("ward", "bed-0", "default", map[string]string{"app": "bed"}, ""),
		pod("open", "free-0", "default", records, ""),
		&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "data-records-0", Labels: records},
			Spec:       corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("encrypted")},
		},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records", Labels: ephi},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: records},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: records}}},
		},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"},
			AutomountServiceAccountToken: ptr.To(false)},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "default"}},
		class("encrypted", "ebs.csi.aws.com", map[string]string{"encrypted": "true"}, map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}),
		class("plain", "ebs.csi.aws.com", nil, nil),
		class("allow-listed", "example.com/nfs", nil, nil),
		class("annotated", "example.com/nfs", nil, map[string]string{storageclass.EncryptedAnnotation: "true"}),
		class("gce-kms", "pd.csi.storage.gke.io", map[string]string{"disk-encryption-kms-key": "projects/p/locations/l/keyRings/r/cryptoKeys/k"}, nil),
	}
}

// digest is an image digest's hex part.
const digest = "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"

func mergeLabels(sets ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, s := range sets {
		for k, v := range s {
			out[k] = v
		}
	}
	return out
}

// recordsWorkload covers app=records in clinic, every safeguard in Enforce.
func recordsWorkload() *phiguardv1alpha1.PHIWorkload {
	enforce := phiguardv1alpha1.ModeEnforce
	return &phiguardv1alpha1.PHIWorkload{
		TypeMeta:   metav1.TypeMeta{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
				NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{Mode: enforce, Ingress: []phiguardv1alpha1.NetworkIngressRule{{
					From: []phiguardv1alpha1.NetworkPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}}}},
				}}},
				EncryptionAtRest:     &phiguardv1alpha1.EncryptionAtRestSpec{Mode: enforce},
				Backup:               &phiguardv1alpha1.BackupSpec{Mode: enforce, Schedule: "0 3 * * *"},
				AuditLogging:         &phiguardv1alpha1.AuditLoggingSpec{Mode: enforce},
				TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: enforce},
				AccessControl: &phiguardv1alpha1.AccessControlSpec{Mode: enforce, AllowTokenAutomount: ptr.To(false),
					EmergencyAccessGroups: []string{"oncall"}},
				Integrity:    &phiguardv1alpha1.IntegritySpec{Mode: enforce, RequireImageDigest: ptr.To(true)},
				Availability: &phiguardv1alpha1.AvailabilitySpec{Mode: enforce, MinReplicas: ptr.To[int32](2)},
			},
		},
	}
}

// portalWorkload covers tier=web, app in [portal] in clinic, in Audit, with
// encryption at rest off under a decision.
func portalWorkload() *phiguardv1alpha1.PHIWorkload {
	audit := phiguardv1alpha1.ModeAudit
	return &phiguardv1alpha1.PHIWorkload{
		TypeMeta:   metav1.TypeMeta{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "portal"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}, MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"portal"}}}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
				NetworkIsolation:     &phiguardv1alpha1.NetworkIsolationSpec{Mode: audit},
				EncryptionAtRest:     &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff},
				Backup:               &phiguardv1alpha1.BackupSpec{Mode: audit},
				AuditLogging:         &phiguardv1alpha1.AuditLoggingSpec{Mode: audit},
				TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: audit},
				AccessControl:        &phiguardv1alpha1.AccessControlSpec{Mode: audit},
				Integrity:            &phiguardv1alpha1.IntegritySpec{Mode: audit},
				Availability:         &phiguardv1alpha1.AvailabilitySpec{Mode: audit},
			},
			Decisions: []phiguardv1alpha1.Decision{{
				Safeguard: phiguardv1alpha1.EncryptedAtRest, Kind: phiguardv1alpha1.DecisionNotReasonable,
				Justification: "the portal keeps no ePHI on disk; sessions live in memory only",
				ApprovedBy:    "security-officer@clinic.example",
				Expires:       metav1.NewTime(now.Add(90 * 24 * time.Hour)),
			}},
		},
	}
}

// wardWorkload covers every pod of ward, with built-in defaults.
func wardWorkload() *phiguardv1alpha1.PHIWorkload {
	return &phiguardv1alpha1.PHIWorkload{
		TypeMeta:   metav1.TypeMeta{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ward", Name: "ward"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{NamespaceWide: true},
	}
}

// newPHIWorkloadWebhook is phiguard's PHIWorkload validator, as Setup
// registers it, deciding from reader.
func newPHIWorkloadWebhook(reader client.Reader, registry safeguard.Registry) *phiwebhook.WorkloadValidator {
	return &phiwebhook.WorkloadValidator{Reader: reader, ExemptNamespaces: exemptNamespaces, Registry: registry, Clock: fixedClock()}
}
