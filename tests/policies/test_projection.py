"""Which part of the input the embedded engine hands to regopy."""

from __future__ import annotations

from policies import default_policy_dir, load_bundle
from policies._projection import input_paths, project, projection


def test_static_paths_are_collected_outside_strings_and_comments() -> None:
    source = """package x
# input.in_comment
a if input.artifact.sbom.licenses[_] == "input.in_string"
b if input.artifact.labels[key]
c := input.subject
d if data.input.not_input
e := `input.in_raw_string`
"""
    assert input_paths([source]) == [
        ("artifact", "sbom", "licenses"),
        ("artifact", "labels"),
        ("subject",),
    ]


def test_any_dynamic_reference_keeps_the_whole_document() -> None:
    assert input_paths(['x := input["artifact"]']) is None
    assert input_paths(["x := walk(input)"]) is None
    assert input_paths(["x := input.a", "y := object.get(input, 1, 2)"]) is None


def test_projection_keeps_referenced_subtrees_only() -> None:
    tree = projection([("a", "b"), ("a",), ("c", "d", "e"), ("c", "f")])
    doc = {"a": {"b": 1, "x": 2}, "c": {"d": {"e": 1, "y": 2}, "f": [1], "g": 3}, "z": 1}
    assert project(doc, tree) == {"a": {"b": 1, "x": 2}, "c": {"d": {"e": 1}, "f": [1]}}


def test_projection_keeps_values_that_are_not_objects() -> None:
    assert project({"tag": None}, projection([("tag", "name")])) == {"tag": None}
    assert project({"a": 1}, None) == {"a": 1}


def test_starter_policies_leave_out_purls_and_finding_ids() -> None:
    paths = input_paths(load_bundle(default_policy_dir()).modules.values())
    assert paths is not None
    tree = projection(paths)
    assert tree is not None
    assert "purls" not in tree["artifact"]["sbom"]
    assert "ids" not in tree["artifact"]["vulnerabilities"]
