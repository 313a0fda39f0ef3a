package safeguard

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
)

// Restore drills (backup.restoreTest) prove that the backups restore
// (§164.308(a)(7)(ii)(B) and (D)): phiguard restores the latest Completed
// backup into a scratch namespace of the workload's, checks that the
// workload's objects came back, records the result on the Velero Restore
// and deletes the scratch namespace.
//
// Every fact a drill needs lives in the cluster, on the Restore (its labels,
// annotations and phase) and the scratch namespace, never in the manager's
// memory: a restart or a new leader carries on where the last one stopped.
// A Restore's name is fixed by the slot it runs for, so a reconcile that
// reads a cache without the Restore just made cannot start a second one.

const (
	// DrillLabel marks phiguard's restore drills, the Velero Restores and
	// their scratch namespaces, with "true".
	DrillLabel = "phiguard.io/drill"
	// DrillNamespacePrefix begins the name of every scratch namespace.
	DrillNamespacePrefix = "phiguard-drill-"
	// DrillIsolationPolicy is the default-deny NetworkPolicy in a scratch
	// namespace: what a drill restores is ePHI too, and its pods must reach
	// nothing and be reached by nothing.
	DrillIsolationPolicy = "phiguard-drill-isolation"

	// DrillResultAnnotation on a drill's Restore is its result, DrillVerified
	// or DrillFailed, set when the drill ends: a Restore without one is a
	// drill in progress.
	DrillResultAnnotation = "phiguard.io/drill-result"
	// DrillMessageAnnotation on a drill's Restore says what the drill
	// verified, or why it failed.
	DrillMessageAnnotation = "phiguard.io/drill-message"
	// DrillFinishedAnnotation on a drill's Restore is when phiguard recorded
	// its result (RFC 3339).
	DrillFinishedAnnotation = "phiguard.io/drill-finished-at"
	// DrillStartedAnnotation on a drill's Restore is when phiguard started
	// it, by the reconcile's clock (RFC 3339): the cron's next time is
	// reckoned from it, and the timeout.
	DrillStartedAnnotation = "phiguard.io/drill-started-at"
	// DrillBackupStartedAnnotation on a drill's Restore is when the restored
	// backup started (RFC 3339): the objects created no later are those the
	// backup holds.
	DrillBackupStartedAnnotation = "phiguard.io/drill-backup-started-at"

	// DrillVerified is the result of a drill whose restored objects were all there.
	DrillVerified = "Verified"
	// DrillFailed is the result of a drill that failed, timed out or left
	// objects missing.
	DrillFailed = "Failed"

	// drillTimeout bounds a drill: one still running this long after it
	// started has failed.
	drillTimeout = 30 * time.Minute
	// drillPoll is how often a drill in progress is looked at besides the
	// watch on Restores: for the timeout, and for a scratch namespace whose
	// deletion a new drill waits for (namespaces of no workload bring none
	// back).
	drillPoll = 5 * time.Second
	// drillsKept is how many of a workload's drill Restores are kept.
	drillsKept = 5
	// drillMissingNamed is how many missing objects a failed drill names.
	drillMissingNamed = 5
)

// What restore drills read and write: Restores in Velero's namespace, the
// scratch namespaces, and, uncached, the workload's objects of the kinds a
// drill checks in the workload's and the scratch namespace. Deleting a
// Restore never deletes a backup.
// +kubebuilder:rbac:groups=velero.io,resources=restores,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps;services;persistentvolumeclaims,verbs=get;list
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list

// Drills are a workload's restore drills as the cache holds them.
type Drills struct {
	// Restores are the workload's drill Restores in Velero's namespace,
	// newest first, without those being deleted.
	Restores []velerov1.Restore
	// Namespace is the workload's scratch namespace (DrillNamespace), nil
	// when none exists. It may be someone else's: check ownsDrillNamespace.
	Namespace *corev1.Namespace
}

// DrillObjects are a workload's restore drills; nil while Velero's API is
// not served. Copied: finishDrill records a drill's result on its Restore in
// place (its annotations, then the patch's answer decoded into it), and
// latestDrills reads that record; they are few (drillsKept, and one running).
var DrillObjects = &InputOf[*Drills]{Name: "restore drills", API: optionalapi.Velero, Sharing: Copied, Read: readDrills}

