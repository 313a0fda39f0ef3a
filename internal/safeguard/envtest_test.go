package safeguard

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

// The package's Reconcile tests run against one real kube-apiserver and etcd
// (phiguard's CRDs and those of Velero, Istio and Gateway API installed),
// started once in TestMain. No controller-manager runs: no scheduler, no
// garbage collector, no ReplicaSets made from Deployments; tests create what
// those would.
var (
	// testCfg reaches the control plane as an administrator.
	testCfg *rest.Config
	// k8s is a plain client (no cache): what it reads is what is stored.
	k8s client.Client
)

func TestMain(m *testing.M) {
	os.Exit(runWithControlPlane(m))
}

func runWithControlPlane(m *testing.M) int {
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The optional APIs' CRDs, from the modules that ship them: their
	// safeguards find them served.
	for _, crds := range []func() ([]string, error){testenv.VeleroCRDs, testenv.IstioCRDs, testenv.GatewayAPICRDs} {
		paths, err := crds()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, paths...)
	}
	if testCfg, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	if k8s, err = newClient(testCfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// newClient returns a client of cfg that speaks the manager's scheme: the
// base one and the kinds the safeguards add (SchemeAdder).
func newClient(cfg *rest.Config) (client.Client, error) {
	s, err := phischeme.New()
	if err != nil {
		return nil, err
	}
	if err := New(Options{}).AddToScheme(s); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	return c, nil
}

var namespaces atomic.Int64

// newNamespace creates a namespace of the test's own, sg-<n>. Namespaces are
// never deleted: envtest has no namespace controller to empty them, and the
// control plane goes with the test binary.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("sg-%d", namespaces.Add(1))
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	return name
}

// create stores obj, failing the test on an error; obj then holds what was
// stored (UID, resourceVersion, creation time).
func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(t.Context(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// get reads obj's stored state into it.
func get(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatalf("reading %T %s: %v", obj, obj.GetName(), err)
	}
}

// newWorkload stores a PHIWorkload named records in ns selecting app=records,
// after mutate (which may be nil). The stored workload has a UID, which owner
// references need.
func newWorkload(t *testing.T, ns string, mutate func(*phiguardv1alpha1.PHIWorkload)) *phiguardv1alpha1.PHIWorkload {
	t.Helper()
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}},
	}
	if mutate != nil {
		mutate(w)
	}
	create(t, w)
	return w
}

// updateWorkload changes a stored workload's spec; the apiserver then raises
// its generation.
func updateWorkload(t *testing.T, w *phiguardv1alpha1.PHIWorkload, mutate func(*phiguardv1alpha1.PHIWorkload)) {
	t.Helper()
	get(t, w)
	mutate(w)
	if err := k8s.Update(t.Context(), w); err != nil {
		t.Fatalf("updating PHIWorkload %s: %v", w.Name, err)
	}
}

// newPod stores a pod in ns with labels, after mutate (which may be nil). No
// scheduler runs: it stays Pending, which no safeguard minds.
func newPod(t *testing.T, ns, name string, labels map[string]string, mutate func(*corev1.Pod)) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
	}
	if mutate != nil {
		mutate(p)
	}
	create(t, p)
}

// countingClient returns a client whose writes are counted: a Scope's Client,
// to check that a steady reconcile writes nothing.
func countingClient(t *testing.T) (client.Client, *testenv.WriteCounter) {
	t.Helper()
	w := &testenv.WriteCounter{}
	c, err := newClient(w.Wrap(testCfg))
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// scopeAt builds the scope of a stored workload as the controller does, from
// what the apiserver holds now, evaluating ages against now. c is the scope's
// Client (its writes); reads go through the plain client.
func scopeAt(t *testing.T, c client.Client, w *phiguardv1alpha1.PHIWorkload, now time.Time) *Scope {
	t.Helper()
	get(t, w)
	s, err := New(Options{}).Scope(t.Context(), Env{
		Reader: k8s, Client: c,
		APIs: optionalapi.NewTracker(k8s.RESTMapper(), k8s, nil),
	}, w, now)
	if err != nil {
		t.Fatalf("building the scope of %s/%s: %v", w.Namespace, w.Name, err)
	}
	return s
}

// eventReasons lists the reasons of a result's Events, in order.
func eventReasons(events []Event) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.Reason)
	}
	return out
}
