package registry.promote_test

import data.registry.promote

request(roles, patch) := object.union(
	{
		"action": "promote",
		"subject": {"id": "erin", "kind": "user", "roles": roles, "teams": []},
		"resource": {"repository": "staging", "name": "app", "version": "2.0"},
		"repository": {"name": "staging", "labels": {}},
		"artifact": {"labels": {}, "vulnerabilities": {"critical": 0, "high": 0}},
		"target": {"repository": "releases"},
		"context": {"time": "2026-11-28T20:00:00Z"},
	},
	patch,
)

test_maintainer_of_target_who_reads_source_may_promote if {
	allowed := request(["reader:staging", "maintainer:releases"], {})
	promote.allow with input as allowed
	count(promote.deny) == 0 with input as allowed
}

test_team_binding_grants_promote if {
	team := request(["reader:staging"], {"subject": {"teams": ["release-engineering"]}})
	promote.allow with input as team
}

test_promote_needs_read_on_source if {
	no_read := request(["maintainer:releases"], {})
	not promote.allow with input as no_read
	promote.deny == {"subject erin may not pull from repository staging, so it cannot promote from there"} with input as no_read
}

test_promote_needs_promote_on_target if {
	writer := request(["reader:staging", "writer:releases"], {})
	promote.deny == {"subject erin holds no role that grants promote on repository releases"} with input as writer
}

test_promote_needs_a_target if {
	no_target := request(["admin"], {"target": null})
	promote.deny == {"a promote action needs input.target.repository"} with input as no_target
}

test_quarantined_or_vulnerable_content_is_not_promoted if {
	quarantined := request(["admin"], {"artifact": {"labels": {"quarantine": "yes"}}})
	promote.deny == {"artifact is quarantined (label quarantine) and cannot be promoted"} with input as quarantined
	vulnerable := request(["admin"], {"artifact": {"vulnerabilities": {"critical": 3}}})
	count(promote.deny) == 1 with input as vulnerable
	count(promote.obligations) == 0 with input as request(["admin"], {})
}

test_exempted_promote_carries_the_exemption if {
	exempted := request(["admin"], {
		"resource": {"repository": "legacy", "name": "openssl-compat", "version": "1.0.2"},
		"artifact": {"vulnerabilities": {"critical": 1}},
	})
	count(promote.deny) == 0 with input as exempted
	promote.obligations.exemptions == ["SEC-1234: pinned by the billing system until its migration"] with input as exempted
}
