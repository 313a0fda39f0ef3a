package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/objectlock"
	"github.com/phiguard/phiguard/internal/report"
)

// Export formats, as evidence export's --format takes them.
const (
	ExportJSON  = "json"
	ExportOSCAL = "oscal"
)

// defaultExportWindow is how far back evidence export reads without --from.
const defaultExportWindow = 30 * 24 * time.Hour

// headDigits is how many hex digits of a chain head the verify table shows.
const headDigits = 16

// The environment variables S3 credentials are read from, as the AWS tools
// name them.
const (
	envAccessKeyID     = "AWS_ACCESS_KEY_ID"
	envSecretAccessKey = "AWS_SECRET_ACCESS_KEY" //nolint:gosec // G101: the name of an environment variable, not a credential
	envSessionToken    = "AWS_SESSION_TOKEN"     //nolint:gosec // G101: the name of an environment variable, not a credential
)

// The flags that say where the evidence is, other than through the
// published ConfigMap.
const (
	flagDir            = "dir"
	flagS3Endpoint     = "s3-endpoint"
	flagS3Bucket       = "s3-bucket"
	flagS3Prefix       = "s3-prefix"
	flagS3Region       = "s3-region"
	flagS3PathStyle    = "s3-path-style"
	flagS3Credentials  = "s3-credentials-secret"
	flagPublicKey      = "public-key"
	flagAllowBroken    = "allow-broken"
	flagPhiguardNS     = "phiguard-namespace"
	flagEvidenceConfig = "config-map"
)

// EvidenceExport is what `evidence export --format json` writes: the records
// of a window, oldest first.
type EvidenceExport struct {
	// Cluster is the cluster's identity, as the manager published it (or as
	// the records carry it, when read without the cluster).
	Cluster string `json:"cluster"`
	// Namespace is the namespace whose workloads' records were selected;
	// empty for every record (-A).
	Namespace string `json:"namespace,omitempty"`
	// From and To bound the records' times, both included.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Broken is the first broken link verification found, when the records
	// were exported all the same (--allow-broken).
	Broken *evidence.Break `json:"broken,omitempty"`
	// Records are the records, oldest first.
	Records []evidence.Record `json:"records"`
}

// evidenceSourceFlags say where the evidence is and what verifies it.
type evidenceSourceFlags struct {
	phiguardNamespace string
	configMap         string
	dir               string
	s3                evidence.S3Options
	s3Credentials     string
	publicKeys        []string
}

func (f *evidenceSourceFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.phiguardNamespace, flagPhiguardNS, defaultManagerNamespace,
		"Namespace phiguard's manager runs in, where it publishes its evidence ConfigMap.")
	fl.StringVar(&f.configMap, flagEvidenceConfig, evidence.ConfigMapName,
		"The ConfigMap the manager publishes the evidence sink and its public keys in.")
	fl.StringVar(&f.dir, flagDir, "",
		"Read the evidence from this local directory (the manager's directory, or a copy taken with kubectl cp) instead of the published sink.")
	fl.StringVar(&f.s3.Endpoint, flagS3Endpoint, "",
		"Read the evidence from an S3 bucket at this endpoint (host[:port] or URL; empty is AWS S3). Each --s3-* flag overrides the published one.")
	fl.StringVar(&f.s3.Bucket, flagS3Bucket, "", "The S3 bucket the evidence is in.")
	fl.StringVar(&f.s3.Prefix, flagS3Prefix, "", "The path in the S3 bucket the evidence is under.")
	fl.StringVar(&f.s3.Region, flagS3Region, "", "The S3 bucket's region (empty: ask the store).")
	fl.BoolVar(&f.s3.PathStyle, flagS3PathStyle, false,
		"Address the S3 bucket as a path of the endpoint, as MinIO, Ceph RGW and versitygw usually need.")
	fl.StringVar(&f.s3Credentials, flagS3Credentials, "",
		"A Secret in the phiguard namespace holding the S3 credentials in keys accessKeyID, secretAccessKey and "+
			"optionally sessionToken; without it they come from "+envAccessKeyID+", "+envSecretAccessKey+" and "+envSessionToken+".")
	fl.StringArrayVar(&f.publicKeys, flagPublicKey, nil,
		"A file of Ed25519 public keys (PEM, base64 one per line, or the JSON of the ConfigMap's publicKeys) to verify with instead of the published ones; "+
			"repeatable. With --dir or the --s3-* flags (and credentials from the environment), the cluster is then not read at all.")
}

