package registry.pull_test

import data.registry.pull

request(patch) := object.union(
	{
		"action": "pull",
		"subject": {"id": "bob", "kind": "user", "roles": ["reader:libs"], "teams": []},
		"resource": {"repository": "libs", "name": "lib", "version": "1.0"},
		"repository": {"name": "libs", "labels": {}},
		"artifact": {"labels": {}, "vulnerabilities": {"critical": 0, "high": 0}},
		"context": {"time": "2026-11-28T20:00:00Z"},
	},
	patch,
)

test_reader_may_pull if {
	pull.allow with input as request({})
	count(pull.deny) == 0 with input as request({})
}

test_anonymous_pull_needs_a_public_repository if {
	anonymous := {"subject": {"id": "anonymous", "kind": "anonymous", "roles": []}}
	not pull.allow with input as request(anonymous)
	pull.allow with input as request(object.union(anonymous, {"repository": {"labels": {"public": "true"}}}))
}

test_quarantined_artifact_is_not_pulled if {
	quarantined := request({"artifact": {"labels": {"quarantine": "malware-scan"}}})
	pull.deny == {"artifact is quarantined (label quarantine) and cannot be pulled"} with input as quarantined
}

test_critical_findings_block_pull_without_exemption if {
	vulnerable := request({"artifact": {"vulnerabilities": {"critical": 1}}})
	msg := "pull refused: 1 vulnerability finding(s) at or above severity critical and no exemption covers the artifact"
	pull.deny == {msg} with input as vulnerable
	count(pull.deny) == 0 with input as request({"artifact": {"vulnerabilities": {"high": 5}}})
}

test_exempted_pull_is_allowed_and_says_so if {
	exempted := request({
		"subject": {"roles": ["reader"]},
		"resource": {"repository": "legacy", "name": "openssl-compat", "version": "1.0.2"},
		"artifact": {"vulnerabilities": {"critical": 1}},
	})
	count(pull.deny) == 0 with input as exempted
	pull.obligations.exemptions == ["SEC-1234: pinned by the billing system until its migration"] with input as exempted
}
