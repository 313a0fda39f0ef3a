package safeguard

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/objectlock"
)

// Covers whether BackupScheduled judges its location's bucket immutable
// (backup_location.go): when PHIPolicy backup.locationCredentials asks for
// it, how the Secret it names is read from phiguard's namespace, what the
// LocationChecker is given, and how its verdict combines with the backups'
// freshness. A stub stands in for objectlock.Checker, which
// internal/objectlock tests against a real object store.

// notChecked ends the message of a verdict made without
// backup.locationCredentials, as storageMessage does.
const notChecked = "; immutability of BackupStorageLocation default not checked: PHIPolicy default names no backup.locationCredentials" +
	" (a Secret in phiguard's namespace with read-only S3 credentials: s3:GetBucketVersioning and s3:GetBucketObjectLockConfiguration)"

// readerSecret is the Secret backup.locationCredentials names in these tests.
const readerSecret = "backup-reader"

// locationCheck is what one call of a LocationChecker was given.
type locationCheck struct {
	location string // namespace/name
	creds    objectlock.Credentials
	ttl      time.Duration
}

// stubLocations is a LocationChecker that records its calls and answers
// verdict, or err when set.
type stubLocations struct {
	verdict objectlock.Verdict
	err     error
	calls   []locationCheck
}

// Check implements LocationChecker.
func (s *stubLocations) Check(_ context.Context, bsl *velerov1.BackupStorageLocation, creds objectlock.Credentials, ttl time.Duration) (objectlock.Verdict, error) {
	s.calls = append(s.calls, locationCheck{location: bsl.Namespace + "/" + bsl.Name, creds: creds, ttl: ttl})
	return s.verdict, s.err
}

// withBackupPolicy stores the PHIPolicy named default with spec.backup for
// the rest of the test. It applies to every workload, so it goes when the
// test ends (the package's tests run one at a time: none is parallel).
func withBackupPolicy(t *testing.T, backup *phiguardv1alpha1.BackupPolicy) {
	t.Helper()
	p := &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
		Spec: phiguardv1alpha1.PHIPolicySpec{Backup: backup}}
	create(t, p)
	t.Cleanup(func() {
		// The test's context is done by now.
		if err := k8s.Delete(context.Background(), p); err != nil {
			t.Errorf("deleting PHIPolicy %s: %v", p.Name, err)
		}
	})
}

// withLocationCredentials stores a PHIPolicy whose
// backup.locationCredentials names readerSecret.
func withLocationCredentials(t *testing.T) {
	t.Helper()
	withBackupPolicy(t, &phiguardv1alpha1.BackupPolicy{LocationCredentials: &phiguardv1alpha1.SecretName{Name: readerSecret}})
}

// newReaderSecret stores the Secret readerSecret in ns with data.
func newReaderSecret(t *testing.T, ns string, data map[string]string) {
	t.Helper()
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: readerSecret}, StringData: data})
}

// locationFixture is a workload with phiguard's Schedule and a backup that
// completed at done (no restore drills), judged with a stub LocationChecker;
// phiguard's namespace is a namespace of the test's own.
type locationFixture struct {
	*drillFixture
	// phiguard is phiguard's namespace, where the Secret is read.
	phiguard string
	done     time.Time
}

// newLocationFixture makes the fixture, with the workload's backup spec
// changed by mutate (which may be nil).
func newLocationFixture(t *testing.T, stub *stubLocations, mutate func(*phiguardv1alpha1.BackupSpec)) *locationFixture {
	t.Helper()
	f := &locationFixture{}
	f.drillFixture = newDrillFixture(t, func(b *phiguardv1alpha1.BackupSpec) {
		b.RestoreTest = ""
		if mutate != nil {
			mutate(b)
		}
	}, false)
	f.phiguard = newNamespace(t)
	f.b.Locations, f.b.Namespace = stub, f.phiguard
	f.done = f.backedUp()
	return f
}

// judge reconciles at after past the backup's completion, and checks that
// judging the location wrote nothing.
func (f *locationFixture) judge(after time.Duration) Result {
	f.t.Helper()
	before := f.writes.N()
	r := f.reconcile(f.done.Add(after))
	if r.Err != nil {
		f.t.Fatalf("reconciling: %v", r.Err)
	}
	if n := f.writes.N() - before; n != 0 {
		f.t.Fatalf("%d writes: judging a location only reads", n)
	}
	return r
}

