package safeguard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/robfig/cron/v3"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/testenv"
)

// Covers restore drills (backup.restoreTest): when one starts, what it
// creates, how its end is judged and recorded, the scratch namespace's
// deletion, the cron, the five kept, Audit, and Finalize. The tests play
// Velero by setting a Restore's phase and creating what it would restore.

const drillCron = "0 3 * * *"

// drillFixture is a workload with a restore drill schedule, phiguard's
// Schedule for it, and (once backedUp) a Completed backup.
type drillFixture struct {
	t       *testing.T
	ns      string
	w       *phiguardv1alpha1.PHIWorkload
	c       client.Client
	writes  *testenv.WriteCounter
	b       BackupScheduling
	metrics *BackupMetrics
	sched   *velerov1.Schedule
	backup  *velerov1.Backup
}

// newDrillFixture stores the workload (backup.restoreTest drillCron, after
// mutate) and, with a first reconcile in Enforce mode, its Schedule. With
// objects, the workload's namespace holds the objects a drill checks.
func newDrillFixture(t *testing.T, mutate func(*phiguardv1alpha1.BackupSpec), objects bool) *drillFixture {
	t.Helper()
	withVelero(t)
	f := &drillFixture{t: t, ns: newNamespace(t)}
	f.w = newWorkload(t, f.ns, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.Backup = &phiguardv1alpha1.BackupSpec{RestoreTest: drillCron}
		if mutate != nil {
			mutate(w.Spec.Backup)
		}
	})
	if objects {
		for _, o := range drilledObjects(f.ns) {
			create(t, o)
		}
		// Not selected by the workload: not in its backups, not checked.
		create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "unrelated"}})
	}
	var err error
	if f.metrics, err = NewBackupMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	f.c, f.writes = countingClient(t)
	f.b = BackupScheduling{APIReader: k8s, Metrics: f.metrics}
	if f.w.Spec.Backup.Mode != phiguardv1alpha1.ModeAudit {
		r := f.reconcile(time.Now())
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		f.sched = schedule(f.ns)
		get(t, f.sched)
	}
	return f
}

func (f *drillFixture) reconcile(now time.Time) Result {
	f.t.Helper()
	return f.b.Reconcile(f.t.Context(), scopeAt(f.t, f.c, f.w, now))
}

// backedUp stores a Completed backup of the fixture's Schedule that started
// and completed now, after anything the test created before.
func (f *drillFixture) backedUp() time.Time {
	f.t.Helper()
	done := time.Now().Truncate(time.Second) // what metav1.Time stores
	f.backup = &velerov1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: f.sched.Name + "-" + done.UTC().Format("20060102150405"),
			Labels: map[string]string{velerov1.ScheduleNameLabel: f.sched.Name}},
		Status: velerov1.BackupStatus{Phase: velerov1.BackupPhaseCompleted,
			StartTimestamp: &metav1.Time{Time: done}, CompletionTimestamp: &metav1.Time{Time: done}},
	}
	create(f.t, f.backup)
	return done
}

// fresh is the freshness message of the fixture's backup, storage included.
func (f *drillFixture) fresh() string {
	return "the last successful backup " + f.backup.Name + " completed at " + f.backup.Status.CompletionTimestamp.UTC().Format(time.RFC3339) +
		", within the rpo of 25h0m0s (Schedule " + f.sched.Name + `, "0 2 * * *")` + storageMessage
}

func (f *drillFixture) scratch() string { return DrillNamespace(f.w) }

// drills lists the workload's drill Restores as stored, newest first.
func (f *drillFixture) drills() []velerov1.Restore {
	f.t.Helper()
	restores, err := listDrills(f.t.Context(), k8s, f.w, veleroNamespace)
	if err != nil {
		f.t.Fatal(err)
	}
	return restores
}

