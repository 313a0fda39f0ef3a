package safeguard

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/ssa"
)

const scheduleKind = "Schedule"

// Labels on phiguard's Schedules, which live in Velero's namespace and so
// cannot be owned by the PHIWorkload: they name it instead.
const workloadNamespaceLabel = "phiguard.io/workload-namespace"

// Velero is what the cluster holds of Velero in the workload's Velero
// namespace, read from the cache. Nil in a Scope when Velero's CRDs are absent.
type Velero struct {
	// NamespaceMissing is true when Velero's CRDs exist but its namespace does not.
	NamespaceMissing bool

	Schedules        []velerov1.Schedule
	Backups          []velerov1.Backup
	StorageLocations []velerov1.BackupStorageLocation
}

// BackupMetrics are the backup safeguard's Prometheus metrics.
type BackupMetrics struct {
	lastSuccess         *prometheus.GaugeVec
	lastRestoreVerified *prometheus.GaugeVec
}

// NewBackupMetrics creates and registers the metrics.
func NewBackupMetrics(reg prometheus.Registerer) (*BackupMetrics, error) {
	m := &BackupMetrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "phiguard_backup_last_success_timestamp_seconds",
			Help: "Completion time of the last successful Velero backup of a PHIWorkload, in Unix seconds.",
		}, []string{"namespace", "workload"}),
		lastRestoreVerified: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "phiguard_backup_last_restore_verified_timestamp_seconds",
			Help: "End of the last restore drill of a PHIWorkload whose restored objects were all verified, in Unix seconds.",
		}, []string{"namespace", "workload"}),
	}
	for _, c := range []prometheus.Collector{m.lastSuccess, m.lastRestoreVerified} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering backup metrics: %w", err)
		}
	}
	return m, nil
}

func (m *BackupMetrics) set(w *phiguardv1alpha1.PHIWorkload, t time.Time) {
	if m != nil {
		m.lastSuccess.WithLabelValues(w.Namespace, w.Name).Set(float64(t.Unix()))
	}
}

func (m *BackupMetrics) setRestoreVerified(w *phiguardv1alpha1.PHIWorkload, t time.Time) {
	if m != nil {
		m.lastRestoreVerified.WithLabelValues(w.Namespace, w.Name).Set(float64(t.Unix()))
	}
}

func (m *BackupMetrics) forget(w *phiguardv1alpha1.PHIWorkload) {
	if m != nil {
		m.lastSuccess.DeleteLabelValues(w.Namespace, w.Name)
		m.lastRestoreVerified.DeleteLabelValues(w.Namespace, w.Name)
	}
}

// BackupScheduling keeps a Velero Schedule for the workload and reports the
// freshness of its backups (HIPAA §164.308(a)(7)(ii)(A), Required).
//
// The Schedule lives in Velero's namespace, where Velero reads it, so no owner
// reference can tie it to the workload: it is found by its labels and removed
// by Finalize. It never sets useOwnerReferencesInBackup, with which garbage
// collection would take backups with their schedule: nothing phiguard does
// deletes a backup.
//
// With backup.restoreTest set it also runs restore drills (backup_drill.go).
type BackupScheduling struct {
	// Metrics, when set, exports the time of the last successful backup and
	// of the last verified restore drill.
	Metrics *BackupMetrics
	// APIReader reads what a restore drill checks, uncached (the manager's
	// APIReader): the workload's ConfigMaps, among others, are not in the
	// cache. Nil: the scope's Client reads them.
	APIReader client.Reader
	// Locations, when set, judges whether a location's bucket is immutable,
	// with the credentials PHIPolicy backup.locationCredentials names.
	Locations LocationChecker
	// Namespace is phiguard's own namespace, where that Secret lives.
	Namespace string
}

// What BackupScheduling reads, writes and watches. Schedules are written in
// Velero's namespace; backups are only ever read.
// +kubebuilder:rbac:groups=velero.io,resources=schedules,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=velero.io,resources=backups;backupstoragelocations,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// VeleroObjects are Velero's Schedules, Backups and BackupStorageLocations in
// the effective Velero namespace; nil while Velero's API is not served.
// Shared: every workload's Schedule and every Backup are in that namespace,
// and they are only judged and deleted (ensureSchedule copies phiguard's
// Schedule before it sets its kind).
var VeleroObjects = &InputOf[*Velero]{Name: "Velero's objects", API: optionalapi.Velero, Sharing: Shared, Read: readVelero}

