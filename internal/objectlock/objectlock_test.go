package objectlock

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	certutil "k8s.io/client-go/util/cert"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/phiguard/phiguard/internal/objectstore"
	"github.com/phiguard/phiguard/internal/objectstore/objectstoretest"
)

// Covers the immutability check of a backup bucket: against a real
// S3-compatible store (versitygw), which buckets keep backups immutable for
// their ttl and the message for each that does not; the errors of a check
// that cannot read the bucket; how a BackupStorageLocation and a Secret are
// read; TLS settings; and the Checker's reuse of verdicts.

// location is a BackupStorageLocation of the store's bucket, as Velero is
// configured for an S3-compatible store.
func location(s *objectstore.Server, bucket string) *velerov1.BackupStorageLocation {
	return &velerov1.BackupStorageLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: bucket, UID: types.UID("uid-" + bucket), Generation: 1},
		Spec: velerov1.BackupStorageLocationSpec{
			Provider:    "aws",
			StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: bucket, Prefix: "cluster"}},
			Config:      map[string]string{"region": s.Region, "s3Url": s.Endpoint, "s3ForcePathStyle": "true"},
		},
	}
}

func credentialsOf(s *objectstore.Server) Credentials {
	return Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}
}

func target(g Gomega, s *objectstore.Server, bucket string) Target {
	t, err := TargetOf(location(s, bucket))
	g.Expect(err).NotTo(HaveOccurred())
	return t
}

const month = 30 * 24 * time.Hour

func TestCheckAgainstObjectStore(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	s := objectstoretest.Start(t)
	c, err := s.Client()
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(s.CreateBucket(ctx, "compliance-30d", &objectstore.Lock{Mode: "COMPLIANCE", Days: 30})).To(Succeed())
	g.Expect(s.CreateBucket(ctx, "compliance-1d", &objectstore.Lock{Mode: "COMPLIANCE", Days: 1})).To(Succeed())
	g.Expect(s.CreateBucket(ctx, "governance-30d", &objectstore.Lock{Mode: "GOVERNANCE", Days: 30})).To(Succeed())
	g.Expect(s.CreateBucket(ctx, "compliance-1y", &objectstore.Lock{Mode: "COMPLIANCE", Days: 1})).To(Succeed())
	mode, one, years := minio.Compliance, uint(1), minio.Years
	g.Expect(c.SetObjectLockConfig(ctx, "compliance-1y", &mode, &one, &years)).To(Succeed())
	g.Expect(c.MakeBucket(ctx, "lock-no-retention", minio.MakeBucketOptions{ObjectLocking: true})).To(Succeed())
	g.Expect(s.CreateBucket(ctx, "versioned", nil)).To(Succeed())
	g.Expect(c.EnableVersioning(ctx, "versioned")).To(Succeed())
	g.Expect(s.CreateBucket(ctx, "suspended", nil)).To(Succeed())
	g.Expect(c.EnableVersioning(ctx, "suspended")).To(Succeed())
	g.Expect(c.SuspendVersioning(ctx, "suspended")).To(Succeed())
	g.Expect(s.CreateBucket(ctx, "plain", nil)).To(Succeed())

	e := s.Endpoint
	for _, tc := range []struct {
		bucket    string
		ttl       time.Duration
		immutable bool
		message   string
	}{
		{"compliance-30d", month, true,
			`bucket "compliance-30d" at ` + e + ` keeps every backup version 30 days (720h) in COMPLIANCE mode, at least the backup ttl of 720h`},
		{"compliance-30d", month + time.Hour, false,
			`bucket "compliance-30d" at ` + e + ` keeps backups 30 days (720h) in COMPLIANCE mode, less than the backup ttl of 721h: a backup can be deleted before it expires; set the default retention to at least 31 days`},
		{"compliance-1d", month, false,
			`bucket "compliance-1d" at ` + e + ` keeps backups 1 day (24h) in COMPLIANCE mode, less than the backup ttl of 720h: a backup can be deleted before it expires; set the default retention to at least 30 days`},
		{"compliance-1y", 365 * 24 * time.Hour, true,
			`bucket "compliance-1y" at ` + e + ` keeps every backup version 1 year (8760h) in COMPLIANCE mode, at least the backup ttl of 8760h`},
		{"compliance-1y", 366 * 24 * time.Hour, false,
			`bucket "compliance-1y" at ` + e + ` keeps backups 1 year (8760h) in COMPLIANCE mode, less than the backup ttl of 8784h: a backup can be deleted before it expires; set the default retention to at least 366 days`},
		{"governance-30d", 24 * time.Hour, false,
			`bucket "governance-30d" at ` + e + ` keeps backups 30 days in GOVERNANCE mode, which can be bypassed by anyone with s3:BypassGovernanceRetention; use COMPLIANCE mode with a retention of at least 1 day`},
		{"lock-no-retention", month, false,
			`bucket "lock-no-retention" at ` + e + ` has Object Lock but no default retention: backups are written without a retention period and can be deleted; set a default retention in COMPLIANCE mode of at least 30 days`},
		{"versioned", month, false,
			`bucket "versioned" at ` + e + ` has versioning but no Object Lock: any version of a backup can be deleted by anyone allowed s3:DeleteObjectVersion; enable Object Lock with a default retention in COMPLIANCE mode of at least 30 days`},
		{"suspended", month, false,
			`bucket "suspended" at ` + e + ` has versioning suspended: a backup can be overwritten or deleted; enable versioning and Object Lock with a default retention in COMPLIANCE mode of at least 30 days`},
		{"plain", 36*time.Hour + 30*time.Minute, false,
			`bucket "plain" at ` + e + ` has versioning off: a backup can be overwritten or deleted; enable versioning and Object Lock with a default retention in COMPLIANCE mode of at least 2 days`},
	} {
		t.Run(fmt.Sprintf("%s for %s", tc.bucket, tc.ttl), func(t *testing.T) {
			g := NewWithT(t)
			v, err := Check(ctx, target(g, s, tc.bucket), credentialsOf(s), tc.ttl)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(v).To(Equal(Verdict{Immutable: tc.immutable, Message: tc.message}))
		})
	}
}

