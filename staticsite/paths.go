package staticsite

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"path"
	"strings"
)

// The file layout of the export. Every page URL becomes a file under DIR:
//
//	/                         index.html
//	/rules/sigma/<id>/        rules/sigma/<id>/index.html
//	/Microsoft-Windows-Sysmon/1  Microsoft-Windows-Sysmon/1/index.html
//	/rules/?language=sigma    rules/_q-language-sigma-<hash>.html
//	/static/style.css         static/style.css
//
// Links name index.html explicitly: file:// has no directory index. Names come from
// URLs, and URLs from rule text (ids) and from query values, so every path segment is
// checked: a segment that is not plainly safe (letters, digits, '.', '_', '-', not
// starting with a dot, short, not one of our own file names) is replaced by a slug of
// it and a hash of the original, which starts with '_' and so never equals a safe name.
// Nothing a URL holds can name a file outside DIR.

const maxSegment = 100

// safeSegment reports whether s can be a file or folder name as it is.
func safeSegment(s string) bool {
	if s == "" || len(s) > maxSegment || s == "index.html" || strings.HasSuffix(s, ".html") {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
		return false // no ".", "..", hidden files or our own "_" names
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// hashed is "_" + a readable slug of s + "-" + the start of s's SHA-256: unique per s
// (short of a hash collision) whatever the slug loses.
func hashed(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "_" + slug(s, 60) + "-" + hex.EncodeToString(sum[:6])
}

// slug keeps letters, digits, '.' and '-' of s and turns every other run of bytes into one '-'.
func slug(s string, max int) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' {
			b.WriteByte(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-.")
}

func segmentName(s string) string {
	if safeSegment(s) {
		return s
	}
	return hashed(s)
}

// segments splits an escaped URL path into its decoded segments (an id holding an
// escaped slash stays one segment).
func segments(escapedPath string) []string {
	var out []string
	for _, raw := range strings.Split(strings.Trim(escapedPath, "/"), "/") {
		if raw == "" {
			continue
		}
		seg, err := url.PathUnescape(raw)
		if err != nil {
			seg = raw
		}
		out = append(out, seg)
	}
	return out
}

// pageFile is the file (slash-separated, relative to DIR) of the page at u: the
// folder of its path plus index.html, or a file named after the query when there is one.
func pageFile(u *url.URL) string {
	var parts []string
	for _, s := range segments(u.EscapedPath()) {
		parts = append(parts, segmentName(s))
	}
	if q := u.Query(); len(q) > 0 {
		enc := q.Encode() // sorted by key: one name per query whatever its order
		sum := sha256.Sum256([]byte(enc))
		parts = append(parts, "_q-"+slug(enc, 60)+"-"+hex.EncodeToString(sum[:6])+".html")
	} else {
		parts = append(parts, "index.html")
	}
	return path.Join(parts...)
}

// assetFile is the file of a static asset or data file: its path as it is.
func assetFile(u *url.URL) string {
	var parts []string
	for _, s := range segments(u.EscapedPath()) {
		parts = append(parts, segmentName(s))
	}
	return path.Join(parts...)
}

// relative is the link from the page file from (slash path relative to DIR) to the
// file to, both relative to DIR.
func relative(from, to string) string { return newRelBase(from).to(to) }

// relBase is a page file's folder, split once for the many links of the page.
type relBase struct{ dir []string }

func newRelBase(from string) relBase {
	fromDir := path.Dir(from)
	if fromDir == "." || fromDir == "" {
		return relBase{}
	}
	return relBase{dir: strings.Split(fromDir, "/")}
}

// to is the link from the folder to the file to (relative to DIR).
func (b relBase) to(to string) string {
	// Skip the folders both paths start with, then go up from the rest of the page's.
	common, rest := 0, to
	for common < len(b.dir) {
		i := strings.IndexByte(rest, '/')
		if i < 0 || rest[:i] != b.dir[common] {
			break
		}
		rest = rest[i+1:]
		common++
	}
	up := len(b.dir) - common
	if up == 0 {
		return rest
	}
	var sb strings.Builder
	sb.Grow(3*up + len(rest))
	for range up {
		sb.WriteString("../")
	}
	sb.WriteString(rest)
	return sb.String()
}

// rootOf is the relative path from the page file to DIR ("" at the top, "../" below).
func rootOf(file string) string {
	return strings.Repeat("../", strings.Count(file, "/"))
}
