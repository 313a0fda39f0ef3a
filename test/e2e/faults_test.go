//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// The faults the manager must ride out: SIGKILLs at random moments while
// PHIWorkloads are created and reconciled, and the apiserver gone for a
// minute.
const (
	// faultNamespaces is how many namespaces the kill case's workloads
	// are spread over.
	faultNamespaces = 10
	// workloadsEnv sets how many PHIWorkloads the kill case creates, a
	// multiple of faultNamespaces: defaultFaultWorkloads unless set. At
	// 1,000 (what `make scale` runs) the case takes about 11 minutes on two
	// shared cores, with ten lease expiries to wait out and as many workloads
	// to delete, so `make e2e` runs 200 to stay within its budget.
	workloadsEnv          = "PHIGUARD_FAULTS_WORKLOADS"
	defaultFaultWorkloads = 200
	// kills is how many times the manager is SIGKILLed.
	kills = 10
	// creationSpan is how long the workloads take to come in: about half
	// the time the kills take.
	creationSpan = 90 * time.Second
	// maxKillDelay bounds the random moment of each kill, counted from when
	// the manager took the leader lease: every kill lands in a life that
	// reconciles (a new manager waits out the dead one's lease, 15 s, first).
	maxKillDelay = 8 * time.Second
	// backedUpPerNamespace workloads per namespace have a Velero Backup of
	// their Schedule from before they exist, which must outlive everything.
	backedUpPerNamespace = 2
	// outage is how long the apiserver is stopped; reconverge, how soon
	// after it answers again a change must be healed.
	outage, reconverge = 60 * time.Second, 30 * time.Second
)

// faultWorkloads is how many PHIWorkloads the kill case creates.
var faultWorkloads, faultWorkloadsErr = workloadCount(os.Getenv(workloadsEnv))