func readDrills(ctx context.Context, r client.Reader, s *Scope) (*Drills, error) {
	restores, err := listDrills(ctx, r, s.Workload, s.Settings.Backup.VeleroNamespace)
	if err != nil {
		return nil, err
	}
	d := &Drills{Restores: restores}
	var ns corev1.Namespace
	switch err := r.Get(ctx, types.NamespacedName{Name: DrillNamespace(s.Workload)}, &ns); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("reading namespace %s: %w", DrillNamespace(s.Workload), err)
	default:
		d.Namespace = &ns
	}
	return d, nil
}

// listDrills lists the workload's drill Restores in Velero's namespace,
// newest first, leaving out those being deleted.
func listDrills(ctx context.Context, r client.Reader, w *phiguardv1alpha1.PHIWorkload, veleroNamespace string) ([]velerov1.Restore, error) {
	var list velerov1.RestoreList
	if err := r.List(ctx, &list, client.InNamespace(veleroNamespace), client.MatchingLabels(DrillLabels(w))); err != nil {
		return nil, fmt.Errorf("listing the restore drills of %s/%s in %s: %w", w.Namespace, w.Name, veleroNamespace, err)
	}
	out := slices.DeleteFunc(list.Items, func(r velerov1.Restore) bool { return !r.DeletionTimestamp.IsZero() })
	slices.SortFunc(out, func(a, b velerov1.Restore) int {
		return cmp.Or(drillStart(&b).Compare(drillStart(&a)), cmp.Compare(b.Name, a.Name))
	})
	return out, nil
}

// DrillNamespace is the name of a workload's scratch namespace:
// phiguard-drill- and the first 10 hex digits of the SHA-256 of
// <namespace>/<name>.
func DrillNamespace(w *phiguardv1alpha1.PHIWorkload) string {
	sum := sha256.Sum256([]byte(w.Namespace + "/" + w.Name))
	return DrillNamespacePrefix + hex.EncodeToString(sum[:])[:10]
}

// DrillLabels are the labels of a workload's drill Restores, scratch
// namespace and its isolation policy: those of phiguard's objects kept in
// another namespace (Keeps), and DrillLabel.
func DrillLabels(w *phiguardv1alpha1.PHIWorkload) map[string]string {
	l := ScheduleLabels(w)
	l[DrillLabel] = "true"
	return l
}

// IsDrillNamespace says whether a namespace is one of phiguard's scratch
// namespaces: named with DrillNamespacePrefix and labelled as phiguard's
// drill namespace. What is in one is a restored copy, covered by no
// PHIWorkload, and goes with the namespace when the drill ends.
func IsDrillNamespace(ns metav1.Object) bool {
	l := ns.GetLabels()
	return strings.HasPrefix(ns.GetName(), DrillNamespacePrefix) && l[DrillLabel] == "true" &&
		l[phiguardv1alpha1.ManagedByLabel] == phiguardv1alpha1.ManagedByValue
}

// DrillOf names the workload whose drill a scratch namespace holds, as
// <namespace>/<name>.
func DrillOf(ns metav1.Object) string {
	return ns.GetLabels()[workloadNamespaceLabel] + "/" + ns.GetLabels()[phiguardv1alpha1.WorkloadLabel]
}

// ownsDrillNamespace says whether ns is the workload's scratch namespace,
// which phiguard may delete: its name, and labelled as phiguard's drill
// namespace for this workload.
func ownsDrillNamespace(ns *corev1.Namespace, w *phiguardv1alpha1.PHIWorkload) bool {
	return ns.Name == DrillNamespace(w) && IsDrillNamespace(ns) && Keeps(ns, w)
}

// drillStart is when phiguard started a drill, or, lacking the
// annotation, when its Restore was created.
func drillStart(r *velerov1.Restore) time.Time {
	if t, err := time.Parse(time.RFC3339, r.Annotations[DrillStartedAnnotation]); err == nil {
		return t
	}
	return r.CreationTimestamp.Time
}

func recorded(r *velerov1.Restore) bool { return r.Annotations[DrillResultAnnotation] != "" }

func drillFinished(r *velerov1.Restore) time.Time {
	t, _ := time.Parse(time.RFC3339, r.Annotations[DrillFinishedAnnotation])
	return t
}

