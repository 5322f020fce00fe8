# METADATA
# description: |
#   May this subject copy this artifact from its repository into
#   input.target.repository? It must be able to pull from the source and hold
#   promote on the target; quarantined or vulnerable content is not promoted.
package registry.promote

import data.registry.lib.artifact
import data.registry.lib.rbac

default target := ""

target := input.target.repository

deny contains "a promote action needs input.target.repository" if target == ""

allow if {
	rbac.allows("pull", input.resource.repository)
	rbac.allows("promote", target)
}

deny contains msg if {
	not rbac.allows("pull", input.resource.repository)
	msg := sprintf(
		"subject %v may not pull from repository %v, so it cannot promote from there",
		[input.subject.id, input.resource.repository],
	)
}

deny contains rbac.refusal(input.action, target) if {
	target != ""
	not rbac.allows("promote", target)
}

deny contains msg if {
	artifact.quarantined
	msg := sprintf("artifact is quarantined (label %v) and cannot be promoted", [data.arbiter.labels.quarantine])
}

deny contains artifact.vulnerability_refusal

obligations["exemptions"] := artifact.exemptions_used
