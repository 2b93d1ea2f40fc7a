package winevent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ruledex/ruledex/internal/corpustest"
	"github.com/ruledex/ruledex/lang/yaral"
)

// TestCoverageYaraL: UDM PROCESS_LAUNCH covers Sysmon 1 and Security 4688 as Defender's
// DeviceProcessEvents does; a Sigma conversion's metadata.product_event_type ids pin
// the events.
func TestCoverageYaraL(t *testing.T) {
	c := catalog(t)
	tests := []struct {
		name string
		path []string
		want []string
	}{
		{"PROCESS_LAUNCH", []string{"community", "microsoft", "windows", "suspicious_file_downloaded_from_file_sharing_website_via_certutil_exe.yaral"}, []string{sysmon1, sec4688}},
		{"product_event_type ids", []string{"_deprecated", "soc_prime_rules", "threat_hunting", "process_creation", "bitsadmin_download.yaral"}, []string{sysmon1, sec4688}},
		// A cloud rule names no Windows telemetry.
		{"GCP audit", []string{"community", "gcp", "gcp_gce_image_open_to_public.yaral"}, nil},
	}
	for _, tc := range tests {
		r := parseWith(t, yaral.Parser{}, corpustest.Path(t, append([]string{"yaral", "chronicle", "rules"}, tc.path...)...))[0]
		if d := cmp.Diff(tc.want, rows(c.Coverage(r))); d != "" {
			t.Errorf("%s (-want +got):\n%s\nlog source %+v", tc.name, d, r.LogSource)
		}
	}
}
