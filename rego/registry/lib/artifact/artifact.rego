# METADATA
# description: |
#   Facts about the artifact of the request, read from input.artifact and
#   judged against data.arbiter: labels, vulnerability findings and their
#   exemptions, immutable tags, size limits and times.
package registry.lib.artifact

# The artifact carries the label named by data.arbiter.labels[kind], with any value but "false".
labelled(kind) if {
	value := input.artifact.labels[data.arbiter.labels[kind]]
	value != "false"
}

quarantined if labelled("quarantine")

held if labelled("legal_hold")

# Nanoseconds since the epoch of an RFC 3339 time. regopy cannot parse a "Z"
# suffix, so it becomes "+00:00" first ("Z" appears nowhere else in RFC 3339).
ns(moment) := time.parse_rfc3339_ns(replace(moment, "Z", "+00:00"))

# How many findings are at or above the severity threshold (data.arbiter.vulnerabilities.block_at).
default blocking_findings := 0

blocking_findings := input.artifact.vulnerabilities.critical if data.arbiter.vulnerabilities.block_at == "critical"

blocking_findings := n if {
	data.arbiter.vulnerabilities.block_at == "high"
	n := input.artifact.vulnerabilities.critical + input.artifact.vulnerabilities.high
}

# Exemptions that cover the artifact now: same repository and name, the same
# version when the exemption names one, and not yet expired.
exemptions contains exemption if {
	some exemption in data.arbiter.exemptions
	exemption.repository == input.resource.repository
	exemption.name == input.resource.name
	object.get(exemption, "version", input.resource.version) == input.resource.version
	ns(input.context.time) < ns(exemption.expires_at)
}

# Why the artifact's findings forbid the request, unless an exemption covers it.
vulnerability_refusal := msg if {
	blocking_findings > 0
	count(exemptions) == 0
	msg := sprintf(
		"%v refused: %v vulnerability finding(s) at or above severity %v and no exemption covers the artifact",
		[input.action, blocking_findings, data.arbiter.vulnerabilities.block_at],
	)
}

# The exemptions an allowed action relied on, for the decision's obligations.
exemptions_used := sort([exemption.reason | some exemption in exemptions]) if blocking_findings > 0

# A tag name matching one of the patterns in data.arbiter.tags.immutable.
immutable(name) if {
	some pattern in data.arbiter.tags.immutable
	regex.match(pattern, name)
}

# The request would move an immutable tag that already points at other content.
tag_refusal := msg if {
	immutable(input.tag.name)
	is_string(input.tag.current_digest)
	input.tag.current_digest != input.resource.digest
	msg := sprintf("tag %v is immutable and already points to %v", [input.tag.name, input.tag.current_digest])
}

# The size limit of the request's repository, else the registry-wide one.
size_limit := object.get(
	data.arbiter.repositories,
	[input.resource.repository, "max_artifact_size"],
	data.arbiter.max_artifact_size,
)

size_refusal := msg if {
	is_number(input.artifact.size)
	input.artifact.size > size_limit
	msg := sprintf(
		"artifact size %v bytes exceeds the %v-byte limit of repository %v",
		[input.artifact.size, size_limit, input.resource.repository],
	)
}