// Name implements Safeguard.
func (BackupScheduling) Name() phiguardv1alpha1.SafeguardName {
	return phiguardv1alpha1.BackupScheduled
}

// Rule implements Safeguard.
func (BackupScheduling) Rule() Rule {
	// Proposed: §164.312(i), data backup and recovery (backups no more than
	// 48 hours older than the ePHI they copy).
	return Rule{Section: "§164.308(a)(7)(ii)(A)", Specification: phiguardv1alpha1.Required,
		ProposedSection: "§164.312(i)",
		Summary:         "ePHI is backed up on a schedule and the last backup is fresh"}
}

// Defaults implements Safeguard: Enforce, nightly at 02:00, kept six years
// (§164.316(b)(2)), a recovery point no older than 25 hours.
func (BackupScheduling) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.Backup = &phiguardv1alpha1.BackupSpec{
		Mode:            phiguardv1alpha1.ModeEnforce,
		Schedule:        "0 2 * * *",
		TTL:             &metav1.Duration{Duration: 52560 * time.Hour},
		RPO:             &metav1.Duration{Duration: 25 * time.Hour},
		VeleroNamespace: "velero",
		Volumes:         phiguardv1alpha1.BackupVolumesSnapshot,
	}
}

// ValidateSpec implements SpecValidator: what the CRD's patterns cannot see,
// a cron field out of range, a schedule that never runs (such as February
// 30th) and a zero duration.
func (BackupScheduling) ValidateSpec(settings *phiguardv1alpha1.SafeguardSettings) ([]string, error) {
	spec := settings.Backup
	if spec == nil {
		return nil, nil
	}
	for _, c := range []struct{ field, value, example string }{
		{"schedule", spec.Schedule, "0 2 * * *"}, {"restoreTest", spec.RestoreTest, "0 3 * * 0"},
	} {
		if c.value == "" {
			continue
		}
		sched, err := cron.ParseStandard(c.value)
		if err != nil {
			return nil, Stalled(phiguardv1alpha1.ReasonInvalidSchedule, "backup.%s %q is not a valid cron schedule: %v", c.field, c.value, err)
		}
		// The parser finds no run within five years of a time given (a
		// February 29th within four): from 1970, none means never.
		if sched.Next(time.Unix(0, 0).UTC()).IsZero() {
			return nil, Stalled(phiguardv1alpha1.ReasonInvalidSchedule, "backup.%s %q never runs: no date matches all its fields; give one that does, such as %q", c.field, c.value, c.example)
		}
	}
	for _, d := range []struct {
		field string
		value *metav1.Duration
	}{{"ttl", spec.TTL}, {"rpo", spec.RPO}} {
		if d.value != nil && d.value.Duration <= 0 {
			return nil, Stalled(phiguardv1alpha1.ReasonInvalidDuration, "backup.%s is %s: give a positive duration such as 720h, or leave it empty for the default", d.field, d.value.Duration)
		}
	}
	return nil, nil
}

// Inputs implements Reader.
func (BackupScheduling) Inputs() []Input { return []Input{VeleroObjects, DrillObjects} }

// Watches implements Watcher: Velero's objects, once its API is served.
func (BackupScheduling) Watches() []Watch {
	return []Watch{
		{Object: &velerov1.Schedule{}, API: optionalapi.Velero,
			Map: func(_ context.Context, _ Workloads, obj client.Object) []reconcile.Request {
				return workloadOfSchedule(obj)
			}},
		{Object: &velerov1.Backup{}, API: optionalapi.Velero, Map: workloadsForBackup},
		// Restore drills, labelled for their workload as the Schedule is.
		{Object: &velerov1.Restore{}, API: optionalapi.Velero,
			Map: func(_ context.Context, _ Workloads, obj client.Object) []reconcile.Request {
				return workloadOfSchedule(obj)
			}},
		{Object: &velerov1.BackupStorageLocation{}, API: optionalapi.Velero,
			Map:        func(ctx context.Context, w Workloads, _ client.Object) []reconcile.Request { return w.In(ctx, "") },
			Predicates: []predicate.Predicate{locationJudgementChanged}},
	}
}

