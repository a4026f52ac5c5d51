"""policy/gitenv.py: the git configuration the server's processes get."""

from __future__ import annotations

from hardened_server.policy.gitenv import git_config_entries, safe_git_environment


def test_an_empty_environment_gets_one_entry() -> None:
    assert safe_git_environment({}) == {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.bareRepository",
        "GIT_CONFIG_VALUE_0": "explicit",
    }


def test_existing_entries_are_kept_and_ours_comes_last() -> None:
    environ = {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "x",
        "GIT_CONFIG_KEY_1": "safe.bareRepository", "GIT_CONFIG_VALUE_1": "all",
    }  # fmt: skip
    added = safe_git_environment(environ)
    assert added == {
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_2": "safe.bareRepository",
        "GIT_CONFIG_VALUE_2": "explicit",
    }
    merged = git_config_entries({**environ, **added})
    assert merged["2"] == ("safe.bareRepository", "explicit")  # git takes the last value


def test_nothing_is_added_when_the_last_value_is_already_explicit() -> None:
    environ = {**safe_git_environment({})}
    assert safe_git_environment(environ) == {}


def test_a_malformed_count_is_read_as_none() -> None:
    assert safe_git_environment({"GIT_CONFIG_COUNT": "x"})["GIT_CONFIG_COUNT"] == "1"
