package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/objectlock"
)

// evidenceFlags are the evidence trail's settings.
type evidenceFlags struct {
	sink, dir, bufferDir, keySecret string
	ephemeral                       bool
	s3                              evidence.S3Options
	s3Secret                        string
	s3MinRetention                  time.Duration
	interval, attestEvery           time.Duration
	attestDelay                     time.Duration
	maxBufferBytes                  int64
	podName                         string
}

// sixYears is §164.316(b)(2)'s retention: 2192 days.
const sixYears = 2192 * 24 * time.Hour

func (e *evidenceFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&e.sink, "evidence-sink", evidence.SinkDir,
		"Where evidence records are stored: dir (--evidence-dir, a PersistentVolumeClaim), s3 (a bucket with Object Lock) or none (no evidence trail: the PHIPolicy says so).")
	fs.StringVar(&e.dir, "evidence-dir", "/var/lib/phiguard/evidence", "Directory of the dir sink's segments (and of the buffer by default).")
	fs.BoolVar(&e.ephemeral, "evidence-dir-ephemeral", false,
		"Say that --evidence-dir does not outlive the pod (an emptyDir): the PHIPolicy then reports EvidenceSinkDegraded=True (EvidenceEphemeral).")
	fs.StringVar(&e.bufferDir, "evidence-buffer-dir", "", "Directory of the on-disk buffer records wait in until stored (default: <evidence-dir>/buffer).")
	fs.Int64Var(&e.maxBufferBytes, "evidence-buffer-max-bytes", 256<<20, "Bound of the on-disk buffer; records beyond it are dropped, counted and reported.")
	fs.StringVar(&e.keySecret, "evidence-signing-key-secret", evidence.DefaultKeySecret,
		"Secret, in --namespace, with the Ed25519 key that signs checkpoints (created when missing; its public key is published in the ConfigMap "+evidence.ConfigMapName+").")
	fs.DurationVar(&e.interval, "evidence-segment-interval", time.Minute, "How often a signed segment of evidence is stored.")
	fs.DurationVar(&e.attestEvery, "evidence-attest-interval", 24*time.Hour, "How often every workload's full status is attested.")
	fs.DurationVar(&e.attestDelay, "evidence-attest-delay", 5*time.Minute, "How long after the manager becomes leader the first attestation comes.")
	fs.StringVar(&e.s3.Endpoint, "evidence-s3-endpoint", "", "S3 endpoint: host[:port] (TLS) or a URL (http:// for plain HTTP); empty is AWS S3.")
	fs.StringVar(&e.s3.Bucket, "evidence-s3-bucket", "", "Bucket of the s3 sink: versioned, Object Lock in COMPLIANCE mode, default retention of at least --evidence-s3-min-retention.")
	fs.StringVar(&e.s3.Prefix, "evidence-s3-prefix", "phiguard", "Prefix of the evidence objects in the bucket.")
	fs.StringVar(&e.s3.Region, "evidence-s3-region", "", "Region of the bucket (empty: asked of the store).")
	fs.BoolVar(&e.s3.PathStyle, "evidence-s3-path-style", false, "Address the bucket by path (MinIO, Ceph RGW, versitygw) instead of by host name.")
	fs.StringVar(&e.s3Secret, "evidence-s3-credentials-secret", "",
		"Secret, in --namespace, with accessKeyID, secretAccessKey and optionally sessionToken for the s3 sink.")
	fs.DurationVar(&e.s3MinRetention, "evidence-s3-min-retention", sixYears,
		"Retention each segment is locked for (COMPLIANCE), and the bucket's default retention the sink requires.")
	e.podName = envOr("POD_NAME", "")
}

// trail is the evidence trail's parts, once set up.
type trail struct {
	// controllers is the leader's shard, admission this replica's.
	controllers, admission *evidence.Writer
	health                 *controller.EvidenceHealth
}

