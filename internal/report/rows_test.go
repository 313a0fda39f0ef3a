package report

import (
	"bytes"
	"testing"
)

func TestRows(t *testing.T) {
	var b bytes.Buffer
	if err := Rows(&b, []string{"NAME", "CLASS"}, [][]string{{"records-data", "encrypted-gp3"}, {"scratch\tdisk", ""}}); err != nil {
		t.Fatal(err)
	}
	want := "NAME          CLASS\n" +
		"records-data  encrypted-gp3\n" +
		"scratch disk  -\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}

	b.Reset()
	if err := Rows(&b, []string{"NAME"}, nil); err != nil || b.Len() != 0 {
		t.Errorf("no rows: got %q, %v; want nothing", b.String(), err)
	}
}
