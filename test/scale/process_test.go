package scale

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/localcluster"
	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

// The tests in this file run the built manager (bin/manager) as a process of
// its own, with its production flags and its webhooks called by the
// apiserver, and measure what only a real process shows: its resident memory
// and a leader's failover.
//
//	make build
//	PHIGUARD_SCALE_PROCESS_WORKLOADS=1000 go test ./test/scale/ -run TestManagerProcessMemory -v
//	go test ./test/scale/ -run TestLeaderFailover -v

const (
	// procNamespace is the manager's namespace (--namespace): its leader
	// Lease, its Events and its evidence key and published ConfigMap live there.
	procNamespace = "phiguard-system"
	// procLease is the manager's leader election Lease.
	procLease = "phiguard.compliance.phiguard.io"
	// procPodsPerWorkload are the pods each PHIWorkload of these tests selects.
	procPodsPerWorkload = 2
	// procWorkloadsPerNamespace are the PHIWorkloads created in one namespace.
	procWorkloadsPerNamespace = 100
)

// TestManagerProcessMemory creates N PHIWorkloads (PHIGUARD_SCALE_PROCESS_WORKLOADS,
// default 100) each selecting two pods, lets one manager process settle them
// all, and reads the process's resident memory (VmRSS) and its peak (VmHWM)
// from /proc/<pid>/status.
func TestManagerProcessMemory(t *testing.T) {
	binary := procManagerBinary(t)
	g := NewWithT(t)
	total := envInt(t, "PHIGUARD_SCALE_PROCESS_WORKLOADS", 100)
	cp := startProcPlane(t, false)
	ctx := t.Context()
	watched := cp.watchWorkloads(t)
	var extra []string
	profile := os.Getenv("PHIGUARD_SCALE_HEAP_PROFILE") // where to save the settled manager's heap profile
	pprofAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(procFreePort(t)))
	if profile != "" {
		extra = append(extra, "--pprof-bind-address="+pprofAddr)
	}
	m := cp.startManager(t, binary, "memory", extra...)

	idle, err := procMemory(m.Pid())
	g.Expect(err).NotTo(HaveOccurred())

	start := time.Now()
	g.Expect(createProcWorkloads(ctx, cp.k8s, "memory", total)).To(Succeed())
	created := time.Since(start)
	waitProcSettled(ctx, g, watched, total, m)
	settled := time.Since(start)

	// The last Events go out after the statuses, and the runtime returns
	// freed memory gradually: read what a look some time after a change sees.
	waitWhileRunning(g, 10*time.Second, m)
	mem, err := procMemory(m.Pid())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(mem.RSS).To(BeNumerically(">", idle.RSS), "VmRSS grows with the objects the manager caches")
	g.Expect(mem.Peak).To(BeNumerically(">=", mem.RSS), "VmHWM is the peak of VmRSS")
	reconciles, err := m.metric(ctx, "controller_runtime_reconcile_total", "controller", "phiworkload")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(reconciles).To(BeNumerically(">=", total), "every workload was reconciled by the process measured")
	heap, err := m.metric(ctx, "go_memstats_heap_inuse_bytes", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	if profile != "" {
		g.Expect(saveURL(ctx, "http://"+pprofAddr+"/debug/pprof/heap", profile)).To(Succeed())
		t.Logf("scale: manager process: heap profile in %s (go tool pprof -sample_index=inuse_space %s %s)", profile, binary, profile)
	}

	scale := fmt.Sprintf("%d PHIWorkloads, %d pods, GOMEMLIMIT %s", total, total*procPodsPerWorkload, os.Getenv("GOMEMLIMIT"))
	t.Logf("scale: manager process: %s created in %s, all settled %s after the first create (%.0f reconciles)",
		scale, created.Round(time.Millisecond), settled.Round(time.Millisecond), reconciles)
	t.Logf("scale: manager process: VmRSS %.1f MiB (anonymous %.1f, file-backed %.1f), VmHWM %.1f MiB, Go heap in use %.1f MiB (/proc/%d/status, 10 s after settling)",
		mem.RSS, mem.Anon, mem.File, mem.Peak, heap/(1<<20), m.Pid())
	t.Logf("scale: manager process: ready with no workload yet: VmRSS %.1f MiB (anonymous %.1f, file-backed %.1f)", idle.RSS, idle.Anon, idle.File)
	record(t, figure{Name: "manager_rss_mib", Value: mem.RSS, Unit: "MiB", Scale: scale})
	record(t, figure{Name: "manager_rss_peak_mib", Value: mem.Peak, Unit: "MiB", Scale: scale})
}