// setupEvidence creates the sink, the signing key, the published ConfigMap
// and the writers, and adds them to the manager. With --evidence-sink=none
// it returns a trail without writers, whose health says so.
func setupEvidence(ctx context.Context, mgr ctrl.Manager, f *flags, reg prometheus.Registerer) (*trail, error) {
	e := f.evidence
	if e.sink == evidence.SinkNone {
		ctrl.Log.WithName("evidence").Info("WARNING: no evidence trail (--evidence-sink=none): results, actions and decisions are not kept for auditors")
		return &trail{health: controller.NewEvidenceHealth(phiguardv1alpha1.ReasonEvidenceDisabled,
			"the manager runs with --evidence-sink=none: no evidence is kept")}, nil
	}
	// The cache is not started yet: these reads go straight to the API.
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return nil, fmt.Errorf("creating the evidence client: %w", err)
	}
	sink, pub, err := newSink(ctx, c, f)
	if err != nil {
		return nil, err
	}
	signer, err := evidence.EnsureSigner(ctx, c, f.namespace, e.keySecret)
	if err != nil {
		return nil, err
	}
	if pub.Cluster, err = evidence.ClusterID(ctx, c); err != nil {
		return nil, err
	}
	pub.Keys = evidence.PublicKeys{signer.KeyID: signer.Key.Public().(ed25519.PublicKey)}
	if err := evidence.Publish(ctx, c, f.namespace, pub); err != nil {
		return nil, err
	}
	metrics, err := evidence.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	t := &trail{health: controller.NewEvidenceHealth("", "")}
	if e.ephemeral {
		msg := fmt.Sprintf("evidence is kept in %s, which does not outlive the pod: mount a PersistentVolumeClaim there or use an S3 bucket with Object Lock", e.dir)
		ctrl.Log.WithName("evidence").Info("WARNING: " + msg)
		t.health = controller.NewEvidenceHealth(phiguardv1alpha1.ReasonEvidenceEphemeral, msg)
	}
	bufferDir := e.bufferDir
	if bufferDir == "" {
		bufferDir = filepath.Join(e.dir, "buffer")
	}
	newWriter := func(shard string, leaderOnly bool) (*evidence.Writer, error) {
		w, err := evidence.NewWriter(evidence.WriterOptions{
			Sink: sink, Signer: signer, Cluster: pub.Cluster, Shard: shard, SpoolDir: filepath.Join(bufferDir, shard),
			MaxBufferBytes: e.maxBufferBytes, SegmentInterval: e.interval, LeaderOnly: leaderOnly, Clock: clock.RealClock{},
			Metrics: metrics, OnHealth: t.health.Reporter(shard),
		})
		if err != nil {
			return nil, err
		}
		return w, mgr.Add(w)
	}
	if t.controllers, err = newWriter("controllers", true); err != nil {
		return nil, err
	}
	if t.admission, err = newWriter(admissionShard(e.podName), false); err != nil {
		return nil, err
	}
	ctrl.Log.WithName("evidence").Info("evidence trail", "sink", sink.Location(), "buffer", bufferDir, "cluster", pub.Cluster, "key", signer.KeyID)
	return t, nil
}

// admissionShard names this replica's admission chain: admission requests
// are served by every replica, not only the leader.
func admissionShard(pod string) string {
	if pod == "" {
		if h, err := os.Hostname(); err == nil {
			pod = h
		}
	}
	if pod == "" {
		return "admission"
	}
	return "admission-" + pod
}

// newSink returns the sink the flags name, and what is published about it.
func newSink(ctx context.Context, c client.Client, f *flags) (evidence.Sink, evidence.Published, error) {
	e := f.evidence
	switch e.sink {
	case evidence.SinkDir:
		sink, err := evidence.NewDirSink(e.dir)
		return sink, evidence.Published{Sink: evidence.SinkDir, Dir: e.dir}, err
	case evidence.SinkS3:
		o := e.s3
		if e.s3Secret == "" {
			return nil, evidence.Published{}, errors.New("--evidence-sink=s3 needs --evidence-s3-credentials-secret")
		}
		secret := &corev1.Secret{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: f.namespace, Name: e.s3Secret}, secret); err != nil {
			return nil, evidence.Published{}, fmt.Errorf("reading the evidence bucket's credentials: %w", err)
		}
		creds, err := objectlock.CredentialsFromSecret(secret)
		if err != nil {
			return nil, evidence.Published{}, err
		}
		o.AccessKeyID, o.SecretAccessKey, o.SessionToken = creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken
		o.Retention = e.s3MinRetention
		sink, err := evidence.NewS3Sink(o)
		if err != nil {
			return nil, evidence.Published{}, err
		}
		// A bucket that would let evidence be deleted is refused at start:
		// better no manager than a trail an auditor cannot rely on.
		if err := sink.Check(ctx, e.s3MinRetention); err != nil {
			return nil, evidence.Published{}, fmt.Errorf("evidence bucket: %w", err)
		}
		pubOpts := e.s3
		return sink, evidence.Published{Sink: evidence.SinkS3, S3: pubOpts}, nil
	}
	return nil, evidence.Published{}, fmt.Errorf("--evidence-sink=%q: want %s, %s or %s", e.sink, evidence.SinkDir, evidence.SinkS3, evidence.SinkNone)
}

// setupAttestation adds the daily attestation and the PHIPolicy's
// EvidenceSinkDegraded condition.
func setupAttestation(mgr ctrl.Manager, t *trail, f *flags) error {
	if err := (&controller.EvidenceStatusReconciler{Client: mgr.GetClient(), Health: t.health}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the evidence status controller: %w", err)
	}
	if t.controllers == nil {
		return nil
	}
	if err := mgr.Add(&controller.Attestor{Reader: mgr.GetClient(), Evidence: t.controllers,
		Interval: f.evidence.attestEvery, Delay: f.evidence.attestDelay, Clock: clock.RealClock{}}); err != nil {
		return fmt.Errorf("adding the daily attestation: %w", err)
	}
	return nil
}

// controllerRecorder is the leader's recorder; nil without a trail (a nil
// interface, not a nil *Writer inside one, so that callers skip the work).
func (t *trail) controllerRecorder() evidence.Recorder {
	if t == nil || t.controllers == nil {
		return nil
	}
	return t.controllers
}

// admissionRecorder is this replica's admission recorder, or nil.
func (t *trail) admissionRecorder() evidence.Recorder {
	if t == nil || t.admission == nil {
		return nil
	}
	return t.admission
}
