# METADATA
# description: |
#   May retention delete (or purge) this artifact? Retention rules choose
#   candidates; this policy only vetoes: legal hold, an immutable (release)
#   tag, an exemption, a pull more recent than
#   data.arbiter.retention.keep_if_pulled_within_days, a manifest or index
#   that still references it (input.retention.referenced_by), or a pull by a
#   production team within production_pull_window_days
#   (input.retention.team_pulls). The retention runner needs a role that
#   grants retain.
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

deny contains msg if {
	some exemption in artifact.exemptions
	msg := sprintf("artifact is under exemption (%v); retention keeps it", [exemption.reason])
}

deny contains msg if {
	some ref in input.retention.referenced_by
	msg := sprintf("artifact is referenced by %v/%v@%v; retention keeps it", [ref.repository, ref.name, ref.version])
}

production_days := data.arbiter.retention.production_pull_window_days

deny contains msg if {
	some pull in input.retention.team_pulls
	pull.team in data.arbiter.retention.production_teams
	artifact.ns(input.context.time) - artifact.ns(pull.last_pulled_at) < production_days * ns_per_day
	msg := sprintf("production team %v pulled the artifact within the last %v days; retention keeps it", [pull.team, production_days])
}