// TestLeaderFailover runs two manager processes with --leader-elect over N
// settled PHIWorkloads (PHIGUARD_SCALE_FAILOVER_WORKLOADS, default 50),
// SIGKILLs the leader and measures how long the other takes to become leader
// and to reconcile, and the write requests it sends while it re-verifies the
// settled cluster, read from the apiserver's audit log.
//
// The Lease lasts 15 s (controller-runtime's default LeaseDuration), and a
// killed leader does not release it: the standby can take over only once it
// expired, so failover takes at least that long.
func TestLeaderFailover(t *testing.T) {
	binary := procManagerBinary(t)
	g := NewWithT(t)
	total := envInt(t, "PHIGUARD_SCALE_FAILOVER_WORKLOADS", 50)
	cp := startProcPlane(t, true)
	ctx := t.Context()
	watched := cp.watchWorkloads(t)
	// The apiserver calls the webhooks of the first; the second serves its own
	// on another port, as a second replica behind the webhook Service would.
	first := cp.startManager(t, binary, "a")
	second := cp.startManager(t, binary, "b", "--webhook-port="+strconv.Itoa(procFreePort(t)))

	g.Expect(createProcWorkloads(ctx, cp.k8s, "failover", total)).To(Succeed())
	waitProcSettled(ctx, g, watched, total, first, second)
	leader, standby := procLeader(ctx, g, first, second)
	waitProcIdle(ctx, g, leader, total)
	var lease coordinationv1.Lease
	g.Expect(cp.k8s.Get(ctx, client.ObjectKey{Namespace: procNamespace, Name: procLease}, &lease)).To(Succeed())
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	g.Expect(holder).NotTo(BeEmpty(), "the Lease names its holder")

	// The take-over time is the Lease's acquireTime; the first reconcile is
	// seen on the survivor's metrics, to within the 100 ms poll.
	killed := time.Now()
	g.Expect(leader.Kill()).To(Succeed())
	var tookOver, firstReconcile time.Duration
	g.Eventually(func(g Gomega) {
		stopIfProcExited(standby)
		if tookOver == 0 {
			var l coordinationv1.Lease
			g.Expect(cp.k8s.Get(ctx, client.ObjectKeyFromObject(&lease), &l)).To(Succeed())
			if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "" && h != holder && l.Spec.AcquireTime != nil {
				tookOver = l.Spec.AcquireTime.Sub(killed)
			}
		}
		if firstReconcile == 0 {
			n, err := standby.metric(ctx, "controller_runtime_reconcile_total", "controller", "phiworkload")
			g.Expect(err).NotTo(HaveOccurred())
			if n > 0 {
				firstReconcile = time.Since(killed)
			}
		}
		g.Expect(tookOver).NotTo(BeZero(), "the Lease changed hands")
		g.Expect(firstReconcile).NotTo(BeZero(), "the new leader reconciled")
	}, 2*time.Minute, 100*time.Millisecond).Should(Succeed())
	leads, err := standby.metric(ctx, "leader_election_master_status", "name", procLease)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(leads).To(Equal(1.0), "the survivor reports itself leader")

	reconciles := waitProcIdle(ctx, g, standby, total)
	passed := time.Since(killed)
	// Events go out from a background broadcaster after the reconciles.
	waitWhileRunning(g, 5*time.Second, standby)
	counted, own, err := procAuditedWrites(cp.auditLog, standby.user, killed)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(own).To(HaveKey("update leases"), "the audit log holds the new leader's Lease renewals, so it sees its writes")
	writes := 0
	for _, n := range counted {
		writes += n
	}

	scale := fmt.Sprintf("2 replicas, %d PHIWorkloads, %d pods", total, total*procPodsPerWorkload)
	t.Logf("scale: failover: leader %s SIGKILLed; %s took the Lease %.1f s later and reconciled %.1f s after the kill",
		leader.name, standby.name, tookOver.Seconds(), firstReconcile.Seconds())
	t.Logf("scale: failover: the new leader's first pass over %d settled workloads ended %.1f s after the kill (%.0f reconciles)",
		total, passed.Seconds(), reconciles)
	t.Logf("scale: failover: write requests of the new leader re-verifying the settled cluster: %d %v", writes, counted)
	t.Logf("scale: failover: not counted, its writes in %s (Lease renewals, the LeaderElection Event, evidence; the evidence records themselves go to files): %v",
		procNamespace, own)
	record(t, figure{Name: "failover_first_reconcile_s", Value: firstReconcile.Seconds(), Unit: "s", Scale: scale})
	record(t, figure{Name: "failover_writes", Value: float64(writes), Unit: "writes", Scale: scale})
	g.Expect(counted).To(BeEmpty(), "a new leader re-verifying a settled cluster writes nothing")
}

