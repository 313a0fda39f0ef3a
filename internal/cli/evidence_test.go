package cli_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/phiguard/phiguard/internal/cli"
	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/objectstore"
	"github.com/phiguard/phiguard/internal/objectstore/objectstoretest"
)

// Covers kubectl phiguard evidence: verify of an intact chain (table and
// JSON, over a window), of a tampered one (non-zero exit, the break
// printed), without the cluster (--dir and --public-key, PEM or base64, a
// wrong key), from an S3 bucket (credentials from a Secret or the
// environment); export as JSON (window and namespace, the default window,
// a broken chain refused or exported with --allow-broken) and as OSCAL.

// evidenceCluster is the cluster identity the test chains carry.
const evidenceCluster = "cluster-under-test"

// day1 is when the test chains start.
var day1 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// testChain seals records into segments as the manager's writer does.
type testChain struct {
	sink   evidence.Sink
	signer evidence.Signer
	pub    ed25519.PublicKey
	heads  map[string]evidence.Head
}

// newTestChain returns a chain writing to sink with a fresh key.
func newTestChain(t *testing.T, sink evidence.Sink) *testChain {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testChain{sink: sink, signer: evidence.NewSigner(key), pub: pub, heads: map[string]evidence.Head{}}
}

// newDirChain returns a chain writing to a new directory, and the directory.
func newDirChain(t *testing.T) (*testChain, string) {
	t.Helper()
	dir := t.TempDir()
	sink, err := evidence.NewDirSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	return newTestChain(t, sink), dir
}

// seal stores records as the shard's next segment, sealed a minute after
// the last of them, and returns them as sealed (numbered, chained, hashed).
func (c *testChain) seal(t *testing.T, shard string, records ...evidence.Record) []evidence.Record {
	t.Helper()
	head := c.heads[shard]
	sealedAt := records[len(records)-1].Time.Add(time.Minute)
	data, next, err := evidence.Seal(head, evidenceCluster, shard, fmt.Sprintf("batch-%d", head.Segment+1), records, sealedAt, c.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.sink.Put(t.Context(), evidence.SegmentName(shard, next.Segment), data); err != nil {
		t.Fatal(err)
	}
	c.heads[shard] = next
	return records
}

// keys are the chain's public keys, as the manager publishes them.
func (c *testChain) keys() evidence.PublicKeys {
	return evidence.PublicKeys{evidence.KeyIDOf(c.pub): c.pub}
}

// evidenceRecord is a result record of workload ns/name, or with ns "" an
// action of no workload.
func evidenceRecord(ns, name, message string, at time.Time) evidence.Record {
	r := evidence.Record{Time: at, Kind: evidence.KindAction, Result: "RotatedCertificates", Message: message}
	if ns != "" {
		r = evidence.Record{
			Time: at, Kind: evidence.KindResult, Workload: &evidence.Workload{Namespace: ns, Name: name, UID: ns + "-" + name, Generation: 1},
			Safeguard: "NetworkIsolated", Section: "§164.312(e)(1)", Mode: "Enforce", Result: "True", Reason: "Isolated", Message: message,
		}
	}
	return r
}

// standardChain is the chain most tests read: shard controller with two
// segments (five records, clinic and billing and one of no workload, on
// 1 and 2 March) and shard webhook with one (a clinic record).
type standardChain struct {
	*testChain
	dir        string
	controller []evidence.Record // seq 1..5
	webhook    []evidence.Record // seq 1
}

func newStandardChain(t *testing.T) *standardChain {
	t.Helper()
	c, dir := newDirChain(t)
	s := &standardChain{testChain: c, dir: dir}
	s.controller = append(s.seal(t, "controller",
		evidenceRecord("clinic", "records", "record one", day1),
		evidenceRecord("billing", "ledger", "record two", day1.Add(time.Hour)),
		evidenceRecord("clinic", "records", "record three", day1.Add(2*time.Hour)),
	), s.seal(t, "controller",
		evidenceRecord("clinic", "intake", "record four", day1.Add(24*time.Hour)),
		evidenceRecord("", "", "record five", day1.Add(25*time.Hour)),
	)...)
	s.webhook = s.seal(t, "webhook", evidenceRecord("clinic", "records", "admission one", day1.Add(30*time.Minute)))
	return s
}

// publishEvidence creates namespace ns with the ConfigMap a manager
// publishes for its evidence in it.
func publishEvidence(t *testing.T, ns string, p evidence.Published) {
	t.Helper()
	createNamespace(t, ns)
	data, err := p.Data()
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: evidence.ConfigMapName}, Data: data}
	if err := k8sClient.Create(t.Context(), cm); err != nil {
		t.Fatalf("creating ConfigMap %s/%s: %v", ns, cm.Name, err)
	}
}

