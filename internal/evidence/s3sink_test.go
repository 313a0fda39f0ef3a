package evidence_test

import (
	"crypto/md5" // #nosec G501 -- Content-MD5 is what S3 checks, not a security measure
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/gomega"

	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/objectstore"
	"github.com/phiguard/phiguard/internal/objectstore/objectstoretest"
)

// Covers S3Sink against a real S3-compatible store (versitygw): names under
// the prefix, a refused second write of a name (found in the version listing
// before the write, or refused by the conditional write when a racing writer
// got there first, or by the listing alone on a store without conditional
// writes), the request's Content-MD5 and retention, a locked bucket that
// keeps the original of a segment someone deletes or overwrites, the check
// of the bucket's Object Lock, and the options refused.

// sixYears is the retention HIPAA asks for (2192 days, leap days included).
const sixYears = 2192 * 24 * time.Hour

// locked is the Object Lock of an evidence bucket.
var locked = &objectstore.Lock{Mode: "COMPLIANCE", Days: 2192}

// newS3Sink returns a sink writing to bucket under prefix at endpoint with
// the store's keys.
func newS3Sink(t *testing.T, srv *objectstore.Server, endpoint, bucket, prefix string) *evidence.S3Sink {
	t.Helper()
	sink, err := evidence.NewS3Sink(evidence.S3Options{
		Endpoint:        endpoint,
		Bucket:          bucket,
		Prefix:          prefix,
		Region:          srv.Region,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		PathStyle:       true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sink
}

// rawClient is an S3 client of the store, signed with its root keys.
func rawClient(t *testing.T, srv *objectstore.Server) *minio.Client {
	t.Helper()
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// versionsOf lists the version IDs of key, newest first, and whether each
// is a delete marker.
func versionsOf(t *testing.T, g Gomega, c *minio.Client, bucket, key string) (ids []string, markers []bool) {
	t.Helper()
	for obj := range c.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: key, Recursive: true, WithVersions: true}) {
		g.Expect(obj.Err).NotTo(HaveOccurred())
		if obj.Key == key {
			ids = append(ids, obj.VersionID)
			markers = append(markers, obj.IsDeleteMarker)
		}
	}
	return ids, markers
}

func TestS3SinkPutGetList(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(ctx, "evidence", locked)).To(Succeed())
	sink := newS3Sink(t, srv, srv.Endpoint, "evidence", "/clusters/prod/")
	g.Expect(sink.Location()).To(Equal("s3://evidence/clusters/prod at " + srv.Endpoint))

	segments := map[string]string{
		"segments/manager/000000000002.jsonl": `{"seq":2}` + "\n",
		"segments/manager/000000000001.jsonl": `{"seq":1}` + "\n",
		"segments/webhook/000000000001.jsonl": `{"seq":1,"shard":"webhook"}` + "\n",
		"keys/0123456789abcdef.pub":           "public key\n",
	}
	for name, data := range segments {
		g.Expect(sink.Put(ctx, name, []byte(data))).To(Succeed(), name)
	}
	// Outside the sink's prefix: neither listed nor read.
	c := rawClient(t, srv)
	_, err := c.PutObject(ctx, "evidence", "clusters/staging/segments/manager/000000000001.jsonl", strings.NewReader("other"), 5, minio.PutObjectOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	for name, data := range segments {
		got, err := sink.Get(ctx, name)
		g.Expect(err).NotTo(HaveOccurred(), name)
		g.Expect(string(got)).To(Equal(data), name)
	}
	info, err := c.StatObject(ctx, "evidence", "clusters/prod/segments/manager/000000000001.jsonl", minio.StatObjectOptions{})
	g.Expect(err).NotTo(HaveOccurred(), "names are joined to the prefix with one slash")
	g.Expect(info.Size).To(Equal(int64(len(segments["segments/manager/000000000001.jsonl"]))))

	g.Expect(sink.List(ctx, "segments/manager/")).To(Equal([]evidence.Entry{
		{Name: "segments/manager/000000000001.jsonl", Versions: 1},
		{Name: "segments/manager/000000000002.jsonl", Versions: 1},
	}))
	g.Expect(sink.List(ctx, "")).To(Equal([]evidence.Entry{
		{Name: "keys/0123456789abcdef.pub", Versions: 1},
		{Name: "segments/manager/000000000001.jsonl", Versions: 1},
		{Name: "segments/manager/000000000002.jsonl", Versions: 1},
		{Name: "segments/webhook/000000000001.jsonl", Versions: 1},
	}))
	g.Expect(sink.List(ctx, "segments/none/")).To(BeEmpty())

	_, err = sink.Get(ctx, "segments/manager/000000000003.jsonl")
	g.Expect(err).To(MatchError(ContainSubstring("reading evidence segments/manager/000000000003.jsonl from s3://evidence/clusters/prod at " + srv.Endpoint + ": no such object")))
}

func TestS3SinkWithoutPrefix(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(ctx, "plain", nil)).To(Succeed())
	sink := newS3Sink(t, srv, srv.Endpoint, "plain", "")
	g.Expect(sink.Location()).To(Equal("s3://plain at " + srv.Endpoint))

	g.Expect(sink.Put(ctx, "segments/a/1.jsonl", []byte("one"))).To(Succeed())
	_, err := rawClient(t, srv).StatObject(ctx, "plain", "segments/a/1.jsonl", minio.StatObjectOptions{})
	g.Expect(err).NotTo(HaveOccurred(), "without a prefix the name is the key")
	g.Expect(sink.List(ctx, "")).To(Equal([]evidence.Entry{{Name: "segments/a/1.jsonl", Versions: 1}}))
	g.Expect(sink.Get(ctx, "segments/a/1.jsonl")).To(Equal([]byte("one")), "an unversioned bucket is read too")
	g.Expect(errors.Is(sink.Put(ctx, "segments/a/1.jsonl", []byte("two")), evidence.ErrExists)).To(BeTrue())
	g.Expect(sink.Get(ctx, "segments/a/1.jsonl")).To(Equal([]byte("one")))

	// A name that starts another is a name of its own.
	g.Expect(sink.Put(ctx, "segments/a/1", []byte("short"))).To(Succeed())
	g.Expect(sink.Get(ctx, "segments/a/1")).To(Equal([]byte("short")))
	g.Expect(sink.Get(ctx, "segments/a/1.jsonl")).To(Equal([]byte("one")))
	g.Expect(sink.List(ctx, "segments/a/1")).To(Equal([]evidence.Entry{{Name: "segments/a/1", Versions: 1}, {Name: "segments/a/1.jsonl", Versions: 1}}))
}

