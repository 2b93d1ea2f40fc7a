// Package gitsource keeps the catalog current from the git repositories rules are
// published in (ruledex sync). A sources file lists the repositories; each is fetched
// shallowly with go-git (no git binary) into the user cache, the files under its paths
// are written to a mirror folder by applying the tree diff between the commit mirrored
// before and the one fetched now (so a force-pushed branch is just another tree), and
// the caller's ingest reads the mirrors, parsing only files whose content changed.
//
// Each mirrored file keeps the commit at which its current content was first fetched:
// an unchanged file is not touched (its modification time stays, so ingest does not
// even read it) and its rules keep linking to blob/<commit>/<path>, which shows exactly
// the text that was parsed.
package gitsource

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source is one repository of a sources file.
type Source struct {
	// Name identifies the repository in the cache and in reports (letters, digits, ., _, -).
	Name string `yaml:"name" json:"name"`
	// URL is where it is fetched from: https://..., file://... or a local path.
	URL string `yaml:"url" json:"url"`
	// Ref is a branch or tag ("" means the remote's HEAD); a full "refs/..." name is used as is.
	Ref string `yaml:"ref,omitempty" json:"ref,omitempty"`
	// Paths are the folders (or files) to read, relative to the repository root; none
	// means the whole repository.
	Paths []string `yaml:"paths,omitempty,flow" json:"paths,omitempty"`
	// Language hints name the rule languages the repository holds (informational:
	// ingest recognizes every file by content).
	Language []string `yaml:"language,omitempty,flow" json:"language,omitempty"`
	// License of the rules, as published.
	License string `yaml:"license,omitempty" json:"license,omitempty"`
	// Kind is "rules" (the default) or "attack": an ATT&CK STIX bundle, fetched but not
	// ingested as rules.
	Kind string `yaml:"kind,omitempty" json:"kind,omitempty"`
	// Line is where the entry starts in its sources file.
	Line int `yaml:"-" json:"-"`
}

// IsAttack reports whether the source is ATT&CK data rather than rules.
func (s Source) IsAttack() bool { return s.Kind == KindAttack }

// Source kinds.
const (
	KindRules  = "rules"
	KindAttack = "attack"
)

// LocatedError is a problem at a line of a sources file.
type LocatedError struct {
	File string
	Line int
	Msg  string
}

func (e *LocatedError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadFile reads and checks a sources file.
func LoadFile(file string) ([]Source, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("sources file: %w", err)
	}
	return Parse(file, b)
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Parse reads a sources file's content; file names it in errors. Every problem found
// is reported (joined), each with its line.
func Parse(file string, data []byte) ([]Source, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &LocatedError{File: file, Line: yamlErrLine(err), Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var errs []error
	bad := func(n *yaml.Node, format string, a ...any) {
		errs = append(errs, &LocatedError{File: file, Line: n.Line, Msg: fmt.Sprintf(format, a...)})
	}
	if len(doc.Content) == 0 {
		return nil, &LocatedError{File: file, Msg: "empty: expected a mapping with a sources: list"}
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, &LocatedError{File: file, Line: top.Line, Msg: "expected a mapping with a sources: list"}
	}
	var list *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "sources":
			list = v
		default:
			bad(k, "unknown key %q (expected sources)", k.Value)
		}
	}
	if list == nil {
		return nil, errors.Join(append(errs, &LocatedError{File: file, Line: top.Line, Msg: "no sources: list"})...)
	}
	if list.Kind != yaml.SequenceNode {
		return nil, &LocatedError{File: file, Line: list.Line, Msg: "sources must be a list of repositories"}
	}
	var out []Source
	names := map[string]int{}
	for _, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			bad(item, "each source must be a mapping (name, url, ref, paths, language, license)")
			continue
		}
		s := Source{Line: item.Line}
		ok := true
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i], item.Content[i+1]
			str := func() string {
				if v.Kind != yaml.ScalarNode {
					bad(v, "%s must be a string", k.Value)
					ok = false
					return ""
				}
				return strings.TrimSpace(v.Value)
			}
			strs := func() []string {
				switch v.Kind {
				case yaml.ScalarNode:
					if v.Tag == "!!null" {
						return nil
					}
					return []string{strings.TrimSpace(v.Value)}
				case yaml.SequenceNode:
					var l []string
					for _, e := range v.Content {
						if e.Kind != yaml.ScalarNode {
							bad(e, "%s entries must be strings", k.Value)
							ok = false
							continue
						}
						l = append(l, strings.TrimSpace(e.Value))
					}
					return l
				}
				bad(v, "%s must be a string or a list of strings", k.Value)
				ok = false
				return nil
			}
			switch k.Value {
			case "name":
				s.Name = str()
				if s.Name != "" && !validName.MatchString(s.Name) {
					bad(v, "name %q: use letters, digits, '.', '_' and '-' (it names a cache folder)", s.Name)
					ok = false
				}
			case "url":
				s.URL = str()
				if s.URL != "" {
					if err := checkURL(s.URL); err != nil {
						bad(v, "url: %v", err)
						ok = false
					}
				}
			case "ref":
				s.Ref = str()
			case "paths":
				for _, p := range strs() {
					c, err := cleanPath(p)
					if err != nil {
						bad(v, "paths: %q: %v", p, err)
						ok = false
						continue
					}
					s.Paths = append(s.Paths, c)
				}
			case "language", "languages":
				s.Language = strs()
			case "license":
				s.License = str()
			case "kind":
				s.Kind = str()
				if s.Kind != KindRules && s.Kind != KindAttack {
					bad(v, "kind %q: expected %s or %s", s.Kind, KindRules, KindAttack)
					ok = false
				}
			default:
				bad(k, "unknown key %q (expected name, url, ref, paths, language, license, kind)", k.Value)
				ok = false
			}
		}
		if s.Name == "" {
			bad(item, "source without a name")
			ok = false
		}
		if s.URL == "" {
			bad(item, "source %q without a url", s.Name)
			ok = false
		}
		if first, dup := names[s.Name]; dup && s.Name != "" {
			bad(item, "source name %q is also used at line %d", s.Name, first)
			ok = false
		} else if s.Name != "" {
			names[s.Name] = item.Line
		}
		if ok {
			out = append(out, s)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlErrLine digs the line out of a YAML syntax error (the decoder gives it only in text).
func yamlErrLine(err error) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n := 0
		fmt.Sscan(m[1], &n)
		return n
	}
	return 0
}

