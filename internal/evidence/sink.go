package evidence

import (
	"context"
	"errors"
)

// ErrExists is returned by Sink.Put when an object of that name is stored
// already: evidence is never overwritten.
var ErrExists = errors.New("evidence object exists already")

// Entry is a stored object as a Sink lists it.
type Entry struct {
	// Name is the object's name relative to the sink, such as
	// "segments/controller/000000000001.jsonl".
	Name string
	// Versions is how many versions of it the sink keeps: 1, unless it was
	// overwritten (a versioned bucket keeps every version).
	Versions int
}

// Sink stores evidence segments. Implementations: DirSink (a local
// directory, the embedded default) and S3Sink (an S3-compatible bucket with
// Object Lock, the production sink).
type Sink interface {
	// Put stores data under name, atomically: a reader sees all of it or
	// nothing. It returns ErrExists (wrapped) when name is taken.
	Put(ctx context.Context, name string, data []byte) error
	// List returns the objects whose name starts with prefix, sorted by name.
	List(ctx context.Context, prefix string) ([]Entry, error)
	// Get returns an object's data (its first version, where the sink keeps
	// several).
	Get(ctx context.Context, name string) ([]byte, error)
	// Location describes where the sink writes, for humans and for the
	// published configuration, such as "dir:/var/lib/phiguard/evidence" or
	// "s3://bucket/prefix at https://s3.amazonaws.com".
	Location() string
}