// workloadCount parses the value of workloadsEnv.
func workloadCount(v string) (int, error) {
	if v == "" {
		return defaultFaultWorkloads, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < faultNamespaces || n%faultNamespaces != 0 {
		return 0, fmt.Errorf("%s=%q: want a multiple of %d", workloadsEnv, v, faultNamespaces)
	}
	return n, nil
}

// leaseKey is the manager's leader election Lease.
var leaseKey = types.NamespacedName{Namespace: managerNamespace, Name: "phiguard.compliance.phiguard.io"}

var _ = Describe("faults", Ordered, func() {
	It(fmt.Sprintf("settles %d PHIWorkloads through %d SIGKILLs of the manager at random moments: one NetworkPolicy and one Schedule each, no orphan, no Backup deleted",
		faultWorkloads, kills), func() {
		Expect(faultWorkloadsErr).NotTo(HaveOccurred())
		seed := uint64(GinkgoRandomSeed())
		rng := rand.New(rand.NewPCG(seed, seed))
		AddReportEntry("kill moments' seed (rerun with -ginkgo.seed)", seed)

		namespaces := make([]string, faultNamespaces)
		for i := range namespaces {
			namespaces[i] = newNamespace(fmt.Sprintf("faults-kill-%d", i))
		}
		backups := make([]*velerov1.Backup, 0, backedUpPerNamespace*faultNamespaces)
		DeferCleanup(func() {
			// A failure may leave the manager dead, and these objects behind.
			select {
			case <-manager.Exited():
				startManager()
			default:
			}
			deleteObjects(namespaces, backups)
		})

		By("Velero Backups of some workloads' Schedules, from before the workloads exist")
		backedUp := map[string]bool{}
		for _, ns := range namespaces {
			for i := range backedUpPerNamespace {
				w := workload(ns, faultWorkloadName(i), faultWorkloadName(i))
				schedule := safeguard.ScheduleName(w)
				now := metav1.Now()
				b := &velerov1.Backup{
					ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: schedule + "-20261201000000",
						Labels: map[string]string{velerov1.ScheduleNameLabel: schedule}},
					Status: velerov1.BackupStatus{Phase: velerov1.BackupPhaseCompleted, StartTimestamp: &now, CompletionTimestamp: &now},
				}
				Expect(k8s.Create(ctx, b)).To(Succeed())
				backups = append(backups, b)
				backedUp[ns+"/"+w.Name] = true
			}
		}

		By(fmt.Sprintf("creating %d PHIWorkloads while the manager is killed %d times", faultWorkloads, kills))
		creating := createWorkloads(namespaces)
		previous := ""
		for i := range kills {
			holder, waited := awaitLeader(previous)
			delay := time.Duration(rng.Int64N(int64(maxKillDelay)))
			select {
			case <-manager.Exited():
				Fail(manager.ExitError().Error())
			case <-time.After(delay):
			}
			Expect(manager.Kill()).To(Succeed())
			previous = holder
			settled := countSettled(namespaces)
			AddReportEntry(fmt.Sprintf("kill %d", i+1), fmt.Sprintf("%s after taking the lease (it waited %s for it); %d created, %d settled",
				delay.Round(time.Millisecond), waited.Round(100*time.Millisecond), creating.created.Load(), settled))
			startManager()
		}
		restarted := time.Now()
		Eventually(creating.done).Within(3 * time.Minute).Should(BeClosed())
		Expect(creating.err).NotTo(HaveOccurred())
		Expect(creating.created.Load()).To(BeEquivalentTo(faultWorkloads))
		AddReportEntry("creates refused while no manager served the webhooks, then retried", creating.refused.Load())

		By("every workload settles, with one NetworkPolicy and one Schedule each and no orphan")
		progress := time.Now()
		Eventually(func(g Gomega) {
			if time.Since(progress) > 15*time.Second {
				progress = time.Now()
				_, _ = fmt.Fprintf(GinkgoWriter, "%s after the last restart: %d settled\n",
					time.Since(restarted).Round(time.Second), countSettled(namespaces))
			}
			expectSettled(g, namespaces, backedUp)
		}, scaled(), 5*time.Second).Should(Succeed())
		AddReportEntry("settled after the last restart", time.Since(restarted).Round(100*time.Millisecond).String())
		expectBackupsKept(backups)

		By("deleting the namespaces removes every Schedule with its workload, and keeps the Backups")
		start := time.Now()
		deleteObjects(namespaces, nil)
		Eventually(func(g Gomega) {
			for _, ns := range namespaces {
				err := k8s.Get(ctx, types.NamespacedName{Name: ns}, &corev1.Namespace{})
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "namespace %s: %v", ns, err)
			}
		}, scaled(), time.Second).Should(Succeed())
		AddReportEntry("namespaces deleted", time.Since(start).Round(100*time.Millisecond).String())
		Expect(phiguardSchedules(namespaces)).To(BeEmpty())
		expectBackupsKept(backups)

		// Records are stored in a segment once a minute: checked last, the
		// trail has had the time the deletion took to store them.
		By(fmt.Sprintf("the evidence trail, written by %d lives of the manager, verifies and holds every workload's results", kills+1))
		Eventually(func(g Gomega) {
			seen := map[string]bool{}
			for _, r := range verifiedEvidence(g, "") {
				if r.Kind == evidence.KindResult && r.Workload != nil && strings.HasPrefix(r.Workload.Namespace, "faults-kill-") {
					seen[r.Workload.Namespace+"/"+r.Workload.Name] = true
				}
			}
			g.Expect(seen).To(HaveLen(faultWorkloads))
		}, time.Minute, time.Second).Should(Succeed())
	})

	It("re-converges within 30 s of the apiserver's return after a 60 s outage", func() {
		ns := newNamespace("faults-outage")
		for _, name := range []string{"a", "b", "c"} {
			Expect(k8s.Create(ctx, workload(ns, name, name))).To(Succeed())
		}
		Eventually(func(g Gomega) {
			expectOutageSettled(g, ns, "a", "b", "c")
		}, timeout, poll).Should(Succeed())

		By(fmt.Sprintf("stopping the kube-apiserver for %s, restarting the manager whenever it exits", outage))
		sup := &supervisor{backoff: time.Second}
		apiserverDown := true
		DeferCleanup(func() {
			// A failure must not leave the next cases without an apiserver
			// or a manager.
			if apiserverDown {
				_, err := cluster.StartAPIServer(ctx, 2*time.Minute)
				Expect(err).NotTo(HaveOccurred())
			}
			select {
			case <-manager.Exited():
				startManager()
			default:
			}
		})
		Expect(cluster.StopAPIServer(ctx, 5*time.Second)).To(Succeed())
		stopped := time.Now()
		for time.Since(stopped) < outage {
			sup.tick()
			time.Sleep(100 * time.Millisecond)
		}
		// The supervisor keeps watching while the apiserver starts.
		type started struct {
			restarted []string
			err       error
		}
		starting := make(chan started, 1)
		go func() {
			restarted, err := cluster.StartAPIServer(ctx, 2*time.Minute)
			starting <- started{restarted, err}
		}()
		var start started
		for waiting := true; waiting; {
			select {
			case start = <-starting:
				waiting = false
			case <-time.After(100 * time.Millisecond):
				sup.tick()
			}
		}
		Expect(start.err).NotTo(HaveOccurred())
		apiserverDown = false
		restarted := start.restarted
		back := time.Now()
		AddReportEntry("apiserver down", back.Sub(stopped).Round(100*time.Millisecond).String())
		AddReportEntry("components restarted with the apiserver", restarted)
		exitsDuringOutage := len(sup.exits)

		By("a NetworkPolicy deleted and a PHIWorkload created once it answers")
		policy := &networkingv1.NetworkPolicy{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "phiguard-a"}, policy)).To(Succeed())
		Expect(k8s.Delete(ctx, policy)).To(Succeed())
		// The workload webhooks fail closed: the create waits for a manager
		// that serves them.
		Eventually(func() error {
			sup.tick()
			err := k8s.Create(ctx, workload(ns, "d", "d"))
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		}).WithTimeout(time.Until(back.Add(reconverge))).WithPolling(poll).Should(Succeed())
		Eventually(func(g Gomega) {
			sup.tick()
			var healed networkingv1.NetworkPolicy
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "phiguard-a"}, &healed)).To(Succeed())
			g.Expect(healed.UID).NotTo(Equal(policy.UID), "the deleted NetworkPolicy is made again")
			expectOutageSettled(g, ns, "a", "b", "c", "d")
		}).WithTimeout(time.Until(back.Add(reconverge))).WithPolling(poll).Should(Succeed())
		AddReportEntry("healed after the apiserver's return", time.Since(back).Round(100*time.Millisecond).String())

		AddReportEntry("manager exits", sup.summary())
		Expect(sup.down).To(BeFalse(), "the manager runs")
		Expect(sup.exits).To(HaveLen(exitsDuringOutage), "the manager does not exit once the apiserver is back")
		// The one exit a lost apiserver causes: the leader lease not renewed
		// in time (then no second leader can act on stale state). A manager
		// started while the apiserver is away waits for it; none crashes.
		Expect(sup.exits).To(HaveEach(Equal("manager: running manager: leader election lost")))
		waitManagerReady()
	})
})