// locationJudgementChanged passes a BackupStorageLocation's creation and
// deletion, and an update only when what phiguard judges changed: its spec,
// or its phase or message. Velero records each validation of a location
// (every minute by default) in its status, which alone would re-evaluate
// every workload every minute.
var locationJudgementChanged = predicate.Funcs{UpdateFunc: func(e ctrlevent.UpdateEvent) bool {
	before, ok1 := e.ObjectOld.(*velerov1.BackupStorageLocation)
	after, ok2 := e.ObjectNew.(*velerov1.BackupStorageLocation)
	if !ok1 || !ok2 {
		return true
	}
	return !equality.Semantic.DeepEqual(before.Spec, after.Spec) || before.Status.Phase != after.Status.Phase ||
		before.Status.Message != after.Status.Message
}}

// workloadOfSchedule maps one of phiguard's Schedules (or drill Restores) to
// its workload by labels.
func workloadOfSchedule(s client.Object) []reconcile.Request {
	ns, name := s.GetLabels()[workloadNamespaceLabel], s.GetLabels()[phiguardv1alpha1.WorkloadLabel]
	if ns == "" || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

// workloadsForBackup maps a Backup to the workload of its Schedule, or, for a
// Schedule that is not phiguard's (judged in Audit mode), to every workload.
func workloadsForBackup(ctx context.Context, w Workloads, b client.Object) []reconcile.Request {
	name := b.GetLabels()[velerov1.ScheduleNameLabel]
	if name == "" {
		return nil
	}
	var s velerov1.Schedule
	if err := w.Reader.Get(ctx, types.NamespacedName{Namespace: b.GetNamespace(), Name: name}, &s); err == nil {
		if reqs := workloadOfSchedule(&s); reqs != nil {
			return reqs
		}
	}
	return w.In(ctx, "")
}

// readVelero reads Velero's objects in its namespace.
func readVelero(ctx context.Context, r client.Reader, s *Scope) (*Velero, error) {
	ns := s.Settings.Backup.VeleroNamespace
	var schedules velerov1.ScheduleList
	var backups velerov1.BackupList
	var locations velerov1.BackupStorageLocationList
	for _, l := range []struct {
		list client.ObjectList
		what string
	}{{&schedules, "Schedules"}, {&backups, "Backups"}, {&locations, "BackupStorageLocations"}} {
		if err := r.List(ctx, l.list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing Velero %s in %s: %w", l.what, ns, err)
		}
	}
	v := &Velero{Schedules: schedules.Items, Backups: backups.Items, StorageLocations: locations.Items}
	if err := r.Get(ctx, types.NamespacedName{Name: ns}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
		v.NamespaceMissing = true
	} else if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	return v, nil
}

// ScheduleName is the name of phiguard's Schedule for a workload.
func ScheduleName(w *phiguardv1alpha1.PHIWorkload) string {
	return "phiguard-" + w.Namespace + "-" + w.Name
}

// ScheduleLabels are the labels of phiguard's Schedule for a workload.
func ScheduleLabels(w *phiguardv1alpha1.PHIWorkload) map[string]string {
	l := ownedLabels(w)
	l[workloadNamespaceLabel] = w.Namespace
	return l
}

// Reconcile implements Safeguard.
func (b BackupScheduling) Reconcile(ctx context.Context, s *Scope) Result {
	spec := s.Settings.Backup
	if _, err := b.ValidateSpec(&s.Settings); err != nil {
		return Result{Err: err}
	}
	if r, missing := APINotServed(s, optionalapi.Velero); missing {
		return r
	}
	velero := VeleroObjects.Get(s)
	if velero.NamespaceMissing {
		// Namespaces are not watched: look again now and then.
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonVeleroNotInstalled, RequeueAfter: time.Minute,
			Message: fmt.Sprintf("Velero's CRDs are installed but namespace %s does not exist: install Velero there, or set backup.veleroNamespace to where it runs", spec.VeleroNamespace)}
	}
	var events []Event
	var sched *velerov1.Schedule
	if s.Mode(b.Name()) == phiguardv1alpha1.ModeEnforce {
		var event *Event
		var err error
		sched, event, err = b.ensureSchedule(ctx, s, velero)
		if err != nil {
			return Result{Err: err}
		}
		if event != nil {
			events = append(events, *event)
		}
	} else {
		removed, err := removeSchedules(ctx, s.Client, s.Workload, velero.Schedules)
		if err != nil {
			return Result{Err: err, Events: removed}
		}
		events = removed
		// Judged without phiguard's own, which were just deleted.
		others := slices.DeleteFunc(slices.Clone(velero.Schedules), func(sc velerov1.Schedule) bool { return Keeps(&sc, s.Workload) })
		sched = coveringSchedule(s.Workload, others)
	}
	drills, drillEvents, err := b.drills(ctx, s, velero, sched)
	events = append(events, drillEvents...)
	if err != nil {
		return Result{Err: err, Events: events}
	}
	var r Result
	if sched == nil {
		r = Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonScheduleMissing,
			Message: fmt.Sprintf("no Velero Schedule in %s backs up namespace %s with the workload's pods; set backup.mode to Enforce for phiguard to keep one",
				spec.VeleroNamespace, s.Workload.Namespace)}
	} else {
		r = b.judge(ctx, s, velero, sched)
	}
	r = b.judgeDrills(s, drills, r)
	r.Events = append(events, r.Events...)
	return r
}

