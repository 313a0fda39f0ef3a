package evidence

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// spool is the bounded on-disk buffer records wait in until a segment holding
// them is stored. Records are appended to current.jsonl with one write each
// (a killed process leaves whole lines behind, the kernel has them); a batch
// is cut by renaming it to batch-<id>.jsonl, and removed once stored.
type spool struct {
	dir string
	// maxBytes bounds the buffer on disk.
	maxBytes int64

	mu      sync.Mutex
	current *os.File
	curRecs int
	bytes   int64 // every batch's and current's size
	records int   // records held: every batch's and current's
}

const (
	currentFile = "current.jsonl"
	batchPrefix = "batch-"
	batchSuffix = ".jsonl"
)

// errSpoolFull is returned by append when the buffer is at its bound.
var errSpoolFull = errors.New("evidence buffer is full")

// openSpool opens the buffer in dir; batches left by a previous process are
// kept, and a current file left behind becomes a batch.
func openSpool(dir string, maxBytes int64, batchID func() string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the evidence buffer %s: %w", dir, err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes}
	if info, err := os.Stat(filepath.Join(dir, currentFile)); err == nil && info.Size() > 0 {
		if err := os.Rename(filepath.Join(dir, currentFile), filepath.Join(dir, batchPrefix+batchID()+batchSuffix)); err != nil {
			return nil, fmt.Errorf("keeping the evidence buffered before a restart: %w", err)
		}
	}
	batches, err := s.batches()
	if err != nil {
		return nil, err
	}
	for _, b := range batches {
		recs, size, err := s.read(b)
		if err != nil {
			return nil, err
		}
		s.records += len(recs)
		s.bytes += size
	}
	if err := s.openCurrent(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *spool) openCurrent() error {
	f, err := os.OpenFile(filepath.Join(s.dir, currentFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600) // #nosec G304 -- the buffer's own file
	if err != nil {
		return fmt.Errorf("opening the evidence buffer: %w", err)
	}
	s.current, s.curRecs = f, 0
	return nil
}

// append writes one record as one line with a single write.
func (s *spool) append(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding evidence record: %w", err)
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytes+int64(len(line)) > s.maxBytes {
		return errSpoolFull
	}
	if _, err := s.current.Write(line); err != nil {
		return fmt.Errorf("buffering evidence: %w", err)
	}
	s.bytes += int64(len(line))
	s.records++
	s.curRecs++
	return nil
}

// held returns how many records and bytes the buffer holds.
func (s *spool) held() (records int, size int64, current int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records, s.bytes, s.curRecs
}

// cut makes the current file a batch named id (synced first) and starts a
// new one; it does nothing when current is empty.
func (s *spool) cut(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.curRecs == 0 {
		return nil
	}
	if err := s.current.Sync(); err != nil {
		return fmt.Errorf("syncing the evidence buffer: %w", err)
	}
	if err := s.current.Close(); err != nil {
		return fmt.Errorf("closing the evidence buffer: %w", err)
	}
	if err := os.Rename(filepath.Join(s.dir, currentFile), filepath.Join(s.dir, batchPrefix+id+batchSuffix)); err != nil {
		return fmt.Errorf("cutting an evidence batch: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	return s.openCurrent()
}

// batches lists the batch ids, oldest first.
func (s *spool) batches() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("reading the evidence buffer: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutPrefix(e.Name(), batchPrefix); ok && strings.HasSuffix(id, batchSuffix) {
			ids = append(ids, strings.TrimSuffix(id, batchSuffix))
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// read returns a batch's records and size. A line that does not parse (the
// last one, torn by a crash of the machine before a sync) is skipped.
func (s *spool) read(id string) ([]Record, int64, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, batchPrefix+id+batchSuffix)) // #nosec G304 -- the buffer's own file
	if err != nil {
		return nil, 0, fmt.Errorf("reading evidence batch %s: %w", id, err)
	}
	var recs []Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err == nil {
			recs = append(recs, r)
		}
	}
	return recs, int64(len(data)), nil
}

// remove drops a stored batch.
func (s *spool) remove(id string, records int, size int64) error {
	err := os.Remove(filepath.Join(s.dir, batchPrefix+id+batchSuffix))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stored evidence batch %s: %w", id, err)
	}
	s.mu.Lock()
	s.records -= records
	s.bytes -= size
	s.mu.Unlock()
	return nil
}

func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.current.Sync(); err != nil {
		return fmt.Errorf("syncing the evidence buffer: %w", err)
	}
	if err := s.current.Close(); err != nil {
		return fmt.Errorf("closing the evidence buffer: %w", err)
	}
	return nil
}