// freshWith is the message of the fixture's backup an hour after it
// completed, with verdict in place of notChecked.
func (f *locationFixture) freshWith(verdict string) string {
	return withoutNotChecked(f.t, f.fresh()) + "; " + verdict
}

// staleWith is the message of the fixture's backup once older than the rpo,
// with verdict in place of notChecked.
func (f *locationFixture) staleWith(verdict string) string {
	return "the last successful backup " + f.backup.Name + " completed at " + stamp(f.done) + ", longer ago than the rpo of 25h0m0s" +
		withoutNotChecked(f.t, storageMessage) + "; " + verdict
}

// withoutNotChecked is message without the notChecked it ends with.
func withoutNotChecked(t *testing.T, message string) string {
	t.Helper()
	if !strings.HasSuffix(message, notChecked) {
		t.Fatalf("%q does not end with %q", message, notChecked)
	}
	return strings.TrimSuffix(message, notChecked)
}

func TestBackupLocationImmutabilityNotCheckedWithoutLocationCredentials(t *testing.T) {
	for name, policy := range map[string]*phiguardv1alpha1.BackupPolicy{
		"no PHIPolicy": nil,
		"a PHIPolicy without locationCredentials": {MinimumTTL: &metav1.Duration{Duration: 2160 * time.Hour}},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			if policy != nil {
				withBackupPolicy(t, policy)
			}
			stub := &stubLocations{verdict: objectlock.Verdict{Immutable: true, Message: "never asked"}}
			f := newLocationFixture(t, stub, nil)
			// A Secret under the name the tests use elsewhere: not read.
			newReaderSecret(t, f.phiguard, map[string]string{"accessKeyID": "AKIAREADER", "secretAccessKey": "s3cr3t"})

			r := f.judge(time.Hour)
			g.Expect(r).To(Equal(Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonBackupFresh,
				Message: f.fresh(), RequeueAfter: 24 * time.Hour}))
			g.Expect(r.Message).To(HaveSuffix(notChecked))
			g.Expect(stub.calls).To(BeEmpty())
		})
	}
}

func TestBackupLocationMutableFailsAFreshBackup(t *testing.T) {
	g := NewWithT(t)
	withLocationCredentials(t)
	mutable := `bucket "phi-backups" at https://s3.eu-west-1.amazonaws.com has versioning off: a backup can be overwritten or deleted; ` +
		"enable versioning and Object Lock with a default retention in COMPLIANCE mode of at least 2190 days"
	stub := &stubLocations{verdict: objectlock.Verdict{Message: mutable}}
	f := newLocationFixture(t, stub, nil)
	newReaderSecret(t, f.phiguard, map[string]string{"accessKeyID": "AKIAREADER\n", "secretAccessKey": "s3cr3t\n"})

	r := f.judge(time.Hour)
	g.Expect(r).To(Equal(Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonStorageLocationMutable,
		Message: f.freshWith("BackupStorageLocation default is not immutable: " + mutable), RequeueAfter: 10 * time.Minute}))
	g.Expect(stub.calls).To(Equal([]locationCheck{{location: veleroNamespace + "/default",
		creds: objectlock.Credentials{AccessKeyID: "AKIAREADER", SecretAccessKey: "s3cr3t"}, ttl: 52560 * time.Hour}}),
		"the Secret's credentials, and the default ttl")
}

func TestBackupLocationImmutableHoldsAFreshBackup(t *testing.T) {
	g := NewWithT(t)
	withLocationCredentials(t)
	immutable := `bucket "phi-backups" at https://s3.eu-west-1.amazonaws.com keeps every backup version 1 year (8760h) in COMPLIANCE mode, ` +
		"at least the backup ttl of 8760h"
	stub := &stubLocations{verdict: objectlock.Verdict{Immutable: true, Message: immutable}}
	f := newLocationFixture(t, stub, func(b *phiguardv1alpha1.BackupSpec) { b.TTL = &metav1.Duration{Duration: 8760 * time.Hour} })
	newReaderSecret(t, f.phiguard, map[string]string{"accessKeyID": "ASIAREADER", "secretAccessKey": "s3cr3t", "sessionToken": "session"})

	r := f.judge(time.Hour)
	g.Expect(r).To(Equal(Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonBackupFresh,
		Message: f.freshWith("BackupStorageLocation default is immutable: " + immutable), RequeueAfter: 10 * time.Minute}),
		"judged again when the checker's answer may have changed, before the backup outlives the rpo")
	g.Expect(stub.calls).To(Equal([]locationCheck{{location: veleroNamespace + "/default",
		creds: objectlock.Credentials{AccessKeyID: "ASIAREADER", SecretAccessKey: "s3cr3t", SessionToken: "session"}, ttl: 8760 * time.Hour}}),
		"the workload's own ttl")
}