// judge checks the storage location, then the freshness of the schedule's backups.
func (b BackupScheduling) judge(ctx context.Context, s *Scope, velero *Velero, sched *velerov1.Schedule) Result {
	bsl, why := storageLocation(velero.StorageLocations, sched.Spec.Template.StorageLocation)
	switch {
	case bsl == nil:
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonStorageLocationMissing, Message: why}
	case bsl.Status.Phase != velerov1.BackupStorageLocationPhaseAvailable:
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonStorageLocationUnavailable,
			Message: fmt.Sprintf("BackupStorageLocation %s is %q, not Available: Velero cannot write backups there (%s)",
				bsl.Name, bsl.Status.Phase, bsl.Status.Message)}
	}
	r := freshness(sched, velero.Backups, s.Settings.Backup.RPO.Duration, s.Now)
	if last := LastCompleted(sched.Name, velero.Backups); last != nil {
		b.Metrics.set(s.Workload, last.Status.CompletionTimestamp.Time)
	}
	enc := storageEncryption(bsl, s.Policy.AcceptsProviderDefaultEncryption())
	enc.message = "storage: " + enc.message
	r = enc.overlay(r)
	return b.immutability(ctx, s, bsl).overlay(r)
}

// ensureSchedule applies phiguard's Schedule when what is stored differs in a
// field phiguard owns (ssa.Apply: Velero has no generated apply
// configurations, so the Schedule goes as unstructured, compared on the
// fields phiguard applied).
func (b BackupScheduling) ensureSchedule(ctx context.Context, s *Scope, velero *Velero) (*velerov1.Schedule, *Event, error) {
	want := DesiredSchedule(s.Workload, s.Settings.Backup)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding Schedule %s: %w", want.Name, err)
	}
	// What the apiserver would drop on the way back (empty structs, nulls)
	// must not be applied, or the comparison would differ forever.
	desired := &unstructured.Unstructured{Object: pruneEmpty(u)}
	var existing client.Object
	have := byName(velero.Schedules, want.Name)
	if have != nil {
		h := have.DeepCopy()
		h.SetGroupVersionKind(velerov1.SchemeGroupVersion.WithKind(scheduleKind))
		existing = h
	}
	changed, err := ssa.Apply(ctx, s.Client, existing, client.ApplyConfigurationFromUnstructured(desired), ssa.Unstructured)
	if err != nil || !changed {
		return have, nil, err
	}
	// Apply decoded the stored Schedule into desired: judge that, creation time included.
	stored := &velerov1.Schedule{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(desired.Object, stored); err != nil {
		return nil, nil, fmt.Errorf("decoding Schedule %s: %w", want.Name, err)
	}
	event := &Event{Reason: phiguardv1alpha1.ReasonScheduleCreated, Message: fmt.Sprintf("created Velero Schedule %s/%s (%q, ttl %s)", want.Namespace, want.Name, want.Spec.Schedule, want.Spec.Template.TTL.Duration)}
	if have != nil {
		event = &Event{Reason: phiguardv1alpha1.ReasonScheduleUpdated, Message: fmt.Sprintf("updated Velero Schedule %s/%s to follow the spec", want.Namespace, want.Name)}
	}
	event.Related = reference(velerov1.SchemeGroupVersion.String(), scheduleKind, stored)
	return stored, event, nil
}

