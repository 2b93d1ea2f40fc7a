package rule

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpandValue(t *testing.T) {
	tests := []struct {
		name       string
		transforms []string
		in         Value
		want       []string
		wantErr    bool
	}{
		// pySigma test_modifiers.py: base64 and base64offset of "foobar".
		{"base64", []string{TBase64}, Value{S: "foobar"}, []string{"Zm9vYmFy"}, false},
		{"base64offset", []string{TBase64Offset}, Value{S: "foobar"}, []string{"Zm9vYmFy", "Zvb2Jhc", "mb29iYX"}, false},
		// Short values: Python slicing of b64(" a")[2:-3] is empty.
		{"base64offset short", []string{TBase64Offset}, Value{S: "a"}, []string{"Y", "", "h"}, false},
		{"base64offset two", []string{TBase64Offset}, Value{S: "ab"}, []string{"YW", "Fi", "hY"}, false},
		// SigmaHQ proc_creation_win_powershell_base64_frombase64string lists these UTF-16LE
		// offsets of '::FromBase64String' by hand next to its base64offset item.
		{"wide base64offset (SigmaHQ)", []string{TWide, TBase64Offset}, Value{S: "::FromBase64String"},
			[]string{"OgA6AEYAcgBvAG0AQgBhAHMAZQA2ADQAUwB0AHIAaQBuAGcA", "oAOgBGAHIAbwBtAEIAYQBzAGUANgA0AFMAdAByAGkAbgBnA", "6ADoARgByAG8AbQBCAGEAcwBlADYANABTAHQAcgBpAG4AZw"}, false},
		{"utf16le base64offset", []string{TUTF16LE, TBase64Offset}, Value{S: "IEX"}, []string{"SQBFAFgA", "kARQBYA", "JAEUAWA"}, false},
		// pySigma test_wide / utf16 vectors.
		{"wide", []string{TWide}, Value{S: "foobar"}, []string{"f\x00o\x00o\x00b\x00a\x00r\x00"}, false},
		{"utf16le", []string{TUTF16LE}, Value{S: "foobar"}, []string{"f\x00o\x00o\x00b\x00a\x00r\x00"}, false},
		{"utf16be", []string{TUTF16BE}, Value{S: "foobar"}, []string{"\x00f\x00o\x00o\x00b\x00a\x00r"}, false},
		{"utf16", []string{TUTF16}, Value{S: "foobar"}, []string{"\xff\xfef\x00o\x00o\x00b\x00a\x00r\x00"}, false},
		{"utf16be base64", []string{TUTF16BE, TBase64}, Value{S: "cmd"}, []string{"AGMAbQBk"}, false},
		{"utf16 base64", []string{TUTF16, TBase64}, Value{S: "cmd"}, []string{"//5jAG0AZAA="}, false},
		{"wide keeps wildcards", []string{TWide}, Value{S: "*ab*", Wild: true}, []string{"*a\x00b\x00*"}, false},
		// pySigma test_windash: only dashes starting a word are expanded; five dash forms.
		{"windash", []string{TWindash}, Value{S: "-param-1 -param2"}, []string{
			"-param-1 -param2", "-param-1 /param2", "-param-1 \u2013param2", "-param-1 \u2014param2", "-param-1 \u2015param2",
			"/param-1 -param2", "/param-1 /param2", "/param-1 \u2013param2", "/param-1 \u2014param2", "/param-1 \u2015param2",
			"\u2013param-1 -param2", "\u2013param-1 /param2", "\u2013param-1 \u2013param2", "\u2013param-1 \u2014param2", "\u2013param-1 \u2015param2",
			"\u2014param-1 -param2", "\u2014param-1 /param2", "\u2014param-1 \u2013param2", "\u2014param-1 \u2014param2", "\u2014param-1 \u2015param2",
			"\u2015param-1 -param2", "\u2015param-1 /param2", "\u2015param-1 \u2013param2", "\u2015param-1 \u2014param2", "\u2015param-1 \u2015param2",
		}, false},
		{"windash slash", []string{TWindash}, Value{S: " /enc"}, []string{" -enc", " /enc", " \u2013enc", " \u2014enc", " \u2015enc"}, false},
		{"windash not mid-word", []string{TWindash}, Value{S: "a-b"}, []string{"a-b"}, false},
		{"windash not before space", []string{TWindash}, Value{S: "- x"}, []string{"- x"}, false},
		{"windash in pattern", []string{TWindash}, Value{S: "* -f*x", Wild: true}, []string{"* -f*x", "* /f*x", "* \u2013f*x", "* \u2014f*x", "* \u2015f*x"}, false},
		{"no encoding", []string{TCased}, Value{S: "x*", Wild: true}, []string{"x*"}, false},
		{"base64 of wildcard", []string{TBase64}, Value{S: "a*b", Wild: true}, nil, true},
		{"base64 of escaped star", []string{TBase64}, Value{S: `a\*b`, Wild: true}, []string{"YSpi"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pred{Kind: Match, Transforms: tc.transforms}
			got, err := ExpandValue(p, tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			var gs []string
			for _, v := range got {
				gs = append(gs, v.S)
			}
			if d := cmp.Diff(tc.want, gs); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestWindashBound(t *testing.T) {
	// Eight word-starting dashes would be 5^8 variants: the value is kept as is.
	s := "-a -b -c -d -e -f -g -h"
	if got := Windash(s); len(got) != 1 || got[0] != s {
		t.Errorf("got %d variants", len(got))
	}
	if _, err := ExpandValue(&Pred{Transforms: []string{TWindash}}, Value{S: s}); err == nil {
		t.Error("ExpandValue: want an error for too many variants")
	}
}
