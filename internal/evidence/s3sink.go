package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/phiguard/phiguard/internal/objectlock"
)

// defaultS3Endpoint is where an S3Sink writes when S3Options names no
// endpoint: AWS S3, which finds the bucket's region by itself.
const defaultS3Endpoint = "https://s3.amazonaws.com"

// S3Options say where an S3Sink writes and how it signs its requests.
type S3Options struct {
	// Endpoint is the store's host[:port] (reached with TLS) or its URL:
	// http:// is plain HTTP, https:// is TLS. Empty is AWS S3
	// (s3.amazonaws.com).
	Endpoint string
	// Bucket is the bucket segments are written to (required).
	Bucket string
	// Prefix is the path inside the bucket under which the sink's names
	// live, or empty. Surrounding slashes are dropped.
	Prefix string
	// Region is the bucket's region, or empty to ask the store.
	Region string
	// AccessKeyID and SecretAccessKey sign the requests (required).
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is the session token of temporary credentials, or empty.
	SessionToken string
	// PathStyle addresses the bucket as a path of the endpoint
	// (http://host/bucket/key), as MinIO, Ceph RGW and versitygw usually
	// need; otherwise the bucket is a host name (http://bucket.host/key), as
	// on AWS.
	PathStyle bool
	// Retention, when > 0, is set on every object written: COMPLIANCE mode
	// until now+Retention, in addition to the bucket's default retention.
	Retention time.Duration
}

// S3Sink stores segments in an S3-compatible bucket: AWS S3, Ceph RGW,
// MinIO, versitygw or GCS's interoperability API. In production the bucket
// has versioning and Object Lock with a default retention in COMPLIANCE
// mode (Check says whether it has), so that no segment can be deleted and
// an overwrite only adds a version, which List reports and Get ignores.
// It is safe for concurrent use.
type S3Sink struct {
	client   *minio.Client
	opts     S3Options
	endpoint *url.URL // scheme and host only
}

// NewS3Sink returns a sink writing to the bucket o names. It checks the
// options only; it makes no request.
func NewS3Sink(o S3Options) (*S3Sink, error) {
	if o.Bucket == "" {
		return nil, errors.New("evidence bucket: no bucket named")
	}
	if o.AccessKeyID == "" || o.SecretAccessKey == "" {
		return nil, fmt.Errorf("evidence bucket %q: an access key ID and a secret access key are both required", o.Bucket)
	}
	endpoint, err := parseS3Endpoint(o.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("evidence bucket %q: %w", o.Bucket, err)
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	client, err := minio.New(endpoint.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKeyID, o.SecretAccessKey, o.SessionToken),
		Secure:       endpoint.Scheme == "https",
		Region:       o.Region,
		BucketLookup: bucketLookup(endpoint, o.PathStyle),
	})
	if err != nil {
		return nil, fmt.Errorf("evidence bucket %q: an S3 client for %s: %w", o.Bucket, endpoint, err)
	}
	return &S3Sink{client: client, opts: o, endpoint: endpoint}, nil
}

