package registry.delete_test

import data.registry.delete

request(roles, labels) := {
	"action": "delete",
	"subject": {"id": "carol", "kind": "user", "roles": roles, "teams": []},
	"resource": {"repository": "libs"},
	"repository": {"name": "libs", "labels": {}},
	"artifact": {"labels": labels},
}

test_maintainer_may_delete if {
	delete.allow with input as request(["maintainer:libs"], {})
	count(delete.deny) == 0 with input as request(["maintainer:libs"], {})
}

test_writer_may_not_delete if {
	not delete.allow with input as request(["writer:libs"], {})
	delete.deny == {"subject carol holds no role that grants delete on repository libs"} with input as request(["writer:libs"], {})
}

test_legal_hold_forbids_delete_even_for_admins if {
	held := request(["admin"], {"legal-hold": "case-42"})
	delete.deny == {"artifact is under legal hold (label legal-hold) and cannot be deleted"} with input as held
}
