package rule

import "testing"

func TestParseKind(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Kind
		ok   bool
	}{
		{"ends_with", EndsW, true},
		{"|endswith", EndsW, true},
		{" EndsWith ", EndsW, true},
		{"ends-with", EndsW, true},
		{"contains", Match, true},
		{"re", Regex, true},
		{"exists", IsNotNull, true},
		{"hasprefix", TermPrefix, true},
		{"term_prefix", TermPrefix, true},
		{"!=", Ne, true},
		{"isnotnull", IsNotNull, true},
		{"endswit", "", false},
		{"", "", false},
	} {
		got, ok := ParseKind(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseKind(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
