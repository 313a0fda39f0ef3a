package objectstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/gomega"

	"github.com/phiguard/phiguard/internal/objectstore"
	"github.com/phiguard/phiguard/internal/objectstore/objectstoretest"
)

// Covers the object store as the local cluster and the tests use it: a real
// versitygw started on a free port with random keys, a bucket with Object
// Lock in COMPLIANCE mode that refuses to delete a version and keeps the old
// version on overwrite, a plain bucket that lets you delete, and a Stop (or
// the death of the parent) that leaves no process behind.

func client(t *testing.T, s *objectstore.Server) *minio.Client {
	t.Helper()
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func put(ctx context.Context, g Gomega, c *minio.Client, bucket, key, body string) string {
	info, err := c.PutObject(ctx, bucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return info.VersionID
}

func get(ctx context.Context, g Gomega, c *minio.Client, bucket, key, version string) string {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{VersionID: version})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = obj.Close() }()
	body, err := io.ReadAll(obj)
	g.Expect(err).NotTo(HaveOccurred())
	return string(body)
}

func TestLockedBucketKeepsEveryVersion(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	s := objectstoretest.Start(t)
	c := client(t, s)
	g.Expect(s.Endpoint).To(HavePrefix("http://127.0.0.1:"))
	g.Expect(s.Region).To(Equal("us-east-1"))

	lock := &objectstore.Lock{Mode: "COMPLIANCE", Days: 1}
	g.Expect(s.CreateBucket(ctx, "backups", lock)).To(Succeed())
	g.Expect(s.CreateBucket(ctx, "backups", lock)).To(Succeed(), "CreateBucket is idempotent")

	versioning, err := c.GetBucketVersioning(ctx, "backups")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(versioning.Status).To(Equal(minio.Enabled))
	enabled, mode, validity, unit, err := c.GetObjectLockConfig(ctx, "backups")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(enabled).To(Equal("Enabled"))
	g.Expect(*mode).To(Equal(minio.Compliance))
	g.Expect(*validity).To(Equal(uint(1)))
	g.Expect(*unit).To(Equal(minio.Days))

	first := put(ctx, g, c, "backups", "nightly/backup.tar.gz", "first")
	g.Expect(first).NotTo(BeEmpty(), "a versioned bucket names each version")

	for _, opts := range []minio.RemoveObjectOptions{{VersionID: first}, {VersionID: first, GovernanceBypass: true}} {
		err := c.RemoveObject(ctx, "backups", "nightly/backup.tar.gz", opts)
		g.Expect(err).To(HaveOccurred(), "deleting a version under COMPLIANCE retention (%+v)", opts)
		g.Expect(minio.ToErrorResponse(err).Code).To(Equal("AccessDenied"))
		g.Expect(minio.ToErrorResponse(err).Message).To(ContainSubstring("object lock"))
	}

	second := put(ctx, g, c, "backups", "nightly/backup.tar.gz", "second")
	g.Expect(second).NotTo(BeEmpty())
	g.Expect(second).NotTo(Equal(first), "an overwrite is a new version")
	g.Expect(get(ctx, g, c, "backups", "nightly/backup.tar.gz", "")).To(Equal("second"))
	g.Expect(get(ctx, g, c, "backups", "nightly/backup.tar.gz", first)).To(Equal("first"), "the old version stays")

	var versions []string
	for obj := range c.ListObjects(ctx, "backups", minio.ListObjectsOptions{WithVersions: true, Recursive: true}) {
		g.Expect(obj.Err).NotTo(HaveOccurred())
		versions = append(versions, obj.Key+"@"+obj.VersionID)
	}
	g.Expect(versions).To(ConsistOf("nightly/backup.tar.gz@"+first, "nightly/backup.tar.gz@"+second))
}

