package catalog

import (
	"reflect"
	"strings"
	"testing"
)

func TestStmtLabelHasNoSQL(t *testing.T) {
	batch := "INSERT INTO indicators(rule_pk, field, canonical) VALUES " + strings.Repeat("(?,?,?),", 127) + "(?,?,?)"
	tests := []struct{ q, want string }{
		{batch, "insert indicators"},
		{"INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", "insert meta"},
		{"UPDATE files SET size=?, mtime=? WHERE id=?", "update files"},
		{"DELETE FROM rules_fts WHERE rowid IN (SELECT pk FROM rules WHERE file_id=?)", "delete rules_fts"},
		{"\n\t\tSELECT 1", "select"},
		{"", "statement"},
	}
	for _, tc := range tests {
		if got := stmtLabel(tc.q); got != tc.want {
			t.Errorf("stmtLabel(%.40q) = %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestMinimalRoots(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"/a/b", "/a", "/a/b/c"}, []string{"/a"}},
		{[]string{"/a/b", "/a/bc", "/a/b"}, []string{"/a/b", "/a/bc"}},
		{[]string{"/x", "/a/b.yml", "/a"}, []string{"/a", "/x"}},
		{nil, []string{}},
	}
	for _, tc := range tests {
		if got := minimalRoots(append([]string(nil), tc.in...)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("minimalRoots(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