func TestS3SinkPutRefusesAnExistingName(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(ctx, "evidence", locked)).To(Succeed())
	sink := newS3Sink(t, srv, srv.Endpoint, "evidence", "phiguard")

	const name = "segments/manager/000000000001.jsonl"
	g.Expect(sink.Put(ctx, name, []byte("original"))).To(Succeed())
	err := sink.Put(ctx, name, []byte("replacement"))
	g.Expect(errors.Is(err, evidence.ErrExists)).To(BeTrue(), "got %v", err)
	g.Expect(err).To(MatchError(name + ": " + evidence.ErrExists.Error()))
	g.Expect(sink.Get(ctx, name)).To(Equal([]byte("original")))
	g.Expect(sink.List(ctx, "")).To(Equal([]evidence.Entry{{Name: name, Versions: 1}}), "the refused write left no version")
}

// storeProxy stands between a sink and the store: it records the requests
// it passes on, and can play a store that behaves otherwise.
type storeProxy struct {
	// hideObjects answers every listing of versions with none, as if no
	// object had been written yet: a writer racing another.
	hideObjects bool
	// noConditionalWrites answers a PUT with If-None-Match 501 Not
	// Implemented, as stores without conditional writes do.
	noConditionalWrites bool

	mu   sync.Mutex
	puts []http.Header // headers of the PUTs passed on
}