// checkURL accepts the URLs go-git can fetch: http(s), file, ssh-like, local paths.
func checkURL(u string) error {
	if strings.Contains(u, "://") {
		pu, err := url.Parse(u)
		if err != nil {
			return errors.New("not a valid URL")
		}
		switch pu.Scheme {
		case "http", "https", "file", "ssh", "git":
		default:
			return fmt.Errorf("unsupported scheme %q (use https, ssh, git or file)", pu.Scheme)
		}
		if pu.User != nil {
			if _, has := pu.User.Password(); has {
				return errors.New("credentials in the URL would be stored in this file: put the token in RULEDEX_GIT_TOKEN instead")
			}
		}
	}
	return nil
}

// cleanPath makes a repository path canonical ("a/b") and refuses what leaves the
// repository.
func cleanPath(p string) (string, error) {
	p = strings.TrimSpace(strings.ReplaceAll(p, "\\", "/"))
	if p == "" {
		return "", errors.New("empty path")
	}
	if strings.HasPrefix(p, "/") {
		return "", errors.New("must be relative to the repository root")
	}
	c := path.Clean(p)
	if c == "." {
		return "", errors.New("names the whole repository: leave paths out instead")
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("leaves the repository")
	}
	return c, nil
}

// Defaults are the public repositories the shared corpus was taken from.
func Defaults() []Source {
	gh := func(name, repo string, paths []string, lang, license string) Source {
		return Source{Name: name, URL: "https://github.com/" + repo, Paths: paths, Language: []string{lang}, License: license}
	}
	return []Source{
		gh("sigmahq", "SigmaHQ/sigma", []string{"rules", "rules-emerging-threats", "rules-threat-hunting", "rules-compliance", "rules-placeholder"}, "sigma", "DRL-1.1"),
		gh("mdecrevoisier", "mdecrevoisier/SIGMA-detection-rules", nil, "sigma", "CC0-1.0"),
		gh("bert-janp", "Bert-JanP/Hunting-Queries-Detection-Rules", nil, "kql", "BSD-3-Clause"),
		gh("reprise99", "reprise99/Sentinel-Queries", nil, "kql", "MIT"),
		gh("m365-defender", "microsoft/Microsoft-365-Defender-Hunting-Queries", nil, "kql", "MIT"),
		gh("falconfriday", "FalconForceTeam/FalconFriday", nil, "kql", "BSD-3-Clause"),
		gh("jkerai1", "jkerai1/KQL-Queries", nil, "kql", "MIT"),
		gh("slimkql", "SlimKQL/Hunting-Queries-Detection-Rules", nil, "kql", "BSD-3-Clause"),
		gh("alexverboon", "alexverboon/Hunting-Queries-Detection-Rules", nil, "kql", "BSD-3-Clause"),
		gh("azure-sentinel", "Azure/Azure-Sentinel", []string{"Detections", "Hunting Queries"}, "kql", "MIT"),
		gh("splunk", "splunk/security_content", []string{"detections", "macros"}, "spl", "Apache-2.0"),
		gh("elastic", "elastic/detection-rules", []string{"rules", "rules_building_block", "hunting"}, "elastic", "Elastic-2.0"),
		gh("chronicle", "chronicle/detection-rules", []string{"rules"}, "yaral", "Apache-2.0"),
		{Name: "mitre-attack", URL: "https://github.com/mitre/cti", Paths: []string{"enterprise-attack/enterprise-attack.json"},
			Kind: KindAttack, License: "ATT&CK Terms of Use"},
	}
}

// Marshal writes sources as a sources file, with a header saying what the keys mean.
func Marshal(srcs []Source) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`# ruledex sources: the repositories "ruledex sync" fetches and ingests.
#   name      cache folder and report name (letters, digits, . _ -)
#   url       https://, ssh://, file:// or a local path; a private repository's token
#             comes from RULEDEX_GIT_TOKEN (or GITHUB_TOKEN for github.com), never from here
#   ref       branch or tag (default: the remote's HEAD)
#   paths     folders or files to read (default: the whole repository)
#   language  hints: the rule languages it holds
#   license   the rules' license
#   kind      rules (default) or attack (an ATT&CK STIX bundle, used as ATT&CK data)
`)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Sources []Source `yaml:"sources"`
	}{srcs}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
