"""How the writing commands end (utilities/command.py): one line and one exit status per outcome."""
import pytest

from nnunet_dyntransnet.utilities.command import run_command
from nnunet_dyntransnet.utilities.staging import Terminated


def _raise(error):
    def work():
        raise error
    return work


def test_success_prints_what_was_written(capsys):
    assert run_command("dyntransnet_x", lambda: "wrote /data/out", (ValueError,)) == 0
    assert capsys.readouterr().out == "wrote /data/out\n"


def test_bad_input_is_one_line_and_status_2(capsys):
    assert run_command("dyntransnet_x", _raise(ValueError("case_007.nii.gz is truncated")), (ValueError,)) == 2
    assert capsys.readouterr().err == "dyntransnet_x: error: case_007.nii.gz is truncated\n"


@pytest.mark.parametrize("interrupt,status", [(KeyboardInterrupt(), 130), (Terminated("stopped by SIGTERM"), 143)])
def test_interrupts_say_what_was_left_and_exit_as_the_shell_does(capsys, interrupt, status):
    assert run_command("dyntransnet_x", _raise(interrupt), (ValueError,), "no report was written") == status
    err = capsys.readouterr().err
    assert err.startswith("dyntransnet_x: ") and err.endswith("; no report was written\n")
    # issue 28, case 14: Ctrl-C's line had an empty reason ("dyntransnet_x: ; nothing was written")
    assert not err.startswith("dyntransnet_x: ;") and ("interrupted (Ctrl-C)" in err or "SIGTERM" in err)


def test_an_unexpected_error_keeps_its_traceback():
    with pytest.raises(RuntimeError):
        run_command("dyntransnet_x", _raise(RuntimeError("a bug")), (ValueError,))


def test_help_texts_are_plain_not_rest():
    """Issue 27: --help of dyntransnet_demo and dyntransnet_plan_and_preprocess printed reST markup."""
    from nnunet_dyntransnet.demo import main as demo_main
    from nnunet_dyntransnet.plans.cli import _parser

    from nnunet_dyntransnet.utilities.command import plain_text

    assert plain_text("``a`` and :class:`~x.y.Planner`") == "a and Planner"
    assert "``" not in _parser().format_help() and ":class:" not in _parser().format_help()
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        demo_main(["--help"])
    assert "``" not in out.getvalue() and "dyntransnet_demo" in out.getvalue()