// procManagerBinary returns the built manager, skipping the test when there is none.
func procManagerBinary(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(root, "bin", "manager")
	if _, err := os.Stat(binary); err != nil {
		t.Skipf("the manager binary is not built (%v): run `make build` first", err)
	}
	return binary
}

// procPlane is the local control plane the manager processes run against.
type procPlane struct {
	env *envtest.Environment
	// cfg and k8s are the test's own (admin, not rate limited).
	cfg *rest.Config
	k8s client.Client
	// dir holds the kubeconfigs, the managers' logs and evidence, and the
	// audit log; it is kept when the test fails.
	dir string
	// auditLog is the apiserver's audit log of write requests; empty when
	// the control plane was started without one.
	auditLog string
}

// procAuditPolicy records every write request, without its body.
const procAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
`

// startProcPlane starts the control plane with phiguard's CRDs and webhook
// configurations, Velero's CRDs and the manager's namespace; with audit, the
// apiserver logs every write request. Everything stops when the test ends.
func startProcPlane(t *testing.T, audit bool) *procPlane {
	t.Helper()
	g := NewWithT(t)
	dir, err := os.MkdirTemp("", "phiguard-process-")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the managers' logs, evidence and the audit log are kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	env, err := testenv.NewWithWebhooks()
	g.Expect(err).NotTo(HaveOccurred())
	velero, err := testenv.VeleroCRDs()
	g.Expect(err).NotTo(HaveOccurred())
	env.CRDInstallOptions.Paths = append(env.CRDInstallOptions.Paths, velero...)
	cp := &procPlane{env: env, dir: dir}
	if audit {
		policy := filepath.Join(dir, "audit-policy.yaml")
		g.Expect(os.WriteFile(policy, []byte(procAuditPolicy), 0o600)).To(Succeed())
		cp.auditLog = filepath.Join(dir, "audit.log")
		env.ControlPlane.GetAPIServer().Configure().
			Set("audit-policy-file", policy).
			Set("audit-log-path", cp.auditLog)
	}
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	scheme, err := phischeme.New()
	g.Expect(err).NotTo(HaveOccurred())
	cp.cfg = rest.CopyConfig(cfg)
	cp.cfg.QPS, cp.cfg.Burst = 500, 1000 // create as fast as the apiserver takes it
	cp.k8s, err = client.New(cp.cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cp.k8s.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: procNamespace}})).To(Succeed())
	return cp
}

// watchWorkloads returns a cache of PHIWorkloads of the test's own, so that
// waiting for them to settle does not load the apiserver being measured.
func (cp *procPlane) watchWorkloads(t *testing.T) cache.Cache {
	t.Helper()
	g := NewWithT(t)
	watched, err := cache.New(cp.cfg, cache.Options{Scheme: cp.k8s.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = watched.Start(t.Context()) }()
	g.Expect(watched.WaitForCacheSync(t.Context())).To(BeTrue())
	// The first read starts the PHIWorkload informer.
	g.Expect(watched.List(t.Context(), &phiguardv1alpha1.PHIWorkloadList{})).To(Succeed())
	return watched
}

// procManager is a running bin/manager with its metrics endpoint.
type procManager struct {
	*localcluster.Manager
	// name tells the replicas apart in messages.
	name string
	// user is the apiserver user it authenticates as.
	user string
	// metricsAddr is where it serves its metrics, over plain HTTP.
	metricsAddr string
}

// startManager runs bin/manager with leader election, as installed, plus
// args, authenticated as a user of its own, and waits until it is ready.
// It stops when the test ends.
func (cp *procPlane) startManager(t *testing.T, binary, name string, args ...string) *procManager {
	t.Helper()
	g := NewWithT(t)
	dir := filepath.Join(cp.dir, name)
	g.Expect(os.MkdirAll(dir, 0o750)).To(Succeed())
	m := &procManager{name: name, user: "phiguard-manager-" + name, metricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(procFreePort(t)))}
	// A member of system:masters: the figures are the manager's, not those
	// of its RBAC (config/rbac grants it less; test/e2e runs it with that).
	user, err := cp.env.AddUser(envtest.User{Name: m.user, Groups: []string{"system:masters"}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig, err := user.KubeConfig()
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	g.Expect(os.WriteFile(kubeconfigPath, kubeconfig, 0o600)).To(Succeed())

	// The garbage collector as the Deployment sets it (config/manager: GOGC
	// and GOMEMLIMIT from the container's memory limit, 256Mi unless
	// PHIGUARD_SCALE_PROCESS_MEMORY_LIMIT says otherwise, as a Deployment
	// sized for more workloads would); the process inherits them.
	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", cmp.Or(os.Getenv("PHIGUARD_SCALE_PROCESS_MEMORY_LIMIT"), "256MiB"))
	m.Manager, err = localcluster.StartManager(localcluster.ManagerOptions{
		Binary: binary, Kubeconfig: kubeconfigPath, LogPath: filepath.Join(dir, "manager.log"),
		Webhooks: &cp.env.WebhookInstallOptions, PodName: "manager-" + name,
		// Later flags win: metrics served over plain HTTP for the test to read.
		Args: append([]string{"--leader-elect", "--metrics-bind-address=" + m.metricsAddr, "--metrics-secure=false"}, args...),
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if err := m.Stop(30 * time.Second); err != nil {
			t.Errorf("manager %s: %v", name, err)
		}
	})
	g.Expect(m.WaitReady(t.Context(), time.Minute)).To(Succeed())
	return m
}

// metric sums the series of a counter or gauge of the manager whose label
// has value (every series when label is empty).
func (m *procManager) metric(ctx context.Context, name, label, value string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.metricsAddr+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("reading the metrics of manager %s: %w", m.name, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading the metrics of manager %s: %w", m.name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("reading the metrics of manager %s: %s", m.name, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("parsing the metrics of manager %s: %w", m.name, err)
	}
	sum := 0.0
	for _, s := range families[name].GetMetric() {
		if label == "" || slices.ContainsFunc(s.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == label && l.GetValue() == value }) {
			sum += s.GetCounter().GetValue() + s.GetGauge().GetValue()
		}
	}
	return sum, nil
}

// createProcWorkloads creates total PHIWorkloads, procWorkloadsPerNamespace to a
// namespace named <prefix>-<i>, each followed by the procPodsPerWorkload pods it
// selects; several at once.
func createProcWorkloads(ctx context.Context, k8s client.Client, prefix string, total int) error {
	for i := range (total + procWorkloadsPerNamespace - 1) / procWorkloadsPerNamespace {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i)}}
		if err := k8s.Create(ctx, ns); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns.Name, err)
		}
	}
	group, ctx := errgroup.WithContext(ctx)
	group.SetLimit(8)
	for i := range total {
		group.Go(func() error {
			ns, app := fmt.Sprintf("%s-%d", prefix, i/procWorkloadsPerNamespace), fmt.Sprintf("records-%d", i)
			if err := k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
				Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
			}); err != nil {
				return fmt.Errorf("creating PHIWorkload %s/%s: %w", ns, app, err)
			}
			for p := range procPodsPerWorkload {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", app, p), Labels: map[string]string{"app": app}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
				}
				if err := k8s.Create(ctx, pod); err != nil {
					return fmt.Errorf("creating pod %s/%s: %w", ns, pod.Name, err)
				}
			}
			return nil
		})
	}
	if err := group.Wait(); err != nil {
		return fmt.Errorf("creating workloads: %w", err)
	}
	return nil
}

// waitProcSettled waits until all total PHIWorkloads report on their current
// generation, with every safeguard and their pods counted. It stops at once
// when a manager exits.
func waitProcSettled(ctx context.Context, g Gomega, watched cache.Cache, total int, managers ...*procManager) {
	safeguards := len(safeguard.New(safeguard.Options{}).Names())
	// A reconcile takes a few milliseconds; on two shared cores, allow ten times that.
	timeout := 2*time.Minute + time.Duration(total)*50*time.Millisecond
	g.Eventually(func(g Gomega) {
		for _, m := range managers {
			stopIfProcExited(m)
		}
		var list phiguardv1alpha1.PHIWorkloadList
		g.Expect(watched.List(ctx, &list, client.UnsafeDisableDeepCopy)).To(Succeed())
		g.Expect(list.Items).To(HaveLen(total))
		for _, w := range list.Items {
			g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation), "%s/%s", w.Namespace, w.Name)
			g.Expect(w.Status.Safeguards).To(HaveLen(safeguards), "%s/%s", w.Namespace, w.Name)
			g.Expect(w.Status.MatchedPods).To(BeEquivalentTo(procPodsPerWorkload), "%s/%s", w.Namespace, w.Name)
		}
	}, timeout, time.Second).Should(Succeed())
}

// procLeader waits until exactly one of the two managers reports that it
// holds the Lease, and returns it and the other.
func procLeader(ctx context.Context, g Gomega, a, b *procManager) (leader, standby *procManager) {
	g.Eventually(func(g Gomega) {
		la, err := a.metric(ctx, "leader_election_master_status", "name", procLease)
		g.Expect(err).NotTo(HaveOccurred())
		lb, err := b.metric(ctx, "leader_election_master_status", "name", procLease)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(la+lb).To(Equal(1.0), "one leader: %s reports %v, %s %v", a.name, la, b.name, lb)
		leader, standby = a, b
		if lb == 1 {
			leader, standby = b, a
		}
	}, time.Minute, 200*time.Millisecond).Should(Succeed())
	return leader, standby
}

// waitProcIdle waits until the manager has reconciled at least total times and
// its PHIWorkload queue stays empty with no reconcile running for a second,
// and returns its reconciles.
func waitProcIdle(ctx context.Context, g Gomega, m *procManager, total int) float64 {
	var reconciles float64
	idle := func(g Gomega) {
		stopIfProcExited(m)
		var err error
		reconciles, err = m.metric(ctx, "controller_runtime_reconcile_total", "controller", "phiworkload")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(reconciles).To(BeNumerically(">=", total), "reconciles")
		depth, err := m.metric(ctx, "workqueue_depth", "controller", "phiworkload")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(depth).To(BeZero(), "queued")
		active, err := m.metric(ctx, "controller_runtime_active_workers", "controller", "phiworkload")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(active).To(BeZero(), "reconciling")
	}
	g.Eventually(func(g Gomega) {
		g.Consistently(idle, time.Second, 100*time.Millisecond).Should(Succeed())
	}, 5*time.Minute, 100*time.Millisecond).Should(Succeed())
	return reconciles
}

// wait lets d pass, failing at once when the manager exits meanwhile.
func waitWhileRunning(g Gomega, d time.Duration, m *procManager) {
	select {
	case <-m.Exited():
		g.Expect(m.ExitError()).NotTo(HaveOccurred())
	case <-time.After(d):
	}
}

// stopIfProcExited ends an Eventually when the manager has exited.
func stopIfProcExited(m *procManager) {
	select {
	case <-m.Exited():
		StopTrying("manager " + m.name + " exited").Wrap(m.ExitError()).Now()
	default:
	}
}

// procMemoryFigures are a process's memory figures from /proc/<pid>/status, in MiB.
type procMemoryFigures struct {
	// RSS is its resident memory (VmRSS): Anon + File (+ shared memory).
	RSS float64
	// Peak is the highest RSS it had (VmHWM).
	Peak float64
	// Anon is resident memory of its own (RssAnon): the Go heap, stacks, runtime.
	Anon float64
	// File is resident file-backed memory (RssFile): mostly the pages of the
	// binary it ran.
	File float64
}

// procMemory reads a process's memory figures from /proc/<pid>/status.
func procMemory(pid int) (procMemoryFigures, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return procMemoryFigures{}, fmt.Errorf("reading the manager's memory: %w", err)
	}
	var m procMemoryFigures
	fields := map[string]*float64{"VmRSS": &m.RSS, "VmHWM": &m.Peak, "RssAnon": &m.Anon, "RssFile": &m.File}
	found := 0
	for line := range strings.Lines(string(data)) {
		key, value, _ := strings.Cut(line, ":")
		field, ok := fields[key]
		if !ok {
			continue
		}
		kB, unit, _ := strings.Cut(strings.TrimSpace(value), " ")
		n, err := strconv.ParseFloat(kB, 64)
		if err != nil || unit != "kB" {
			return procMemoryFigures{}, fmt.Errorf("%s: %s is %q, not a size in kB", path, key, value)
		}
		*field = n / 1024
		found++
	}
	if found != len(fields) {
		return procMemoryFigures{}, fmt.Errorf("%s lacks one of VmRSS, VmHWM, RssAnon, RssFile", path)
	}
	return m, nil
}

// procAuditedWrites reads the apiserver's audit log (write requests only, see
// procAuditPolicy) and counts the requests user sent from since on by "<verb>
// <resource>[/<subresource>]": those in the manager's namespace apart, in own.
func procAuditedWrites(path, user string, since time.Time) (counted, own map[string]int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the audit log: %w", err)
	}
	defer func() { _ = f.Close() }()
	counted, own = map[string]int{}, map[string]int{}
	dec := json.NewDecoder(f)
	for {
		var e auditv1.Event
		if err := dec.Decode(&e); errors.Is(err, io.EOF) {
			return counted, own, nil
		} else if err != nil {
			return nil, nil, fmt.Errorf("reading the audit log %s: %w", path, err)
		}
		if e.User.Username != user || e.RequestReceivedTimestamp.Time.Before(since) || e.ObjectRef == nil {
			continue
		}
		key := e.Verb + " " + e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			key += "/" + e.ObjectRef.Subresource
		}
		if e.ObjectRef.Namespace == procNamespace {
			own[key]++
		} else {
			counted[key]++
		}
	}
}

// procFreePort returns a loopback port nothing listens on.
func procFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// saveURL writes what a GET of url answers to path.
func saveURL(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("reading %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reading %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reading %s: %s", url, resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("saving %s: %w", url, err)
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		_ = out.Close()
		return fmt.Errorf("saving %s: %w", url, err)
	}
	return out.Close()
}
