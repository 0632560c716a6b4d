"""The active rule catalog as plain data and as text/Markdown tables.

Shared by ``auditproxy rules`` and the admin ``GET /-/rules`` endpoint.
"""

from __future__ import annotations

from typing import Any

from auditproxy.core.profile import Profile


def rules_as_dicts(profile: Profile) -> list[dict[str, Any]]:
    """One dict per rule row, in catalog order (disabled rules included)."""
    return [
        {
            "id": r.id,
            "severity": r.severity.value,
            "source": r.source,
            "enabled": r.enabled,
            "check": r.check,
            "message": r.message,
            "category": r.category,
            "header": r.header,
            "phase": r.phase,
            "profile_version": r.profile_version,
            "description": r.description,
        }
        for r in profile.rules
    ]


def catalog_as_dict(profile: Profile) -> dict[str, Any]:
    """The catalog with the profile's name and version (the JSON output)."""
    return {"profile": profile.name, "version": profile.version, "rules": rules_as_dicts(profile)}


def _what(row: dict[str, Any]) -> str:
    return str(row["message"]).replace("{", "<").replace("}", ">")


def render_text(profile: Profile) -> str:
    """Aligned columns: id, severity, on/off, source, what it checks."""
    rows = rules_as_dicts(profile)
    wid = max((len(r["id"]) for r in rows), default=2)
    wsrc = min(max((len(r["source"]) for r in rows), default=6), 40)
    lines = [f"Profile {profile.name} {profile.version}: {len(rows)} rules "
             f"({sum(r['enabled'] for r in rows)} enabled)", ""]  # fmt: skip
    lines.append(f"{'id':<{wid}}  {'severity':<8}  {'on':<3}  {'source':<{wsrc}}  checks")
    for r in rows:
        source = r["source"] if len(r["source"]) <= wsrc else r["source"][: wsrc - 3] + "..."
        on = "yes" if r["enabled"] else "no"
        lines.append(f"{r['id']:<{wid}}  {r['severity']:<8}  {on:<3}  {source:<{wsrc}}  {_what(r)}")
    return "\n".join(lines) + "\n"


def render_markdown(profile: Profile) -> str:
    """A Markdown table of the catalog."""
    lines = [
        f"# Rule catalog: {profile.name} {profile.version}",
        "",
        "| id | severity | enabled | source | checks |",
        "|---|---|---|---|---|",
    ]
    for r in rules_as_dicts(profile):
        cells = [r["id"], r["severity"], "yes" if r["enabled"] else "no", r["source"], _what(r)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