// s3FlagNames are the flags that choose an S3 bucket.
var s3FlagNames = []string{flagS3Endpoint, flagS3Bucket, flagS3Prefix, flagS3Region, flagS3PathStyle}

// evidenceSource is the evidence to read and what verifies it.
type evidenceSource struct {
	sink evidence.Sink
	keys evidence.PublicKeys
	// cluster is the published cluster identity; empty when the ConfigMap
	// was not read.
	cluster string
}

// open finds the evidence: the sink the flags name, or else the one the
// manager published, and the public keys of --public-key, or else the
// published ones. The cluster is read only for what the flags leave open.
func (f *evidenceSourceFlags) open(ctx context.Context, cmd *cobra.Command, o *Options) (evidenceSource, error) {
	var src evidenceSource
	keys, err := readPublicKeyFiles(f.publicKeys)
	if err != nil {
		return src, err
	}
	dirGiven, s3Given := f.dir != "", s3FlagsGiven(cmd)
	if dirGiven && s3Given {
		return src, fmt.Errorf("--%s and the --s3-* flags name two different sinks: give one", flagDir)
	}
	cluster := lazyClient(o)

	var pub evidence.Published
	if len(keys) == 0 || (!dirGiven && !s3Given) {
		kc, err := cluster()
		if err != nil {
			return src, err
		}
		if pub, err = f.published(ctx, kc); err != nil {
			return src, err
		}
		src.cluster = pub.Cluster
	}
	if len(keys) == 0 {
		keys = pub.Keys
	}
	if len(keys) == 0 {
		return src, fmt.Errorf("ConfigMap %s/%s publishes no public key to verify the evidence with: give --%s",
			f.phiguardNamespace, f.configMap, flagPublicKey)
	}
	src.keys = keys
	src.sink, err = f.openSink(ctx, cmd, pub, cluster)
	return src, err
}

// s3FlagsGiven says whether any flag that chooses an S3 bucket was given.
func s3FlagsGiven(cmd *cobra.Command) bool {
	for _, name := range s3FlagNames {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// lazyClient returns a function that connects to the cluster the first time
// it is called, and returns the same client after.
func lazyClient(o *Options) func() (client.Client, error) {
	var c client.Client
	return func() (client.Client, error) {
		if c != nil {
			return c, nil
		}
		var err error
		c, err = o.Client()
		return c, err
	}
}

// openSink opens the sink --dir or the --s3-* flags name, or else the one
// the manager published in pub.
func (f *evidenceSourceFlags) openSink(ctx context.Context, cmd *cobra.Command, pub evidence.Published,
	cluster func() (client.Client, error)) (evidence.Sink, error) {
	switch {
	case f.dir != "":
		return openDirSink(f.dir, "")
	case s3FlagsGiven(cmd):
		s3 := evidence.S3Options{}
		if pub.Sink == evidence.SinkS3 {
			s3 = pub.S3
		}
		f.override(cmd, &s3)
		return f.openS3Sink(ctx, s3, cluster)
	case pub.Sink == evidence.SinkDir:
		return openDirSink(pub.Dir, fmt.Sprintf("the directory ConfigMap %s/%s publishes", f.phiguardNamespace, f.configMap))
	case pub.Sink == evidence.SinkS3:
		return f.openS3Sink(ctx, pub.S3, cluster)
	default:
		return nil, fmt.Errorf("ConfigMap %s/%s publishes evidence sink %q, which is neither %q nor %q: phiguard keeps no evidence there (the manager's --evidence-sink)",
			f.phiguardNamespace, f.configMap, pub.Sink, evidence.SinkDir, evidence.SinkS3)
	}
}

// published reads the manager's evidence ConfigMap.
func (f *evidenceSourceFlags) published(ctx context.Context, c client.Client) (evidence.Published, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: f.phiguardNamespace, Name: f.configMap}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return evidence.Published{}, fmt.Errorf("ConfigMap %s/%s, where phiguard publishes its evidence sink and keys, does not exist: "+
				"is the manager's evidence trail on, and does it run in %s (--%s)? To read evidence without it, give --%s or --%s, and --%s",
				f.phiguardNamespace, f.configMap, f.phiguardNamespace, flagPhiguardNS, flagDir, flagS3Bucket, flagPublicKey)
		}
		return evidence.Published{}, fmt.Errorf("reading ConfigMap %s/%s: %w", f.phiguardNamespace, f.configMap, err)
	}
	pub, err := evidence.ParsePublished(cm.Data)
	if err != nil {
		return pub, fmt.Errorf("ConfigMap %s/%s: %w", f.phiguardNamespace, f.configMap, err)
	}
	return pub, nil
}

