# METADATA
# description: |
#   Role-based access control. A role binding is "ROLE" (on every repository)
#   or "ROLE:REPOSITORY" (on that repository only). data.arbiter.roles maps each
#   role to the actions it grants ("*" grants all); data.arbiter.teams maps a
#   team to further bindings its members hold. Anyone, signed in or not, may
#   pull from a public repository; anonymous subjects may do nothing else.
package registry.lib.rbac

# The bindings the subject holds itself or through one of its teams.
bindings contains binding if some binding in input.subject.roles

bindings contains binding if {
	some team in input.subject.teams
	some binding in data.arbiter.teams[team]
}

anonymous if input.subject.kind == "anonymous"

# The repository of the request carries the public label.
public if {
	value := input.repository.labels[data.arbiter.labels.public]
	value != "false"
}

# The role a binding holds on a repository.
role_on(binding, _) := binding if not contains(binding, ":")

role_on(binding, repository) := role if {
	[role, scope] := split(binding, ":")
	scope == repository
}

# Every action the subject's bindings grant on a repository.
actions_on(repository) := {action |
	some binding in bindings
	role := role_on(binding, repository)
	some action in data.arbiter.roles[role]
}

# The subject may take the action on the repository.
allows(action, repository) if {
	not anonymous
	some granted in actions_on(repository)
	granted in {action, "*"}
}

allows("pull", _) if public

# Why the subject may not take the action on the repository. regopy 1.5 garbles
# string literals passed to a function and then formatted, so callers pass
# values taken from input (input.action) rather than literals such as "push".
refusal(action, repository) := msg if {
	anonymous
	msg := sprintf("anonymous subjects may only pull from public repositories, not %v on %v", [action, repository])
}

refusal(action, repository) := msg if {
	not anonymous
	msg := sprintf("subject %v holds no role that grants %v on repository %v", [input.subject.id, action, repository])
}

# The subject may take the requested action on the requested repository.
request_allowed if allows(input.action, input.resource.repository)

# Why it may not, as a deny reason.
request_refusal := refusal(input.action, input.resource.repository)
