"""Profiles share one typed schema: strict loading, overrides that state only differences, plain-data copies."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from gmval.profiles import PROFILES, ci, get_profile, paper, profile_settings
from gmval.profiles.schema import Settings
from gmval.profiles.validation import load, override, plain


def leaves(settings: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every setting; nested settings are walked, any other value is a leaf."""
    for f in dataclasses.fields(settings):
        value, path = getattr(settings, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from leaves(value, path + ".")
        else:
            yield path, value


def declared(changes: Mapping[str, Any], settings: Any, prefix: str = "") -> Iterator[str]:
    """The dotted paths an override mapping sets, walked as :func:`override` applies it."""
    for key, change in changes.items():
        current = getattr(settings, key)
        if dataclasses.is_dataclass(current) and isinstance(change, Mapping):
            yield from declared(change, current, prefix + key + ".")
        else:
            yield prefix + key


def test_every_profile_has_the_keys_of_the_schema() -> None:
    schema = [path for path, _ in leaves(Settings())]
    assert len(schema) > 200 and "counterfactual.vae.precision" in schema and "models.vae.hidden" in schema
    for name, settings in PROFILES.items():
        assert [path for path, _ in leaves(settings)] == schema, name
        # The plain copy holds exactly the schema's keys: strict loading gives the profile back.
        assert load(Settings, get_profile(name)) == settings, name


@pytest.mark.parametrize(("name", "changes"), [("ci", ci.CHANGES), ("paper", paper.CHANGES)])
def test_profiles_differ_from_default_exactly_where_they_say(name: str, changes: Mapping[str, Any]) -> None:
    default = dict(leaves(Settings()))
    differ = {path for path, value in leaves(PROFILES[name]) if value != default[path]}
    # Nothing undeclared differs, and no declared change restates a default.
    assert differ == set(declared(changes, Settings()))


def test_values_missing_before_the_schema_keep_what_the_readers_assumed() -> None:
    # The readers' fallbacks when these keys were optional: fp32, one process, no snapshots.
    ci, paper = get_profile("ci"), get_profile("paper")
    precision = {name: {kind: p["models"][kind]["precision"] for kind in ("classifier", "vae", "gan", "diffusion")}
                 for name, p in (("ci", ci), ("paper", paper))}
    assert precision == {"ci": {"classifier": "fp32", "vae": "fp32", "gan": "auto", "diffusion": "fp32"},
                         "paper": {"classifier": "fp32", "vae": "fp32", "gan": "fp32", "diffusion": "fp32"}}
    assert paper["models"]["diffusion"]["sampling_precision"] == "fp32"
    assert ci["counterfactual"]["vae"]["precision"] == paper["counterfactual"]["vae"]["precision"] == "fp32"
    assert get_profile("default")["counterfactual"]["vae"]["precision"] == "auto"
    assert ci["counterfactual"]["workers"] == ci["counterfactual_diffusion"]["workers"] == 1
    for p in map(get_profile, PROFILES):
        assert p["models"]["gan"]["keep_every"] == p["counterfactual_diffusion"]["diffusion"]["full_keep_every"] == 0
        assert p["counterfactual_diffusion"]["tracin"] is None and p["counterfactual"]["checkpoint_seconds"] == 60.0


def test_a_misspelt_or_missing_key_fails_with_its_path() -> None:
    with pytest.raises(KeyError, match=r"models\.gan\.epoch: unknown setting; models\.gan has epochs, "):
        override(Settings(), {"models": {"gan": {"epoch": 3}}})
    with pytest.raises(KeyError, match=r"c3\.poor\.size: unknown setting"):
        override(Settings(), {"c3": {"poor": {"size": 3}}})
    edited = get_profile("ci")
    edited["models"]["gan"]["epoch"] = 3
    with pytest.raises(KeyError, match=r"models\.gan\.epoch: unknown setting"):
        profile_settings(edited)
    edited = get_profile("ci")
    del edited["c3"]["poor"]["n"]
    with pytest.raises(KeyError, match=r"c3\.poor\.n: missing"):
        profile_settings(edited)
    with pytest.raises(KeyError, match="c1, c2, .*: missing"):
        profile_settings({"models": get_profile("ci")["models"]})


def test_a_value_of_the_wrong_type_fails_with_its_path() -> None:
    cases = [({"models": {"seed": "0"}}, r"models\.seed: expected int, got '0'"),
             ({"models": {"seed": True}}, r"models\.seed: expected int"),
             ({"models": {"gan": {"precision": "fp16"}}}, r"models\.gan\.precision: expected"),
             ({"models": {"noisy": 16}}, r"models\.noisy: expected a mapping"),
             ({"c1": {"encoder": ["pixels"]}}, r"c1\.encoder: expected"),
             ({"c1": {"ks": [5, "10"]}}, r"c1\.ks\[1\]: expected int"),
             ({"models": {"workers": "many"}}, r"models\.workers: expected")]
    for changes, message in cases:
        with pytest.raises(TypeError, match=message):
            override(Settings(), changes)
    # An int where a float is expected is a float (PEP 484); None only where the type allows it.
    assert override(Settings(), {"models": {"checkpoint_seconds": 5}}).models.checkpoint_seconds == 5
    with pytest.raises(TypeError, match=r"models\.seed: expected int, got None"):
        override(Settings(), {"models": {"seed": None}})


def test_overrides_change_only_what_they_name() -> None:
    base = Settings()
    changed = override(base, {"models": {"gan": {"epochs": 3}, "train_images": None},
                              "counterfactual_diffusion": {"tracin": {"draws": 1, "snapshots": None,
                                                                      "train_subset": 5, "chunk_size": 8}}})
    assert changed.models.gan == dataclasses.replace(base.models.gan, epochs=3)
    assert changed.models.train_images is None and changed.models.vae == base.models.vae
    assert changed.counterfactual_diffusion.tracin is not None and changed.counterfactual_diffusion.tracin.draws == 1
    assert base.models.gan.epochs == get_profile("default")["models"]["gan"]["epochs"] != 3


def test_plain_copies_are_fresh_lists_and_dicts() -> None:
    a, b = get_profile("default"), get_profile("default")
    assert a == b and a is not b and a["c1"]["encoder"] is not b["c1"]["encoder"]
    assert a["c1"]["encoder"] == ["efficientnet-lite0", {"resolution": 64}] and isinstance(a["c1"]["ks"], list)
    a["c1"]["encoder"][1]["resolution"] = 8
    assert get_profile("default")["c1"]["encoder"][1]["resolution"] == 64
    assert pickle.loads(pickle.dumps(a)) == a  # profile dicts travel to worker processes
    assert profile_settings(b) == b and plain(PROFILES["ci"]) == get_profile("ci")
