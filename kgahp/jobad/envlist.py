"""HTCondor environment lists: the V2 `Environment` and V1 `Env` job-ad attributes.

Mirrors HTCondor's env.cpp:

* V2 `Environment`: the V2 argument tokenizer (see `arglist.split_v2`), each token `NAME=VALUE`;
  the value may be empty and may itself contain `=`.
* V1 `Env`: entries separated by `;` (or by the character in `EnvDelim`) and by newlines, each
  `NAME=VALUE`; leading whitespace of an entry and empty entries are skipped.
* `Environment` wins when present and non-empty (blahpd's rule), else `Env`.

A token without `=` or with an empty name is an error (HTCondor rejects it too). Names must also be
valid for Kubernetes, no more and no less: since v1.30 (RelaxedEnvironmentVariableValidation, GA in
v1.32) any printable ASCII character but `=` (so `1VAR`, `MY:VAR` or `1BAD NAME` are fine), and
not `.`, `..` or a name starting with `..`. The API server would refuse the pod later with a far
less readable message; the sentence here is the API server's own. A name given twice keeps its
first position and its last value (HTCondor stores the environment as a map, so the last
assignment wins there too).
"""

from __future__ import annotations

from typing import Optional

from kgahp.errors import JobAdError
from kgahp.jobad.arglist import split_v2
from kgahp.k8snames import ENV_NAME_RULE as ENV_NAME_RULE  # re-exported
from kgahp.k8snames import env_name_problems as env_name_problems

_V1_DEFAULT_DELIMITER = ";"
_V1_LEADING_BLANKS = " \t\r\n"

EnvList = tuple[tuple[str, str], ...]


def parse_v2(text: str) -> EnvList:
    """Parse a V2 `Environment` string."""
    return _assignments(split_v2(text, "Environment"), "Environment")


def parse_v1(text: str, delimiter: Optional[str] = None) -> EnvList:
    """Parse a V1 `Env` string, split on `delimiter` (`EnvDelim`, default `;`) and newlines."""
    delim = delimiter[0] if delimiter else _V1_DEFAULT_DELIMITER
    entries = (entry.lstrip(_V1_LEADING_BLANKS)
               for line in text.split("\n") for entry in line.split(delim))
    return _assignments([entry for entry in entries if entry], "Env")


def job_environment(environment_v2: Optional[str], env_v1: Optional[str],
                    env_delimiter: Optional[str] = None) -> EnvList:
    """The job's environment: `Environment` when present and non-empty, else `Env`."""
    if environment_v2:
        return parse_v2(environment_v2)
    if env_v1:
        return parse_v1(env_v1, env_delimiter)
    return ()


def _assignments(tokens: list[str] | tuple[str, ...], attribute: str) -> EnvList:
    merged: dict[str, str] = {}  # dicts keep first-insertion order; later values overwrite
    for token in tokens:
        name, equals, value = token.partition("=")
        if not equals:
            raise JobAdError(f"{attribute} entry {_preview(token)} has no '=' "
                             "(expected NAME=VALUE).")
        if not name:
            # the value may be a secret, so it is not quoted back
            raise JobAdError(f"{attribute} has an entry with an empty variable name.")
        problems = env_name_problems(name)
        if problems:
            raise JobAdError(f"{attribute} variable name {_preview(name)} is not valid for "
                             f"Kubernetes: {'; '.join(problems)}.")
        if "\x00" in value:
            raise JobAdError(f"{attribute} variable {name} contains a NUL character.")
        merged[name] = value
    return tuple(merged.items())


def _preview(text: str, limit: int = 40) -> str:
    """Quote a name for a message, cut short so a pasted value never floods a HoldReason."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
