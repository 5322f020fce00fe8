package registry_test

import data.registry

request(patch) := object.union(
	{
		"version": 1,
		"action": "pull",
		"subject": {"id": "bob", "kind": "user", "roles": ["reader:libs"], "teams": []},
		"resource": {"repository": "libs", "name": "lib", "version": "1.0", "digest": "sha256:aa"},
		"repository": {"name": "libs", "labels": {}},
		"artifact": {
			"size": 10, "labels": {}, "tags": [], "sbom": {"licenses": [], "purls": []},
			"vulnerabilities": {"critical": 0, "high": 0, "ids": []}, "last_pulled_at": null,
		},
		"tag": null,
		"target": null,
		"context": {"time": "2026-11-28T20:00:00Z", "request_id": "r1", "client": "test", "stage": "request"},
	},
	patch,
)

test_allowed_decision_has_no_reasons if {
	registry.decision == {"allow": true, "reasons": [], "obligations": {}} with input as request({})
}

test_denied_decision_lists_sorted_reasons if {
	both := request({"action": "push", "artifact": {"sbom": {"licenses": ["SSPL-1.0", "AGPL-3.0-only"]}}})
	registry.decision == {
		"allow": false,
		"reasons": [
			"license AGPL-3.0-only is on the deny list",
			"license SSPL-1.0 is on the deny list",
			"subject bob holds no role that grants push on repository libs",
		],
		"obligations": {},
	} with input as both
}

test_every_governed_action_is_routed_to_its_package if {
	admin := {"subject": {"roles": ["admin"]}}
	registry.decision.allow with input as request(object.union(admin, {"action": "push"}))
	registry.decision.allow with input as request(object.union(admin, {"action": "delete"}))
	registry.decision.allow with input as request(object.union(admin, {"action": "retain"}))
	tagging := {"action": "tag", "tag": {"name": "latest", "current_digest": null}}
	registry.decision.allow with input as request(object.union(admin, tagging))
	registry.decision.allow with input as request(object.union(admin, {"action": "promote", "target": {"repository": "releases"}}))
}

test_each_action_package_can_refuse if {
	nobody := {"subject": {"roles": []}}
	not registry.decision.allow with input as request(object.union(nobody, {"action": "push"}))
	not registry.decision.allow with input as request(object.union(nobody, {"action": "pull"}))
	not registry.decision.allow with input as request(object.union(nobody, {"action": "delete"}))
	not registry.decision.allow with input as request(object.union(nobody, {"action": "retain"}))
	not registry.decision.allow with input as request(object.union(nobody, {"action": "tag", "tag": {"name": "x"}}))
	not registry.decision.allow with input as request(object.union(nobody, {"action": "promote"}))
}

test_exemption_becomes_an_obligation if {
	exempted := request({
		"subject": {"roles": ["reader"]},
		"resource": {"repository": "legacy", "name": "openssl-compat", "version": "1.0.2"},
		"artifact": {"vulnerabilities": {"critical": 1}},
	})
	decision := registry.decision with input as exempted
	decision.allow
	decision.obligations == {"exemptions": ["SEC-1234: pinned by the billing system until its migration"]}
}

test_unknown_action_is_denied if {
	registry.decision.reasons == ["action frobnicate is not governed by these policies"] with input as request({"action": "frobnicate"})
}

test_missing_action_is_denied if {
	no_action := json.remove(request({}), ["action"])
	registry.decision.reasons == ["the input names no action"] with input as no_action
}

test_wrong_or_missing_version_is_denied if {
	registry.decision.reasons == ["input version 2 is not supported; these policies read version 1"] with input as request({"version": 2})
	registry.decision.reasons == ["the input has no version"] with input as json.remove(request({}), ["version"])
}

test_nothing_granted_and_nothing_refused_is_still_a_deny if {
	decision := registry.decision with input as request({}) with data.registry.pull.allow as false
	decision == {"allow": false, "reasons": ["no policy rule allows this request"], "obligations": {}}
}
