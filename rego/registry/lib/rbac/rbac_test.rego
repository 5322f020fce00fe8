package registry.lib.rbac_test

import data.registry.lib.rbac

request(roles, teams) := {
	"action": "push",
	"subject": {"id": "alice", "kind": "user", "roles": roles, "teams": teams},
	"resource": {"repository": "libs"},
	"repository": {"name": "libs", "labels": {}},
}

test_global_binding_applies_to_every_repository if {
	rbac.allows("push", "libs") with input as request(["writer"], [])
	rbac.allows("push", "other") with input as request(["writer"], [])
}

test_scoped_binding_applies_to_its_repository_only if {
	rbac.allows("push", "libs") with input as request(["writer:libs"], [])
	not rbac.allows("push", "other") with input as request(["writer:libs"], [])
}

test_role_grants_only_its_actions if {
	rbac.allows("pull", "libs") with input as request(["reader:libs"], [])
	not rbac.allows("push", "libs") with input as request(["reader:libs"], [])
	not rbac.allows("delete", "libs") with input as request(["writer:libs"], [])
	rbac.allows("delete", "libs") with input as request(["maintainer:libs"], [])
}

test_admin_grants_every_action if {
	rbac.allows("frobnicate", "libs") with input as request(["admin"], [])
}

test_unknown_role_grants_nothing if {
	not rbac.allows("pull", "libs") with input as request(["owner:libs", "writer:libs:extra"], [])
}

test_team_bindings_come_from_data if {
	rbac.allows("promote", "releases") with input as request([], ["release-engineering"])
	not rbac.allows("promote", "libs") with input as request([], ["release-engineering"])
}

test_anonymous_may_pull_only_from_public_repositories if {
	public := anonymous_in({"public": "true"})
	rbac.allows("pull", "libs") with input as public
	not rbac.allows("push", "libs") with input as public
	not rbac.allows("pull", "libs") with input as anonymous_in({})
	not rbac.allows("pull", "libs") with input as anonymous_in({"public": "false"})
}

anonymous_in(labels) := {
	"subject": {"id": "anonymous", "kind": "anonymous", "roles": ["admin"], "teams": []},
	"repository": {"labels": labels},
}

test_request_allowed_reads_action_and_repository_from_input if {
	rbac.request_allowed with input as request(["writer:libs"], [])
	not rbac.request_allowed with input as request(["reader:libs"], [])
}

test_refusal_names_subject_action_and_repository if {
	rbac.request_refusal == "subject alice holds no role that grants push on repository libs" with input as request([], [])
}

test_refusal_for_anonymous_explains_public_pull if {
	anonymous := object.union(request([], []), {"subject": {"id": "anonymous", "kind": "anonymous"}})
	msg := "anonymous subjects may only pull from public repositories, not push on libs"
	rbac.request_refusal == msg with input as anonymous
}
