package evidence

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	slashpath "path"
	"strconv"
	"strings"
	"time"
)

// kindCheckpoint is the kind of a segment's last line.
const kindCheckpoint = "Checkpoint"

// segmentsDir is where segments are stored in a sink: segments/<shard>/.
const segmentsDir = "segments"

// Checkpoint ends every segment: where the chain stands after it, signed.
type Checkpoint struct {
	// Schema is SchemaVersion.
	Schema string `json:"schema"`
	// Kind is "Checkpoint".
	Kind string `json:"kind"`
	// Cluster and Shard say whose chain it is.
	Cluster string `json:"cluster"`
	Shard   string `json:"shard"`
	// Segment numbers the shard's segments from 1, without gaps.
	Segment uint64 `json:"segment"`
	// FirstSeq and LastSeq are the first and last record's Seq.
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	// Head is the last record's Hash: the chain head.
	Head string `json:"head"`
	// PrevCheckpoint is the previous segment's checkpoint hash; empty for a
	// shard's first segment.
	PrevCheckpoint string `json:"prevCheckpoint"`
	// Batch identifies the buffered batch the segment was made of, so that a
	// writer restarted after storing it does not store it twice.
	Batch string `json:"batch"`
	// Time is when the segment was sealed.
	Time time.Time `json:"time"`
	// KeyID names the signing key: the first 16 hex digits of the SHA-256 of
	// its public key.
	KeyID string `json:"keyID"`
	// Signature is the base64 Ed25519 signature of the checkpoint's JSON
	// encoding with Signature empty.
	Signature string `json:"signature"`
}

// signedBytes is what the signature covers.
func (c Checkpoint) signedBytes() ([]byte, error) {
	c.Signature = ""
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding checkpoint %d: %w", c.Segment, err)
	}
	return raw, nil
}

// Hash is the hex SHA-256 of the whole checkpoint, signature included: the
// next checkpoint's PrevCheckpoint.
func (c Checkpoint) Hash() (string, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding checkpoint %d: %w", c.Segment, err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// Signer signs checkpoints.
type Signer struct {
	// KeyID is KeyIDOf the public key.
	KeyID string
	Key   ed25519.PrivateKey
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) Signer {
	return Signer{KeyID: KeyIDOf(key.Public().(ed25519.PublicKey)), Key: key}
}

// KeyIDOf names a public key: the first 16 hex digits of its SHA-256.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:16]
}

// Sign fills the checkpoint's KeyID and Signature.
func (s Signer) Sign(c *Checkpoint) error {
	c.KeyID = s.KeyID
	raw, err := c.signedBytes()
	if err != nil {
		return err
	}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key, raw))
	return nil
}

// PublicKeys are the keys checkpoints are verified with, by KeyID.
type PublicKeys map[string]ed25519.PublicKey

// verify checks a checkpoint's signature.
func (k PublicKeys) verify(c Checkpoint) error {
	pub, ok := k[c.KeyID]
	if !ok {
		return fmt.Errorf("signed with key %q, which is not among the published keys", c.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	raw, err := c.signedBytes()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, raw, sig) {
		return errors.New("signature does not match (a forged or altered checkpoint)")
	}
	return nil
}

// Head is where a shard's chain stands after its last stored segment.
type Head struct {
	// Segment is the last stored segment's number; 0 before the first.
	Segment uint64
	// Seq is the last record's Seq.
	Seq uint64
	// Hash is the last record's Hash.
	Hash string
	// Checkpoint is the last checkpoint's hash.
	Checkpoint string
	// Batch is the last stored batch.
	Batch string
}

// Seal chains records onto head (filling Schema, Cluster, Shard, Seq, Prev
// and Hash), signs a checkpoint after them, and returns the segment's bytes
// (JSON Lines: the records, then the checkpoint) and the new head.
func Seal(head Head, cluster, shard, batch string, records []Record, now time.Time, signer Signer) ([]byte, Head, error) {
	if len(records) == 0 {
		return nil, head, errors.New("sealing an empty segment")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	prev, seq := head.Hash, head.Seq
	for i := range records {
		r := &records[i]
		seq++
		r.Schema, r.Cluster, r.Shard, r.Seq, r.Prev = SchemaVersion, cluster, shard, seq, prev
		r.Time = r.Time.UTC()
		hash, err := r.ComputeHash()
		if err != nil {
			return nil, head, err
		}
		r.Hash, prev = hash, hash
		if err := enc.Encode(r); err != nil {
			return nil, head, fmt.Errorf("encoding evidence record %d: %w", r.Seq, err)
		}
	}
	c := Checkpoint{
		Schema: SchemaVersion, Kind: kindCheckpoint, Cluster: cluster, Shard: shard,
		Segment: head.Segment + 1, FirstSeq: head.Seq + 1, LastSeq: seq, Head: prev,
		PrevCheckpoint: head.Checkpoint, Batch: batch, Time: now.UTC(),
	}
	if err := signer.Sign(&c); err != nil {
		return nil, head, err
	}
	ch, err := c.Hash()
	if err != nil {
		return nil, head, err
	}
	if err := enc.Encode(c); err != nil {
		return nil, head, fmt.Errorf("encoding checkpoint %d: %w", c.Segment, err)
	}
	return buf.Bytes(), Head{Segment: c.Segment, Seq: seq, Hash: prev, Checkpoint: ch, Batch: batch}, nil
}

// Segment is a stored segment, parsed.
type Segment struct {
	Name       string
	Records    []Record
	Checkpoint *Checkpoint
	// Lines that are neither a record nor a checkpoint, or records after the
	// checkpoint: a tampered segment.
	Junk []string
}

// ParseSegment reads a segment's bytes. It does not judge them (Verify does);
// it fails only on bytes that are not JSON Lines at all.
func ParseSegment(name string, data []byte) (Segment, error) {
	s := Segment{Name: name}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var peek struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(line, &peek); err != nil || s.Checkpoint != nil {
			s.Junk = append(s.Junk, string(line))
			continue
		}
		if peek.Kind == kindCheckpoint {
			c := &Checkpoint{}
			if err := json.Unmarshal(line, c); err != nil {
				s.Junk = append(s.Junk, string(line))
				continue
			}
			s.Checkpoint = c
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			s.Junk = append(s.Junk, string(line))
			continue
		}
		s.Records = append(s.Records, r)
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("reading segment %s: %w", name, err)
	}
	return s, nil
}

// SegmentName is the name of a shard's n-th segment.
func SegmentName(shard string, n uint64) string {
	return slashpath.Join(segmentsDir, shard, fmt.Sprintf("%012d.jsonl", n))
}

// shardPrefix is the prefix of a shard's segments, or of every shard's
// with shard "".
func shardPrefix(shard string) string {
	if shard == "" {
		return segmentsDir + "/"
	}
	return segmentsDir + "/" + shard + "/"
}

// parseSegmentName returns the shard of a segment's name, and whether it is
// one (segments/<shard>/<number>.jsonl).
func parseSegmentName(name string) (shard string, ok bool) {
	rest, found := strings.CutPrefix(name, segmentsDir+"/")
	if !found {
		return "", false
	}
	shard, file := slashpath.Split(rest)
	shard = strings.TrimSuffix(shard, "/")
	num, found := strings.CutSuffix(file, ".jsonl")
	if !found || shard == "" {
		return "", false
	}
	if _, err := strconv.ParseUint(num, 10, 64); err != nil {
		return "", false
	}
	return shard, true
}