func restoreEnded(p velerov1.RestorePhase) bool {
	switch p {
	case velerov1.RestorePhaseCompleted, velerov1.RestorePhasePartiallyFailed, velerov1.RestorePhaseFailed, velerov1.RestorePhaseFailedValidation:
		return true
	}
	return false
}

// drillState is what the drills of one reconcile found and did, for the
// judgment.
type drillState struct {
	// on is true when backup.restoreTest is set.
	on bool
	// latest is the latest drill with a recorded result, nil when none.
	latest *velerov1.Restore
	// lastVerified is the latest Verified drill, nil when none.
	lastVerified *velerov1.Restore
	// running is the drill in progress, nil when none.
	running *velerov1.Restore
	// next is when the next drill is due; zero when no drill is to be
	// started (Audit, drills off, no backup yet).
	next time.Time
	// why says why no drill has run, after "no restore drill has been
	// verified yet".
	why string
}

// drills finishes a drill that ended, starts one that is due (Enforce
// only), and keeps the newest drillsKept. Drills that ended are recorded
// and their namespaces deleted whatever the mode: a restored copy of ePHI
// is not left behind.
func (b BackupScheduling) drills(ctx context.Context, s *Scope, velero *Velero, sched *velerov1.Schedule) (drillState, []Event, error) {
	d := drillState{on: s.Settings.Backup.RestoreTest != ""}
	found := DrillObjects.Get(s)
	if found == nil {
		found = &Drills{}
	}
	running, events, finished, err := b.finishDrills(ctx, s, found.Restores)
	d.running = running
	if err != nil {
		return d, events, err
	}
	d.latest, d.lastVerified = latestDrills(found.Restores)
	if usable, err := b.leftoverNamespace(ctx, s, found.Namespace, &d, finished); !usable || err != nil {
		return d, events, err
	}
	event, err := b.dueDrill(ctx, s, velero, sched, found, &d)
	if event != nil {
		events = append(events, *event)
	}
	return d, events, err
}

// finishDrills records the result of each drill whose Restore ended or
// timed out (finishDrill). It returns the first drill still running, nil
// when none, the events of those it finished, and whether it finished any.
func (b BackupScheduling) finishDrills(ctx context.Context, s *Scope, restores []velerov1.Restore) (running *velerov1.Restore, events []Event, finished bool, err error) {
	for i := range restores {
		rs := &restores[i]
		if recorded(rs) {
			continue
		}
		event, err := b.finishDrill(ctx, s, rs)
		if err != nil {
			return running, events, finished, err
		}
		if event != nil {
			events, finished = append(events, *event), true
		} else if running == nil {
			running = rs
		}
	}
	return running, events, finished, nil
}

// latestDrills are, of restores sorted newest first, the latest drill with
// a recorded result and the latest Verified one; nil when there is none.
func latestDrills(restores []velerov1.Restore) (latest, lastVerified *velerov1.Restore) {
	for i := range restores {
		rs := &restores[i]
		if recorded(rs) && latest == nil {
			latest = rs
		}
		if rs.Annotations[DrillResultAnnotation] == DrillVerified && lastVerified == nil {
			lastVerified = rs
		}
	}
	return latest, lastVerified
}

// leftoverNamespace deletes the scratch namespace ns that a drill left
// behind, when no drill runs in it. usable is false, and d.why says why,
// when ns is not phiguard's scratch namespace for this workload: drills
// cannot run then.
func (b BackupScheduling) leftoverNamespace(ctx context.Context, s *Scope, ns *corev1.Namespace, d *drillState, finished bool) (usable bool, err error) {
	if ns != nil && !ownsDrillNamespace(ns, s.Workload) {
		d.why = fmt.Sprintf(": namespace %s exists and is not phiguard's scratch namespace for this workload; phiguard neither uses nor deletes it, remove it for drills to run", ns.Name)
		return false, nil
	}
	if d.running == nil && !finished && ns != nil && ns.DeletionTimestamp.IsZero() {
		// Left by a drill that ended (or one that never got its Restore):
		// deleted before the next, which must restore into nothing. (The
		// drill finished just now deleted its own.)
		if err := b.removeLeftover(ctx, s); err != nil {
			return false, err
		}
	}
	return true, nil
}