// playVelero ends a drill's Restore in phase, as Velero would, after
// restoring objects into the scratch namespace.
func (f *drillFixture) playVelero(rs *velerov1.Restore, phase velerov1.RestorePhase, failure string, objects []client.Object) {
	f.t.Helper()
	for _, o := range objects {
		create(f.t, o)
	}
	get(f.t, rs)
	rs.Status.Phase, rs.Status.FailureReason = phase, failure
	// Velero's CRDs have no status subresource: status is stored as given.
	if err := k8s.Update(f.t.Context(), rs); err != nil {
		f.t.Fatalf("setting Restore %s's phase: %v", rs.Name, err)
	}
}

// drilledObjects are the workload's objects a drill checks, one of each
// kind, in ns: in the workload's namespace, or as Velero restores them.
func drilledObjects(ns string) []client.Object {
	labels := map[string]string{"app": "records"}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}
	}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	pods := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}}}
	return []client.Object{
		&appsv1.Deployment{ObjectMeta: meta("records"), Spec: appsv1.DeploymentSpec{Selector: sel, Template: pods}},
		&appsv1.StatefulSet{ObjectMeta: meta("records-db"), Spec: appsv1.StatefulSetSpec{Selector: sel, Template: pods, ServiceName: "records"}},
		&corev1.Service{ObjectMeta: meta("records"), Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}}},
		&corev1.ConfigMap{ObjectMeta: meta("records-settings"), Data: map[string]string{"mode": "strict"}},
		&corev1.PersistentVolumeClaim{ObjectMeta: meta("records-data"), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}},
	}
}

// finishNamespaceDeletion plays the namespace controller envtest lacks:
// a namespace being deleted goes.
func finishNamespaceDeletion(t *testing.T, name string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(testCfg)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cs.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.DeletionTimestamp.IsZero() {
		t.Fatalf("namespace %s is not being deleted", name)
	}
	ns.Spec.Finalizers = nil
	if _, err := cs.CoreV1().Namespaces().Finalize(t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalizing namespace %s: %v", name, err)
	}
	if err := k8s.Get(t.Context(), client.ObjectKey{Name: name}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s is still there: %v", name, err)
	}
}

// deleting says whether a namespace is being deleted, or gone.
func deleting(t *testing.T, name string) bool {
	t.Helper()
	var ns corev1.Namespace
	err := k8s.Get(t.Context(), client.ObjectKey{Name: name}, &ns)
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return !ns.DeletionTimestamp.IsZero()
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// nextDrill is when the cron is next due after a drill started at start.
func nextDrill(t *testing.T, start time.Time) time.Time {
	t.Helper()
	c, err := cron.ParseStandard(drillCron)
	if err != nil {
		t.Fatal(err)
	}
	return c.Next(start.UTC().Truncate(time.Second))
}

func TestBackupDrillsOffRunNone(t *testing.T) {
	g := NewWithT(t)
	f := newDrillFixture(t, func(b *phiguardv1alpha1.BackupSpec) { b.RestoreTest = "" }, true)
	done := f.backedUp()
	before := f.writes.N()

	r := f.reconcile(done.Add(time.Hour))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(r).To(Equal(Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonBackupFresh,
		Message: f.fresh(), RequeueAfter: 24 * time.Hour}))
	g.Expect(f.drills()).To(BeEmpty())
	g.Expect(apierrors.IsNotFound(k8s.Get(t.Context(), client.ObjectKey{Name: f.scratch()}, &corev1.Namespace{}))).To(BeTrue())
	g.Expect(f.writes.N()).To(Equal(before))
}