func TestCheckErrors(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	s := objectstoretest.Start(t)
	g.Expect(s.CreateBucket(ctx, "backups", &objectstore.Lock{Mode: "COMPLIANCE", Days: 30})).To(Succeed())
	prefix := `reading the versioning of bucket "backups" at ` + s.Endpoint +
		` (BackupStorageLocation velero/backups; its credentials need s3:GetBucketVersioning and s3:GetBucketObjectLockConfiguration on the bucket): `

	wrong := credentialsOf(s)
	wrong.SecretAccessKey += "x"
	_, err := Check(ctx, target(g, s, "backups"), wrong, month)
	g.Expect(err).To(MatchError(HavePrefix(prefix)))
	var s3err minio.ErrorResponse
	g.Expect(errors.As(err, &s3err)).To(BeTrue(), "the S3 error is wrapped: %v", err)
	g.Expect(s3err.Code).To(Equal("SignatureDoesNotMatch"))

	unknown := credentialsOf(s)
	unknown.AccessKeyID = "NOSUCHKEY"
	_, err = Check(ctx, target(g, s, "backups"), unknown, month)
	g.Expect(err).To(MatchError(HavePrefix(prefix)))
	g.Expect(errors.As(err, &s3err)).To(BeTrue(), "the S3 error is wrapped: %v", err)
	// versitygw's answer; S3's is InvalidAccessKeyId.
	g.Expect(s3err.Code).To(Equal("XAdminUserNotFound"))

	g.Expect(s.Stop()).To(Succeed())
	_, err = Check(ctx, target(g, s, "backups"), credentialsOf(s), month)
	g.Expect(err).To(MatchError(HavePrefix(prefix)))
	g.Expect(err).To(MatchError(ContainSubstring("connection refused")))
}