// parseS3Endpoint returns the endpoint's scheme and host: a URL without a
// path, a bare host[:port] (https), or AWS S3 when empty.
func parseS3Endpoint(endpoint string) (*url.URL, error) {
	switch {
	case endpoint == "":
		endpoint = defaultS3Endpoint
	case !strings.Contains(endpoint, "://"):
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q is neither host[:port] nor an http:// or https:// URL", endpoint)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("endpoint %q has a path, query or user: give the store's URL without one", endpoint)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// bucketLookup addresses the bucket as objectlock.Check does, so that the
// sink and its check reach the same bucket: as a path when asked, otherwise
// as a host name (which minio-go picks by itself for AWS).
func bucketLookup(endpoint *url.URL, pathStyle bool) minio.BucketLookupType {
	switch {
	case pathStyle:
		return minio.BucketLookupPath
	case strings.HasSuffix(endpoint.Hostname(), ".amazonaws.com"):
		return minio.BucketLookupAuto
	default:
		return minio.BucketLookupDNS
	}
}

// Location implements Sink: "s3://bucket/prefix at https://host".
func (s *S3Sink) Location() string {
	return fmt.Sprintf("s3://%s at %s", strings.TrimSuffix(s.opts.Bucket+"/"+s.opts.Prefix, "/"), s.endpoint)
}

// base is what the sink's keys start with: "Prefix/", or nothing.
func (s *S3Sink) base() string {
	if s.opts.Prefix == "" {
		return ""
	}
	return s.opts.Prefix + "/"
}

// key returns the object key of a sink name (or of the start of one):
// Prefix/name, with one slash between.
func (s *S3Sink) key(name string) string {
	return s.base() + strings.TrimLeft(name, "/")
}

// Put implements Sink. It refuses a name that has any version, as List
// would list it, even one whose latest version is a delete marker. That is
// looked up in the bucket's version listing rather than with a HEAD request,
// which does not find an object behind a delete marker and, on some stores
// (versitygw), does not say that one is there. Where the store supports
// conditional writes (If-None-Match: *), a write racing another for the
// same name fails with ErrExists too; where it rejects them as not
// implemented, Put relies on the look-up alone. The request carries
// Content-MD5, so the store refuses a body damaged in transit, and, with
// Retention, a COMPLIANCE retention of its own.
func (s *S3Sink) Put(ctx context.Context, name string, data []byte) error {
	key := s.key(name)
	versions, err := s.versionsOf(ctx, key)
	switch {
	case err != nil:
		return fmt.Errorf("writing evidence %s to %s: looking for an existing object: %w", name, s.Location(), err)
	case slices.ContainsFunc(versions, func(v minio.ObjectInfo) bool { return v.IsLatest && v.IsDeleteMarker }):
		return fmt.Errorf("%s (its latest version is a delete marker): %w", name, ErrExists)
	case len(versions) > 0:
		return fmt.Errorf("%s: %w", name, ErrExists)
	}

	opts := minio.PutObjectOptions{SendContentMd5: true, DisableMultipart: true}
	if s.opts.Retention > 0 {
		opts.Mode = minio.Compliance
		opts.RetainUntilDate = time.Now().Add(s.opts.Retention)
	}
	conditional := opts
	conditional.SetMatchETagExcept("*")
	_, err = s.client.PutObject(ctx, s.opts.Bucket, key, bytes.NewReader(data), int64(len(data)), conditional)
	if resp := minio.ToErrorResponse(err); resp.StatusCode == http.StatusNotImplemented || resp.Code == "NotImplemented" {
		_, err = s.client.PutObject(ctx, s.opts.Bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	}
	if minio.ToErrorResponse(err).StatusCode == http.StatusPreconditionFailed {
		return fmt.Errorf("%s (written meanwhile): %w", name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("writing evidence %s to %s: %w", name, s.Location(), err)
	}
	return nil
}

// versions lists every version of the objects whose key starts with
// keyPrefix, delete markers included, in the store's order: by key, each
// key's versions newest first.
func (s *S3Sink) versions(ctx context.Context, keyPrefix string) ([]minio.ObjectInfo, error) {
	var all []minio.ObjectInfo
	for obj := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: keyPrefix, Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		all = append(all, obj)
	}
	return all, nil
}

// versionsOf lists the versions of key, delete markers included, newest
// first.
func (s *S3Sink) versionsOf(ctx context.Context, key string) ([]minio.ObjectInfo, error) {
	all, err := s.versions(ctx, key)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(obj minio.ObjectInfo) bool { return obj.Key != key }), nil
}

// List implements Sink. Versions counts every version of a name, delete
// markers included: a name someone overwrote or tried to delete has more
// than one. A name whose latest version is a delete marker is listed all
// the same.
func (s *S3Sink) List(ctx context.Context, prefix string) ([]Entry, error) {
	all, err := s.versions(ctx, s.key(prefix))
	if err != nil {
		return nil, fmt.Errorf("listing evidence under %s: %w", s.Location(), err)
	}
	counts := map[string]int{}
	for _, obj := range all {
		counts[strings.TrimPrefix(obj.Key, s.base())]++
	}
	entries := make([]Entry, 0, len(counts))
	for name, n := range counts {
		entries = append(entries, Entry{Name: name, Versions: n})
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// Get implements Sink: it returns the oldest version of name that is not a
// delete marker, the one Put wrote, whatever was written over it since.
func (s *S3Sink) Get(ctx context.Context, name string) ([]byte, error) {
	key := s.key(name)
	versions, err := s.versionsOf(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading evidence %s from %s: listing its versions: %w", name, s.Location(), err)
	}
	oldest, found := minio.ObjectInfo{}, false
	for _, obj := range versions {
		// S3 lists a key's versions newest first, so of versions written
		// in the same second (LastModified's precision on some stores) the
		// last listed is the oldest.
		if obj.IsDeleteMarker {
			continue
		}
		if !found || !obj.LastModified.After(oldest.LastModified) {
			oldest, found = obj, true
		}
	}
	if !found {
		return nil, fmt.Errorf("reading evidence %s from %s: no such object", name, s.Location())
	}
	obj, err := s.client.GetObject(ctx, s.opts.Bucket, key, minio.GetObjectOptions{VersionID: oldest.VersionID})
	if err != nil {
		return nil, fmt.Errorf("reading evidence %s from %s: %w", name, s.Location(), err)
	}
	defer func() { _ = obj.Close() }()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, fmt.Errorf("reading evidence %s (version %s) from %s: %w", name, oldest.VersionID, s.Location(), err)
	}
	return data, nil
}

// Check reads the bucket's versioning and Object Lock configuration, as
// objectlock.Check does for backups, and returns an error saying what to
// change unless every version written is kept at least minRetention:
// versioning Enabled, Object Lock on, a default retention in COMPLIANCE
// (not GOVERNANCE) mode no shorter than minRetention. Its credentials need
// s3:GetBucketVersioning and s3:GetBucketObjectLockConfiguration.
func (s *S3Sink) Check(ctx context.Context, minRetention time.Duration) error {
	target := objectlock.Target{
		Location:  "evidence " + s.Location(),
		Bucket:    s.opts.Bucket,
		Prefix:    s.opts.Prefix,
		Endpoint:  s.endpoint.String(),
		Region:    s.opts.Region,
		PathStyle: s.opts.PathStyle,
	}
	creds := objectlock.Credentials{AccessKeyID: s.opts.AccessKeyID, SecretAccessKey: s.opts.SecretAccessKey, SessionToken: s.opts.SessionToken}
	verdict, err := objectlock.Check(ctx, target, creds, minRetention)
	if err != nil {
		return fmt.Errorf("checking the evidence bucket: %w", err)
	}
	if !verdict.Immutable {
		return fmt.Errorf("evidence could be deleted or overwritten: %s", verdict.Message)
	}
	return nil
}