func TestBackupDrillStartsOnceABackupCompletedAndOnlyOnce(t *testing.T) {
	g := NewWithT(t)
	f := newDrillFixture(t, nil, false)

	r := f.reconcile(time.Now())
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(r.Message).To(HaveSuffix(storageMessage + "; no restore drill has been verified yet: the first runs once a backup has completed"))
	g.Expect(f.drills()).To(BeEmpty())

	done := f.backedUp()
	before := f.writes.N()
	now := time.Now()
	r = f.reconcile(now)
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(f.writes.N()).To(Equal(before+3), "the namespace, its NetworkPolicy and the Restore")

	sum := sha256.Sum256([]byte(f.ns + "/records"))
	scratch := "phiguard-drill-" + hex.EncodeToString(sum[:])[:10]
	g.Expect(f.scratch()).To(Equal(scratch))
	labels := map[string]string{
		phiguardv1alpha1.ManagedByLabel:  phiguardv1alpha1.ManagedByValue,
		phiguardv1alpha1.WorkloadLabel:   "records",
		"phiguard.io/workload-namespace": f.ns,
		"phiguard.io/drill":              "true",
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scratch}}
	get(t, ns)
	g.Expect(ns.Labels).To(HaveKeyWithValue("kubernetes.io/metadata.name", scratch))
	delete(ns.Labels, "kubernetes.io/metadata.name")
	g.Expect(ns.Labels).To(Equal(labels))

	deny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: scratch, Name: "phiguard-drill-isolation"}}
	get(t, deny)
	g.Expect(deny.Spec).To(Equal(networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}), "deny all, both ways")

	drills := f.drills()
	g.Expect(drills).To(HaveLen(1))
	rs := drills[0]
	g.Expect(rs.Name).To(Equal(fmt.Sprintf("%s-%d", scratch, done.Unix())), "named for the backup that made it due")
	g.Expect(rs.Labels).To(Equal(labels))
	g.Expect(rs.Annotations).To(Equal(map[string]string{
		"phiguard.io/drill-started-at":        stamp(now),
		"phiguard.io/drill-backup-started-at": stamp(done),
	}))
	g.Expect(rs.Spec).To(Equal(velerov1.RestoreSpec{
		BackupName:              f.backup.Name,
		IncludedNamespaces:      []string{f.ns},
		NamespaceMapping:        map[string]string{f.ns: scratch},
		RestorePVs:              ptr.To(false),
		IncludeClusterResources: ptr.To(false),
		ExcludedResources:       []string{"pods"},
	}))

	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRestoreDrillStarted}))
	g.Expect(r.Events[0].Message).To(Equal("started restore drill velero/" + rs.Name + ": backup " + f.backup.Name +
		" into namespace " + scratch + ", isolated by NetworkPolicy phiguard-drill-isolation"))
	g.Expect(r.Events[0].Related).To(HaveValue(HaveField("UID", rs.UID)))
	inProgress := Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonBackupFresh, RequeueAfter: drillPoll,
		Message: f.fresh() + "; restore drill " + rs.Name + " of backup " + f.backup.Name + " is in progress since " + stamp(now)}
	r.Events = nil
	g.Expect(r).To(Equal(inProgress))

	// Again: the drill is in progress; nothing is written, nothing more started.
	before = f.writes.N()
	r = f.reconcile(now.Add(time.Second))
	g.Expect(r).To(Equal(inProgress))
	g.Expect(f.drills()).To(HaveLen(1))
	g.Expect(f.writes.N()).To(Equal(before))
}

// startedDrill is a fixture whose objects were backed up and whose first
// drill started at the returned time.
func startedDrill(t *testing.T) (*drillFixture, *velerov1.Restore, time.Time) {
	t.Helper()
	f := newDrillFixture(t, nil, true)
	f.backedUp()
	now := time.Now()
	r := f.reconcile(now)
	if r.Err != nil || len(r.Events) != 1 || r.Events[0].Reason != phiguardv1alpha1.ReasonRestoreDrillStarted {
		t.Fatalf("no drill started: %+v", r)
	}
	drills := f.drills()
	if len(drills) != 1 {
		t.Fatalf("%d drills", len(drills))
	}
	return f, &drills[0], now
}

