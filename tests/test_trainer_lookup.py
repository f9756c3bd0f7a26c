"""nnU-Net finds nnUNetTrainerDynTransNet after a plain install, with no set-up by the user."""
import os
import subprocess
import sys

from nnunet_dyntransnet import trainer_search_path as tsp

FIND = (
    "from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as find\n"
    "import nnunet_dyntransnet.trainers as t\n"
    "cls = find('nnUNetTrainerDynTransNet')\n"
    "assert cls is t.nnUNetTrainerDynTransNet, (cls, t.nnUNetTrainerDynTransNet)\n"
    "print('FOUND', cls.__module__)\n"
)


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(extra)
    return env


def test_register_appends_once_and_keeps_user_paths():
    env = {"nnUNet_extTrainer": os.pathsep.join(["/mine/a", "/mine/b"])}
    tsp.register(env)
    tsp.register(env)
    assert env["nnUNet_extTrainer"].split(os.pathsep) == ["/mine/a", "/mine/b", tsp.trainer_search_path()]
    empty = {}
    tsp.register(empty)
    assert empty["nnUNet_extTrainer"] == tsp.trainer_search_path()


def test_search_path_holds_only_the_reexport_module():
    names = sorted(n for n in os.listdir(tsp.trainer_search_path()) if n.endswith(".py") and n != "__init__.py")
    assert names == ["nnunet_dyntransnet_trainers.py"]


def test_fresh_interpreter_without_env_finds_the_trainer():
    proc = subprocess.run([sys.executable, "-c", FIND], env=_clean_env(), capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FOUND nnunet_dyntransnet.trainers.dyntransnet" in proc.stdout
    assert "Could not find requested nnunet trainer" not in proc.stdout + proc.stderr


def test_fresh_interpreter_keeps_a_user_ext_trainer_path(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['nnUNet_extTrainer'])"],
        env=_clean_env(nnUNet_extTrainer=str(tmp_path)), capture_output=True, text=True, cwd="/",
    )
    assert proc.stdout.strip().split(os.pathsep) == [str(tmp_path), tsp.trainer_search_path()]


def test_module_prints_the_path():
    proc = subprocess.run([sys.executable, "-m", "nnunet_dyntransnet.trainer_search_path"],
                          capture_output=True, text=True, cwd="/")
    assert proc.stdout.strip() == tsp.trainer_search_path()
