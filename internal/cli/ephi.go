package cli

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/report"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// risk and inventory read each PHIWorkload as the manager does before it
// judges one: phiguard's scope builder (safeguard.Registry.Scope) resolves the
// effective settings, the selected pods and the inputs of the safeguards
// whose facts they report. Their judgments are then made by the safeguards'
// own exported functions, never again here. Nothing is written.

// defaultManagerNamespace is where phiguard's manager runs unless told
// otherwise; like kube-system it is never judged.
const defaultManagerNamespace = "phiguard-system"

// scopeRegistry holds the safeguards whose inputs risk and inventory read:
// the NetworkPolicies, claims and StorageClasses, Velero's objects, the audit
// sidecar's settings, ServiceAccounts and RBAC, and the pods' owners.
// TransmissionSecure is read apart (its Services and Ingresses inputs): its
// other inputs need kinds outside phiguard's base scheme.
var scopeRegistry = safeguard.Registry{
	safeguard.NetworkIsolation{},
	safeguard.EncryptionAtRest{},
	safeguard.BackupScheduling{},
	safeguard.AuditLogging{},
	safeguard.AccessControl{},
	safeguard.Availability{},
}

// ephiWorkload is one PHIWorkload and what phiguard's scope builder read for it.
type ephiWorkload struct {
	*phiguardv1alpha1.PHIWorkload
	// scope holds the effective settings, the selected pods and the inputs;
	// nil when notEvaluated is set.
	scope *safeguard.Scope
	// notEvaluated says why phiguard does not judge the workload (its
	// namespace is exempt, its selector is invalid); "" when it does.
	notEvaluated string
}

// key is the workload as namespace/name.
func (w *ephiWorkload) key() string { return w.Namespace + "/" + w.Name }

// ephiReader reads what risk and inventory report, each list once.
type ephiReader struct {
	// client is the command's client; ephiReader only reads.
	client client.Client
	reader *cachedReader
	env    safeguard.Env
	now    time.Time
}

// ephiFlags are the flags risk and inventory share.
type ephiFlags struct {
	managerNamespace string
}

func (f *ephiFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.managerNamespace, "manager-namespace", defaultManagerNamespace,
		"Namespace phiguard's manager runs in: like kube-system, never judged.")
}

// newEPHIReader reads through the command's client.
func newEPHIReader(o *Options, f *ephiFlags, now time.Time) (*ephiReader, error) {
	c, err := o.Client()
	if err != nil {
		return nil, err
	}
	cached := newCachedReader(c, c.Scheme())
	return &ephiReader{client: c, reader: cached, now: now, env: safeguard.Env{
		Reader:           cached,
		APIs:             optionalapi.NewTracker(c.RESTMapper(), cached, nil),
		ExemptNamespaces: []string{"kube-system", f.managerNamespace},
	}}, nil
}

// workloads reads the PHIWorkloads of a namespace ("" for every one), sorted
// by namespace and name, each with its scope.
func (r *ephiReader) workloads(ctx context.Context, ns string) ([]*ephiWorkload, error) {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := r.reader.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing PHIWorkloads: %w", err)
	}
	out := make([]*ephiWorkload, 0, len(list.Items))
	for _, w := range report.Sorted(list.Items) {
		if !w.DeletionTimestamp.IsZero() {
			continue
		}
		ew := &ephiWorkload{PHIWorkload: w}
		s, err := scopeRegistry.Scope(ctx, r.env, w, r.now)
		switch stalled := safeguard.AsStalled(err); {
		case stalled != nil:
			ew.notEvaluated = stalled.Error()
		case err != nil:
			return nil, fmt.Errorf("reading what PHIWorkload %s/%s selects: %w", w.Namespace, w.Name, err)
		default:
			ew.scope = s
		}
		out = append(out, ew)
	}
	return out, nil
}

// cachedReader answers each distinct Get and List once, from what it read
// the first time: risk and inventory judge many workloads against the same
// lists (a namespace's pods and NetworkPolicies, the cluster's RBAC), which
// the manager reads from its cache. Callers get copies.
type cachedReader struct {
	r      client.Reader
	scheme *runtime.Scheme
	gets   map[string]cachedGet
	lists  map[string]client.ObjectList
}

type cachedGet struct {
	obj client.Object
	err error
}

func newCachedReader(r client.Reader, scheme *runtime.Scheme) *cachedReader {
	return &cachedReader{r: r, scheme: scheme, gets: map[string]cachedGet{}, lists: map[string]client.ObjectList{}}
}

// Get implements client.Reader; a NotFound is remembered too.
func (c *cachedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	gvk, err := apiutil.GVKForObject(obj, c.scheme)
	if err != nil {
		return fmt.Errorf("finding the kind of %T: %w", obj, err)
	}
	k := gvk.String() + " " + key.String()
	hit, ok := c.gets[k]
	if !ok {
		hit.err = c.r.Get(ctx, key, obj, opts...)
		if hit.err == nil {
			hit.obj = obj.DeepCopyObject().(client.Object)
		}
		c.gets[k] = hit
		return hit.err
	}
	if hit.err != nil {
		return hit.err
	}
	copyInto(obj, hit.obj)
	return nil
}

// List implements client.Reader.
func (c *cachedReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	gvk, err := apiutil.GVKForObject(list, c.scheme)
	if err != nil {
		return fmt.Errorf("finding the kind of %T: %w", list, err)
	}
	o := (&client.ListOptions{}).ApplyOptions(opts)
	k := gvk.String() + " " + o.Namespace
	if o.LabelSelector != nil {
		k += " l:" + o.LabelSelector.String()
	}
	if o.FieldSelector != nil {
		k += " f:" + o.FieldSelector.String()
	}
	if hit, ok := c.lists[k]; ok {
		copyInto(list, hit)
		return nil
	}
	if err := c.r.List(ctx, list, opts...); err != nil {
		return err //nolint:wrapcheck // the caller names what it listed
	}
	c.lists[k] = list.DeepCopyObject().(client.ObjectList)
	return nil
}

// cachedClient is a client whose reads go through a cachedReader, for code
// that wants a client.Client to read with (the label reconciler's judgment).
// risk and inventory never write.
type cachedClient struct {
	client.Client
	cache *cachedReader
}

// Get implements client.Reader.
func (c cachedClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return c.cache.Get(ctx, key, obj, opts...)
}

// List implements client.Reader.
func (c cachedClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return c.cache.List(ctx, list, opts...)
}

// copyInto sets *dst to a deep copy of src, an object of the same type.
func copyInto(dst, src runtime.Object) {
	reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(src.DeepCopyObject()).Elem())
}

// sortedMapKeys returns the keys of m, sorted.
func sortedMapKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// sortedUnique returns the distinct strings of in, sorted.
func sortedUnique(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}
