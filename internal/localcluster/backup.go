package localcluster

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/minio/minio-go/v7"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/phiguard/phiguard/internal/objectstore"
)

// The backup side of the local cluster: where Velero runs and what it writes to.
const (
	// VeleroNamespace is the namespace the Velero server runs for, unless
	// BackupOptions say another.
	VeleroNamespace = "velero"
	// BackupBucket is the object store's bucket for backups.
	BackupBucket = "phiguard-backups"
	// BackupLocation is the name of the default BackupStorageLocation.
	BackupLocation = "default"
	// CredentialsSecret is the Secret in VeleroNamespace holding the
	// object store's keys in Velero's credentials-file format (key "cloud").
	CredentialsSecret = "cloud-credentials" //nolint:gosec // G101: a Secret's name, not a credential
	// BackupRetentionDays is the bucket's Object Lock default retention, in
	// compliance mode: six years (§164.316(b)(2)) and two days, at least
	// phiguard's default backup ttl of 52560h.
	BackupRetentionDays = 2192
	// veleroBinary is the Velero server's and CLI's binary in bin/backup.
	veleroBinary = "velero"
	// VeleroVersion is the version hack/build-backup.sh builds.
	VeleroVersion = "v1.18.3"
)

// Backups is Velero, running as a child process against the local cluster,
// and the S3-compatible object store (versitygw) it writes backups to, in a
// bucket with versioning and Object Lock.
type Backups struct {
	// Store is the object store.
	Store *objectstore.Server
	// Bucket is the backups' bucket.
	Bucket string

	// Namespace is the namespace Velero runs for and keeps its objects in.
	Namespace string

	velero  *process
	cluster *Cluster
	binDir  string
	workDir string
	config  map[string]string
}

// BackupOptions say where the binaries are and where Velero runs.
type BackupOptions struct {
	// Root is the repository root.
	Root string
	// Namespace is Velero's namespace (default VeleroNamespace).
	Namespace string
	// LocationConfig is added to the BackupStorageLocation's config.
	LocationConfig map[string]string
}

