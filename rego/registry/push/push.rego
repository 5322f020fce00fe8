# METADATA
# description: |
#   May this subject put this content into this repository? Decided twice: at
#   stage "request" before any bytes are accepted (role, declared size, tag)
#   and at stage "content" after analysis (licenses from the SBOM, real size).
package registry.push

import data.registry.lib.artifact
import data.registry.lib.rbac

allow if rbac.request_allowed

deny contains rbac.request_refusal if not rbac.request_allowed

deny contains msg if {
	some license in input.artifact.sbom.licenses
	license in data.arbiter.licenses.deny
	msg := sprintf("license %v is on the deny list", [license])
}

deny contains artifact.size_refusal

deny contains artifact.tag_refusal