// override sets the S3 options whose flags were given.
func (f *evidenceSourceFlags) override(cmd *cobra.Command, s3 *evidence.S3Options) {
	changed := cmd.Flags().Changed
	if changed(flagS3Endpoint) {
		s3.Endpoint = f.s3.Endpoint
	}
	if changed(flagS3Bucket) {
		s3.Bucket = f.s3.Bucket
	}
	if changed(flagS3Prefix) {
		s3.Prefix = f.s3.Prefix
	}
	if changed(flagS3Region) {
		s3.Region = f.s3.Region
	}
	if changed(flagS3PathStyle) {
		s3.PathStyle = f.s3.PathStyle
	}
}

// openS3Sink returns a sink reading the bucket s3 names with the
// credentials of --s3-credentials-secret or of the environment.
func (f *evidenceSourceFlags) openS3Sink(ctx context.Context, s3 evidence.S3Options, cluster func() (client.Client, error)) (evidence.Sink, error) {
	creds := objectlock.Credentials{
		AccessKeyID:     os.Getenv(envAccessKeyID),
		SecretAccessKey: os.Getenv(envSecretAccessKey),
		SessionToken:    os.Getenv(envSessionToken),
	}
	if f.s3Credentials != "" {
		c, err := cluster()
		if err != nil {
			return nil, err
		}
		var secret corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: f.phiguardNamespace, Name: f.s3Credentials}, &secret); err != nil {
			return nil, fmt.Errorf("reading the S3 credentials of Secret %s/%s: %w", f.phiguardNamespace, f.s3Credentials, err)
		}
		if creds, err = objectlock.CredentialsFromSecret(&secret); err != nil {
			return nil, err
		}
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, fmt.Errorf("no S3 credentials to read bucket %q with: set %s and %s (and %s for temporary ones), or name a Secret with --%s",
			s3.Bucket, envAccessKeyID, envSecretAccessKey, envSessionToken, flagS3Credentials)
	}
	s3.AccessKeyID, s3.SecretAccessKey, s3.SessionToken = creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken
	sink, err := evidence.NewS3Sink(s3)
	if err != nil {
		return nil, fmt.Errorf("reading the evidence: %w", err)
	}
	return sink, nil
}

// openDirSink returns a sink reading dir, which must exist: a directory
// sink would otherwise create it, and find no evidence in it. published
// names where dir comes from, when the manager published it.
func openDirSink(dir, published string) (evidence.Sink, error) {
	info, err := os.Stat(dir)
	switch {
	case err != nil && published != "":
		return nil, fmt.Errorf("reading %s, %s: %w; where the manager runs elsewhere, copy the directory with kubectl cp and give --%s",
			published, dir, err, flagDir)
	case err != nil:
		return nil, fmt.Errorf("reading the evidence directory: %w", err)
	case !info.IsDir():
		return nil, fmt.Errorf("evidence directory %s is not a directory", dir)
	}
	sink, err := evidence.NewDirSink(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the evidence: %w", err)
	}
	return sink, nil
}

