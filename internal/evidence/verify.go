package evidence

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is what Verify found.
type Report struct {
	// Shards are the chains walked, by name.
	Shards []ShardReport `json:"shards"`
	// Broken is the first broken link, nil when every chain holds.
	Broken *Break `json:"broken,omitempty"`
}

// ShardReport sums up one chain.
type ShardReport struct {
	Shard    string `json:"shard"`
	Segments int    `json:"segments"`
	// Records counts the records whose time is in the window.
	Records int `json:"records"`
	// First and Last are the times of the first and last record in the
	// window.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Head is the chain head after the last segment walked, and Seq its
	// record number.
	Head string `json:"head"`
	Seq  uint64 `json:"seq"`
}

// Break is a broken link: where and what.
type Break struct {
	Shard   string `json:"shard"`
	Segment string `json:"segment"`
	// Seq is the record at fault; 0 when the fault is the segment's.
	Seq     uint64 `json:"seq,omitempty"`
	Problem string `json:"problem"`
}

func (b *Break) Error() string {
	where := b.Segment
	if b.Seq > 0 {
		where += fmt.Sprintf(" record %d", b.Seq)
	}
	return fmt.Sprintf("evidence chain %s broken at %s: %s", b.Shard, where, b.Problem)
}

// VerifyOptions narrow a verification.
type VerifyOptions struct {
	// Keys verify the checkpoints' signatures.
	Keys PublicKeys
	// From and To bound the segments whose records are checked one by one
	// (zero: unbounded). Segments sealed before From are checked by their
	// signed checkpoints only, which anchor the chain; those after To are
	// not read.
	From, To time.Time
}

// Verify walks every shard's chain in sink and reports the first broken
// link: an edited record (its hash no longer matches), a removed record (a
// gap in the numbers or a previous hash that does not match), a removed,
// reordered or truncated segment, an overwritten one (a second version in a
// versioned bucket), a forged checkpoint (its signature) or a foreign one.
func Verify(ctx context.Context, sink Sink, o VerifyOptions) (Report, error) {
	shards, err := listShards(ctx, sink)
	if err != nil {
		return Report{}, err
	}
	var rep Report
	for _, shard := range shards {
		sr, brk, err := verifyShard(ctx, sink, shard.name, shard.entries, o)
		if err != nil {
			return rep, err
		}
		rep.Shards = append(rep.Shards, sr)
		if brk != nil && rep.Broken == nil {
			rep.Broken = brk
		}
	}
	return rep, nil
}

type shardEntries struct {
	name    string
	entries []Entry
}

// listShards groups the stored segments by shard, sorted by name.
func listShards(ctx context.Context, sink Sink) ([]shardEntries, error) {
	all, err := sink.List(ctx, shardPrefix(""))
	if err != nil {
		return nil, err
	}
	var shards []shardEntries
	for _, e := range all {
		shard, ok := parseSegmentName(e.Name)
		if !ok {
			// Something else in the segments directory is itself a sign of
			// tampering; it is reported against the shard it sits in.
			shard = strings.SplitN(strings.TrimPrefix(e.Name, shardPrefix("")), "/", 2)[0]
		}
		if len(shards) == 0 || shards[len(shards)-1].name != shard {
			shards = append(shards, shardEntries{name: shard})
		}
		shards[len(shards)-1].entries = append(shards[len(shards)-1].entries, e)
	}
	return shards, nil
}

// chainState is what the next segment must continue.
type chainState struct {
	segment    uint64
	seq        uint64
	hash       string
	checkpoint string
	cluster    string
}

func verifyShard(ctx context.Context, sink Sink, shard string, entries []Entry, o VerifyOptions) (ShardReport, *Break, error) {
	sr := ShardReport{Shard: shard}
	var st chainState
	for i, e := range entries {
		brk := func(seq uint64, format string, args ...any) *Break {
			return &Break{Shard: shard, Segment: e.Name, Seq: seq, Problem: fmt.Sprintf(format, args...)}
		}
		seg, b, err := readSegment(ctx, sink, e, SegmentName(shard, uint64(i)+1), brk)
		if b != nil || err != nil {
			return sr, b, err
		}
		c := seg.Checkpoint
		if !o.To.IsZero() && c.Time.After(o.To) && len(seg.Records) > 0 && seg.Records[0].Time.After(o.To) {
			break
		}
		if b := checkCheckpoint(seg, st, shard, o.Keys, brk); b != nil {
			return sr, b, nil
		}
		if o.From.IsZero() || !c.Time.Before(o.From) {
			if b := checkRecordsOf(seg, st, brk); b != nil {
				return sr, b, nil
			}
			sr.count(seg.Records, o.From, o.To)
		}
		sr.Segments++
		ch, err := c.Hash()
		if err != nil {
			return sr, nil, err
		}
		st = chainState{segment: c.Segment, seq: c.LastSeq, hash: c.Head, checkpoint: ch, cluster: c.Cluster}
		sr.Head, sr.Seq = st.hash, st.seq
	}
	return sr, nil, nil
}

// readSegment reads a stored segment that must be named want and must end
// with a checkpoint.
func readSegment(ctx context.Context, sink Sink, e Entry, want string, brk func(uint64, string, ...any) *Break) (Segment, *Break, error) {
	if e.Name != want {
		return Segment{}, brk(0, "expected %s here: a segment is missing or misnamed", want), nil
	}
	if e.Versions > 1 {
		return Segment{}, brk(0, "overwritten: the bucket holds %d versions of it", e.Versions), nil
	}
	data, err := sink.Get(ctx, e.Name)
	if err != nil {
		return Segment{}, nil, err
	}
	seg, err := ParseSegment(e.Name, data)
	if err != nil {
		return seg, brk(0, "%v", err), nil
	}
	if seg.Checkpoint == nil {
		return seg, brk(0, "no checkpoint: the segment was truncated"), nil
	}
	return seg, nil, nil
}

