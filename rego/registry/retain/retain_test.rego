package registry.retain_test

import data.registry.retain

request(artifact) := {
	"action": "retain",
	"subject": {"id": "retention", "kind": "robot", "roles": ["maintainer"], "teams": []},
	"resource": {"repository": "libs"},
	"repository": {"name": "libs", "labels": {}},
	"artifact": object.union({"labels": {}, "tags": [], "last_pulled_at": null}, artifact),
	"context": {"time": "2026-11-28T20:00:00Z"},
}

test_retention_may_delete_idle_artifacts if {
	idle := request({"last_pulled_at": "2026-01-01T00:00:00Z"})
	retain.allow with input as idle
	count(retain.deny) == 0 with input as idle
	count(retain.deny) == 0 with input as request({})
}

test_retention_needs_a_role_that_grants_retain if {
	writer := object.union(request({}), {"subject": {"roles": ["writer"]}})
	not retain.allow with input as writer
	retain.deny == {"subject retention holds no role that grants retain on repository libs"} with input as writer
}

test_legal_hold_vetoes_retention if {
	held := request({"labels": {"legal-hold": "case-42"}})
	retain.deny == {"artifact is under legal hold (label legal-hold); retention keeps it"} with input as held
}

test_release_tags_veto_retention if {
	retain.deny == {"artifact carries immutable tag v3.1.0; retention keeps releases"} with input as request({"tags": ["latest", "v3.1.0"]})
}

test_recent_pull_vetoes_retention if {
	msg := "artifact was pulled within the last 30 days; retention keeps it"
	retain.deny == {msg} with input as request({"last_pulled_at": "2026-11-20T00:00:00+00:00"})
	retain.deny == {msg} with input as request({"last_pulled_at": "not a time"})
}