// start serves the proxy in front of the store at endpoint and returns its
// URL.
func (p *storeProxy) start(t *testing.T, endpoint string) string {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	forward := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the request is signed for the proxy's host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		object := strings.Count(strings.Trim(r.URL.Path, "/"), "/") > 0
		switch {
		case p.hideObjects && r.Method == http.MethodGet && r.URL.Query().Has("versions"):
			w.Header().Set("Content-Type", "application/xml")
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>false</IsTruncated></ListVersionsResult>`)
			return
		case p.noConditionalWrites && r.Method == http.MethodPut && r.Header.Get("If-None-Match") != "":
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented.</Message></Error>`)
			return
		case r.Method == http.MethodPut && object:
			p.mu.Lock()
			p.puts = append(p.puts, r.Header.Clone())
			p.mu.Unlock()
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// recorded returns the headers of the object PUTs passed on.
func (p *storeProxy) recorded() []http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]http.Header(nil), p.puts...)
}

func TestS3SinkPutWritesConditionallyWithChecksumAndRetention(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(ctx, "evidence", locked)).To(Succeed())
	proxy := &storeProxy{}
	sink, err := evidence.NewS3Sink(evidence.S3Options{
		Endpoint: proxy.start(t, srv.Endpoint), Bucket: "evidence", Prefix: "phiguard", Region: srv.Region,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true, Retention: sixYears,
	})
	g.Expect(err).NotTo(HaveOccurred())

	data := []byte(`{"seq":1}` + "\n")
	before := time.Now()
	g.Expect(sink.Put(ctx, "segments/manager/000000000001.jsonl", data)).To(Succeed())
	after := time.Now()

	puts := proxy.recorded()
	g.Expect(puts).To(HaveLen(1))
	sum := md5.Sum(data) // #nosec G401 -- Content-MD5
	g.Expect(puts[0].Get("Content-MD5")).To(Equal(base64.StdEncoding.EncodeToString(sum[:])))
	g.Expect(puts[0].Get("If-None-Match")).To(Equal("*"))
	g.Expect(puts[0].Get("X-Amz-Object-Lock-Mode")).To(Equal("COMPLIANCE"))

	// Read from the object's headers: versitygw answers GetObjectRetention
	// with an XML element minio-go does not parse.
	info, err := rawClient(t, srv).StatObject(ctx, "evidence", "phiguard/segments/manager/000000000001.jsonl", minio.StatObjectOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.Metadata.Get("X-Amz-Object-Lock-Mode")).To(Equal("COMPLIANCE"))
	until, err := time.Parse(time.RFC3339, info.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"))
	g.Expect(err).NotTo(HaveOccurred())
	// The date is sent with a precision of one second, rounded down.
	g.Expect(until).To(BeTemporally(">=", before.Add(sixYears).Truncate(time.Second)))
	g.Expect(until).To(BeTemporally("<=", after.Add(sixYears)))
}

func TestS3SinkPutRacingAnotherWriter(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(ctx, "evidence", locked)).To(Succeed())
	const name = "segments/manager/000000000001.jsonl"
	g.Expect(newS3Sink(t, srv, srv.Endpoint, "evidence", "phiguard").Put(ctx, name, []byte("first writer"))).To(Succeed())

	// The second writer looked before the first wrote: only the
	// conditional write stops it.
	proxy := &storeProxy{hideObjects: true}
	late := newS3Sink(t, srv, proxy.start(t, srv.Endpoint), "evidence", "phiguard")
	err := late.Put(ctx, name, []byte("second writer"))
	g.Expect(err).To(MatchError(name + " (written meanwhile): " + evidence.ErrExists.Error()))
	g.Expect(proxy.recorded()).To(HaveLen(1), "the write was tried")
	sink := newS3Sink(t, srv, srv.Endpoint, "evidence", "phiguard")
	g.Expect(sink.List(ctx, "")).To(Equal([]evidence.Entry{{Name: name, Versions: 1}}))
	g.Expect(sink.Get(ctx, name)).To(Equal([]byte("first writer")))
}