func TestBackupDrillVerifiedWhenEveryObjectCameBack(t *testing.T) {
	g := NewWithT(t)
	f, rs, started := startedDrill(t)
	f.playVelero(rs, velerov1.RestorePhaseCompleted, "", drilledObjects(f.scratch()))
	before := f.writes.N()

	end := started.Add(2 * time.Minute)
	r := f.reconcile(end)
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(f.writes.N()).To(Equal(before+2), "the record and the namespace's deletion")
	verified := "restored backup " + f.backup.Name + " into " + f.scratch() + " and verified 5 objects"
	get(t, rs)
	g.Expect(rs.Annotations).To(Equal(map[string]string{
		"phiguard.io/drill-started-at":        stamp(started),
		"phiguard.io/drill-backup-started-at": stamp(f.backup.Status.StartTimestamp.Time),
		"phiguard.io/drill-result":            "Verified",
		"phiguard.io/drill-message":           verified,
		"phiguard.io/drill-finished-at":       stamp(end),
	}))
	g.Expect(deleting(t, f.scratch())).To(BeTrue(), "the restored copy goes")
	g.Expect(r.Events).To(HaveLen(1))
	g.Expect(r.Events[0]).To(Equal(Event{Reason: phiguardv1alpha1.ReasonRestoreVerified,
		Message: "restore drill velero/" + rs.Name + " " + verified + "; deleted its namespace " + f.scratch(),
		Related: reference("velero.io/v1", "Restore", rs)}))

	lapse := f.backup.Status.CompletionTimestamp.Add(25 * time.Hour)
	want := Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonRestoreVerified,
		Message:      f.fresh() + "; restore drill " + rs.Name + " " + verified + " at " + stamp(end),
		RequeueAfter: min(lapse.Sub(end), nextDrill(t, started).Sub(end))}
	r.Events = nil
	g.Expect(r).To(Equal(want))
	g.Expect(testutil.ToFloat64(f.metrics.lastRestoreVerified.WithLabelValues(f.ns, "records"))).To(Equal(float64(end.Truncate(time.Second).Unix())))

	// Steady: nothing written, the same verdict.
	before = f.writes.N()
	r = f.reconcile(end.Add(time.Second))
	want.RequeueAfter -= time.Second
	g.Expect(r).To(Equal(want))
	g.Expect(f.writes.N()).To(Equal(before))
}

// noneVerified ends the message of a failed drill when no drill of the
// workload was ever verified.
const noneVerified = "; no restore of the workload has been verified yet"

func TestBackupDrillFailsNamingTheObjectsThatDidNotComeBack(t *testing.T) {
	g := NewWithT(t)
	f, rs, started := startedDrill(t)
	var restored []client.Object
	for _, o := range drilledObjects(f.scratch()) {
		if _, ok := o.(*corev1.ConfigMap); !ok {
			restored = append(restored, o)
		}
	}
	f.playVelero(rs, velerov1.RestorePhaseCompleted, "", restored)

	end := started.Add(2 * time.Minute)
	r := f.reconcile(end)
	g.Expect(r.Err).NotTo(HaveOccurred())
	why := "1 of the 5 objects the backup holds did not come back into " + f.scratch() + ": ConfigMap/records-settings"
	get(t, rs)
	g.Expect(rs.Annotations).To(HaveKeyWithValue("phiguard.io/drill-result", "Failed"))
	g.Expect(rs.Annotations).To(HaveKeyWithValue("phiguard.io/drill-message", why))
	g.Expect(deleting(t, f.scratch())).To(BeTrue())
	g.Expect(r.Events).To(HaveLen(1))
	g.Expect(r.Events[0].Warning).To(BeTrue())
	g.Expect(r.Events[0].Reason).To(Equal(phiguardv1alpha1.ReasonRestoreFailed))
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonRestoreFailed))
	g.Expect(r.Message).To(Equal(f.fresh() + "; restore drill " + rs.Name + " of backup " + f.backup.Name + " failed at " + stamp(end) + ": " + why +
		noneVerified))
	g.Expect(testutil.CollectAndCount(f.metrics.lastRestoreVerified)).To(BeZero(), "no drill verified")
}

