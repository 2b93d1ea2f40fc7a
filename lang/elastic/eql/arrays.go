package eql

import "strings"

// arrayFields are the ECS fields the ECS 9.5.0 schema normalizes as arrays ("normalize":
// ["array"] in ../shared/corpus/elastic/detection-rules/schemas/ecs_flat-9.5.0.json) that
// detection rules test. A comparison on them holds when it holds for one element.
var arrayFields = map[string]bool{
	"dns.resolved_ip": true, "dns.answers": true, "dns.header_flags": true,
	"email.from.address": true, "email.reply_to.address": true, "email.to.address": true,
	"email.cc.address": true, "email.bcc.address": true, "email.attachments": true,
	"event.category": true, "event.type": true, "host.ip": true, "host.mac": true, "tags": true,
	"process.env_vars": true, "process.thread.capabilities.effective": true,
	"process.thread.capabilities.permitted": true, "registry.data.strings": true,
	"related.ip": true, "related.user": true, "related.hash": true, "related.hosts": true,
	"source.user.roles": true, "user.roles": true, "destination.user.roles": true,
	"threat.tactic.name": true, "threat.tactic.id": true, "threat.technique.name": true, "threat.technique.id": true,
	"threat.technique.subtechnique.id": true, "threat.technique.subtechnique.name": true,
	"tls.server.x509.issuer.common_name": true, "tls.server.x509.subject.common_name": true,
	"file.attributes": true, "dll.pe.imports": true, "file.pe.imports": true,
}

// isArray reports whether field holds an array. Every process argument vector
// (process.args, process.parent.args, process.entry_leader.args, ...) is one.
func isArray(field string) bool {
	f := strings.ToLower(field)
	return arrayFields[f] || strings.HasSuffix(f, ".args") || f == "args"
}
