# METADATA
# description: |
#   May this subject download this artifact? Readers may; anyone may on a
#   public repository. Quarantined artifacts and artifacts with findings at or
#   above the severity threshold stay put unless an exemption covers them.
package registry.pull

import data.registry.lib.artifact
import data.registry.lib.rbac

allow if rbac.request_allowed

deny contains rbac.request_refusal if not rbac.request_allowed

deny contains msg if {
	artifact.quarantined
	msg := sprintf("artifact is quarantined (label %v) and cannot be pulled", [data.arbiter.labels.quarantine])
}

deny contains artifact.vulnerability_refusal

# A pull allowed through an exemption says which, so the registry can warn.
obligations["exemptions"] := artifact.exemptions_used
