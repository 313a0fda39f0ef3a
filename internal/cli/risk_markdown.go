package cli

import (
	"fmt"
	"strings"
)

// mdWriter builds a Markdown document: headings, lines and tables, each cell
// on one line with its pipes escaped, so that any message fits in a cell.
type mdWriter struct {
	b strings.Builder
}

// line writes one line of text.
func (m *mdWriter) line(format string, args ...any) {
	fmt.Fprintf(&m.b, format+"\n", args...)
}

// heading writes a level-2 heading after a blank line.
func (m *mdWriter) heading(title string) {
	m.line("\n## %s\n", title)
}

// subheading writes a level-3 heading after a blank line.
func (m *mdWriter) subheading(title string) {
	m.line("\n### %s\n", title)
}

// table writes a table: a header row, its separator and rows.
func (m *mdWriter) table(header []string, rows [][]string) {
	m.row(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	m.row(sep)
	for _, r := range rows {
		m.row(r)
	}
}

func (m *mdWriter) row(cells []string) {
	escaped := make([]string, len(cells))
	for i, c := range cells {
		escaped[i] = mdCell.Replace(c)
	}
	m.line("| %s |", strings.Join(escaped, " | "))
}

// mdCell keeps a cell on its line and its pipes from ending it.
var mdCell = strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ")

// String returns the document.
func (m *mdWriter) String() string {
	return m.b.String()
}
