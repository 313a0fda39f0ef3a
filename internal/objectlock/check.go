// Package objectlock tells whether the bucket behind a Velero
// BackupStorageLocation keeps backups immutable for as long as they are
// kept: versioning Enabled (an overwrite or a delete leaves the old version)
// and Object Lock with a default retention in COMPLIANCE mode at least as
// long as the backup's ttl (no one can delete a version before then). It
// reads the bucket's configuration with read-only credentials; it never
// writes to the bucket.
package objectlock

import (
	"context"
	"crypto/x509"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 permissions the check needs on the bucket, and nothing more.
const (
	// PermissionGetBucketVersioning lets the check read the bucket's versioning.
	PermissionGetBucketVersioning = "s3:GetBucketVersioning"
	// PermissionGetBucketObjectLockConfiguration lets the check read the
	// bucket's Object Lock configuration.
	PermissionGetBucketObjectLockConfiguration = "s3:GetBucketObjectLockConfiguration"
	// Permissions names both, as messages and the README do.
	Permissions = PermissionGetBucketVersioning + " and " + PermissionGetBucketObjectLockConfiguration
)

// checkTimeout bounds one check, so that an unreachable endpoint does not
// hold a reconcile.
const checkTimeout = 20 * time.Second

// year is how long a retention of one year is taken to last: 365 days, the
// shortest year, so that a retention in years is never judged longer than
// it is.
const year = 365 * 24 * time.Hour

// notFoundCode is S3's error code for a bucket without Object Lock.
const notFoundCode = "ObjectLockConfigurationNotFoundError"

// Verdict is the check's answer.
type Verdict struct {
	// Immutable is true when no backup in the bucket can be deleted or
	// overwritten before its ttl.
	Immutable bool
	// Message says why, and, when not Immutable, what to change.
	Message string
}

// Check reads the versioning and Object Lock configuration of the target's
// bucket and judges whether backups kept for ttl are immutable. A bucket
// that cannot be read (unreachable, access denied) is an error naming the
// bucket, the endpoint and the permissions needed.
func Check(ctx context.Context, t Target, c Credentials, ttl time.Duration) (Verdict, error) {
	client, closeIdle, err := newClient(t, c)
	if err != nil {
		return Verdict{}, err
	}
	defer closeIdle()
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()

	versioning, err := client.GetBucketVersioning(ctx, t.Bucket)
	if err != nil {
		return Verdict{}, t.readError("versioning", err)
	}
	if !versioning.Enabled() {
		state := "off"
		if versioning.Suspended() {
			state = "suspended"
		}
		return Verdict{Message: fmt.Sprintf("%s has versioning %s: a backup can be overwritten or deleted; enable versioning and Object Lock with a default retention in COMPLIANCE mode of at least %s",
			t.bucket(), state, days(ttl))}, nil
	}

	enabled, mode, validity, unit, err := client.GetObjectLockConfig(ctx, t.Bucket)
	if minio.ToErrorResponse(err).Code == notFoundCode {
		enabled, err = "", nil
	}
	if err != nil {
		return Verdict{}, t.readError("Object Lock configuration", err)
	}
	return judge(t, ttl, enabled, mode, validity, unit), nil
}

// judge is the verdict on a versioned bucket's Object Lock configuration.
func judge(t Target, ttl time.Duration, enabled string, mode *minio.RetentionMode, validity *uint, unit *minio.ValidityUnit) Verdict {
	if enabled != "Enabled" {
		return Verdict{Message: fmt.Sprintf("%s has versioning but no Object Lock: any version of a backup can be deleted by anyone allowed s3:DeleteObjectVersion; enable Object Lock with a default retention in COMPLIANCE mode of at least %s",
			t.bucket(), days(ttl))}
	}
	if mode == nil || *mode == "" || validity == nil || *validity == 0 || unit == nil {
		return Verdict{Message: fmt.Sprintf("%s has Object Lock but no default retention: backups are written without a retention period and can be deleted; set a default retention in COMPLIANCE mode of at least %s",
			t.bucket(), days(ttl))}
	}
	period := retentionPeriod(*validity, *unit)
	retention := count(*validity, strings.TrimSuffix(strings.ToLower(unit.String()), "s"))
	if *mode != minio.Compliance {
		return Verdict{Message: fmt.Sprintf("%s keeps backups %s in %s mode, which can be bypassed by anyone with s3:BypassGovernanceRetention; use COMPLIANCE mode with a retention of at least %s",
			t.bucket(), retention, *mode, days(ttl))}
	}
	if period < ttl {
		return Verdict{Message: fmt.Sprintf("%s keeps backups %s (%s) in COMPLIANCE mode, less than the backup ttl of %s: a backup can be deleted before it expires; set the default retention to at least %s",
			t.bucket(), retention, hours(period), hours(ttl), days(ttl))}
	}
	return Verdict{Immutable: true, Message: fmt.Sprintf("%s keeps every backup version %s (%s) in COMPLIANCE mode, at least the backup ttl of %s",
		t.bucket(), retention, hours(period), hours(ttl))}
}

// maxRetentionDays is the longest retention, in days, that a Duration holds
// (about 292 years).
const maxRetentionDays = uint(math.MaxInt64 / int64(24*time.Hour))

// retentionPeriod is a default retention of validity units as a Duration,
// a year counted as 365 days (year). A retention longer than the longest
// Duration is taken to be that long, which is longer than any backup ttl.
func retentionPeriod(validity uint, unit minio.ValidityUnit) time.Duration {
	days := validity
	if unit == minio.Years {
		// Bounded first, so that the product cannot wrap around.
		days = min(validity, maxRetentionDays) * uint(year/(24*time.Hour))
	}
	if days > maxRetentionDays {
		return math.MaxInt64
	}
	return time.Duration(days) * 24 * time.Hour
}

// newClient returns an S3 client for the target, signed with c, and a func
// that closes its idle connections.
func newClient(t Target, c Credentials) (*minio.Client, func(), error) {
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("location %s: endpoint %q: %w", t.Location, t.Endpoint, err)
	}
	secure := u.Scheme == "https"
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, nil, fmt.Errorf("location %s: an HTTP transport: %w", t.Location, err)
	}
	if secure {
		if len(t.CACert) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM(t.CACert)
			transport.TLSClientConfig.RootCAs = pool
		}
		// The location asks for it (insecureSkipTLSVerify), as Velero honours it.
		transport.TLSClientConfig.InsecureSkipVerify = t.InsecureSkipTLSVerify
	}
	// As Velero's AWS plugin: path style when asked, otherwise the bucket
	// as a host name (which minio-go picks by itself for AWS).
	lookup := minio.BucketLookupAuto
	switch {
	case t.PathStyle:
		lookup = minio.BucketLookupPath
	case !strings.HasSuffix(u.Hostname(), ".amazonaws.com"):
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		Secure:       secure,
		Transport:    transport,
		Region:       t.Region,
		BucketLookup: lookup,
		// The Checker tries again after a minute; retrying here would only
		// hold the reconcile.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("location %s: an S3 client for %s: %w", t.Location, t.Endpoint, err)
	}
	return client, transport.CloseIdleConnections, nil
}

// bucket names the bucket and its endpoint in messages.
func (t Target) bucket() string {
	return fmt.Sprintf("bucket %q at %s", t.Bucket, t.Endpoint)
}

// readError wraps an error reading the bucket's configuration.
func (t Target) readError(what string, err error) error {
	return fmt.Errorf("reading the %s of %s (BackupStorageLocation %s; its credentials need %s on the bucket): %w",
		what, t.bucket(), t.Location, Permissions, err)
}

// days is a duration in whole days, rounded up, for what to set: "2190 days".
func days(d time.Duration) string {
	return count(uint((max(d, 0)+24*time.Hour-1)/(24*time.Hour)), "day")
}

// count is "1 day", "2 days".
func count(n uint, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// hours is a duration as a backup ttl is written: "52560h", "36h30m".
func hours(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
