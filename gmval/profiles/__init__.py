"""Run sizes in one place: ``ci`` (seconds), ``default`` (CPU minutes), ``paper`` (GPU, full scale).

Every profile has the settings of one schema, :class:`~gmval.profiles.schema.Settings`
(frozen dataclasses, a section per consumer, documented there), whose defaults are the
``default`` profile; :mod:`~gmval.profiles.ci` and :mod:`~gmval.profiles.paper` state only how
they differ from it. So no profile lacks a key the code reads, and a misspelt or missing key
fails when the profile is loaded, with its dotted path in the message.

Code reads profiles as plain data (``settings["models"]["gan"]["epochs"]``):
:func:`profile_settings` gives a fresh, checked copy of a profile name's settings or of a
profile dict (an edited copy, for instance), so callers may edit what they get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gmval.profiles import ci, paper
from gmval.profiles.schema import Settings
from gmval.profiles.validation import load, override, plain

#: The typed profiles by name.
PROFILES: Mapping[str, Settings] = {
    "ci": override(Settings(), ci.CHANGES),
    "default": Settings(),
    "paper": override(Settings(), paper.CHANGES),
}

#: A profile name (a key of :data:`PROFILES`) or a profile dict with every key of the schema.
Profile = str | Mapping[str, Any]


def get_profile(name: str) -> dict[str, Any]:
    """The settings of profile ``name`` as plain data (a fresh copy, so callers may edit it freely).

    Raises:
        KeyError: for an unknown profile; the message lists the known ones.
    """
    try:
        return plain(PROFILES[name])
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; available: {', '.join(PROFILES)}") from None


def profile_settings(profile: Profile) -> dict[str, Any]:
    """The settings of ``profile`` as plain data: :func:`get_profile` of a name, or a profile dict, checked.

    Raises:
        KeyError: for an unknown profile name, or a missing or unknown key of a dict (its path named).
        TypeError: for a value of the wrong type (its path named).
    """
    return get_profile(profile) if isinstance(profile, str) else plain(load(Settings, profile))
