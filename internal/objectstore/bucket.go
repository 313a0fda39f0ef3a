package objectstore

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
)

// Lock is a bucket's Object Lock default retention: every object version
// written to the bucket is kept for Days days in Mode.
//
// versitygw (v1.8.0) enforces a default retention differently from S3: it
// stamps no retention on the versions written, but refuses deletes while the
// bucket's default retention is in force, counted from when the default
// retention was set rather than from each version's creation. Removing the
// default retention, or waiting Days days after setting it, makes every
// version deletable. That is faithful enough for tests of what phiguard
// reads, a bucket's configuration, not for tests of retention periods.
type Lock struct {
	// Mode is "COMPLIANCE" (no one can delete a version before its time) or
	// "GOVERNANCE" (users with s3:BypassGovernanceRetention can).
	Mode string
	// Days is the default retention period.
	Days int
}

// CreateBucket makes a bucket. With lock nil it is a plain bucket, without
// versioning. With a lock, the bucket has Object Lock enabled, versioning
// Enabled and lock as its default retention. A bucket that exists already
// is kept and given the versioning and default retention asked for.
func (s *Server) CreateBucket(ctx context.Context, name string, lock *Lock) error {
	client, err := s.Client()
	if err != nil {
		return err
	}
	err = client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region, ObjectLocking: lock != nil})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("creating bucket %q: %w", name, err)
	}
	if lock == nil {
		return nil
	}
	mode := minio.RetentionMode(lock.Mode)
	if !mode.IsValid() {
		return fmt.Errorf("bucket %q: Object Lock mode %q is neither COMPLIANCE nor GOVERNANCE", name, lock.Mode)
	}
	if lock.Days <= 0 {
		return fmt.Errorf("bucket %q: Object Lock retention of %d days: give a positive number of days", name, lock.Days)
	}
	// Object Lock turns versioning on by itself; a bucket that existed
	// already may not have it yet.
	if err := client.EnableVersioning(ctx, name); err != nil {
		return fmt.Errorf("enabling versioning of bucket %q: %w", name, err)
	}
	days, unit := uint(lock.Days), minio.Days
	if err := client.SetObjectLockConfig(ctx, name, &mode, &days, &unit); err != nil {
		return fmt.Errorf("setting the Object Lock default retention of bucket %q: %w", name, err)
	}
	return nil
}