func TestS3SinkPutOnAStoreWithoutConditionalWrites(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(ctx, "evidence", locked)).To(Succeed())
	proxy := &storeProxy{noConditionalWrites: true}
	sink := newS3Sink(t, srv, proxy.start(t, srv.Endpoint), "evidence", "phiguard")

	const name = "segments/manager/000000000001.jsonl"
	g.Expect(sink.Put(ctx, name, []byte("original"))).To(Succeed())
	puts := proxy.recorded()
	g.Expect(puts).To(HaveLen(1), "written again without the condition")
	g.Expect(puts[0].Get("If-None-Match")).To(BeEmpty())

	err := sink.Put(ctx, name, []byte("replacement"))
	g.Expect(errors.Is(err, evidence.ErrExists)).To(BeTrue(), "the object is found before writing; got %v", err)
	g.Expect(proxy.recorded()).To(HaveLen(1), "nothing was written")
	g.Expect(sink.Get(ctx, name)).To(Equal([]byte("original")))

	// Hidden behind a delete marker, the name is still taken.
	g.Expect(rawClient(t, srv).RemoveObject(ctx, "evidence", "phiguard/"+name, minio.RemoveObjectOptions{})).To(Succeed())
	err = sink.Put(ctx, name, []byte("replacement"))
	g.Expect(err).To(MatchError(name + " (its latest version is a delete marker): " + evidence.ErrExists.Error()))
	g.Expect(proxy.recorded()).To(HaveLen(1), "nothing was written")
	g.Expect(sink.Get(ctx, name)).To(Equal([]byte("original")))
}

func TestS3SinkLockedSegmentCannotBeDeletedOrOverwritten(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(ctx, "evidence", locked)).To(Succeed())
	sink := newS3Sink(t, srv, srv.Endpoint, "evidence", "phiguard")
	c := rawClient(t, srv)

	const name, key = "segments/manager/000000000001.jsonl", "phiguard/segments/manager/000000000001.jsonl"
	g.Expect(sink.Put(ctx, name, []byte("original"))).To(Succeed())
	ids, _ := versionsOf(t, g, c, "evidence", key)
	g.Expect(ids).To(HaveLen(1))
	g.Expect(ids[0]).NotTo(BeEmpty())
	original := ids[0]

	err := c.RemoveObject(ctx, "evidence", key, minio.RemoveObjectOptions{VersionID: original})
	g.Expect(minio.ToErrorResponse(err).Code).To(Equal("AccessDenied"), "deleting the segment's version: %v", err)

	_, err = c.PutObject(ctx, "evidence", key, strings.NewReader("forged"), 6, minio.PutObjectOptions{})
	g.Expect(err).NotTo(HaveOccurred(), "a plain PUT adds a version")
	ids, _ = versionsOf(t, g, c, "evidence", key)
	g.Expect(ids).To(HaveLen(2))
	g.Expect(ids).To(ContainElement(original))
	g.Expect(sink.List(ctx, "segments/")).To(Equal([]evidence.Entry{{Name: name, Versions: 2}}))
	g.Expect(sink.Get(ctx, name)).To(Equal([]byte("original")))

	// A delete without a version only hides the object behind a delete
	// marker: the sink still lists it, counts the marker, and reads the
	// original; the name stays taken.
	g.Expect(c.RemoveObject(ctx, "evidence", key, minio.RemoveObjectOptions{})).To(Succeed())
	_, markers := versionsOf(t, g, c, "evidence", key)
	g.Expect(markers).To(Equal([]bool{true, false, false}), "the latest version is a delete marker")
	g.Expect(sink.List(ctx, "segments/")).To(Equal([]evidence.Entry{{Name: name, Versions: 3}}))
	g.Expect(sink.Get(ctx, name)).To(Equal([]byte("original")))
	err = sink.Put(ctx, name, []byte("rewritten"))
	g.Expect(errors.Is(err, evidence.ErrExists)).To(BeTrue(), "got %v", err)
	g.Expect(sink.List(ctx, "segments/")).To(Equal([]evidence.Entry{{Name: name, Versions: 3}}))

}

