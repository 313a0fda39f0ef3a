// Package optionalapi knows which optional APIs (Velero, Istio, the
// Prometheus Operator, Gateway API, the policy report APIs) the cluster serves. Their CRDs may be
// installed before or after phiguard: a metadata-only watch on
// CustomResourceDefinitions brings the workloads back when they appear, and
// the first reconcile that finds an API served starts the watches on its
// kinds, once, without a restart.
package optionalapi

import (
	"context"
	"fmt"
	"slices"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// API is an API group phiguard uses when it is installed and reports on when
// it is not.
type API struct {
	// Name is the API's name in reasons and messages, such as "Velero".
	Name string
	// NotInstalledReason is the reason a safeguard that needs the API reports
	// while it is not served (a constant of api/v1alpha1).
	NotInstalledReason string
	// Install says how to install it, for messages.
	Install string
	// GroupVersion is the version phiguard reads.
	GroupVersion schema.GroupVersion
	// Kinds are the kinds phiguard reads; all must be served.
	Kinds []string
	// CRDs are the names of the CustomResourceDefinitions of those kinds.
	CRDs []string
}

// The optional APIs phiguard knows.
var (
	Velero = &API{
		Name: "Velero", NotInstalledReason: phiguardv1alpha1.ReasonVeleroNotInstalled,
		Install:      "install Velero (velero install, or its Helm chart) with a BackupStorageLocation",
		GroupVersion: schema.GroupVersion{Group: "velero.io", Version: "v1"},
		Kinds:        []string{"Schedule", "Backup", "BackupStorageLocation"},
		CRDs:         []string{"schedules.velero.io", "backups.velero.io", "backupstoragelocations.velero.io"},
	}
	Istio = &API{
		Name: "Istio", NotInstalledReason: phiguardv1alpha1.ReasonIstioNotInstalled,
		Install:      "install Istio (istioctl install, or its Helm charts)",
		GroupVersion: schema.GroupVersion{Group: "security.istio.io", Version: "v1"},
		Kinds:        []string{"PeerAuthentication"},
		CRDs:         []string{"peerauthentications.security.istio.io"},
	}
	PrometheusOperator = &API{
		Name: "PrometheusOperator", NotInstalledReason: phiguardv1alpha1.ReasonPrometheusOperatorNotInstalled,
		Install:      "install the Prometheus Operator (kube-prometheus-stack, or its bundle)",
		GroupVersion: schema.GroupVersion{Group: "monitoring.coreos.com", Version: "v1"},
		Kinds:        []string{"ServiceMonitor", "PrometheusRule"},
		CRDs:         []string{"servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"},
	}
	GatewayAPI = &API{
		Name: "GatewayAPI", NotInstalledReason: phiguardv1alpha1.ReasonGatewayAPINotInstalled,
		Install:      "install Gateway API's standard CRDs (v1.1 or later, which serve GRPCRoute v1)",
		GroupVersion: schema.GroupVersion{Group: "gateway.networking.k8s.io", Version: "v1"},
		Kinds:        []string{"Gateway", "HTTPRoute", "GRPCRoute"},
		CRDs: []string{"gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
			"grpcroutes.gateway.networking.k8s.io"},
	}
	// PolicyReports is the wg-policy PolicyReport API that Policy Reporter
	// reads. No safeguard needs it (NotInstalledReason is empty): without it
	// phiguard writes no reports.
	PolicyReports = &API{
		Name:         "PolicyReports",
		Install:      "install the wgpolicyk8s.io PolicyReport CRDs (Kyverno's or Policy Reporter's Helm chart ships them)",
		GroupVersion: schema.GroupVersion{Group: "wgpolicyk8s.io", Version: "v1alpha2"},
		Kinds:        []string{"PolicyReport", "ClusterPolicyReport"},
		CRDs:         []string{"policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"},
	}
	// OpenReports is the openreports.io successor of PolicyReports. No
	// safeguard needs it either.
	OpenReports = &API{
		Name:         "OpenReports",
		Install:      "install the openreports.io CRDs (github.com/openreports/reports-api config/crd)",
		GroupVersion: schema.GroupVersion{Group: "openreports.io", Version: "v1alpha1"},
		Kinds:        []string{"Report", "ClusterReport"},
		CRDs:         []string{"reports.openreports.io", "clusterreports.openreports.io"},
	}
)

// State is whether the cluster serves an API.
type State int

const (
	// NotInstalled means its CRDs are not in the cluster.
	NotInstalled State = iota
	// Pending means its CRDs exist but the apiserver does not serve all its kinds
	// yet; look again within seconds.
	Pending
	// Served means every kind phiguard reads is served, and its watches run.
	Served
)

func (s State) String() string {
	return [...]string{"NotInstalled", "Pending", "Served"}[s]
}

// Tracker answers whether an API is served and starts the watches that wait
// for it. It is safe for concurrent reconciles.
type Tracker struct {
	mapper meta.RESTMapper
	reader client.Reader
	start  func(source.TypedSource[reconcile.Request]) error

	mu      sync.Mutex
	waiting map[*API][]source.TypedSource[reconcile.Request]
	started map[*API]bool
}

// NewTracker returns a Tracker that reads CRD metadata through reader (a
// cache that holds it) and servedness through mapper. start starts a watch on
// the controller; nil when no watch is ever started (tests of a scope alone).
func NewTracker(mapper meta.RESTMapper, reader client.Reader, start func(source.TypedSource[reconcile.Request]) error) *Tracker {
	return &Tracker{mapper: mapper, reader: reader, start: start,
		waiting: map[*API][]source.TypedSource[reconcile.Request]{}, started: map[*API]bool{}}
}

// WatchWhenServed registers a watch on one of api's kinds, started by the
// first State call that finds the API served.
func (t *Tracker) WatchWhenServed(api *API, src source.TypedSource[reconcile.Request]) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waiting[api] = append(t.waiting[api], src)
}