// readPublicKeyFiles reads the Ed25519 public keys of files, by KeyID.
func readPublicKeyFiles(files []string) (evidence.PublicKeys, error) {
	keys := evidence.PublicKeys{}
	for _, file := range files {
		data, err := os.ReadFile(file) // #nosec G304 -- a file the user names
		if err != nil {
			return nil, fmt.Errorf("reading --%s: %w", flagPublicKey, err)
		}
		found, err := parsePublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %w", flagPublicKey, file, err)
		}
		for _, k := range found {
			keys[evidence.KeyIDOf(k)] = k
		}
	}
	return keys, nil
}

// parsePublicKeys reads Ed25519 public keys: PEM blocks of type PUBLIC KEY
// (PKIX, as `openssl pkey -pubout` writes them), the published ConfigMap's
// publicKeys (a JSON object of base64 keys by KeyID), or else one base64 key
// (32 bytes) per line.
func parsePublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var (
		keys []ed25519.PublicKey
		err  error
	)
	switch {
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")):
		keys, err = parseJSONPublicKeys(data)
	case bytes.Contains(data, []byte("-----BEGIN")):
		keys, err = parsePEMPublicKeys(data)
	default:
		keys, err = parseBase64PublicKeys(data)
	}
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no public key in it")
	}
	return keys, nil
}

// parseJSONPublicKeys reads a JSON object of base64 Ed25519 public keys by
// KeyID, as the published ConfigMap's publicKeys holds them.
func parseJSONPublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var byID map[string]string
	if err := json.Unmarshal(data, &byID); err != nil {
		return nil, fmt.Errorf("reading a JSON object of keys by id: %w", err)
	}
	keys := make([]ed25519.PublicKey, 0, len(byID))
	for id, k := range byID {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != ed25519.PublicKeySize || evidence.KeyIDOf(raw) != id {
			return nil, fmt.Errorf("key %s is not a base64 Ed25519 public key whose id is %s", id, id)
		}
		keys = append(keys, raw)
	}
	return keys, nil
}

// parsePEMPublicKeys reads PEM blocks of type PUBLIC KEY holding PKIX
// Ed25519 public keys.
func parsePEMPublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return keys, nil
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("a PEM block of type %q, expected PUBLIC KEY", block.Type)
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("reading a PEM public key: %w", err)
		}
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T public key, expected Ed25519", key)
		}
		keys = append(keys, pub)
	}
}

// parseBase64PublicKeys reads one base64 Ed25519 public key (32 bytes) per
// line, skipping blank lines.
func parseBase64PublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("line %d is not a base64 Ed25519 public key (%d bytes)", n+1, ed25519.PublicKeySize)
		}
		keys = append(keys, raw)
	}
	return keys, nil
}

// parseTimeFlag reads --from or --to: RFC 3339, or a date (YYYY-MM-DD, UTC)
// that stands for its start, or with endOfDay for its last instant.
func parseTimeFlag(name, value string, endOfDay bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
		return t.UTC(), nil
	}
	day, err := time.Parse(time.DateOnly, value)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q is neither an RFC 3339 time such as 2026-03-01T08:00:00Z nor a date such as 2026-03-01", name, value)
	}
	if endOfDay {
		return day.AddDate(0, 0, 1).Add(-time.Nanosecond), nil
	}
	return day, nil
}

