import subprocess
import sys

import pytest

from atm.cli import COMMANDS, main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atm", *args], capture_output=True, text=True, check=False
    )


def test_unknown_subcommand_exits_2():
    result = run("nonsense")
    assert result.returncode == 2
    assert "usage: atm" in result.stderr


def test_unknown_option_exits_2():
    with pytest.raises(SystemExit) as info:
        main(["demo", "--no-such-option"])
    assert info.value.code == 2


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert len(capsys.readouterr().out) > 100


def test_list_scripts(capsys):
    assert main(["demo", "--list-scripts"]) == 0
    out = capsys.readouterr().out
    assert "withdraw-alice" in out and "wrong-pin" in out


def test_unknown_script_exits_2(capsys):
    assert main(["demo", "--script", "nope"]) == 2
    assert "unknown script" in capsys.readouterr().err


def test_bad_config_value_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setenv("MAX_FAILED_PIN_ATTEMPTS", "three")
    assert main(["db", "upgrade", "--database-url", "sqlite://"]) == 2
    assert "MAX_FAILED_PIN_ATTEMPTS: not an integer: 'three'" in capsys.readouterr().err