func TestPlainBucketLetsYouDelete(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	s := objectstoretest.Start(t)
	c := client(t, s)

	g.Expect(s.CreateBucket(ctx, "scratch", nil)).To(Succeed())
	g.Expect(s.CreateBucket(ctx, "scratch", nil)).To(Succeed(), "CreateBucket is idempotent")
	versioning, err := c.GetBucketVersioning(ctx, "scratch")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(versioning.Status).To(BeEmpty(), "a plain bucket has never had versioning")
	_, _, _, _, err = c.GetObjectLockConfig(ctx, "scratch")
	g.Expect(minio.ToErrorResponse(err).Code).To(Equal("ObjectLockConfigurationNotFoundError"))

	put(ctx, g, c, "scratch", "backup.tar.gz", "data")
	g.Expect(c.RemoveObject(ctx, "scratch", "backup.tar.gz", minio.RemoveObjectOptions{})).To(Succeed())
	_, err = c.StatObject(ctx, "scratch", "backup.tar.gz", minio.StatObjectOptions{})
	g.Expect(minio.ToErrorResponse(err).Code).To(Equal("NoSuchKey"))
}

func TestCreateBucketRefusesAnUnknownMode(t *testing.T) {
	g := NewWithT(t)
	s := objectstoretest.Start(t)
	err := s.CreateBucket(t.Context(), "odd", &objectstore.Lock{Mode: "compliance", Days: 1})
	g.Expect(err).To(MatchError(ContainSubstring(`Object Lock mode "compliance" is neither COMPLIANCE nor GOVERNANCE`)))
}

func TestStopLeavesNoProcess(t *testing.T) {
	g := NewWithT(t)
	s := objectstoretest.Start(t)
	pid := s.Pid()
	g.Expect(alive(pid)).To(BeTrue())

	g.Expect(s.Stop()).To(Succeed())
	g.Expect(alive(pid)).To(BeFalse(), "versitygw (pid %d) is gone", pid)
	_, err := net.Dial("tcp", strings.TrimPrefix(s.Endpoint, "http://"))
	g.Expect(err).To(MatchError(ContainSubstring("connection refused")), "nothing listens on the store's port")
	g.Expect(s.Stop()).To(Succeed(), "a second Stop returns the first one's result")
}

func TestStartWithoutBinary(t *testing.T) {
	g := NewWithT(t)
	missing := filepath.Join(t.TempDir(), "versitygw")
	_, err := objectstore.Start(t.Context(), objectstore.Options{Binary: missing, Dir: t.TempDir()})
	g.Expect(err).To(MatchError(ContainSubstring(missing)))
}

// helperEnv makes the test binary, run again by TestParentDeathKillsStore,
// start a store, print its pid and wait to be killed.
const helperEnv = "OBJECTSTORE_TEST_PARENT"

func TestParentDeathKillsStore(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		s := objectstoretest.Start(t)
		fmt.Println("pid", s.Pid())
		<-t.Context().Done() // killed before the test ends
		return
	}
	g := NewWithT(t)
	parent := exec.Command(os.Args[0], "-test.run=^TestParentDeathKillsStore$", "-test.count=1")
	parent.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := parent.StdoutPipe()
	g.Expect(err).NotTo(HaveOccurred())
	parent.Stderr = t.Output()
	g.Expect(parent.Start()).To(Succeed())
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })

	lines := bufio.NewScanner(stdout)
	pid := 0
	for pid == 0 && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "pid "); ok {
			pid, err = strconv.Atoi(rest)
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
	g.Expect(pid).NotTo(BeZero(), "the parent printed the store's pid")
	g.Expect(alive(pid)).To(BeTrue())

	g.Expect(parent.Process.Kill()).To(Succeed())
	g.Eventually(func() bool { return alive(pid) }).WithTimeout(5*time.Second).WithPolling(20*time.Millisecond).
		Should(BeFalse(), "versitygw (pid %d) dies with its parent", pid)
}

// alive reports whether the process runs: it exists and is not a zombie
// waiting for an init that does not reap.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}
