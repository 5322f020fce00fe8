package registry.retain_test

import data.registry.retain

request(artifact) := {
	"action": "retain",
	"subject": {"id": "retention", "kind": "robot", "roles": ["maintainer"], "teams": []},
	"resource": {"repository": "libs"},
	"repository": {"name": "libs", "labels": {}},
	"artifact": object.union({"labels": {}, "tags": [], "last_pulled_at": null}, artifact),
	"retention": null,
	"context": {"time": "2026-11-28T20:00:00Z"},
}

with_retention(facts) := object.union(request({}), {"retention": object.union(
	{"phase": "delete", "referenced_by": [], "team_pulls": []},
	facts,
)})

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

test_exemption_vetoes_retention if {
	exempt := object.union(request({}), {"resource": {"repository": "legacy", "name": "openssl-compat", "version": "1.0.2"}})
	retain.deny == {"artifact is under exemption (SEC-1234: pinned by the billing system until its migration); retention keeps it"} with input as exempt
}

test_reference_from_an_index_vetoes_retention if {
	index := {"repository": "libs", "name": "app", "version": "sha256:aa", "tags": ["v1.0.0"]}
	retain.deny == {"artifact is referenced by libs/app@sha256:aa; retention keeps it"} with input as with_retention({"referenced_by": [index]})
	count(retain.deny) == 0 with input as with_retention({})
}

test_recent_pull_by_a_production_team_vetoes_retention if {
	recent := [{"team": "production", "last_pulled_at": "2026-10-01T00:00:00Z"}]
	msg := "production team production pulled the artifact within the last 90 days; retention keeps it"
	retain.deny == {msg} with input as with_retention({"team_pulls": recent})
	old := [{"team": "production", "last_pulled_at": "2026-01-01T00:00:00Z"}]
	count(retain.deny) == 0 with input as with_retention({"team_pulls": old})
	others := [{"team": "qa", "last_pulled_at": "2026-11-27T00:00:00Z"}]
	count(retain.deny) == 0 with input as with_retention({"team_pulls": others})
}