func TestBackupDrillFailsWhenVeleroFailsOrTheRestoreTakesTooLong(t *testing.T) {
	t.Run("Velero failed the restore", func(t *testing.T) {
		g := NewWithT(t)
		f, rs, started := startedDrill(t)
		f.playVelero(rs, velerov1.RestorePhaseFailed, "error getting backup: not found", nil)
		end := started.Add(time.Minute)
		r := f.reconcile(end)
		g.Expect(r.Err).NotTo(HaveOccurred())
		why := "Velero ended the restore Failed: error getting backup: not found; see `velero restore describe " + rs.Name + " --details`"
		g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonRestoreFailed))
		g.Expect(r.Message).To(Equal(f.fresh() + "; restore drill " + rs.Name + " of backup " + f.backup.Name + " failed at " + stamp(end) + ": " + why +
			noneVerified))
		g.Expect(deleting(t, f.scratch())).To(BeTrue())
	})
	t.Run("still in progress after 30m", func(t *testing.T) {
		g := NewWithT(t)
		f, rs, started := startedDrill(t)
		f.playVelero(rs, velerov1.RestorePhaseInProgress, "", nil)
		started = started.Truncate(time.Second) // as recorded

		r := f.reconcile(started.Add(drillTimeout - time.Second))
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(r.Events).To(BeEmpty())
		g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonBackupFresh))
		g.Expect(r.RequeueAfter).To(Equal(drillPoll))
		g.Expect(deleting(t, f.scratch())).To(BeFalse())

		end := started.Add(drillTimeout)
		r = f.reconcile(end)
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRestoreFailed}))
		g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonRestoreFailed))
		g.Expect(r.Message).To(Equal(f.fresh() + "; restore drill " + rs.Name + " of backup " + f.backup.Name + " failed at " + stamp(end) +
			`: did not finish within 30m (Velero's phase: "InProgress"); see ` + "`velero restore describe " + rs.Name + "`" + noneVerified))
		g.Expect(deleting(t, f.scratch())).To(BeTrue())
	})
	t.Run("the backup was already stale: its reason stays", func(t *testing.T) {
		g := NewWithT(t)
		f, rs, started := startedDrill(t)
		f.playVelero(rs, velerov1.RestorePhaseFailed, "", nil)
		end := started.Add(26 * time.Hour)
		r := f.reconcile(end)
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonBackupStale))
		g.Expect(r.Message).To(HaveSuffix(storageMessage + "; restore drill " + rs.Name + " of backup " + f.backup.Name + " failed at " + stamp(end) +
			": Velero ended the restore Failed; see `velero restore describe " + rs.Name + " --details`" + noneVerified))
	})
}

func TestBackupDrillRunsWhenTheCronSaysAndKeepsTheNewestFive(t *testing.T) {
	g := NewWithT(t)
	f, rs, started := startedDrill(t)
	first := rs.Name
	names := []string{first}
	for i := 1; i <= 5; i++ {
		f.playVelero(rs, velerov1.RestorePhaseFailed, "", nil)
		r := f.reconcile(started.Add(time.Minute))
		g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRestoreFailed}), "drill %d ends", i)
		next := nextDrill(t, started)

		if i == 1 {
			before := f.writes.N()
			r = f.reconcile(next.Add(-time.Second))
			g.Expect(r.Err).NotTo(HaveOccurred())
			g.Expect(r.Events).To(BeEmpty(), "not due yet")
			g.Expect(r.RequeueAfter).To(Equal(time.Second), "looks again when it is due")
			r = f.reconcile(next)
			g.Expect(r.Err).NotTo(HaveOccurred())
			g.Expect(r.Events).To(BeEmpty(), "due, but the last drill's namespace is still being deleted")
			g.Expect(r.RequeueAfter).To(Equal(drillPoll))
			g.Expect(f.writes.N()).To(Equal(before))
		}
		finishNamespaceDeletion(t, f.scratch())

		r = f.reconcile(next)
		g.Expect(r.Err).NotTo(HaveOccurred())
		g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRestoreDrillStarted}), "drill %d starts", i+1)
		drills := f.drills()
		rs = &drills[0]
		g.Expect(rs.Name).To(Equal(fmt.Sprintf("%s-%d", f.scratch(), next.Unix())))
		g.Expect(rs.Annotations).To(HaveKeyWithValue("phiguard.io/drill-started-at", stamp(next)))
		names = append([]string{rs.Name}, names...)
		started = next
	}
	drills := f.drills()
	kept := make([]string, 0, len(drills))
	for _, d := range drills {
		kept = append(kept, d.Name)
	}
	g.Expect(kept).To(Equal(names[:5]), "the newest five")
	g.Expect(apierrors.IsNotFound(k8s.Get(t.Context(), client.ObjectKey{Namespace: veleroNamespace, Name: first}, &velerov1.Restore{}))).To(BeTrue())
	get(t, f.backup) // deleting a Restore never touches a backup
}

