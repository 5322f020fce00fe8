# METADATA
# description: |
#   May this subject delete this artifact? Maintainers may, unless the
#   artifact is under legal hold.
package registry.delete

import data.registry.lib.artifact
import data.registry.lib.rbac

allow if rbac.request_allowed

deny contains rbac.request_refusal if not rbac.request_allowed

deny contains msg if {
	artifact.held
	msg := sprintf("artifact is under legal hold (label %v) and cannot be deleted", [data.arbiter.labels.legal_hold])
}