// pruneEmpty removes nulls and empty maps and lists, at every depth. Zero
// scalars (false, 0, "") stay: phiguard means them.
func pruneEmpty(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			if len(pruneEmpty(x)) == 0 {
				delete(m, k)
			}
		case []any:
			if len(x) == 0 {
				delete(m, k)
			}
			for _, item := range x {
				if im, ok := item.(map[string]any); ok {
					pruneEmpty(im)
				}
			}
		}
	}
	return m
}

// DesiredSchedule is the Velero Schedule phiguard keeps for a workload: its
// namespace, its selector, the TTL and storage location of the spec.
func DesiredSchedule(w *phiguardv1alpha1.PHIWorkload, spec *phiguardv1alpha1.BackupSpec) *velerov1.Schedule {
	snapshot := spec.Volumes != phiguardv1alpha1.BackupVolumesFileSystem
	return &velerov1.Schedule{
		TypeMeta:   metav1.TypeMeta{APIVersion: velerov1.SchemeGroupVersion.String(), Kind: "Schedule"},
		ObjectMeta: metav1.ObjectMeta{Name: ScheduleName(w), Namespace: spec.VeleroNamespace, Labels: ScheduleLabels(w)},
		Spec: velerov1.ScheduleSpec{
			Schedule: spec.Schedule,
			// Owned and kept false: with it, deleting the Schedule would let
			// garbage collection delete every backup it made.
			UseOwnerReferencesInBackup: ptr.To(false),
			Template: velerov1.BackupSpec{
				IncludedNamespaces:       []string{w.Namespace},
				LabelSelector:            w.Spec.Selector.DeepCopy(),
				TTL:                      *spec.TTL,
				StorageLocation:          spec.StorageLocation,
				SnapshotVolumes:          ptr.To(snapshot),
				DefaultVolumesToFsBackup: ptr.To(!snapshot),
			},
		},
	}
}

// removeSchedules deletes phiguard's Schedules for the workload. Their
// backups are left alone.
func removeSchedules(ctx context.Context, c client.Client, w *phiguardv1alpha1.PHIWorkload, schedules []velerov1.Schedule) ([]Event, error) {
	var events []Event
	for i := range schedules {
		sc := &schedules[i]
		if !Keeps(sc, w) {
			continue
		}
		if err := c.Delete(ctx, sc, client.Preconditions{UID: &sc.UID}); err != nil && !apierrors.IsNotFound(err) {
			return events, fmt.Errorf("deleting Schedule %s/%s: %w", sc.Namespace, sc.Name, err)
		}
		events = append(events, Event{Reason: phiguardv1alpha1.ReasonScheduleRemoved,
			Message: fmt.Sprintf("deleted Velero Schedule %s/%s; the backups it made are kept until their TTL", sc.Namespace, sc.Name),
			Related: reference(velerov1.SchemeGroupVersion.String(), scheduleKind, sc)})
	}
	return events, nil
}

// Finalize deletes phiguard's Schedules for a workload that is going away,
// wherever they are, and its restore drill's scratch namespace, and forgets
// its metrics. Backups and drill Restores stay. With Velero not installed
// there is no Schedule to delete.
func (b BackupScheduling) Finalize(ctx context.Context, c client.Client, w *phiguardv1alpha1.PHIWorkload) ([]Event, error) {
	b.Metrics.forget(w)
	if _, err := deleteDrillNamespace(ctx, c, b.reader(c), w); err != nil {
		return nil, err
	}
	var list velerov1.ScheduleList
	err := c.List(ctx, &list, client.MatchingLabels{phiguardv1alpha1.WorkloadLabel: w.Name, workloadNamespaceLabel: w.Namespace})
	if meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing Schedules of %s/%s: %w", w.Namespace, w.Name, err)
	}
	return removeSchedules(ctx, c, w, list.Items)
}