// dueDrill sets when the next drill is due, or why none is to be started,
// starts it when it is due and none runs (Enforce only), and keeps the
// newest drillsKept. It returns the started drill's event, nil when none.
func (b BackupScheduling) dueDrill(ctx context.Context, s *Scope, velero *Velero, sched *velerov1.Schedule, found *Drills, d *drillState) (*Event, error) {
	if !d.on || sched == nil {
		return nil, nil
	}
	if s.Mode(b.Name()) != phiguardv1alpha1.ModeEnforce {
		d.why = ": phiguard runs restore drills (backup.restoreTest) in Enforce mode only"
		return nil, nil
	}
	last := LastCompleted(sched.Name, velero.Backups)
	if last == nil {
		d.why = ": the first runs once a backup has completed"
		return nil, nil
	}
	// Validated by ValidateSpec before any of this runs.
	restoreTest := s.Settings.Backup.RestoreTest
	cronSched, err := cron.ParseStandard(restoreTest)
	if err != nil {
		return nil, Stalled(phiguardv1alpha1.ReasonInvalidSchedule, "backup.restoreTest %q is not a valid cron schedule: %v", restoreTest, err)
	}
	d.next = drillSlot(cronSched, last, found.Restores)
	kept := found.Restores
	var event *Event
	if d.running == nil && !d.next.After(s.Now) {
		if found.Namespace != nil {
			d.why = fmt.Sprintf(": the next waits for namespace %s, left by the last, to be deleted", found.Namespace.Name)
		} else {
			var rs *velerov1.Restore
			if rs, event, err = b.startDrill(ctx, s, last, d.next); err != nil {
				return nil, err
			}
			d.running = rs
			kept = append([]velerov1.Restore{*rs}, kept...)
		}
	}
	return event, pruneDrills(ctx, s.Client, kept)
}

// drillSlot is when the next drill is due, given the last completed backup
// and the drills so far, newest first.
func drillSlot(cronSched cron.Schedule, last *velerov1.Backup, restores []velerov1.Restore) time.Time {
	// The first drill runs for the backup that made drills possible; each
	// next one at the cron's first time after the latest started, or, after
	// a failed drill, for the first backup completed since: what was fixed
	// (a ServiceAccount now labelled, a ConfigMap now held) is proven
	// without waiting for the cron.
	slot := last.Status.CompletionTimestamp.Time
	if len(restores) > 0 {
		latest := &restores[0]
		slot = cronSched.Next(drillStart(latest))
		if retry := last.Status.CompletionTimestamp.Time; latest.Annotations[DrillResultAnnotation] == DrillFailed &&
			latest.Spec.BackupName != last.Name && retry.After(drillStart(latest)) && retry.Before(slot) {
			slot = retry
		}
	}
	return slot
}