func TestBackupDrillAuditRunsNoneButReportsTheLatest(t *testing.T) {
	g := NewWithT(t)
	f := newDrillFixture(t, func(b *phiguardv1alpha1.BackupSpec) { b.Mode = phiguardv1alpha1.ModeAudit }, true)
	// The organisation's own Schedule covers the workload.
	f.sched = &velerov1.Schedule{ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: "nightly-" + f.ns},
		Spec: velerov1.ScheduleSpec{Schedule: "0 2 * * *", Template: velerov1.BackupSpec{IncludedNamespaces: []string{f.ns}}}}
	create(t, f.sched)
	done := f.backedUp()

	r := f.reconcile(done.Add(time.Hour))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonBackupFresh))
	g.Expect(r.Message).To(Equal(f.fresh() + "; no restore drill has been verified yet: phiguard runs restore drills (backup.restoreTest) in Enforce mode only"))
	g.Expect(f.drills()).To(BeEmpty())
	g.Expect(apierrors.IsNotFound(k8s.Get(t.Context(), client.ObjectKey{Name: f.scratch()}, &corev1.Namespace{}))).To(BeTrue())
	g.Expect(f.writes.N()).To(BeZero())

	// A drill recorded earlier (in Enforce mode) is reported.
	at := done.Add(-time.Hour)
	recordedDrill := &velerov1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: f.scratch() + "-1", Labels: DrillLabels(f.w),
		Annotations: map[string]string{DrillResultAnnotation: DrillVerified, DrillMessageAnnotation: "restored backup b into s and verified 3 objects",
			DrillFinishedAnnotation: stamp(at), DrillStartedAnnotation: stamp(at.Add(-time.Minute))}},
		Spec: velerov1.RestoreSpec{BackupName: "b"}}
	create(t, recordedDrill)
	r = f.reconcile(done.Add(time.Hour))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonRestoreVerified))
	g.Expect(r.Message).To(Equal(f.fresh() + "; restore drill " + recordedDrill.Name + " restored backup b into s and verified 3 objects at " + stamp(at)))
	g.Expect(f.writes.N()).To(BeZero())
}

func TestBackupDrillFinalizeDeletesTheScratchNamespaceOnly(t *testing.T) {
	g := NewWithT(t)
	f, rs, _ := startedDrill(t)
	f.metrics.setRestoreVerified(f.w, time.Now())
	before := f.writes.N()

	events, err := f.b.Finalize(t.Context(), f.c, f.w)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(eventReasons(events)).To(Equal([]string{phiguardv1alpha1.ReasonScheduleRemoved}))
	g.Expect(f.writes.N()).To(Equal(before+2), "the namespace and the Schedule")
	g.Expect(deleting(t, f.scratch())).To(BeTrue())
	get(t, rs)
	g.Expect(rs.DeletionTimestamp).To(BeNil(), "the drill's record stays")
	get(t, f.backup)
	g.Expect(f.backup.DeletionTimestamp).To(BeNil())
	g.Expect(testutil.CollectAndCount(f.metrics.lastRestoreVerified)).To(BeZero())

	// A namespace of the scratch name that phiguard did not label is never
	// deleted, nor drilled into.
	other := newDrillFixture(t, nil, false)
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other.scratch(),
		Labels: map[string]string{phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue}}})
	other.backedUp()
	before = other.writes.N()
	r := other.reconcile(time.Now())
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(r.Message).To(HaveSuffix("; no restore drill has been verified yet: namespace " + other.scratch() +
		" exists and is not phiguard's scratch namespace for this workload; phiguard neither uses nor deletes it, remove it for drills to run"))
	g.Expect(other.drills()).To(BeEmpty())
	_, err = other.b.Finalize(t.Context(), other.c, other.w)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(other.writes.N()).To(Equal(before+1), "the Schedule only")
	g.Expect(deleting(t, other.scratch())).To(BeFalse())
}

