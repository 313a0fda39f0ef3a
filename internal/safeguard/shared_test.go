package safeguard

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
)

// sharedReader answers as the manager's cache does, over what the apiserver
// held when it first read each kind (every object of it, all namespaces):
// lists and gets filtered by namespace and labels, deep copies carrying
// their kind, or, asked for with client.UnsafeDisableDeepCopy, the stored
// objects themselves (the items of a list shallow copies of them). Stored
// objects carry no TypeMeta, as the informer's do not. changed says which
// stored objects handed out so differ from copies taken when they were
// read: what a reconcile changed of the cache's own objects.
type sharedReader struct {
	// objects are the stored objects by item type; before their copies.
	objects, before map[reflect.Type][]client.Object
	// handedOut are the item types some stored objects of were handed out.
	handedOut map[reflect.Type]bool
	// shared are the kinds listed without copies, copied those listed with.
	shared, copied map[string]bool
}

func newSharedReader() *sharedReader {
	return &sharedReader{objects: map[reflect.Type][]client.Object{}, before: map[reflect.Type][]client.Object{},
		handedOut: map[reflect.Type]bool{}, shared: map[string]bool{}, copied: map[string]bool{}}
}

// load reads every object of a kind, once; list is an empty list of it.
func (r *sharedReader) load(ctx context.Context, itemType reflect.Type, list client.ObjectList) error {
	if _, ok := r.objects[itemType]; ok {
		return nil
	}
	if err := k8s.List(ctx, list); err != nil {
		return fmt.Errorf("loading %T: %w", list, err)
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return fmt.Errorf("loading %T: %w", list, err)
	}
	stored := make([]client.Object, 0, len(items))
	copies := make([]client.Object, 0, len(items))
	for _, item := range items {
		obj, ok := item.(client.Object)
		if !ok {
			return fmt.Errorf("loading %T: item %T is not an object", list, item)
		}
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		stored = append(stored, obj)
		copies = append(copies, obj.DeepCopyObject().(client.Object))
	}
	r.objects[itemType], r.before[itemType] = stored, copies
	return nil
}

func (r *sharedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	gvk, err := apiutil.GVKForObject(obj, k8s.Scheme())
	if err != nil {
		return err
	}
	list, err := k8s.Scheme().New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err != nil {
		return err
	}
	itemType := reflect.TypeOf(obj).Elem()
	if err := r.load(ctx, itemType, list.(client.ObjectList)); err != nil {
		return err
	}
	o := (&client.GetOptions{}).ApplyOptions(opts)
	for _, stored := range r.objects[itemType] {
		if stored.GetNamespace() != key.Namespace || stored.GetName() != key.Name {
			continue
		}
		if o.UnsafeDisableDeepCopy != nil && *o.UnsafeDisableDeepCopy {
			r.handedOut[itemType] = true
			reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(stored).Elem())
			return nil
		}
		reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(stored.DeepCopyObject()).Elem())
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		return nil
	}
	return apierrors.NewNotFound(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, key.Name)
}

func (r *sharedReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	if o.FieldSelector != nil || o.Limit > 0 || o.Continue != "" {
		return fmt.Errorf("sharedReader lists by namespace and labels only, not %+v", o)
	}
	gvk, err := apiutil.GVKForObject(list, k8s.Scheme())
	if err != nil {
		return err
	}
	items := reflect.ValueOf(list).Elem().FieldByName("Items")
	if !items.IsValid() {
		return fmt.Errorf("sharedReader lists typed objects only, not %T", list)
	}
	itemType := items.Type().Elem()
	if itemType.Kind() == reflect.Pointer {
		itemType = itemType.Elem()
	}
	empty, ok := reflect.New(reflect.TypeOf(list).Elem()).Interface().(client.ObjectList)
	if !ok {
		return fmt.Errorf("%T is not a list", list)
	}
	if err := r.load(ctx, itemType, empty); err != nil {
		return err
	}
	shared := o.UnsafeDisableDeepCopy != nil && *o.UnsafeDisableDeepCopy
	itemGVK := gvk.GroupVersion().WithKind(strings.TrimSuffix(gvk.Kind, "List"))
	if shared {
		r.shared[itemGVK.GroupKind().String()] = true
		r.handedOut[itemType] = true
	} else {
		r.copied[itemGVK.GroupKind().String()] = true
	}
	return apimeta.SetList(list, r.matching(itemType, o, shared, itemGVK))
}