// Credentials that cannot be read, or a bucket that cannot be, leave
// immutability Unknown, and a fresh backup with it; phiguard looks again in
// a minute.
func TestBackupLocationImmutabilityUnknown(t *testing.T) {
	reader := map[string]string{"accessKeyID": "AKIAREADER", "secretAccessKey": "s3cr3t"}
	failure := `reading the versioning of bucket "phi-backups" at https://s3.eu-west-1.amazonaws.com (BackupStorageLocation velero/default; ` +
		"its credentials need s3:GetBucketVersioning and s3:GetBucketObjectLockConfiguration on the bucket): Access Denied."
	for _, tc := range []struct {
		name string
		// secret stores what the test has of the Secret.
		secret func(f *locationFixture)
		err    error
		// why is the message's reason, given phiguard's namespace.
		why   func(phiguard string) string
		calls int
	}{
		{"no Secret in phiguard's namespace",
			// Only phiguard's namespace is read: not the workload's.
			func(f *locationFixture) { newReaderSecret(f.t, f.ns, reader) }, nil,
			func(phiguard string) string {
				return "the Secret " + phiguard + "/" + readerSecret + " named by PHIPolicy backup.locationCredentials does not exist"
			}, 0},
		{"no secretAccessKey",
			func(f *locationFixture) {
				newReaderSecret(f.t, f.phiguard, map[string]string{"accessKeyID": "AKIAREADER"})
			}, nil,
			func(phiguard string) string {
				return "secret " + phiguard + "/" + readerSecret +
					` has no key "secretAccessKey" (or it is empty): put the S3 credentials in keys accessKeyID and secretAccessKey, and optionally sessionToken`
			}, 0},
		{"the check fails",
			func(f *locationFixture) { newReaderSecret(f.t, f.phiguard, reader) }, errors.New(failure),
			func(string) string { return failure }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			withLocationCredentials(t)
			stub := &stubLocations{verdict: objectlock.Verdict{Immutable: true, Message: "not an answer"}, err: tc.err}
			f := newLocationFixture(t, stub, nil)
			tc.secret(f)

			r := f.judge(time.Hour)
			g.Expect(r).To(Equal(Result{Status: metav1.ConditionUnknown, Reason: phiguardv1alpha1.ReasonStorageImmutabilityUnknown,
				Message:      f.freshWith("cannot check whether BackupStorageLocation default is immutable: " + tc.why(f.phiguard)),
				RequeueAfter: time.Minute}))
			g.Expect(stub.calls).To(HaveLen(tc.calls))
		})
	}
}

// The backups' age is judged first: a stale backup is reported stale
// whatever the location, as it is for the location's encryption.
func TestBackupLocationStaleBackupStaysStale(t *testing.T) {
	for _, verdict := range []objectlock.Verdict{
		{Immutable: true, Message: `bucket "phi-backups" keeps every backup version 6 years`},
		{Message: `bucket "phi-backups" has versioning off`},
	} {
		t.Run(verdict.Message, func(t *testing.T) {
			g := NewWithT(t)
			withLocationCredentials(t)
			stub := &stubLocations{verdict: verdict}
			f := newLocationFixture(t, stub, nil)
			newReaderSecret(t, f.phiguard, map[string]string{"accessKeyID": "AKIAREADER", "secretAccessKey": "s3cr3t"})

			judged := "BackupStorageLocation default is not immutable: " + verdict.Message
			if verdict.Immutable {
				judged = "BackupStorageLocation default is immutable: " + verdict.Message
			}
			r := f.judge(26 * time.Hour)
			g.Expect(r).To(Equal(Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonBackupStale,
				Message: f.staleWith(judged), RequeueAfter: 10 * time.Minute}))
			g.Expect(stub.calls).To(HaveLen(1))
		})
	}
}

