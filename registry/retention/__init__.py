"""Retention: cleanup rules, previews, governed runs, the trash, and their schedule.

Modules, one concept each: ``rules`` (the rule set document and its
validation), ``ordering`` (version order), ``inventory`` (what the database
holds, read in bulk), ``engine`` (which versions the rules select: pure),
``rulesets`` (stored, versioned, audited rule sets), ``lease`` (one runner
across processes), ``trash`` (soft delete, restore and purge of rows),
``facts`` (what the policy needs to veto), ``decide`` (each deletion and
purge a governed ``retain`` action, in chunks), ``runner`` (a run from plan
to report), ``reports`` (preview and run report), ``restore`` and
``scheduler``.

This root imports nothing heavy: ``registry.db.models`` imports
``registry.retention.models`` while it is itself being imported.
"""

__all__: list[str] = []