// matching returns the stored objects of a type that the options select:
// themselves when shared, otherwise copies carrying their kind.
func (r *sharedReader) matching(itemType reflect.Type, o *client.ListOptions, shared bool, gvk schema.GroupVersionKind) []runtime.Object {
	var out []runtime.Object
	for _, obj := range r.objects[itemType] {
		if (o.Namespace != "" && obj.GetNamespace() != o.Namespace) ||
			(o.LabelSelector != nil && !o.LabelSelector.Matches(labels.Set(obj.GetLabels()))) {
			continue
		}
		if shared {
			out = append(out, obj)
			continue
		}
		c := obj.DeepCopyObject()
		c.GetObjectKind().SetGroupVersionKind(gvk)
		out = append(out, c)
	}
	return out
}

// changed names each stored object of a kind handed out without copies that
// differs from its copy taken when it was read, with the fields that differ.
// (Objects of other kinds change only by being copied: protobuf messages,
// Istio's specs, record their message info when first copied.)
func (r *sharedReader) changed() []string {
	var out []string
	for typ := range r.handedOut {
		for i, obj := range r.objects[typ] {
			before := r.before[typ][i]
			if equality.Semantic.DeepEqual(obj, before) {
				continue
			}
			out = append(out, fmt.Sprintf("%s %s/%s: %s", typ.Name(), obj.GetNamespace(), obj.GetName(), fieldsChanged(before, obj)))
		}
	}
	slices.Sort(out)
	return out
}

// fieldsChanged names the fields, two levels deep, whose JSON differs
// between two versions of an object.
func fieldsChanged(before, after client.Object) string {
	var b, a map[string]any
	for _, x := range []struct {
		obj client.Object
		m   *map[string]any
	}{{before, &b}, {after, &a}} {
		data, err := json.Marshal(x.obj)
		if err != nil {
			return err.Error()
		}
		if err := json.Unmarshal(data, x.m); err != nil {
			return err.Error()
		}
	}
	var fields []string
	for k := range mergedKeys(b, a) {
		bm, bok := b[k].(map[string]any)
		am, aok := a[k].(map[string]any)
		if !bok || !aok {
			if !reflect.DeepEqual(b[k], a[k]) {
				fields = append(fields, k)
			}
			continue
		}
		for k2 := range mergedKeys(bm, am) {
			if !reflect.DeepEqual(bm[k2], am[k2]) {
				fields = append(fields, k+"."+k2)
			}
		}
	}
	if len(fields) == 0 {
		return "a field JSON does not show"
	}
	slices.Sort(fields)
	return fmt.Sprint(fields)
}

func mergedKeys(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// sharedKinds are the kinds a reconcile lists without copies: those of the
// Shared inputs and the selected pods. PeerAuthentications and Velero's
// Restores (restore drills) are listed with copies.
var sharedKinds = []string{
	"BackupStorageLocation.velero.io", "Backup.velero.io", "ClusterRole.rbac.authorization.k8s.io",
	"ClusterRoleBinding.rbac.authorization.k8s.io", "Deployment.apps", "GRPCRoute.gateway.networking.k8s.io",
	"HTTPRoute.gateway.networking.k8s.io", "HorizontalPodAutoscaler.autoscaling", "Ingress.networking.k8s.io",
	"NetworkPolicy.networking.k8s.io", "PersistentVolumeClaim", "Pod", "PodDisruptionBudget.policy",
	"ReplicaSet.apps", "Role.rbac.authorization.k8s.io", "RoleBinding.rbac.authorization.k8s.io",
	"Schedule.velero.io", "Service", "ServiceAccount", "StatefulSet.apps", "StorageClass.storage.k8s.io",
}

// reconcileShared runs every safeguard, in order, on the scope of a stored
// workload built over a new sharedReader, as the controller does; the
// safeguards write through the plain client. It fails the test on a
// safeguard's error and on any change to the shared objects, and returns the
// reasons of the Events the safeguards recorded.
func reconcileShared(t *testing.T, w *phiguardv1alpha1.PHIWorkload) []string {
	t.Helper()
	g := NewWithT(t)
	get(t, w)
	r := newSharedReader()
	reg := New(Options{})
	s, err := reg.Scope(t.Context(), Env{Reader: r, Client: k8s, APIs: optionalapi.NewTracker(k8s.RESTMapper(), k8s, nil)}, w, time.Now())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Pods).To(HaveLen(3))
	events := make([]string, 0, len(reg))
	for _, sg := range reg {
		res := sg.Reconcile(t.Context(), s)
		g.Expect(res.Err).NotTo(HaveOccurred(), "%s", sg.Name())
		events = append(events, eventReasons(res.Events)...)
	}
	g.Expect(r.changed()).To(BeEmpty(), "the reconcile changed objects it read from the cache without copies")
	g.Expect(slices.Sorted(maps.Keys(r.shared))).To(Equal(slices.Sorted(slices.Values(sharedKinds))), "kinds listed without copies")
	g.Expect(slices.Sorted(maps.Keys(r.copied))).To(Equal([]string{"PeerAuthentication.security.istio.io", "Restore.velero.io"}),
		"kinds listed with copies")
	return events
}

