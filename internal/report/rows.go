package report

import (
	"fmt"
	"io"
)

// Rows writes a table with a header row and rows, in the aligned columns of
// Table, "-" for an empty cell. It writes nothing when rows is empty.
func Rows(out io.Writer, header []string, rows [][]string) error {
	if len(rows) == 0 {
		return nil
	}
	p := newPrinter(out)
	p.row(header...)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = orNone(c)
		}
		p.row(cells...)
	}
	if err := p.flush(); err != nil {
		return fmt.Errorf("writing a table: %w", err)
	}
	return nil
}