// publishDir publishes c's directory and keys in namespace ns.
func publishDir(t *testing.T, ns string, c *standardChain) {
	t.Helper()
	publishEvidence(t, ns, evidence.Published{Cluster: evidenceCluster, Sink: evidence.SinkDir, Dir: c.dir, Keys: c.keys()})
}

// runWith runs kubectl phiguard with args and the kubeconfig file kc, and
// returns what it printed on stdout and on stderr.
func runWith(t *testing.T, kc string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cli.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kc}, args...))
	err := cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// verifyLine is a line of verify's table, laid out for the test chains'
// widths (shard names up to "controller", times RFC 3339, 16-digit heads).
func verifyLine(shard, segments, records, first, last, head, seq string) string {
	return fmt.Sprintf("%-12s%-10s%-9s%-22s%-22s%-18s%s\n", shard, segments, records, first, last, head, seq)
}

// verifyHeader is the first line of verify's table.
var verifyHeader = verifyLine("SHARD", "SEGMENTS", "RECORDS", "FIRST", "LAST", "HEAD", "SEQ")

func rfc3339(t time.Time) string { return t.Format(time.RFC3339) }

func TestEvidenceVerifyIntactChain(t *testing.T) {
	g := NewWithT(t)
	c := newStandardChain(t)
	publishDir(t, "evidence-intact", c)

	out, err := run(t, "evidence", "verify", "--phiguard-namespace", "evidence-intact")
	g.Expect(err).NotTo(HaveOccurred())
	ctl, wh := c.controller[4], c.webhook[0]
	g.Expect(out).To(Equal(verifyHeader +
		verifyLine("controller", "2", "5", rfc3339(day1), rfc3339(day1.Add(25*time.Hour)), ctl.Hash[:16], "5") +
		verifyLine("webhook", "1", "1", rfc3339(day1.Add(30*time.Minute)), rfc3339(day1.Add(30*time.Minute)), wh.Hash[:16], "1") +
		"chain intact\n"))

	// Over a window: the records of 2 March only, the segments before
	// anchored by their checkpoints.
	out, err = run(t, "evidence", "verify", "--phiguard-namespace", "evidence-intact", "--from", "2026-03-02", "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	var rep evidence.Report
	g.Expect(json.Unmarshal([]byte(out), &rep)).To(Succeed())
	g.Expect(rep).To(Equal(evidence.Report{Shards: []evidence.ShardReport{
		{Shard: "controller", Segments: 2, Records: 2, First: day1.Add(24 * time.Hour), Last: day1.Add(25 * time.Hour), Head: ctl.Hash, Seq: 5},
		{Shard: "webhook", Segments: 1, Records: 0, Head: wh.Hash, Seq: 1},
	}}))

	_, err = run(t, "evidence", "verify", "--phiguard-namespace", "evidence-intact", "--from", "2026-03-02", "--to", "2026-03-01")
	g.Expect(err).To(MatchError("--to 2026-03-01T23:59:59.999999999Z is before --from 2026-03-02T00:00:00Z"))
	_, err = run(t, "evidence", "verify", "--phiguard-namespace", "evidence-intact", "--from", "March 1")
	g.Expect(err).To(MatchError(`--from "March 1" is neither an RFC 3339 time such as 2026-03-01T08:00:00Z nor a date such as 2026-03-01`))
}

// tamper replaces old by edited (of the same length) in a segment file, as
// someone with write access to the directory could.
func tamper(t *testing.T, file, old, edited string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != len(edited) || !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not hold %q, or %q is not an edit of it", file, old, edited)
	}
	if err := os.Remove(file); err != nil { // segments are read-only
		t.Fatal(err)
	}
	if err := os.WriteFile(file, bytes.Replace(data, []byte(old), []byte(edited), 1), 0o440); err != nil {
		t.Fatal(err)
	}
}