// newRepresentativeWorkload stores a workload in every safeguard's mode, and
// what each of them reads: a Deployment of two pods on two nodes (no audit
// sidecar) with an autoscaler, a bare pod with a claim of an encrypted class,
// a token volume, a named port, Istio's sidecar and the audit sidecar, a pod
// it does not select sharing its ServiceAccount, a hand-written
// NetworkPolicy with selector expressions, a named port and an ipBlock,
// Services (one exposed), an Ingress with TLS, a Gateway and an HTTPRoute,
// RBAC in its namespace and another, and a completed backup of the Schedule
// phiguard keeps for it, with restore drills on.
func newRepresentativeWorkload(t *testing.T, mode phiguardv1alpha1.Mode) *phiguardv1alpha1.PHIWorkload {
	t.Helper()
	withVelero(t)
	ns, other := newNamespace(t), newNamespace(t)
	app := map[string]string{"app": "records"}
	w := newWorkload(t, ns, func(w *phiguardv1alpha1.PHIWorkload) { setModes(w, mode) })

	newReplicatedDeployment(t, ns, 2, "node-a", "node-b")
	create(t, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: ptr.To[int32](2), MaxReplicas: 4,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"}}})
	class := ns + "-encrypted"
	newEBSClass(t, class, map[string]string{"encrypted": "true"})
	newDataClaim(t, ns, class)
	create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}, AutomountServiceAccountToken: ptr.To(false)})
	newPod(t, ns, "records-0", app, func(p *corev1.Pod) {
		mounting("data")(p)
		p.Spec.ServiceAccountName = "records"
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "web", ContainerPort: 8443}}
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/token"}}
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: istioProxyContainer, Image: "istio/proxyv2:1.28.0"})
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}})
		p.Spec.NodeName = "node-a"
		withSidecar(p)
	})
	newPod(t, ns, "other-0", map[string]string{"app": "other"}, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "records" })

	create(t, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-web"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: app},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "gateway"}}}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("web"))}},
			}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.9.0.0/16", "10.1.0.0/16"}}}}}},
		}})

	newService(t, ns, "records", "")
	create(t, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-public"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: app,
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443), AppProtocol: ptr.To("https")}}}})
	create(t, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"records.example"}, SecretName: "records-tls"}},
			Rules: []networkingv1.IngressRule{{Host: "records.example", IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "records",
						Port: networkingv1.ServiceBackendPort{Number: 8443}}}}}}}}},
		}})
	create(t, &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "public"},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "example", Listeners: []gatewayv1.Listener{
			{Name: "https", Port: 443, Protocol: gatewayv1.HTTPSProtocolType,
				TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "cert"}}}},
		}}})
	create(t, &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public"}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "records", Port: ptr.To[gatewayv1.PortNumber](8443)}}}}}},
		}})

	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "records"}
	create(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}})
	create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-reads"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"}, Subjects: []rbacv1.Subject{sa}})
	create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-edits"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"}, Subjects: []rbacv1.Subject{sa}})
	create(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "secrets"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"b", "a"}}}})
	create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "records-secrets"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secrets"}, Subjects: []rbacv1.Subject{sa}})

	newCompletedBackup(t, ScheduleName(w), time.Now().Add(-time.Hour))
	return w
}

// setModes puts every safeguard of w in mode, and asks AuditLogging to
// restart the owners of pods without the sidecar, and BackupScheduled for
// restore drills.
func setModes(w *phiguardv1alpha1.PHIWorkload, mode phiguardv1alpha1.Mode) {
	s := &w.Spec.SafeguardSettings
	s.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Mode: mode}
	s.EncryptionAtRest = &phiguardv1alpha1.EncryptionAtRestSpec{Mode: mode}
	s.Backup = &phiguardv1alpha1.BackupSpec{Mode: mode, RestoreTest: "0 3 * * 0"}
	s.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{Mode: mode, RestartNonCompliant: ptr.To(true)}
	s.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: mode}
	s.AccessControl = &phiguardv1alpha1.AccessControlSpec{Mode: mode}
	s.Integrity = &phiguardv1alpha1.IntegritySpec{Mode: mode}
	s.Availability = &phiguardv1alpha1.AvailabilitySpec{Mode: mode}
}

