package registry.push_test

import data.registry.push

request(patch) := object.union(
	{
		"action": "push",
		"subject": {"id": "alice", "kind": "user", "roles": ["writer:libs"], "teams": []},
		"resource": {"repository": "libs", "name": "lib", "version": "1.0", "digest": "sha256:aa"},
		"repository": {"name": "libs", "labels": {}},
		"artifact": {"size": 10, "labels": {}, "sbom": {"licenses": ["MIT"]}},
		"tag": null,
	},
	patch,
)

test_writer_may_push_clean_content if {
	push.allow with input as request({})
	count(push.deny) == 0 with input as request({})
}

test_reader_may_not_push if {
	reader := request({"subject": {"roles": ["reader:libs"]}})
	not push.allow with input as reader
	push.deny == {"subject alice holds no role that grants push on repository libs"} with input as reader
}

test_denied_license_is_refused if {
	gpl := request({"artifact": {"sbom": {"licenses": ["MIT", "GPL-3.0-only"]}}})
	push.deny == {"license GPL-3.0-only is on the deny list"} with input as gpl
}

test_oversized_artifact_is_refused if {
	big := request({"artifact": {"size": 5368709121}})
	push.deny == {"artifact size 5368709121 bytes exceeds the 5368709120-byte limit of repository libs"} with input as big
}

test_push_may_not_move_an_immutable_tag if {
	moving := request({"tag": {"name": "v1.0.0", "current_digest": "sha256:bb"}})
	push.deny == {"tag v1.0.0 is immutable and already points to sha256:bb"} with input as moving
}