func TestCheckOverTLS(t *testing.T) {
	// Enough of S3 to answer GetBucketVersioning: a bucket that never had
	// versioning.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.URL.Query()["versioning"]; !ok || r.URL.Path != "/backups/" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></VersioningConfiguration>`))
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	creds := Credentials{AccessKeyID: "reader", SecretAccessKey: "secret"}
	bsl := func(config map[string]string, caCert []byte) *velerov1.BackupStorageLocation {
		config["s3Url"], config["s3ForcePathStyle"] = srv.URL, "true"
		return &velerov1.BackupStorageLocation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: "default"},
			Spec: velerov1.BackupStorageLocationSpec{Provider: "aws", Config: config,
				StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: "backups", CACert: caCert}}},
		}
	}
	off := Verdict{Message: `bucket "backups" at ` + srv.URL + ` has versioning off: a backup can be overwritten or deleted; enable versioning and Object Lock with a default retention in COMPLIANCE mode of at least 1 day`}

	for _, tc := range []struct {
		name   string
		bsl    *velerov1.BackupStorageLocation
		errSub string
	}{
		{"unknown authority", bsl(map[string]string{}, nil), "certificate signed by unknown authority"},
		{"caCert", bsl(map[string]string{}, ca), ""},
		{"insecureSkipTLSVerify", bsl(map[string]string{"insecureSkipTLSVerify": "true"}, nil), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			target, err := TargetOf(tc.bsl)
			g.Expect(err).NotTo(HaveOccurred())
			v, err := Check(t.Context(), target, creds, time.Hour)
			if tc.errSub != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.errSub)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(v).To(Equal(off))
		})
	}
}

