"""load_profile: built-in and user profiles, overrides, and precise ConfigErrors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from auditproxy.core.errors import ConfigError
from auditproxy.profiles import load_profile

from .conftest import BUILTIN, user_profile
from .test_engine import DIGG_RUNTIME_RULES, GRAMMAR_RULES, SPEC_RULES


def test_builtin_profile_has_name_and_version() -> None:
    """The built-in profile loads by name and carries its name and version."""
    profile = load_profile("digg")
    assert (profile.name, profile.version) == ("digg", "1.2.0")
    assert len([r for r in profile.rules if r.enabled]) == len(
        SPEC_RULES | DIGG_RUNTIME_RULES | GRAMMAR_RULES
    )


def test_user_profile_folder_loads(tmp_path: Path) -> None:
    """A profile folder with the three tables loads like the built-in one."""
    profile = load_profile(str(user_profile(tmp_path)))
    assert profile.name == "digg"
    assert profile.rules == load_profile("digg").rules


def test_single_file_profile(tmp_path: Path) -> None:
    """A single YAML file with matrix, handling and rules keys is a profile too."""
    docs = {n: yaml.safe_load((BUILTIN / f"{n}.yaml").read_text(encoding="utf-8"))
            for n in ("matrix", "handling", "rules")}  # fmt: skip
    doc = {"profile": "mine", "version": "7", "matrix": docs["matrix"],
           "handling": docs["handling"], "rules": docs["rules"]["rules"][:3]}  # fmt: skip
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    profile = load_profile(str(path))
    assert (profile.name, profile.version, len(profile.rules)) == ("mine", "7", 3)


OVERRIDE_ERRORS = [
    ({"NO.SUCH-RULE": {"enabled": False}}, "rules.NO.SUCH-RULE", "NO.SUCH-RULE"),
    ({"ARP.03.LOCATION-201": {"severity": "urgent"}}, "rules.ARP.03.LOCATION-201.severity",
     '"urgent", expected one of must, should, may'),
    ({"ARP.03.LOCATION-201": {"enabled": "no"}}, "rules.ARP.03.LOCATION-201.enabled",
     '"no", expected true or false'),
    ({"ARP.03.LOCATION-201": {"level": "may"}}, "rules.ARP.03.LOCATION-201.level",
     "expected one of enabled, params, severity"),
    ({"ARP.03.LOCATION-201": {"params": {"nme": "X"}}}, "rules.ARP.03.LOCATION-201.params",
     "header_required(header: str, nonempty: bool)"),
    ({"ARP.03.LOCATION-201": {"params": {"header": 5}}},
     "rules.ARP.03.LOCATION-201.params.header", "got 5, expected a string"),
    ({"ARP.03.LOCATION-201": "off"}, "rules.ARP.03.LOCATION-201", "expected a mapping"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "where", "what"), OVERRIDE_ERRORS,
                         ids=[w for _, w, _ in OVERRIDE_ERRORS])  # fmt: skip
def test_override_errors_name_file_key_and_value(
    overrides: dict[str, Any], where: str, what: str
) -> None:
    """A bad override raises ConfigError naming the config file, the key and the value."""
    with pytest.raises(ConfigError) as exc:
        load_profile("digg", overrides, source="conf.yaml")
    assert exc.value.source == "conf.yaml"
    assert exc.value.where == where
    assert what in exc.value.what


def _rule(doc: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(r for r in doc["rules"] if r["id"] == rid)


ROW_ERRORS = [
    ("rules", lambda d: _rule(d, "FEL.01.MEMBERS").update(check="no_such_check"),
     "rules.FEL.01.MEMBERS.check", '"no_such_check", expected one of'),
    ("rules", lambda d: _rule(d, "FEL.01.MEMBERS").update(severity="SKALL"),
     "rules.FEL.01.MEMBERS.severity", '"SKALL"'),
    ("rules", lambda d: _rule(d, "FEL.01.MEMBERS").update(params={"membrs": []}),
     "rules.FEL.01.MEMBERS.params", "problem_members(members: Sequence[str])"),
    ("rules", lambda d: _rule(d, "FEL.01.MEMBERS").update(colour="red"),
     "rules.FEL.01.MEMBERS.colour", "expected one of"),
    ("rules", lambda d: _rule(d, "ARP.03.LOCATION-201").update(applies={"status": [999]}),
     "rules.ARP.03.LOCATION-201.applies.status", "got 999"),
    ("rules", lambda d: _rule(d, "SPA.04.TRACEPARENT-RESPONSE").update(
        applies={"origin": ["client"]}),
     "rules.SPA.04.TRACEPARENT-RESPONSE.applies.origin", 'got "client", expected upstream'),
    ("rules", lambda d: d["rules"].append(dict(d["rules"][0])),
     "rules.RFC9110-STATUS-RANGE.id", "each rule id once"),
    ("matrix", lambda d: d["rows"][0].update(cells="X X"),
     "rows.200.cells", "5 cells of X or -"),
    ("handling", lambda d: d["rows"][2].update(advice="sometimes"),
     "rows.300.advice", '"sometimes", expected one of never, must, may, conditional'),
]  # fmt: skip


@pytest.mark.parametrize(("table", "mutate", "where", "what"), ROW_ERRORS,
                         ids=[w for _, _, w, _ in ROW_ERRORS])  # fmt: skip
def test_profile_row_errors_name_file_key_and_value(
    tmp_path: Path, table: str, mutate: Any, where: str, what: str
) -> None:
    """A bad row in a user profile raises ConfigError naming the table file and the key."""
    folder = user_profile(tmp_path, mutate, table)
    with pytest.raises(ConfigError) as exc:
        load_profile(str(folder))
    assert exc.value.source == str(folder / f"{table}.yaml")
    assert exc.value.where == where
    assert what in exc.value.what


def test_missing_profile_is_a_config_error(tmp_path: Path) -> None:
    """A profile reference that is neither built in nor a path names the config key."""
    with pytest.raises(ConfigError) as exc:
        load_profile(str(tmp_path / "nope"), source="conf.yaml")
    assert (exc.value.source, exc.value.where) == ("conf.yaml", "profile")
    assert "nope" in exc.value.what


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    """Broken YAML in a profile table is reported with its file and line."""
    folder = user_profile(tmp_path)
    (folder / "matrix.yaml").write_text("columns: [GET\nrows: {", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_profile(str(folder))
    assert exc.value.source.endswith("matrix.yaml")
    assert exc.value.where.startswith("line ")