// scaled is how long the workloads may take to settle, or to be deleted:
// two minutes and a second each, half as fast as measured on two cores shared
// with other work.
func scaled() time.Duration { return 2*time.Minute + time.Duration(faultWorkloads)*time.Second }

// faultWorkloadName names the i-th workload of a namespace.
func faultWorkloadName(i int) string { return fmt.Sprintf("w-%03d", i) }

// creation is the background creation of the workloads.
type creation struct {
	created atomic.Int64 // workloads created
	refused atomic.Int64 // creates refused and retried
	done    chan struct{}
	err     error // the first create that failed for good; read after done
}

// createWorkloads creates faultWorkloads PHIWorkloads over the namespaces in
// the background, evenly over creationSpan, so that kills land while they
// come in, retrying each create until it succeeds: while no manager serves
// the workload webhooks, which fail closed, the apiserver refuses them.
func createWorkloads(namespaces []string) *creation {
	const workers = 4
	c := &creation{done: make(chan struct{})}
	createCtx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	jobs := make(chan *phiguardv1alpha1.PHIWorkload)
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for w := range jobs {
				if err := c.create(createCtx, w); err != nil {
					once.Do(func() { c.err = err })
					cancel()
					return
				}
				c.created.Add(1)
			}
		})
	}
	go func() {
		defer close(jobs)
		pace := time.NewTicker(creationSpan / time.Duration(faultWorkloads))
		defer pace.Stop()
		for i := range faultWorkloads / len(namespaces) {
			for _, ns := range namespaces {
				select {
				case <-pace.C:
				case <-createCtx.Done():
					return
				}
				select {
				case jobs <- workload(ns, faultWorkloadName(i), faultWorkloadName(i)):
				case <-createCtx.Done():
					return
				}
			}
		}
	}()
	go func() {
		wg.Wait()
		cancel()
		close(c.done)
	}()
	return c
}

