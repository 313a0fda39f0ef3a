package safeguard

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEventNoteFitsTheEventsAPI(t *testing.T) {
	if got := EventNote("short"); got != "short" {
		t.Errorf("EventNote(short) = %q", got)
	}
	exact := strings.Repeat("a", MaxEventNote)
	if got := EventNote(exact); got != exact {
		t.Errorf("a note of exactly %d bytes was cut", MaxEventNote)
	}
	long := strings.Repeat("§", MaxEventNote) // two bytes a rune
	got := EventNote(long)
	if len(got) > MaxEventNote || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("EventNote cut %d bytes to %d bytes (valid UTF-8 %v), want at most %d ending ...",
			len(long), len(got), utf8.ValidString(got), MaxEventNote)
	}
}