func TestS3SinkCheck(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(ctx, "evidence", locked)).To(Succeed())
	g.Expect(srv.CreateBucket(ctx, "plain", nil)).To(Succeed())
	g.Expect(srv.CreateBucket(ctx, "governed", &objectstore.Lock{Mode: "GOVERNANCE", Days: 2192})).To(Succeed())

	g.Expect(newS3Sink(t, srv, srv.Endpoint, "evidence", "phiguard").Check(ctx, sixYears)).To(Succeed())

	err := newS3Sink(t, srv, srv.Endpoint, "evidence", "phiguard").Check(ctx, sixYears+24*time.Hour)
	g.Expect(err).To(MatchError(HavePrefix(`evidence could be deleted or overwritten: bucket "evidence" at ` + srv.Endpoint + " keeps backups 2192 days (52608h) in COMPLIANCE mode, less than")))
	g.Expect(err).To(MatchError(ContainSubstring("set the default retention to at least 2193 days")))

	err = newS3Sink(t, srv, srv.Endpoint, "plain", "phiguard").Check(ctx, sixYears)
	g.Expect(err).To(MatchError(HavePrefix(`evidence could be deleted or overwritten: bucket "plain" at ` + srv.Endpoint + ` has versioning off`)))
	g.Expect(err).To(MatchError(ContainSubstring("enable versioning and Object Lock with a default retention in COMPLIANCE mode of at least 2192 days")))

	err = newS3Sink(t, srv, srv.Endpoint, "governed", "").Check(ctx, sixYears)
	g.Expect(err).To(MatchError(ContainSubstring("in GOVERNANCE mode, which can be bypassed")))

	wrongKeys, err := evidence.NewS3Sink(evidence.S3Options{Endpoint: srv.Endpoint, Bucket: "evidence", Region: srv.Region, AccessKeyID: srv.AccessKey, SecretAccessKey: "wrong", PathStyle: true})
	g.Expect(err).NotTo(HaveOccurred())
	err = wrongKeys.Check(ctx, sixYears)
	g.Expect(err).To(MatchError(ContainSubstring(`checking the evidence bucket: reading the versioning of bucket "evidence" at ` + srv.Endpoint)))
}

func TestNewS3SinkRefusesIncompleteOptions(t *testing.T) {
	keys := func(o evidence.S3Options) evidence.S3Options {
		o.AccessKeyID, o.SecretAccessKey = "AKIA", "secret"
		return o
	}
	for _, tc := range []struct {
		name string
		o    evidence.S3Options
		err  string
	}{
		{"no bucket", keys(evidence.S3Options{Endpoint: "s3.example.com"}), "evidence bucket: no bucket named"},
		{"no secret key", evidence.S3Options{Bucket: "b", AccessKeyID: "AKIA"}, `evidence bucket "b": an access key ID and a secret access key are both required`},
		{"no access key", evidence.S3Options{Bucket: "b", SecretAccessKey: "secret"}, `evidence bucket "b": an access key ID and a secret access key are both required`},
		{"other scheme", keys(evidence.S3Options{Bucket: "b", Endpoint: "ftp://s3.example.com"}), `evidence bucket "b": endpoint "ftp://s3.example.com" is neither host[:port] nor an http:// or https:// URL`},
		{"path", keys(evidence.S3Options{Bucket: "b", Endpoint: "https://s3.example.com/b"}), `evidence bucket "b": endpoint "https://s3.example.com/b" has a path, query or user: give the store's URL without one`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			sink, err := evidence.NewS3Sink(tc.o)
			g.Expect(err).To(MatchError(tc.err))
			g.Expect(sink).To(BeNil())
		})
	}
}

func TestS3SinkLocation(t *testing.T) {
	for _, tc := range []struct {
		endpoint, prefix, want string
	}{
		{"", "", "s3://b at https://s3.amazonaws.com"},
		{"s3.eu-central-1.amazonaws.com", "/evidence/", "s3://b/evidence at https://s3.eu-central-1.amazonaws.com"},
		{"rgw.example.com:7480", "a/b", "s3://b/a/b at https://rgw.example.com:7480"},
		{"http://minio.minio:9000/", "x", "s3://b/x at http://minio.minio:9000"},
		{"https://storage.googleapis.com", "", "s3://b at https://storage.googleapis.com"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			g := NewWithT(t)
			sink, err := evidence.NewS3Sink(evidence.S3Options{Endpoint: tc.endpoint, Bucket: "b", Prefix: tc.prefix, AccessKeyID: "AKIA", SecretAccessKey: "secret"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sink.Location()).To(Equal(tc.want))
		})
	}
}