func TestDrillVerdict(t *testing.T) {
	g := NewWithT(t)
	start := time.Date(2030, 3, 1, 2, 0, 0, 0, time.UTC)
	obj := func(kind, name string, created time.Time) metav1.PartialObjectMetadata {
		return metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: kind},
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)}}
	}
	all := make([]metav1.PartialObjectMetadata, 0, 9)
	for i := range 7 {
		all = append(all, obj("ConfigMap", fmt.Sprintf("c%d", i), start.Add(-time.Hour)))
	}
	all = append(all, obj("Service", "api", start), obj("Deployment", "late", start.Add(time.Second)))

	held := heldBy(all, start)
	g.Expect(held).To(HaveLen(8), "created no later than the backup started")
	g.Expect(held).NotTo(ContainElement(HaveField("Name", "late")))

	ok, msg := drillVerdict("b", "s", "app=api", held, held)
	g.Expect(ok).To(BeTrue())
	g.Expect(msg).To(Equal("restored backup b into s and verified 8 objects"))

	ok, msg = drillVerdict("b", "s", "app=api", held, []metav1.PartialObjectMetadata{obj("Service", "api", start), obj("Deployment", "c0", start)})
	g.Expect(ok).To(BeFalse())
	g.Expect(msg).To(Equal("7 of the 8 objects the backup holds did not come back into s: "+
		"ConfigMap/c0, ConfigMap/c1, ConfigMap/c2, ConfigMap/c3, ConfigMap/c4 and 2 more"), "a kind and a name: a Deployment c0 is not ConfigMap c0")

	ok, msg = drillVerdict("b", "s", "app=api", nil, []metav1.PartialObjectMetadata{obj("ReplicaSet", "api-1", start)})
	g.Expect(ok).To(BeFalse(), "a backup that holds nothing drills nothing")
	g.Expect(msg).To(Equal("restored backup b into s, but it holds none of the workload's Deployments, StatefulSets, Services, " +
		"ConfigMaps, claims or ServiceAccounts (none is labelled app=api), so nothing that brings the workload back was proven: " +
		"label them as its pods are, and the next backup will hold them"))
}

func TestIsDrillNamespace(t *testing.T) {
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"}}
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	other := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "billing"}}
	for _, tc := range []struct {
		name      string
		ns        *corev1.Namespace
		drill, of bool
	}{
		{"phiguard's, for the workload", ns(DrillNamespace(w), DrillLabels(w)), true, true},
		{"phiguard's, for another workload", ns(DrillNamespace(other), DrillLabels(other)), true, false},
		{"the name, without the drill label", ns(DrillNamespace(w), ScheduleLabels(w)), false, false},
		{"the labels, another name", ns("clinic", DrillLabels(w)), false, false},
		{"another workload's labels under this one's name", ns(DrillNamespace(w), DrillLabels(other)), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(IsDrillNamespace(tc.ns)).To(Equal(tc.drill))
			g.Expect(ownsDrillNamespace(tc.ns, w)).To(Equal(tc.of))
		})
	}
}

func TestDrillRequeueIsTheSooner(t *testing.T) {
	g := NewWithT(t)
	g.Expect(sooner(0, 0)).To(BeZero())
	g.Expect(sooner(0, time.Second)).To(Equal(time.Second))
	g.Expect(sooner(time.Minute, 0)).To(Equal(time.Minute))
	g.Expect(sooner(time.Minute, time.Second)).To(Equal(time.Second))
	g.Expect(sooner(time.Second, time.Minute)).To(Equal(time.Second))
}