// window reads --from and --to; an empty one is def (zero: unbounded).
func window(from, to string, defFrom, defTo time.Time) (time.Time, time.Time, error) {
	f, t := defFrom, defTo
	var err error
	if from != "" {
		if f, err = parseTimeFlag("from", from, false); err != nil {
			return f, t, err
		}
	}
	if to != "" {
		if t, err = parseTimeFlag("to", to, true); err != nil {
			return f, t, err
		}
	}
	if !f.IsZero() && !t.IsZero() && t.Before(f) {
		return f, t, fmt.Errorf("--to %s is before --from %s", t.Format(time.RFC3339Nano), f.Format(time.RFC3339Nano))
	}
	return f, t, nil
}

// timeFlagHelp explains the form of --from and --to.
const timeFlagHelp = "RFC 3339 (2026-03-01T08:00:00Z) or a date in UTC (2026-03-01: from its start, to its end)"

func newEvidenceCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "Verify phiguard's evidence trail, and export it as JSON or OSCAL assessment results",
		Long: "phiguard's manager records evidence (every change of a safeguard's result, every action, admission\n" +
			"denial, decision, emergency access and a daily attestation of each workload) in hash-chained records,\n" +
			"sealed in segments whose checkpoints it signs, and stores them in a local directory or an S3 bucket\n" +
			"with Object Lock. It publishes where, and the public keys that verify them, in ConfigMap\n" +
			evidence.ConfigMapName + " in its namespace. verify checks the chain; export writes its records for auditors.",
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newEvidenceVerifyCommand(o), newEvidenceExportCommand(o))
	return cmd
}

func newEvidenceVerifyCommand(o *Options) *cobra.Command {
	var src evidenceSourceFlags
	var from, to string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the evidence chain: every record's hash and every segment's signed checkpoint",
		Long: "verify walks each chain (shard) of the evidence trail and reports the first broken link: an edited,\n" +
			"removed or reordered record, a removed, reordered, truncated or overwritten segment, or a checkpoint\n" +
			"that a published key did not sign. It prints one line per shard (segments, records in the window, the\n" +
			"first and last record's time, the chain head and its record number), then \"chain intact\" or\n" +
			"\"BROKEN:\" and where; a broken chain makes it exit non-zero.\n\n" +
			"The sink and the public keys come from ConfigMap " + evidence.ConfigMapName + " in --phiguard-namespace;\n" +
			"--dir or --s3-* read other evidence (such as a copy), and --public-key verifies with given keys, so that\n" +
			"with both the cluster is not read at all.",
		Example: "  kubectl phiguard evidence verify\n" +
			"  kubectl phiguard evidence verify --from 2026-01-01 --to 2026-03-31 -o json\n" +
			"  kubectl cp phiguard-system/$POD:/var/lib/phiguard/evidence ./evidence\n" +
			"  kubectl phiguard evidence verify --dir ./evidence --public-key evidence.pub\n" +
			"  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... kubectl phiguard evidence verify --s3-bucket audit --s3-prefix phiguard",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.CheckOutput(OutputTable, OutputJSON, OutputYAML); err != nil {
				return err
			}
			fromT, toT, err := window(from, to, time.Time{}, time.Time{})
			if err != nil {
				return err
			}
			ev, err := src.open(cmd.Context(), cmd, o)
			if err != nil {
				return err
			}
			rep, err := evidence.Verify(cmd.Context(), ev.sink, evidence.VerifyOptions{Keys: ev.keys, From: fromT, To: toT})
			if err != nil {
				return fmt.Errorf("verifying the evidence in %s: %w", ev.sink.Location(), err)
			}
			rep.Shards = nonNil(rep.Shards)
			if err := o.Print(rep, func(w io.Writer, _ bool) error {
				return renderVerify(w, rep, ev.sink.Location())
			}); err != nil {
				return err
			}
			if rep.Broken != nil {
				return fmt.Errorf("evidence in %s: %w", ev.sink.Location(), rep.Broken)
			}
			return nil
		},
	}
	src.add(cmd)
	cmd.Flags().StringVar(&from, "from", "", "Check the records from this time on, "+timeFlagHelp+
		"; earlier segments are checked by their signed checkpoints only. Default: the first record.")
	cmd.Flags().StringVar(&to, "to", "", "Check the records up to this time, "+timeFlagHelp+". Default: the last record.")
	return cmd
}