func TestTargetOf(t *testing.T) {
	certPEM, _, err := certutil.GenerateSelfSignedCertKey("s3.example.com", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bsl := func(provider string, config map[string]string, storage *velerov1.ObjectStorageLocation) *velerov1.BackupStorageLocation {
		return &velerov1.BackupStorageLocation{
			ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: "default"},
			Spec: velerov1.BackupStorageLocationSpec{Provider: provider, Config: config,
				StorageType: velerov1.StorageType{ObjectStorage: storage}},
		}
	}
	bucket := &velerov1.ObjectStorageLocation{Bucket: "backups", Prefix: "prod"}
	for _, tc := range []struct {
		name string
		bsl  *velerov1.BackupStorageLocation
		want Target
		err  string
	}{
		{"AWS in a region", bsl("aws", map[string]string{"region": "eu-west-1"}, bucket),
			Target{Location: "velero/default", Bucket: "backups", Prefix: "prod", Endpoint: "https://s3.eu-west-1.amazonaws.com", Region: "eu-west-1"}, ""},
		{"AWS without a region", bsl("velero.io/aws", nil, bucket),
			Target{Location: "velero/default", Bucket: "backups", Prefix: "prod", Endpoint: "https://s3.us-east-1.amazonaws.com", Region: "us-east-1"}, ""},
		{"S3-compatible over http", bsl("aws", map[string]string{"s3Url": "http://minio.velero.svc:9000/", "s3ForcePathStyle": "true", "region": "minio"}, bucket),
			Target{Location: "velero/default", Bucket: "backups", Prefix: "prod", Endpoint: "http://minio.velero.svc:9000", Region: "minio", PathStyle: true}, ""},
		{"S3-compatible over https with a CA", bsl("aws", map[string]string{"s3Url": "https://s3.example.com", "insecureSkipTLSVerify": "true", "s3ForcePathStyle": "false"},
			&velerov1.ObjectStorageLocation{Bucket: "backups", CACert: certPEM}),
			Target{Location: "velero/default", Bucket: "backups", Endpoint: "https://s3.example.com", Region: "us-east-1", InsecureSkipTLSVerify: true, CACert: certPEM}, ""},

		{"another provider", bsl("gcp", nil, bucket), Target{},
			`BackupStorageLocation velero/default has provider "gcp": only the AWS/S3-compatible provider (aws) can be checked for immutability`},
		{"no object storage", bsl("aws", nil, nil), Target{},
			`BackupStorageLocation velero/default names no bucket (spec.objectStorage.bucket)`},
		{"not an http URL", bsl("aws", map[string]string{"s3Url": "ftp://s3.example.com"}, bucket), Target{},
			`BackupStorageLocation velero/default: config s3Url "ftp://s3.example.com" is not an http:// or https:// URL`},
		{"a URL with a path", bsl("aws", map[string]string{"s3Url": "https://example.com/s3"}, bucket), Target{},
			`BackupStorageLocation velero/default: config s3Url "https://example.com/s3" has a path, which the immutability check cannot address: give the endpoint without one`},
		{"not a bool", bsl("aws", map[string]string{"s3ForcePathStyle": "yes"}, bucket), Target{},
			`BackupStorageLocation velero/default: config s3ForcePathStyle "yes" is not true or false`},
		{"not PEM", bsl("aws", nil, &velerov1.ObjectStorageLocation{Bucket: "backups", CACert: []byte("not a certificate")}), Target{},
			`BackupStorageLocation velero/default: spec.objectStorage.caCert holds no PEM certificate`},
		{"caCertRef", bsl("aws", nil, &velerov1.ObjectStorageLocation{Bucket: "backups",
			CACertRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s3-ca"}, Key: "ca.crt"}}), Target{},
			`BackupStorageLocation velero/default takes its CA bundle from Secret key s3-ca/ca.crt (spec.objectStorage.caCertRef), which the immutability check does not read: give the bundle in spec.objectStorage.caCert`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := TargetOf(tc.bsl)
			if tc.err != "" {
				g.Expect(err).To(MatchError(tc.err))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

func TestCredentialsFromSecret(t *testing.T) {
	secret := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "phiguard-system", Name: "backup-reader"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		secret *corev1.Secret
		want   Credentials
		err    string
	}{
		{"keys", secret(map[string]string{"accessKeyID": "AKIA", "secretAccessKey": "s3cr3t"}),
			Credentials{AccessKeyID: "AKIA", SecretAccessKey: "s3cr3t"}, ""},
		{"with a session token and newlines", secret(map[string]string{"accessKeyID": "AKIA\n", "secretAccessKey": "s3cr3t\n", "sessionToken": "token\n"}),
			Credentials{AccessKeyID: "AKIA", SecretAccessKey: "s3cr3t", SessionToken: "token"}, ""},
		{"no access key", secret(map[string]string{"secretAccessKey": "s3cr3t"}), Credentials{},
			`secret phiguard-system/backup-reader has no key "accessKeyID" (or it is empty): put the S3 credentials in keys accessKeyID and secretAccessKey, and optionally sessionToken`},
		{"empty secret key", secret(map[string]string{"accessKeyID": "AKIA", "secretAccessKey": "\n"}), Credentials{},
			`secret phiguard-system/backup-reader has no key "secretAccessKey" (or it is empty): put the S3 credentials in keys accessKeyID and secretAccessKey, and optionally sessionToken`},
		{"no Secret", nil, Credentials{}, "reading S3 credentials: no Secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := CredentialsFromSecret(tc.secret)
			if tc.err != "" {
				g.Expect(err).To(MatchError(tc.err))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

func TestCredentialsHideSecrets(t *testing.T) {
	g := NewWithT(t)
	c := Credentials{AccessKeyID: "AKIA", SecretAccessKey: "s3cr3t", SessionToken: "token"}
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		out := fmt.Sprintf(format, c)
		g.Expect(out).To(ContainSubstring("AKIA"), format)
		g.Expect(out).NotTo(Or(ContainSubstring("s3cr3t"), ContainSubstring("token")), format)
	}
}

// The Checker against the store: a verdict is reused while the store is
// stopped, and checked again (failing) once the Checker's ttl has passed.
func TestCheckerReusesVerdictUntilItExpires(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	s := objectstoretest.Start(t)
	g.Expect(s.CreateBucket(ctx, "backups", &objectstore.Lock{Mode: "COMPLIANCE", Days: 30})).To(Succeed())
	clk := testingclock.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	checker := NewChecker(clk, 10*time.Minute)
	bsl := location(s, "backups")

	first, err := checker.Check(ctx, bsl, credentialsOf(s), month)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first.Immutable).To(BeTrue(), first.Message)

	g.Expect(s.Stop()).To(Succeed())
	clk.Step(10*time.Minute - time.Second)
	again, err := checker.Check(ctx, bsl, credentialsOf(s), month)
	g.Expect(err).NotTo(HaveOccurred(), "the verdict is reused: the store is not asked")
	g.Expect(again).To(Equal(first))

	clk.Step(time.Second)
	_, err = checker.Check(ctx, bsl, credentialsOf(s), month)
	g.Expect(err).To(MatchError(ContainSubstring("connection refused")), "after 10 minutes the store is asked again")
}

// The Checker's keys and times, counting calls of an injected check.
func TestCheckerKeysAndTimes(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	clk := testingclock.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	checker := NewChecker(clk, 10*time.Minute)
	calls, fail := 0, false
	checker.check = func(_ context.Context, target Target, _ Credentials, ttl time.Duration) (Verdict, error) {
		calls++
		if fail {
			return Verdict{}, fmt.Errorf("call %d failed", calls)
		}
		return Verdict{Immutable: true, Message: fmt.Sprintf("call %d: %s for %s", calls, target.Bucket, ttl)}, nil
	}
	bsl := &velerov1.BackupStorageLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: "default", UID: "uid-1", Generation: 1},
		Spec: velerov1.BackupStorageLocationSpec{Provider: "aws",
			StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: "backups"}}},
	}
	creds := Credentials{AccessKeyID: "reader", SecretAccessKey: "one"}
	check := func(bsl *velerov1.BackupStorageLocation, creds Credentials, ttl time.Duration) (string, error) {
		v, err := checker.Check(ctx, bsl, creds, ttl)
		return v.Message, err
	}

	g.Expect(check(bsl, creds, month)).To(Equal("call 1: backups for 720h0m0s"))
	g.Expect(check(bsl, creds, month)).To(Equal("call 1: backups for 720h0m0s"))
	clk.Step(10*time.Minute - time.Nanosecond)
	g.Expect(check(bsl, creds, month)).To(Equal("call 1: backups for 720h0m0s"))
	clk.Step(time.Nanosecond)
	g.Expect(check(bsl, creds, month)).To(Equal("call 2: backups for 720h0m0s"), "reused for 10 minutes")

	validated := bsl.DeepCopy()
	validated.Generation, validated.Status.Phase = 2, velerov1.BackupStorageLocationPhaseAvailable
	g.Expect(check(validated, creds, month)).To(Equal("call 2: backups for 720h0m0s"), "Velero's validation (status, and a new generation) changes no bucket")
	changed := bsl.DeepCopy()
	changed.Spec.Config = map[string]string{"s3Url": "https://s3.example:9000"}
	g.Expect(check(changed, creds, month)).To(Equal("call 3: backups for 720h0m0s"), "another endpoint")
	other := bsl.DeepCopy()
	other.Spec.ObjectStorage.Bucket = "archive"
	g.Expect(check(other, creds, month)).To(Equal("call 4: archive for 720h0m0s"), "another bucket")
	rotated := Credentials{AccessKeyID: "reader", SecretAccessKey: "two"}
	g.Expect(check(bsl, rotated, month)).To(Equal("call 5: backups for 720h0m0s"), "other credentials")
	g.Expect(check(bsl, creds, 2*month)).To(Equal("call 6: backups for 1440h0m0s"), "another ttl")
	g.Expect(check(bsl, creds, month)).To(Equal("call 2: backups for 720h0m0s"), "the first key's verdict is still kept")

	fail = true
	g.Expect(check(bsl, Credentials{AccessKeyID: "new"}, month)).Error().To(MatchError("call 7 failed"))
	clk.Step(time.Minute - time.Nanosecond)
	g.Expect(check(bsl, Credentials{AccessKeyID: "new"}, month)).Error().To(MatchError("call 7 failed"), "an error is reused for a minute")
	clk.Step(time.Nanosecond)
	g.Expect(check(bsl, Credentials{AccessKeyID: "new"}, month)).Error().To(MatchError("call 8 failed"), "and no longer")

	gcs := bsl.DeepCopy()
	gcs.Spec.Provider = "gcp"
	g.Expect(check(gcs, creds, month)).Error().To(MatchError(ContainSubstring("only the AWS/S3-compatible provider")))
	g.Expect(calls).To(Equal(8), "a location that cannot be checked is not")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := checker.Check(cancelled, bsl, Credentials{AccessKeyID: "cancelled"}, month)
	g.Expect(err).To(MatchError("call 9 failed"))
	_, err = checker.Check(ctx, bsl, Credentials{AccessKeyID: "cancelled"}, month)
	g.Expect(err).To(MatchError("call 10 failed"), "the answer of a cancelled check is not kept")
}