func TestLocationVerdictOverlay(t *testing.T) {
	const freshness, location = "freshness", "location"
	fresh := Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonBackupFresh, Message: freshness, RequeueAfter: 24 * time.Hour}
	lapsing := Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonBackupFresh, Message: freshness, RequeueAfter: 30 * time.Second}
	awaiting := Result{Status: metav1.ConditionUnknown, Reason: phiguardv1alpha1.ReasonAwaitingFirstBackup, Message: freshness, RequeueAfter: 3 * time.Hour}
	stale := Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonBackupStale, Message: freshness}

	unchecked := locationVerdict{status: metav1.ConditionTrue, message: location}
	immutable := locationVerdict{status: metav1.ConditionTrue, message: location, requeue: immutabilityRecheck}
	unknown := locationVerdict{status: metav1.ConditionUnknown, reason: phiguardv1alpha1.ReasonStorageImmutabilityUnknown, message: location, requeue: time.Minute}
	mutable := locationVerdict{status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonStorageLocationMutable, message: location, requeue: immutabilityRecheck}

	for _, tc := range []struct {
		name    string
		result  Result
		verdict locationVerdict
		status  metav1.ConditionStatus
		reason  string
		requeue time.Duration
	}{
		{"fresh, not checked: looks again when the backup would lapse", fresh, unchecked, metav1.ConditionTrue, phiguardv1alpha1.ReasonBackupFresh, 24 * time.Hour},
		{"fresh, immutable: looks again when the checker's answer may change", fresh, immutable, metav1.ConditionTrue, phiguardv1alpha1.ReasonBackupFresh, 10 * time.Minute},
		{"fresh and about to lapse, immutable: the sooner", lapsing, immutable, metav1.ConditionTrue, phiguardv1alpha1.ReasonBackupFresh, 30 * time.Second},
		{"fresh, unknown", fresh, unknown, metav1.ConditionUnknown, phiguardv1alpha1.ReasonStorageImmutabilityUnknown, time.Minute},
		{"fresh and about to lapse, unknown: the sooner", lapsing, unknown, metav1.ConditionUnknown, phiguardv1alpha1.ReasonStorageImmutabilityUnknown, 30 * time.Second},
		{"fresh, mutable", fresh, mutable, metav1.ConditionFalse, phiguardv1alpha1.ReasonStorageLocationMutable, 10 * time.Minute},
		// The backups' age no longer changes the status: only the location's recheck is asked for.
		{"fresh and about to lapse, mutable", lapsing, mutable, metav1.ConditionFalse, phiguardv1alpha1.ReasonStorageLocationMutable, 10 * time.Minute},
		{"awaiting the first backup, not checked", awaiting, unchecked, metav1.ConditionUnknown, phiguardv1alpha1.ReasonAwaitingFirstBackup, 3 * time.Hour},
		{"awaiting the first backup, immutable", awaiting, immutable, metav1.ConditionUnknown, phiguardv1alpha1.ReasonAwaitingFirstBackup, 10 * time.Minute},
		{"awaiting the first backup, unknown: the first reason stays", awaiting, unknown, metav1.ConditionUnknown, phiguardv1alpha1.ReasonAwaitingFirstBackup, time.Minute},
		{"awaiting the first backup, mutable", awaiting, mutable, metav1.ConditionFalse, phiguardv1alpha1.ReasonStorageLocationMutable, 10 * time.Minute},
		{"stale, not checked", stale, unchecked, metav1.ConditionFalse, phiguardv1alpha1.ReasonBackupStale, 0},
		{"stale, immutable", stale, immutable, metav1.ConditionFalse, phiguardv1alpha1.ReasonBackupStale, 10 * time.Minute},
		{"stale, unknown", stale, unknown, metav1.ConditionFalse, phiguardv1alpha1.ReasonBackupStale, time.Minute},
		{"stale, mutable: the first failure wins", stale, mutable, metav1.ConditionFalse, phiguardv1alpha1.ReasonBackupStale, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(tc.verdict.overlay(tc.result)).To(Equal(Result{Status: tc.status, Reason: tc.reason,
				Message: freshness + "; " + location, RequeueAfter: tc.requeue}))
		})
	}
}