// State says whether api is served; when it is, the watches waiting for it
// are started first (once), so that a reconcile that reads the API's objects
// is followed by their changes. An API whose CRDs are not all there is not
// installed, known from cached metadata alone: the RESTMapper would ask the
// apiserver's discovery for a group it does not serve on every call.
func (t *Tracker) State(ctx context.Context, api *API) (State, error) {
	present, err := t.crdsPresent(ctx, api)
	if err != nil || !present {
		return NotInstalled, err
	}
	for _, kind := range api.Kinds {
		if _, err := t.mapper.RESTMapping(api.GroupVersion.WithKind(kind).GroupKind(), api.GroupVersion.Version); err != nil {
			if !meta.IsNoMatchError(err) {
				return NotInstalled, fmt.Errorf("discovering %s's %s: %w", api.Name, kind, err)
			}
			// The CRDs' events may all have come before discovery serves the
			// kinds: the caller looks again shortly.
			return Pending, nil
		}
	}
	return Served, t.startWatches(ctx, api)
}

func (t *Tracker) startWatches(ctx context.Context, api *API) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started[api] || t.start == nil {
		return nil
	}
	for _, src := range t.waiting[api] {
		if err := t.start(src); err != nil {
			return fmt.Errorf("starting a watch on %s's objects: %w", api.Name, err)
		}
	}
	t.started[api] = true
	if len(t.waiting[api]) > 0 {
		logf.FromContext(ctx).Info("optional API served: watching its objects", "api", api.Name, "kinds", api.Kinds)
	}
	return nil
}

// crdsPresent says whether all of api's CRDs exist (from cached metadata),
// whether or not the apiserver serves their kinds yet.
func (t *Tracker) crdsPresent(ctx context.Context, api *API) (bool, error) {
	for _, name := range api.CRDs {
		var crd metav1.PartialObjectMetadata
		crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		if err := t.reader.Get(ctx, client.ObjectKey{Name: name}, &crd); apierrors.IsNotFound(err) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("reading CRD %s: %w", name, err)
		}
	}
	return true, nil
}

// OwnsCRD says whether a CRD, by name, belongs to one of apis.
func OwnsCRD(apis []*API, name string) bool {
	for _, api := range apis {
		if slices.Contains(api.CRDs, name) {
			return true
		}
	}
	return false
}