// renderVerify writes verify's table: a line per shard, then whether the
// chain holds.
func renderVerify(w io.Writer, rep evidence.Report, location string) error {
	if len(rep.Shards) == 0 {
		if _, err := fmt.Fprintf(w, "No evidence found in %s.\n", location); err != nil {
			return fmt.Errorf("writing the result: %w", err)
		}
		return nil
	}
	table := [][]string{{"SHARD", "SEGMENTS", "RECORDS", "FIRST", "LAST", "HEAD", "SEQ"}}
	for _, s := range rep.Shards {
		table = append(table, []string{s.Shard, strconv.Itoa(s.Segments), strconv.Itoa(s.Records),
			formatRecordTime(s.First), formatRecordTime(s.Last), report.OrNone(shortHead(s.Head)), strconv.FormatUint(s.Seq, 10)})
	}
	if err := report.Columns(w, table...); err != nil {
		return err
	}
	verdict := "chain intact"
	if rep.Broken != nil {
		// The break quotes the segment, which need not be well formed.
		verdict = "BROKEN: " + report.OneLine(rep.Broken.Error())
	}
	if _, err := fmt.Fprintln(w, verdict); err != nil {
		return fmt.Errorf("writing the result: %w", err)
	}
	return nil
}

// formatRecordTime writes a record's time in RFC 3339, UTC, or "-".
func formatRecordTime(t time.Time) string {
	if t.IsZero() {
		return report.None
	}
	return t.UTC().Format(time.RFC3339)
}

// shortHead is the start of a chain head, enough to compare by eye.
func shortHead(head string) string {
	if len(head) > headDigits {
		return head[:headDigits]
	}
	return head
}

// exportFlags are export's own flags.
type exportFlags struct {
	src         evidenceSourceFlags
	from, to    string
	format      string
	outputFile  string
	allowBroken bool
}

func newEvidenceExportCommand(o *Options) *cobra.Command {
	f := &exportFlags{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the evidence records of a window as JSON or as OSCAL assessment results",
		Long: "export verifies the evidence chain over the window first, and refuses to export a broken one unless\n" +
			"--allow-broken. It then writes the records whose time is in [--from, --to] (by default the last 30\n" +
			"days) of the workloads of a namespace (-n, or the context's), or every record with -A, oldest first:\n" +
			"--format json writes {cluster, namespace, from, to, records}; --format oscal writes an OSCAL 1.0.6\n" +
			"assessment-results document with an observation per record and a finding per safeguard's standing.\n" +
			"The sink and the keys are found as evidence verify finds them.",
		Example: "  kubectl phiguard evidence export -n clinic --from 2026-01-01 --to 2026-03-31\n" +
			"  kubectl phiguard evidence export -A --format oscal --output-file assessment-results.json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Output != OutputTable {
				return fmt.Errorf("export writes --format %s or %s; -o does not apply to it", ExportJSON, ExportOSCAL)
			}
			return f.run(cmd, o, time.Now().UTC())
		},
	}
	f.src.add(cmd)
	cmd.Flags().StringVar(&f.from, "from", "", "Export the records from this time on, "+timeFlagHelp+". Default: 30 days ago.")
	cmd.Flags().StringVar(&f.to, "to", "", "Export the records up to this time, "+timeFlagHelp+". Default: now.")
	cmd.Flags().StringVar(&f.format, "format", ExportJSON, "Format: json, or oscal (OSCAL 1.0.6 assessment results, JSON).")
	cmd.Flags().StringVar(&f.outputFile, "output-file", "", "Write the export to this file instead of standard output.")
	cmd.Flags().BoolVar(&f.allowBroken, flagAllowBroken, false,
		"Export even when the chain is broken (JSON notes the break in \"broken\").")
	return cmd
}

