# METADATA
# title: Arbiter registry decision
# description: |
#   The entry point every engine evaluates: data.registry.decision, an object
#   {allow, reasons, obligations}. Each action has its own package whose
#   "deny" set holds the reasons it refuses; an action is allowed when the
#   input is well formed, the action is governed and no reason refuses it.
package registry

import data.registry.delete
import data.registry.promote
import data.registry.pull
import data.registry.push
import data.registry.retain
import data.registry.tag

supported_version := 1

governed := {"delete", "promote", "pull", "push", "retain", "tag"}

# METADATA
# entrypoint: true
default decision := {"allow": false, "reasons": ["no policy rule allows this request"], "obligations": {}}

# Allowed only when the action's package grants it positively *and* no rule
# refuses it, so a deny reason that fails to render can never open the door.
decision := {"allow": true, "reasons": [], "obligations": obligations} if {
	input.version == supported_version
	granted
	count(denials) == 0
}

decision := {"allow": false, "reasons": sort(denials), "obligations": {}} if count(denials) > 0

denials contains msg if {
	input.version != supported_version
	msg := sprintf("input version %v is not supported; these policies read version %v", [input.version, supported_version])
}

denials contains "the input has no version" if not input.version

denials contains msg if {
	not input.action in governed
	msg := sprintf("action %v is not governed by these policies", [input.action])
}

denials contains "the input names no action" if not input.action

granted if {
	input.action == "push"
	push.allow
}

granted if {
	input.action == "pull"
	pull.allow
}

granted if {
	input.action == "delete"
	delete.allow
}

granted if {
	input.action == "tag"
	tag.allow
}

granted if {
	input.action == "promote"
	promote.allow
}

granted if {
	input.action == "retain"
	retain.allow
}

denials contains msg if {
	input.action == "push"
	some msg in push.deny
}

denials contains msg if {
	input.action == "pull"
	some msg in pull.deny
}

denials contains msg if {
	input.action == "delete"
	some msg in delete.deny
}

denials contains msg if {
	input.action == "tag"
	some msg in tag.deny
}

denials contains msg if {
	input.action == "promote"
	some msg in promote.deny
}

denials contains msg if {
	input.action == "retain"
	some msg in retain.deny
}

default obligations := {}

obligations := pull.obligations if input.action == "pull"

obligations := promote.obligations if input.action == "promote"