// startDrill makes the scratch namespace, its isolation policy and the
// Restore of backup into it, named for slot. The three are created, not
// applied: they live for one drill, and the namespace goes with everything
// in it.
func (b BackupScheduling) startDrill(ctx context.Context, s *Scope, backup *velerov1.Backup, slot time.Time) (*velerov1.Restore, *Event, error) {
	w := s.Workload
	scratch := DrillNamespace(w)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scratch, Labels: DrillLabels(w)}}
	if err := s.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, nil, fmt.Errorf("creating the restore drill's namespace %s: %w", scratch, err)
	}
	deny := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: scratch, Name: DrillIsolationPolicy, Labels: DrillLabels(w)},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}},
	}
	if err := s.Client.Create(ctx, deny); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, nil, fmt.Errorf("creating NetworkPolicy %s/%s: %w", scratch, DrillIsolationPolicy, err)
	}

	rs := &velerov1.Restore{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.Settings.Backup.VeleroNamespace,
			Name:      fmt.Sprintf("%s-%d", scratch, slot.Unix()),
			Labels:    DrillLabels(w),
			Annotations: map[string]string{
				DrillStartedAnnotation:       s.Now.UTC().Format(time.RFC3339),
				DrillBackupStartedAnnotation: startOf(backup).UTC().Format(time.RFC3339),
			},
		},
		Spec: velerov1.RestoreSpec{
			BackupName:         backup.Name,
			IncludedNamespaces: []string{w.Namespace},
			NamespaceMapping:   map[string]string{w.Namespace: scratch},
			// Objects only: no volume data, nothing outside the namespace.
			RestorePVs:              ptr.To(false),
			IncludeClusterResources: ptr.To(false),
			// Nor pods: their controllers, restored, make new ones (a drill
			// checks the objects that define the workload), and a pod as
			// stored cannot always be created again as it is (the apiserver
			// adds pod-template-hash to a topology spread constraint's
			// selector when matchLabelKeys names it, then refuses the two).
			ExcludedResources: []string{"pods"},
		},
	}
	err := s.Client.Create(ctx, rs)
	if apierrors.IsAlreadyExists(err) {
		// Started by an earlier reconcile that this one's cache has not seen.
		if err := b.reader(s.Client).Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			return nil, nil, fmt.Errorf("reading Restore %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		return rs, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("creating Restore %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	return rs, &Event{Reason: phiguardv1alpha1.ReasonRestoreDrillStarted,
		Message: fmt.Sprintf("started restore drill %s/%s: backup %s into namespace %s, isolated by NetworkPolicy %s",
			rs.Namespace, rs.Name, backup.Name, scratch, DrillIsolationPolicy),
		Related: reference(velerov1.SchemeGroupVersion.String(), "Restore", rs)}, nil
}

// finishDrill records the result of a drill whose Restore ended or timed
// out, on the Restore, then deletes the scratch namespace. It returns nil
// while the drill is still running.
func (b BackupScheduling) finishDrill(ctx context.Context, s *Scope, rs *velerov1.Restore) (*Event, error) {
	var verified bool
	var why string
	switch phase := rs.Status.Phase; {
	case phase == velerov1.RestorePhaseCompleted:
		var err error
		if verified, why, err = b.verifyDrill(ctx, s, rs); err != nil {
			return nil, err
		}
	case restoreEnded(phase):
		why = restoreFailure(rs)
	case s.Now.Sub(drillStart(rs)) >= drillTimeout:
		why = fmt.Sprintf("did not finish within %s (Velero's phase: %q); see `velero restore describe %s`",
			strings.TrimSuffix(drillTimeout.String(), "0s"), phase, rs.Name)
	default:
		return nil, nil
	}

	result := DrillFailed
	if verified {
		result = DrillVerified
	}
	patch := client.MergeFromWithOptions(rs.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	rs.Annotations[DrillResultAnnotation] = result
	rs.Annotations[DrillMessageAnnotation] = why
	rs.Annotations[DrillFinishedAnnotation] = s.Now.UTC().Format(time.RFC3339)
	// Optimistically locked: a cache that had not seen an earlier record
	// cannot overwrite it.
	if err := s.Client.Patch(ctx, rs, patch); err != nil {
		return nil, fmt.Errorf("recording the result of restore drill %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	deleted, err := deleteDrillNamespace(ctx, s.Client, b.reader(s.Client), s.Workload)
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("restore drill %s/%s of backup %s failed: %s", rs.Namespace, rs.Name, rs.Spec.BackupName, why)
	if verified {
		msg = fmt.Sprintf("restore drill %s/%s %s", rs.Namespace, rs.Name, why)
	}
	if deleted {
		msg += fmt.Sprintf("; deleted its namespace %s", DrillNamespace(s.Workload))
	}
	reason := phiguardv1alpha1.ReasonRestoreFailed
	if verified {
		reason = phiguardv1alpha1.ReasonRestoreVerified
	}
	return &Event{Warning: !verified, Reason: reason, Message: msg,
		Related: reference(velerov1.SchemeGroupVersion.String(), "Restore", rs)}, nil
}

// restoreFailure says why Velero ended a restore other than Completed.
func restoreFailure(rs *velerov1.Restore) string {
	st := rs.Status
	var why string
	switch st.Phase {
	case velerov1.RestorePhaseFailedValidation:
		why = "Velero refused the restore: " + strings.Join(st.ValidationErrors, "; ")
	case velerov1.RestorePhaseFailed:
		why = "Velero ended the restore Failed"
		if st.FailureReason != "" {
			why += ": " + st.FailureReason
		}
	default:
		why = fmt.Sprintf("Velero ended the restore %s with %d errors", st.Phase, st.Errors)
	}
	return why + "; see `velero restore describe " + rs.Name + " --details`"
}

// drillKinds are the kinds of object a drill checks came back.
var drillKinds = []schema.GroupVersionKind{
	appsv1.SchemeGroupVersion.WithKind("Deployment"),
	appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
	corev1.SchemeGroupVersion.WithKind("Service"),
	corev1.SchemeGroupVersion.WithKind("ConfigMap"),
	corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"),
	// Pods cannot be created again without theirs.
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"),
}

// verifyDrill checks that every object of drillKinds the backup holds (in
// the workload's namespace, matched by its selector as the Schedule's
// backups are, created no later than the backup started) exists by name in
// the scratch namespace. It reads metadata only, uncached: ConfigMaps are
// not in the cache, and should not be.
func (b BackupScheduling) verifyDrill(ctx context.Context, s *Scope, rs *velerov1.Restore) (bool, string, error) {
	r := b.reader(s.Client)
	scratch := DrillNamespace(s.Workload)
	backupStart, err := time.Parse(time.RFC3339, rs.Annotations[DrillBackupStartedAnnotation])
	if err != nil {
		backupStart = rs.CreationTimestamp.Time
	}
	var held, restored []metav1.PartialObjectMetadata
	for _, gvk := range drillKinds {
		h, err := listMetadata(ctx, r, gvk, client.InNamespace(s.Workload.Namespace), client.MatchingLabelsSelector{Selector: s.Selector})
		if err != nil {
			return false, "", err
		}
		got, err := listMetadata(ctx, r, gvk, client.InNamespace(scratch))
		if err != nil {
			return false, "", err
		}
		held, restored = append(held, h...), append(restored, got...)
	}
	ok, why := drillVerdict(rs.Spec.BackupName, scratch, s.Selector.String(), heldBy(held, backupStart), restored)
	return ok, why, nil
}

func listMetadata(ctx context.Context, r client.Reader, gvk schema.GroupVersionKind, opts ...client.ListOption) ([]metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := r.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("listing %ss: %w", gvk.Kind, err)
	}
	for i := range list.Items {
		// The metadata client leaves the kind to the list.
		list.Items[i].SetGroupVersionKind(gvk)
	}
	return list.Items, nil
}

// heldBy keeps the objects created no later than a backup started: those
// it can hold.
func heldBy(objs []metav1.PartialObjectMetadata, backupStart time.Time) []metav1.PartialObjectMetadata {
	return slices.DeleteFunc(slices.Clone(objs), func(o metav1.PartialObjectMetadata) bool {
		return o.CreationTimestamp.After(backupStart)
	})
}

// drillVerdict says whether every held object was restored (by kind and
// name), with the message recorded on the Restore.
// A backup that holds none of them proves nothing: the drill fails, saying
// what to label.
func drillVerdict(backup, scratch, selector string, held, restored []metav1.PartialObjectMetadata) (bool, string) {
	if len(held) == 0 {
		return false, fmt.Sprintf("restored backup %s into %s, but it holds none of the workload's Deployments, StatefulSets, Services, "+
			"ConfigMaps, claims or ServiceAccounts (none is labelled %s), so nothing that brings the workload back was proven: "+
			"label them as its pods are, and the next backup will hold them", backup, scratch, selector)
	}
	back := map[string]bool{}
	for _, o := range restored {
		back[o.Kind+"/"+o.Name] = true
	}
	var missing []string
	for _, o := range held {
		if !back[o.Kind+"/"+o.Name] {
			missing = append(missing, o.Kind+"/"+o.Name)
		}
	}
	if len(missing) == 0 {
		return true, fmt.Sprintf("restored backup %s into %s and verified %d objects", backup, scratch, len(held))
	}
	slices.Sort(missing)
	named := strings.Join(missing[:min(len(missing), drillMissingNamed)], ", ")
	if more := len(missing) - drillMissingNamed; more > 0 {
		named += fmt.Sprintf(" and %d more", more)
	}
	return false, fmt.Sprintf("%d of the %d objects the backup holds did not come back into %s: %s", len(missing), len(held), scratch, named)
}

// removeLeftover deletes a scratch namespace no drill is using, once an
// uncached read confirms that none is in progress (the cache may not have
// seen the Restore of one just started).
func (b BackupScheduling) removeLeftover(ctx context.Context, s *Scope) error {
	r := b.reader(s.Client)
	restores, err := listDrills(ctx, r, s.Workload, s.Settings.Backup.VeleroNamespace)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(restores, func(rs velerov1.Restore) bool { return !recorded(&rs) }) {
		return nil
	}
	_, err = deleteDrillNamespace(ctx, s.Client, r, s.Workload)
	return err
}

// deleteDrillNamespace deletes the workload's scratch namespace, only when
// it is phiguard's for this workload (ownsDrillNamespace) and not already
// going. deleted says whether it asked to.
func deleteDrillNamespace(ctx context.Context, c client.Client, r client.Reader, w *phiguardv1alpha1.PHIWorkload) (deleted bool, err error) {
	var ns corev1.Namespace
	switch err := r.Get(ctx, types.NamespacedName{Name: DrillNamespace(w)}, &ns); {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading namespace %s: %w", DrillNamespace(w), err)
	}
	if !ownsDrillNamespace(&ns, w) || !ns.DeletionTimestamp.IsZero() {
		return false, nil
	}
	if err := c.Delete(ctx, &ns, client.Preconditions{UID: &ns.UID}); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("deleting the restore drill's namespace %s: %w", ns.Name, err)
	}
	return true, nil
}

// pruneDrills deletes recorded drills past the newest drillsKept (restores
// is newest first). A drill in progress is never deleted: its namespace
// would be left behind.
func pruneDrills(ctx context.Context, c client.Client, restores []velerov1.Restore) error {
	for i := drillsKept; i < len(restores); i++ {
		rs := &restores[i]
		if !recorded(rs) {
			continue
		}
		if err := c.Delete(ctx, rs, client.Preconditions{UID: &rs.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the old restore drill %s/%s: %w", rs.Namespace, rs.Name, err)
		}
	}
	return nil
}

// reader is what a drill reads uncached: APIReader, or c when it is unset.
func (b BackupScheduling) reader(c client.Reader) client.Reader {
	if b.APIReader != nil {
		return b.APIReader
	}
	return c
}

// judgeDrills overlays the latest recorded drill on the result of the
// backups: a failed drill fails the safeguard, a verified one upgrades a
// fresh backup to RestoreVerified. The messages name absolute times only.
func (b BackupScheduling) judgeDrills(s *Scope, d drillState, r Result) Result {
	if d.running != nil {
		r.RequeueAfter = sooner(r.RequeueAfter, drillPoll)
	}
	if !d.on {
		return r
	}
	if v := d.lastVerified; v != nil {
		b.Metrics.setRestoreVerified(s.Workload, drillFinished(v))
	}
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch l := d.latest; {
	case l != nil && l.Annotations[DrillResultAnnotation] == DrillVerified:
		if r.Status == metav1.ConditionTrue {
			r.Reason = phiguardv1alpha1.ReasonRestoreVerified
		}
		r.Message += fmt.Sprintf("; restore drill %s %s at %s", l.Name, l.Annotations[DrillMessageAnnotation], stamp(drillFinished(l)))
	case l != nil:
		if r.Status != metav1.ConditionFalse {
			r.Status, r.Reason = metav1.ConditionFalse, phiguardv1alpha1.ReasonRestoreFailed
		}
		r.Message += fmt.Sprintf("; restore drill %s of backup %s failed at %s: %s", l.Name, l.Spec.BackupName,
			stamp(drillFinished(l)), l.Annotations[DrillMessageAnnotation])
		if v := d.lastVerified; v != nil {
			r.Message += fmt.Sprintf("; the last verified restore, drill %s of backup %s, ended at %s", v.Name, v.Spec.BackupName, stamp(drillFinished(v)))
		} else {
			r.Message += "; no restore of the workload has been verified yet"
		}
	case d.running == nil:
		r.Message += "; no restore drill has been verified yet" + d.why
	}
	if rs := d.running; rs != nil {
		r.Message += fmt.Sprintf("; restore drill %s of backup %s is in progress since %s", rs.Name, rs.Spec.BackupName, stamp(drillStart(rs)))
	} else if !d.next.IsZero() {
		// Due and not started: waiting for the last drill's namespace to go.
		wait := d.next.Sub(s.Now)
		if wait <= 0 {
			wait = drillPoll
		}
		r.RequeueAfter = sooner(r.RequeueAfter, wait)
	}
	return r
}

// sooner is the sooner of two requeues, where zero is none.
func sooner(a, b time.Duration) time.Duration {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}