// coveringSchedule finds a Schedule (anyone's) that backs up the workload: its
// namespaces include the workload's and its selector, if any, is one the
// workload's pods satisfy (the same, or a subset of its labels).
func coveringSchedule(w *phiguardv1alpha1.PHIWorkload, schedules []velerov1.Schedule) *velerov1.Schedule {
	for i := range schedules {
		t := &schedules[i].Spec.Template
		nsOK := len(t.IncludedNamespaces) == 0 || slices.Contains(t.IncludedNamespaces, "*") || slices.Contains(t.IncludedNamespaces, w.Namespace)
		if !nsOK || slices.Contains(t.ExcludedNamespaces, w.Namespace) {
			continue
		}
		if t.LabelSelector == nil || selectorCovers(t.LabelSelector, &w.Spec.Selector) {
			return &schedules[i]
		}
	}
	return nil
}

// selectorCovers says whether every pod sel selects is selected by outer: here,
// when outer's matchLabels are a subset of sel's and it has no expressions.
func selectorCovers(outer, sel *metav1.LabelSelector) bool {
	if len(outer.MatchExpressions) > 0 {
		return equality.Semantic.DeepEqual(outer, sel)
	}
	for k, v := range outer.MatchLabels {
		if sel.MatchLabels[k] != v {
			return false
		}
	}
	return true
}

// freshness judges a schedule's backups against the RPO and asks for a
// requeue when, with no new backup, the verdict would change. Its messages
// name absolute times only, so that a reconcile with nothing new writes nothing.
func freshness(sched *velerov1.Schedule, backups []velerov1.Backup, rpo time.Duration, now time.Time) Result {
	last := LastCompleted(sched.Name, backups)
	if latest := latestFinished(sched.Name, backups); latest != nil && latest.Status.Phase != velerov1.BackupPhaseCompleted {
		msg := fmt.Sprintf("the latest backup %s of Schedule %s ended %s", latest.Name, sched.Name, latest.Status.Phase)
		if last != nil {
			msg += fmt.Sprintf("; the last successful one, %s, completed at %s", last.Name, last.Status.CompletionTimestamp.UTC().Format(time.RFC3339))
		}
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonBackupFailed, Message: msg + "; see `velero backup describe " + latest.Name + "`"}
	}
	if last == nil {
		lapse := sched.CreationTimestamp.Add(rpo)
		if now.Before(lapse) {
			return Result{Status: metav1.ConditionUnknown, Reason: phiguardv1alpha1.ReasonAwaitingFirstBackup, RequeueAfter: lapse.Sub(now),
				Message: fmt.Sprintf("Schedule %s (%q) has not completed a backup yet; it must before %s (rpo %s)", sched.Name, sched.Spec.Schedule, lapse.UTC().Format(time.RFC3339), rpo)}
		}
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonBackupStale,
			Message: fmt.Sprintf("Schedule %s (%q) has completed no backup since it was created at %s; rpo is %s",
				sched.Name, sched.Spec.Schedule, sched.CreationTimestamp.UTC().Format(time.RFC3339), rpo)}
	}
	done := last.Status.CompletionTimestamp.Time
	lapse := done.Add(rpo)
	if !now.Before(lapse) {
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonBackupStale,
			Message: fmt.Sprintf("the last successful backup %s completed at %s, longer ago than the rpo of %s", last.Name, done.UTC().Format(time.RFC3339), rpo)}
	}
	return Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonBackupFresh, RequeueAfter: lapse.Sub(now),
		Message: fmt.Sprintf("the last successful backup %s completed at %s, within the rpo of %s (Schedule %s, %q)", last.Name, done.UTC().Format(time.RFC3339), rpo, sched.Name, sched.Spec.Schedule)}
}

// LastCompleted is the schedule's most recently completed backup, or nil.
func LastCompleted(schedule string, backups []velerov1.Backup) *velerov1.Backup {
	var last *velerov1.Backup
	for i := range backups {
		b := &backups[i]
		if b.Labels[velerov1.ScheduleNameLabel] != schedule || b.Status.Phase != velerov1.BackupPhaseCompleted || b.Status.CompletionTimestamp == nil {
			continue
		}
		if last == nil || b.Status.CompletionTimestamp.After(last.Status.CompletionTimestamp.Time) {
			last = b
		}
	}
	return last
}