// create creates w, retrying every 250 ms until it succeeds or ctx ends.
func (c *creation) create(ctx context.Context, w *phiguardv1alpha1.PHIWorkload) error {
	for {
		err := k8s.Create(ctx, w.DeepCopy())
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		c.refused.Add(1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("creating PHIWorkload %s/%s: %w (last refusal: %w)", w.Namespace, w.Name, ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// awaitLeader waits until a manager other than previous holds the leader
// lease, and returns its identity and how long that took.
func awaitLeader(previous string) (string, time.Duration) {
	GinkgoHelper()
	start := time.Now()
	var holder string
	Eventually(func(g Gomega) {
		select {
		case <-manager.Exited():
			StopTrying("the manager exited").Wrap(manager.ExitError()).Now()
		default:
		}
		var lease coordinationv1.Lease
		g.Expect(k8s.Get(ctx, leaseKey, &lease)).To(Succeed())
		g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
		holder = *lease.Spec.HolderIdentity
		g.Expect(holder).NotTo(Or(BeEmpty(), Equal(previous)))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
	return holder, time.Since(start)
}

// faultWorkloadsIn lists the PHIWorkloads of the namespaces.
func faultWorkloadsIn(g Gomega, namespaces []string) []phiguardv1alpha1.PHIWorkload {
	out := make([]phiguardv1alpha1.PHIWorkload, 0, faultWorkloads)
	for _, ns := range namespaces {
		var list phiguardv1alpha1.PHIWorkloadList
		g.ExpectWithOffset(1, k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		out = append(out, list.Items...)
	}
	return out
}

// countSettled counts the workloads whose status is of their generation.
func countSettled(namespaces []string) int {
	GinkgoHelper()
	n := 0
	for _, w := range faultWorkloadsIn(Default, namespaces) {
		if w.Status.ObservedGeneration == w.Generation {
			n++
		}
	}
	return n
}

// expectSettled checks that all faultWorkloads are settled, each with every
// safeguard reported, and that phiguard keeps exactly one NetworkPolicy and
// one Schedule for each and none for a workload that is not there.
func expectSettled(g Gomega, namespaces []string, backedUp map[string]bool) {
	workloads := faultWorkloadsIn(g, namespaces)
	g.Expect(workloads).To(HaveLen(faultWorkloads))
	byUID := make(map[types.UID]string, len(workloads))
	for _, w := range workloads {
		key := w.Namespace + "/" + w.Name
		byUID[w.UID] = key
		expectReported(g, &w)
		// No pod is selected: nothing to isolate yet, but the policy is there.
		g.Expect(safeguardCondition(g, &w, phiguardv1alpha1.NetworkIsolated).Reason).To(Equal(phiguardv1alpha1.ReasonNoPodsSelected), key)
		backup := safeguardCondition(g, &w, phiguardv1alpha1.BackupScheduled)
		if backedUp[key] {
			g.Expect(backup.Status).To(Equal(metav1.ConditionTrue), "%s: %s", key, backup.Message)
		} else {
			g.Expect(backup.Reason).To(Equal(phiguardv1alpha1.ReasonAwaitingFirstBackup), "%s: %s", key, backup.Message)
		}
	}

	policies := map[string]int{}
	for _, ns := range namespaces {
		var list networkingv1.NetworkPolicyList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns),
			client.MatchingLabels{phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue})).To(Succeed())
		for _, p := range list.Items {
			owner := metav1.GetControllerOf(&p)
			g.Expect(owner).NotTo(BeNil(), "NetworkPolicy %s/%s has no controlling owner", ns, p.Name)
			key, living := byUID[owner.UID]
			g.Expect(living).To(BeTrue(), "NetworkPolicy %s/%s is an orphan: its owner %s is gone", ns, p.Name, owner.Name)
			g.Expect(p.Name).To(Equal("phiguard-" + owner.Name))
			policies[key]++
		}
	}
	schedules := map[string]int{}
	for _, s := range phiguardSchedules(namespaces) {
		key := s.Labels["phiguard.io/workload-namespace"] + "/" + s.Labels[phiguardv1alpha1.WorkloadLabel]
		g.Expect(byUID).To(ContainElement(key), "Schedule %s is an orphan: no workload %s", s.Name, key)
		schedules[key]++
	}
	for _, key := range byUID {
		g.Expect(policies[key]).To(Equal(1), "NetworkPolicies of %s", key)
		g.Expect(schedules[key]).To(Equal(1), "Schedules of %s", key)
	}
	g.Expect(policies).To(HaveLen(faultWorkloads))
	g.Expect(schedules).To(HaveLen(faultWorkloads))
}

// expectReported checks that a workload's status is of its generation and
// reports every safeguard and Ready.
func expectReported(g Gomega, w *phiguardv1alpha1.PHIWorkload) {
	key := w.Namespace + "/" + w.Name
	g.ExpectWithOffset(1, w.Status.ObservedGeneration).To(Equal(w.Generation), key)
	for _, name := range safeguard.New(safeguard.Options{}).Names() {
		g.ExpectWithOffset(1, meta.FindStatusCondition(w.Status.Conditions, string(name))).NotTo(BeNil(), "%s: %s", key, name)
	}
	g.ExpectWithOffset(1, meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition)).NotTo(BeNil(), key)
}

// safeguardCondition returns a workload's condition of a safeguard.
func safeguardCondition(g Gomega, w *phiguardv1alpha1.PHIWorkload, name phiguardv1alpha1.SafeguardName) *metav1.Condition {
	c := meta.FindStatusCondition(w.Status.Conditions, string(name))
	g.ExpectWithOffset(1, c).NotTo(BeNil(), "%s/%s: %s", w.Namespace, w.Name, name)
	return c
}

// phiguardSchedules lists phiguard's Schedules for workloads in the namespaces.
func phiguardSchedules(namespaces []string) []velerov1.Schedule {
	GinkgoHelper()
	var list velerov1.ScheduleList
	Expect(k8s.List(ctx, &list, client.InNamespace("velero"),
		client.MatchingLabels{phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue})).To(Succeed())
	var out []velerov1.Schedule
	for _, s := range list.Items {
		for _, ns := range namespaces {
			if s.Labels["phiguard.io/workload-namespace"] == ns {
				out = append(out, s)
			}
		}
	}
	return out
}

// expectBackupsKept checks that each Backup is still the one created.
func expectBackupsKept(backups []*velerov1.Backup) {
	GinkgoHelper()
	for _, b := range backups {
		var got velerov1.Backup
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(b), &got)).To(Succeed(), "Backup %s was deleted", b.Name)
		Expect(got.UID).To(Equal(b.UID), "Backup %s was replaced", b.Name)
	}
}

// deleteObjects deletes the namespaces and the Backups, without waiting.
func deleteObjects(namespaces []string, backups []*velerov1.Backup) {
	GinkgoHelper()
	for _, ns := range namespaces {
		err := k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
	}
	for _, b := range backups {
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, b))).To(Succeed())
	}
}

