package registry.lib.artifact_test

import data.registry.lib.artifact

base := {
	"action": "pull",
	"resource": {"repository": "legacy", "name": "openssl-compat", "version": "1.0.2", "digest": "sha256:aa"},
	"artifact": {"size": 10, "labels": {}, "vulnerabilities": {"critical": 0, "high": 0}},
	"tag": null,
	"context": {"time": "2026-11-28T20:00:00Z"},
}

with_artifact(patch) := object.union(base, {"artifact": object.union(base.artifact, patch)})

test_labels_count_unless_false if {
	artifact.quarantined with input as with_artifact({"labels": {"quarantine": "true"}})
	artifact.held with input as with_artifact({"labels": {"legal-hold": "case-42"}})
	not artifact.quarantined with input as with_artifact({"labels": {"quarantine": "false"}})
	not artifact.held with input as base
}

test_rfc3339_with_z_and_offset_agree if {
	artifact.ns("2026-01-01T00:00:00Z") == artifact.ns("2026-01-01T01:00:00+01:00")
	artifact.ns("2026-01-01T00:00:00.5Z") > artifact.ns("2026-01-01T00:00:00Z")
}

test_blocking_findings_follow_the_threshold if {
	findings := with_artifact({"vulnerabilities": {"critical": 1, "high": 2}})
	artifact.blocking_findings == 1 with input as findings
	artifact.blocking_findings == 3 with input as findings with data.arbiter.vulnerabilities.block_at as "high"
	artifact.blocking_findings == 0 with input as findings with data.arbiter.vulnerabilities.block_at as "none"
}

test_exemption_covers_matching_artifact_until_it_expires if {
	findings := with_artifact({"vulnerabilities": {"critical": 1, "high": 0}})
	count(artifact.exemptions) == 1 with input as findings
	not artifact.vulnerability_refusal with input as findings
	artifact.exemptions_used == ["SEC-1234: pinned by the billing system until its migration"] with input as findings
	expired := object.union(findings, {"context": {"time": "2027-07-01T00:00:00Z"}})
	count(artifact.exemptions) == 0 with input as expired
	artifact.vulnerability_refusal with input as expired
}

test_exemption_is_bound_to_version_when_it_names_one if {
	other := object.union(base, {"resource": object.union(base.resource, {"version": "1.0.3"})})
	count(artifact.exemptions) == 0 with input as other
	unversioned := [{"repository": "legacy", "name": "openssl-compat", "expires_at": "2027-01-01T00:00:00Z", "reason": "r"}]
	count(artifact.exemptions) == 1 with input as other with data.arbiter.exemptions as unversioned
}

test_vulnerability_refusal_names_counts_and_threshold if {
	findings := object.union(with_artifact({"vulnerabilities": {"critical": 2, "high": 0}}), {"resource": {"name": "x"}})
	msg := "pull refused: 2 vulnerability finding(s) at or above severity critical and no exemption covers the artifact"
	artifact.vulnerability_refusal == msg with input as findings
}

test_immutable_tag_patterns if {
	artifact.immutable("v1.2.3")
	artifact.immutable("1.2.3")
	artifact.immutable("release-2026")
	not artifact.immutable("latest")
	not artifact.immutable("v1.2")
}

test_tag_refusal_only_when_an_immutable_tag_moves if {
	moving := object.union(base, {"tag": {"name": "v1.0.0", "current_digest": "sha256:bb"}})
	artifact.tag_refusal == "tag v1.0.0 is immutable and already points to sha256:bb" with input as moving
	not artifact.tag_refusal with input as object.union(base, {"tag": {"name": "v1.0.0", "current_digest": null}})
	not artifact.tag_refusal with input as object.union(base, {"tag": {"name": "v1.0.0", "current_digest": "sha256:aa"}})
	not artifact.tag_refusal with input as object.union(base, {"tag": {"name": "latest", "current_digest": "sha256:bb"}})
}

test_size_limit_per_repository_else_registry_wide if {
	artifact.size_limit == 5368709120 with input as base
	releases := object.union(base, {"resource": {"repository": "releases"}})
	artifact.size_limit == 1073741824 with input as releases
	big := object.union(releases, {"artifact": {"size": 1073741825}})
	artifact.size_refusal == "artifact size 1073741825 bytes exceeds the 1073741824-byte limit of repository releases" with input as big
	not artifact.size_refusal with input as base
}
