package report

import (
	"fmt"
	"io"
)

// Columns writes rows as aligned text columns, as Table does: two spaces
// between columns, and a tab or line break inside a cell turned into a space.
func Columns(out io.Writer, rows ...[]string) error {
	p := newPrinter(out)
	for _, r := range rows {
		p.row(r...)
	}
	if err := p.flush(); err != nil {
		return fmt.Errorf("writing columns: %w", err)
	}
	return nil
}

// OneLine returns s with its tabs and line breaks turned into spaces, so that
// a value read from the cluster cannot break a line of text output.
func OneLine(s string) string {
	return oneLine(s)
}

// OrNone returns s, or None when s is empty.
func OrNone(s string) string {
	return orNone(s)
}
