"""Launch profiles: runners/profiles/<name>.yaml merged under the command line (it wins).

    python -m pipelines.ingest --profile local --direct_num_workers 2 ...

Runner flags never appear in pipeline code: a profile names them, the user overrides any of them.
`--profile` takes a profile name or a path to a YAML file of flag: value pairs. The profiles are
package data, so they travel with the installed wheel.
"""

from __future__ import annotations

import argparse
import os

import yaml

PROFILES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")
DEFAULT_PROFILE = "local"


def load_profile(name_or_path: str) -> dict:
    """Reads a profile by name (runners/profiles/NAME.yaml) or path.

    Raises:
      ValueError: naming the file when it is missing or not a mapping of flags.
    """
    path = name_or_path
    if not os.path.exists(path):
        path = os.path.join(PROFILES_DIR, f"{name_or_path}.yaml")
    if not os.path.exists(path):
        known = sorted(f[:-5] for f in os.listdir(PROFILES_DIR) if f.endswith(".yaml"))
        raise ValueError(f"--profile {name_or_path!r}: no such file; known profiles: {known}")
    with open(path) as f:
        try:
            profile = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(profile, dict):
        raise ValueError(f"{path}: expected a mapping of flag: value")
    return profile


def _given(argv: list[str], flag: str) -> bool:
    names = {f"--{flag}", f"--no{flag}", f"--no_{flag}"}
    return any(a.split("=", 1)[0] in names for a in argv)


def profile_args(profile: dict, argv: list[str]) -> list[str]:
    """Flags from `profile` that `argv` does not already set."""
    merged = []
    for flag, value in profile.items():
        if _given(argv, flag):
            continue
        if value is True:
            merged.append(f"--{flag}")
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            merged.extend(f"--{flag}={v}" for v in value)
        else:
            merged.append(f"--{flag}={value}")
    return merged


def apply_profile(argv: list[str]) -> list[str]:
    """Removes --profile from argv and appends the profile's flags that argv does not set."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--profile", default=DEFAULT_PROFILE)
    known, rest = parser.parse_known_args(argv)
    return rest + profile_args(load_profile(known.profile), rest)
