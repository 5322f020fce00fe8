package registry.tag_test

import data.registry.tag

request(roles, tag_change) := {
	"action": "tag",
	"subject": {"id": "dave", "kind": "user", "roles": roles, "teams": []},
	"resource": {"repository": "libs", "digest": "sha256:aa"},
	"repository": {"name": "libs", "labels": {}},
	"tag": tag_change,
}

test_writer_may_set_a_new_tag if {
	new_tag := request(["writer:libs"], {"name": "v1.0.0", "current_digest": null})
	tag.allow with input as new_tag
	count(tag.deny) == 0 with input as new_tag
}

test_mutable_tags_may_move if {
	count(tag.deny) == 0 with input as request(["writer:libs"], {"name": "latest", "current_digest": "sha256:bb"})
}

test_immutable_tag_may_not_move if {
	moving := request(["admin"], {"name": "release-7", "current_digest": "sha256:bb"})
	tag.deny == {"tag release-7 is immutable and already points to sha256:bb"} with input as moving
}

test_reader_may_not_tag if {
	not tag.allow with input as request(["reader:libs"], {"name": "latest", "current_digest": null})
}

test_tag_action_needs_a_tag_name if {
	tag.deny == {"a tag action needs input.tag.name"} with input as request(["writer:libs"], null)
}
