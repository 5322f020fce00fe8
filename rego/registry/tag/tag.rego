# METADATA
# description: |
#   May this subject point a tag (input.tag.name) at this artifact? Writers
#   may, but an immutable tag never moves once it points at content.
package registry.tag

import data.registry.lib.artifact
import data.registry.lib.rbac

allow if rbac.request_allowed

deny contains rbac.request_refusal if not rbac.request_allowed

named if is_string(input.tag.name)

deny contains "a tag action needs input.tag.name" if not named

deny contains artifact.tag_refusal