// run exports the evidence as of now.
func (f *exportFlags) run(cmd *cobra.Command, o *Options, now time.Time) error {
	if f.format != ExportJSON && f.format != ExportOSCAL {
		return fmt.Errorf("unknown export format %q: use %s or %s", f.format, ExportJSON, ExportOSCAL)
	}
	from, to, err := window(f.from, f.to, now.Add(-defaultExportWindow), now)
	if err != nil {
		return err
	}
	ns, err := o.ListNamespace()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	ev, err := f.src.open(ctx, cmd, o)
	if err != nil {
		return err
	}
	rep, err := evidence.Verify(ctx, ev.sink, evidence.VerifyOptions{Keys: ev.keys, From: from, To: to})
	if err != nil {
		return fmt.Errorf("verifying the evidence in %s: %w", ev.sink.Location(), err)
	}
	if err := f.checkBroken(o, rep.Broken); err != nil {
		return err
	}
	records, err := evidence.ReadRecords(ctx, ev.sink, evidence.ReadOptions{From: from, To: to, Namespace: ns})
	if err != nil {
		return fmt.Errorf("reading the evidence in %s: %w", ev.sink.Location(), err)
	}
	cluster := ev.cluster
	if cluster == "" && len(records) > 0 {
		cluster = records[0].Cluster
	}
	data, err := f.encode(EvidenceExport{Cluster: cluster, Namespace: ns, From: from, To: to, Broken: rep.Broken, Records: nonNil(records)}, now)
	if err != nil {
		return err
	}
	return f.write(o, data, len(records), from, to)
}

// checkBroken refuses a broken chain, or with --allow-broken warns of it.
func (f *exportFlags) checkBroken(o *Options, broken *evidence.Break) error {
	if broken == nil {
		return nil
	}
	if !f.allowBroken {
		return fmt.Errorf("not exporting evidence that does not verify: %w; it may have been tampered with "+
			"(`kubectl phiguard evidence verify` shows every chain), or give --%s to export it all the same",
			broken, flagAllowBroken)
	}
	if _, err := fmt.Fprintf(o.ErrOut, "warning: %v; exporting all the same (--%s)\n", broken, flagAllowBroken); err != nil {
		return fmt.Errorf("writing a warning: %w", err)
	}
	return nil
}

// encode writes e in --format, as generated at now.
func (f *exportFlags) encode(e EvidenceExport, now time.Time) ([]byte, error) {
	if f.format == ExportOSCAL {
		return evidence.OSCAL(e.Records, evidence.OSCALOptions{
			Title: exportTitle(e.Namespace), From: e.From, To: e.To, Cluster: e.Cluster, Generated: now, Version: buildVersion(),
		})
	}
	return encodeExport(e)
}

// write writes the export of n records in [from, to] to --output-file, or
// else to standard output.
func (f *exportFlags) write(o *Options, data []byte, n int, from, to time.Time) error {
	if f.outputFile == "" {
		if _, err := o.Out.Write(data); err != nil {
			return fmt.Errorf("writing the export: %w", err)
		}
		return nil
	}
	if err := os.WriteFile(f.outputFile, data, 0o600); err != nil {
		return fmt.Errorf("writing the export: %w", err)
	}
	if _, err := fmt.Fprintf(o.Out, "Exported %d records from %s to %s to %s.\n", n,
		from.Format(time.RFC3339), to.Format(time.RFC3339), f.outputFile); err != nil {
		return fmt.Errorf("writing the result: %w", err)
	}
	return nil
}

// encodeExport writes the JSON export, indented, with "<", ">" and "&" in
// messages as they are.
func encodeExport(e EvidenceExport) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("encoding the export as JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// exportTitle is the OSCAL document's title.
func exportTitle(ns string) string {
	if ns == "" {
		return "phiguard evidence"
	}
	return "phiguard evidence of namespace " + ns
}

// buildVersion is the version the plugin was built as, or "" (unknown) for
// a development build.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "(devel)" {
		return ""
	}
	return info.Main.Version
}