// A reconcile of a representative workload, every safeguard in Enforce, then
// again after hand edits of what it applied and the end of its restore
// drill, then in Audit (which removes what Enforce applied), reads the pods and the Shared inputs as the cache's
// own objects and changes none of them. The reader hands out the objects it
// stores, as the cache does, and compares them with copies taken before.
func TestReconcileChangesNoSharedObject(t *testing.T) {
	g := NewWithT(t)
	w := newRepresentativeWorkload(t, phiguardv1alpha1.ModeEnforce)
	ns := w.Namespace

	g.Expect(reconcileShared(t, w)).To(ContainElements(phiguardv1alpha1.ReasonPolicyCreated,
		phiguardv1alpha1.ReasonDisruptionBudgetCreated, phiguardv1alpha1.ReasonScheduleCreated,
		phiguardv1alpha1.ReasonPeerAuthenticationCreated, phiguardv1alpha1.ReasonRolloutRestarted,
		phiguardv1alpha1.ReasonRestoreDrillStarted), "Enforce applied what it keeps")

	// Someone edits what phiguard applied: the next pass extracts its fields
	// from the stored objects, and reverts the edits.
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: NetworkPolicyName(w.Name)}}
	g.Expect(k8s.Patch(t.Context(), np, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"policyTypes":["Ingress"]}}`)),
		client.FieldOwner("kubectl-edit"))).To(Succeed())
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DisruptionBudgetName(w.Name)}}
	g.Expect(k8s.Patch(t.Context(), pdb, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"maxUnavailable":2}}`)),
		client.FieldOwner("kubectl-edit"))).To(Succeed())
	// Velero ends the drill: the next pass records its result on the Restore.
	drills, err := listDrills(t.Context(), k8s, w, veleroNamespace)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(drills).To(HaveLen(1))
	drills[0].Status.Phase = velerov1.RestorePhaseCompleted
	g.Expect(k8s.Update(t.Context(), &drills[0])).To(Succeed()) // no status subresource
	g.Expect(reconcileShared(t, w)).To(ContainElements(phiguardv1alpha1.ReasonPolicyDrifted,
		phiguardv1alpha1.ReasonDisruptionBudgetUpdated, phiguardv1alpha1.ReasonRestoreFailed),
		"Enforce reverted the edits and recorded the drill")

	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) { setModes(w, phiguardv1alpha1.ModeAudit) })
	g.Expect(reconcileShared(t, w)).To(ContainElements(phiguardv1alpha1.ReasonPolicyRemoved,
		phiguardv1alpha1.ReasonDisruptionBudgetRemoved, phiguardv1alpha1.ReasonScheduleRemoved,
		phiguardv1alpha1.ReasonPeerAuthenticationRemoved), "Audit removed what Enforce applied")
}

// The check above can fail: a change to a label of a pod listed without
// copies is a change to the stored pod, and named.
func TestSharedReaderNamesAChangedObject(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, nil)
	r := newSharedReader()

	var shared corev1.PodList
	g.Expect(r.List(t.Context(), &shared, client.InNamespace(ns), client.UnsafeDisableDeepCopy)).To(Succeed())
	g.Expect(shared.Items).To(HaveLen(1))
	g.Expect(shared.Items[0].Kind).To(BeEmpty(), "a stored object carries no kind")
	shared.Items[0].Name = "renamed" // the item itself is a shallow copy: the caller's
	g.Expect(r.changed()).To(BeEmpty())

	var copied corev1.PodList
	g.Expect(r.List(t.Context(), &copied, client.InNamespace(ns))).To(Succeed())
	g.Expect(copied.Items).To(HaveLen(1))
	g.Expect(copied.Items[0].Kind).To(Equal("Pod"), "a copy carries its kind, as the cache's do")
	copied.Items[0].Labels["app"] = "changed"
	g.Expect(r.changed()).To(BeEmpty(), "a copy is the caller's")

	shared.Items[0].Labels["app"] = "changed"
	g.Expect(r.changed()).To(Equal([]string{"Pod " + ns + "/records-0: [metadata.labels]"}))
}