// count adds the records in the window to the report.
func (sr *ShardReport) count(records []Record, from, to time.Time) {
	for _, r := range records {
		if inWindow(r.Time, from, to) {
			sr.Records++
			if sr.First.IsZero() {
				sr.First = r.Time
			}
			sr.Last = r.Time
		}
	}
}

// checkCheckpoint judges a segment's checkpoint against the chain so far.
func checkCheckpoint(seg Segment, st chainState, shard string, keys PublicKeys, brk func(uint64, string, ...any) *Break) *Break {
	c := seg.Checkpoint
	switch {
	case len(seg.Junk) > 0:
		return brk(0, "%d line(s) that are not records, or come after the checkpoint", len(seg.Junk))
	case c.Schema != SchemaVersion:
		return brk(0, "checkpoint schema %q, want %q", c.Schema, SchemaVersion)
	case c.Shard != shard:
		return brk(0, "checkpoint of shard %q stored in shard %q", c.Shard, shard)
	case st.cluster != "" && c.Cluster != st.cluster:
		return brk(0, "checkpoint of cluster %q in the chain of cluster %q", c.Cluster, st.cluster)
	case c.Segment != st.segment+1:
		return brk(0, "checkpoint says segment %d, expected %d: segments were reordered or replaced", c.Segment, st.segment+1)
	case c.PrevCheckpoint != st.checkpoint:
		return brk(0, "checkpoint does not follow the previous one: segments were reordered or replaced")
	case c.FirstSeq != st.seq+1:
		return brk(0, "checkpoint starts at record %d, expected %d: records were removed", c.FirstSeq, st.seq+1)
	case c.LastSeq < c.FirstSeq:
		return brk(0, "checkpoint covers no record")
	}
	if err := keys.verify(*c); err != nil {
		return brk(0, "checkpoint %v", err)
	}
	return nil
}

// checkRecordsOf judges a segment's records against its checkpoint and the
// chain so far.
func checkRecordsOf(seg Segment, st chainState, brk func(uint64, string, ...any) *Break) *Break {
	c := seg.Checkpoint
	prev, seq := st.hash, st.seq
	for _, r := range seg.Records {
		if r.Seq != seq+1 {
			return brk(r.Seq, "expected record %d: records were removed or reordered", seq+1)
		}
		if r.Prev != prev {
			return brk(r.Seq, "previous hash does not match record %d: records were removed or reordered", seq)
		}
		hash, err := r.ComputeHash()
		if err != nil {
			return brk(r.Seq, "%v", err)
		}
		if hash != r.Hash {
			return brk(r.Seq, "hash does not match the content: the record was edited")
		}
		if r.Shard != c.Shard || r.Cluster != c.Cluster {
			return brk(r.Seq, "record of shard %q cluster %q in shard %q cluster %q", r.Shard, r.Cluster, c.Shard, c.Cluster)
		}
		prev, seq = r.Hash, r.Seq
	}
	if seq != c.LastSeq || prev != c.Head {
		return brk(0, "the checkpoint's head is record %d, the segment ends at %d: records were removed or the segment truncated", c.LastSeq, seq)
	}
	return nil
}

func inWindow(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to))
}

// ReadOptions select records.
type ReadOptions struct {
	From, To  time.Time
	Namespace string
}

// ReadRecords returns the records of every shard whose time is in the
// window (and, with Namespace, whose workload is in it), ordered by time,
// then shard and number. It does not verify them: run Verify first.
func ReadRecords(ctx context.Context, sink Sink, o ReadOptions) ([]Record, error) {
	shards, err := listShards(ctx, sink)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, shard := range shards {
		for _, e := range shard.entries {
			data, err := sink.Get(ctx, e.Name)
			if err != nil {
				return nil, err
			}
			seg, err := ParseSegment(e.Name, data)
			if err != nil {
				return nil, err
			}
			for _, r := range seg.Records {
				if !inWindow(r.Time, o.From, o.To) {
					continue
				}
				if o.Namespace != "" && (r.Workload == nil || r.Workload.Namespace != o.Namespace) {
					continue
				}
				out = append(out, r)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Record) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.Shard, b.Shard); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	return out, nil
}

// LoadHead returns where a shard's chain stands in sink: its last segment's
// checkpoint, or the zero Head before the first.
func LoadHead(ctx context.Context, sink Sink, shard string) (Head, error) {
	entries, err := sink.List(ctx, shardPrefix(shard))
	if err != nil {
		return Head{}, err
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if _, ok := parseSegmentName(entries[i].Name); !ok {
			continue
		}
		data, err := sink.Get(ctx, entries[i].Name)
		if err != nil {
			return Head{}, err
		}
		seg, err := ParseSegment(entries[i].Name, data)
		if err != nil {
			return Head{}, err
		}
		if seg.Checkpoint == nil {
			return Head{}, fmt.Errorf("evidence segment %s has no checkpoint: run `kubectl phiguard evidence verify`", entries[i].Name)
		}
		c := seg.Checkpoint
		ch, err := c.Hash()
		if err != nil {
			return Head{}, err
		}
		return Head{Segment: c.Segment, Seq: c.LastSeq, Hash: c.Head, Checkpoint: ch, Batch: c.Batch}, nil
	}
	return Head{}, nil
}