func TestBackupStallsOnAnInvalidRestoreTest(t *testing.T) {
	for restoreTest, want := range map[string]string{
		"":            "",
		"0 3 * * 0":   "",
		"@weekly":     "",
		"0 3 * * 9":   `backup.restoreTest "0 3 * * 9" is not a valid cron schedule`,
		"0 3 30 2 *":  `backup.restoreTest "0 3 30 2 *" never runs: no date matches all its fields; give one that does, such as "0 3 * * 0"`,
		"@every 1h2x": `backup.restoreTest "@every 1h2x" is not a valid cron schedule`,
	} {
		t.Run(restoreTest, func(t *testing.T) {
			g := NewWithT(t)
			settings := New(Options{}).Defaults()
			settings.Backup.RestoreTest = restoreTest
			_, err := BackupScheduling{}.ValidateSpec(&settings)
			if want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(AsStalled(err)).To(HaveField("Reason", phiguardv1alpha1.ReasonInvalidSchedule))
			g.Expect(err.Error()).To(HavePrefix(want))
		})
	}
}

func TestBackupDrillAfterAFailureRunsAgainForTheNextBackup(t *testing.T) {
	g := NewWithT(t)
	f, rs, started := startedDrill(t)
	started = started.Truncate(time.Second) // as recorded
	f.playVelero(rs, velerov1.RestorePhaseFailed, "", nil)
	r := f.reconcile(started.Add(time.Minute))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRestoreFailed}))
	finishNamespaceDeletion(t, f.scratch())
	cronDue := nextDrill(t, started)

	r = f.reconcile(started.Add(cronDue.Sub(started) / 4))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Events).To(BeEmpty(), "no newer backup: the failed one is not drilled again")

	// The fix is made and a new backup completes before the cron is due.
	retry := started.Add(cronDue.Sub(started) / 2).Truncate(time.Second)
	next := &velerov1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: f.sched.Name + "-" + retry.UTC().Format("20060102150405"),
			Labels: map[string]string{velerov1.ScheduleNameLabel: f.sched.Name}},
		Status: velerov1.BackupStatus{Phase: velerov1.BackupPhaseCompleted,
			StartTimestamp: &metav1.Time{Time: retry}, CompletionTimestamp: &metav1.Time{Time: retry}},
	}
	create(t, next)
	r = f.reconcile(retry.Add(time.Second))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRestoreDrillStarted}), "drilled at once")
	drills := f.drills()
	g.Expect(drills).To(HaveLen(2))
	g.Expect(drills[0].Name).To(Equal(fmt.Sprintf("%s-%d", f.scratch(), retry.Unix())))
	g.Expect(drills[0].Spec.BackupName).To(Equal(next.Name))
}

func TestBackupDrillFailureNamesTheLastVerifiedRestore(t *testing.T) {
	g := NewWithT(t)
	f, first, started := startedDrill(t)
	started = started.Truncate(time.Second) // as recorded
	f.playVelero(first, velerov1.RestorePhaseCompleted, "", drilledObjects(f.scratch()))
	verifiedAt := started.Add(time.Minute)
	r := f.reconcile(verifiedAt)
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonRestoreVerified))
	finishNamespaceDeletion(t, f.scratch())

	next := nextDrill(t, started)
	r = f.reconcile(next)
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRestoreDrillStarted}))
	second := &f.drills()[0]
	f.playVelero(second, velerov1.RestorePhaseFailed, "", nil)
	end := next.Add(time.Minute)
	r = f.reconcile(end)
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Message).To(HaveSuffix("; restore drill " + second.Name + " of backup " + f.backup.Name + " failed at " + stamp(end) +
		": Velero ended the restore Failed; see `velero restore describe " + second.Name + " --details`" +
		"; the last verified restore, drill " + first.Name + " of backup " + f.backup.Name + ", ended at " + stamp(verifiedAt)))
}