// StartBackups starts the object store with a locked bucket, stores the
// credentials Secret and the default BackupStorageLocation in namespace
// velero, starts the Velero server with its AWS object-store plugin, and
// waits for the location to be Available. The binaries come from
// `make backup-tools` (hack/build-backup.sh) in bin/backup.
func (c *Cluster) StartBackups(ctx context.Context, o BackupOptions) (*Backups, error) {
	b := &Backups{Bucket: BackupBucket, Namespace: o.Namespace, cluster: c, config: o.LocationConfig,
		binDir: filepath.Join(o.Root, "bin", "backup"), workDir: filepath.Join(c.WorkDir, "backup")}
	if b.Namespace == "" {
		b.Namespace = VeleroNamespace
	}
	for _, bin := range []string{veleroBinary, "versitygw", filepath.Join("plugins", "velero-plugin-for-aws")} {
		if _, err := os.Stat(filepath.Join(b.binDir, bin)); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make backup-tools` (builds Velero, its AWS plugin and versitygw from Go modules): %w", filepath.Join(b.binDir, bin), err)
		}
	}
	// A fresh cluster gets a fresh store: backups left in the bucket by an
	// earlier run would come back (Velero syncs the bucket into the cluster).
	if err := os.RemoveAll(b.workDir); err != nil {
		return nil, fmt.Errorf("removing the last run's store %s: %w", b.workDir, err)
	}
	if err := os.MkdirAll(b.workDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating %s: %w", b.workDir, err)
	}
	storeLog, err := os.Create(filepath.Join(b.workDir, "versitygw.log"))
	if err != nil {
		return nil, fmt.Errorf("creating the object store's log: %w", err)
	}
	b.Store, err = objectstore.Start(ctx, objectstore.Options{Binary: filepath.Join(b.binDir, "versitygw"), Dir: filepath.Join(b.workDir, "store"), Out: storeLog})
	if err != nil {
		_ = storeLog.Close()
		return nil, err
	}
	if err := b.Store.CreateBucket(ctx, b.Bucket, &objectstore.Lock{Mode: "COMPLIANCE", Days: BackupRetentionDays}); err != nil {
		return nil, b.fail(err)
	}
	k8s, err := client.New(c.Config, client.Options{Scheme: backupScheme()})
	if err != nil {
		return nil, b.fail(fmt.Errorf("creating a client: %w", err))
	}
	if err := b.storeLocation(ctx, k8s); err != nil {
		return nil, b.fail(err)
	}
	if err := b.StartVelero(); err != nil {
		return nil, b.fail(err)
	}
	if err := b.waitAvailable(ctx, k8s, 2*time.Minute); err != nil {
		return nil, b.fail(err)
	}
	return b, nil
}

// fail stops what StartBackups started and returns err.
func (b *Backups) fail(err error) error {
	_ = b.Stop(10 * time.Second)
	return err
}

func backupScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = velerov1.AddToScheme(s)
	return s
}

// storeLocation creates Velero's namespace, the credentials Secret and the
// default BackupStorageLocation, as `velero install` would for an
// S3-compatible store.
func (b *Backups) storeLocation(ctx context.Context, k8s client.Client) error {
	config := map[string]string{"region": b.Store.Region, "s3ForcePathStyle": "true", "s3Url": b.Store.Endpoint}
	maps.Copy(config, b.config)
	cloud := fmt.Sprintf("[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n", b.Store.AccessKey, b.Store.SecretKey)
	objects := make([]client.Object, 0, 4)
	objects = append(objects,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.Namespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: CredentialsSecret},
			StringData: map[string]string{"cloud": cloud}},
		&velerov1.BackupStorageLocation{
			ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: BackupLocation},
			Spec: velerov1.BackupStorageLocationSpec{
				Provider: "aws", Default: true,
				Credential:  &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: CredentialsSecret}, Key: "cloud"},
				Config:      config,
				StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: b.Bucket}},
			},
		},
	)
	// Velero's restore of pods reads the image of its own Deployment (named
	// velero, as `velero install` makes it) for the restore helper. The
	// server runs here as a process: the Deployment records the
	// installation, with no replicas.
	veleroLabels := map[string]string{"component": veleroBinary, "deploy": veleroBinary}
	objects = append(objects, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: veleroBinary, Labels: veleroLabels},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: veleroLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: veleroLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: veleroBinary, Image: "velero/velero:" + VeleroVersion}}}}},
	})
	for _, obj := range objects {
		if err := k8s.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

// StartVelero starts the Velero server (again, after StopVelero). Its log is
// backup/velero.log in the cluster's directory; its home and temporary
// directories are there too, so nothing touches the user's.
func (b *Backups) StartVelero() error {
	metrics, err := freeAddress()
	if err != nil {
		return err
	}
	home, tmp := filepath.Join(b.workDir, "velero-home"), filepath.Join(b.workDir, "velero-tmp")
	for _, dir := range []string{home, tmp} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	args := []string{"server",
		"--kubeconfig=" + b.cluster.Kubeconfig,
		"--namespace=" + b.Namespace,
		"--plugin-dir=" + filepath.Join(b.binDir, "plugins"),
		"--metrics-address=" + metrics,
		"--profiler-address=",
		"--log-format=text",
		// Validate the location often, so that it is Available (or not) within seconds.
		"--store-validation-frequency=5s",
	}
	// No instance metadata service here: the AWS SDK must not wait for one.
	env := []string{"HOME=" + home, "TMPDIR=" + tmp, "AWS_EC2_METADATA_DISABLED=true"}
	b.velero, err = startProcess("the Velero server", filepath.Join(b.binDir, veleroBinary), args, env, b.VeleroLog())
	return err
}

// StopVelero stops the Velero server; the object store keeps running.
func (b *Backups) StopVelero(timeout time.Duration) error {
	if b.velero == nil {
		return nil
	}
	err := b.velero.Stop(timeout)
	b.velero = nil
	return err
}

// VeleroExited is closed when the Velero server exits.
func (b *Backups) VeleroExited() <-chan struct{} { return b.velero.Exited() }

// VeleroExitError describes an unexpected exit of the Velero server.
func (b *Backups) VeleroExitError() error { return b.velero.ExitError() }

// VeleroLog is the Velero server's log.
func (b *Backups) VeleroLog() string { return filepath.Join(b.workDir, "velero.log") }

// Stop stops the Velero server, then the object store.
func (b *Backups) Stop(timeout time.Duration) error {
	errVelero := b.StopVelero(timeout)
	var errStore error
	if b.Store != nil {
		errStore = b.Store.Stop()
	}
	if errVelero != nil {
		return errVelero
	}
	return errStore
}

// waitAvailable waits for Velero to validate the default location.
func (b *Backups) waitAvailable(ctx context.Context, k8s client.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var bsl velerov1.BackupStorageLocation
	for {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: BackupLocation}, &bsl)
		if err == nil && bsl.Status.Phase == velerov1.BackupStorageLocationPhaseAvailable {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("BackupStorageLocation %s/%s was not Available within %s (phase %q: %s); Velero's log: %s",
				b.Namespace, BackupLocation, timeout, bsl.Status.Phase, bsl.Status.Message, b.VeleroLog())
		}
		select {
		case <-b.velero.Exited():
			return b.velero.ExitError()
		case <-ctx.Done():
			return fmt.Errorf("waiting for the BackupStorageLocation: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// StoredObject is an object in the bucket.
type StoredObject struct {
	Key  string
	Size int64
}

// BackupObjects lists what Velero stored in the bucket for a backup (its
// tarball, logs and metadata, under backups/<name>/).
func (b *Backups) BackupObjects(ctx context.Context, backup string) ([]StoredObject, error) {
	mc, err := b.Store.Client()
	if err != nil {
		return nil, err
	}
	var out []StoredObject
	for obj := range mc.ListObjects(ctx, b.Bucket, minio.ListObjectsOptions{Prefix: "backups/" + backup + "/", Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing backup %s in bucket %s: %w", backup, b.Bucket, obj.Err)
		}
		out = append(out, StoredObject{Key: obj.Key, Size: obj.Size})
	}
	return out, nil
}

// Tarball is the key of a backup's resource tarball in the bucket.
func Tarball(backup string) string {
	return "backups/" + backup + "/" + backup + ".tar.gz"
}

// BackupNow runs `velero backup create --from-schedule <schedule>`, as an
// operator would to take a schedule's first backup before its cron is due,
// and returns the new backup's name.
func (b *Backups) BackupNow(ctx context.Context, schedule string) (string, error) {
	//nolint:gosec // G204: the velero CLI built by hack/build-backup.sh, with a schedule name
	cmd := exec.CommandContext(ctx, filepath.Join(b.binDir, veleroBinary), "backup", "create", "--from-schedule", schedule,
		"--kubeconfig", b.cluster.Kubeconfig, "--namespace", b.Namespace)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(b.workDir, "velero-home"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("velero backup create --from-schedule %s: %w: %s", schedule, err, out)
	}
	// Backup request "NAME" submitted successfully.
	m := submitted.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("velero backup create --from-schedule %s said no backup name: %s", schedule, out)
	}
	return string(m[1]), nil
}

var submitted = regexp.MustCompile(`Backup request "([^"]+)" submitted`)
