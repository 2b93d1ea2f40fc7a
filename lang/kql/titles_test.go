package kql

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/rule"
)

// TestSnippetTitles: queries without a title of their own (.kql/.txt files, Markdown
// fences) are titled by the heading above them, else the file name, else their first
// comment line when it reads as a title; a sentence never becomes a title. Each row
// is a real corpus file, with the title it had before for comparison.
func TestSnippetTitles(t *testing.T) {
	tests := []struct {
		path   string // under corpus/kql
		index  int
		want   string
		before string
	}{
		{"m365-defender/Webcasts/TrackingTheAdversary/Episode 4 - Lets Hunt.txt", 2, "Episode 4 - Lets Hunt: AlertInfo", "AlertInfo"},
		{"m365-defender/Webcasts/TrackingTheAdversary/Episode 4 - Lets Hunt.txt", 10, "Episode 4 - Lets Hunt (7)",
			"...and we can see that Barbara launched it. Process ID 13988"},
		{"m365-defender/Webcasts/TrackingTheAdversary/Episode 4 - Lets Hunt.txt", 19, "Episode 4 - Lets Hunt (16)",
			"Bingo! Back to barbaram-pc. Yup, we'll have to queue that up for investigation"},
		{"slimkql/DefenderXDR/Suspicious MSHTA Usage.kql", 0, "Suspicious MSHTA Usage",
			"I have found in the various environments I have been in that mshta in the modern world is far and few between"},
		{"reprise99/Azure Active Directory/Audit-DetectSSPRFromUnknownIP.kql", 0, "Audit - Detect SSPR From Unknown IP",
			"Detect a successful self service password reset or account unlock from an IP address that user hasn't successfully signed into from in the last 30 days"},
		{"alexverboon/Defender For Endpoint/MDE-Zeek.md", 3, "Microsoft Defender for Endpoint - Zeek: Detect file downloads", "the same"},
		{"alexverboon/Defender For Office 365/MDO-InboxForwarding.md", 2, "Exchange Online - Email Inbox Manipulation & Forwarding (3)",
			"Exchange Online - Email Inbox Manipulation & Forwarding: Find signins to Exchange Online with PowerShell."},
		{"falconfriday/hunts/FireEye_red_team_tool_countermeasures.md", 1, "FireEye red_team_tool_countermeasures KQL queries: SUSPICIOUS EXECUTION OF TSTHEME", "the same"},
	}
	for _, tt := range tests {
		rs, _ := Parser{}.Parse(rule.Source{Repo: "corpus/kql", Path: tt.path}, readCorpus(t, tt.path))
		if tt.index >= len(rs) {
			t.Errorf("%s: %d rules", tt.path, len(rs))
			continue
		}
		if got := rs[tt.index].Title; got != tt.want {
			t.Errorf("%s #%d: title %q, want %q", tt.path, tt.index, got, tt.want)
		}
	}
}

// TestNoSentenceTitlesInCorpus: across every KQL file of the corpus, the part of a
// title after the file's own title is never a sentence cut from a comment or prose.
func TestNoSentenceTitlesInCorpus(t *testing.T) {
	root := corpustest.Path(t, "kql")
	n := 0
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		ext := strings.ToLower(filepath.Ext(p))
		if ext != ".kql" && ext != ".txt" && ext != ".md" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rs, _ := Parser{}.Parse(rule.Source{Repo: "corpus/kql", Path: filepath.ToSlash(rel)}, data)
		for _, r := range rs {
			n++
			_, sub, _ := strings.Cut(r.Title, ": ")
			switch {
			case strings.Contains(r.Title, "Barbara"), strings.Contains(r.Title, "we can see"),
				strings.HasPrefix(sub, "..."), strings.HasSuffix(sub, "."), strings.HasSuffix(sub, "…"):
				t.Errorf("%s: title %q reads as a sentence", rel, r.Title)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2000 {
		t.Errorf("%d rules from .kql/.txt/.md files; the corpus has thousands", n)
	}
}

// TestTutorialClass: queries from teaching folders are class "tutorial"; queries from
// look-alike folders are not (Jupyter-Solarmaker is a campaign, KQL Regex a reference).
func TestTutorialClass(t *testing.T) {
	tests := []struct {
		path string // under corpus/kql
		want rule.Class
	}{
		{"m365-defender/Webcasts/TrackingTheAdversary/Episode 4 - Lets Hunt.txt", rule.Tutorial},
		{"m365-defender/Webcasts/TrackingTheAdversary/Episode 1 - KQL Fundamentals.txt", rule.Tutorial},
		{"m365-defender/Webcasts/l33tSpeak/MCAS - The Hunt.txt", rule.Tutorial},
		{"bert-janp/Learning/TheArtOfKnowingYourData.md", rule.Tutorial},
		{"m365-defender/Campaigns/Jupyter-Solarmaker/deimos-component-execution.md", ""},
		{"bert-janp/KQL Regex/RegexExamples.md", ""},
		{"reprise99/Azure Active Directory/Audit-DetectSSPRFromUnknownIP.kql", ""},
	}
	for _, tt := range tests {
		rs, _ := Parser{}.Parse(rule.Source{Repo: "corpus/kql", Path: tt.path}, readCorpus(t, tt.path))
		if len(rs) == 0 {
			t.Errorf("%s: no rules", tt.path)
		}
		for i, r := range rs {
			if got := r.Class; got != tt.want && !(tt.want == "" && got != rule.Tutorial) {
				t.Errorf("%s #%d: class %q, want %q", tt.path, i, got, tt.want)
			}
		}
	}
	// The classification is by folder, whatever the repository path looks like.
	for p, want := range map[string]bool{
		"Webcasts/x.txt": true, `Webcasts\TrackingTheAdversary\x.txt`: true, "a/learning/b.md": true,
		"Learning.md": false, "hunts/Training-data.md": false, "Campaigns/Jupyter-Solarmaker/x.md": false,
	} {
		if got := isTeachingPath(p); got != want {
			t.Errorf("isTeachingPath(%q) = %v", p, got)
		}
	}
}
