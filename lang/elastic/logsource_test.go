package elastic

import (
	"strings"
	"testing"
)

// Log sources derived from real rules; the expectations are read from each file's query
// and tags by hand.
func TestLogSource(t *testing.T) {
	tests := []struct {
		file, product, category, eventTypes string
	}{
		{"rules/windows/credential_access_lsass_loaded_susp_dll.toml", "windows", "image_load", "library"},
		{"rules/_deprecated/defense_evasion_hide_encoded_executable_registry.toml", "windows", "registry_event", "registry"},
		// network where ... dns.question.name != null: a DNS lookup; macos and windows.
		{"rules/cross-platform/command_and_control_common_llm_endpoint.toml", "windows", "dns_query", "network"},
		{"rules/cross-platform/defense_evasion_deleting_websvr_access_logs.toml", "windows", "file_delete", "file"},
		{"rules/linux/impact_esxi_process_kill.toml", "linux", "process_termination", "process"},
		{"rules/linux/persistence_kernel_driver_load.toml", "linux", "driver_load", "driver"},
		// Kibana query: event.category:process and event.type:(process_started or start);
		// tags OS: Linux, OS: macOS.
		{"rules/_deprecated/execution_pentest_eggshell_remote_admin_tool.toml", "linux", "process_creation", "process"},
		{"rules_building_block/command_and_control_bitsadmin_activity.toml", "windows", "process_creation", "process"},
	}
	for _, tc := range tests {
		r := parseFile(t, tc.file)[0]
		ls := r.LogSource
		if ls.Product != tc.product || ls.Category != tc.category || strings.Join(ls.EventTypes, ",") != tc.eventTypes {
			t.Errorf("%s: product %q category %q event types %v; want %q %q %q", tc.file, ls.Product, ls.Category, ls.EventTypes,
				tc.product, tc.category, tc.eventTypes)
		}
	}
}