// latestFinished is the most recently started backup of the schedule that has
// ended, successfully or not.
func latestFinished(schedule string, backups []velerov1.Backup) *velerov1.Backup {
	var latest *velerov1.Backup
	for i := range backups {
		b := &backups[i]
		if b.Labels[velerov1.ScheduleNameLabel] != schedule || !finished(b.Status.Phase) {
			continue
		}
		if latest == nil || startOf(b).After(startOf(latest)) {
			latest = b
		}
	}
	return latest
}

func finished(p velerov1.BackupPhase) bool {
	switch p {
	case velerov1.BackupPhaseCompleted, velerov1.BackupPhaseFailed, velerov1.BackupPhasePartiallyFailed, velerov1.BackupPhaseFailedValidation:
		return true
	}
	return false
}

func startOf(b *velerov1.Backup) time.Time {
	if b.Status.StartTimestamp != nil {
		return b.Status.StartTimestamp.Time
	}
	return b.CreationTimestamp.Time
}

// storageLocation finds the named BackupStorageLocation, or Velero's default
// when name is empty.
func storageLocation(locations []velerov1.BackupStorageLocation, name string) (*velerov1.BackupStorageLocation, string) {
	for i := range locations {
		if (name != "" && locations[i].Name == name) || (name == "" && locations[i].Spec.Default) {
			return &locations[i], ""
		}
	}
	if name != "" {
		return nil, fmt.Sprintf("BackupStorageLocation %s does not exist in Velero's namespace: create it or name another in backup.storageLocation", name)
	}
	return nil, "Velero has no default BackupStorageLocation: mark one default (spec.default: true) or name one in backup.storageLocation"
}

// storageEncryption judges whether the location's provider config declares
// encryption at rest, for the providers phiguard knows. A location that
// declares none is encrypted only by the provider's default, which counts
// when the PHIPolicy accepts it (backup.acceptProviderDefaultEncryption);
// an unknown provider cannot be judged.
func storageEncryption(bsl *velerov1.BackupStorageLocation, acceptDefault bool) locationVerdict {
	cfg := bsl.Spec.Config
	declared := func(format string, args ...any) locationVerdict {
		return locationVerdict{status: metav1.ConditionTrue, message: fmt.Sprintf(format, args...)}
	}
	providerDefault := func(what, how string) locationVerdict {
		if acceptDefault {
			return declared("BackupStorageLocation %s declares no encryption and relies on %s, which PHIPolicy backup.acceptProviderDefaultEncryption accepts", bsl.Name, what)
		}
		return locationVerdict{status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonStorageLocationUnencrypted,
			message: fmt.Sprintf("BackupStorageLocation %s declares no encryption at rest (%s); %s, or accept the provider's default with PHIPolicy backup.acceptProviderDefaultEncryption", bsl.Name, what, how)}
	}
	switch bsl.Spec.Provider {
	case "aws", "velero.io/aws":
		if k := cfg["kmsKeyId"]; k != "" {
			return declared("BackupStorageLocation %s encrypts with KMS key %s", bsl.Name, k)
		}
		if v := cfg["serverSideEncryption"]; v != "" {
			return declared("BackupStorageLocation %s encrypts server-side (%s)", bsl.Name, v)
		}
		return providerDefault("the bucket's default encryption", "set config.serverSideEncryption or config.kmsKeyId")
	case "gcp", "velero.io/gcp":
		if k := cfg["kmsKeyName"]; k != "" {
			return declared("BackupStorageLocation %s encrypts with customer-managed key %s", bsl.Name, k)
		}
		return providerDefault("Google-managed keys", "set config.kmsKeyName for a customer-managed key")
	case "azure", "velero.io/azure":
		return providerDefault("Azure Storage's platform-managed keys", "use a storage account with customer-managed keys")
	}
	return locationVerdict{status: metav1.ConditionUnknown, reason: phiguardv1alpha1.ReasonStorageEncryptionUnknown,
		message: fmt.Sprintf("phiguard cannot tell whether BackupStorageLocation %s (provider %s) encrypts at rest; check it", bsl.Name, bsl.Spec.Provider)}
}