func TestEvidenceVerifyTamperedChain(t *testing.T) {
	g := NewWithT(t)
	c := newStandardChain(t)
	publishDir(t, "evidence-tampered", c)
	tamper(t, filepath.Join(c.dir, filepath.FromSlash(evidence.SegmentName("controller", 2))), "record four", "record fOur")
	brk := "evidence chain controller broken at segments/controller/000000000002.jsonl record 4: hash does not match the content: the record was edited"

	out, err := run(t, "evidence", "verify", "--phiguard-namespace", "evidence-tampered")
	g.Expect(err).To(MatchError("evidence in dir:" + c.dir + ": " + brk))
	g.Expect(out).To(Equal(verifyHeader +
		verifyLine("controller", "1", "3", rfc3339(day1), rfc3339(day1.Add(2*time.Hour)), c.controller[2].Hash[:16], "3") +
		verifyLine("webhook", "1", "1", rfc3339(day1.Add(30*time.Minute)), rfc3339(day1.Add(30*time.Minute)), c.webhook[0].Hash[:16], "1") +
		"BROKEN: " + brk + "\n"))

	// -o json prints the break, and fails all the same.
	out, err = run(t, "evidence", "verify", "--phiguard-namespace", "evidence-tampered", "-o", "json")
	g.Expect(err).To(HaveOccurred())
	var rep evidence.Report
	g.Expect(json.Unmarshal([]byte(out), &rep)).To(Succeed())
	wantBreak := &evidence.Break{Shard: "controller", Segment: "segments/controller/000000000002.jsonl", Seq: 4,
		Problem: "hash does not match the content: the record was edited"}
	g.Expect(rep.Broken).To(Equal(wantBreak))

	// export refuses a broken chain, saying why; --allow-broken exports it
	// with the break noted.
	exportArgs := []string{"evidence", "export", "--phiguard-namespace", "evidence-tampered", "-A", "--from", "2026-03-01", "--to", "2026-03-02"}
	out, stderr, err := runWith(t, kubeconfig, exportArgs...)
	g.Expect(err).To(MatchError("not exporting evidence that does not verify: " + brk +
		"; it may have been tampered with (`kubectl phiguard evidence verify` shows every chain), or give --allow-broken to export it all the same"))
	g.Expect(out).To(BeEmpty())
	g.Expect(stderr).To(BeEmpty())

	out, stderr, err = runWith(t, kubeconfig, append(exportArgs, "--allow-broken")...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stderr).To(Equal("warning: " + brk + "; exporting all the same (--allow-broken)\n"))
	var exp cli.EvidenceExport
	g.Expect(json.Unmarshal([]byte(out), &exp)).To(Succeed())
	g.Expect(exp.Broken).To(Equal(wantBreak))
	g.Expect(messages(exp.Records)).To(Equal([]string{"record one", "admission one", "record two", "record three", "record fOur", "record five"}))
}

// messages are the records' messages, in order.
func messages(records []evidence.Record) []string {
	out := make([]string, 0, len(records))
	for _, r := range records {
		out = append(out, r.Message)
	}
	return out
}

// unreachableKubeconfig writes a kubeconfig whose server refuses every
// connection, so that a command that reads the cluster fails.
func unreachableKubeconfig(t *testing.T) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	kc.AuthInfos["nowhere"] = &clientcmdapi.AuthInfo{Token: "none"}
	kc.Contexts["nowhere"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: "nowhere", Namespace: "clinic"}
	kc.CurrentContext = "nowhere"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// The forms of a --public-key file.
const (
	keyBase64 = "base64"
	keyPEM    = "PEM"
	keyJSON   = "JSON"
)