// expectOutageSettled checks the outage case's workloads: settled, each
// with its NetworkPolicy and Schedule.
func expectOutageSettled(g Gomega, ns string, names ...string) {
	for _, name := range names {
		var w phiguardv1alpha1.PHIWorkload
		g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &w)).To(Succeed())
		expectReported(g, &w)
		g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "phiguard-" + name}, &networkingv1.NetworkPolicy{})).To(Succeed())
		g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: "velero", Name: safeguard.ScheduleName(&w)}, &velerov1.Schedule{})).To(Succeed())
	}
}

// supervisor restarts the manager when it exits, as the kubelet restarts a
// container, with a back-off that starts at one second and doubles up to
// four. The kubelet's starts at ten seconds and doubles: as the manager
// cannot start while the apiserver is away (it reads discovery to build its
// cache), its failed starts during a minute's outage would put its return
// up to 40 s after the apiserver's, and what is measured here is how fast
// phiguard itself re-converges.
type supervisor struct {
	backoff   time.Duration
	down      bool // the manager exited and waits to be restarted
	restartAt time.Time
	exits     []string // the last line of the log of each exit
}

// tick notes an exit of the manager and restarts it when its back-off is over.
func (s *supervisor) tick() {
	GinkgoHelper()
	if s.down {
		if time.Now().After(s.restartAt) {
			spawnManager()
			s.down = false
		}
		return
	}
	select {
	case <-manager.Exited():
		_, _ = fmt.Fprintf(GinkgoWriter, "%s\n", manager.ExitError())
		s.exits = append(s.exits, lastLine(manager.LogPath()))
		s.down, s.restartAt = true, time.Now().Add(s.backoff)
		s.backoff = min(2*s.backoff, 4*time.Second)
	default:
	}
}

// summary says how many times the manager exited, and why.
func (s *supervisor) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", len(s.exits))
	for i, e := range s.exits {
		fmt.Fprintf(&b, "\n%d. %s", i+1, e)
	}
	return b.String()
}

// lastLine returns the last line of a file: what the manager said as it exited.
func lastLine(path string) string {
	GinkgoHelper()
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return lines[len(lines)-1]
}
