# METADATA
# description: |
#   May retention delete this artifact? Retention rules choose candidates; this
#   policy only vetoes: legal hold, an immutable (release) tag, or a pull more
#   recent than data.arbiter.retention.keep_if_pulled_within_days. The
#   retention runner needs a role that grants retain.
package registry.retain

import data.registry.lib.artifact
import data.registry.lib.rbac

ns_per_day := 86400000000000

keep_days := data.arbiter.retention.keep_if_pulled_within_days

allow if rbac.request_allowed

deny contains rbac.request_refusal if not rbac.request_allowed

deny contains msg if {
	artifact.held
	msg := sprintf("artifact is under legal hold (label %v); retention keeps it", [data.arbiter.labels.legal_hold])
}

deny contains msg if {
	some tag in input.artifact.tags
	artifact.immutable(tag)
	msg := sprintf("artifact carries immutable tag %v; retention keeps releases", [tag])
}

# A pull we cannot place in time counts as recent: retention fails safe.
deny contains msg if {
	is_string(input.artifact.last_pulled_at)
	not pulled_long_ago
	msg := sprintf("artifact was pulled within the last %v days; retention keeps it", [keep_days])
}

pulled_long_ago if {
	age := artifact.ns(input.context.time) - artifact.ns(input.artifact.last_pulled_at)
	age >= keep_days * ns_per_day
}