// writeKeyFile writes pub to a file in form: base64, PEM (PKIX), or the JSON
// the published ConfigMap's publicKeys holds.
func writeKeyFile(t *testing.T, pub ed25519.PublicKey, form string) string {
	t.Helper()
	data := []byte(base64.StdEncoding.EncodeToString(pub) + "\n")
	switch form {
	case keyPEM:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		data = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	case keyJSON:
		published, err := evidence.Published{Keys: evidence.PublicKeys{evidence.KeyIDOf(pub): pub}}.Data()
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(published["publicKeys"])
	}
	path := filepath.Join(t.TempDir(), "evidence.pub")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEvidenceVerifyWithoutTheCluster(t *testing.T) {
	g := NewWithT(t)
	c := newStandardChain(t)
	offline := unreachableKubeconfig(t)
	intact := verifyHeader +
		verifyLine("controller", "2", "5", rfc3339(day1), rfc3339(day1.Add(25*time.Hour)), c.controller[4].Hash[:16], "5") +
		verifyLine("webhook", "1", "1", rfc3339(day1.Add(30*time.Minute)), rfc3339(day1.Add(30*time.Minute)), c.webhook[0].Hash[:16], "1") +
		"chain intact\n"

	for _, form := range []string{keyPEM, keyBase64, keyJSON} {
		out, _, err := runWith(t, offline, "evidence", "verify", "--dir", c.dir, "--public-key", writeKeyFile(t, c.pub, form))
		g.Expect(err).NotTo(HaveOccurred(), form)
		g.Expect(out).To(Equal(intact), form)
	}

	// The export, too: -n from the kubeconfig's context (clinic), the
	// cluster's identity from the records.
	out, _, err := runWith(t, offline, "evidence", "export", "--dir", c.dir, "--public-key", writeKeyFile(t, c.pub, keyPEM), "--from", "2026-03-01", "--to", "2026-03-02")
	g.Expect(err).NotTo(HaveOccurred())
	var exp cli.EvidenceExport
	g.Expect(json.Unmarshal([]byte(out), &exp)).To(Succeed())
	g.Expect(exp.Cluster).To(Equal(evidenceCluster))
	g.Expect(exp.Namespace).To(Equal("clinic"))
	g.Expect(messages(exp.Records)).To(Equal([]string{"record one", "admission one", "record three", "record four"}))

	// Another key did not sign these checkpoints.
	otherPub, _, err := ed25519.GenerateKey(rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	out, _, err = runWith(t, offline, "evidence", "verify", "--dir", c.dir, "--public-key", writeKeyFile(t, otherPub, keyBase64))
	brk := fmt.Sprintf("evidence chain controller broken at segments/controller/000000000001.jsonl: checkpoint signed with key %q, which is not among the published keys",
		evidence.KeyIDOf(c.pub))
	g.Expect(err).To(MatchError("evidence in dir:" + c.dir + ": " + brk))
	g.Expect(out).To(HaveSuffix("BROKEN: " + brk + "\n"))

	// Without keys, the published ones are needed: the cluster is read.
	_, _, err = runWith(t, offline, "evidence", "verify", "--dir", c.dir, "--request-timeout", "5s")
	g.Expect(err).To(MatchError(HavePrefix("reading ConfigMap phiguard-system/phiguard-evidence: ")))

	// A directory that does not exist is not created (and found empty).
	missing := filepath.Join(c.dir, "missing")
	_, _, err = runWith(t, offline, "evidence", "verify", "--dir", missing, "--public-key", writeKeyFile(t, c.pub, keyPEM))
	g.Expect(err).To(MatchError(HavePrefix("reading the evidence directory: stat " + missing + ": no such file or directory")))
	g.Expect(missing).NotTo(BeADirectory())

	notAKey := filepath.Join(t.TempDir(), "not-a-key")
	g.Expect(os.WriteFile(notAKey, []byte("\n"+base64.StdEncoding.EncodeToString([]byte("too short"))+"\n"), 0o600)).To(Succeed())
	_, _, err = runWith(t, offline, "evidence", "verify", "--dir", c.dir, "--public-key", notAKey)
	g.Expect(err).To(MatchError("--public-key " + notAKey + ": line 2 is not a base64 Ed25519 public key (32 bytes)"))
}

func TestEvidenceExportJSON(t *testing.T) {
	g := NewWithT(t)
	c := newStandardChain(t)
	publishDir(t, "evidence-export", c)
	export := func(args ...string) cli.EvidenceExport {
		t.Helper()
		out, err := run(t, append([]string{"evidence", "export", "--phiguard-namespace", "evidence-export"}, args...)...)
		g.Expect(err).NotTo(HaveOccurred())
		var exp cli.EvidenceExport
		g.Expect(json.Unmarshal([]byte(out), &exp)).To(Succeed())
		return exp
	}

	// Namespace clinic, on 1 March: a date --to is the whole day.
	exp := export("-n", "clinic", "--from", "2026-03-01T08:00:00Z", "--to", "2026-03-01")
	g.Expect(exp).To(Equal(cli.EvidenceExport{
		Cluster: evidenceCluster, Namespace: "clinic",
		From: day1, To: time.Date(2026, 3, 1, 23, 59, 59, 999999999, time.UTC),
		Records: []evidence.Record{c.controller[0], c.webhook[0], c.controller[2]},
	}))

	// From after the first record, every namespace, and records of no
	// workload.
	exp = export("-A", "--from", "2026-03-01T08:00:01Z", "--to", "2026-03-02T09:00:00Z")
	g.Expect(exp.Namespace).To(BeEmpty())
	g.Expect(exp.Records).To(Equal([]evidence.Record{c.webhook[0], c.controller[1], c.controller[2], c.controller[3], c.controller[4]}))

	// No -n: the context's namespace (default), where no workload has any.
	exp = export("--from", "2026-03-01", "--to", "2026-03-02")
	g.Expect(exp.Namespace).To(Equal("default"))
	g.Expect(exp.Records).To(BeEmpty())

	_, err := run(t, "evidence", "export", "--phiguard-namespace", "evidence-export", "--format", "csv")
	g.Expect(err).To(MatchError(`unknown export format "csv": use json or oscal`))
}

func TestEvidenceExportDefaultWindow(t *testing.T) {
	g := NewWithT(t)
	c, dir := newDirChain(t)
	now := time.Now().UTC()
	recent := c.seal(t, "controller",
		evidenceRecord("clinic", "records", "forty days ago", now.Add(-40*24*time.Hour)),
		evidenceRecord("clinic", "records", "an hour ago", now.Add(-time.Hour)),
	)
	before := time.Now().UTC()
	out, _, err := runWith(t, unreachableKubeconfig(t), "evidence", "export", "--dir", dir, "--public-key", writeKeyFile(t, c.pub, keyBase64), "-A")
	after := time.Now().UTC()
	g.Expect(err).NotTo(HaveOccurred())
	var exp cli.EvidenceExport
	g.Expect(json.Unmarshal([]byte(out), &exp)).To(Succeed())
	g.Expect(exp.Records).To(Equal(recent[1:]))
	g.Expect(exp.To).To(BeTemporally(">=", before))
	g.Expect(exp.To).To(BeTemporally("<=", after))
	g.Expect(exp.To.Sub(exp.From)).To(Equal(30 * 24 * time.Hour))
}

// oscalDocument is the part of an OSCAL assessment-results document the
// test reads.
type oscalDocument struct {
	AssessmentResults struct {
		Metadata struct {
			Title        string `json:"title"`
			LastModified string `json:"last-modified"`
		} `json:"metadata"`
		Results []struct {
			Start        string `json:"start"`
			End          string `json:"end"`
			Observations []struct {
				Props []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"props"`
			} `json:"observations"`
		} `json:"results"`
	} `json:"assessment-results"`
}

func TestEvidenceExportOSCAL(t *testing.T) {
	g := NewWithT(t)
	c := newStandardChain(t)
	publishDir(t, "evidence-oscal", c)
	file := filepath.Join(t.TempDir(), "assessment-results.json")

	before := time.Now().UTC().Truncate(time.Second)
	out, err := run(t, "evidence", "export", "--phiguard-namespace", "evidence-oscal", "-n", "clinic",
		"--from", "2026-03-01", "--to", "2026-03-02", "--format", "oscal", "--output-file", file)
	after := time.Now().UTC()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal("Exported 4 records from 2026-03-01T00:00:00Z to 2026-03-02T23:59:59Z to " + file + ".\n"))

	data, err := os.ReadFile(file)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Valid(data)).To(BeTrue())
	var doc oscalDocument
	g.Expect(json.Unmarshal(data, &doc)).To(Succeed())
	ar := doc.AssessmentResults
	g.Expect(ar.Metadata.Title).To(Equal("phiguard evidence of namespace clinic"))
	generated, err := time.Parse(time.RFC3339Nano, ar.Metadata.LastModified)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(generated).To(BeTemporally(">=", before))
	g.Expect(generated).To(BeTemporally("<=", after))
	g.Expect(ar.Results).To(HaveLen(1))
	g.Expect(ar.Results[0].Start).To(Equal("2026-03-01T00:00:00Z"))
	g.Expect(ar.Results[0].End).To(Equal("2026-03-02T23:59:59.999999999Z"))

	// An observation per record, oldest first, each naming its record's hash.
	var hashes []string
	for _, o := range ar.Results[0].Observations {
		for _, p := range o.Props {
			if p.Name == "hash" {
				hashes = append(hashes, p.Value)
			}
		}
	}
	g.Expect(hashes).To(Equal([]string{c.controller[0].Hash, c.webhook[0].Hash, c.controller[2].Hash, c.controller[3].Hash}))

	_, err = run(t, "evidence", "export", "--phiguard-namespace", "evidence-oscal", "-o", "json")
	g.Expect(err).To(MatchError("export writes --format json or oscal; -o does not apply to it"))
}

func TestEvidenceVerifyS3(t *testing.T) {
	g := NewWithT(t)
	srv := objectstoretest.Start(t)
	g.Expect(srv.CreateBucket(t.Context(), "evidence", &objectstore.Lock{Mode: "COMPLIANCE", Days: 1})).To(Succeed())
	where := evidence.S3Options{Endpoint: srv.Endpoint, Bucket: "evidence", Prefix: "phiguard", Region: srv.Region, PathStyle: true}
	writer := where
	writer.AccessKeyID, writer.SecretAccessKey = srv.AccessKey, srv.SecretKey
	sink, err := evidence.NewS3Sink(writer)
	g.Expect(err).NotTo(HaveOccurred())
	c := newTestChain(t, sink)
	records := c.seal(t, "controller",
		evidenceRecord("clinic", "records", "record one", day1),
		evidenceRecord("clinic", "records", "record two", day1.Add(time.Minute)),
	)

	const ns = "evidence-s3"
	publishEvidence(t, ns, evidence.Published{Cluster: evidenceCluster, Sink: evidence.SinkS3, S3: where, Keys: c.keys()})
	g.Expect(k8sClient.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "evidence-reader"},
		Data:       map[string][]byte{"accessKeyID": []byte(srv.AccessKey), "secretAccessKey": []byte(srv.SecretKey + "\n")},
	})).To(Succeed())
	for _, env := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(env, "")
	}
	intact := verifyHeader +
		verifyLine("controller", "1", "2", rfc3339(day1), rfc3339(day1.Add(time.Minute)), records[1].Hash[:16], "2") +
		"chain intact\n"

	out, err := run(t, "evidence", "verify", "--phiguard-namespace", ns, "--s3-credentials-secret", "evidence-reader")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal(intact))

	_, err = run(t, "evidence", "verify", "--phiguard-namespace", ns)
	g.Expect(err).To(MatchError(`no S3 credentials to read bucket "evidence" with: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ` +
		`(and AWS_SESSION_TOKEN for temporary ones), or name a Secret with --s3-credentials-secret`))

	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	out, err = run(t, "evidence", "verify", "--phiguard-namespace", ns)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal(intact))

	// A flag overrides one of the published options: another prefix holds
	// nothing.
	out, err = run(t, "evidence", "verify", "--phiguard-namespace", ns, "--s3-prefix", "elsewhere")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal("No evidence found in s3://evidence/elsewhere at " + srv.Endpoint + ".\n"))
}
